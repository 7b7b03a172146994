#include "tg_propagation.h"

#include <apr_strings.h>
#include <string.h>
#include <strings.h>

#include "tg_b3.h"
#include "tg_headers.h"
#include "tg_log.h"
#include "tg_osprofiler.h"
#include "tg_w3c.h"

#define H_TRACEPARENT "traceparent"
#define H_TRACESTATE "tracestate"
#define H_B3 "b3"
#define H_B3_TRACE_ID "X-B3-TraceId"
#define H_B3_SPAN_ID "X-B3-SpanId"
#define H_B3_PARENT_SPAN_ID "X-B3-ParentSpanId"
#define H_B3_SAMPLED "X-B3-Sampled"
#define H_B3_FLAGS "X-B3-Flags"
#define H_TRACE_INFO "X-Trace-Info"
#define H_TRACE_HMAC "X-Trace-HMAC"

/* Each format: its directive word and, for the logs, its header. */
typedef struct {
    tg_format_t format;
    const char *name;
    const char *header;
} format_info_t;

static const format_info_t known_formats[] = {
    {TG_FORMAT_TRACECONTEXT, "tracecontext", H_TRACEPARENT},
    {TG_FORMAT_B3, "b3", H_B3},
    {TG_FORMAT_B3_MULTI, "b3multi", "X-B3-*"},
    {TG_FORMAT_X_TRACE_INFO, "x-trace-info", H_TRACE_INFO},
};
#define FORMAT_COUNT (sizeof(known_formats) / sizeof(known_formats[0]))

static const tg_format_t default_order[] = {
    TG_FORMAT_TRACECONTEXT, TG_FORMAT_B3, TG_FORMAT_X_TRACE_INFO, TG_FORMAT_NONE,
};

apr_status_t tg_format_parse(const char *word, tg_format_t *out)
{
    size_t i;
    for (i = 0; i < FORMAT_COUNT; i++) {
        if (strcasecmp(word, known_formats[i].name) == 0) {
            *out = known_formats[i].format;
            return APR_SUCCESS;
        }
    }
    return APR_EINVAL;
}

static const format_info_t *format_info(tg_format_t format)
{
    size_t i;
    for (i = 0; i < FORMAT_COUNT; i++)
        if (known_formats[i].format == format)
            return &known_formats[i];
    return NULL;
}

const char *tg_format_name(tg_format_t format)
{
    const format_info_t *info = format_info(format);
    return info ? info->name : "none";
}

/* ---- Extract ----------------------------------------------------------- */

/* What one format's headers said. */
typedef struct {
    const format_info_t *info;
    apr_status_t rv;
    tg_context_t ctx;
} reading_t;

typedef struct {
    reading_t items[FORMAT_COUNT];
    size_t count;
} readings_t;

typedef struct {
    tg_header_get_fn *get;
    void *store;
    const apr_array_header_t *hmac_keys;
    apr_pool_t *pool;
} source_t;

/* traceparent, and tracestate with it: only a valid traceparent makes
 * tracestate worth reading, and a tracestate we cannot parse goes no
 * further (the traceparent stays good). */
static apr_status_t read_tracecontext(const source_t *from, tg_context_t *ctx)
{
    const char *tracestate;
    apr_status_t rv = tg_w3c_parse_traceparent(from->get(from->store, H_TRACEPARENT), ctx);
    if (rv != APR_SUCCESS)
        return rv;
    rv = tg_w3c_parse_tracestate(from->get(from->store, H_TRACESTATE), from->pool, &tracestate);
    if (rv == APR_SUCCESS)
        ctx->tracestate = tracestate;
    else if (rv == APR_EINVAL)
        tg_log(TG_LOG_DEBUG, rv, TGLOGNO(01100) "dropping malformed tracestate header");
    return APR_SUCCESS;
}

static apr_status_t read_headers(const source_t *from, tg_format_t format, tg_context_t *ctx)
{
    tg_header_get_fn *get = from->get;
    void *store = from->store;
    switch (format) {
    case TG_FORMAT_TRACECONTEXT:
        return read_tracecontext(from, ctx);
    case TG_FORMAT_B3:
        return tg_b3_parse_single(get(store, H_B3), ctx);
    case TG_FORMAT_B3_MULTI:
        return tg_b3_parse_multi(get(store, H_B3_TRACE_ID), get(store, H_B3_SPAN_ID),
                                 get(store, H_B3_PARENT_SPAN_ID), get(store, H_B3_SAMPLED),
                                 get(store, H_B3_FLAGS), ctx);
    case TG_FORMAT_X_TRACE_INFO:
        return tg_osprofiler_parse(get(store, H_TRACE_INFO), get(store, H_TRACE_HMAC),
                                   from->hmac_keys, from->pool, ctx);
    default:
        return APR_NOTFOUND;
    }
}

