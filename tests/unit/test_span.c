#include "unit.h"

#include "tg_span.h"

#include <apr_strings.h>

#include <string.h>

#define T0 ((apr_time_t)1556604172355737)

/* The span's last note, as an exporter sees it. */
static tg_annotation_t last_note(const tg_span_t *span)
{
    return tg_span_note_at(span, tg_span_note_count(span) - 1);
}

/* A string of n copies of c, in the test pool. */
static char *repeat(char c, size_t n)
{
    char *s = apr_palloc(tg_test_pool, n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static tg_context_t caller_context(void)
{
    tg_context_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.trace_id.hi = 0x4e441824ec2b6a44ULL;
    ctx.trace_id.lo = 0xffdc9bb9a6453df3ULL;
    ctx.span_id = 0x352bff9a74ca9ad2ULL;
    ctx.parent_id = 0x6b221d5bc9e6496cULL;
    ctx.sampling = TG_SAMPLING_ACCEPT;
    return ctx;
}

static void test_root_span_starts_a_new_trace(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "get /api", NULL, T0);
    CU_ASSERT_PTR_EQUAL(span->pool, tg_test_pool);
    CU_ASSERT_EQUAL(span->kind, TG_SPAN_SERVER);
    CU_ASSERT_STRING_EQUAL(span->name, "get /api");
    CU_ASSERT_FALSE(tg_trace_id_is_zero(span->trace_id));
    CU_ASSERT_NOT_EQUAL(span->id, 0);
    CU_ASSERT_EQUAL(span->parent_id, 0);
    CU_ASSERT_EQUAL(span->timestamp, T0);
    CU_ASSERT_EQUAL(span->duration, 0);
    CU_ASSERT_FALSE(span->finished);
    CU_ASSERT_FALSE(span->debug);
    CU_ASSERT_FALSE(span->shared);
    CU_ASSERT_EQUAL(span->dropped, 0);
    CU_ASSERT_EQUAL(tg_span_tag_count(span), 0);
    CU_ASSERT_EQUAL_FATAL(tg_span_note_count(span), 1);
    CU_ASSERT_EQUAL(tg_span_note_at(span, 0).timestamp, T0);
    CU_ASSERT_STRING_EQUAL(tg_span_note_at(span, 0).value, TG_NOTE_START);
    /* Nothing allocated for tags and notes a span may never get. */
    CU_ASSERT_PTR_NULL(span->tags);
    CU_ASSERT_PTR_NULL(span->annotations);
}

static void test_init_fills_a_span_the_caller_holds(void)
{
    tg_context_t ctx = caller_context();
    tg_span_t span;
    memset(&span, 0xa5, sizeof(span));
    tg_span_init(&span, tg_test_pool, TG_SPAN_SERVER, "x", &ctx, T0);
    CU_ASSERT_PTR_EQUAL(span.pool, tg_test_pool);
    CU_ASSERT_STRING_EQUAL(span.name, "x");
    CU_ASSERT_TRUE(tg_trace_id_equal(span.trace_id, ctx.trace_id));
    CU_ASSERT_EQUAL(span.parent_id, ctx.span_id);
    CU_ASSERT_EQUAL(span.timestamp, T0);
    CU_ASSERT_FALSE(span.finished);
    CU_ASSERT_EQUAL(span.dropped, 0);
    CU_ASSERT_PTR_NULL(span.method);
    CU_ASSERT_EQUAL(span.status_code, 0);
    CU_ASSERT_EQUAL(tg_span_tag_count(&span), 0);
    CU_ASSERT_EQUAL(tg_span_note_count(&span), 1);
}

static void test_two_roots_get_different_ids(void)
{
    tg_span_t *a = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "a", NULL, T0);
    tg_span_t *b = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "b", NULL, T0);
    CU_ASSERT_FALSE(tg_trace_id_equal(a->trace_id, b->trace_id));
    CU_ASSERT_NOT_EQUAL(a->id, b->id);
}

