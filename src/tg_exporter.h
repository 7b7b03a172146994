/* The exporters: where finished spans go (Zipkin, OTLP, statsd, the span
 * file), behind one table of operations.
 *
 * An exporter takes decoded spans, never queue records: it depends neither
 * on httpd nor on the shared-memory queue, so that a process of its own (the
 * shipper, tg_shipper.h) or an application can drive it, through
 * tg_export_set.h: every exporter of tg_exporters[] that the configuration
 * turns on, each batch handed to all of them.
 *
 * Adding an exporter: a file tg_export_<name>.c (listed in Makefile.am)
 * that defines `const tg_exporter_t tg_exporter_<name>`, and its line in
 * TG_EXPORTERS below.  Its counters, its mod_status lines and its part of
 * the start-up line follow from the table.
 *
 * Accounting: each exporter settles every span it was given exactly once,
 * as sent, failed or dropped (see tg_export_counters_t); the caller counts
 * them taken and in flight before handing them over. */
#ifndef TG_EXPORTER_H
#define TG_EXPORTER_H

#include <apr_errno.h>
#include <apr_file_io.h>
#include <apr_network_io.h>
#include <apr_pools.h>
#include <apr_time.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tg_span.h"

/* Every exporter, one line each, in the order of mod_status and of the
 * start-up line.  The name is that of the file (tg_export_<name>.c), of the
 * table (tg_exporter_<name>) and of the index into tg_exporters[]
 * (TG_EXPORTER_<name>). */
#define TG_EXPORTERS(X) \
    X(zipkin)           \
    X(otlp)             \
    X(statsd)           \
    X(file)

#define TG_EXPORTER_INDEX(name) TG_EXPORTER_##name,
enum { TG_EXPORTERS(TG_EXPORTER_INDEX) TG_EXPORTER_COUNT };
#undef TG_EXPORTER_INDEX

/* What the exporters are given: which are on and where they send, and the
 * bounds of their batches and buffers. */
typedef struct {
    const char *zipkin_url;       /* NULL: no Zipkin */
    const char *otlp_url;         /* NULL: no OTLP, e.g. http://127.0.0.1:4318/v1/traces */
    const char *statsd_host;      /* NULL: no statsd */
    apr_port_t statsd_port;
    apr_file_t *span_file;        /* NULL: no span file; opened by the caller, in append mode */
    const char *span_path;        /* the span file's name, for the log (NULL: unnamed) */
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
} tg_export_config_t;

/* Fills cfg with the defaults: batches of 512 spans, 1 s or 1 MiB, a
 * buffer of 10000 spans per HTTP exporter, 10 attempts per batch (about half
 * a minute of backoff), 1 s connect and 5 s request timeouts, 1432-byte
 * statsd datagrams, no exporter. */
void tg_export_config_defaults(tg_export_config_t *cfg);

/* 1 when every bound of cfg is within range (batches of a span at least,
 * a buffer that holds a batch, positive timeouts...). */
int tg_export_config_is_valid(const tg_export_config_t *cfg);

/* One exporter's tally, in spans.  Whenever its driver is between two
 * calls, exactly:
 *
 *     taken == sent + failed + dropped + in_flight
 *
 * and once it has drained, in_flight is 0.  The counters may live in shared
 * memory: a reader in another process may catch the exporter in the middle
 * of a step; they then disagree for that instant only. */
typedef struct {
    _Atomic uint64_t taken;     /* handed to the exporter */
    _Atomic uint64_t sent;      /* delivered: a 2xx answer, a datagram sent, a line written */
    _Atomic uint64_t failed;    /* given up: refused by the collector (3xx, 4xx but 429), retried
                                 * max_attempts times, undecodable or unencodable, not
                                 * delivered by drain's deadline, a failed datagram or
                                 * write, or written off with a shipper that died */
    _Atomic uint64_t dropped;   /* pushed out of a full retry buffer, oldest first */
    _Atomic uint64_t in_flight; /* now: batched or buffered, not yet settled (a gauge) */
    _Atomic uint64_t retried;   /* kept for another try after a failed POST (outside the
                                 * identity: a span retried twice counts twice) */
    _Atomic int64_t last_sent;  /* when spans were last delivered (apr_time_t); 0: never */
} tg_export_counters_t;

typedef struct tg_exporter_t tg_exporter_t;

/* An exporter's operations.  `state` is what open made; it and everything
 * the exporter holds are released with open's pool (what it still held is
 * then neither counted nor sent: give it up first).  The NULL ones are
 * exporters that deliver within take. */
