/* The shared segment of an httpd instance: the counters every process
 * writes, the shipper's, and the span queue, in one anonymous shared
 * mapping that httpd's parent makes once and every process it forks
 * inherits (its children, mod_wsgi's daemons, the shipper).
 *
 * A process that did not make it finds it through its locator, a string
 * the parent puts in its environment (TG_SEGMENT_ENV) before it forks: the
 * address, the size and a random cookie.  The environment outlives the
 * mapping (a program an app runs inherits the one and not the other), so
 * tg_segment_attach believes a locator only when the address is a shared
 * mapping of this process, large enough, whose cookie and layout match.
 *
 * What a span costs there: tg_segment_enqueue encodes it (tg_record) and
 * pushes it, never waiting; a full queue drops it and counts it. */
#ifndef TG_SEGMENT_H
#define TG_SEGMENT_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tg_queue.h"
#include "tg_sampling.h"
#include "tg_shipper.h"
#include "tg_span.h"

#define TG_SEGMENT_ENV "TOMOGRAPH_SEGMENT"

/* Names the layout of tg_segment_t and of the queue's cells: a process built
 * with another (an old module after an upgrade, an app's library of another
 * version) neither reads nor writes the segment. */
#define TG_SEGMENT_LAYOUT 6

typedef struct {
    uint64_t cookie; /* random; the locator names it */
    uint32_t layout; /* TG_SEGMENT_LAYOUT */
    uint32_t queue_records;
    uint64_t size;   /* of the whole mapping the locator names */
    /* The spans created are the queue's records (tg_queue_stats: created),
     * not a count of their own: one locked add fewer at every span. */
    alignas(64) tg_rate_limit_t sample_limit; /* TomographSampleLimit */
    /* The generation's shipper as the parent last saw it, for mod_status. */
    _Atomic int64_t shipper_pid;
    _Atomic int shipper_running;
    alignas(64) tg_shipper_counters_t shipper;
    alignas(64) unsigned char queue[];
} tg_segment_t;

/* Bytes of memory a segment with a queue of `records` needs, room to align
 * it included. */
apr_size_t tg_segment_footprint(uint32_t records);

/* Formats memory (tg_segment_footprint(records) bytes) as an empty segment
 * and returns it, aligned within memory. */
tg_segment_t *tg_segment_create(void *memory, uint32_t records);

static inline tg_queue_t *tg_segment_queue(tg_segment_t *segment)
{
    return (tg_queue_t *)(void *)segment->queue;
}

/* The locator of segment, made in pool, for TG_SEGMENT_ENV. */
const char *tg_segment_locator(const tg_segment_t *segment, apr_pool_t *pool);

/* The segment a locator names, in this process.  APR_EINVAL when the
 * locator does not parse, APR_ENOENT when no shared mapping of this process
 * holds it, APR_EMISMATCH when the memory there is not that segment (another
 * cookie or layout). */
apr_status_t tg_segment_attach(const char *locator, tg_segment_t **segment);

/* Encodes a finished span and queues it; never blocks.  APR_SUCCESS, or the
 * queue's error (full, too large: counted dropped).  Either way the span
 * counts created (tg_queue_stats), once its push is over: a writer killed
 * before costs that span, uncounted. */
apr_status_t tg_segment_enqueue(tg_segment_t *segment, const tg_span_t *span);

#endif
