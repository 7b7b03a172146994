#include "tg_shipper.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "tg_export_set.h"
#include "tg_log.h"
#include "tg_record.h"

/* Between two looks at the queue the loop waits this long: the least after
 * a look that found the queue a quarter full, doubling up to the most while
 * looks find less.  Spans wait for their batch for up to a second anyway,
 * and the queue holds thousands: at ten thousand spans a second, a look
 * every 20 ms takes 200 of them, where one every 5 ms took four wake-ups for
 * the same work. */
#define IDLE_WAIT_MIN apr_time_from_msec(5)
#define IDLE_WAIT_MAX apr_time_from_msec(20)

struct tg_shipper_t {
    tg_queue_t *queue;
    tg_export_config_t cfg;
    tg_shipper_counters_t *counters;
    tg_export_set_t *exporters; /* each takes every record */
    uint32_t poll_limit;        /* records per poll, so a flood cannot pin it */
    unsigned char *record;      /* TG_QUEUE_SLOT_BYTES */
    apr_pool_t *batch_pool;     /* the batch's decoded spans, cleared once shipped */
    const tg_span_t **batch;    /* cfg.batch_spans slots */
    int batch_len;
    apr_time_t batch_started;   /* when its first span was taken */
    apr_time_t queue_checked;   /* when the queue's losses were last looked at */
};

/* Hands the batch to every exporter, which moves their deliveries on. */
static void ship_batch(tg_shipper_t *shipper, apr_time_t now, apr_time_t deadline)
{
    if (shipper->batch_len == 0)
        return;
    tg_export_set_take(shipper->exporters, shipper->batch, shipper->batch_len, now, deadline);
    shipper->batch_len = 0;
    apr_pool_clear(shipper->batch_pool);
}

/* Pops one record into the batch, shipping the batch when that fills it.
 * 0 when the queue had nothing ready. */
static int take_one(tg_shipper_t *shipper, apr_time_t now, apr_time_t deadline)
{
    apr_size_t len;
    tg_span_t *span;
    if (tg_queue_pop(shipper->queue, shipper->record, &len) != APR_SUCCESS)
        return 0;
    /* Taken as soon as it is off the queue, before it is decoded: a shipper
     * killed from here on leaves it in flight, which is written off
     * (tg_shipper_counters_write_off), not lost uncounted. */
    tg_export_set_count_taken(shipper->exporters, 1);
    if (tg_record_decode(shipper->record, len, shipper->batch_pool, &span) != APR_SUCCESS) {
        atomic_fetch_add(&shipper->counters->undecodable, 1);
        tg_export_set_fail(shipper->exporters, 1);
        /* Whatever the decoder left behind goes now, not with a batch that
         * may never come. */
        if (shipper->batch_len == 0)
            apr_pool_clear(shipper->batch_pool);
        return 1;
    }
    /* The record carried the transfer as numbers; the exporters show its
     * moments as notes (the lengths they give as tags, tg_span_tag_at). */
    tg_span_spell_out_transfer(span);
    if (shipper->batch_len == 0)
        shipper->batch_started = now;
    shipper->batch[shipper->batch_len++] = span;
    if (shipper->batch_len == shipper->cfg.batch_spans)
        ship_batch(shipper, now, deadline);
    return 1;
}

/* Spans the queue lost before any shipper saw them (full, oversize, a dead
 * writer's), reported in one line a minute while losses go on. */
static void report_queue_losses(tg_shipper_t *shipper, apr_time_t now)
{
    tg_shipper_counters_t *counters = shipper->counters;
    tg_queue_stats_t stats;
    uint64_t lost, reported;
    apr_time_t reported_at;
    if (now - shipper->queue_checked < APR_USEC_PER_SEC)
        return;
    shipper->queue_checked = now;
    tg_queue_stats(shipper->queue, &stats);
    lost = tg_queue_lost(&stats);
    reported = atomic_load(&counters->queue_lost_reported);
    reported_at = atomic_load(&counters->queue_reported_at);
    if (lost == reported || (reported_at && now - reported_at < TG_WARN_INTERVAL))
        return;
    tg_log(TG_LOG_WARNING, APR_SUCCESS,
           TGLOGNO(03110) "the span queue lost %" APR_UINT64_T_FMT " spans since the last report "
           "(%" APR_UINT64_T_FMT " in all: %" APR_UINT64_T_FMT " when full, %" APR_UINT64_T_FMT
           " too large, %" APR_UINT64_T_FMT " from dead writers); a larger TomographQueueSize "
           "helps if the shipper keeps up",
           lost - reported, lost, stats.dropped_full, stats.dropped_oversize, stats.skipped_stale);
    atomic_store(&counters->queue_lost_reported, lost);
    atomic_store(&counters->queue_reported_at, now);
}

