#include "unit.h"

#include <apr_strings.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "tg_headers.h"
#include "tg_hmac.h"
#include "tg_log.h"
#include "tg_propagation.h"

/* A header store as simple as can be: names compared without case, as
 * httpd's apr_table_t does. */
#define MAX_HEADERS 32

typedef struct {
    const char *name[MAX_HEADERS];
    const char *value[MAX_HEADERS];
    int count;
} store_t;

static int find(const store_t *store, const char *name)
{
    int i;
    for (i = 0; i < store->count; i++)
        if (strcasecmp(store->name[i], name) == 0)
            return i;
    return -1;
}

static const char *store_get(void *opaque, const char *name)
{
    store_t *store = opaque;
    int i = find(store, name);
    return i < 0 ? NULL : store->value[i];
}

static void store_set(void *opaque, const char *name, const char *value)
{
    store_t *store = opaque;
    int i = find(store, name);
    if (i < 0 && value) {
        CU_ASSERT_FATAL(store->count < MAX_HEADERS);
        i = store->count++;
        store->name[i] = name;
    }
    else if (i >= 0 && !value) {
        store->count--;
        store->name[i] = store->name[store->count];
        store->value[i] = store->value[store->count];
        return;
    }
    if (value)
        store->value[i] = value;
}

static store_t *new_store(void)
{
    store_t *store = apr_pcalloc(tg_test_pool, sizeof(*store));
    return store;
}

static void add(store_t *store, const char *name, const char *value)
{
    store_set(store, name, value);
}

static apr_array_header_t *keys(const char *key)
{
    apr_array_header_t *array = apr_array_make(tg_test_pool, 1, sizeof(const char *));
    if (key)
        APR_ARRAY_PUSH(array, const char *) = key;
    return array;
}

/* One context per format, each with ids of its own. */
#define TP_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP_SPAN "00f067aa0ba902b7"
#define TRACEPARENT "00-" TP_TRACE "-" TP_SPAN "-01"
#define B3_TRACE "463ac35c9f6413ad48485a3953bb6124"
#define B3_SPAN "a2fb4a1d1a96d312"
#define B3_SINGLE B3_TRACE "-" B3_SPAN "-0"
#define MULTI_TRACE "80f198ee56343ba864fe8b2a57d3eff7"
#define MULTI_SPAN "e457b5a2e4d86bd1"
/* osprofiler vector (see test_osprofiler.c): base_id
 * 0af76519-16cd-43dd-8448-eb211c80319c, parent_id
 * b7ad6b71-6920-3331-8448-eb211c80319c, key SECRET_KEY. */
#define KEY "SECRET_KEY"
#define INFO                                                                              \
    "eyJiYXNlX2lkIjogIjBhZjc2NTE5LTE2Y2QtNDNkZC04NDQ4LWViMjExYzgwMzE5YyIsICJwYXJlbnRfaWQi" \
    "OiAiYjdhZDZiNzEtNjkyMC0zMzMxLTg0NDgtZWIyMTFjODAzMTljIn0="
#define INFO_HMAC "ba4548aaf2295f3801c43e2400d81d997fc207dd"

static void add_multi(store_t *store)
{
    add(store, "X-B3-TraceId", MULTI_TRACE);
    add(store, "X-B3-SpanId", MULTI_SPAN);
    add(store, "X-B3-Sampled", "1");
}

static void add_trace_info(store_t *store)
{
    add(store, "X-Trace-Info", INFO);
    add(store, "X-Trace-HMAC", INFO_HMAC);
}

/* Every message of the last extract, one a line, and the last level. */
static char logged[4096];
static tg_log_level_t last_level;

static void record_log(tg_log_level_t level, apr_status_t rv, const char *message)
{
    size_t used = strlen(logged);
    (void)rv;
    last_level = level;
    apr_snprintf(logged + used, sizeof(logged) - used, "%s\n", message);
}

/* tg_extract_in_order with its debug messages recorded instead of printed. */
static apr_status_t extract_in(store_t *store, const tg_format_t *order,
                               const apr_array_header_t *key_list, tg_context_t *ctx)
{
    apr_status_t rv;
    logged[0] = '\0';
    tg_log_set_sink(record_log);
    rv = tg_extract_in_order(store_get, store, order, key_list, tg_test_pool, ctx);
    tg_log_set_sink(NULL);
    return rv;
}

/* The same in the default order. */
static apr_status_t extract(store_t *store, const apr_array_header_t *key_list, tg_context_t *ctx)
{
    return extract_in(store, NULL, key_list, ctx);
}

static tg_context_t extract_ok(store_t *store, const char *key)
{
    tg_context_t ctx;
    CU_ASSERT_EQUAL(extract(store, keys(key), &ctx), APR_SUCCESS);
    return ctx;
}

static void assert_span_hex(uint64_t span_id, const char *expected)
{
    char hex[TG_SPAN_ID_HEX_LEN + 1];
    tg_u64_to_hex(span_id, hex);
    CU_ASSERT_STRING_EQUAL(hex, expected);
}

/* ---- Extract ----------------------------------------------------------- */