static void test_child_continues_the_callers_trace(void)
{
    tg_context_t ctx = caller_context();
    tg_span_t *span;
    ctx.debug = 1;
    span = tg_span_start(tg_test_pool, TG_SPAN_CLIENT, "call", &ctx, T0);
    CU_ASSERT_TRUE(tg_trace_id_equal(span->trace_id, ctx.trace_id));
    CU_ASSERT_EQUAL(span->parent_id, ctx.span_id);
    CU_ASSERT_NOT_EQUAL(span->id, ctx.span_id);
    CU_ASSERT_NOT_EQUAL(span->id, 0);
    CU_ASSERT_TRUE(span->debug);
    CU_ASSERT_EQUAL(span->kind, TG_SPAN_CLIENT);
}

static void test_incomplete_context_starts_a_root(void)
{
    tg_context_t no_trace = caller_context();
    tg_context_t no_span = caller_context();
    tg_span_t *span;
    no_trace.trace_id.hi = no_trace.trace_id.lo = 0;
    no_span.span_id = 0;

    span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", &no_trace, T0);
    CU_ASSERT_EQUAL(span->parent_id, 0);
    CU_ASSERT_FALSE(tg_trace_id_is_zero(span->trace_id));

    span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", &no_span, T0);
    CU_ASSERT_EQUAL(span->parent_id, 0);
    CU_ASSERT_FALSE(tg_trace_id_equal(span->trace_id, no_span.trace_id));
}

/* The span's tags, as tg_span_tag_at gives them, are the (key, value)
 * pairs of expected, in their order. */
static void assert_tags_in_order(const tg_span_t *span, const char *const (*expected)[2],
                                 int count)
{
    char digits[TG_TAG_DIGITS];
    int i;
    CU_ASSERT_EQUAL_FATAL(tg_span_tag_count(span), count);
    for (i = 0; i < count; i++) {
        tg_tag_t tag = tg_span_tag_at(span, i, digits);
        CU_ASSERT_STRING_EQUAL(tag.key, expected[i][0]);
        CU_ASSERT_STRING_EQUAL(tag.value, expected[i][1]);
    }
}

static void test_without_a_name_it_is_named_after_its_request(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, NULL, NULL, T0);
    char buf[TG_SPAN_NAME_MAX + 1];
    CU_ASSERT_PTR_NULL(span->name);
    CU_ASSERT_PTR_NULL(tg_span_name(span, buf));
    tg_span_tag(span, TG_TAG_HTTP_METHOD, "GET");
    CU_ASSERT_STRING_EQUAL(tg_span_name(span, buf), "GET");
    tg_span_tag(span, TG_TAG_HTTP_PATH, "/v3/auth");
    CU_ASSERT_STRING_EQUAL(tg_span_name(span, buf), "GET /v3/auth");
    /* A name of its own wins. */
    span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "mine", NULL, T0);
    tg_span_tag(span, TG_TAG_HTTP_METHOD, "GET");
    CU_ASSERT_STRING_EQUAL(tg_span_name(span, buf), "mine");
}

static void test_longest_made_name_fits(void)
{
    char *longer = repeat('m', TG_SPAN_MAX_STRING + 10);
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, NULL, NULL, T0);
    char buf[TG_SPAN_NAME_MAX + 1];
    tg_span_tag(span, TG_TAG_HTTP_METHOD, longer);
    tg_span_tag(span, TG_TAG_HTTP_PATH, longer);
    CU_ASSERT_EQUAL(strlen(tg_span_name(span, buf)), TG_SPAN_NAME_MAX);
    CU_ASSERT_EQUAL(buf[TG_SPAN_MAX_STRING], ' ');
}

static void test_context_hands_on_this_span(void)
{
    tg_context_t ctx = caller_context();
    tg_context_t out;
    tg_span_t *span;
    ctx.debug = 1;
    span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", &ctx, T0);
    tg_span_context(span, &out);
    CU_ASSERT_TRUE(tg_trace_id_equal(out.trace_id, ctx.trace_id));
    CU_ASSERT_EQUAL(out.span_id, span->id);
    CU_ASSERT_EQUAL(out.parent_id, ctx.span_id);
    CU_ASSERT_EQUAL(out.sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_TRUE(out.debug);
    CU_ASSERT_TRUE(out.w3c_flags & TG_W3C_FLAG_SAMPLED);
}

static void test_tag_overwrites_same_key(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_tag(span, "http.status_code", "200");
    tg_span_tag(span, "http.method", "GET");
    tg_span_tag(span, "http.status_code", "500");
    tg_span_tag(span, "db", "a");
    tg_span_tag(span, "db", "b");
    CU_ASSERT_EQUAL(tg_span_tag_count(span), 3);
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, "http.status_code"), "500");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, "http.method"), "GET");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, "db"), "b");
    CU_ASSERT_PTR_NULL(tg_span_tag_value(span, "http.path"));
    CU_ASSERT_EQUAL(span->dropped, 0);
}

