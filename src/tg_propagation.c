#include "tg_propagation.h"

#include <apr_strings.h>
#include <string.h>

#include "tg_b3.h"
#include "tg_log.h"
#include "tg_osprofiler.h"
#include "tg_w3c.h"

#define H_TRACEPARENT "traceparent"
#define H_B3 "b3"
#define H_B3_TRACE_ID "X-B3-TraceId"
#define H_B3_SPAN_ID "X-B3-SpanId"
#define H_B3_PARENT_SPAN_ID "X-B3-ParentSpanId"
#define H_B3_SAMPLED "X-B3-Sampled"
#define H_B3_FLAGS "X-B3-Flags"
#define H_TRACE_INFO "X-Trace-Info"
#define H_TRACE_HMAC "X-Trace-HMAC"

/* What a parser said about one header: success ends the search, and a
 * sender who sent something we cannot use hears about it at debug level
 * (the name only: the value is the sender's and may be anything). */
static int usable(apr_status_t rv, const char *header)
{
    if (rv == APR_EINVAL)
        tg_log(TG_LOG_DEBUG, rv, TGLOGNO(01000) "ignoring malformed %s header", header);
    else if (rv == APR_EACCES)
        tg_log(TG_LOG_DEBUG, rv, TGLOGNO(01001) "ignoring %s header not signed with a configured key",
               header);
    return rv == APR_SUCCESS;
}

/* A bare sampling decision (`b3: 0`, or X-B3-Sampled alone) carries no ids
 * but still tells a new trace whether to record: an exporter sends `b3: 0`
 * so that its own requests are not traced.  The first one heard counts. */
typedef struct {
    tg_context_t ctx;
    int heard;
} sampling_only_t;

static void keep_sampling(sampling_only_t *decision, const tg_context_t *from)
{
    if (decision->heard)
        return;
    decision->ctx.sampling = from->sampling;
    decision->ctx.debug = from->debug;
    decision->heard = 1;
}

static apr_status_t find_context(tg_header_get_fn *get, void *store,
                                 const apr_array_header_t *hmac_keys, apr_pool_t *pool,
                                 tg_context_t *found, sampling_only_t *decision)
{
    apr_status_t rv;
    if (usable(tg_w3c_parse_traceparent(get(store, H_TRACEPARENT), found), H_TRACEPARENT))
        return APR_SUCCESS;

    rv = tg_b3_parse_single(get(store, H_B3), found);
    if (usable(rv, H_B3))
        return APR_SUCCESS;
    if (rv == APR_INCOMPLETE)
        keep_sampling(decision, found);

    rv = tg_b3_parse_multi(get(store, H_B3_TRACE_ID), get(store, H_B3_SPAN_ID),
                           get(store, H_B3_PARENT_SPAN_ID), get(store, H_B3_SAMPLED),
                           get(store, H_B3_FLAGS), found);
    if (usable(rv, "X-B3-*"))
        return APR_SUCCESS;
    if (rv == APR_INCOMPLETE)
        keep_sampling(decision, found);

    rv = tg_osprofiler_parse(get(store, H_TRACE_INFO), get(store, H_TRACE_HMAC), hmac_keys, pool,
                             found);
    return usable(rv, H_TRACE_INFO) ? APR_SUCCESS : APR_NOTFOUND;
}

apr_status_t tg_extract(tg_header_get_fn *get, void *store, const apr_array_header_t *hmac_keys,
                        apr_pool_t *pool, tg_context_t *out)
{
    tg_context_t found;
    sampling_only_t decision;
    memset(&decision, 0, sizeof(decision));
    decision.ctx.sampling = TG_SAMPLING_DEFER;
    decision.ctx.format = TG_FORMAT_NONE;
    if (find_context(get, store, hmac_keys, pool, &found, &decision) == APR_SUCCESS) {
        *out = found;
        return APR_SUCCESS;
    }
    *out = decision.ctx;
    return APR_NOTFOUND;
}

/* The store may keep the pointer it is given, so it gets a pool copy; ""
 * means the header goes. */
static void set_or_remove(tg_header_set_fn *set, void *store, const char *name, const char *value,
                          apr_pool_t *pool)
{
    set(store, name, value[0] ? apr_pstrdup(pool, value) : NULL);
}

void tg_inject(tg_header_set_fn *set, void *store, const tg_context_t *ctx,
               const char *hmac_key, apr_pool_t *pool)
{
    char traceparent[TG_TRACEPARENT_LEN + 1];
    char b3[TG_B3_SINGLE_MAX + 1];
    tg_b3_multi_t multi;
    const char *info, *hmac;

    tg_w3c_format_traceparent(ctx, traceparent);
    tg_b3_format_single(ctx, b3);
    tg_b3_format_multi(ctx, &multi);
    set_or_remove(set, store, H_TRACEPARENT, traceparent, pool);
    set_or_remove(set, store, H_B3, b3, pool);
    set_or_remove(set, store, H_B3_TRACE_ID, multi.trace_id, pool);
    set_or_remove(set, store, H_B3_SPAN_ID, multi.span_id, pool);
    set_or_remove(set, store, H_B3_PARENT_SPAN_ID, multi.parent_span_id, pool);
    set_or_remove(set, store, H_B3_SAMPLED, multi.sampled, pool);
    set_or_remove(set, store, H_B3_FLAGS, multi.flags, pool);

    info = tg_osprofiler_format(ctx, hmac_key, pool, &hmac);
    set(store, H_TRACE_INFO, info);
    set(store, H_TRACE_HMAC, hmac);
}
