#include "unit.h"

#include <apr_strings.h>
#include <string.h>

#include "tg_b3.h"

#define TRACE "463ac35c9f6413ad48485a3953bb6124"
#define TRACE_HI 0x463ac35c9f6413adULL
#define TRACE_LO 0x48485a3953bb6124ULL
#define TRACE64 "48485a3953bb6124"
#define SPAN "a2fb4a1d1a96d312"
#define SPAN_VALUE 0xa2fb4a1d1a96d312ULL
#define PARENT "0020000000000001"
#define PARENT_VALUE 0x0020000000000001ULL
#define ZERO16 "0000000000000000"

/* A context that no parser would produce, to see whether it was touched. */
static tg_context_t sentinel(void)
{
    tg_context_t ctx;
    memset(&ctx, 0x5a, sizeof(ctx));
    return ctx;
}

static int untouched(const tg_context_t *ctx)
{
    tg_context_t expected = sentinel();
    return memcmp(ctx, &expected, sizeof(expected)) == 0;
}

static tg_context_t parse_single_ok(const char *value)
{
    tg_context_t ctx = sentinel();
    CU_ASSERT_EQUAL(tg_b3_parse_single(value, &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3);
    CU_ASSERT_EQUAL(ctx.w3c_flags, 0);
    return ctx;
}

static void assert_single_rejected(const char *value)
{
    tg_context_t ctx = sentinel();
    CU_ASSERT_EQUAL(tg_b3_parse_single(value, &ctx), APR_EINVAL);
    CU_ASSERT_TRUE(untouched(&ctx));
}

/* ---- Single header ----------------------------------------------------- */

static void test_single_absent(void)
{
    tg_context_t ctx = sentinel();
    CU_ASSERT_EQUAL(tg_b3_parse_single(NULL, &ctx), APR_NOTFOUND);
    CU_ASSERT_TRUE(untouched(&ctx));
}

static void test_single_ids_only_defers_sampling(void)
{
    tg_context_t ctx = parse_single_ok(TRACE "-" SPAN);
    CU_ASSERT_EQUAL(ctx.trace_id.hi, TRACE_HI);
    CU_ASSERT_EQUAL(ctx.trace_id.lo, TRACE_LO);
    CU_ASSERT_EQUAL(ctx.span_id, SPAN_VALUE);
    CU_ASSERT_EQUAL(ctx.parent_id, 0);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DEFER);
    CU_ASSERT_FALSE(ctx.debug);
}

static void test_single_sampling_states(void)
{
    tg_context_t ctx = parse_single_ok(TRACE "-" SPAN "-1");
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_FALSE(ctx.debug);
    ctx = parse_single_ok(TRACE "-" SPAN "-0");
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DENY);
    CU_ASSERT_FALSE(ctx.debug);
    /* Debug implies accept. */
    ctx = parse_single_ok(TRACE "-" SPAN "-d");
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_TRUE(ctx.debug);
}

static void test_single_with_parent(void)
{
    tg_context_t ctx = parse_single_ok(TRACE "-" SPAN "-1-" PARENT);
    CU_ASSERT_EQUAL(ctx.span_id, SPAN_VALUE);
    CU_ASSERT_EQUAL(ctx.parent_id, PARENT_VALUE);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
}

static void test_single_64_bit_trace_id(void)
{
    tg_context_t ctx = parse_single_ok(TRACE64 "-" SPAN "-0");
    CU_ASSERT_EQUAL(ctx.trace_id.hi, 0);
    CU_ASSERT_EQUAL(ctx.trace_id.lo, TRACE_LO);
}

