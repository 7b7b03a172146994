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
    CU_ASSERT_PTR_NULL(ctx.tracestate);
    CU_ASSERT_EQUAL(ctx.agreeing, 0);
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
        /* version 00 is exactly 55 characters (whitespace around it aside) */
        VALID "-", VALID "-extra", VALID ".", VALID "0", VALID " x", "x " VALID,
        /* two traceparent headers, as httpd joins them */
        VALID ",00-" TRACE "-" PARENT "-01", VALID ", " VALID,
        /* uppercase is not allowed anywhere */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT "-01", "00-" TRACE "-00F067AA0BA902B7-01",
        "00-" TRACE "-" PARENT "-0A",
        /* wrong field widths or separators */
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        "00-" TRACE "0" PARENT "-01", "00_" TRACE "-" PARENT "-01", "00-" TRACE "-" PARENT "_01",
        "0-0" TRACE "-" PARENT "-01", "000-" TRACE "-" PARENT "-01", ".0-" TRACE "-" PARENT "-01",
        "0.-" TRACE "-" PARENT "-01", "00-" TRACE "-" PARENT "-.0", "00-" TRACE "-" PARENT "-0.",
        "00-" TRACE "-" PARENT "-01\n",
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

/* HTTP's optional whitespace around a field value is not part of it. */
static void test_ignores_whitespace_around_the_value(void)
{
    static const char *const values[] = {
        " " VALID, "\t" VALID, VALID " ", VALID "\t", "\t " VALID " \t",
    };
    size_t i;
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        tg_context_t ctx = parse_ok(values[i]);
        CU_ASSERT_EQUAL(ctx.trace_id.lo, TRACE_LO);
        CU_ASSERT_EQUAL(ctx.span_id, PARENT_VALUE);
        CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    }
    CU_ASSERT_EQUAL(parse_ok("cc-" TRACE "-" PARENT "-01-future ").span_id, PARENT_VALUE);
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
    assert_rejected("cc-" TRACE "-" PARENT "-01.what-the-future-will-be-like");
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

/* ---- tracestate -------------------------------------------------------- */

#define UNTOUCHED ((const char *)"untouched")

/* The list we would send on, or NULL, after APR_SUCCESS. */
static const char *tracestate_ok(const char *value)
{
    const char *out = UNTOUCHED;
    CU_ASSERT_EQUAL(tg_w3c_parse_tracestate(value, tg_test_pool, &out), APR_SUCCESS);
    CU_ASSERT_PTR_NOT_EQUAL(out, UNTOUCHED);
    return out;
}

static void assert_tracestate_kept(const char *value, const char *sent)
{
    const char *out = tracestate_ok(value);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_STRING_EQUAL(out, sent);
}

static void assert_tracestate_dropped(const char *value)
{
    const char *out = UNTOUCHED;
    CU_ASSERT_EQUAL(tg_w3c_parse_tracestate(value, tg_test_pool, &out), APR_EINVAL);
    CU_ASSERT_PTR_EQUAL(out, UNTOUCHED);
}

static char *repeat(char c, size_t n)
{
    char *text = apr_palloc(tg_test_pool, n + 1);
    memset(text, c, n);
    text[n] = '\0';
    return text;
}

/* A member `<key>=<value>` exactly len characters long. */
static const char *member_of_len(const char *key, size_t len)
{
    return apr_pstrcat(tg_test_pool, key, "=", repeat('v', len - strlen(key) - 1), NULL);
}

static void test_tracestate_absent(void)
{
    const char *out = UNTOUCHED;
    CU_ASSERT_EQUAL(tg_w3c_parse_tracestate(NULL, tg_test_pool, &out), APR_NOTFOUND);
    CU_ASSERT_PTR_EQUAL(out, UNTOUCHED);
}