static void test_nothing_arrived(void)
{
    tg_context_t ctx;
    memset(&ctx, 0x5a, sizeof(ctx));
    CU_ASSERT_EQUAL(extract(new_store(), keys(KEY), &ctx), APR_NOTFOUND);
    CU_ASSERT_TRUE(tg_trace_id_is_zero(ctx.trace_id));
    CU_ASSERT_EQUAL(ctx.span_id, 0);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DEFER);
    CU_ASSERT_FALSE(ctx.debug);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_NONE);
    CU_ASSERT_EQUAL(ctx.agreeing, 0);
    CU_ASSERT_PTR_NULL(ctx.tracestate);
}

static void test_traceparent_comes_first(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "b3", B3_SINGLE);
    add_multi(store);
    add_trace_info(store);
    add(store, "traceparent", TRACEPARENT);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_TRACECONTEXT);
    assert_span_hex(ctx.span_id, TP_SPAN);
}

static void test_single_b3_before_multi(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add_multi(store);
    add(store, "b3", B3_SINGLE);
    add_trace_info(store);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3);
    assert_span_hex(ctx.span_id, B3_SPAN);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DENY);
}

static void test_multi_before_trace_info(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add_trace_info(store);
    add_multi(store);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3_MULTI);
    assert_span_hex(ctx.span_id, MULTI_SPAN);
}

static void test_trace_info_last(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add_trace_info(store);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_X_TRACE_INFO);
    assert_span_hex(ctx.span_id, "b7ad6b7169203331");
}

static void test_malformed_headers_are_skipped(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "traceparent", "00-" TP_TRACE "-0000000000000000-01");
    add(store, "b3", B3_TRACE "-" B3_SPAN "-x");
    add(store, "X-B3-TraceId", MULTI_TRACE);
    add(store, "X-B3-SpanId", "-");
    add_trace_info(store);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_X_TRACE_INFO);

    store_set(store, "X-B3-SpanId", MULTI_SPAN);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3_MULTI);
}

static void test_trace_info_needs_a_configured_key(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add_trace_info(store);
    CU_ASSERT_EQUAL(extract(store, keys("another key"), &ctx), APR_NOTFOUND);
    CU_ASSERT_TRUE(tg_trace_id_is_zero(ctx.trace_id));
    store_set(store, "X-Trace-HMAC", NULL);
    CU_ASSERT_EQUAL(extract(store, keys(KEY), &ctx), APR_NOTFOUND);
    /* With no keys configured, nothing is checked. */
    CU_ASSERT_EQUAL(extract(store, keys(NULL), &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(extract(store, NULL, &ctx), APR_SUCCESS);
}

static void test_bare_sampling_decision_reaches_new_trace(void)
{
    static const struct {
        const char *b3;
        const char *sampled;
        const char *flags;
        tg_sampling_t sampling;
        int debug;
    } cases[] = {
        {"0", NULL, NULL, TG_SAMPLING_DENY, 0},
        {"1", NULL, NULL, TG_SAMPLING_ACCEPT, 0},
        {"d", NULL, NULL, TG_SAMPLING_ACCEPT, 1},
        {NULL, "0", NULL, TG_SAMPLING_DENY, 0},
        {NULL, NULL, "1", TG_SAMPLING_ACCEPT, 1},
        /* the single header's word counts over the multi headers' */
        {"0", "1", NULL, TG_SAMPLING_DENY, 0},
        {"1", "0", NULL, TG_SAMPLING_ACCEPT, 0},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        store_t *store = new_store();
        tg_context_t ctx;
        add(store, "b3", cases[i].b3);
        add(store, "X-B3-Sampled", cases[i].sampled);
        add(store, "X-B3-Flags", cases[i].flags);
        CU_ASSERT_EQUAL(extract(store, keys(KEY), &ctx), APR_NOTFOUND);
        CU_ASSERT_EQUAL(ctx.sampling, cases[i].sampling);
        CU_ASSERT_EQUAL(ctx.debug, cases[i].debug);
        CU_ASSERT_TRUE(tg_trace_id_is_zero(ctx.trace_id));
        CU_ASSERT_EQUAL(ctx.span_id, 0);
        CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_NONE);
    }
}

/* The single header takes precedence: a bare decision in it overrides the
 * multi headers' one, whose ids still count. */
static void test_bare_single_decision_overrides_multi(void)
{
    static const tg_format_t multi_only[] = {TG_FORMAT_B3_MULTI, TG_FORMAT_NONE};
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "b3", "0");
    add_multi(store);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3_MULTI);
    assert_span_hex(ctx.span_id, MULTI_SPAN);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DENY);
    CU_ASSERT_FALSE(ctx.debug);

    store_set(store, "b3", "d");
    store_set(store, "X-B3-Sampled", "0");
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_TRUE(ctx.debug);

    /* Unless the single header is not to be read at all. */
    CU_ASSERT_EQUAL(extract_in(store, multi_only, keys(KEY), &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DENY);
    CU_ASSERT_FALSE(ctx.debug);
}

static void test_malformed_single_b3_falls_back_to_multi(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "b3", B3_TRACE "-" B3_SPAN "-x");
    add_multi(store);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3_MULTI);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
}

