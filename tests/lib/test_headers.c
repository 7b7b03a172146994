/* Server spans from a request's headers, and the headers a span hands on:
 * the module's formats and rules (src/tg_propagation.c), with the keys of
 * TEST_HMAC_KEYS. */
#include <apr_strings.h>
#include <string.h>

#include "lib_tests.h"
#include "tg_osprofiler.h"
#include "tg_propagation.h"
#include "tg_w3c.h"

#define TP_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP_SPAN "00f067aa0ba902b7"
#define B3_TRACE "463ac35c9f6413ad48485a3953bb6124"
#define B3_SPAN "a2fb4a1d1a96d312"

static apr_table_t *headers(void)
{
    return apr_table_make(lib_test_pool, 8);
}

/* The server span started from these headers, stopped and shipped; NULL
 * when it was not shipped (not sampled). */
static const tg_span_t *server_span_of(apr_table_t *request)
{
    int before = shipped_count();
    CU_ASSERT_EQUAL_FATAL(tomograph_start_server("Glance-API", "GET /v2/images", table_get, request),
                          TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_depth(), 1);
    CU_ASSERT_EQUAL(tomograph_stop("GET /v2/images"), TOMOGRAPH_OK);
    return shipped_count() > before ? shipped(before) : NULL;
}

static void assert_continues(const tg_span_t *span, const char *trace_hex, const char *span_hex)
{
    char hex[TG_TRACE_ID_HEX_LEN + 1];
    CU_ASSERT_PTR_NOT_NULL_FATAL(span);
    tg_trace_id_to_hex(span->trace_id, hex);
    CU_ASSERT_STRING_EQUAL(hex + TG_TRACE_ID_HEX_LEN - strlen(trace_hex), trace_hex);
    tg_u64_to_hex(span->parent_id, hex);
    CU_ASSERT_STRING_EQUAL(hex, span_hex);
    CU_ASSERT_EQUAL(span->kind, TG_SPAN_SERVER);
    CU_ASSERT_STRING_EQUAL(span->local.service_name, "glance-api");
}

static void assert_new_trace(const tg_span_t *span)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(span);
    CU_ASSERT_EQUAL(span->parent_id, 0);
    CU_ASSERT_NOT_EQUAL(span->trace_id.lo, 0xa3ce929d0e0e4736ULL);
}

static void test_server_span_continues_traceparent(void)
{
    apr_table_t *request = headers();
    apr_table_set(request, "Traceparent", "00-" TP_TRACE "-" TP_SPAN "-01");
    assert_continues(server_span_of(request), TP_TRACE, TP_SPAN);
}

static void test_server_span_continues_b3(void)
{
    apr_table_t *single = headers(), *multi = headers();
    apr_table_set(single, "b3", B3_TRACE "-" B3_SPAN "-1");
    assert_continues(server_span_of(single), B3_TRACE, B3_SPAN);
    apr_table_set(multi, "X-B3-TraceId", B3_TRACE);
    apr_table_set(multi, "X-B3-SpanId", B3_SPAN);
    apr_table_set(multi, "X-B3-Sampled", "1");
    assert_continues(server_span_of(multi), B3_TRACE, B3_SPAN);
}

/* TOMOGRAPH_HMAC_KEYS is set: X-Trace-Info counts only when signed with
 * one of its keys. */
static void test_server_span_continues_signed_x_trace_info(void)
{
    tg_context_t ctx = { 0 };
    apr_table_t *signed_request = headers(), *unsigned_request = headers();
    const char *hmac, *info;
    tg_trace_id_from_hex(TP_TRACE, 32, &ctx.trace_id);
    tg_hex_to_u64(TP_SPAN, 16, &ctx.span_id);
    ctx.sampling = TG_SAMPLING_ACCEPT;
    info = tg_osprofiler_format(&ctx, "older", lib_test_pool, &hmac);
    apr_table_set(signed_request, "X-Trace-Info", info);
    apr_table_set(signed_request, "X-Trace-HMAC", hmac);
    assert_continues(server_span_of(signed_request), TP_TRACE, TP_SPAN);
    apr_table_set(unsigned_request, "X-Trace-Info", info);
    assert_new_trace(server_span_of(unsigned_request));
}

static void test_malformed_header_starts_a_new_trace(void)
{
    apr_table_t *request = headers();
    apr_table_set(request, "traceparent", "00-" TP_TRACE "-" TP_SPAN "-0x");
    assert_new_trace(server_span_of(request));
    assert_new_trace(server_span_of(headers()));
}