static void test_http_tags_are_fields_given_first(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    static const char *const expected[][2] = { { TG_TAG_HTTP_METHOD, "PUT" },
                                               { TG_TAG_HTTP_PATH, "/p" },
                                               { TG_TAG_HTTP_STATUS, "404" },
                                               { "first", "1" } };
    tg_span_tag(span, "first", "1");
    tg_span_tag(span, TG_TAG_HTTP_STATUS, "404");
    tg_span_tag(span, TG_TAG_HTTP_PATH, "/p");
    tg_span_tag(span, TG_TAG_HTTP_METHOD, "PUT");
    CU_ASSERT_STRING_EQUAL(span->method, "PUT");
    CU_ASSERT_STRING_EQUAL(span->path, "/p");
    CU_ASSERT_EQUAL(span->status_code, 404);
    CU_ASSERT_EQUAL(span->tags->nelts, 1);
    assert_tags_in_order(span, expected, 4);
}

static void test_status_tag_must_be_a_status_code(void)
{
    static const char *const refused[] = { "", "abc", "0", "1000", "-1", "20x", " 200", "+200",
                                           "0200", "99999999999999999999" };
    static const struct {
        const char *text;
        int code;
    } taken[] = { { "1", 1 }, { "200", 200 }, { "999", 999 }, { "099", 99 } };
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    size_t i;
    for (i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
        tg_span_tag(span, TG_TAG_HTTP_STATUS, taken[i].text);
        CU_ASSERT_EQUAL(span->status_code, taken[i].code);
    }
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        tg_span_tag(span, TG_TAG_HTTP_STATUS, refused[i]);
        CU_ASSERT_EQUAL(span->status_code, 0);
        CU_ASSERT_EQUAL(tg_span_tag_count(span), 0);
        CU_ASSERT_PTR_NULL(tg_span_tag_value(span, TG_TAG_HTTP_STATUS));
    }
}

static void test_tag_copies_its_strings(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    char key[] = "k", value[] = "v";
    tg_span_tag(span, key, value);
    key[0] = 'X';
    value[0] = 'Y';
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, "k"), "v");
}

static void test_null_tag_value_is_empty(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_tag(span, "k", NULL);
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, "k"), "");
}

static void test_tags_are_bounded_and_counted(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    int i;
    for (i = 0; i < TG_SPAN_MAX_TAGS + 3; i++)
        tg_span_tag(span, apr_psprintf(tg_test_pool, "k%d", i), "v");
    CU_ASSERT_EQUAL(span->tags->nelts, TG_SPAN_MAX_TAGS);
    CU_ASSERT_EQUAL(span->dropped, 3);
    CU_ASSERT_PTR_NULL(tg_span_tag_value(span, apr_psprintf(tg_test_pool, "k%d", TG_SPAN_MAX_TAGS)));

    /* A full span still takes a new value for a tag it has. */
    tg_span_tag(span, "k0", "changed");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, "k0"), "changed");
    CU_ASSERT_EQUAL(span->tags->nelts, TG_SPAN_MAX_TAGS);
    CU_ASSERT_EQUAL(span->dropped, 3);
}

static void test_strings_are_cut_to_the_bound(void)
{
    char *longer = repeat('a', TG_SPAN_MAX_STRING + 10);
    char *exact = repeat('a', TG_SPAN_MAX_STRING);
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, longer, NULL, T0);
    const tg_tag_t *tag;
    CU_ASSERT_STRING_EQUAL(span->name, exact);

    tg_span_tag(span, longer, longer);
    tg_span_tag(span, TG_TAG_HTTP_PATH, longer);
    CU_ASSERT_EQUAL_FATAL(span->tags->nelts, 1);
    tag = &APR_ARRAY_IDX(span->tags, 0, tg_tag_t);
    CU_ASSERT_STRING_EQUAL(tag->key, exact);
    CU_ASSERT_STRING_EQUAL(tag->value, exact);
    CU_ASSERT_STRING_EQUAL(span->path, exact);

    tg_span_annotate(span, T0 + 1, longer);
    CU_ASSERT_STRING_EQUAL(last_note(span).value, exact);
}