static void test_reads_names_in_any_case(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "x-b3-traceid", MULTI_TRACE);
    add(store, "x-b3-spanid", MULTI_SPAN);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3_MULTI);
}

static void test_logs_skipped_header_by_name_only(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "b3", "evil\r\nvalue");
    extract(store, keys(KEY), &ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "TG01000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "b3"));
    CU_ASSERT_PTR_NULL(strstr(logged, "evil"));
    CU_ASSERT_EQUAL(last_level, TG_LOG_DEBUG);

    store = new_store();
    add(store, "X-Trace-Info", INFO);
    extract(store, keys(KEY), &ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "TG01001"));
}

/* As libtomograph has it: the debug notes are not made at all. */
static void test_logs_nothing_below_the_level(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "b3", "evil\r\nvalue");
    tg_log_set_level(TG_LOG_INFO);
    extract(store, keys(KEY), &ctx);
    tg_log_set_level(TG_LOG_DEBUG);
    CU_ASSERT_STRING_EQUAL(logged, "");
    extract(store, keys(KEY), &ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "TG01000"));
}

/* ---- tracestate -------------------------------------------------------- */

static void test_tracestate_goes_with_a_valid_traceparent(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "traceparent", TRACEPARENT);
    /* Two tracestate headers, as httpd joins them. */
    add(store, "tracestate", "rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE, ");
    ctx = extract_ok(store, KEY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx.tracestate);
    CU_ASSERT_STRING_EQUAL(ctx.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");

    /* An empty one is no tracestate. */
    store_set(store, "tracestate", "");
    CU_ASSERT_PTR_NULL(extract_ok(store, KEY).tracestate);
    store_set(store, "tracestate", NULL);
    CU_ASSERT_PTR_NULL(extract_ok(store, KEY).tracestate);
}

static void test_tracestate_ignored_without_a_valid_traceparent(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "tracestate", "foo=1");
    CU_ASSERT_EQUAL(extract(store, keys(KEY), &ctx), APR_NOTFOUND);
    CU_ASSERT_PTR_NULL(ctx.tracestate);

    add(store, "b3", B3_SINGLE);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3);
    CU_ASSERT_PTR_NULL(ctx.tracestate);

    add(store, "traceparent", "ff-" TP_TRACE "-" TP_SPAN "-01");
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3);
    CU_ASSERT_PTR_NULL(ctx.tracestate);
}

static void test_malformed_tracestate_dropped_whole(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "traceparent", TRACEPARENT);
    add(store, "tracestate", "foo=1,BAR=2,baz=3");
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_TRACECONTEXT);
    assert_span_hex(ctx.span_id, TP_SPAN);
    CU_ASSERT_PTR_NULL(ctx.tracestate);
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "TG01100"));
    CU_ASSERT_PTR_NULL(strstr(logged, "BAR"));
}

/* tracestate describes traceparent's position: it is kept when another
 * format wins with the same ids, lost when the winner is another trace. */
static void test_tracestate_follows_an_agreeing_traceparent(void)
{
    static const tg_format_t b3_first[] = {TG_FORMAT_B3, TG_FORMAT_TRACECONTEXT, TG_FORMAT_NONE};
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "traceparent", "00-" TP_TRACE "-" TP_SPAN "-03");
    add(store, "tracestate", "foo=1");
    add(store, "b3", TP_TRACE "-" TP_SPAN "-1");
    CU_ASSERT_EQUAL(extract_in(store, b3_first, keys(KEY), &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx.tracestate);
    CU_ASSERT_STRING_EQUAL(ctx.tracestate, "foo=1");
    CU_ASSERT_EQUAL(ctx.w3c_flags, 0x03);

    store_set(store, "b3", B3_SINGLE);
    CU_ASSERT_EQUAL(extract_in(store, b3_first, keys(KEY), &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3);
    assert_span_hex(ctx.span_id, B3_SPAN);
    CU_ASSERT_PTR_NULL(ctx.tracestate);
    CU_ASSERT_EQUAL(ctx.w3c_flags, 0);
}

/* ---- Order and agreement ----------------------------------------------- */

/* Four formats, each with its own ids. */
static store_t *every_format_store(void)
{
    store_t *store = new_store();
    add(store, "traceparent", TRACEPARENT);
    add(store, "b3", B3_SINGLE);
    add_multi(store);
    add_trace_info(store);
    return store;
}

static void test_order_decides_among_disagreeing_formats(void)
{
    static const struct {
        tg_format_t order[5];
        tg_format_t expected;
        const char *span;
    } cases[] = {
        {{TG_FORMAT_TRACECONTEXT, TG_FORMAT_B3, TG_FORMAT_X_TRACE_INFO}, TG_FORMAT_TRACECONTEXT, TP_SPAN},
        {{TG_FORMAT_X_TRACE_INFO, TG_FORMAT_TRACECONTEXT}, TG_FORMAT_X_TRACE_INFO, "b7ad6b7169203331"},
        {{TG_FORMAT_B3, TG_FORMAT_TRACECONTEXT}, TG_FORMAT_B3, B3_SPAN},
        {{TG_FORMAT_B3_MULTI, TG_FORMAT_B3}, TG_FORMAT_B3_MULTI, MULTI_SPAN},
        {{TG_FORMAT_B3_MULTI}, TG_FORMAT_B3_MULTI, MULTI_SPAN},
        /* a name twice is read once, where it first comes */
        {{TG_FORMAT_X_TRACE_INFO, TG_FORMAT_B3, TG_FORMAT_X_TRACE_INFO}, TG_FORMAT_X_TRACE_INFO,
         "b7ad6b7169203331"},
        /* what names no format is passed over */
        {{(tg_format_t)42, TG_FORMAT_B3}, TG_FORMAT_B3, B3_SPAN},
    };
    store_t *store = every_format_store();
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_context_t ctx;
        CU_ASSERT_EQUAL(extract_in(store, cases[i].order, keys(KEY), &ctx), APR_SUCCESS);
        CU_ASSERT_EQUAL(ctx.format, cases[i].expected);
        assert_span_hex(ctx.span_id, cases[i].span);
        /* None agrees with another. */
        CU_ASSERT_EQUAL(ctx.agreeing, TG_FORMAT_BIT(cases[i].expected));
    }
}