static void test_single_bare_sampling(void)
{
    static const struct {
        const char *value;
        tg_sampling_t sampling;
        int debug;
    } cases[] = {
        {"0", TG_SAMPLING_DENY, 0},
        {"1", TG_SAMPLING_ACCEPT, 0},
        {"d", TG_SAMPLING_ACCEPT, 1},
        {" 0 ", TG_SAMPLING_DENY, 0},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_context_t ctx = sentinel(), before = sentinel();
        CU_ASSERT_EQUAL(tg_b3_parse_single(cases[i].value, &ctx), APR_INCOMPLETE);
        CU_ASSERT_EQUAL(ctx.sampling, cases[i].sampling);
        CU_ASSERT_EQUAL(ctx.debug, cases[i].debug);
        /* No ids came, so none are filled. */
        CU_ASSERT_EQUAL(ctx.trace_id.hi, before.trace_id.hi);
        CU_ASSERT_EQUAL(ctx.trace_id.lo, before.trace_id.lo);
        CU_ASSERT_EQUAL(ctx.span_id, before.span_id);
    }
}

static void test_single_malformed(void)
{
    static const char *const values[] = {
        "", "-", " ", "  -  ", "2", "D", "true", "x",
        TRACE, TRACE "-", "-" SPAN, TRACE "-" SPAN "-", TRACE "-" SPAN "-x", TRACE "-" SPAN "-true",
        TRACE "-" SPAN "-D", TRACE "-" SPAN "-10", TRACE "-" SPAN "-1-", TRACE "-" SPAN "-1-" PARENT "-",
        TRACE "-" SPAN "-1-" PARENT "-1", TRACE "-" SPAN "--" PARENT,
        /* the parent only follows a sampling state */
        TRACE "-" SPAN "-" PARENT,
        /* lengths */
        "463ac35c9f6413ad48485a3953bb612-" SPAN, TRACE "4-" SPAN, "48485a3953bb612-" SPAN,
        /* neither 16 nor 32 hex */
        "463ac35c9f6413ad48485a39-" SPAN, "463ac35c9f6413ad4-" SPAN,
        "48485a3953bb61244-" SPAN, TRACE "-a2fb4a1d1a96d31", TRACE "-a2fb4a1d1a96d3120",
        TRACE "-" SPAN "-1-002000000000001", TRACE "-" SPAN "-1-00200000000000011",
        /* case and alphabet */
        "463AC35C9F6413AD48485A3953BB6124-" SPAN, TRACE "-A2FB4A1D1A96D312", TRACE "-" SPAN "-1-002000000000000A",
        "463ac35c9f6413ad48485a3953bb612g-" SPAN, TRACE "-" SPAN " -1", TRACE " -" SPAN,
        /* zero ids */
        "00000000000000000000000000000000-" SPAN, ZERO16 "-" SPAN, TRACE "-" ZERO16 "-1",
        TRACE "-" SPAN "-1-" ZERO16,
        /* an empty first value */
        ", " TRACE "-" SPAN,
    };
    size_t i;
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        assert_single_rejected(values[i]);
}

static void test_single_oversized(void)
{
    char *value = apr_palloc(tg_test_pool, 10001);
    memset(value, 'a', 10000);
    value[10000] = '\0';
    assert_single_rejected(value);
    assert_single_rejected(apr_pstrcat(tg_test_pool, TRACE "-" SPAN "-1-" PARENT, value, NULL));
}

static void test_single_surrounding_whitespace_ignored(void)
{
    tg_context_t ctx = parse_single_ok(" \t" TRACE "-" SPAN "-1 \t");
    CU_ASSERT_EQUAL(ctx.span_id, SPAN_VALUE);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
}

static void test_single_first_value_wins(void)
{
    tg_context_t ctx = parse_single_ok(TRACE "-" SPAN "-1, " TRACE64 "-" PARENT "-0");
    CU_ASSERT_EQUAL(ctx.trace_id.hi, TRACE_HI);
    CU_ASSERT_EQUAL(ctx.span_id, SPAN_VALUE);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    ctx = parse_single_ok(TRACE "-" SPAN "-0-" PARENT ",garbage");
    CU_ASSERT_EQUAL(ctx.parent_id, PARENT_VALUE);
    /* A malformed first value is not rescued by a good second one. */
    assert_single_rejected("garbage, " TRACE "-" SPAN "-1");
    ctx = sentinel();
    CU_ASSERT_EQUAL(tg_b3_parse_single("0, " TRACE "-" SPAN "-1", &ctx), APR_INCOMPLETE);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DENY);
}