static void test_long_key_finds_its_cut_tag(void)
{
    char *longer = repeat('k', TG_SPAN_MAX_STRING + 10);
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_tag(span, longer, "first");
    tg_span_tag(span, longer, "second");
    CU_ASSERT_EQUAL(span->tags->nelts, 1);
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, longer), "second");
    /* ...but a key one byte shorter than the cut is another key. */
    CU_ASSERT_PTR_NULL(tg_span_tag_value(span, repeat('k', TG_SPAN_MAX_STRING - 1)));
}

static void test_annotate_keeps_time_and_value(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_annotate(span, T0 + 42, "wsgi.start");
    CU_ASSERT_EQUAL_FATAL(tg_span_note_count(span), 2);
    CU_ASSERT_EQUAL(last_note(span).timestamp, T0 + 42);
    CU_ASSERT_STRING_EQUAL(last_note(span).value, "wsgi.start");
    tg_span_finish(span, T0 + 50);
    CU_ASSERT_EQUAL_FATAL(tg_span_note_count(span), 3);
    CU_ASSERT_STRING_EQUAL(tg_span_note_at(span, 1).value, "wsgi.start");
    CU_ASSERT_STRING_EQUAL(last_note(span).value, TG_NOTE_STOP);
}

static void test_notes_are_bounded_and_stop_always_fits(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    int i;
    for (i = 0; i < TG_SPAN_MAX_ANNOTATIONS + 5; i++)
        tg_span_annotate(span, T0 + i, "note");
    /* start, and all but the slot kept for stop */
    CU_ASSERT_EQUAL(tg_span_note_count(span), TG_SPAN_MAX_ANNOTATIONS - 1);
    CU_ASSERT_EQUAL(span->dropped, 5 + 2);

    tg_span_finish(span, T0 + 1000);
    CU_ASSERT_EQUAL(tg_span_note_count(span), TG_SPAN_MAX_ANNOTATIONS);
    CU_ASSERT_STRING_EQUAL(last_note(span).value, TG_NOTE_STOP);
    CU_ASSERT_EQUAL(last_note(span).timestamp, T0 + 1000);

    tg_span_annotate(span, T0 + 2000, "late");
    CU_ASSERT_EQUAL(tg_span_note_count(span), TG_SPAN_MAX_ANNOTATIONS);
    CU_ASSERT_EQUAL(span->dropped, 5 + 2 + 1);
}

static void test_a_stop_note_by_hand_takes_no_reserved_slot(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    int i;
    for (i = 0; i < TG_SPAN_MAX_ANNOTATIONS * 2; i++)
        tg_span_annotate(span, T0 + i, TG_NOTE_STOP);
    CU_ASSERT_EQUAL(tg_span_note_count(span), TG_SPAN_MAX_ANNOTATIONS - 1);
    tg_span_finish(span, T0 + 1000);
    CU_ASSERT_EQUAL(tg_span_note_count(span), TG_SPAN_MAX_ANNOTATIONS);
}

/* The stop note is the last: nothing is noted after it. */
static void test_notes_after_finish_are_dropped(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    int i;
    tg_span_finish(span, T0 + 10);
    for (i = 0; i < 3; i++)
        tg_span_annotate(span, T0 + 20, "after");
    CU_ASSERT_EQUAL(tg_span_note_count(span), 2);
    CU_ASSERT_STRING_EQUAL(last_note(span).value, TG_NOTE_STOP);
    CU_ASSERT_EQUAL(span->dropped, 3);
}