static void test_formats_not_in_the_order_are_not_read(void)
{
    static const tg_format_t b3_only[] = {TG_FORMAT_B3, TG_FORMAT_NONE};
    static const tg_format_t nothing[] = {TG_FORMAT_NONE};
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "traceparent", TRACEPARENT);
    add_trace_info(store);
    CU_ASSERT_EQUAL(extract_in(store, b3_only, keys(KEY), &ctx), APR_NOTFOUND);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_NONE);
    CU_ASSERT_EQUAL(extract_in(every_format_store(), nothing, keys(KEY), &ctx), APR_NOTFOUND);
    /* NULL is the default order. */
    CU_ASSERT_EQUAL(extract_in(store, NULL, keys(KEY), &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_TRACECONTEXT);
}

static void test_agreeing_formats_are_counted_once(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "traceparent", "00-" B3_TRACE "-" B3_SPAN "-01");
    add(store, "b3", B3_SINGLE);
    add(store, "X-B3-TraceId", B3_TRACE);
    add(store, "X-B3-SpanId", MULTI_SPAN);
    add_trace_info(store);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_TRACECONTEXT);
    CU_ASSERT_EQUAL(ctx.agreeing, TG_FORMAT_BIT(TG_FORMAT_TRACECONTEXT) | TG_FORMAT_BIT(TG_FORMAT_B3));
    /* The first in order speaks for all: its sampled flag, not b3's 0. */
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    /* Those that disagree are named in the debug log, their values are not. */
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "TG01101"));
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "X-B3-*"));
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "X-Trace-Info"));
    CU_ASSERT_PTR_NULL(strstr(logged, MULTI_SPAN));
    CU_ASSERT_EQUAL(last_level, TG_LOG_DEBUG);
}

/* A 64-bit B3 trace id is the same trace as its zero-padded W3C form. */
static void test_64_bit_b3_trace_agrees_with_padded_traceparent(void)
{
    store_t *store = new_store();
    tg_context_t ctx;
    add(store, "traceparent", "00-0000000000000000" "48485a3953bb6124-" B3_SPAN "-01");
    add(store, "X-B3-TraceId", "48485a3953bb6124");
    add(store, "X-B3-SpanId", B3_SPAN);
    ctx = extract_ok(store, KEY);
    CU_ASSERT_EQUAL(ctx.agreeing,
                    TG_FORMAT_BIT(TG_FORMAT_TRACECONTEXT) | TG_FORMAT_BIT(TG_FORMAT_B3_MULTI));
}

/* ---- Format words ------------------------------------------------------ */

static void test_format_words(void)
{
    static const struct {
        const char *word;
        tg_format_t format;
    } cases[] = {
        {"tracecontext", TG_FORMAT_TRACECONTEXT}, {"TraceContext", TG_FORMAT_TRACECONTEXT},
        {"b3", TG_FORMAT_B3},                     {"B3", TG_FORMAT_B3},
        {"b3multi", TG_FORMAT_B3_MULTI},          {"B3Multi", TG_FORMAT_B3_MULTI},
        {"x-trace-info", TG_FORMAT_X_TRACE_INFO}, {"X-Trace-Info", TG_FORMAT_X_TRACE_INFO},
    };
    static const char *const not_formats[] = {
        "", "none", "w3c", "traceparent", "b3-multi", "b3 ", " b3", "b", "x-trace", "x-trace-info2",
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_format_t format = TG_FORMAT_NONE;
        CU_ASSERT_EQUAL(tg_format_parse(cases[i].word, &format), APR_SUCCESS);
        CU_ASSERT_EQUAL(format, cases[i].format);
        /* And the name reads back. */
        CU_ASSERT_EQUAL(tg_format_parse(tg_format_name(format), &format), APR_SUCCESS);
        CU_ASSERT_EQUAL(format, cases[i].format);
    }
    for (i = 0; i < sizeof(not_formats) / sizeof(not_formats[0]); i++) {
        tg_format_t format = TG_FORMAT_B3;
        CU_ASSERT_EQUAL(tg_format_parse(not_formats[i], &format), APR_EINVAL);
        CU_ASSERT_EQUAL(format, TG_FORMAT_B3);
    }
    CU_ASSERT_STRING_EQUAL(tg_format_name(TG_FORMAT_NONE), "none");
}

