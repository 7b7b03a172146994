#include "unit.h"

#include <apr_strings.h>
#include <string.h>

#include "tg_w3c.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define TRACE_HI 0x4bf92f3577b34da6ULL
#define TRACE_LO 0xa3ce929d0e0e4736ULL
#define PARENT "00f067aa0ba902b7"
#define PARENT_VALUE 0x00f067aa0ba902b7ULL
#define VALID "00-" TRACE "-" PARENT "-01"

static tg_context_t sentinel(void)
{
    tg_context_t ctx;
    memset(&ctx, 0x5a, sizeof(ctx));
    return ctx;
}

static tg_context_t parse_ok(const char *value)
{
    tg_context_t ctx = sentinel();
    CU_ASSERT_EQUAL(tg_w3c_parse_traceparent(value, &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_TRACECONTEXT);
    CU_ASSERT_EQUAL(ctx.parent_id, 0);
    CU_ASSERT_FALSE(ctx.debug);
    return ctx;
}

static void assert_rejected(const char *value)
{
    tg_context_t ctx = sentinel(), before = sentinel();
    CU_ASSERT_EQUAL(tg_w3c_parse_traceparent(value, &ctx), APR_EINVAL);
    CU_ASSERT_EQUAL(memcmp(&ctx, &before, sizeof(ctx)), 0);
}

static void test_absent(void)
{
    tg_context_t ctx = sentinel(), before = sentinel();
    CU_ASSERT_EQUAL(tg_w3c_parse_traceparent(NULL, &ctx), APR_NOTFOUND);
    CU_ASSERT_EQUAL(memcmp(&ctx, &before, sizeof(ctx)), 0);
}

static void test_parses_version_00(void)
{
    tg_context_t ctx = parse_ok(VALID);
    CU_ASSERT_EQUAL(ctx.trace_id.hi, TRACE_HI);
    CU_ASSERT_EQUAL(ctx.trace_id.lo, TRACE_LO);
    CU_ASSERT_EQUAL(ctx.span_id, PARENT_VALUE);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_EQUAL(ctx.w3c_flags, 0x01);
}

static void test_sampling_from_flag_bit_0(void)
{
    static const struct {
        const char *flags;
        tg_sampling_t sampling;
        unsigned char w3c_flags;
    } cases[] = {
        {"00", TG_SAMPLING_DENY, 0x00},   {"01", TG_SAMPLING_ACCEPT, 0x01},
        {"02", TG_SAMPLING_DENY, 0x02},   {"03", TG_SAMPLING_ACCEPT, 0x03},
        {"ff", TG_SAMPLING_ACCEPT, 0xff}, {"fe", TG_SAMPLING_DENY, 0xfe},
        {"09", TG_SAMPLING_ACCEPT, 0x09},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_context_t ctx = parse_ok(apr_pstrcat(tg_test_pool, "00-" TRACE "-" PARENT "-", cases[i].flags, NULL));
        CU_ASSERT_EQUAL(ctx.sampling, cases[i].sampling);
        CU_ASSERT_EQUAL(ctx.w3c_flags, cases[i].w3c_flags);
    }
}

static void test_rejects_malformed_version_00(void)
{
    static const char *const values[] = {
        "", "-", "00", "00-" TRACE "-" PARENT, "00-" TRACE "-" PARENT "-",
        "00-" TRACE "-" PARENT "-1", "00-" TRACE "-" PARENT "-001",
        /* version 00 is exactly 55 characters */
        VALID "-", VALID "-extra", VALID " ", VALID "0", VALID ",00-" TRACE "-" PARENT "-01",
        " " VALID,
        /* uppercase is not allowed anywhere */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT "-01", "00-" TRACE "-00F067AA0BA902B7-01",
        "00-" TRACE "-" PARENT "-0A",
        /* wrong field widths or separators */
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        "00-" TRACE "0" PARENT "-01", "00_" TRACE "-" PARENT "-01", "00-" TRACE "-" PARENT "_01",
        "0-0" TRACE "-" PARENT "-01",
        /* non-hex */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-" PARENT "-01", "00-" TRACE "-00f067aa0ba902bx-01",
        "00-" TRACE "-" PARENT "-0x", "0g-" TRACE "-" PARENT "-01",
        /* all-zero ids */
        "00-00000000000000000000000000000000-" PARENT "-01",
        "00-" TRACE "-0000000000000000-01",
    };
    size_t i;
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        assert_rejected(values[i]);
}

static void test_rejects_version_ff(void)
{
    assert_rejected("ff-" TRACE "-" PARENT "-01");
    assert_rejected("ff-" TRACE "-" PARENT "-01-anything");
}

static void test_higher_version_reads_first_55_characters(void)
{
    tg_context_t ctx = parse_ok("01-" TRACE "-" PARENT "-01");
    CU_ASSERT_EQUAL(ctx.span_id, PARENT_VALUE);
    ctx = parse_ok("cc-" TRACE "-" PARENT "-00-what-the-future-will-be");
    CU_ASSERT_EQUAL(ctx.trace_id.lo, TRACE_LO);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_DENY);
    /* ...but only when a dash follows them. */
    assert_rejected("cc-" TRACE "-" PARENT "-00x");
    assert_rejected("cc-" TRACE "-" PARENT "-000");
    /* The fields it shares with 00 keep their rules. */
    assert_rejected("cc-" TRACE "-0000000000000000-01-x");
    assert_rejected("cc-" TRACE "-" PARENT "-1");
}

