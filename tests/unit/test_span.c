#include "unit.h"

#include "tg_span.h"

#include <apr_strings.h>

#include <string.h>

#define T0 ((apr_time_t)1556604172355737)

static const tg_annotation_t *note_at(const tg_span_t *span, int i)
{
    return &APR_ARRAY_IDX(span->annotations, i, tg_annotation_t);
}

static const tg_annotation_t *last_note(const tg_span_t *span)
{
    return note_at(span, span->annotations->nelts - 1);
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
    CU_ASSERT_EQUAL(span->tags->nelts, 0);
    CU_ASSERT_EQUAL_FATAL(span->annotations->nelts, 1);
    CU_ASSERT_EQUAL(note_at(span, 0)->timestamp, T0);
    CU_ASSERT_STRING_EQUAL(note_at(span, 0)->value, TG_NOTE_START);
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

static void test_null_name_is_empty(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, NULL, NULL, T0);
    CU_ASSERT_STRING_EQUAL(span->name, "");
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
    CU_ASSERT_EQUAL(span->tags->nelts, 2);
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, "http.status_code"), "500");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(span, "http.method"), "GET");
    CU_ASSERT_PTR_NULL(tg_span_tag_value(span, "http.path"));
    CU_ASSERT_EQUAL(span->dropped, 0);
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
    CU_ASSERT_EQUAL_FATAL(span->tags->nelts, 1);
    tag = &APR_ARRAY_IDX(span->tags, 0, tg_tag_t);
    CU_ASSERT_STRING_EQUAL(tag->key, exact);
    CU_ASSERT_STRING_EQUAL(tag->value, exact);

    tg_span_annotate(span, T0 + 1, longer);
    CU_ASSERT_STRING_EQUAL(last_note(span)->value, exact);
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
    CU_ASSERT_EQUAL_FATAL(span->annotations->nelts, 2);
    CU_ASSERT_EQUAL(last_note(span)->timestamp, T0 + 42);
    CU_ASSERT_STRING_EQUAL(last_note(span)->value, "wsgi.start");
}

static void test_notes_are_bounded_and_stop_always_fits(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    int i;
    for (i = 0; i < TG_SPAN_MAX_ANNOTATIONS + 5; i++)
        tg_span_annotate(span, T0 + i, "note");
    /* start, and all but the slot kept for stop */
    CU_ASSERT_EQUAL(span->annotations->nelts, TG_SPAN_MAX_ANNOTATIONS - 1);
    CU_ASSERT_EQUAL(span->dropped, 5 + 2);

    tg_span_finish(span, T0 + 1000);
    CU_ASSERT_EQUAL(span->annotations->nelts, TG_SPAN_MAX_ANNOTATIONS);
    CU_ASSERT_STRING_EQUAL(last_note(span)->value, TG_NOTE_STOP);
    CU_ASSERT_EQUAL(last_note(span)->timestamp, T0 + 1000);

    tg_span_annotate(span, T0 + 2000, "late");
    CU_ASSERT_EQUAL(span->annotations->nelts, TG_SPAN_MAX_ANNOTATIONS);
    CU_ASSERT_EQUAL(span->dropped, 5 + 2 + 1);
}

static void test_a_stop_note_by_hand_takes_no_reserved_slot(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    int i;
    for (i = 0; i < TG_SPAN_MAX_ANNOTATIONS * 2; i++)
        tg_span_annotate(span, T0 + i, TG_NOTE_STOP);
    CU_ASSERT_EQUAL(span->annotations->nelts, TG_SPAN_MAX_ANNOTATIONS - 1);
    tg_span_finish(span, T0 + 1000);
    CU_ASSERT_EQUAL(span->annotations->nelts, TG_SPAN_MAX_ANNOTATIONS);
}

static void test_notes_after_finish_fill_the_span(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    int i;
    tg_span_finish(span, T0 + 10);
    for (i = 0; i < TG_SPAN_MAX_ANNOTATIONS; i++)
        tg_span_annotate(span, T0 + 20, "after");
    CU_ASSERT_EQUAL(span->annotations->nelts, TG_SPAN_MAX_ANNOTATIONS);
    CU_ASSERT_EQUAL(span->dropped, 2);
}

static void test_finish_sets_duration_and_stop(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_finish(span, T0 + 1431);
    CU_ASSERT_TRUE(span->finished);
    CU_ASSERT_EQUAL(span->duration, 1431);
    CU_ASSERT_EQUAL_FATAL(span->annotations->nelts, 2);
    CU_ASSERT_STRING_EQUAL(last_note(span)->value, TG_NOTE_STOP);
    CU_ASSERT_EQUAL(last_note(span)->timestamp, T0 + 1431);
}

static void test_finish_is_idempotent(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_finish(span, T0 + 100);
    tg_span_finish(span, T0 + 900);
    CU_ASSERT_EQUAL(span->duration, 100);
    CU_ASSERT_EQUAL(span->annotations->nelts, 2);
    CU_ASSERT_EQUAL(last_note(span)->timestamp, T0 + 100);
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

void tg_test_add_span(void)
{
    CU_pSuite suite = TG_SUITE("span");
    TG_TEST(suite, test_root_span_starts_a_new_trace);
    TG_TEST(suite, test_two_roots_get_different_ids);
    TG_TEST(suite, test_child_continues_the_callers_trace);
    TG_TEST(suite, test_incomplete_context_starts_a_root);
    TG_TEST(suite, test_null_name_is_empty);
    TG_TEST(suite, test_context_hands_on_this_span);
    TG_TEST(suite, test_tag_overwrites_same_key);
    TG_TEST(suite, test_tag_copies_its_strings);
    TG_TEST(suite, test_null_tag_value_is_empty);
    TG_TEST(suite, test_tags_are_bounded_and_counted);
    TG_TEST(suite, test_strings_are_cut_to_the_bound);
    TG_TEST(suite, test_long_key_finds_its_cut_tag);
    TG_TEST(suite, test_annotate_keeps_time_and_value);
    TG_TEST(suite, test_notes_are_bounded_and_stop_always_fits);
    TG_TEST(suite, test_a_stop_note_by_hand_takes_no_reserved_slot);
    TG_TEST(suite, test_notes_after_finish_fill_the_span);
    TG_TEST(suite, test_finish_sets_duration_and_stop);
    TG_TEST(suite, test_finish_is_idempotent);
    TG_TEST(suite, test_duration_is_at_least_one);
}
