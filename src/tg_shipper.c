#include "tg_shipper.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

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

/* An exporter that the configuration turned on. */
typedef struct {
    const tg_exporter_t *exporter;
    void *state;
    tg_export_counters_t *counters;
    apr_time_t due; /* when it wants pumping (its pump's answer); 0: idle */
} open_exporter_t;

struct tg_shipper_t {
    tg_queue_t *queue;
    tg_export_config_t cfg;
    tg_shipper_counters_t *counters;
    uint32_t poll_limit;      /* records per poll, so a flood cannot pin it */
    unsigned char *record;    /* TG_QUEUE_SLOT_BYTES */
    apr_pool_t *batch_pool;   /* the batch's decoded spans, cleared once shipped */
    const tg_span_t **batch;  /* cfg.batch_spans slots */
    int batch_len;
    apr_time_t batch_started; /* when its first span was taken */
    apr_time_t queue_checked; /* when the queue's losses were last looked at */
    open_exporter_t open[TG_EXPORTER_COUNT]; /* each takes every record */
    int open_count;
};

/* Moves the deliveries of every exporter that is due on; returns the
 * soonest one wants it again (0: none has work left).  An idle exporter is
 * not called: the loop polls far more often than batches come. */
static apr_time_t pump_all(tg_shipper_t *shipper, apr_time_t now, apr_time_t deadline)
{
    apr_time_t soonest = 0;
    int i;
    for (i = 0; i < shipper->open_count; i++) {
        open_exporter_t *open = &shipper->open[i];
        if (open->due && open->due <= now)
            open->due = open->exporter->pump(open->state, now, deadline);
        if (open->due && (!soonest || open->due < soonest))
            soonest = open->due;
    }
    return soonest;
}

/* Hands the batch to every exporter, then moves their deliveries on. */
static void ship_batch(tg_shipper_t *shipper, apr_time_t now, apr_time_t deadline)
{
    int i;
    if (shipper->batch_len == 0)
        return;
    for (i = 0; i < shipper->open_count; i++) {
        open_exporter_t *open = &shipper->open[i];
        open->exporter->take(open->state, shipper->batch, shipper->batch_len, now);
        if (open->exporter->pump)
            open->due = now;
    }
    shipper->batch_len = 0;
    apr_pool_clear(shipper->batch_pool);
    pump_all(shipper, now, deadline);
}

/* Pops one record into the batch, shipping the batch when that fills it.
 * 0 when the queue had nothing ready. */
static int take_one(tg_shipper_t *shipper, apr_time_t now, apr_time_t deadline)
{
    apr_size_t len;
    tg_span_t *span;
    int i;
    if (tg_queue_pop(shipper->queue, shipper->record, &len) != APR_SUCCESS)
        return 0;
    /* Taken as soon as it is off the queue, before it is decoded: a shipper
     * killed from here on leaves it in flight, which is written off
     * (tg_shipper_counters_write_off), not lost uncounted. */
    for (i = 0; i < shipper->open_count; i++) {
        atomic_fetch_add(&shipper->open[i].counters->taken, 1);
        atomic_fetch_add(&shipper->open[i].counters->in_flight, 1);
    }
    if (tg_record_decode(shipper->record, len, shipper->batch_pool, &span) != APR_SUCCESS) {
        atomic_fetch_add(&shipper->counters->undecodable, 1);
        for (i = 0; i < shipper->open_count; i++)
            tg_export_settle(shipper->open[i].counters, &shipper->open[i].counters->failed, 1);
        /* Whatever the decoder left behind goes now, not with a batch that
         * may never come. */
        if (shipper->batch_len == 0)
            apr_pool_clear(shipper->batch_pool);
        return 1;
    }
    if (shipper->batch_len == 0)
        shipper->batch_started = now;
    shipper->batch[shipper->batch_len++] = span;
    if (shipper->batch_len == shipper->cfg.batch_spans)
        ship_batch(shipper, now, deadline);
    return 1;
}

/* Spans the queue lost before any shipper saw them (full, oversize, a dead
 * writer's, abandoned), reported in one line a minute while losses go on. */
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
           " too large, %" APR_UINT64_T_FMT " from dead writers, %" APR_UINT64_T_FMT " abandoned by "
           "their writers); a larger TomographQueueSize helps if the shipper keeps up",
           lost - reported, lost, stats.dropped_full, stats.dropped_oversize, stats.skipped_stale,
           stats.abandoned);
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
        pump_all(shipper, now, 0);
    report_queue_losses(shipper, now);
    return taken;
}

void tg_shipper_wait(tg_shipper_t *shipper, apr_interval_time_t timeout)
{
    int i;
    /* Only a delivery under way can end the wait early; without one, a
     * plain sleep. */
    for (i = 0; i < shipper->open_count; i++) {
        const open_exporter_t *open = &shipper->open[i];
        if (open->due && open->exporter->wait && open->exporter->wait(open->state, timeout))
            return;
    }
    apr_sleep(timeout);
}

void tg_shipper_drain(tg_shipper_t *shipper, apr_time_t deadline)
{
    apr_time_t now;
    int i;
    /* What stays queued is not lost: the queue outlives this process, and
     * the next shipper takes it. */
    while (apr_time_now() < deadline && take_one(shipper, apr_time_now(), deadline))
        ;
    ship_batch(shipper, apr_time_now(), deadline);
    while ((now = apr_time_now()) < deadline) {
        apr_time_t due = pump_all(shipper, now, deadline), wake;
        if (!due)
            break;
        /* Until a backoff ends, or a delivery's progress wakes us. */
        wake = due > now && due < deadline ? due : deadline;
        tg_shipper_wait(shipper, wake - now < IDLE_WAIT_MAX ? wake - now : IDLE_WAIT_MAX);
    }
    for (i = 0; i < shipper->open_count; i++)
        if (shipper->open[i].exporter->give_up)
            shipper->open[i].exporter->give_up(shipper->open[i].state);
}

apr_status_t tg_shipper_create(tg_shipper_t **shipper_out, tg_queue_t *queue,
                               const tg_export_config_t *cfg,
                               tg_shipper_counters_t *counters, apr_pool_t *pool)
{
    tg_shipper_t *shipper;
    tg_queue_stats_t stats;
    apr_status_t rv;
    int i;
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
    for (i = 0; rv == APR_SUCCESS && i < TG_EXPORTER_COUNT; i++) {
        open_exporter_t *open = &shipper->open[shipper->open_count];
        if (!tg_exporters[i]->target(cfg, pool))
            continue;
        open->exporter = tg_exporters[i];
        open->counters = &counters->exporters[i];
        rv = open->exporter->open(open->exporter, &open->state, cfg, open->counters, pool);
        if (rv == APR_SUCCESS)
            shipper->open_count++;
    }
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
                    apr_interval_time_t drain_budget)
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
    tg_shipper_drain(shipper, apr_time_now() + drain_budget);
}

void tg_shipper_counters_write_off(tg_shipper_counters_t *counters)
{
    int i;
    for (i = 0; i < TG_EXPORTER_COUNT; i++) {
        uint64_t lost = atomic_exchange(&counters->exporters[i].in_flight, 0);
        atomic_fetch_add(&counters->exporters[i].failed, lost);
    }
}