static void test_finish_sets_duration_and_stop(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_finish(span, T0 + 1431);
    CU_ASSERT_TRUE(span->finished);
    CU_ASSERT_EQUAL(span->duration, 1431);
    CU_ASSERT_EQUAL_FATAL(tg_span_note_count(span), 2);
    CU_ASSERT_STRING_EQUAL(last_note(span).value, TG_NOTE_STOP);
    CU_ASSERT_EQUAL(last_note(span).timestamp, T0 + 1431);
}

static void test_finish_is_idempotent(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_finish(span, T0 + 100);
    tg_span_finish(span, T0 + 900);
    CU_ASSERT_EQUAL(span->duration, 100);
    CU_ASSERT_EQUAL(tg_span_note_count(span), 2);
    CU_ASSERT_EQUAL(last_note(span).timestamp, T0 + 100);
}

static void test_duration_is_at_least_one(void)
{
    tg_span_t *same = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_t *backwards = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_finish(same, T0);
    tg_span_finish(backwards, T0 - 5000); /* the clock stepped back */
    CU_ASSERT_EQUAL(same->duration, 1);
    CU_ASSERT_EQUAL(backwards->duration, 1);
}

/* The endpoint an address gives: which of ipv4 and ipv6 it fills, and with
 * what text. */
static void assert_endpoint(const char *ip, const char *ipv4, const char *ipv6)
{
    tg_endpoint_t endpoint = {"svc", "stale", "stale", 1};
    tg_endpoint_set_address(&endpoint, ip, 8080, tg_test_pool);
    CU_ASSERT_STRING_EQUAL(endpoint.service_name, "svc");
    CU_ASSERT_EQUAL(endpoint.port, 8080);
    if (ipv4) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(endpoint.ipv4);
        CU_ASSERT_STRING_EQUAL(endpoint.ipv4, ipv4);
    }
    else {
        CU_ASSERT_PTR_NULL(endpoint.ipv4);
    }
    if (ipv6) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(endpoint.ipv6);
        CU_ASSERT_STRING_EQUAL(endpoint.ipv6, ipv6);
    }
    else {
        CU_ASSERT_PTR_NULL(endpoint.ipv6);
    }
}

static void test_endpoint_address_is_ipv4_or_ipv6_by_what_it_is(void)
{
    assert_endpoint("127.0.0.1", "127.0.0.1", NULL);
    assert_endpoint("203.0.113.7", "203.0.113.7", NULL);
    assert_endpoint("::1", NULL, "::1");
    assert_endpoint("2001:db8::1", NULL, "2001:db8::1");
    assert_endpoint("fe80::1", NULL, "fe80::1");
    assert_endpoint(NULL, NULL, NULL);
}

/* A socket listening on [::] sees its IPv4 clients as IPv4-mapped IPv6
 * addresses: they are IPv4 endpoints, whichever way the text writes them. */
static void test_endpoint_of_an_ipv4_mapped_address_is_ipv4(void)
{
    assert_endpoint("::ffff:127.0.0.1", "127.0.0.1", NULL);
    assert_endpoint("::FFFF:203.0.113.7", "203.0.113.7", NULL);
    assert_endpoint("0:0:0:0:0:ffff:192.0.2.1", "192.0.2.1", NULL);
    assert_endpoint("::ffff:c000:201", "192.0.2.1", NULL);
    assert_endpoint("::ffff:7f00:1", "127.0.0.1", NULL);
    /* Addresses that hold an IPv4 address without mapping one stay IPv6. */
    assert_endpoint("::127.0.0.1", NULL, "::127.0.0.1");
    assert_endpoint("64:ff9b::192.0.2.1", NULL, "64:ff9b::192.0.2.1");
    assert_endpoint("::ffff:0:192.0.2.1", NULL, "::ffff:0:192.0.2.1");
}

/* The shipper's exporters see the transfer as notes, in time among the
 * others, and as tags after the HTTP ones; a span without room for a note
 * counts what it leaves out. */
