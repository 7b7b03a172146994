/* libtomograph: spans from an application's own code, in the same traces as
 * mod_tomograph's (the seed's `import tomograph` API, in C).
 *
 * Two levels.  The seed's calls (tomograph_start ... tomograph_stop) keep a
 * stack of open spans per thread: a span started is the child of the one on
 * top, annotate/tag/token/inject act on the top, stop pops it.  Under them,
 * spans as handles (tomograph_span_*), for a caller that keeps its own
 * context (the Python binding keeps one per coroutine in a contextvar).
 *
 * Where a finished span goes is decided once per process, at the first span:
 *   - in a process httpd started with mod_tomograph loaded (a mod_wsgi
 *     daemon or embedded interpreter, a CGI program that mod_cgi or mod_cgid
 *     runs, anything forked or exec'd from them with its descriptors): onto
 *     the module's shared-memory queue, counted with its counters and
 *     shipped by its shipper (the module's locator, TOMOGRAPH_SEGMENT, in
 *     the environment, or the module's descriptor alone, which a program
 *     keeps across exec unless it closes it);
 *   - in any other process, to the exporters the environment names:
 *     TOMOGRAPH_ZIPKIN (a URL), TOMOGRAPH_OTLP (a URL), TOMOGRAPH_STATSD
 *     (host:port), TOMOGRAPH_SPAN_FILE (a path), from a bounded buffer that a
 *     thread of the library drains (a full buffer drops and counts), and
 *     whatever is buffered is delivered at exit within TOMOGRAPH_EXIT_BUDGET;
 *   - with neither, nowhere: the calls still keep the context (tokens and
 *     headers work) and cost little.
 * TOMOGRAPH_SERVICE, when set, names the service of spans started without
 * one.  No call blocks, allocates from a shared lock, or does I/O on the
 * application's thread.  The library is safe across fork(): a child starts
 * with an empty stack and its own buffer.
 *
 * Every call returns TOMOGRAPH_OK or an error of tomograph_status_t, never
 * aborts; tomograph_strerror names it.  Strings are copied (and cut at 256
 * bytes); none need outlive the call. */
#ifndef TOMOGRAPH_H
#define TOMOGRAPH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TOMOGRAPH_VERSION "0.1.0"

typedef enum {
    TOMOGRAPH_OK = 0,
    TOMOGRAPH_EINVAL,      /* a required argument NULL or empty, or out of range */
    TOMOGRAPH_ENOSPAN,     /* no span open on this thread */
    TOMOGRAPH_EWRONGSPAN,  /* stop names another span than the one open on top */
    TOMOGRAPH_EBADTOKEN,   /* a trace token that does not parse */
    TOMOGRAPH_EDEPTH,      /* TOMOGRAPH_MAX_DEPTH spans open on this thread already */
    TOMOGRAPH_ENOMEM,
    TOMOGRAPH_ETOOSMALL,   /* the buffer given cannot hold the result */
    TOMOGRAPH_ETIMEDOUT    /* tomograph_flush: spans still undelivered when the time ran out */
} tomograph_status_t;

/* A static sentence naming status. */
const char *tomograph_strerror(int status);

/* Spans open at once on one thread. */
#define TOMOGRAPH_MAX_DEPTH 64

/* Room for a trace token and its NUL: a W3C traceparent (55 characters). */
#define TOMOGRAPH_TOKEN_SIZE 56

typedef enum {
    TOMOGRAPH_KIND_INTERNAL = 0, /* work inside the process (the seed's start) */
    TOMOGRAPH_KIND_SERVER,       /* serving a request (start_server, the middleware) */
    TOMOGRAPH_KIND_CLIENT        /* a call out (an HTTP request, an SQL statement) */
} tomograph_kind_t;

/* --- headers, through the caller's HTTP library --- */

/* Sets a request header; called once per header, name and value only valid
 * during the call. */
typedef void tomograph_set_header_fn(void *carrier, const char *name, const char *value);
/* A request header's value (NULL when absent); name as written on the wire,
 * any case (the function compares without case, or the carrier does). */
typedef const char *tomograph_get_header_fn(void *carrier, const char *name);

/* --- the seed's calls: a stack of spans per thread --- */

/* Starts a span as the child of the one open on top of this thread's stack;
 * with none, the child of the span a token names (tomograph_token), or the
 * root of a new trace when token is NULL (a token that does not parse is
 * TOMOGRAPH_EBADTOKEN either way).  host (NULL: unknown) and port (0:
 * unknown) are the local endpoint's: an IP address, else a host name, which
 * the span keeps as its tag host.name. */
