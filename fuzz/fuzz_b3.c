/* tg_b3_parse_single and tg_b3_parse_multi on any header values.
 *
 * The input's first byte says which X-B3-* headers are present (bit i for
 * the i-th of TraceId, SpanId, ParentSpanId, Sampled, Flags); the rest,
 * split at NUL bytes, gives their values in that order ("" past its end),
 * and its first part is also the value of a single b3 header.
 *
 * A context either parser takes must come back the same from both the
 * single header and the multi headers we send on. */
#include "fuzz.h"

#include <string.h>

#include "tg_b3.h"

enum { TRACE_ID, SPAN_ID, PARENT_SPAN_ID, SAMPLED, FLAGS, MULTI_HEADERS };

static void check_decision(const tg_context_t *ctx)
{
    FUZZ_CHECK(fuzz_is_sampling(ctx->sampling));
    FUZZ_CHECK(!ctx->debug || ctx->sampling == TG_SAMPLING_ACCEPT);
}

/* A sampling decision alone: nothing but the decision filled. */
static void check_decision_only(const tg_context_t *ctx, const tg_context_t *before)
{
    check_decision(ctx);
    FUZZ_CHECK(fuzz_same_ids(ctx, before) && ctx->format == before->format);
}

static const char *present_or_null(const char *value)
{
    return value[0] ? value : NULL;
}

/* What tg_inject_formats does with the multi values: an empty one is no header. */
static apr_status_t parse_formatted_multi(const tg_b3_multi_t *multi, tg_context_t *out)
{
    return tg_b3_parse_multi(present_or_null(multi->trace_id), present_or_null(multi->span_id),
                             present_or_null(multi->parent_span_id), present_or_null(multi->sampled),
                             present_or_null(multi->flags), out);
}

static void check_sent_on(const tg_context_t *ctx)
{
    char single[TG_B3_SINGLE_MAX + 1];
    tg_b3_multi_t multi;
    tg_context_t again;

    FUZZ_CHECK(!tg_trace_id_is_zero(ctx->trace_id) && ctx->span_id != 0);
    check_decision(ctx);

    tg_b3_format_single(ctx, single);
    FUZZ_CHECK(strlen(single) <= TG_B3_SINGLE_MAX);
    FUZZ_CHECK(tg_b3_parse_single(single, &again) == APR_SUCCESS);
    FUZZ_CHECK(again.format == TG_FORMAT_B3);
    FUZZ_CHECK(tg_trace_id_equal(again.trace_id, ctx->trace_id) && again.span_id == ctx->span_id);
    FUZZ_CHECK(again.parent_id == fuzz_b3_single_parent(ctx) && fuzz_same_decision(&again, ctx));

    tg_b3_format_multi(ctx, &multi);
    FUZZ_CHECK(parse_formatted_multi(&multi, &again) == APR_SUCCESS);
    FUZZ_CHECK(again.format == TG_FORMAT_B3_MULTI);
    FUZZ_CHECK(fuzz_same_ids(&again, ctx) && fuzz_same_decision(&again, ctx));
}

static void fuzz_single(const char *value)
{
    tg_context_t ctx, before;
    apr_status_t rv;
    memset(&ctx, 0, sizeof(ctx));
    ctx.sampling = TG_SAMPLING_DEFER;
    before = ctx;
    rv = tg_b3_parse_single(value, &ctx);
    if (rv == APR_SUCCESS) {
        FUZZ_CHECK(ctx.format == TG_FORMAT_B3);
        check_sent_on(&ctx);
    }
    else if (rv == APR_INCOMPLETE) {
        check_decision_only(&ctx, &before);
    }
    else {
        FUZZ_CHECK(rv == APR_EINVAL);
        FUZZ_CHECK(fuzz_same_context(&ctx, &before));
    }
}

static void fuzz_multi(unsigned present, const char *const *values)
{
    const char *headers[MULTI_HEADERS];
    tg_context_t ctx, before;
    apr_status_t rv;
    int i;
    for (i = 0; i < MULTI_HEADERS; i++)
        headers[i] = present & (1u << i) ? (values[i] ? values[i] : "") : NULL;
    memset(&ctx, 0, sizeof(ctx));
    ctx.sampling = TG_SAMPLING_DEFER;
    before = ctx;
    rv = tg_b3_parse_multi(headers[TRACE_ID], headers[SPAN_ID], headers[PARENT_SPAN_ID],
                           headers[SAMPLED], headers[FLAGS], &ctx);
    FUZZ_CHECK((rv == APR_NOTFOUND) == !(present & ((1u << MULTI_HEADERS) - 1)));
    if (rv == APR_SUCCESS) {
        FUZZ_CHECK(ctx.format == TG_FORMAT_B3_MULTI);
        FUZZ_CHECK(headers[TRACE_ID] && headers[SPAN_ID]);
        check_sent_on(&ctx);
    }
    else if (rv == APR_INCOMPLETE) {
        FUZZ_CHECK(!headers[TRACE_ID] && !headers[SPAN_ID] && !headers[PARENT_SPAN_ID]);
        check_decision_only(&ctx, &before);
    }
    else {
        FUZZ_CHECK(rv == APR_EINVAL || rv == APR_NOTFOUND);
        FUZZ_CHECK(fuzz_same_context(&ctx, &before));
    }
}

void fuzz_one(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    const char *values[MULTI_HEADERS];
    if (size == 0)
        return;
    fuzz_split(data + 1, size - 1, values, MULTI_HEADERS, pool);
    fuzz_single(values[0]);
    fuzz_multi(data[0], values);
}
