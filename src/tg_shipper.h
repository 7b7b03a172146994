/* The shipper: drains the span queue and delivers each span to every
 * configured exporter (Zipkin v2 over HTTP, statsd over UDP, the span file).
 *
 * It runs in the daemon child that httpd starts (mod_tomograph.c), never in
 * the request path, so it may block on the network; its counters live in
 * shared memory so any httpd child can report them in mod_status. */
#ifndef TG_SHIPPER_H
#define TG_SHIPPER_H

#include <apr_errno.h>
#include <apr_file_io.h>
#include <apr_network_io.h>
#include <apr_pools.h>
#include <signal.h>
#include <stdatomic.h>

#include "tg_queue.h"

/* One exporter's tally, in spans. */
typedef struct {
    _Atomic uint64_t sent;
    _Atomic uint64_t failed;
} tg_export_counters_t;

typedef struct {
    tg_export_counters_t zipkin;
    tg_export_counters_t statsd;
    tg_export_counters_t file;
    _Atomic uint64_t undecodable; /* records that failed tg_record_decode */
} tg_shipper_counters_t;

typedef struct {
    const char *zipkin_url;       /* NULL: no Zipkin */
    const char *statsd_host;      /* NULL: no statsd */
    apr_port_t statsd_port;
    apr_file_t *span_file;        /* NULL: no span file; opened by the caller, in append mode */
    int batch_spans;              /* most spans in one Zipkin POST */
    apr_interval_time_t batch_interval; /* longest a span waits for its batch */
    long connect_timeout_ms;
    long request_timeout_ms;
    apr_size_t statsd_packet;     /* largest UDP payload */
} tg_shipper_config_t;

typedef struct tg_shipper_t tg_shipper_t;

/* Fills cfg with the defaults: batches of 100 spans or 200 ms, 1 s connect
 * and 5 s request timeouts, 1432-byte statsd datagrams, no exporter. */
void tg_shipper_config_defaults(tg_shipper_config_t *cfg);

/* Everything the shipper holds is released when pool is cleared. */
apr_status_t tg_shipper_create(tg_shipper_t **shipper, tg_queue_t *queue,
                               const tg_shipper_config_t *cfg,
                               tg_shipper_counters_t *counters, apr_pool_t *pool);

/* Takes every record queued now, and ships each batch that is full or has
 * waited batch_interval.  Returns how many records it took. */
int tg_shipper_poll(tg_shipper_t *shipper, apr_time_t now);

/* Ships whatever is queued or batched; gives up on what is left at deadline. */
void tg_shipper_drain(tg_shipper_t *shipper, apr_time_t deadline);

/* The daemon's loop: polls, sleeping briefly while the queue is idle, until
 * *stop is set; then drains for at most drain_budget. */
void tg_shipper_run(tg_shipper_t *shipper, volatile sig_atomic_t *stop,
                    apr_interval_time_t drain_budget);

#endif