/* ---- Inject ------------------------------------------------------------ */

static tg_context_t our_context(void)
{
    tg_context_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.trace_id.hi = 0x463ac35c9f6413adULL;
    ctx.trace_id.lo = 0x48485a3953bb6124ULL;
    ctx.span_id = 0x1111222233334444ULL;
    ctx.parent_id = 0xa2fb4a1d1a96d312ULL;
    ctx.sampling = TG_SAMPLING_ACCEPT;
    ctx.w3c_flags = TG_W3C_FLAG_RANDOM;
    return ctx;
}

static store_t *stale_store(void)
{
    store_t *store = new_store();
    add(store, "Accept", "application/json");
    add(store, "traceparent", TRACEPARENT);
    add(store, "tracestate", "vendor=opaque");
    add(store, "b3", B3_SINGLE);
    add(store, "X-B3-TraceId", MULTI_TRACE);
    add(store, "X-B3-SpanId", MULTI_SPAN);
    add(store, "X-B3-ParentSpanId", "0000000000000009");
    add(store, "X-B3-Sampled", "0");
    add(store, "X-B3-Flags", "1");
    add_trace_info(store);
    return store;
}

static void test_inject_replaces_every_trace_header(void)
{
    store_t *store = stale_store();
    tg_context_t ctx = our_context();
    char hmac[TG_HMAC_SHA1_HEX_LEN + 1];
    const char *info;
    tg_inject_formats(store_set, store, &ctx, TG_FORMATS_ALL, KEY, tg_test_pool);
    CU_ASSERT_STRING_EQUAL(store_get(store, "traceparent"),
                           "00-463ac35c9f6413ad48485a3953bb6124-1111222233334444-03");
    CU_ASSERT_STRING_EQUAL(store_get(store, "b3"),
                           "463ac35c9f6413ad48485a3953bb6124-1111222233334444-1-a2fb4a1d1a96d312");
    CU_ASSERT_STRING_EQUAL(store_get(store, "X-B3-TraceId"), "463ac35c9f6413ad48485a3953bb6124");
    CU_ASSERT_STRING_EQUAL(store_get(store, "X-B3-SpanId"), "1111222233334444");
    CU_ASSERT_STRING_EQUAL(store_get(store, "X-B3-ParentSpanId"), "a2fb4a1d1a96d312");
    CU_ASSERT_STRING_EQUAL(store_get(store, "X-B3-Sampled"), "1");
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-Flags"));
    info = store_get(store, "X-Trace-Info");
    CU_ASSERT_PTR_NOT_NULL_FATAL(info);
    CU_ASSERT_STRING_NOT_EQUAL(info, INFO);
    tg_hmac_sha1_hex(KEY, strlen(KEY), info, strlen(info), hmac);
    CU_ASSERT_STRING_EQUAL(store_get(store, "X-Trace-HMAC"), hmac);
    /* The caller's tracestate went with its traceparent. */
    CU_ASSERT_PTR_NULL(store_get(store, "tracestate"));
    /* Not ours to touch. */
    CU_ASSERT_STRING_EQUAL(store_get(store, "Accept"), "application/json");
    CU_ASSERT_EQUAL(store->count, 9);
}

static void test_inject_removes_what_does_not_apply(void)
{
    store_t *store = stale_store();
    tg_context_t ctx = our_context();
    ctx.parent_id = 0;
    ctx.debug = 1;
    tg_inject_formats(store_set, store, &ctx, TG_FORMATS_ALL, NULL, tg_test_pool);
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-ParentSpanId"));
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-Sampled"));
    CU_ASSERT_STRING_EQUAL(store_get(store, "X-B3-Flags"), "1");
    CU_ASSERT_STRING_EQUAL(store_get(store, "b3"), "463ac35c9f6413ad48485a3953bb6124-1111222233334444-d");
    CU_ASSERT_PTR_NOT_NULL(store_get(store, "X-Trace-Info"));
    CU_ASSERT_PTR_NULL(store_get(store, "X-Trace-HMAC"));
    CU_ASSERT_PTR_NULL(store_get(store, "tracestate"));
}

/* Whatever a receiver reads first, it finds our ids. */
static void test_each_injected_format_reads_back(void)
{
    static const char *const read_order[] = {
        "traceparent", "b3", "X-B3-TraceId", "X-Trace-Info",
    };
    store_t *store = new_store();
    tg_context_t ctx = our_context();
    size_t i;
    tg_inject_formats(store_set, store, &ctx, TG_FORMATS_ALL, KEY, tg_test_pool);
    /* All four agree, and say so. */
    CU_ASSERT_EQUAL(extract_ok(store, KEY).agreeing, TG_FORMATS_ALL);
    for (i = 0; i < sizeof(read_order) / sizeof(read_order[0]); i++) {
        tg_context_t back = extract_ok(store, KEY);
        CU_ASSERT_TRUE(tg_trace_id_equal(back.trace_id, ctx.trace_id));
        CU_ASSERT_EQUAL(back.span_id, ctx.span_id);
        CU_ASSERT_EQUAL(back.sampling, TG_SAMPLING_ACCEPT);
        store_set(store, read_order[i], NULL);
    }
    CU_ASSERT_EQUAL(extract(store, keys(KEY), &ctx), APR_NOTFOUND);
}