int tg_shipper_poll(tg_shipper_t *shipper, apr_time_t now)
{
    int taken = 0;
    while ((uint32_t)taken < shipper->poll_limit && take_one(shipper, now, 0))
        taken++;
    if (shipper->batch_len && now - shipper->batch_started >= shipper->cfg.batch_interval)
        ship_batch(shipper, now, 0);
    else
        tg_export_set_pump(shipper->exporters, now, 0);
    report_queue_losses(shipper, now);
    return taken;
}

void tg_shipper_wait(tg_shipper_t *shipper, apr_interval_time_t timeout)
{
    tg_export_set_wait(shipper->exporters, timeout);
}

void tg_shipper_drain(tg_shipper_t *shipper, apr_time_t started,
                      const volatile sig_atomic_t *budget_ms)
{
    apr_time_t now, deadline;
    /* What stays queued is not lost: the queue outlives this process, and
     * the next shipper takes it. */
    while ((now = apr_time_now()) < (deadline = started + apr_time_from_msec(*budget_ms))
           && take_one(shipper, now, deadline))
        ;
    ship_batch(shipper, apr_time_now(), started + apr_time_from_msec(*budget_ms));
    tg_export_set_drain(shipper->exporters, started, budget_ms);
}

const char *tg_shipper_undelivered(const tg_shipper_t *shipper, apr_pool_t *pool)
{
    return tg_export_set_undelivered(shipper->exporters, pool);
}

apr_status_t tg_shipper_create(tg_shipper_t **shipper_out, tg_queue_t *queue,
                               const tg_export_config_t *cfg,
                               tg_shipper_counters_t *counters, apr_pool_t *pool)
{
    tg_shipper_t *shipper;
    tg_queue_stats_t stats;
    apr_status_t rv;
    if (!tg_export_config_is_valid(cfg))
        return APR_EINVAL;
    shipper = apr_pcalloc(pool, sizeof(*shipper));
    shipper->queue = queue;
    shipper->cfg = *cfg;
    shipper->counters = counters;
    tg_queue_stats(queue, &stats);
    shipper->poll_limit = stats.capacity;
    shipper->record = apr_palloc(pool, TG_QUEUE_SLOT_BYTES);
    shipper->batch = apr_pcalloc(pool, sizeof(*shipper->batch) * (apr_size_t)cfg->batch_spans);
    rv = apr_pool_create(&shipper->batch_pool, pool);
    if (rv == APR_SUCCESS)
        rv = tg_export_set_open(&shipper->exporters, cfg, counters->exporters, pool);
    if (rv != APR_SUCCESS)
        return rv;
    *shipper_out = shipper;
    return APR_SUCCESS;
}

/* Each POST frees a payload of a few hundred KB, and libcurl its upload
 * buffer, which the next one takes again.  Given back (glibc trims the heap
 * past 1 MB free), the next POST faulted every page of it in again: at 10k
 * spans/s, 1,000 page faults a second, half the shipper's time. */
#define FREED_MEMORY_KEPT (8 * 1024 * 1024)

void tg_shipper_keep_freed_memory(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, FREED_MEMORY_KEPT);
    mallopt(M_TRIM_THRESHOLD, FREED_MEMORY_KEPT);
#endif
}

void tg_shipper_run(tg_shipper_t *shipper, volatile sig_atomic_t *stop,
                    volatile sig_atomic_t *drain_budget_ms)
{
    apr_interval_time_t idle_wait = 0;
    while (!*stop) {
        int taken = tg_shipper_poll(shipper, apr_time_now());
        /* A poll takes all that is queued, up to its limit: only when it
         * reached that is more waiting. */
        if ((uint32_t)taken >= shipper->poll_limit)
            continue;
        if ((uint32_t)taken >= shipper->poll_limit / 4)
            idle_wait = IDLE_WAIT_MIN;
        else
            idle_wait = idle_wait ? idle_wait * 2 : IDLE_WAIT_MIN;
        if (idle_wait > IDLE_WAIT_MAX)
            idle_wait = IDLE_WAIT_MAX;
        tg_shipper_wait(shipper, idle_wait);
    }
    tg_shipper_drain(shipper, apr_time_now(), drain_budget_ms);
}

void tg_shipper_counters_write_off(tg_shipper_counters_t *counters)
{
    int i;
    for (i = 0; i < TG_EXPORTER_COUNT; i++) {
        uint64_t lost = atomic_exchange(&counters->exporters[i].in_flight, 0);
        atomic_fetch_add(&counters->exporters[i].failed, lost);
    }
}
