/* tg_osprofiler_parse on any X-Trace-Info and X-Trace-HMAC, with no keys,
 * with an empty list of keys and with two keys.
 *
 * The input is the info, then after a NUL byte the HMAC; without a NUL the
 * HMAC is the right one under the first key, so that the fuzzer reaches
 * what lies behind the signature check.
 *
 * Keys decide only whether a header is taken, never what it says; a
 * context taken must come back the same from the header we send on. */
#include "fuzz.h"

#include <apr_tables.h>
#include <string.h>

#include "tg_hmac.h"
#include "tg_osprofiler.h"

#define MAX_INFO_LEN 4096 /* what tg_osprofiler.c decodes at most */

static const char *const keys[] = { FUZZ_KEY, "another key" };
#define KEY_COUNT (int)(sizeof(keys) / sizeof(keys[0]))

static apr_array_header_t *key_list(apr_pool_t *pool, int n)
{
    apr_array_header_t *list = apr_array_make(pool, KEY_COUNT, sizeof(const char *));
    int i;
    for (i = 0; i < n; i++)
        APR_ARRAY_PUSH(list, const char *) = keys[i];
    return list;
}

/* Whether hmac, as osprofiler reads it (blanks around it stripped), signs
 * info under one of the keys. */
static int signed_by_a_key(const char *info, const char *hmac, apr_pool_t *pool)
{
    size_t len;
    int i;
    hmac += strspn(hmac, " \t");
    len = strlen(hmac);
    while (len > 0 && (hmac[len - 1] == ' ' || hmac[len - 1] == '\t'))
        len--;
    for (i = 0; i < KEY_COUNT; i++)
        if (len == TG_HMAC_SHA1_HEX_LEN && memcmp(hmac, fuzz_signature(info, keys[i], pool), len) == 0)
            return 1;
    return 0;
}

static void check_sent_on(const tg_context_t *ctx, apr_pool_t *pool)
{
    const char *info, *hmac;
    tg_context_t again;
    FUZZ_CHECK(ctx->format == TG_FORMAT_X_TRACE_INFO && ctx->sampling == TG_SAMPLING_ACCEPT);
    FUZZ_CHECK(!tg_trace_id_is_zero(ctx->trace_id) && ctx->span_id != 0 && ctx->parent_id == 0);
    info = tg_osprofiler_format(ctx, keys[1], pool, &hmac);
    FUZZ_CHECK(tg_osprofiler_parse(info, hmac, key_list(pool, KEY_COUNT), pool, &again) == APR_SUCCESS);
    FUZZ_CHECK(fuzz_same_context(&again, ctx));
    FUZZ_CHECK(tg_osprofiler_parse(info, NULL, key_list(pool, KEY_COUNT), pool, &again) == APR_EACCES);
}

void fuzz_one(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    const char *parts[2];
    tg_context_t unkeyed, no_keys, keyed;
    apr_status_t rv_unkeyed, rv_no_keys, rv_keyed;
    const char *info, *hmac;

    fuzz_split(data, size, parts, 2, pool);
    info = parts[0];
    hmac = parts[1] ? parts[1] : fuzz_signature(info, keys[0], pool);
    memset(&unkeyed, 0, sizeof(unkeyed));
    no_keys = keyed = unkeyed;

    rv_unkeyed = tg_osprofiler_parse(info, hmac, NULL, pool, &unkeyed);
    FUZZ_CHECK(rv_unkeyed == APR_SUCCESS || rv_unkeyed == APR_EINVAL);
    rv_no_keys = tg_osprofiler_parse(info, hmac, key_list(pool, 0), pool, &no_keys);
    FUZZ_CHECK(rv_no_keys == rv_unkeyed && fuzz_same_context(&no_keys, &unkeyed));

    rv_keyed = tg_osprofiler_parse(info, hmac, key_list(pool, KEY_COUNT), pool, &keyed);
    FUZZ_CHECK(rv_keyed == APR_SUCCESS || rv_keyed == APR_EINVAL || rv_keyed == APR_EACCES);
    if (strlen(info) <= MAX_INFO_LEN)
        FUZZ_CHECK((rv_keyed == APR_EACCES) == !signed_by_a_key(info, hmac, pool));
    if (rv_keyed != APR_EACCES)
        FUZZ_CHECK(rv_keyed == rv_unkeyed && fuzz_same_context(&keyed, &unkeyed));

    if (rv_unkeyed == APR_SUCCESS)
        check_sent_on(&unkeyed, pool);
}