static void inject_set(store_t *store, const tg_context_t *ctx, tg_format_set_t formats)
{
    tg_inject_formats(store_set, store, ctx, formats, KEY, tg_test_pool);
}

static void test_inject_default_set(void)
{
    store_t *store = stale_store();
    tg_context_t ctx = our_context();
    inject_set(store, &ctx, TG_FORMATS_PROPAGATE_DEFAULT);
    CU_ASSERT_STRING_EQUAL(store_get(store, "traceparent"),
                           "00-463ac35c9f6413ad48485a3953bb6124-1111222233334444-03");
    CU_ASSERT_STRING_EQUAL(store_get(store, "b3"),
                           "463ac35c9f6413ad48485a3953bb6124-1111222233334444-1-a2fb4a1d1a96d312");
    CU_ASSERT_PTR_NOT_NULL(store_get(store, "X-Trace-Info"));
    CU_ASSERT_PTR_NOT_NULL(store_get(store, "X-Trace-HMAC"));
    /* The caller's multi headers do not go on beside ours. */
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-TraceId"));
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-SpanId"));
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-ParentSpanId"));
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-Sampled"));
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-Flags"));
    CU_ASSERT_PTR_NULL(store_get(store, "tracestate"));
    CU_ASSERT_EQUAL(store->count, 5);
}

static void test_inject_only_the_formats_named(void)
{
    static const struct {
        tg_format_set_t formats;
        const char *present;
    } cases[] = {
        {TG_FORMAT_BIT(TG_FORMAT_TRACECONTEXT), "traceparent"},
        {TG_FORMAT_BIT(TG_FORMAT_B3), "b3"},
        {TG_FORMAT_BIT(TG_FORMAT_B3_MULTI), "X-B3-TraceId"},
        {TG_FORMAT_BIT(TG_FORMAT_X_TRACE_INFO), "X-Trace-Info"},
    };
    static const char *const trace_headers[] = {
        "traceparent", "tracestate", "b3", "X-B3-TraceId", "X-B3-SpanId", "X-B3-ParentSpanId",
        "X-B3-Sampled", "X-B3-Flags", "X-Trace-Info", "X-Trace-HMAC",
    };
    size_t i, h;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        store_t *store = stale_store();
        tg_context_t ctx = our_context(), back;
        inject_set(store, &ctx, cases[i].formats);
        CU_ASSERT_PTR_NOT_NULL(store_get(store, cases[i].present));
        /* Only that format is left, and it carries our context. */
        CU_ASSERT_EQUAL(extract(store, keys(KEY), &back), APR_SUCCESS);
        CU_ASSERT_EQUAL(back.span_id, ctx.span_id);
        CU_ASSERT_EQUAL(back.agreeing, cases[i].formats);
        CU_ASSERT_STRING_EQUAL(store_get(store, "Accept"), "application/json");
    }
    {
        store_t *store = stale_store();
        tg_context_t ctx = our_context();
        inject_set(store, &ctx, 0);
        for (h = 0; h < sizeof(trace_headers) / sizeof(trace_headers[0]); h++)
            CU_ASSERT_PTR_NULL(store_get(store, trace_headers[h]));
        CU_ASSERT_EQUAL(store->count, 1);
    }
}