static const reading_t *find_reading(const readings_t *readings, tg_format_t format)
{
    size_t i;
    for (i = 0; i < readings->count; i++)
        if (readings->items[i].info->format == format)
            return &readings->items[i];
    return NULL;
}

/* Reads a format once, whatever the order repeats.  A sender who sent
 * something we cannot use hears about it at debug level (the header name
 * only: the value is the sender's and may be anything). */
static void read_format(readings_t *readings, tg_format_t format, const source_t *from)
{
    const format_info_t *info = format_info(format);
    reading_t *reading;
    if (!info || find_reading(readings, format))
        return;
    reading = &readings->items[readings->count++];
    memset(reading, 0, sizeof(*reading));
    reading->info = info;
    reading->rv = read_headers(from, format, &reading->ctx);
    if (reading->rv == APR_EINVAL)
        tg_log(TG_LOG_DEBUG, reading->rv, TGLOGNO(01000) "ignoring malformed %s header",
               info->header);
    else if (reading->rv == APR_EACCES)
        tg_log(TG_LOG_DEBUG, reading->rv,
               TGLOGNO(01001) "ignoring %s header not signed with a configured key",
               info->header);
}

static const reading_t *first_with(const readings_t *readings, apr_status_t rv)
{
    size_t i;
    for (i = 0; i < readings->count; i++)
        if (readings->items[i].rv == rv)
            return &readings->items[i];
    return NULL;
}

static int same_ids(const tg_context_t *a, const tg_context_t *b)
{
    return tg_trace_id_equal(a->trace_id, b->trace_id) && a->span_id == b->span_id;
}

/* The formats that carried the continued context; the others lose. */
static tg_format_set_t agreeing_formats(const readings_t *readings, const reading_t *chosen)
{
    tg_format_set_t agreeing = 0;
    size_t i;
    for (i = 0; i < readings->count; i++) {
        const reading_t *reading = &readings->items[i];
        if (reading->rv != APR_SUCCESS)
            continue;
        if (same_ids(&reading->ctx, &chosen->ctx))
            agreeing |= TG_FORMAT_BIT(reading->info->format);
        else
            tg_log(TG_LOG_DEBUG, 0,
                   TGLOGNO(01101) "ignoring %s header: it carries another context than %s",
                   reading->info->header, chosen->info->header);
    }
    return agreeing;
}

apr_status_t tg_extract_in_order(tg_header_get_fn *get, void *store, const tg_format_t *order,
                                 const apr_array_header_t *hmac_keys, apr_pool_t *pool,
                                 tg_context_t *out)
{
    const source_t from = {get, store, hmac_keys, pool};
    readings_t readings;
    const reading_t *chosen, *decision, *single, *traceparent;

    readings.count = 0;
    for (order = order ? order : default_order; *order != TG_FORMAT_NONE; order++) {
        read_format(&readings, *order, &from);
        /* B3's single header wins over the multi ones, read after it. */
        if (*order == TG_FORMAT_B3)
            read_format(&readings, TG_FORMAT_B3_MULTI, &from);
    }

    chosen = first_with(&readings, APR_SUCCESS);
    if (!chosen) {
        /* A bare sampling decision (`b3: 0`, or X-B3-Sampled alone) carries
         * no ids but still tells a new trace whether to record. */
        decision = first_with(&readings, APR_INCOMPLETE);
        memset(out, 0, sizeof(*out));
        out->sampling = decision ? decision->ctx.sampling : TG_SAMPLING_DEFER;
        out->debug = decision ? decision->ctx.debug : 0;
        return APR_NOTFOUND;
    }
    *out = chosen->ctx;
    out->agreeing = agreeing_formats(&readings, chosen);

    single = find_reading(&readings, TG_FORMAT_B3);
    if (chosen->info->format == TG_FORMAT_B3_MULTI && single && single->rv == APR_INCOMPLETE) {
        out->sampling = single->ctx.sampling;
        out->debug = single->ctx.debug;
    }
    traceparent = find_reading(&readings, TG_FORMAT_TRACECONTEXT);
    if (traceparent && (out->agreeing & TG_FORMAT_BIT(TG_FORMAT_TRACECONTEXT))) {
        out->w3c_flags = traceparent->ctx.w3c_flags;
        out->tracestate = traceparent->ctx.tracestate;
    }
    return APR_SUCCESS;
}