/* The examples of the specification's tracestate section. */
static void test_tracestate_spec_examples(void)
{
    assert_tracestate_kept("congo=t61rcWkgMzE", "congo=t61rcWkgMzE");
    assert_tracestate_kept("rojo=00f067aa0ba902b7", "rojo=00f067aa0ba902b7");
    assert_tracestate_kept("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
                           "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_tracestate_kept("congo=ucfJifl5GOE,rojo=00f067aa0ba902b7",
                           "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
    assert_tracestate_kept("vendorname1=opaqueValue1,vendorname2=opaqueValue2",
                           "vendorname1=opaqueValue1,vendorname2=opaqueValue2");
    /* The list the spec says a vendor should not have made: its later
     * congo entry is the duplicate we discard. */
    assert_tracestate_kept("congo=congosFirstPosition,rojo=rojosFirstPosition,congo=congosSecondPosition",
                           "congo=congosFirstPosition,rojo=rojosFirstPosition");
}

static void test_tracestate_keeps_members_in_order(void)
{
    assert_tracestate_kept("rojo=00f067aa0ba902b7", "rojo=00f067aa0ba902b7");
    assert_tracestate_kept("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
                           "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    /* Three tracestate headers, as httpd joins them. */
    assert_tracestate_kept("foo=1,bar=2, rojo=1,congo=2, baz=3", "foo=1,bar=2,rojo=1,congo=2,baz=3");
}

static void test_tracestate_whitespace_around_members(void)
{
    assert_tracestate_kept("foo=1 \t , \t bar=2, \t baz=3", "foo=1,bar=2,baz=3");
    assert_tracestate_kept("foo=1\t \t,\t \tbar=2,\t \tbaz=3", "foo=1,bar=2,baz=3");
    assert_tracestate_kept(" foo=1", "foo=1");
    assert_tracestate_kept("\tfoo=1", "foo=1");
    assert_tracestate_kept("foo=1 ", "foo=1");
    assert_tracestate_kept("foo=1\t", "foo=1");
    assert_tracestate_kept("\t foo=1 \t", "foo=1");
    /* Leading spaces of a value belong to it. */
    assert_tracestate_kept("foo=  1", "foo=  1");
    assert_tracestate_kept("foo=a b", "foo=a b");
}

static void test_tracestate_empty_members_ignored(void)
{
    CU_ASSERT_PTR_NULL(tracestate_ok(""));
    CU_ASSERT_PTR_NULL(tracestate_ok(" \t "));
    CU_ASSERT_PTR_NULL(tracestate_ok(",, ,\t,"));
    /* An empty tracestate header joined to a good one, either side. */
    assert_tracestate_kept("foo=1, ", "foo=1");
    assert_tracestate_kept(", foo=1", "foo=1");
    assert_tracestate_kept("foo=1,,, ,bar=2", "foo=1,bar=2");
}

static void test_tracestate_all_allowed_characters(void)
{
    const char *key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    const char *at_key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@a@-z0-9_-*/@";
    char value[0x7f - 0x20 + 1];
    const char *member;
    size_t n = 0;
    int c;
    for (c = 0x20; c <= 0x7e; c++)
        if (c != ',' && c != '=')
            value[n++] = (char)c;
    value[n] = '\0';
    member = apr_pstrcat(tg_test_pool, key, "=", value, NULL);
    assert_tracestate_kept(member, member);
    member = apr_pstrcat(tg_test_pool, at_key, "=", value, NULL);
    assert_tracestate_kept(member, member);
}

static void test_tracestate_key_rules(void)
{
    /* A key starts with a lowercase letter or a digit. */
    assert_tracestate_kept("0vendor=1", "0vendor=1");
    assert_tracestate_dropped("foo=1,FOO=1");
    assert_tracestate_dropped("foo=1,Foo=1");
    assert_tracestate_dropped("foo=1,_foo=1");
    assert_tracestate_dropped("foo=1,-foo=1");
    assert_tracestate_dropped("foo=1,*foo=1");
    assert_tracestate_dropped("foo=1,/foo=1");
    /* ...and holds only a-z 0-9 _ - * / @. */
    assert_tracestate_dropped("foo =1");
    assert_tracestate_dropped("foo.bar=1");
    assert_tracestate_dropped("foo:bar=1");
    assert_tracestate_dropped("f\xc3\xb6o=1");
    /* '@' anywhere but first, any number of times: no tenant@system split. */
    assert_tracestate_kept("foo@=1,bar=2", "foo@=1,bar=2");
    assert_tracestate_kept("foo@@bar=1,bar=2", "foo@@bar=1,bar=2");
    assert_tracestate_kept("foo@bar@baz=1,bar=2", "foo@bar@baz=1,bar=2");
    assert_tracestate_kept("foo@1bar=1,bar=2", "foo@1bar=1,bar=2");
    assert_tracestate_kept("foo@_bar=1,bar=2", "foo@_bar=1,bar=2");
    assert_tracestate_kept("1tenant@vendor=1", "1tenant@vendor=1");
    assert_tracestate_kept("fw529a3039@dt=FW529a3039", "fw529a3039@dt=FW529a3039");
    assert_tracestate_kept("0@=1", "0@=1");
    assert_tracestate_dropped("@foo=1,bar=2");
    assert_tracestate_dropped("@=1,bar=2");
    assert_tracestate_dropped("foo@Bar=1,bar=2");
    /* No key, no '='. */
    assert_tracestate_dropped("=1");
    assert_tracestate_dropped("foo");
    assert_tracestate_dropped("foo=1,bar");
}

static void test_tracestate_key_lengths(void)
{
    const char *key256 = repeat('z', 256);
    const char *at_key256 = apr_pstrcat(tg_test_pool, "t", repeat('@', 254), "v", NULL);
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, "foo=1,", key256, "=1", NULL),
                           apr_pstrcat(tg_test_pool, "foo=1,", key256, "=1", NULL));
    assert_tracestate_dropped(apr_pstrcat(tg_test_pool, "foo=1,", repeat('z', 257), "=1", NULL));
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, "foo=1,", at_key256, "=1", NULL),
                           apr_pstrcat(tg_test_pool, "foo=1,", at_key256, "=1", NULL));
    assert_tracestate_dropped(apr_pstrcat(tg_test_pool, "foo=1,", at_key256, "@=1", NULL));
    /* The old limits of a tenant (241) and a system (14) are gone. */
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, repeat('t', 242), "@v=1", NULL),
                           apr_pstrcat(tg_test_pool, repeat('t', 242), "@v=1", NULL));
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, "t@", repeat('v', 15), "=1", NULL),
                           apr_pstrcat(tg_test_pool, "t@", repeat('v', 15), "=1", NULL));
}