static void test_rejects_oversized(void)
{
    char *value = apr_palloc(tg_test_pool, 8193);
    memset(value, 'a', 8192);
    value[8192] = '\0';
    assert_rejected(value);
    assert_rejected(apr_pstrcat(tg_test_pool, VALID, value, NULL));
}

static const char *format(tg_sampling_t sampling, int debug, unsigned char w3c_flags)
{
    tg_context_t ctx;
    char out[TG_TRACEPARENT_LEN + 1];
    memset(&ctx, 0, sizeof(ctx));
    ctx.trace_id.hi = TRACE_HI;
    ctx.trace_id.lo = TRACE_LO;
    ctx.span_id = PARENT_VALUE;
    ctx.parent_id = 0x1111111111111111ULL;
    ctx.sampling = sampling;
    ctx.debug = debug;
    ctx.w3c_flags = w3c_flags;
    memset(out, 'x', sizeof(out));
    tg_w3c_format_traceparent(&ctx, out);
    return apr_pstrdup(tg_test_pool, out);
}

static void test_format_sampled_bit(void)
{
    CU_ASSERT_STRING_EQUAL(format(TG_SAMPLING_ACCEPT, 0, 0), VALID);
    CU_ASSERT_STRING_EQUAL(format(TG_SAMPLING_DENY, 0, 0), "00-" TRACE "-" PARENT "-00");
    CU_ASSERT_STRING_EQUAL(format(TG_SAMPLING_DEFER, 0, 0), "00-" TRACE "-" PARENT "-00");
    CU_ASSERT_STRING_EQUAL(format(TG_SAMPLING_DEFER, 1, 0), VALID);
    /* Our decision replaces the caller's sampled bit. */
    CU_ASSERT_STRING_EQUAL(format(TG_SAMPLING_DENY, 0, 0x01), "00-" TRACE "-" PARENT "-00");
}

static void test_format_carries_random_bit_only(void)
{
    CU_ASSERT_STRING_EQUAL(format(TG_SAMPLING_ACCEPT, 0, 0x02), "00-" TRACE "-" PARENT "-03");
    CU_ASSERT_STRING_EQUAL(format(TG_SAMPLING_DENY, 0, 0x03), "00-" TRACE "-" PARENT "-02");
    /* Unknown flags are sent as 0. */
    CU_ASSERT_STRING_EQUAL(format(TG_SAMPLING_DENY, 0, 0xfc), "00-" TRACE "-" PARENT "-00");
}

static void test_format_widens_64_bit_trace_id(void)
{
    tg_context_t ctx, back;
    char out[TG_TRACEPARENT_LEN + 1];
    memset(&ctx, 0, sizeof(ctx));
    ctx.trace_id.lo = TRACE_LO;
    ctx.span_id = PARENT_VALUE;
    ctx.sampling = TG_SAMPLING_ACCEPT;
    tg_w3c_format_traceparent(&ctx, out);
    CU_ASSERT_STRING_EQUAL(out, "00-0000000000000000a3ce929d0e0e4736-" PARENT "-01");
    CU_ASSERT_EQUAL(tg_w3c_parse_traceparent(out, &back), APR_SUCCESS);
    CU_ASSERT_TRUE(tg_trace_id_equal(back.trace_id, ctx.trace_id));
}

static void test_format_reads_back(void)
{
    const char *out = format(TG_SAMPLING_ACCEPT, 0, 0x02);
    tg_context_t ctx = parse_ok(out);
    CU_ASSERT_EQUAL(strlen(out), TG_TRACEPARENT_LEN);
    CU_ASSERT_EQUAL(ctx.trace_id.hi, TRACE_HI);
    CU_ASSERT_EQUAL(ctx.span_id, PARENT_VALUE);
    CU_ASSERT_EQUAL(ctx.w3c_flags, 0x03);
}

void tg_test_add_w3c(void)
{
    CU_pSuite suite = TG_SUITE("w3c");
    TG_TEST(suite, test_absent);
    TG_TEST(suite, test_parses_version_00);
    TG_TEST(suite, test_sampling_from_flag_bit_0);
    TG_TEST(suite, test_rejects_malformed_version_00);
    TG_TEST(suite, test_rejects_version_ff);
    TG_TEST(suite, test_higher_version_reads_first_55_characters);
    TG_TEST(suite, test_rejects_oversized);
    TG_TEST(suite, test_format_sampled_bit);
    TG_TEST(suite, test_format_carries_random_bit_only);
    TG_TEST(suite, test_format_widens_64_bit_trace_id);
    TG_TEST(suite, test_format_reads_back);
}
