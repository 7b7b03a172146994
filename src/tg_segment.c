#include "tg_segment.h"

#include <apr_strings.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tg_ids.h"
#include "tg_record.h"

#define LOCATOR_FORMAT "%" SCNxPTR ":%" SCNx64 ":%" SCNx64

static apr_size_t segment_bytes(uint32_t records)
{
    return sizeof(tg_segment_t) + tg_queue_footprint(records);
}

apr_size_t tg_segment_footprint(uint32_t records)
{
    return alignof(tg_segment_t) + segment_bytes(records);
}

tg_segment_t *tg_segment_create(void *memory, uint32_t records)
{
    uintptr_t base = (uintptr_t)memory;
    tg_segment_t *segment = (tg_segment_t *)((base + alignof(tg_segment_t) - 1)
                                             & ~(uintptr_t)(alignof(tg_segment_t) - 1));
    memset(segment, 0, sizeof(*segment));
    segment->layout = TG_SEGMENT_LAYOUT;
    segment->queue_records = records;
    segment->size = segment_bytes(records);
    tg_queue_create(segment->queue, records);
    /* Last: a reader that finds the cookie finds the rest made. */
    segment->cookie = tg_random_span_id();
    return segment;
}

const char *tg_segment_locator(const tg_segment_t *segment, apr_pool_t *pool)
{
    return apr_psprintf(pool, "%" PRIxPTR ":%" PRIx64 ":%" PRIx64, (uintptr_t)segment,
                        segment->size, segment->cookie);
}

/* Whether [start, start + size) lies in one shared, writable mapping of
 * this process: a locator inherited by a program that did not inherit the
 * mapping names memory that is not there, or is something else's. */
static int is_shared_mapping(uintptr_t start, uint64_t size)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    if (!maps)
        return 0;
    while (!found && fgets(line, sizeof(line), maps)) {
        uintptr_t low, high;
        char perms[5];
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &low, &high, perms) == 3)
            found = low <= start && start + size <= high && perms[0] == 'r' && perms[1] == 'w'
                    && perms[3] == 's';
    }
    fclose(maps);
    return found;
}

apr_status_t tg_segment_attach(const char *locator, tg_segment_t **segment_out)
{
    uintptr_t address;
    uint64_t size, cookie;
    tg_segment_t *segment;
    int end = 0;
    if (!locator
        || sscanf(locator, LOCATOR_FORMAT "%n", &address, &size, &cookie, &end) != 3
        || locator[end] || !address || size < sizeof(tg_segment_t)
        || address % alignof(tg_segment_t))
        return APR_EINVAL;
    if (!is_shared_mapping(address, size))
        return APR_ENOENT;
    segment = (tg_segment_t *)address;
    if (segment->cookie != cookie || segment->layout != TG_SEGMENT_LAYOUT || segment->size != size)
        return APR_EMISMATCH;
    *segment_out = segment;
    return APR_SUCCESS;
}

apr_status_t tg_segment_enqueue(tg_segment_t *segment, const tg_span_t *span)
{
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t length = tg_record_encode(span, record, sizeof(record));
    return tg_queue_push(tg_segment_queue(segment), record, length);
}
