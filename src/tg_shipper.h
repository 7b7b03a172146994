/* The shipper: drains the span queue in batches and hands each batch to
 * the exporters the configuration turns on (tg_export_set.h), in a loop
 * that moves their deliveries on, with the accounting of what the queue
 * gave it.
 *
 * It runs in the daemon child that httpd starts (mod_tomograph.c), never in
 * the request path.  It never blocks on a collector: the exporters deliver
 * in the background (tg_export_http.h) while it keeps draining the queue.
 * Its counters live in shared memory so any httpd child can report them in
 * mod_status. */
#ifndef TG_SHIPPER_H
#define TG_SHIPPER_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <signal.h>
#include <stdatomic.h>

#include "tg_exporter.h"
#include "tg_queue.h"

/* The shipper's counters, in shared memory: an exporter's at its index in
 * tg_exporters[]. */
typedef struct {
    tg_export_counters_t exporters[TG_EXPORTER_COUNT];
    _Atomic uint64_t undecodable; /* records that failed tg_record_decode: each exporter took
                                   * them and failed them */
    /* The last report of spans the queue lost, kept here so that a new
     * shipper (after a restart) goes on from it instead of starting over. */
    _Atomic uint64_t queue_lost_reported;
    _Atomic int64_t queue_reported_at;
} tg_shipper_counters_t;

typedef struct tg_shipper_t tg_shipper_t;

/* Opens each exporter of tg_exporters[] that cfg turns on, its counters
 * those at its index.  Everything the shipper holds is released when pool
 * is cleared; what it still held is then neither counted nor sent (drain
 * first).  APR_EINVAL for a configuration out of bounds; an exporter's
 * error when one cannot open (it has logged why). */
apr_status_t tg_shipper_create(tg_shipper_t **shipper, tg_queue_t *queue,
                               const tg_export_config_t *cfg,
                               tg_shipper_counters_t *counters, apr_pool_t *pool);

/* Takes every record queued now, ships each batch that is full or has
 * waited batch_interval, and moves the exporters' deliveries on (a POST
 * starts once its backoff has passed at `now`).  Never waits for a
 * collector.  Returns how many records it took. */
int tg_shipper_poll(tg_shipper_t *shipper, apr_time_t now);

/* Sleeps at most `timeout`, waking early when a delivery makes progress. */
void tg_shipper_wait(tg_shipper_t *shipper, apr_interval_time_t timeout);

/* Ships whatever is queued, batched or buffered, each delivery bounded by
 * the time left, until `started` + *budget_ms; then counts what is left as
 * failed.  The budget is read at each step, so that a signal handler may cut
 * a drain under way.  The records still queued then stay there for the next
 * shipper. */
void tg_shipper_drain(tg_shipper_t *shipper, apr_time_t started,
                      const volatile sig_atomic_t *budget_ms);

/* What the last drain could not deliver by its deadline (counted failed), for
 * the host to name in one line: "Zipkin 512, OTLP 512", each exporter that
 * lost spans; NULL when none did. */
const char *tg_shipper_undelivered(const tg_shipper_t *shipper, apr_pool_t *pool);

/* For a process that runs the daemon's loop: what it frees stays in its heap
 * for the next batch instead of going back to the kernel (glibc's
 * thresholds; nothing elsewhere).  Process-wide: call it in that process
 * alone, before the loop. */
void tg_shipper_keep_freed_memory(void);

/* The daemon's loop: polls, waiting briefly while the queue is idle, until
 * *stop is set; then drains for at most *drain_budget_ms from then.  The
 * budget is read as the drain goes, so that a signal handler may cut a drain
 * under way (one past its new budget ends at once). */
void tg_shipper_run(tg_shipper_t *shipper, volatile sig_atomic_t *stop,
                    volatile sig_atomic_t *drain_budget_ms);

/* For a shipper that died without draining (killed): what it held is lost,
 * so each exporter's in_flight moves to failed.  Call it once the dead
 * shipper is reaped and before its successor starts. */
void tg_shipper_counters_write_off(tg_shipper_counters_t *counters);

#endif