int tomograph_start(const char *service, const char *name, const char *host, int port,
                    const char *token);

/* Starts a SERVER span for an incoming request, continuing the trace its
 * headers carry (traceparent/tracestate, b3 or X-B3-*, X-Trace-Info with
 * X-Trace-HMAC when TOMOGRAPH_HMAC_KEYS is set, as mod_tomograph reads them:
 * a malformed or unsigned one starts a new trace); under mod_tomograph, the
 * module's SERVER span is its parent. */
int tomograph_start_server(const char *service, const char *name,
                           tomograph_get_header_fn *get, void *carrier);

/* A note on the top span, at the time of the call. */
int tomograph_annotate(const char *message);

/* A tag on the top span. */
int tomograph_tag(const char *key, const char *value);

/* Marks the top span failed, with reason (e.g. an exception's type) as its
 * `error` tag. */
int tomograph_fail(const char *reason);

/* Finishes the top span, which must be named `name`, and hands it on to
 * where spans go (see above).  TOMOGRAPH_EWRONGSPAN leaves the stack as it
 * was. */
int tomograph_stop(const char *name);

/* The trace token of the top span: a string to start spans of the same trace
 * on another thread or process (tomograph_start's token). */
int tomograph_token(char *buf, size_t size);

/* The headers that carry the top span's context (traceparent, tracestate,
 * b3, X-Trace-Info and, with TOMOGRAPH_HMAC_KEYS, X-Trace-HMAC), written
 * with set. */
int tomograph_inject(tomograph_set_header_fn *set, void *carrier);

/* Runs fn(arg) inside a span (started before, stopped after, failed when fn
 * returns non-zero with that number as its reason); *result (unless result
 * is NULL) gets what fn returned.  fn runs even when its span cannot start
 * (the status says why); spans fn leaves open are finished as tomograph_clear
 * finishes them. */
int tomograph_run(const char *service, const char *name, int (*fn)(void *arg), void *arg,
                  int *result);

/* Spans left open on this thread (the stack's depth). */
int tomograph_depth(void);

/* Finishes and ships every span still open on this thread, innermost first,
 * each marked failed ("left open"): for a thread about to serve something
 * else (a pooled thread after a request), so that no span outlives it. */
int tomograph_clear(void);

/* --- spans as handles --- */

typedef struct tomograph_span tomograph_span_t;

/* A span, the child of parent (a handle, NULL for none) or else of the span
 * a token names, or a new trace's root when both are NULL. */
int tomograph_span_begin(tomograph_span_t **span, const tomograph_span_t *parent,
                         const char *token, tomograph_kind_t kind, const char *service,
                         const char *name, const char *host, int port);
/* A SERVER span continuing the trace of a request's headers (as
 * tomograph_start_server). */
int tomograph_span_begin_server(tomograph_span_t **span, const char *service, const char *name,
                                tomograph_get_header_fn *get, void *carrier);
/* A span that osprofiler made, for a bridge from its notifications (the
 * Python binding's osprofiler driver): ids from the UUIDs a notification
 * carries, base_id (the trace), trace_id (the span) and parent_id, mapped
 * as mod_tomograph maps X-Trace-Info's, so that the module's spans and the
 * service's osprofiler spans make one tree.  Recorded whatever the sampling
 * (osprofiler decided to profile).  TOMOGRAPH_EBADTOKEN when an id is not a
 * UUID. */
int tomograph_span_begin_osprofiler(tomograph_span_t **span, tomograph_kind_t kind,
                                    const char *service, const char *name, const char *host,
                                    const char *base_id, const char *trace_id,
                                    const char *parent_id);
int tomograph_span_annotate(tomograph_span_t *span, const char *message);
int tomograph_span_tag(tomograph_span_t *span, const char *key, const char *value);
int tomograph_span_fail(tomograph_span_t *span, const char *reason);
int tomograph_span_token(const tomograph_span_t *span, char *buf, size_t size);
int tomograph_span_inject(const tomograph_span_t *span, tomograph_set_header_fn *set,
                          void *carrier);
/* The span's name as begun. */
const char *tomograph_span_name(const tomograph_span_t *span);
/* Finishes the span, hands it on, and frees it: the handle is gone. */
int tomograph_span_end(tomograph_span_t *span);

/* --- the process --- */

/* Delivers what the buffer holds (outside httpd), waiting at most
 * timeout_ms; also done at exit.  TOMOGRAPH_OK when all of it went. */
int tomograph_flush(long timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
