#include "bench_segment.h"

#include <apr_general.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tg_segment.h"

static tg_segment_t *segment;

const char *bench_segment_open(uint32_t records)
{
    static char locator[128];
    apr_size_t size = tg_segment_footprint(records);
    apr_pool_t *pool;
    void *memory;
    if (segment)
        return locator;
    memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        perror("bench_segment_open: mmap");
        return NULL;
    }
    /* Touched now: no round pays a first touch's page fault. */
    memset(memory, 0, size);
    segment = tg_segment_create(memory, records);
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&pool, NULL) != APR_SUCCESS)
        return NULL;
    snprintf(locator, sizeof(locator), "%s", tg_segment_locator(segment, -1, pool));
    apr_pool_destroy(pool);
    if (setenv(TG_SEGMENT_ENV, locator, 1) != 0) {
        perror("bench_segment_open: setenv");
        return NULL;
    }
    return locator;
}

uint64_t bench_segment_drain(void)
{
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t length;
    uint64_t popped = 0;
    while (segment && tg_queue_pop(tg_segment_queue(segment), record, &length) == APR_SUCCESS)
        popped++;
    return popped;
}

uint64_t bench_segment_lost(void)
{
    tg_queue_stats_t stats;
    if (!segment)
        return 0;
    tg_queue_stats(tg_segment_queue(segment), &stats);
    return tg_queue_lost(&stats);
}