/* ---- Inject ------------------------------------------------------------ */

/* Each writer below sets its format's headers for ctx, or removes them all
 * when ctx is NULL.  The store may keep the pointers it is given: a name is
 * a literal, a value is in the pool; NULL or "" means the header goes. */
typedef struct {
    tg_header_set_fn *set;
    void *store;
    apr_pool_t *pool;
} sink_t;

/* A value already in the pool. */
static void put_kept(const sink_t *to, const char *name, const char *value)
{
    to->set(to->store, name, value && value[0] ? value : NULL);
}

/* A value anywhere else (formatted on the stack), copied into the pool. */
static void put(const sink_t *to, const char *name, const char *value)
{
    put_kept(to, name, value && value[0] ? apr_pstrdup(to->pool, value) : NULL);
}

typedef void single_header_format_fn(const tg_context_t *ctx, char *out);

/* The value of a single-header format for ctx (NULL without one), written
 * straight into the pool: `max` characters at most. */
static char *formatted(const sink_t *to, const tg_context_t *ctx, size_t max,
                       single_header_format_fn *format)
{
    char *value;
    if (!ctx)
        return NULL;
    value = apr_palloc(to->pool, max + 1);
    format(ctx, value);
    return value;
}

static void write_tracecontext(const sink_t *to, const tg_context_t *ctx)
{
    put_kept(to, H_TRACEPARENT, formatted(to, ctx, TG_TRACEPARENT_LEN, tg_w3c_format_traceparent));
    put(to, H_TRACESTATE, ctx ? ctx->tracestate : NULL);
}

static void write_b3(const sink_t *to, const tg_context_t *ctx)
{
    put_kept(to, H_B3, formatted(to, ctx, TG_B3_SINGLE_MAX, tg_b3_format_single));
}

static void write_b3_multi(const sink_t *to, const tg_context_t *ctx)
{
    tg_b3_multi_t multi;
    memset(&multi, 0, sizeof(multi));
    if (ctx)
        tg_b3_format_multi(ctx, &multi);
    put(to, H_B3_TRACE_ID, multi.trace_id);
    put(to, H_B3_SPAN_ID, multi.span_id);
    put(to, H_B3_PARENT_SPAN_ID, multi.parent_span_id);
    put(to, H_B3_SAMPLED, multi.sampled);
    put(to, H_B3_FLAGS, multi.flags);
}

static void write_trace_info(const sink_t *to, const tg_context_t *ctx, const char *hmac_key)
{
    const char *info = NULL, *hmac = NULL;
    if (ctx && (ctx->sampling == TG_SAMPLING_ACCEPT || ctx->debug))
        info = tg_osprofiler_format(ctx, hmac_key, to->pool, &hmac);
    put_kept(to, H_TRACE_INFO, info);
    put_kept(to, H_TRACE_HMAC, hmac);
}

void tg_inject_formats(tg_header_set_fn *set, void *store, const tg_context_t *ctx,
                       tg_format_set_t formats, const char *hmac_key, apr_pool_t *pool)
{
    const sink_t to = {set, store, pool};
#define IF_SENT(format) ((formats & TG_FORMAT_BIT(format)) ? ctx : NULL)
    write_tracecontext(&to, IF_SENT(TG_FORMAT_TRACECONTEXT));
    write_b3(&to, IF_SENT(TG_FORMAT_B3));
    write_b3_multi(&to, IF_SENT(TG_FORMAT_B3_MULTI));
    write_trace_info(&to, IF_SENT(TG_FORMAT_X_TRACE_INFO), hmac_key);
#undef IF_SENT
}

const char *tg_header_table_get(void *table, const char *name)
{
    return apr_table_get(table, name);
}

void tg_header_table_set(void *table, const char *name, const char *value)
{
    if (value)
        apr_table_setn(table, name, value);
    else
        apr_table_unset(table, name);
}

/* tg_header_table_set for a table known to hold no header of the name. */
static void add_absent(void *table, const char *name, const char *value)
{
    if (value)
        apr_table_addn(table, name, value);
}

void tg_inject_into_table(apr_table_t *headers, const tg_context_t *ctx, tg_format_set_t formats,
                          const char *hmac_key, apr_pool_t *pool)
{
    tg_header_set_fn *set = tg_headers_survey(headers) & TG_HEADERS_MAY_CARRY_CONTEXT
                                ? tg_header_table_set
                                : add_absent;
    tg_inject_formats(set, headers, ctx, formats, hmac_key, pool);
}
