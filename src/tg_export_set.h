/* The exporters that a configuration turns on, driven together: what a
 * process that ships spans (the shipper, an application) holds of them.
 *
 * Every exporter of the set takes every span, and settles it in its own
 * counters.  The caller counts spans taken (tg_export_set_count_taken)
 * before it hands them over, or fails them (tg_export_set_fail) when it
 * cannot; between two calls each exporter's identity then holds
 * (tg_export_counters_t).  Never blocks but in tg_export_set_wait and
 * tg_export_set_drain.  One thread at a time. */
#ifndef TG_EXPORT_SET_H
#define TG_EXPORT_SET_H

#include <signal.h>

#include "tg_exporter.h"

typedef struct tg_export_set_t tg_export_set_t;

/* Opens each exporter of tg_exporters[] that cfg turns on; the i-th of the
 * table counts in counters[i].  Everything is released with pool (what an
 * exporter still held then neither counted nor sent: drain first).  The
 * error of the first exporter that cannot open (it has logged why). */
apr_status_t tg_export_set_open(tg_export_set_t **set, const tg_export_config_t *cfg,
                                tg_export_counters_t counters[TG_EXPORTER_COUNT],
                                apr_pool_t *pool);

/* n more spans for every exporter of the set: taken, and in flight. */
void tg_export_set_count_taken(tg_export_set_t *set, int n);

/* n spans counted taken that no exporter will get: failed by each. */
void tg_export_set_fail(tg_export_set_t *set, int n);

/* Hands spans[0..n) (n at most cfg->batch_spans, counted taken) to every
 * exporter, then moves the deliveries on as tg_export_set_pump does. */
void tg_export_set_take(tg_export_set_t *set, const tg_span_t *const *spans, int n,
                        apr_time_t now, apr_time_t deadline);

/* Moves on the deliveries that are due at `now`, none running past
 * deadline (0: none).  Returns when it wants calling again: 0 when no
 * exporter has work left. */
apr_time_t tg_export_set_pump(tg_export_set_t *set, apr_time_t now, apr_time_t deadline);

/* Sleeps at most `timeout`, waking early when a delivery makes progress. */
void tg_export_set_wait(tg_export_set_t *set, apr_interval_time_t timeout);

/* Delivers what the exporters hold, each delivery bounded by the time
 * left, until `started` + *budget_ms; then what is left counts failed.  The
 * budget is read at each step, so that a signal handler may cut a drain
 * under way.  A delivery whose next try (a backoff) falls past the end is
 * not waited for. */
void tg_export_set_drain(tg_export_set_t *set, apr_time_t started,
                         const volatile sig_atomic_t *budget_ms);

/* What the last drain could not deliver (counted failed), for the host to
 * name in one line: "Zipkin 512, OTLP 512", each exporter that lost spans;
 * NULL when none did. */
const char *tg_export_set_undelivered(const tg_export_set_t *set, apr_pool_t *pool);

#endif
