#include "tg_b3.h"

#include <string.h>

#include "tg_slice.h"

/* httpd joins a repeated request header into one value with ", "; the
 * first one counts, without its surrounding whitespace. */
static tg_slice_t first_value(const char *value)
{
    const char *comma = strchr(value, ',');
    return tg_slice_trim_ows(value, comma ? comma : value + strlen(value));
}

static int field_is(tg_slice_t field, const char *literal)
{
    return field.len == strlen(literal) && memcmp(field.text, literal, field.len) == 0;
}

static int parse_span_id(tg_slice_t field, uint64_t *out)
{
    return field.len == TG_SPAN_ID_HEX_LEN && tg_hex_to_u64(field.text, field.len, out) && *out != 0;
}

static int parse_trace_id(tg_slice_t field, tg_trace_id_t *out)
{
    return tg_trace_id_from_hex(field.text, field.len, out) && !tg_trace_id_is_zero(*out);
}

/* The single header's sampling state: 1, 0 or d (debug, which implies
 * accept). */
static int parse_sampling_state(tg_slice_t field, tg_sampling_t *sampling, int *debug)
{
    *debug = field_is(field, "d");
    if (*debug || field_is(field, "1"))
        *sampling = TG_SAMPLING_ACCEPT;
    else if (field_is(field, "0"))
        *sampling = TG_SAMPLING_DENY;
    else
        return 0;
    return 1;
}

static void init_context(tg_context_t *ctx, tg_format_t format)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->sampling = TG_SAMPLING_DEFER;
    ctx->format = format;
}

/* A sampling decision without ids fills only what it says. */
static apr_status_t decision_only(const tg_context_t *ctx, tg_context_t *out)
{
    out->sampling = ctx->sampling;
    out->debug = ctx->debug;
    return APR_INCOMPLETE;
}

/* Splits off the part of `rest` before its next dash (all of it when there
 * is none) and says whether a dash followed. */
static int take_part(tg_slice_t *rest, tg_slice_t *part)
{
    const char *dash = memchr(rest->text, '-', rest->len);
    size_t consumed;
    part->text = rest->text;
    part->len = dash ? (size_t)(dash - rest->text) : rest->len;
    consumed = part->len + (dash ? 1 : 0);
    rest->text += consumed;
    rest->len -= consumed;
    return dash != NULL;
}

/* {trace}-{span}[-{sampling}[-{parent}]] */
static int parse_single_ids(tg_slice_t rest, tg_context_t *ctx)
{
    tg_slice_t part;
    int more = take_part(&rest, &part);
    if (!more || !parse_trace_id(part, &ctx->trace_id))
        return 0;
    more = take_part(&rest, &part);
    if (!parse_span_id(part, &ctx->span_id))
        return 0;
    if (!more)
        return 1;
    more = take_part(&rest, &part);
    if (!parse_sampling_state(part, &ctx->sampling, &ctx->debug))
        return 0;
    if (!more)
        return 1;
    more = take_part(&rest, &part);
    return !more && parse_span_id(part, &ctx->parent_id);
}

apr_status_t tg_b3_parse_single(const char *value, tg_context_t *out)
{
    tg_context_t ctx;
    tg_slice_t field;
    if (!value)
        return APR_NOTFOUND;
    field = first_value(value);
    init_context(&ctx, TG_FORMAT_B3);
    if (parse_sampling_state(field, &ctx.sampling, &ctx.debug)) {
        return decision_only(&ctx, out);
    }
    if (!parse_single_ids(field, &ctx))
        return APR_EINVAL;
    *out = ctx;
    return APR_SUCCESS;
}

/* A multi header that is present must hold a value: "" and "-" are
 * malformed, and so is anything that does not parse. */
apr_status_t tg_b3_parse_multi(const char *trace_id, const char *span_id,
                               const char *parent_span_id, const char *sampled,
                               const char *flags, tg_context_t *out)
{
    tg_context_t ctx;
    init_context(&ctx, TG_FORMAT_B3_MULTI);
    if (!trace_id && !span_id && !parent_span_id && !sampled && !flags)
        return APR_NOTFOUND;
    if (sampled) {
        /* Tracers older than the specification send true/false, which it
         * asks us to accept. */
        tg_slice_t field = first_value(sampled);
        if (field_is(field, "1") || field_is(field, "true"))
            ctx.sampling = TG_SAMPLING_ACCEPT;
        else if (field_is(field, "0") || field_is(field, "false"))
            ctx.sampling = TG_SAMPLING_DENY;
        else
            return APR_EINVAL;
    }
    if (flags) {
        tg_slice_t field = first_value(flags);
        if (field_is(field, "1"))
            ctx.debug = 1;
        else if (!field_is(field, "0"))
            return APR_EINVAL;
    }
    if (ctx.debug)
        ctx.sampling = TG_SAMPLING_ACCEPT;
    if (parent_span_id && !parse_span_id(first_value(parent_span_id), &ctx.parent_id))
        return APR_EINVAL;
    if (!trace_id && !span_id) {
        /* Only a decision: Sampled or Flags (a parent is not one). */
        if (parent_span_id)
            return APR_EINVAL;
        return decision_only(&ctx, out);
    }
    if (!trace_id || !span_id || !parse_trace_id(first_value(trace_id), &ctx.trace_id)
        || !parse_span_id(first_value(span_id), &ctx.span_id))
        return APR_EINVAL;
    *out = ctx;
    return APR_SUCCESS;
}

static void format_sampling(const tg_context_t *ctx, char out[2])
{
    out[0] = ctx->debug ? 'd' : ctx->sampling == TG_SAMPLING_ACCEPT ? '1'
           : ctx->sampling == TG_SAMPLING_DENY ? '0' : '\0';
    out[1] = '\0';
}

/* A trace id that arrived with 64 bits goes on with 64 bits, so an old B3
 * caller downstream sees the id it knows. */
static void format_trace_id(tg_trace_id_t id, char out[TG_TRACE_ID_HEX_LEN + 1])
{
    if (id.hi == 0)
        tg_u64_to_hex(id.lo, out);
    else
        tg_trace_id_to_hex(id, out);
}

void tg_b3_format_single(const tg_context_t *ctx, char out[TG_B3_SINGLE_MAX + 1])
{
    char sampling[2];
    size_t len;
    format_trace_id(ctx->trace_id, out);
    len = strlen(out);
    out[len++] = '-';
    tg_u64_to_hex(ctx->span_id, out + len);
    len += TG_SPAN_ID_HEX_LEN;
    format_sampling(ctx, sampling);
    /* The parent can only follow a sampling state. */
    if (sampling[0]) {
        out[len++] = '-';
        out[len++] = sampling[0];
        if (ctx->parent_id) {
            out[len++] = '-';
            tg_u64_to_hex(ctx->parent_id, out + len);
            len += TG_SPAN_ID_HEX_LEN;
        }
    }
    out[len] = '\0';
}

void tg_b3_format_multi(const tg_context_t *ctx, tg_b3_multi_t *out)
{
    format_trace_id(ctx->trace_id, out->trace_id);
    tg_u64_to_hex(ctx->span_id, out->span_id);
    if (ctx->parent_id)
        tg_u64_to_hex(ctx->parent_id, out->parent_span_id);
    else
        out->parent_span_id[0] = '\0';
    /* Debug implies accept: Flags says it and Sampled stays out. */
    if (ctx->debug)
        out->sampled[0] = '\0';
    else
        format_sampling(ctx, out->sampled);
    out->sampled[1] = '\0';
    out->flags[0] = ctx->debug ? '1' : '\0';
    out->flags[1] = '\0';
}