static void test_tracestate_value_rules(void)
{
    const char *value256 = repeat('v', 256);
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, "foo=", value256, NULL),
                           apr_pstrcat(tg_test_pool, "foo=", value256, NULL));
    assert_tracestate_dropped(apr_pstrcat(tg_test_pool, "foo=", value256, "v", NULL));
    assert_tracestate_dropped("foo=bar=baz");
    assert_tracestate_dropped("foo=,bar=3");
    assert_tracestate_dropped("foo= ,bar=3");
    assert_tracestate_dropped("foo=a\tb");
    assert_tracestate_dropped("foo=a\x7f");
    assert_tracestate_dropped("foo=a\x01");
    assert_tracestate_dropped("foo=caf\xc3\xa9");
    assert_tracestate_dropped("foo=1\r\nbar=2");
}

/* A later member with a key already seen is discarded, not the list. */
static void test_tracestate_duplicate_keys(void)
{
    assert_tracestate_kept("foo=1,foo=1", "foo=1");
    assert_tracestate_kept("foo=1,foo=2", "foo=1");
    /* The same key in two tracestate headers. */
    assert_tracestate_kept("foo=1, foo=2", "foo=1");
    assert_tracestate_kept("foo=1,bar=2,baz=3,bar=4,qux=5", "foo=1,bar=2,baz=3,qux=5");
    assert_tracestate_kept("foo=1,foo=2,foo=3,bar=4", "foo=1,bar=4");
    assert_tracestate_kept("a@b=1,a@b=2", "a@b=1");
    /* A malformed duplicate is still a malformed list. */
    assert_tracestate_dropped("foo=1,foo=");
    /* A key that starts another is not the same key. */
    assert_tracestate_kept("foo=1,foob=2,fo=3", "foo=1,foob=2,fo=3");
    assert_tracestate_kept("foo@a=1,foo@b=2,foo=3,foo@=4", "foo@a=1,foo@b=2,foo=3,foo@=4");
}

/* "bar01=01,bar02=02,..." with n members. */
static const char *numbered_members(int n)
{
    const char *list = "";
    int i;
    for (i = 1; i <= n; i++)
        list = apr_psprintf(tg_test_pool, "%s%sbar%02d=%02d", list, i > 1 ? "," : "", i, i);
    return list;
}

static void test_tracestate_at_most_32_members(void)
{
    const char *list32 = numbered_members(32);
    const char *out = tracestate_ok(list32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_STRING_EQUAL(out, list32);
    assert_tracestate_dropped(numbered_members(33));
    /* Empty members do not count. */
    CU_ASSERT_PTR_NOT_NULL(tracestate_ok(apr_pstrcat(tg_test_pool, ", ,", list32, ",,", NULL)));
    /* Duplicates count among the 32 received, and go. */
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, numbered_members(31), ",bar01=xx", NULL),
                           numbered_members(31));
    assert_tracestate_dropped(apr_pstrcat(tg_test_pool, list32, ",bar01=xx", NULL));
}