static void test_inject_sends_tracestate_with_traceparent(void)
{
    store_t *store = stale_store();
    tg_context_t ctx = our_context();
    char tracestate[] = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    ctx.tracestate = tracestate;
    inject_set(store, &ctx, TG_FORMATS_PROPAGATE_DEFAULT);
    CU_ASSERT_STRING_EQUAL(store_get(store, "tracestate"), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    /* The store holds its own copy. */
    CU_ASSERT_PTR_NOT_EQUAL(store_get(store, "tracestate"), tracestate);

    inject_set(store, &ctx, TG_FORMAT_BIT(TG_FORMAT_B3));
    CU_ASSERT_PTR_NULL(store_get(store, "tracestate"));
    CU_ASSERT_PTR_NULL(store_get(store, "traceparent"));
}

/* What arrives goes on: the members in their order, the traceparent with our
 * span as its parent. */
static void test_tracestate_passes_through(void)
{
    store_t *in = new_store(), *out = new_store();
    tg_context_t ctx;
    add(in, "traceparent", TRACEPARENT);
    add(in, "tracestate", "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7");
    ctx = extract_ok(in, KEY);
    ctx.parent_id = ctx.span_id;
    ctx.span_id = 0x1111222233334444ULL;
    inject_set(out, &ctx, TG_FORMATS_PROPAGATE_DEFAULT);
    CU_ASSERT_STRING_EQUAL(store_get(out, "traceparent"), "00-" TP_TRACE "-1111222233334444-01");
    CU_ASSERT_STRING_EQUAL(store_get(out, "tracestate"), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
}

/* An unsampled context still goes on, saying so, except to osprofiler, for
 * which a header at all means "profile this". */
static void test_inject_unsampled(void)
{
    store_t *store = stale_store();
    tg_context_t ctx = our_context();
    ctx.sampling = TG_SAMPLING_DENY;
    tg_inject_formats(store_set, store, &ctx, TG_FORMATS_ALL, KEY, tg_test_pool);
    CU_ASSERT_STRING_EQUAL(store_get(store, "traceparent"),
                           "00-463ac35c9f6413ad48485a3953bb6124-1111222233334444-02");
    CU_ASSERT_STRING_EQUAL(store_get(store, "b3"),
                           "463ac35c9f6413ad48485a3953bb6124-1111222233334444-0-a2fb4a1d1a96d312");
    CU_ASSERT_STRING_EQUAL(store_get(store, "X-B3-Sampled"), "0");
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-Flags"));
    CU_ASSERT_PTR_NULL(store_get(store, "X-Trace-Info"));
    CU_ASSERT_PTR_NULL(store_get(store, "X-Trace-HMAC"));

    /* Nor for a decision left to the receiver. */
    ctx.sampling = TG_SAMPLING_DEFER;
    inject_set(store, &ctx, TG_FORMATS_ALL);
    CU_ASSERT_STRING_EQUAL(store_get(store, "b3"), "463ac35c9f6413ad48485a3953bb6124-1111222233334444");
    CU_ASSERT_PTR_NULL(store_get(store, "X-B3-Sampled"));
    CU_ASSERT_PTR_NULL(store_get(store, "X-Trace-Info"));

    /* Debug always profiles. */
    ctx.debug = 1;
    inject_set(store, &ctx, TG_FORMATS_ALL);
    CU_ASSERT_PTR_NOT_NULL(store_get(store, "X-Trace-Info"));
    CU_ASSERT_PTR_NOT_NULL(store_get(store, "X-Trace-HMAC"));
}

/* httpd's headers_in is an apr_table_t: names in any case, NULL removes. */
static void test_apr_table_store(void)
{
    apr_table_t *headers = apr_table_make(tg_test_pool, 4);
    tg_context_t ctx;
    apr_table_set(headers, "TraceParent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    apr_table_set(headers, "X-B3-Sampled", "1");
    CU_ASSERT_EQUAL_FATAL(
        tg_extract_in_order(tg_header_table_get, headers, NULL, NULL, tg_test_pool, &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.span_id, 0xb7ad6b7169203331ULL);
    ctx.span_id = 0x1111111111111111ULL;
    tg_inject_formats(tg_header_table_set, headers, &ctx, TG_FORMAT_BIT(TG_FORMAT_TRACECONTEXT),
                      NULL, tg_test_pool);
    CU_ASSERT_STRING_EQUAL(apr_table_get(headers, "traceparent"),
                           "00-0af7651916cd43dd8448eb211c80319c-1111111111111111-01");
    CU_ASSERT_PTR_NULL(apr_table_get(headers, "x-b3-sampled"));
}

/* Every header of a table, "name: value" lines in order. */
static int append_header(void *lines, const char *name, const char *value)
{
    *(const char **)lines = apr_pstrcat(tg_test_pool, *(const char **)lines, name, ": ", value,
                                        "\n", NULL);
    return 1;
}

static const char *table_lines(const apr_table_t *headers)
{
    const char *lines = "";
    apr_table_do(append_header, &lines, headers, NULL);
    return lines;
}

/* Into a request's headers, injecting adds to a table without trace headers
 * and replaces in one with them: either way, the headers are those of
 * tg_header_table_set, whatever the formats and sampling. */
static void test_inject_into_table_is_setting(void)
{
    static const char *const incoming[] = { NULL, "traceparent", "X-B3-Sampled", "b3",
                                            "X-Trace-Info" };
    tg_format_set_t formats;
    size_t i;
    int sampled;
    for (i = 0; i < sizeof(incoming) / sizeof(*incoming); i++)
        for (formats = 0; formats <= TG_FORMATS_ALL; formats++)
            for (sampled = 0; sampled <= 1; sampled++) {
                apr_table_t *injected = apr_table_make(tg_test_pool, 4), *set;
                tg_context_t ctx = our_context();
                ctx.sampling = sampled ? TG_SAMPLING_ACCEPT : TG_SAMPLING_DENY;
                apr_table_set(injected, "Host", "example.org");
                if (incoming[i])
                    apr_table_set(injected, incoming[i], "1");
                set = apr_table_copy(tg_test_pool, injected);
                tg_inject_into_table(injected, &ctx, formats, KEY, tg_test_pool);
                tg_inject_formats(tg_header_table_set, set, &ctx, formats, KEY, tg_test_pool);
                CU_ASSERT_STRING_EQUAL(table_lines(injected), table_lines(set));
            }
}

/* The names extraction looks for in a store that has none of them. */
typedef struct {
    const char *names[MAX_HEADERS];
    int count;
} asked_t;

static const char *record_name(void *opaque, const char *name)
{
    asked_t *asked = opaque;
    if (asked->count < MAX_HEADERS)
        asked->names[asked->count++] = name;
    return NULL;
}

static const char *in_case(const char *name, int (*change)(int))
{
    char *copy = apr_pstrdup(tg_test_pool, name), *p;
    for (p = copy; *p; p++)
        *p = (char)change((unsigned char)*p);
    return copy;
}

static int may_carry_with_only(const char *name)
{
    apr_table_t *headers = apr_table_make(tg_test_pool, 4);
    apr_table_set(headers, "Host", "example.org");
    apr_table_set(headers, name, "x");
    return (tg_headers_survey(headers) & TG_HEADERS_MAY_CARRY_CONTEXT) != 0;
}

/* The request path extracts only from a table whose names pass this first
 * look: every header a format reads must, whatever its case, and the
 * headers of a plain request must not. */
static void test_first_look_passes_every_trace_header(void)
{
    static const char *const companions[] = { "tracestate", "X-B3-TraceId", "X-B3-SpanId",
                                              "X-B3-ParentSpanId", "X-B3-Sampled", "X-B3-Flags",
                                              "X-Trace-HMAC" };
    /* with what OpenStack's clients send on every request, and the names that
     * share a first letter with a trace header's */
    static const char *const plain[] = { "Host", "User-Agent", "Accept", "Accept-Encoding",
                                         "Connection", "Cookie", "Authorization", "X-Auth-Token",
                                         "X-OpenStack-Request-ID", "X-Forwarded-For", "X-B",
                                         "X-Trace", "Transfer-Encoding", "TE", "Trailer", "Trac",
                                         "Baggage", "B" };
    asked_t asked = { { NULL }, 0 };
    apr_table_t *headers = apr_table_make(tg_test_pool, 8);
    tg_context_t ctx;
    size_t i;
    int j;
    tg_extract_in_order(record_name, &asked, NULL, NULL, tg_test_pool, &ctx);
    CU_ASSERT_FATAL(asked.count > 0);
    for (j = 0; j < asked.count; j++) {
        CU_ASSERT_TRUE(may_carry_with_only(asked.names[j]));
        CU_ASSERT_TRUE(may_carry_with_only(in_case(asked.names[j], tolower)));
        CU_ASSERT_TRUE(may_carry_with_only(in_case(asked.names[j], toupper)));
    }
    for (i = 0; i < sizeof(companions) / sizeof(companions[0]); i++)
        CU_ASSERT_TRUE(may_carry_with_only(companions[i]));
    CU_ASSERT_FALSE(tg_headers_survey(headers) & TG_HEADERS_MAY_CARRY_CONTEXT);
    for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        apr_table_set(headers, plain[i], "x");
    CU_ASSERT_FALSE(tg_headers_survey(headers) & TG_HEADERS_MAY_CARRY_CONTEXT);
}

void tg_test_add_propagation(void)
{
    CU_pSuite suite = TG_SUITE("propagation");
    TG_TEST(suite, test_apr_table_store);
    TG_TEST(suite, test_inject_into_table_is_setting);
    TG_TEST(suite, test_first_look_passes_every_trace_header);
    TG_TEST(suite, test_nothing_arrived);
    TG_TEST(suite, test_traceparent_comes_first);
    TG_TEST(suite, test_single_b3_before_multi);
    TG_TEST(suite, test_multi_before_trace_info);
    TG_TEST(suite, test_trace_info_last);
    TG_TEST(suite, test_malformed_headers_are_skipped);
    TG_TEST(suite, test_trace_info_needs_a_configured_key);
    TG_TEST(suite, test_bare_sampling_decision_reaches_new_trace);
    TG_TEST(suite, test_bare_single_decision_overrides_multi);
    TG_TEST(suite, test_malformed_single_b3_falls_back_to_multi);
    TG_TEST(suite, test_reads_names_in_any_case);
    TG_TEST(suite, test_logs_skipped_header_by_name_only);
    TG_TEST(suite, test_logs_nothing_below_the_level);
    TG_TEST(suite, test_tracestate_goes_with_a_valid_traceparent);
    TG_TEST(suite, test_tracestate_ignored_without_a_valid_traceparent);
    TG_TEST(suite, test_malformed_tracestate_dropped_whole);
    TG_TEST(suite, test_tracestate_follows_an_agreeing_traceparent);
    TG_TEST(suite, test_order_decides_among_disagreeing_formats);
    TG_TEST(suite, test_formats_not_in_the_order_are_not_read);
    TG_TEST(suite, test_agreeing_formats_are_counted_once);
    TG_TEST(suite, test_64_bit_b3_trace_agrees_with_padded_traceparent);
    TG_TEST(suite, test_format_words);
    TG_TEST(suite, test_inject_replaces_every_trace_header);
    TG_TEST(suite, test_inject_removes_what_does_not_apply);
    TG_TEST(suite, test_each_injected_format_reads_back);
    TG_TEST(suite, test_inject_default_set);
    TG_TEST(suite, test_inject_only_the_formats_named);
    TG_TEST(suite, test_inject_sends_tracestate_with_traceparent);
    TG_TEST(suite, test_tracestate_passes_through);
    TG_TEST(suite, test_inject_unsampled);
}