/* An unsampled span is not shipped, but hands its context on, saying so. */
static void test_unsampled_request_is_not_shipped_but_continued(void)
{
    apr_table_t *request = headers(), *out = headers();
    char token[TOMOGRAPH_TOKEN_SIZE];
    apr_table_set(request, "traceparent", "00-" TP_TRACE "-" TP_SPAN "-00");
    tomograph_start_server("s", "unsampled", table_get, request);
    tomograph_start("s", "inside", NULL, 0, NULL);
    tomograph_token(token, sizeof(token));
    tomograph_inject(table_set, out);
    tomograph_stop("inside");
    tomograph_stop("unsampled");
    CU_ASSERT_EQUAL(shipped_count(), 0);
    CU_ASSERT_NSTRING_EQUAL(token, "00-" TP_TRACE "-", 36);
    CU_ASSERT_STRING_EQUAL(token + 52, "-00");
    CU_ASSERT_NSTRING_EQUAL(apr_table_get(out, "b3") + 49, "-0-", 3); /* then the parent */
    CU_ASSERT_PTR_NULL(apr_table_get(out, "X-Trace-Info"));
    /* A bare "do not sample" (an exporter's own request) is honoured too. */
    request = headers();
    apr_table_set(request, "b3", "0");
    CU_ASSERT_PTR_NULL(server_span_of(request));
}

/* The headers the module would write for the same context, made by the
 * core itself: the library only hands them to the caller's set. */
static apr_table_t *headers_the_module_writes(const char *token, uint64_t parent_id,
                                              const char *tracestate)
{
    apr_table_t *expected = headers();
    tg_context_t ctx;
    CU_ASSERT_EQUAL_FATAL(tg_w3c_parse_traceparent(token, &ctx), APR_SUCCESS);
    ctx.parent_id = parent_id;
    ctx.tracestate = tracestate;
    tg_inject_formats(tg_header_table_set, expected, &ctx, TG_FORMATS_PROPAGATE_DEFAULT,
                      TEST_SIGNING_KEY, lib_test_pool);
    return expected;
}

static int same_header(void *other, const char *name, const char *value)
{
    const char *there = apr_table_get(other, name);
    CU_ASSERT_PTR_NOT_NULL(there);
    if (there)
        CU_ASSERT_STRING_EQUAL(there, value);
    return 1;
}

static void assert_same_headers(apr_table_t *got, apr_table_t *expected)
{
    CU_ASSERT_EQUAL(apr_table_elts(got)->nelts, apr_table_elts(expected)->nelts);
    apr_table_do(same_header, expected, got, NULL);
}

static void test_inject_writes_the_modules_headers(void)
{
    apr_table_t *request = headers(), *out = headers();
    char token[TOMOGRAPH_TOKEN_SIZE];
    apr_table_set(request, "traceparent", "00-" TP_TRACE "-" TP_SPAN "-01");
    apr_table_set(request, "tracestate", "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7");
    tomograph_start_server("s", "request", table_get, request);
    tomograph_start("s", "call out", NULL, 0, NULL);
    CU_ASSERT_EQUAL(tomograph_inject(table_set, out), TOMOGRAPH_OK);
    tomograph_token(token, sizeof(token));
    tomograph_stop("call out");
    tomograph_stop("request");
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 2);
    assert_same_headers(out, headers_the_module_writes(token, shipped(0)->parent_id,
                                                       "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
    CU_ASSERT_PTR_NOT_NULL(apr_table_get(out, "X-Trace-HMAC"));
}

static void test_inject_from_a_new_trace(void)
{
    apr_table_t *out = headers();
    char token[TOMOGRAPH_TOKEN_SIZE];
    tomograph_start("s", "client", NULL, 0, NULL);
    tomograph_inject(table_set, out);
    tomograph_token(token, sizeof(token));
    tomograph_stop("client");
    assert_same_headers(out, headers_the_module_writes(token, 0, NULL));
    CU_ASSERT_PTR_NULL(apr_table_get(out, "tracestate"));
    CU_ASSERT_STRING_EQUAL(apr_table_get(out, "traceparent"), token);
}

void lib_test_add_headers(void)
{
    CU_pSuite suite = lib_test_suite("headers");
    LIB_TEST(suite, test_server_span_continues_traceparent);
    LIB_TEST(suite, test_server_span_continues_b3);
    LIB_TEST(suite, test_server_span_continues_signed_x_trace_info);
    LIB_TEST(suite, test_malformed_header_starts_a_new_trace);
    LIB_TEST(suite, test_unsampled_request_is_not_shipped_but_continued);
    LIB_TEST(suite, test_inject_writes_the_modules_headers);
    LIB_TEST(suite, test_inject_from_a_new_trace);
}
