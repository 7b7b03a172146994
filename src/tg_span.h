/* The span model: the Dapper/Zipkin span that the seed calls "a set of notes".
 *
 * A span lives in the pool it was made in (r->pool for a request's server
 * span), and so do its tags and notes.  Its first and last notes bound it:
 * they are its start (TG_NOTE_START at `timestamp`) and, once finished, its
 * stop (TG_NOTE_STOP at `timestamp + duration`), so they are not stored;
 * `annotations` holds only the notes in between.  tg_span_note_count and
 * tg_span_note_at give all of them, in order, as exporters show them.
 *
 * An HTTP span keeps its request in fields (method, path, status code)
 * instead of tags, and without a name of its own is named after it: the
 * request path makes a span per request, and these are what it costs to
 * fill.  tg_span_tag_count and tg_span_tag_at give them as the tags
 * http.method, http.path and http.status_code, then the bodies' lengths
 * the transfer fields hold (TG_TAG_REQUEST_LENGTH, TG_TAG_RESPONSE_LENGTH),
 * before the others.
 *
 * Everything a span holds is bounded (count and length), so a chatty
 * request cannot make a span that no longer fits a queue record; what does
 * not fit is counted in `dropped`, not silently lost. */
#ifndef TG_SPAN_H
#define TG_SPAN_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <apr_network_io.h>

#include "tg_context.h"

#define TG_SPAN_MAX_TAGS 24        /* added with tg_span_tag, beside the HTTP ones */
#define TG_SPAN_MAX_ANNOTATIONS 16 /* notes, the first and last included */
#define TG_SPAN_MAX_NOTES_BETWEEN (TG_SPAN_MAX_ANNOTATIONS - 2)
#define TG_SPAN_MAX_STRING 256     /* bytes of any name, tag or note kept */

/* The longest name tg_span_name makes: method, space, path. */
#define TG_SPAN_NAME_MAX (2 * TG_SPAN_MAX_STRING + 1)

#define TG_TAG_HTTP_METHOD "http.method"
#define TG_TAG_HTTP_PATH "http.path"
#define TG_TAG_HTTP_STATUS "http.status_code"

/* The notes that bound a span.  Zipkin's own server-side names would be
 * "sr"/"ss", but v2 derives those from kind, timestamp and duration; the
 * seed's statsd view names a counter after each note, so plain words read
 * best in Graphite. */
#define TG_NOTE_START "start"
#define TG_NOTE_STOP "stop"

/* The moments of a request's transfer, between them: the request's body read
 * in full, and the answer's first byte leaving (its time to first byte: the
 * app's time, apart from sending the answer).  statsd times them from the
 * span's start rather than counting them. */
#define TG_NOTE_BODY_READ "body read"
#define TG_NOTE_FIRST_BYTE "first byte"

/* The bytes of the request's and of the answer's body, whatever the
 * transfer encoding. */
#define TG_TAG_REQUEST_LENGTH "http.request_content_length"
#define TG_TAG_RESPONSE_LENGTH "http.response_content_length"

/* Which of a span's transfer fields are known (tg_span_t.transfer). */
#define TG_TRANSFER_BODY_READ 0x1u
#define TG_TRANSFER_FIRST_BYTE 0x2u
#define TG_TRANSFER_REQUEST_BYTES 0x4u
#define TG_TRANSFER_RESPONSE_BYTES 0x8u
#define TG_TRANSFER_ALL 0xFu

/* INTERNAL is work inside a process (libtomograph's plain spans): Zipkin v2
 * writes no kind for it, which is how it says "local"; OTLP has a kind of
 * its own.  It comes last, so tables indexed by the Zipkin kinds end before
 * it. */
