/* Delivery over HTTP, shared by the exporters that POST a batch whole
 * (Zipkin, OTLP): they differ by their name, their URL and their encoder
 * only, and their table is TG_EXPORT_HTTP(...).
 *
 * A batch is encoded into POST bodies of at most batch_bytes, kept in a ring
 * until delivered, the oldest first, at most buffer_spans of them waiting
 * beside the one on the wire (the oldest dropped beyond).  A POST runs in
 * the background (tg_http); a failure is retried with exponential backoff
 * (100 ms doubling to 10 s, with jitter), back to none after a success,
 * until max_attempts; a refusal (3xx, 4xx but 429) is not retried.
 *
 * The HTTP exporters of a process share one agent (libcurl's multi handle),
 * so that one wait covers all their POSTs: drive them from one thread. */
#ifndef TG_EXPORT_HTTP_H
#define TG_EXPORT_HTTP_H

#include "tg_buf.h"
#include "tg_exporter.h"

/* What an HTTP exporter's spec (tg_exporter_t) points to. */
typedef struct {
    /* Appends spans[0..n) as one POST body; sets out->failed when memory
     * runs out. */
    void (*encode)(tg_buf_t *out, const tg_span_t *const *spans, int n);
} tg_export_http_spec_t;

apr_status_t tg_export_http_open(const tg_exporter_t *self, void **state,
                                 const tg_export_config_t *cfg, tg_export_counters_t *counters,
                                 apr_pool_t *pool);
void tg_export_http_take(void *state, const tg_span_t *const *spans, int n, apr_time_t now);
apr_time_t tg_export_http_pump(void *state, apr_time_t now, apr_time_t deadline);
int tg_export_http_wait(void *state, apr_interval_time_t timeout);
int tg_export_http_give_up(void *state);

/* The table of an HTTP exporter: its name, the function that finds its URL
 * in the configuration (tg_exporter_t's target), and a
 * tg_export_http_spec_t. */
#define TG_EXPORT_HTTP(name_, target_, spec_)                                                    \
    {                                                                                            \
        .name = (name_), .target = (target_), .open = tg_export_http_open,                       \
        .take = tg_export_http_take, .pump = tg_export_http_pump, .wait = tg_export_http_wait,   \
        .give_up = tg_export_http_give_up, .spec = (spec_)                                       \
    }

#endif
