/* The seed's calls on this thread's stack: nesting, misuse, tokens, run,
 * clear. */
#include <apr_strings.h>
#include <pthread.h>
#include <string.h>

#include "lib_tests.h"
#include "tg_w3c.h"

static void test_spans_nest_with_their_parents(void)
{
    const tg_span_t *inner, *middle, *outer;
    CU_ASSERT_EQUAL(tomograph_start("My Service", "a query", "127.0.0.1", 80, NULL), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_start("my service", "a sub-query", NULL, 0, NULL), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_start(NULL, "a row", NULL, 0, NULL), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_depth(), 3);
    CU_ASSERT_EQUAL(tomograph_stop("a row"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_stop("a sub-query"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_stop("a query"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_depth(), 0);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 3);
    inner = shipped(0), middle = shipped(1), outer = shipped(2);
    CU_ASSERT_STRING_EQUAL(inner->name, "a row");
    CU_ASSERT_STRING_EQUAL(outer->name, "a query");
    CU_ASSERT_EQUAL(outer->parent_id, 0);
    assert_child_of(middle, outer);
    assert_child_of(inner, middle);
    /* Zipkin's v2 model: a span inside a process has no kind. */
    CU_ASSERT_EQUAL(outer->kind, TG_SPAN_INTERNAL);
    CU_ASSERT(outer->finished && outer->duration >= 1);
    CU_ASSERT(outer->timestamp <= middle->timestamp);
    CU_ASSERT_STRING_EQUAL(outer->local.service_name, "my service");
    CU_ASSERT_STRING_EQUAL(outer->local.ipv4, "127.0.0.1");
    CU_ASSERT_EQUAL(outer->local.port, 80);
    CU_ASSERT_STRING_EQUAL(inner->local.service_name, TEST_SERVICE_LOWERCASE);
}

static void test_stop_of_another_name_changes_nothing(void)
{
    char before[TOMOGRAPH_TOKEN_SIZE], after[TOMOGRAPH_TOKEN_SIZE];
    tomograph_start("s", "outer", NULL, 0, NULL);
    tomograph_start("s", "inner", NULL, 0, NULL);
    tomograph_token(before, sizeof(before));
    CU_ASSERT_EQUAL(tomograph_stop("outer"), TOMOGRAPH_EWRONGSPAN);
    CU_ASSERT_EQUAL(tomograph_stop("inne"), TOMOGRAPH_EWRONGSPAN);
    CU_ASSERT_EQUAL(tomograph_stop(""), TOMOGRAPH_EWRONGSPAN);
    CU_ASSERT_EQUAL(tomograph_depth(), 2);
    tomograph_token(after, sizeof(after));
    CU_ASSERT_STRING_EQUAL(before, after);
    CU_ASSERT_EQUAL(shipped_count(), 0);
    CU_ASSERT_EQUAL(tomograph_stop("inner"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_stop("outer"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(shipped_count(), 2);
}

static void count_header(void *carrier, const char *name, const char *value)
{
    (void)name, (void)value;
    ++*(int *)carrier;
}

static void test_calls_on_the_top_with_nothing_open(void)
{
    char token[TOMOGRAPH_TOKEN_SIZE];
    int headers = 0;
    CU_ASSERT_EQUAL(tomograph_stop("a query"), TOMOGRAPH_ENOSPAN);
    CU_ASSERT_EQUAL(tomograph_annotate("something happened"), TOMOGRAPH_ENOSPAN);
    CU_ASSERT_EQUAL(tomograph_tag("k", "v"), TOMOGRAPH_ENOSPAN);
    CU_ASSERT_EQUAL(tomograph_fail("KeyError"), TOMOGRAPH_ENOSPAN);
    CU_ASSERT_EQUAL(tomograph_token(token, sizeof(token)), TOMOGRAPH_ENOSPAN);
    CU_ASSERT_EQUAL(tomograph_inject(count_header, &headers), TOMOGRAPH_ENOSPAN);
    CU_ASSERT_EQUAL(headers, 0);
    CU_ASSERT_EQUAL(tomograph_clear(), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(shipped_count(), 0);
}

static void test_arguments_missing_or_out_of_range(void)
{
    char token[TOMOGRAPH_TOKEN_SIZE];
    CU_ASSERT_EQUAL(tomograph_start("s", NULL, NULL, 0, NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_start("s", "", NULL, 0, NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_start("s", "n", NULL, -1, NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_start("s", "n", NULL, 65536, NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_start_server("s", "n", NULL, NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_run("s", "n", NULL, NULL, NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_depth(), 0);
    tomograph_start("s", "n", NULL, 65535, NULL);
    CU_ASSERT_EQUAL(tomograph_annotate(NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_annotate(""), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_tag(NULL, "v"), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_tag("k", NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_token(NULL, 100), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_token(token, sizeof(token) - 1), TOMOGRAPH_ETOOSMALL);
    CU_ASSERT_EQUAL(tomograph_inject(NULL, NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_stop(NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_depth(), 1);
    CU_ASSERT_EQUAL(tomograph_stop("n"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 1);
    CU_ASSERT_EQUAL(shipped(0)->local.port, 65535);
    CU_ASSERT_EQUAL(tg_span_note_count(shipped(0)), 2);
}

static void test_depth_is_bounded(void)
{
    int i;
    for (i = 0; i < TOMOGRAPH_MAX_DEPTH; i++)
        CU_ASSERT_EQUAL(tomograph_start("s", "deep", NULL, 0, NULL), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_start("s", "one too many", NULL, 0, NULL), TOMOGRAPH_EDEPTH);
    CU_ASSERT_EQUAL(tomograph_start_server("s", "one too many", table_get, NULL), TOMOGRAPH_EDEPTH);
    CU_ASSERT_EQUAL(tomograph_depth(), TOMOGRAPH_MAX_DEPTH);
    for (i = 0; i < TOMOGRAPH_MAX_DEPTH; i++)
        CU_ASSERT_EQUAL(tomograph_stop("deep"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(shipped_count(), TOMOGRAPH_MAX_DEPTH);
}

static void test_annotations_tags_and_failure_on_the_top(void)
{
    const tg_span_t *inner, *outer;
    tomograph_start("s", "outer", NULL, 0, NULL);
    tomograph_start("s", "inner", NULL, 0, NULL);
    CU_ASSERT_EQUAL(tomograph_annotate("something happened"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_tag("db.table", "images"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_fail("IntegrityError"), TOMOGRAPH_OK);
    tomograph_stop("inner");
    tomograph_stop("outer");
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 2);
    inner = shipped(0), outer = shipped(1);
    CU_ASSERT_EQUAL_FATAL(tg_span_note_count(inner), 3);
    CU_ASSERT_STRING_EQUAL(tg_span_note_at(inner, 1).value, "something happened");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(inner, "db.table"), "images");
    CU_ASSERT(inner->error);
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(inner, "error"), "IntegrityError");
    CU_ASSERT_EQUAL(tg_span_note_count(outer), 2);
    CU_ASSERT_EQUAL(tg_span_tag_count(outer), 0);
    CU_ASSERT_FALSE(outer->error);
}

/* Names, tags and notes are the caller's only during the call, and cut. */
static void test_strings_are_copied_and_cut(void)
{
    char name[400], value[400];
    memset(name, 'n', sizeof(name) - 1), name[sizeof(name) - 1] = '\0';
    memset(value, 'v', sizeof(value) - 1), value[sizeof(value) - 1] = '\0';
    tomograph_start(name, name, NULL, 0, NULL);
    tomograph_tag("k", value);
    tomograph_annotate(value);
    memset(value, 'x', sizeof(value) - 1);
    /* The name longer than a span keeps still stops it. */
    CU_ASSERT_EQUAL(tomograph_stop(name), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 1);
    CU_ASSERT_EQUAL(strlen(shipped(0)->name), TG_SPAN_MAX_STRING);
    CU_ASSERT_EQUAL(strlen(shipped(0)->local.service_name), TG_SPAN_MAX_STRING);
    CU_ASSERT_EQUAL(strspn(tg_span_tag_value(shipped(0), "k"), "v"), TG_SPAN_MAX_STRING);
    CU_ASSERT_EQUAL(strspn(tg_span_note_at(shipped(0), 1).value, "v"), TG_SPAN_MAX_STRING);
}

/* A host name is no address: it goes as a tag, the endpoint keeps the port. */
static void test_host_as_address_or_name(void)
{
    tomograph_start("s", "v6", "2001:db8::1", 8080, NULL);
    tomograph_stop("v6");
    tomograph_start("s", "named", "glance-api-1", 9292, NULL);
    tomograph_stop("named");
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 2);
    CU_ASSERT_STRING_EQUAL(shipped(0)->local.ipv6, "2001:db8::1");
    CU_ASSERT_EQUAL(shipped(0)->local.port, 8080);
    CU_ASSERT_PTR_NULL(shipped(1)->local.ipv4);
    CU_ASSERT_PTR_NULL(shipped(1)->local.ipv6);
    CU_ASSERT_EQUAL(shipped(1)->local.port, 9292);
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(shipped(1), "host.name"), "glance-api-1");
}

/* A thread keeps the last service name lowercased and the last host parsed:
 * each span still carries what it was given, whatever came before. */
static void test_each_span_has_its_own_service_and_host(void)
{
    char long_service[100];
    memset(long_service, 'X', sizeof(long_service) - 1);
    long_service[sizeof(long_service) - 1] = '\0';
    tomograph_start("Svc-A", "1", "10.0.0.1", 1, NULL);
    tomograph_stop("1");
    tomograph_start("svc-b", "2", "10.0.0.2", 2, NULL);
    tomograph_stop("2");
    tomograph_start("Svc-A", "3", "10.0.0.1", 3, NULL);
    tomograph_stop("3");
    tomograph_start(long_service, "4", "::ffff:192.0.2.1", 4, NULL);
    tomograph_stop("4");
    tomograph_start("Svc-A", "5", "2001:db8::2", 5, NULL);
    tomograph_stop("5");
    tomograph_start("Svc-A", "6", "10.0.0.1", 6, NULL);
    tomograph_stop("6");
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 6);
    CU_ASSERT_STRING_EQUAL(shipped(0)->local.service_name, "svc-a");
    CU_ASSERT_STRING_EQUAL(shipped(0)->local.ipv4, "10.0.0.1");
    CU_ASSERT_STRING_EQUAL(shipped(1)->local.service_name, "svc-b");
    CU_ASSERT_STRING_EQUAL(shipped(1)->local.ipv4, "10.0.0.2");
    CU_ASSERT_STRING_EQUAL(shipped(2)->local.service_name, "svc-a");
    CU_ASSERT_STRING_EQUAL(shipped(2)->local.ipv4, "10.0.0.1");
    CU_ASSERT_EQUAL(strspn(shipped(3)->local.service_name, "x"), sizeof(long_service) - 1);
    CU_ASSERT_STRING_EQUAL(shipped(3)->local.ipv4, "192.0.2.1");
    CU_ASSERT_PTR_NULL(shipped(3)->local.ipv6);
    CU_ASSERT_STRING_EQUAL(shipped(4)->local.service_name, "svc-a");
    CU_ASSERT_PTR_NULL(shipped(4)->local.ipv4);
    CU_ASSERT_STRING_EQUAL(shipped(4)->local.ipv6, "2001:db8::2");
    CU_ASSERT_STRING_EQUAL(shipped(5)->local.ipv4, "10.0.0.1");
    CU_ASSERT_PTR_NULL(shipped(5)->local.ipv6);
    CU_ASSERT_EQUAL(shipped(5)->local.port, 6);
}

typedef struct {
    const char *token;
    int started, depth_before, stopped;
} continuation_t;

static void *continue_on_a_thread(void *arg)
{
    continuation_t *continuation = arg;
    continuation->depth_before = tomograph_depth();
    continuation->started = tomograph_start("worker", "on a thread", NULL, 0, continuation->token);
    continuation->stopped = tomograph_stop("on a thread");
    return NULL;
}

static void test_token_continues_the_trace_on_another_thread(void)
{
    char token[TOMOGRAPH_TOKEN_SIZE];
    continuation_t continuation = { token, -1, -1, -1 };
    pthread_t thread;
    tomograph_start("s", "request", NULL, 0, NULL);
    CU_ASSERT_EQUAL(tomograph_token(token, sizeof(token)), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(strlen(token), TOMOGRAPH_TOKEN_SIZE - 1);
    CU_ASSERT_FATAL(pthread_create(&thread, NULL, continue_on_a_thread, &continuation) == 0);
    pthread_join(thread, NULL);
    CU_ASSERT_EQUAL(continuation.depth_before, 0);
    CU_ASSERT_EQUAL(continuation.started, TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(continuation.stopped, TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_depth(), 1);
    tomograph_stop("request");
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 2);
    assert_child_of(shipped(0), shipped(1));
    CU_ASSERT(shipped(0)->sampled);
}

/* A token names the parent, its trace and its sampled flag: one not
 * sampled hands that on, and nothing under it is shipped. */
static void test_token_carries_the_sampled_flag(void)
{
    char token[TOMOGRAPH_TOKEN_SIZE];
    CU_ASSERT_EQUAL(tomograph_start("s", "n", NULL, 0,
                                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
                    TOMOGRAPH_OK);
    tomograph_start("s", "under", NULL, 0, NULL);
    tomograph_token(token, sizeof(token));
    CU_ASSERT_NSTRING_EQUAL(token, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
    CU_ASSERT_STRING_EQUAL(token + 52, "-00");
    tomograph_stop("under");
    tomograph_stop("n");
    CU_ASSERT_EQUAL(shipped_count(), 0);
    tomograph_start("s", "n", NULL, 0, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    tomograph_stop("n");
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 1);
    CU_ASSERT_EQUAL(shipped(0)->trace_id.hi, 0x4bf92f3577b34da6ULL);
    CU_ASSERT_EQUAL(shipped(0)->trace_id.lo, 0xa3ce929d0e0e4736ULL);
    CU_ASSERT_EQUAL(shipped(0)->parent_id, 0x00f067aa0ba902b7ULL);
}

/* What the W3C text says to reject. */
static void test_bad_tokens(void)
{
    static const char *const bad[] = {
        "",
        "hello",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",        /* no flags */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     /* zero parent id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version ff */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",      /* short trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-00",  /* more in version 00 */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",     /* separators */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01",     /* not hex */
    };
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(tomograph_start("s", "n", NULL, 0, bad[i]), TOMOGRAPH_EBADTOKEN);
        CU_ASSERT_EQUAL(tomograph_depth(), 0);
    }
    /* Checked even when the top span is the parent. */
    tomograph_start("s", "n", NULL, 0, NULL);
    CU_ASSERT_EQUAL(tomograph_start("s", "m", NULL, 0, "hello"), TOMOGRAPH_EBADTOKEN);
    CU_ASSERT_EQUAL(tomograph_depth(), 1);
    tomograph_stop("n");
}

static int returns(void *arg)
{
    return *(int *)arg;
}

static int leaves_a_span_open(void *arg)
{
    (void)arg;
    tomograph_start("s", "forgotten", NULL, 0, NULL);
    return 0;
}

static void test_run_wraps_the_work_in_a_span(void)
{
    int zero = 0, three = 3, result = -1;
    CU_ASSERT_EQUAL(tomograph_run("s", "fine", returns, &zero, &result), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(result, 0);
    CU_ASSERT_EQUAL(tomograph_run("s", "failing", returns, &three, &result), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(result, 3);
    CU_ASSERT_EQUAL(tomograph_run("s", "no result wanted", returns, &three, NULL), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_depth(), 0);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 3);
    CU_ASSERT_STRING_EQUAL(shipped(0)->name, "fine");
    CU_ASSERT_FALSE(shipped(0)->error);
    CU_ASSERT_STRING_EQUAL(shipped(1)->name, "failing");
    CU_ASSERT(shipped(1)->error);
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(shipped(1), "error"), "3");
}

static void test_run_closes_what_the_work_left_open(void)
{
    int zero = 0, result = -1;
    CU_ASSERT_EQUAL(tomograph_run("s", "careless", leaves_a_span_open, NULL, &result),
                    TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_depth(), 0);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 2);
    CU_ASSERT_STRING_EQUAL(shipped(0)->name, "forgotten");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(shipped(0), "error"), "left open");
    assert_child_of(shipped(0), shipped(1));
    CU_ASSERT_FALSE(shipped(1)->error);
    /* The work runs even when its span cannot start. */
    CU_ASSERT_EQUAL(tomograph_run("s", "", returns, &zero, &result), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(result, 0);
}

static void test_clear_finishes_every_open_span_innermost_first(void)
{
    tomograph_start("s", "request", NULL, 0, NULL);
    tomograph_start("s", "handler", NULL, 0, NULL);
    tomograph_start("s", "query", NULL, 0, NULL);
    CU_ASSERT_EQUAL(tomograph_clear(), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_depth(), 0);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 3);
    CU_ASSERT_STRING_EQUAL(shipped(0)->name, "query");
    CU_ASSERT_STRING_EQUAL(shipped(2)->name, "request");
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(shipped(i)->error);
        CU_ASSERT_STRING_EQUAL(tg_span_tag_value(shipped(i), "error"), "left open");
    }
    /* The thread's next span is a new trace's root. */
    tomograph_start("s", "next request", NULL, 0, NULL);
    tomograph_stop("next request");
    CU_ASSERT_EQUAL(shipped(3)->parent_id, 0);
    CU_ASSERT_FALSE(tg_trace_id_equal(shipped(3)->trace_id, shipped(0)->trace_id));
}

void lib_test_add_stack(void)
{
    CU_pSuite suite = lib_test_suite("stack");
    LIB_TEST(suite, test_spans_nest_with_their_parents);
    LIB_TEST(suite, test_stop_of_another_name_changes_nothing);
    LIB_TEST(suite, test_calls_on_the_top_with_nothing_open);
    LIB_TEST(suite, test_arguments_missing_or_out_of_range);
    LIB_TEST(suite, test_depth_is_bounded);
    LIB_TEST(suite, test_annotations_tags_and_failure_on_the_top);
    LIB_TEST(suite, test_strings_are_copied_and_cut);
    LIB_TEST(suite, test_host_as_address_or_name);
    LIB_TEST(suite, test_each_span_has_its_own_service_and_host);
    LIB_TEST(suite, test_token_continues_the_trace_on_another_thread);
    LIB_TEST(suite, test_token_carries_the_sampled_flag);
    LIB_TEST(suite, test_bad_tokens);
    LIB_TEST(suite, test_run_wraps_the_work_in_a_span);
    LIB_TEST(suite, test_run_closes_what_the_work_left_open);
    LIB_TEST(suite, test_clear_finishes_every_open_span_innermost_first);
}