static void test_tracestate_cut_at_512_by_whole_members(void)
{
    const char *a = member_of_len("a", 100), *b = member_of_len("b", 100), *c = member_of_len("c", 100),
               *d = member_of_len("d", 100), *e = member_of_len("e", 100), *f = member_of_len("f", 7);
    const char *long1 = member_of_len("long1", 200), *long2 = member_of_len("long2", 200);
    const char *max_len = apr_pstrcat(tg_test_pool, a, ",", b, ",", c, ",", d, ",", e, ",", f, NULL);
    /* Exactly 512 goes whole. */
    CU_ASSERT_EQUAL(strlen(max_len), TG_TRACESTATE_MAX_LEN);
    assert_tracestate_kept(max_len, max_len);
    /* Longer: members go from the end. */
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, max_len, "x", NULL),
                           apr_pstrcat(tg_test_pool, a, ",", b, ",", c, ",", d, ",", e, NULL));
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, a, ",", b, ",", c, ",", d, ",", e, ",",
                                       member_of_len("g", 8), NULL),
                           apr_pstrcat(tg_test_pool, a, ",", b, ",", c, ",", d, ",", e, NULL));
    /* Members over 128 characters go first, the last of them first. */
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, a, ",", long1, ",", b, ",", c, ",", d, NULL),
                           apr_pstrcat(tg_test_pool, a, ",", b, ",", c, ",", d, NULL));
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, long1, ",", a, ",", long2, ",", b, NULL),
                           apr_pstrcat(tg_test_pool, long1, ",", a, ",", b, NULL));
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, long1, ",", a, ",", b, ",", c, NULL),
                           apr_pstrcat(tg_test_pool, long1, ",", a, ",", b, ",", c, NULL));
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, long1, ",", long2, ",", a, ",", b, ",", c, ",", d, NULL),
                           apr_pstrcat(tg_test_pool, a, ",", b, ",", c, ",", d, NULL));
    /* Whitespace that we leave out does not count. */
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, a, " , ", b, " , ", c, " , ", d, " , ", e, " , ", f, NULL),
                           max_len);
}

static void test_tracestate_single_member_too_long_to_send(void)
{
    const char *widest = apr_pstrcat(tg_test_pool, repeat('k', 256), "=", repeat('v', 256), NULL);
    CU_ASSERT_PTR_NULL(tracestate_ok(widest));
    assert_tracestate_kept(apr_pstrcat(tg_test_pool, "foo=1,", widest, ",bar=2", NULL), "foo=1,bar=2");
}

static void test_tracestate_oversized(void)
{
    assert_tracestate_dropped(repeat('a', 100000));
    assert_tracestate_dropped(apr_pstrcat(tg_test_pool, "foo=", repeat('a', 100000), NULL));
    CU_ASSERT_PTR_NULL(tracestate_ok(repeat(',', 100000)));
    CU_ASSERT_PTR_NULL(tracestate_ok(repeat(' ', 100000)));
}

void tg_test_add_w3c(void)
{
    CU_pSuite suite = TG_SUITE("w3c");
    TG_TEST(suite, test_absent);
    TG_TEST(suite, test_parses_version_00);
    TG_TEST(suite, test_sampling_from_flag_bit_0);
    TG_TEST(suite, test_rejects_malformed_version_00);
    TG_TEST(suite, test_ignores_whitespace_around_the_value);
    TG_TEST(suite, test_rejects_version_ff);
    TG_TEST(suite, test_higher_version_reads_first_55_characters);
    TG_TEST(suite, test_rejects_oversized);
    TG_TEST(suite, test_format_sampled_bit);
    TG_TEST(suite, test_format_carries_random_bit_only);
    TG_TEST(suite, test_format_widens_64_bit_trace_id);
    TG_TEST(suite, test_format_reads_back);
    TG_TEST(suite, test_tracestate_absent);
    TG_TEST(suite, test_tracestate_spec_examples);
    TG_TEST(suite, test_tracestate_keeps_members_in_order);
    TG_TEST(suite, test_tracestate_whitespace_around_members);
    TG_TEST(suite, test_tracestate_empty_members_ignored);
    TG_TEST(suite, test_tracestate_all_allowed_characters);
    TG_TEST(suite, test_tracestate_key_rules);
    TG_TEST(suite, test_tracestate_key_lengths);
    TG_TEST(suite, test_tracestate_value_rules);
    TG_TEST(suite, test_tracestate_duplicate_keys);
    TG_TEST(suite, test_tracestate_at_most_32_members);
    TG_TEST(suite, test_tracestate_cut_at_512_by_whole_members);
    TG_TEST(suite, test_tracestate_single_member_too_long_to_send);
    TG_TEST(suite, test_tracestate_oversized);
}
