/* The span model: the Dapper/Zipkin span that the seed calls "a set of notes".
 *
 * A span lives in the pool it was made in (r->pool for a request's server
 * span), and so do its tags and notes.  Its first and last notes bound it:
 * tg_span_start adds the first, tg_span_finish the last.  Everything a span
 * holds is bounded (count and length), so a chatty request cannot make a span
 * that no longer fits a queue record; what does not fit is counted in
 * `dropped`, not silently lost. */
#ifndef TG_SPAN_H
#define TG_SPAN_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <apr_network_io.h>

#include "tg_context.h"

#define TG_SPAN_MAX_TAGS 24
#define TG_SPAN_MAX_ANNOTATIONS 16
#define TG_SPAN_MAX_STRING 256 /* bytes of any name, tag or note kept */

/* The notes that bound a span.  Zipkin's own server-side names would be
 * "sr"/"ss", but v2 derives those from kind, timestamp and duration; the
 * seed's statsd view names a counter after each note, so plain words read
 * best in Graphite. */
#define TG_NOTE_START "start"
#define TG_NOTE_STOP "stop"

typedef enum {
    TG_SPAN_SERVER = 0,
    TG_SPAN_CLIENT = 1,
    TG_SPAN_PRODUCER = 2,
    TG_SPAN_CONSUMER = 3
} tg_span_kind_t;

typedef struct {
    apr_time_t timestamp; /* microseconds since the epoch, as apr_time_t is */
    const char *value;
} tg_annotation_t;

typedef struct {
    const char *key;
    const char *value;
} tg_tag_t;

typedef struct {
    const char *service_name; /* lowercase; NULL when unknown */
    const char *ipv4;         /* text form, NULL when unknown */
    const char *ipv6;
    apr_port_t port;          /* 0 when unknown */
} tg_endpoint_t;

typedef struct {
    apr_pool_t *pool;
    tg_trace_id_t trace_id;
    uint64_t id;
    uint64_t parent_id; /* 0 on a root span */
    tg_span_kind_t kind;
    const char *name;
    tg_endpoint_t local;
    tg_endpoint_t remote;
    apr_time_t timestamp; /* start, microseconds since the epoch */
    apr_time_t duration;  /* microseconds, at least 1 once finished */
    int shared;           /* joins the caller's span id (B3 server side) */
    int sampled;          /* recorded; an unsampled span only passes its context on */
    unsigned char w3c_flags; /* W3C trace-flags bits other than sampled, carried on */
    int debug;
    int error;
    int finished;
    unsigned dropped;     /* tags and notes refused by the bounds above */
    apr_array_header_t *tags;        /* of tg_tag_t */
    apr_array_header_t *annotations; /* of tg_annotation_t */
} tg_span_t;

/* A span continuing `parent` (its trace, its span id as our parent, its
 * debug flag and W3C flags), or the root of a new trace when parent is NULL
 * (its trace id random, so flagged TG_W3C_FLAG_RANDOM).  It is sampled until
 * the caller says otherwise, and starts at `start` with the note
 * TG_NOTE_START. */
tg_span_t *tg_span_start(apr_pool_t *pool, tg_span_kind_t kind, const char *name,
                         const tg_context_t *parent, apr_time_t start);

/* Both copy key/value into the span's pool, cut to TG_SPAN_MAX_STRING. */
void tg_span_tag(tg_span_t *span, const char *key, const char *value);
void tg_span_annotate(tg_span_t *span, apr_time_t when, const char *value);

/* Adds the last note and fixes the duration (rounded up to 1 µs). */
void tg_span_finish(tg_span_t *span, apr_time_t end);

/* The context to hand on for this span: its trace, its id as span_id. */
void tg_span_context(const tg_span_t *span, tg_context_t *out);

const char *tg_span_tag_value(const tg_span_t *span, const char *key);

#endif