static void test_transfer_is_spelled_out_as_notes_and_tags(void)
{
    static const char *const lengths_first[][2] = { { TG_TAG_REQUEST_LENGTH, "150000" },
                                                    { TG_TAG_RESPONSE_LENGTH, "5000000000" },
                                                    { "component", "upload" } };
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "upload", NULL, 1000);
    const tg_annotation_t *notes;
    int i;
    tg_span_annotate(span, 1010, "internal redirect to /x");
    tg_span_annotate(span, 1030, "error: late");
    tg_span_finish(span, 1050);
    span->transfer = TG_TRANSFER_ALL;
    span->body_read_at = 1020;
    span->first_byte_at = 1040;
    span->request_bytes = 150000;
    span->response_bytes = 5000000000ULL;
    tg_span_tag(span, "component", "upload");
    tg_span_spell_out_transfer(span);
    CU_ASSERT_EQUAL(span->transfer, TG_TRANSFER_REQUEST_BYTES | TG_TRANSFER_RESPONSE_BYTES);
    CU_ASSERT_EQUAL_FATAL(span->annotations->nelts, 4);
    notes = (const tg_annotation_t *)span->annotations->elts;
    CU_ASSERT_STRING_EQUAL(notes[0].value, "internal redirect to /x");
    CU_ASSERT_STRING_EQUAL(notes[1].value, TG_NOTE_BODY_READ);
    CU_ASSERT_EQUAL(notes[1].timestamp, 1020);
    CU_ASSERT_STRING_EQUAL(notes[2].value, "error: late");
    CU_ASSERT_STRING_EQUAL(notes[3].value, TG_NOTE_FIRST_BYTE);
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, TG_TAG_REQUEST_LENGTH), "150000");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, TG_TAG_RESPONSE_LENGTH), "5000000000");
    assert_tags_in_order(span, lengths_first, 3);
    /* Spelled out once: a second call adds nothing. */
    tg_span_spell_out_transfer(span);
    CU_ASSERT_EQUAL(span->annotations->nelts, 4);

    span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "full", NULL, 1000);
    for (i = 0; i < TG_SPAN_MAX_NOTES_BETWEEN; i++)
        tg_span_annotate(span, 1001 + i, "note");
    span->transfer = TG_TRANSFER_FIRST_BYTE;
    span->first_byte_at = 1002;
    tg_span_spell_out_transfer(span);
    CU_ASSERT_EQUAL(span->annotations->nelts, TG_SPAN_MAX_NOTES_BETWEEN);
    CU_ASSERT_EQUAL(span->dropped, 1);
}

void tg_test_add_span(void)
{
    CU_pSuite suite = TG_SUITE("span");
    TG_TEST(suite, test_root_span_starts_a_new_trace);
    TG_TEST(suite, test_init_fills_a_span_the_caller_holds);
    TG_TEST(suite, test_two_roots_get_different_ids);
    TG_TEST(suite, test_child_continues_the_callers_trace);
    TG_TEST(suite, test_incomplete_context_starts_a_root);
    TG_TEST(suite, test_without_a_name_it_is_named_after_its_request);
    TG_TEST(suite, test_longest_made_name_fits);
    TG_TEST(suite, test_context_hands_on_this_span);
    TG_TEST(suite, test_tag_overwrites_same_key);
    TG_TEST(suite, test_http_tags_are_fields_given_first);
    TG_TEST(suite, test_status_tag_must_be_a_status_code);
    TG_TEST(suite, test_tag_copies_its_strings);
    TG_TEST(suite, test_null_tag_value_is_empty);
    TG_TEST(suite, test_tags_are_bounded_and_counted);
    TG_TEST(suite, test_strings_are_cut_to_the_bound);
    TG_TEST(suite, test_long_key_finds_its_cut_tag);
    TG_TEST(suite, test_annotate_keeps_time_and_value);
    TG_TEST(suite, test_notes_are_bounded_and_stop_always_fits);
    TG_TEST(suite, test_a_stop_note_by_hand_takes_no_reserved_slot);
    TG_TEST(suite, test_notes_after_finish_are_dropped);
    TG_TEST(suite, test_finish_sets_duration_and_stop);
    TG_TEST(suite, test_finish_is_idempotent);
    TG_TEST(suite, test_duration_is_at_least_one);
    TG_TEST(suite, test_endpoint_address_is_ipv4_or_ipv6_by_what_it_is);
    TG_TEST(suite, test_endpoint_of_an_ipv4_mapped_address_is_ipv4);
    TG_TEST(suite, test_transfer_is_spelled_out_as_notes_and_tags);
}
