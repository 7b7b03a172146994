/* The shipper: drains the span queue and delivers each span to every
 * configured exporter (Zipkin v2 and OTLP/HTTP JSON over HTTP, statsd over
 * UDP, the span file).
 *
 * It runs in the daemon child that httpd starts (mod_tomograph.c), never in
 * the request path.  It never blocks on a collector: a POST runs in the
 * background while the shipper keeps draining the queue, and a collector
 * that is away is retried with exponential backoff (100 ms doubling to 10 s,
 * with jitter) while its batches wait in a bounded buffer.  statsd and the
 * span file do not wait for it.  Its counters live in shared memory so any
 * httpd child can report them in mod_status. */
#ifndef TG_SHIPPER_H
#define TG_SHIPPER_H

#include <apr_errno.h>
#include <apr_file_io.h>
#include <apr_network_io.h>
#include <apr_pools.h>
#include <signal.h>
#include <stdatomic.h>

#include "tg_queue.h"

/* One exporter's tally, in spans.  Whenever the shipper is between two
 * calls (poll, drain, run), for each exporter, exactly:
 *
 *     taken == sent + failed + dropped + in_flight
 *
 * and once the shipper has drained, in_flight is 0.  A reader in another
 * process may catch the shipper in the middle of a step; the counters then
 * disagree for that instant only. */
typedef struct {
    _Atomic uint64_t taken;     /* handed to the exporter, decoded from the queue */
    _Atomic uint64_t sent;      /* delivered: a 2xx answer, a datagram sent, a line written */
    _Atomic uint64_t failed;    /* given up: refused by the collector (3xx, 4xx but 429), retried
                                 * max_attempts times, undecodable or unencodable, not
                                 * delivered by drain's deadline, a failed datagram or
                                 * write, or written off with a shipper that died */
    _Atomic uint64_t dropped;   /* pushed out of a full retry buffer, oldest first */
    _Atomic uint64_t in_flight; /* now: batched or buffered, not yet settled (a gauge) */
    _Atomic uint64_t retried;   /* kept for another try after a failed POST (outside the
                                 * identity: a span retried twice counts twice) */
} tg_export_counters_t;

typedef struct {
    tg_export_counters_t zipkin;
    tg_export_counters_t otlp;
    tg_export_counters_t statsd;
    tg_export_counters_t file;
    _Atomic uint64_t undecodable; /* records that failed tg_record_decode: each exporter took
                                   * them and failed them */
    /* The last report of spans the queue lost, kept here so that a new
     * shipper (after a restart) goes on from it instead of starting over. */
    _Atomic uint64_t queue_lost_reported;
    _Atomic int64_t queue_reported_at;
} tg_shipper_counters_t;

typedef struct {
    const char *zipkin_url;       /* NULL: no Zipkin */
    const char *otlp_url;         /* NULL: no OTLP, e.g. http://127.0.0.1:4318/v1/traces */
    const char *statsd_host;      /* NULL: no statsd */
    apr_port_t statsd_port;
    apr_file_t *span_file;        /* NULL: no span file; opened by the caller, in append mode */
    int batch_spans;              /* most spans in one batch (and one POST) */
    apr_interval_time_t batch_interval; /* longest a span waits for its batch */
    apr_size_t batch_bytes;       /* largest POST body: a batch that encodes larger is
                                   * split (a single span larger still goes, alone) */
    int buffer_spans;             /* spans an HTTP exporter keeps waiting for their POST,
                                   * beyond those on the wire; at least batch_spans */
    int max_attempts;             /* POSTs of one batch before it is given up; 0: no limit
                                   * (only the buffer bounds the retries) */
    long connect_timeout_ms;
    long request_timeout_ms;
    apr_size_t statsd_packet;     /* largest UDP payload */
} tg_shipper_config_t;

typedef struct tg_shipper_t tg_shipper_t;

/* Fills cfg with the defaults: batches of 512 spans, 1 s or 1 MiB, a
 * buffer of 10000 spans per HTTP exporter, 10 attempts per batch (about half
 * a minute of backoff), 1 s connect and 5 s request timeouts, 1432-byte
 * statsd datagrams, no exporter. */
void tg_shipper_config_defaults(tg_shipper_config_t *cfg);

/* Everything the shipper holds is released when pool is cleared; what it
 * still held is then neither counted nor sent (drain first).  APR_EINVAL
 * for a configuration out of bounds. */
apr_status_t tg_shipper_create(tg_shipper_t **shipper, tg_queue_t *queue,
                               const tg_shipper_config_t *cfg,
                               tg_shipper_counters_t *counters, apr_pool_t *pool);

/* Takes every record queued now, ships each batch that is full or has
 * waited batch_interval, and moves the POSTs on: starts the next one when
 * its exporter's backoff has passed at `now`, settles those that ended.
 * Never waits for a collector.  Returns how many records it took. */
int tg_shipper_poll(tg_shipper_t *shipper, apr_time_t now);

/* Sleeps at most `timeout`, waking early when a POST makes progress. */
void tg_shipper_wait(tg_shipper_t *shipper, apr_interval_time_t timeout);

/* Ships whatever is queued, batched or buffered, each POST bounded by the
 * time left; at deadline, counts what is left as failed.  The records still
 * queued then stay there for the next shipper. */
void tg_shipper_drain(tg_shipper_t *shipper, apr_time_t deadline);

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
