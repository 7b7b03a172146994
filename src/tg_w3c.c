#include "tg_w3c.h"

#include <string.h>

#include "tg_slice.h"

/* version "-" trace-id "-" parent-id "-" trace-flags */
#define VERSION_AT 0
#define TRACE_ID_AT 3
#define PARENT_ID_AT 36
#define FLAGS_AT 53

/* tracestate key and value grammar (W3C Trace Context, tracestate). */
#define KEY_MAX 256
#define VALUE_MAX 256

static int dash_at(tg_slice_t value, size_t pos)
{
    return value.text[pos] == '-';
}

apr_status_t tg_w3c_parse_traceparent(const char *header, tg_context_t *out)
{
    tg_context_t ctx;
    uint64_t version, flags;
    tg_slice_t value;
    if (!header)
        return APR_NOTFOUND;
    value = tg_slice_trim_ows(header, header + strlen(header));
    if (value.len < TG_TRACEPARENT_LEN || !tg_hex_to_u64(value.text + VERSION_AT, 2, &version)
        || version == 0xff)
        return APR_EINVAL;
    /* A later version may append fields after a dash; version 00 may not. */
    if (value.len > TG_TRACEPARENT_LEN && (version == 0 || !dash_at(value, TG_TRACEPARENT_LEN)))
        return APR_EINVAL;
    memset(&ctx, 0, sizeof(ctx));
    if (!dash_at(value, TRACE_ID_AT - 1) || !dash_at(value, PARENT_ID_AT - 1)
        || !dash_at(value, FLAGS_AT - 1)
        || !tg_trace_id_from_hex(value.text + TRACE_ID_AT, TG_TRACE_ID_HEX_LEN, &ctx.trace_id)
        || !tg_hex_to_u64(value.text + PARENT_ID_AT, TG_SPAN_ID_HEX_LEN, &ctx.span_id)
        || !tg_hex_to_u64(value.text + FLAGS_AT, 2, &flags)
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

/* ---- tracestate ---- */

static int is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_key_char(char c)
{
    return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}

static int valid_key(const char *key, size_t len)
{
    size_t i;
    if (len == 0 || len > KEY_MAX || !(is_lcalpha(key[0]) || is_digit(key[0])))
        return 0;
    for (i = 1; i < len; i++)
        if (!is_key_char(key[i]))
            return 0;
    return 1;
}

/* The member was trimmed, so the value cannot end in a space. */
static int valid_value(const char *value, size_t len)
{
    size_t i;
    if (len == 0 || len > VALUE_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if (value[i] < 0x20 || value[i] > 0x7e || value[i] == ',' || value[i] == '=')
            return 0;
    return 1;
}

/* Length of the key of a member already checked to hold a '='. */
static size_t key_len(tg_slice_t member)
{
    return (size_t)((const char *)memchr(member.text, '=', member.len) - member.text);
}

static int valid_member(tg_slice_t member)
{
    const char *equals = memchr(member.text, '=', member.len);
    size_t key;
    if (!equals)
        return 0;
    key = (size_t)(equals - member.text);
    return valid_key(member.text, key) && valid_value(equals + 1, member.len - key - 1);
}

static int key_seen(const tg_slice_t *members, size_t count, tg_slice_t member)
{
    size_t len = key_len(member), i;
    for (i = 0; i < count; i++)
        if (key_len(members[i]) == len && memcmp(members[i].text, member.text, len) == 0)
            return 1;
    return 0;
}

static size_t list_len(const tg_slice_t *members, size_t count)
{
    size_t len = count - 1, i; /* the commas */
    for (i = 0; i < count; i++)
        len += members[i].len;
    return len;
}

/* Drops whole members until the list fits: long ones first, each time the
 * last of them, then from the end. */
static void cut_to_fit(tg_slice_t *members, size_t *count)
{
    while (*count > 0 && list_len(members, *count) > TG_TRACESTATE_MAX_LEN) {
        size_t victim = *count - 1, i;
        for (i = *count; i-- > 0;) {
            if (members[i].len > TG_TRACESTATE_LONG_MEMBER) {
                victim = i;
                break;
            }
        }
        memmove(members + victim, members + victim + 1, (*count - victim - 1) * sizeof(*members));
        (*count)--;
    }
}

static const char *join(const tg_slice_t *members, size_t count, apr_pool_t *pool)
{
    char *list = apr_palloc(pool, list_len(members, count) + 1), *at = list;
    size_t i;
    for (i = 0; i < count; i++) {
        if (i > 0)
            *at++ = ',';
        memcpy(at, members[i].text, members[i].len);
        at += members[i].len;
    }
    *at = '\0';
    return list;
}

apr_status_t tg_w3c_parse_tracestate(const char *value, apr_pool_t *pool, const char **out)
{
    tg_slice_t kept[TG_TRACESTATE_MAX_MEMBERS];
    size_t received = 0, count = 0;
    const char *cursor = value;
    if (!value)
        return APR_NOTFOUND;
    for (;;) {
        const char *comma = strchr(cursor, ',');
        const char *end = comma ? comma : cursor + strlen(cursor);
        tg_slice_t member = tg_slice_trim_ows(cursor, end);
        if (member.len > 0) {
            if (++received > TG_TRACESTATE_MAX_MEMBERS || !valid_member(member))
                return APR_EINVAL;
            /* We write no key of our own, so a duplicate is another
             * vendor's, which the spec lets us discard: the first stands. */
            if (!key_seen(kept, count, member))
                kept[count++] = member;
        }
        if (!comma)
            break;
        cursor = comma + 1;
    }
    cut_to_fit(kept, &count);
    *out = count > 0 ? join(kept, count, pool) : NULL;
    return APR_SUCCESS;
}