/* ---- Multi headers ----------------------------------------------------- */

static tg_context_t parse_multi_ok(const char *trace, const char *span, const char *parent,
                                   const char *sampled, const char *flags)
{
    tg_context_t ctx = sentinel();
    CU_ASSERT_EQUAL(tg_b3_parse_multi(trace, span, parent, sampled, flags, &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_B3_MULTI);
    CU_ASSERT_EQUAL(ctx.w3c_flags, 0);
    return ctx;
}

static void assert_multi_rejected(const char *trace, const char *span, const char *parent,
                                  const char *sampled, const char *flags)
{
    tg_context_t ctx = sentinel();
    CU_ASSERT_EQUAL(tg_b3_parse_multi(trace, span, parent, sampled, flags, &ctx), APR_EINVAL);
    CU_ASSERT_TRUE(untouched(&ctx));
}

static void test_multi_absent(void)
{
    tg_context_t ctx = sentinel();
    CU_ASSERT_EQUAL(tg_b3_parse_multi(NULL, NULL, NULL, NULL, NULL, &ctx), APR_NOTFOUND);
    CU_ASSERT_TRUE(untouched(&ctx));
}

static void test_multi_ids(void)
{
    tg_context_t ctx = parse_multi_ok(TRACE, SPAN, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(ctx.trace_id.hi, TRACE_HI);
    CU_ASSERT_EQUAL(ctx.trace_id.lo, TRACE_LO);
    CU_ASSERT_EQUAL(ctx.span_id, SPAN_VALUE);
    CU_ASSERT_EQUAL(ctx.parent_id, 0);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DEFER);
    CU_ASSERT_FALSE(ctx.debug);

    ctx = parse_multi_ok(TRACE64, SPAN, PARENT, "1", NULL);
    CU_ASSERT_EQUAL(ctx.trace_id.hi, 0);
    CU_ASSERT_EQUAL(ctx.trace_id.lo, TRACE_LO);
    CU_ASSERT_EQUAL(ctx.parent_id, PARENT_VALUE);
}

static void test_multi_sampled(void)
{
    CU_ASSERT_EQUAL(parse_multi_ok(TRACE, SPAN, NULL, "1", NULL).sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_EQUAL(parse_multi_ok(TRACE, SPAN, NULL, "0", NULL).sampling, TG_SAMPLING_DENY);
    /* Older tracers say true/false; the specification asks us to accept it. */
    CU_ASSERT_EQUAL(parse_multi_ok(TRACE, SPAN, NULL, "true", NULL).sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_EQUAL(parse_multi_ok(TRACE, SPAN, NULL, "false", NULL).sampling, TG_SAMPLING_DENY);
}

static void test_multi_debug_flag(void)
{
    tg_context_t ctx = parse_multi_ok(TRACE, SPAN, NULL, NULL, "1");
    CU_ASSERT_TRUE(ctx.debug);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    /* Debug implies accept, whatever Sampled says. */
    ctx = parse_multi_ok(TRACE, SPAN, NULL, "0", "1");
    CU_ASSERT_TRUE(ctx.debug);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    ctx = parse_multi_ok(TRACE, SPAN, NULL, "0", "0");
    CU_ASSERT_FALSE(ctx.debug);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DENY);
}

static void test_multi_sampling_only(void)
{
    tg_context_t ctx = sentinel(), before = sentinel();
    CU_ASSERT_EQUAL(tg_b3_parse_multi(NULL, NULL, NULL, "0", NULL, &ctx), APR_INCOMPLETE);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DENY);
    CU_ASSERT_FALSE(ctx.debug);
    CU_ASSERT_EQUAL(ctx.span_id, before.span_id);

    ctx = sentinel();
    CU_ASSERT_EQUAL(tg_b3_parse_multi(NULL, NULL, NULL, NULL, "1", &ctx), APR_INCOMPLETE);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_TRUE(ctx.debug);
}

static void test_multi_malformed(void)
{
    /* One id without the other. */
    assert_multi_rejected(TRACE, NULL, NULL, "1", NULL);
    assert_multi_rejected(NULL, SPAN, NULL, "1", NULL);
    assert_multi_rejected(NULL, NULL, PARENT, NULL, NULL);
    assert_multi_rejected(NULL, NULL, PARENT, "1", NULL);
    /* Empty and "-" values. */
    assert_multi_rejected("", SPAN, NULL, NULL, NULL);
    assert_multi_rejected(TRACE, "", NULL, NULL, NULL);
    assert_multi_rejected(TRACE, SPAN, "", NULL, NULL);
    assert_multi_rejected(TRACE, SPAN, NULL, "", NULL);
    assert_multi_rejected(TRACE, SPAN, NULL, NULL, "");
    assert_multi_rejected("-", SPAN, NULL, NULL, NULL);
    assert_multi_rejected(TRACE, "-", NULL, NULL, NULL);
    assert_multi_rejected(TRACE, SPAN, "-", NULL, NULL);
    assert_multi_rejected(TRACE, SPAN, NULL, "-", NULL);
    assert_multi_rejected(NULL, NULL, NULL, "-", NULL);
    assert_multi_rejected(NULL, NULL, NULL, NULL, "-");
    /* Values the format does not have. */
    assert_multi_rejected(TRACE, SPAN, NULL, "d", NULL);
    assert_multi_rejected(TRACE, SPAN, NULL, "2", NULL);
    assert_multi_rejected(TRACE, SPAN, NULL, "True", NULL);
    assert_multi_rejected(TRACE, SPAN, NULL, NULL, "2");
    assert_multi_rejected(TRACE, SPAN, NULL, NULL, "d");
    /* Lengths, case, zero ids. */
    assert_multi_rejected(TRACE "0", SPAN, NULL, NULL, NULL);
    assert_multi_rejected("463ac35c9f6413ad48485a39", SPAN, NULL, NULL, NULL);
    assert_multi_rejected("463ac35c9f6413ad4", SPAN, NULL, NULL, NULL);
    assert_multi_rejected("48485a3953bb612", SPAN, NULL, NULL, NULL);
    assert_multi_rejected(TRACE, SPAN "0", NULL, NULL, NULL);
    assert_multi_rejected(TRACE, "a2fb4a1d1a96d31", NULL, NULL, NULL);
    assert_multi_rejected(TRACE, SPAN, "002000000000001", NULL, NULL);
    assert_multi_rejected("463AC35C9F6413AD48485A3953BB6124", SPAN, NULL, NULL, NULL);
    assert_multi_rejected("00000000000000000000000000000000", SPAN, NULL, NULL, NULL);
    assert_multi_rejected(ZERO16, SPAN, NULL, NULL, NULL);
    assert_multi_rejected(TRACE, ZERO16, NULL, NULL, NULL);
    assert_multi_rejected(TRACE, SPAN, ZERO16, NULL, NULL);
}

static void test_multi_first_value_wins(void)
{
    tg_context_t ctx = parse_multi_ok(TRACE ", " TRACE64, SPAN ",  " PARENT, PARENT ", " SPAN,
                                      "1, 0", "0,1");
    CU_ASSERT_EQUAL(ctx.trace_id.hi, TRACE_HI);
    CU_ASSERT_EQUAL(ctx.span_id, SPAN_VALUE);
    CU_ASSERT_EQUAL(ctx.parent_id, PARENT_VALUE);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_FALSE(ctx.debug);
    assert_multi_rejected(", " TRACE, SPAN, NULL, NULL, NULL);
}

static void test_multi_surrounding_whitespace_ignored(void)
{
    tg_context_t ctx = parse_multi_ok(" " TRACE "\t", "\t" SPAN " ", " " PARENT, " 0 ", " 1");
    CU_ASSERT_EQUAL(ctx.trace_id.lo, TRACE_LO);
    CU_ASSERT_EQUAL(ctx.span_id, SPAN_VALUE);
    CU_ASSERT_EQUAL(ctx.parent_id, PARENT_VALUE);
    CU_ASSERT_TRUE(ctx.debug);
    assert_multi_rejected(TRACE, SPAN " x", NULL, NULL, NULL);
}

static void test_multi_oversized(void)
{
    char *value = apr_palloc(tg_test_pool, 10001);
    memset(value, 'a', 10000);
    value[10000] = '\0';
    assert_multi_rejected(value, SPAN, NULL, NULL, NULL);
    assert_multi_rejected(TRACE, value, NULL, NULL, NULL);
    assert_multi_rejected(TRACE, SPAN, value, NULL, NULL);
    assert_multi_rejected(TRACE, SPAN, NULL, value, NULL);
    assert_multi_rejected(TRACE, SPAN, NULL, NULL, value);
}

/* ---- Formatting -------------------------------------------------------- */

static tg_context_t context(tg_sampling_t sampling, int debug, uint64_t parent)
{
    tg_context_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.trace_id.hi = TRACE_HI;
    ctx.trace_id.lo = TRACE_LO;
    ctx.span_id = SPAN_VALUE;
    ctx.parent_id = parent;
    ctx.sampling = sampling;
    ctx.debug = debug;
    return ctx;
}

static const char *single(tg_context_t ctx)
{
    char out[TG_B3_SINGLE_MAX + 1];
    tg_b3_format_single(&ctx, out);
    return apr_pstrdup(tg_test_pool, out);
}

static void test_format_single(void)
{
    CU_ASSERT_STRING_EQUAL(single(context(TG_SAMPLING_ACCEPT, 0, PARENT_VALUE)),
                           TRACE "-" SPAN "-1-" PARENT);
    CU_ASSERT_STRING_EQUAL(single(context(TG_SAMPLING_DENY, 0, 0)), TRACE "-" SPAN "-0");
    CU_ASSERT_STRING_EQUAL(single(context(TG_SAMPLING_ACCEPT, 1, PARENT_VALUE)),
                           TRACE "-" SPAN "-d-" PARENT);
    /* Without a sampling state there is no place for the parent. */
    CU_ASSERT_STRING_EQUAL(single(context(TG_SAMPLING_DEFER, 0, PARENT_VALUE)), TRACE "-" SPAN);
}

static void test_format_single_longest_form_fits(void)
{
    CU_ASSERT_EQUAL(strlen(single(context(TG_SAMPLING_ACCEPT, 1, PARENT_VALUE))), TG_B3_SINGLE_MAX);
}

static void test_format_keeps_64_bit_trace_id(void)
{
    tg_context_t ctx = context(TG_SAMPLING_ACCEPT, 0, 0);
    tg_b3_multi_t multi;
    ctx.trace_id.hi = 0;
    CU_ASSERT_STRING_EQUAL(single(ctx), TRACE64 "-" SPAN "-1");
    tg_b3_format_multi(&ctx, &multi);
    CU_ASSERT_STRING_EQUAL(multi.trace_id, TRACE64);
}

static void test_format_multi(void)
{
    tg_context_t ctx = context(TG_SAMPLING_ACCEPT, 0, PARENT_VALUE);
    tg_b3_multi_t multi;
    tg_b3_format_multi(&ctx, &multi);
    CU_ASSERT_STRING_EQUAL(multi.trace_id, TRACE);
    CU_ASSERT_STRING_EQUAL(multi.span_id, SPAN);
    CU_ASSERT_STRING_EQUAL(multi.parent_span_id, PARENT);
    CU_ASSERT_STRING_EQUAL(multi.sampled, "1");
    CU_ASSERT_STRING_EQUAL(multi.flags, "");

    ctx = context(TG_SAMPLING_DENY, 0, 0);
    tg_b3_format_multi(&ctx, &multi);
    CU_ASSERT_STRING_EQUAL(multi.parent_span_id, "");
    CU_ASSERT_STRING_EQUAL(multi.sampled, "0");
    CU_ASSERT_STRING_EQUAL(multi.flags, "");

    ctx = context(TG_SAMPLING_DEFER, 0, 0);
    tg_b3_format_multi(&ctx, &multi);
    CU_ASSERT_STRING_EQUAL(multi.sampled, "");
    CU_ASSERT_STRING_EQUAL(multi.flags, "");

    /* Debug: Flags 1 and no Sampled. */
    ctx = context(TG_SAMPLING_ACCEPT, 1, 0);
    tg_b3_format_multi(&ctx, &multi);
    CU_ASSERT_STRING_EQUAL(multi.sampled, "");
    CU_ASSERT_STRING_EQUAL(multi.flags, "1");
}

static int same_context(const tg_context_t *a, const tg_context_t *b)
{
    return tg_trace_id_equal(a->trace_id, b->trace_id) && a->span_id == b->span_id
           && a->parent_id == b->parent_id && a->sampling == b->sampling && a->debug == b->debug;
}

static void test_formats_read_back(void)
{
    const tg_context_t contexts[] = {
        context(TG_SAMPLING_ACCEPT, 0, PARENT_VALUE), context(TG_SAMPLING_DENY, 0, PARENT_VALUE),
        context(TG_SAMPLING_ACCEPT, 1, PARENT_VALUE), context(TG_SAMPLING_DEFER, 0, 0),
        context(TG_SAMPLING_ACCEPT, 0, 0),
    };
    size_t i;
    for (i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++) {
        tg_b3_multi_t multi;
        tg_context_t back;
        CU_ASSERT_EQUAL(tg_b3_parse_single(single(contexts[i]), &back), APR_SUCCESS);
        CU_ASSERT_TRUE(same_context(&back, &contexts[i]));
        tg_b3_format_multi(&contexts[i], &multi);
        CU_ASSERT_EQUAL(tg_b3_parse_multi(multi.trace_id, multi.span_id,
                                          multi.parent_span_id[0] ? multi.parent_span_id : NULL,
                                          multi.sampled[0] ? multi.sampled : NULL,
                                          multi.flags[0] ? multi.flags : NULL, &back),
                        APR_SUCCESS);
        CU_ASSERT_TRUE(same_context(&back, &contexts[i]));
    }
}

void tg_test_add_b3(void)
{
    CU_pSuite suite = TG_SUITE("b3");
    TG_TEST(suite, test_single_absent);
    TG_TEST(suite, test_single_ids_only_defers_sampling);
    TG_TEST(suite, test_single_sampling_states);
    TG_TEST(suite, test_single_with_parent);
    TG_TEST(suite, test_single_64_bit_trace_id);
    TG_TEST(suite, test_single_bare_sampling);
    TG_TEST(suite, test_single_malformed);
    TG_TEST(suite, test_single_oversized);
    TG_TEST(suite, test_single_surrounding_whitespace_ignored);
    TG_TEST(suite, test_single_first_value_wins);
    TG_TEST(suite, test_multi_absent);
    TG_TEST(suite, test_multi_ids);
    TG_TEST(suite, test_multi_sampled);
    TG_TEST(suite, test_multi_debug_flag);
    TG_TEST(suite, test_multi_sampling_only);
    TG_TEST(suite, test_multi_malformed);
    TG_TEST(suite, test_multi_first_value_wins);
    TG_TEST(suite, test_multi_surrounding_whitespace_ignored);
    TG_TEST(suite, test_multi_oversized);
    TG_TEST(suite, test_format_single);
    TG_TEST(suite, test_format_single_longest_form_fits);
    TG_TEST(suite, test_format_keeps_64_bit_trace_id);
    TG_TEST(suite, test_format_multi);
    TG_TEST(suite, test_formats_read_back);
}
