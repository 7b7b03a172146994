#include "tg_osprofiler.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "tg_hmac.h"
#include "tg_json.h"

/* osprofiler's payload is two UUIDs in about 100 base64 characters; a header
 * much longer than that is not from osprofiler and not worth decoding. */
#define MAX_INFO_LEN 4096

/* 8-4-4-4-12, as Python's str(uuid.UUID) writes it; like uuid.UUID we
 * read either case. */
#define UUID_LEN 36

static int is_uuid_dash_position(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

static int parse_uuid(const char *text, uint64_t *hi, uint64_t *lo)
{
    char digits[TG_TRACE_ID_HEX_LEN];
    size_t i, n = 0;
    if (strlen(text) != UUID_LEN)
        return 0;
    for (i = 0; i < UUID_LEN; i++) {
        if (is_uuid_dash_position(i)) {
            if (text[i] != '-')
                return 0;
        }
        else {
            digits[n++] = apr_tolower(text[i]);
        }
    }
    return tg_hex_to_u64(digits, TG_SPAN_ID_HEX_LEN, hi)
           && tg_hex_to_u64(digits + TG_SPAN_ID_HEX_LEN, TG_SPAN_ID_HEX_LEN, lo);
}

static void format_uuid(uint64_t hi, uint64_t lo, char out[UUID_LEN])
{
    char digits[TG_TRACE_ID_HEX_LEN + 1];
    tg_u64_to_hex(hi, digits);
    tg_u64_to_hex(lo, digits + TG_SPAN_ID_HEX_LEN);
    memcpy(out, digits, 8);
    out[8] = '-';
    memcpy(out + 9, digits + 8, 4);
    out[13] = '-';
    memcpy(out + 14, digits + 12, 4);
    out[18] = '-';
    memcpy(out + 19, digits + 16, 4);
    out[23] = '-';
    memcpy(out + 24, digits + 20, 12);
}

static const char base64url_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The two digits of every 12 bits: a group of three bytes is two lookups.
 * Every request an app serves carries a header of 140 digits. */
static char base64url_pairs[1 << 12][2];
static pthread_once_t base64url_pairs_once = PTHREAD_ONCE_INIT;

static void make_base64url_pairs(void)
{
    unsigned bits;
    for (bits = 0; bits < sizeof(base64url_pairs) / sizeof(base64url_pairs[0]); bits++) {
        base64url_pairs[bits][0] = base64url_digits[bits >> 6];
        base64url_pairs[bits][1] = base64url_digits[bits & 63];
    }
}

static inline void encode_base64url_group(const unsigned char in[3], char out[4])
{
    uint32_t bits = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
    memcpy(out, base64url_pairs[bits >> 12], 2);
    memcpy(out + 2, base64url_pairs[bits & 0xFFF], 2);
}

/* Two groups from one load of eight bytes, of which the first six count:
 * the caller leaves at least eight bytes from in. */
static inline void encode_base64url_two_groups(const unsigned char *in, char out[8])
{
    uint64_t bits;
    memcpy(&bits, in, sizeof(bits));
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    bits = __builtin_bswap64(bits);
#endif
    bits >>= 16;
    memcpy(out, base64url_pairs[(bits >> 36) & 0xFFF], 2);
    memcpy(out + 2, base64url_pairs[(bits >> 24) & 0xFFF], 2);
    memcpy(out + 4, base64url_pairs[(bits >> 12) & 0xFFF], 2);
    memcpy(out + 6, base64url_pairs[bits & 0xFFF], 2);
}

/* Padded base64url, as Python's urlsafe_b64encode writes it, into a new
 * string in pool. */
static char *base64url_encode(const unsigned char *in, size_t len, apr_pool_t *pool)
{
    size_t whole = len / 3 * 3, rest = len - whole, i;
    char *out = apr_palloc(pool, (len + 2) / 3 * 4 + 1), *at = out;
    pthread_once(&base64url_pairs_once, make_base64url_pairs);
    for (i = 0; i + 8 <= len && i + 6 <= whole; i += 6, at += 8)
        encode_base64url_two_groups(in + i, at);
    for (; i < whole; i += 3, at += 4)
        encode_base64url_group(in + i, at);
    if (rest) {
        /* The last bytes padded with zero bits, whose digits become '='. */
        unsigned char last[3] = { 0, 0, 0 };
        memcpy(last, in + whole, rest);
        encode_base64url_group(last, at);
        memset(at + 1 + rest, '=', 3 - rest);
        at += 4;
    }
    *at = '\0';
    return out;
}

static int base64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Strict padded base64url, the only form Python's urlsafe_b64encode
 * writes: whole quads, '=' only as the last one or two characters, and no
 * stray bits in the final digit.  Returns NULL for anything else. */
static char *base64url_decode(const char *text, size_t len, apr_pool_t *pool, size_t *out_len)
{
    size_t padding = 0, digits, i, n = 0;
    unsigned long bits = 0;
    int bit_count = 0;
    char *out;
    if (len == 0 || len % 4 != 0)
        return NULL;
    while (padding < 2 && text[len - 1 - padding] == '=')
        padding++;
    digits = len - padding;
    out = apr_palloc(pool, digits * 3 / 4 + 1);
    for (i = 0; i < digits; i++) {
        int value = base64url_value(text[i]);
        if (value < 0)
            return NULL;
        bits = (bits << 6) | (unsigned long)value;
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            out[n++] = (char)((bits >> bit_count) & 0xff);
        }
    }
    if (bits & ((1UL << bit_count) - 1))
        return NULL;
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* Whether `hmac` (osprofiler strips it) is the signature of info under one
 * of the keys.  Every key is tried, so the time does not tell which one. */
static int signed_with_any(const char *info, size_t info_len, const char *hmac,
                           const apr_array_header_t *keys)
{
    const char *start = hmac, *end;
    int matched = 0, i;
    if (!hmac)
        return 0;
    while (*start == ' ' || *start == '\t')
        start++;
    end = start + strlen(start);
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    for (i = 0; i < keys->nelts; i++) {
        const char *key = APR_ARRAY_IDX(keys, i, const char *);
        char expected[TG_HMAC_SHA1_HEX_LEN + 1];
        tg_hmac_sha1_hex(key, strlen(key), info, info_len, expected);
        matched |= tg_constant_time_equal(start, (size_t)(end - start), expected, TG_HMAC_SHA1_HEX_LEN);
    }
    return matched;
}

apr_status_t tg_osprofiler_parse(const char *info, const char *hmac,
                                 const apr_array_header_t *keys, apr_pool_t *pool,
                                 tg_context_t *out)
{
    tg_context_t ctx;
    size_t info_len, json_len;
    const char *json, *base_id, *parent_id;
    uint64_t parent_hi, parent_lo;
    if (!info)
        return APR_NOTFOUND;
    info_len = strnlen(info, MAX_INFO_LEN + 1);
    if (info_len > MAX_INFO_LEN)
        return APR_EINVAL;
    if (keys && keys->nelts > 0 && !signed_with_any(info, info_len, hmac, keys))
        return APR_EACCES;
    memset(&ctx, 0, sizeof(ctx));
    json = base64url_decode(info, info_len, pool, &json_len);
    if (!json || !tg_json_object_get_string(json, json_len, "base_id", pool, &base_id))
        return APR_EINVAL;
    /* parent_id is optional: osprofiler's profiler.init then takes base_id
     * as the parent. */
    if (!tg_json_object_get_string(json, json_len, "parent_id", pool, &parent_id))
        parent_id = base_id;
    if (!parse_uuid(base_id, &ctx.trace_id.hi, &ctx.trace_id.lo)
        || !parse_uuid(parent_id, &parent_hi, &parent_lo)
        || tg_trace_id_is_zero(ctx.trace_id) || parent_hi == 0)
        return APR_EINVAL;
    ctx.span_id = parent_hi;
    ctx.sampling = TG_SAMPLING_ACCEPT;
    ctx.format = TG_FORMAT_X_TRACE_INFO;
    *out = ctx;
    return APR_SUCCESS;
}

apr_status_t tg_osprofiler_span_ids(const char *base_id, const char *trace_id,
                                    const char *parent_id, tg_context_t *parent,
                                    uint64_t *span_id)
{
    tg_context_t ctx;
    uint64_t id, low_bits, parent_hi;
    memset(&ctx, 0, sizeof(ctx));
    if (!base_id || !trace_id || !parent_id
        || !parse_uuid(base_id, &ctx.trace_id.hi, &ctx.trace_id.lo)
        || !parse_uuid(trace_id, &id, &low_bits) || !parse_uuid(parent_id, &parent_hi, &low_bits)
        || tg_trace_id_is_zero(ctx.trace_id) || id == 0 || parent_hi == 0)
        return APR_EINVAL;
    /* osprofiler's profiler starts its stack as [base_id, parent_id or
     * base_id]: base_id as the parent is no span. */
    if (strcasecmp(parent_id, base_id) != 0)
        ctx.span_id = parent_hi;
    ctx.sampling = TG_SAMPLING_ACCEPT;
    ctx.format = TG_FORMAT_X_TRACE_INFO;
    *parent = ctx;
    *span_id = id;
    return APR_SUCCESS;
}

/* The JSON osprofiler signs, byte for byte what Python's json.dumps writes
 * for the same dict: {"base_id": "<uuid>", "parent_id": "<uuid>"}. */
#define INFO_JSON_HEAD "{\"base_id\": \""
#define INFO_JSON_MIDDLE "\", \"parent_id\": \""
#define INFO_JSON_TAIL "\"}"
#define LITERAL_LEN(literal) (sizeof(literal) - 1)
#define INFO_JSON_LEN \
    (LITERAL_LEN(INFO_JSON_HEAD) + UUID_LEN + LITERAL_LEN(INFO_JSON_MIDDLE) + UUID_LEN + LITERAL_LEN(INFO_JSON_TAIL))

const char *tg_osprofiler_format(const tg_context_t *ctx, const char *key,
                                 apr_pool_t *pool, const char **hmac)
{
    char json[INFO_JSON_LEN], *at = json;
    const char *info;
    memcpy(at, INFO_JSON_HEAD, LITERAL_LEN(INFO_JSON_HEAD));
    at += LITERAL_LEN(INFO_JSON_HEAD);
    format_uuid(ctx->trace_id.hi, ctx->trace_id.lo, at);
    at += UUID_LEN;
    memcpy(at, INFO_JSON_MIDDLE, LITERAL_LEN(INFO_JSON_MIDDLE));
    at += LITERAL_LEN(INFO_JSON_MIDDLE);
    format_uuid(ctx->span_id, ctx->trace_id.lo, at);
    at += UUID_LEN;
    memcpy(at, INFO_JSON_TAIL, LITERAL_LEN(INFO_JSON_TAIL));
    info = base64url_encode((const unsigned char *)json, sizeof(json), pool);
    *hmac = NULL;
    if (key) {
        char *signature = apr_palloc(pool, TG_HMAC_SHA1_HEX_LEN + 1);
        tg_hmac_sha1_hex(key, strlen(key), info, strlen(info), signature);
        *hmac = signature;
    }
    return info;
}