struct tg_exporter_t {
    /* As mod_status shows it: TomographZipkinSent... */
    const char *name;
    /* Where cfg sends it ("http://...", "host:port", a path), for the log;
     * NULL when cfg leaves it off. */
    const char *(*target)(const tg_export_config_t *cfg, apr_pool_t *pool);
    /* Opens it for cfg, which target found on.  Logs why it cannot. */
    apr_status_t (*open)(const tg_exporter_t *self, void **state, const tg_export_config_t *cfg,
                         tg_export_counters_t *counters, apr_pool_t *pool);
    /* Takes spans[0..n) (n at most cfg->batch_spans), which the caller has
     * counted taken and in flight, and which it may free on return. */
    void (*take)(void *state, const tg_span_t *const *spans, int n, apr_time_t now);
    /* Moves its deliveries on without blocking, none of them running past
     * deadline (0: none).  Returns when it wants pumping again: 0 when it
     * has nothing left, `now` when something is under way (its progress ends
     * a wait), else when its backoff ends. */
    apr_time_t (*pump)(void *state, apr_time_t now, apr_time_t deadline);
    /* With something under way: waits at most timeout for it, or any other
     * delivery of its kind, to progress, and returns 1.  0 at once
     * otherwise. */
    int (*wait)(void *state, apr_interval_time_t timeout);
    /* At a deadline: what it still holds is counted failed, and what is
     * under way abandoned.  Returns how many spans that was, for the host to
     * name (tg_export_set_undelivered). */
    int (*give_up)(void *state);
    /* Read by the functions above through self: the HTTP exporters' encoder
     * (tg_export_http.h). */
    const void *spec;
};

#define TG_EXPORTER_DECLARE(name) extern const tg_exporter_t tg_exporter_##name;
TG_EXPORTERS(TG_EXPORTER_DECLARE)
#undef TG_EXPORTER_DECLARE

/* The table, in the order of TG_EXPORTERS. */
extern const tg_exporter_t *const tg_exporters[TG_EXPORTER_COUNT];

/* 1 when url is an http:// or https:// URL naming a host, without control
 * bytes: what TomographZipkin and TomographOTLP (and the library's
 * TOMOGRAPH_ZIPKIN, TOMOGRAPH_OTLP) accept. */
int tg_export_url_is_valid(const char *url, apr_pool_t *pool);

/* A statsd daemon's "<host>:<port>" (TomographStatsd, TOMOGRAPH_STATSD):
 * APR_EINVAL unless it names a host and a port from 1 to 65535. */
apr_status_t tg_export_parse_statsd(const char *hostport, const char **host, apr_port_t *port,
                                    apr_pool_t *pool);

/* How many exporters of the table cfg turns on. */
int tg_export_count_on(const tg_export_config_t *cfg, apr_pool_t *pool);

/* "Zipkin http://..., OTLP off, Statsd 127.0.0.1:8125, File off": each
 * exporter of the table and where cfg sends it. */
const char *tg_export_describe(const tg_export_config_t *cfg, apr_pool_t *pool);

/* --- for the exporters and their driver --- */

/* A server span as Zipkin JSON, give or take: what an exporter's buffer
 * starts with room for, a batch of them, so that it does not grow (copying
 * as it goes) through the first batch. */
#define TG_EXPORT_TYPICAL_SPAN_BYTES 600

/* n spans leave the exporter's hands (in_flight) into `outcome`. */
void tg_export_settle(tg_export_counters_t *counters, _Atomic uint64_t *outcome, int n);

/* n spans delivered at `now`. */
void tg_export_delivered(tg_export_counters_t *counters, int n, apr_time_t now);

/* An exporter's failures of one kind, logged once a minute at most. */
typedef struct {
    apr_time_t last_logged; /* 0: never */
    unsigned silenced;      /* failures since, not logged */
} tg_warn_limit_t;

/* Room for the note tg_warn_limit_pass writes. */
#define TG_WARN_NOTE_BYTES 80

/* 1 when a failure of this kind may be logged now, `note` then saying how
 * many of its kind went unlogged since the last line ("" when none). */
int tg_warn_limit_pass(tg_warn_limit_t *limit, char note[TG_WARN_NOTE_BYTES]);

/* The interval of tg_warn_limit_pass, for warnings limited otherwise. */
#define TG_WARN_INTERVAL apr_time_from_sec(60)

#endif