typedef enum {
    TG_SPAN_SERVER = 0,
    TG_SPAN_CLIENT = 1,
    TG_SPAN_PRODUCER = 2,
    TG_SPAN_CONSUMER = 3,
    TG_SPAN_INTERNAL = 4
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

/* Sets the endpoint's address from ip, its text form as httpd, APR and URLs
 * give it (NULL when unknown; kept, not copied), and its port.  An
 * IPv4-mapped IPv6 address is the IPv4 address it maps: a socket listening
 * on [::] (Debian's `Listen 80`) takes IPv4 clients as ::ffff:192.0.2.1,
 * which APR writes as 192.0.2.1, and Zipkin's ipv6 must be no IPv4 text.
 * Its text is the mapped part of ip, or written in pool when ip is all hex
 * (::ffff:c000:201).  Any other address with a ':' is IPv6, the rest IPv4. */
void tg_endpoint_set_address(tg_endpoint_t *endpoint, const char *ip, apr_port_t port,
                             apr_pool_t *pool);

typedef struct {
    apr_pool_t *pool;
    tg_trace_id_t trace_id;
    uint64_t id;
    uint64_t parent_id; /* 0 on a root span */
    tg_span_kind_t kind;
    const char *name;   /* NULL: named after its HTTP request (tg_span_name) */
    const char *method; /* the HTTP request's, NULL when not an HTTP span */
    const char *path;   /* without the query string; NULL when unknown */
    int status_code;    /* the HTTP response's (1 to 999), 0 until known */
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
    apr_array_header_t *tags;        /* of tg_tag_t, NULL until the first */
    apr_array_header_t *annotations; /* of tg_annotation_t: the notes between the
                                      * first and last, NULL until the first */
    /* The transfer of a request a server span serves, kept as numbers, so
     * that recording it costs a request a few stores: the record carries
     * them so, and the shipper spells them out (tg_span_spell_out_transfer)
     * before its exporters see the span.  Each is there when its
     * TG_TRANSFER_* bit is. */
    unsigned transfer;
    apr_time_t body_read_at;
    apr_time_t first_byte_at;
    uint64_t request_bytes;
    uint64_t response_bytes;
} tg_span_t;

/* A span continuing `parent` (its trace, its span id as our parent, its
 * debug flag and W3C flags), or the root of a new trace when parent is NULL
 * (its trace id random, so flagged TG_W3C_FLAG_RANDOM).  It is sampled until
 * the caller says otherwise, and starts at `start` (its first note).  name
 * is copied; NULL leaves it to be made from the HTTP fields. */
tg_span_t *tg_span_start(apr_pool_t *pool, tg_span_kind_t kind, const char *name,
                         const tg_context_t *parent, apr_time_t start);

/* The same, filling a span the caller holds (in `pool`'s lifetime). */
void tg_span_init(tg_span_t *span, apr_pool_t *pool, tg_span_kind_t kind, const char *name,
                  const tg_context_t *parent, apr_time_t start);

/* Both copy key/value into the span's pool, cut to TG_SPAN_MAX_STRING.  A
 * tag keyed TG_TAG_HTTP_METHOD or TG_TAG_HTTP_PATH sets that field, one
 * keyed TG_TAG_HTTP_STATUS the status code it reads (0 when it is not a
 * number from 1 to 999). */
void tg_span_tag(tg_span_t *span, const char *key, const char *value);
void tg_span_annotate(tg_span_t *span, apr_time_t when, const char *value);

/* Fixes the duration (rounded up to 1 µs), which places the last note. */
void tg_span_finish(tg_span_t *span, apr_time_t end);

/* Turns the span's transfer moments into the notes they stand for,
 * TG_NOTE_BODY_READ and TG_NOTE_FIRST_BYTE, each in its place among the
 * notes by time, within the span's bounds (beyond them, counted dropped),
 * finished span or not; then clears them.  The lengths stay fields, which
 * tg_span_tag_at gives as tags. */
void tg_span_spell_out_transfer(tg_span_t *span);

/* The span's name: `name`, or "<method> <path>" (or the method alone) made
 * in buf when name is NULL; NULL when it has neither. */
const char *tg_span_name(const tg_span_t *span, char buf[TG_SPAN_NAME_MAX + 1]);

/* Every note of the span, the first and last included. */
static inline int tg_span_note_count(const tg_span_t *span)
{
    return 1 + (span->annotations ? span->annotations->nelts : 0) + (span->finished ? 1 : 0);
}

static inline tg_annotation_t tg_span_note_at(const tg_span_t *span, int i)
{
    int between = span->annotations ? span->annotations->nelts : 0;
    if (i == 0)
        return (tg_annotation_t){ span->timestamp, TG_NOTE_START };
    if (i <= between)
        return ((const tg_annotation_t *)span->annotations->elts)[i - 1];
    return (tg_annotation_t){ span->timestamp + span->duration, TG_NOTE_STOP };
}

/* Room for the digits tg_span_tag_at writes a status code or a length in
 * (TG_DECIMAL_MAX: they are written eight bytes at a time). */
#define TG_TAG_DIGITS 24

/* Every tag of the span: the HTTP fields and lengths that are set, then
 * those added. */
static inline int tg_span_tag_count(const tg_span_t *span)
{
    return (span->method != NULL) + (span->path != NULL) + (span->status_code != 0)
           + !!(span->transfer & TG_TRANSFER_REQUEST_BYTES)
           + !!(span->transfer & TG_TRANSFER_RESPONSE_BYTES)
           + (span->tags ? span->tags->nelts : 0);
}

/* The i-th tag; a status code's or a length's value is written in digits. */
tg_tag_t tg_span_tag_at(const tg_span_t *span, int i, char digits[TG_TAG_DIGITS]);

/* The context to hand on for this span: its trace, its id as span_id. */
void tg_span_context(const tg_span_t *span, tg_context_t *out);

/* The value tg_span_tag_at gives for key, NULL when none (a status code or
 * a length in the span's pool). */
const char *tg_span_tag_value(const tg_span_t *span, const char *key);

#endif
