/* A trace context as it crosses a process boundary: what a caller hands us
 * in its headers, and what we hand on to the app and to backends.
 *
 * `span_id` is the sender's span, the parent of the receiver's.  The codecs
 * (tg_b3, tg_w3c, tg_osprofiler) fill and read this struct and nothing else. */
#ifndef TG_CONTEXT_H
#define TG_CONTEXT_H

#include "tg_ids.h"

typedef enum {
    TG_SAMPLING_DEFER = -1, /* the sender left the decision to us */
    TG_SAMPLING_DENY = 0,
    TG_SAMPLING_ACCEPT = 1
} tg_sampling_t;

typedef enum {
    TG_FORMAT_NONE = 0,
    TG_FORMAT_TRACECONTEXT,
    TG_FORMAT_B3,
    TG_FORMAT_B3_MULTI,
    TG_FORMAT_X_TRACE_INFO
} tg_format_t;

/* A set of formats, one bit each. */
typedef unsigned tg_format_set_t;
#define TG_FORMAT_BIT(format) (1u << (format))

/* W3C trace-flags bits. */
#define TG_W3C_FLAG_SAMPLED 0x01
#define TG_W3C_FLAG_RANDOM 0x02

typedef struct {
    tg_trace_id_t trace_id;
    uint64_t span_id;       /* the sender's span id */
    uint64_t parent_id;     /* the sender's parent, 0 when absent or unknown */
    tg_sampling_t sampling;
    int debug;
    unsigned char w3c_flags; /* as received in traceparent, 0 otherwise */
    tg_format_t format;      /* where it came from */
    /* The formats that arrived carrying this same trace and span id, format
     * itself included (tg_extract_in_order); 0 when the codecs fill the struct. */
    tg_format_set_t agreeing;
    /* W3C tracestate, as sent on with traceparent: members in their order,
     * joined with ','; NULL when none (or when it was malformed). */
    const char *tracestate;
} tg_context_t;

#endif
