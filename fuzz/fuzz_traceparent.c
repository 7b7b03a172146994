/* tg_w3c_parse_traceparent on any header value.
 *
 * A value it takes must give a context that the traceparent we send on
 * carries unchanged, and that header must be the value's own first 55
 * characters (once the optional whitespace around it is gone) under version
 * 00: so nothing the spec rejects (uppercase, a zero id, a bad dash) gets
 * through by being rewritten. */
#include "fuzz.h"

#include <string.h>

#include "tg_w3c.h"

#define VERSION_LEN 2
#define FLAGS_AT (TG_TRACEPARENT_LEN - 2)
#define CARRIED_FLAGS (TG_W3C_FLAG_SAMPLED | TG_W3C_FLAG_RANDOM)

void fuzz_one(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    const char *header_value = fuzz_string(data, size, pool);
    const char *value = header_value + strspn(header_value, " \t");
    tg_context_t ctx, again;
    char header[TG_TRACEPARENT_LEN + 1];
    apr_status_t rv = tg_w3c_parse_traceparent(header_value, &ctx);

    FUZZ_CHECK(rv == APR_SUCCESS || rv == APR_EINVAL);
    if (rv != APR_SUCCESS)
        return;
    FUZZ_CHECK(ctx.format == TG_FORMAT_TRACECONTEXT);
    FUZZ_CHECK(!tg_trace_id_is_zero(ctx.trace_id) && ctx.span_id != 0 && ctx.parent_id == 0);
    FUZZ_CHECK(ctx.sampling == (ctx.w3c_flags & TG_W3C_FLAG_SAMPLED ? TG_SAMPLING_ACCEPT : TG_SAMPLING_DENY));
    FUZZ_CHECK(strncmp(value, "ff", VERSION_LEN) != 0);

    tg_w3c_format_traceparent(&ctx, header);
    FUZZ_CHECK(strlen(header) == TG_TRACEPARENT_LEN);
    FUZZ_CHECK(strncmp(header, "00", VERSION_LEN) == 0);
    FUZZ_CHECK(memcmp(header + VERSION_LEN, value + VERSION_LEN, FLAGS_AT - VERSION_LEN) == 0);
    if (!(ctx.w3c_flags & ~CARRIED_FLAGS))
        FUZZ_CHECK(memcmp(header + FLAGS_AT, value + FLAGS_AT, 2) == 0);

    FUZZ_CHECK(tg_w3c_parse_traceparent(header, &again) == APR_SUCCESS);
    FUZZ_CHECK(fuzz_same_ids(&again, &ctx));
    FUZZ_CHECK(again.sampling == ctx.sampling);
    FUZZ_CHECK(again.w3c_flags == (ctx.w3c_flags & CARRIED_FLAGS));
}
