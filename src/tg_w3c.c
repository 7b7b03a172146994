#include "tg_w3c.h"

#include <string.h>

/* version "-" trace-id "-" parent-id "-" trace-flags */
#define VERSION_AT 0
#define TRACE_ID_AT 3
#define PARENT_ID_AT 36
#define FLAGS_AT 53

static int dash_at(const char *value, size_t pos)
{
    return value[pos] == '-';
}

apr_status_t tg_w3c_parse_traceparent(const char *value, tg_context_t *out)
{
    tg_context_t ctx;
    uint64_t version, flags;
    size_t len;
    if (!value)
        return APR_NOTFOUND;
    len = strlen(value);
    if (len < TG_TRACEPARENT_LEN || !tg_hex_to_u64(value + VERSION_AT, 2, &version) || version == 0xff)
        return APR_EINVAL;
    /* A later version may append fields after a dash; version 00 may not. */
    if (len > TG_TRACEPARENT_LEN && (version == 0 || !dash_at(value, TG_TRACEPARENT_LEN)))
        return APR_EINVAL;
    memset(&ctx, 0, sizeof(ctx));
    if (!dash_at(value, TRACE_ID_AT - 1) || !dash_at(value, PARENT_ID_AT - 1) || !dash_at(value, FLAGS_AT - 1)
        || !tg_trace_id_from_hex(value + TRACE_ID_AT, TG_TRACE_ID_HEX_LEN, &ctx.trace_id)
        || !tg_hex_to_u64(value + PARENT_ID_AT, TG_SPAN_ID_HEX_LEN, &ctx.span_id)
        || !tg_hex_to_u64(value + FLAGS_AT, 2, &flags)
        || tg_trace_id_is_zero(ctx.trace_id) || ctx.span_id == 0)
        return APR_EINVAL;
    ctx.w3c_flags = (unsigned char)flags;
    ctx.sampling = (flags & TG_W3C_FLAG_SAMPLED) ? TG_SAMPLING_ACCEPT : TG_SAMPLING_DENY;
    ctx.format = TG_FORMAT_TRACECONTEXT;
    *out = ctx;
    return APR_SUCCESS;
}

void tg_w3c_format_traceparent(const tg_context_t *ctx, char out[TG_TRACEPARENT_LEN + 1])
{
    static const char hex_digits[] = "0123456789abcdef";
    unsigned flags = ctx->w3c_flags & TG_W3C_FLAG_RANDOM;
    if (ctx->sampling == TG_SAMPLING_ACCEPT || ctx->debug)
        flags |= TG_W3C_FLAG_SAMPLED;
    memcpy(out, "00-", 3);
    tg_trace_id_to_hex(ctx->trace_id, out + TRACE_ID_AT);
    out[PARENT_ID_AT - 1] = '-';
    tg_u64_to_hex(ctx->span_id, out + PARENT_ID_AT);
    out[FLAGS_AT - 1] = '-';
    out[FLAGS_AT] = hex_digits[flags >> 4];
    out[FLAGS_AT + 1] = hex_digits[flags & 0xf];
    out[TG_TRACEPARENT_LEN] = '\0';
}
