/* tg_extract_in_order (the default order) over request headers made from
 * the input: one header a line, "Name: value", a repeated name joined with
 * ", " as httpd joins it.  When X-Trace-Info comes without X-Trace-HMAC,
 * the right HMAC under the key is added, so that the fuzzer reaches past
 * the signature check.
 *
 * It runs without keys and with one, which may only turn away
 * X-Trace-Info.  A context it finds is sent on with tg_inject_into_table in
 * every format, as the module sends it, and every format sent must carry
 * the same trace and span.  A table tg_headers_survey says can carry no
 * context, which the module then does not extract from, must have none. */
#include "fuzz.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <string.h>

#include "tg_headers.h"
#include "tg_log.h"
#include "tg_propagation.h"

static apr_table_t *headers_of(const char *text, apr_pool_t *pool)
{
    apr_table_t *headers = apr_table_make(pool, 8);
    char *lines = apr_pstrdup(pool, text), *state = NULL, *line;
    for (line = apr_strtok(lines, "\n", &state); line; line = apr_strtok(NULL, "\n", &state)) {
        char *colon = strchr(line, ':');
        if (!colon || colon == line)
            continue;
        *colon = '\0';
        apr_table_merge(headers, line, colon + 1 + strspn(colon + 1, " \t"));
    }
    return headers;
}

static void sign_unsigned_info(apr_table_t *headers, apr_pool_t *pool)
{
    const char *info = apr_table_get(headers, "X-Trace-Info");
    if (info && !apr_table_get(headers, "X-Trace-HMAC"))
        apr_table_set(headers, "X-Trace-HMAC", fuzz_signature(info, FUZZ_KEY, pool));
}

static void check_found(apr_status_t rv, const tg_context_t *ctx)
{
    FUZZ_CHECK(rv == APR_SUCCESS || rv == APR_NOTFOUND);
    FUZZ_CHECK(fuzz_is_sampling(ctx->sampling));
    if (rv == APR_SUCCESS) {
        FUZZ_CHECK(ctx->format != TG_FORMAT_NONE);
        FUZZ_CHECK(!tg_trace_id_is_zero(ctx->trace_id) && ctx->span_id != 0);
        FUZZ_CHECK(ctx->agreeing & TG_FORMAT_BIT(ctx->format));
        /* tracestate only with a traceparent of this context */
        FUZZ_CHECK(!ctx->tracestate || (ctx->agreeing & TG_FORMAT_BIT(TG_FORMAT_TRACECONTEXT)));
    }
    else {
        FUZZ_CHECK(ctx->format == TG_FORMAT_NONE && !ctx->agreeing && !ctx->tracestate);
        FUZZ_CHECK(tg_trace_id_is_zero(ctx->trace_id) && ctx->span_id == 0 && ctx->parent_id == 0);
    }
}

/* The headers of each format, removed once read so that the next is. */
static const char *const format_headers[][6] = {
    [TG_FORMAT_TRACECONTEXT] = { "traceparent", "tracestate" },
    [TG_FORMAT_B3] = { "b3" },
    [TG_FORMAT_B3_MULTI] = { "X-B3-TraceId", "X-B3-SpanId", "X-B3-ParentSpanId", "X-B3-Sampled",
                             "X-B3-Flags" },
    [TG_FORMAT_X_TRACE_INFO] = { "X-Trace-Info", "X-Trace-HMAC" },
};
#define FORMATS (int)(sizeof(format_headers) / sizeof(format_headers[0]))

/* What one format read back says about ctx, as far as it can say it. */
static void check_read_back(const tg_context_t *again, const tg_context_t *ctx)
{
    FUZZ_CHECK(tg_trace_id_equal(again->trace_id, ctx->trace_id) && again->span_id == ctx->span_id);
    switch (again->format) {
    case TG_FORMAT_TRACECONTEXT:
        FUZZ_CHECK(again->sampling == fuzz_traceparent_sampling(ctx));
        FUZZ_CHECK(!again->tracestate == !ctx->tracestate);
        FUZZ_CHECK(!ctx->tracestate || strcmp(again->tracestate, ctx->tracestate) == 0);
        break;
    case TG_FORMAT_B3:
        FUZZ_CHECK(again->parent_id == fuzz_b3_single_parent(ctx) && fuzz_same_decision(again, ctx));
        break;
    case TG_FORMAT_B3_MULTI:
        FUZZ_CHECK(again->parent_id == ctx->parent_id && fuzz_same_decision(again, ctx));
        break;
    case TG_FORMAT_X_TRACE_INFO:
        FUZZ_CHECK(again->sampling == TG_SAMPLING_ACCEPT);
        break;
    default:
        FUZZ_CHECK(!"a format tg_inject_formats does not write");
    }
}

/* ctx sent on with tg_inject_into_table, as the module sends it, then read back a format at a time: each must
 * carry it, and all but X-Trace-Info (which says "profile this", so goes
 * only with a sampled context) must be there, agreeing at first reading. */
static void check_sent_on(const tg_context_t *ctx, const apr_array_header_t *keys, apr_pool_t *pool)
{
    apr_table_t *sent = apr_table_make(pool, 8);
    tg_format_set_t agreeing = 0, read = 0;
    tg_format_set_t required = TG_FORMAT_BIT(TG_FORMAT_TRACECONTEXT) | TG_FORMAT_BIT(TG_FORMAT_B3)
                               | TG_FORMAT_BIT(TG_FORMAT_B3_MULTI);
    int h;
    tg_context_t again;
    tg_inject_into_table(sent, ctx, TG_FORMATS_ALL, FUZZ_KEY, pool);
    while (tg_extract_in_order(tg_header_table_get, sent, NULL, keys, pool, &again) == APR_SUCCESS) {
        if (!agreeing)
            agreeing = again.agreeing;
        FUZZ_CHECK((int)again.format < FORMATS && !(read & TG_FORMAT_BIT(again.format)));
        read |= TG_FORMAT_BIT(again.format);
        check_read_back(&again, ctx);
        for (h = 0; format_headers[again.format][h]; h++)
            apr_table_unset(sent, format_headers[again.format][h]);
    }
    if (ctx->sampling == TG_SAMPLING_ACCEPT || ctx->debug)
        required |= TG_FORMAT_BIT(TG_FORMAT_X_TRACE_INFO);
    FUZZ_CHECK((read & required) == required);
    FUZZ_CHECK(agreeing == read);
}

static void quiet_sink(tg_log_level_t level, apr_status_t rv, const char *message)
{
    (void)level;
    (void)rv;
    (void)message;
}

void fuzz_one(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    apr_table_t *headers = headers_of(fuzz_string(data, size, pool), pool);
    apr_array_header_t *keys = apr_array_make(pool, 1, sizeof(const char *));
    tg_context_t unkeyed, keyed;
    apr_status_t rv_unkeyed, rv_keyed;

    tg_log_set_sink(quiet_sink);
    APR_ARRAY_PUSH(keys, const char *) = FUZZ_KEY;
    sign_unsigned_info(headers, pool);

    rv_unkeyed = tg_extract_in_order(tg_header_table_get, headers, NULL, NULL, pool, &unkeyed);
    check_found(rv_unkeyed, &unkeyed);
    rv_keyed = tg_extract_in_order(tg_header_table_get, headers, NULL, keys, pool, &keyed);
    check_found(rv_keyed, &keyed);
    if (!(tg_headers_survey(headers) & TG_HEADERS_MAY_CARRY_CONTEXT))
        FUZZ_CHECK(rv_unkeyed == APR_NOTFOUND && rv_keyed == APR_NOTFOUND);
    /* A key can only turn a header away, and then only X-Trace-Info. */
    if (rv_keyed == APR_SUCCESS || rv_unkeyed == APR_NOTFOUND)
        FUZZ_CHECK(rv_keyed == rv_unkeyed && fuzz_same_context(&keyed, &unkeyed));
    else
        FUZZ_CHECK(unkeyed.format == TG_FORMAT_X_TRACE_INFO);

    if (rv_unkeyed == APR_SUCCESS)
        check_sent_on(&unkeyed, keys, pool);
}
