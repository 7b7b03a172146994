/* Spans as handles, without the stack: a caller that keeps its own
 * context (the Python binding's contextvars). */
#include <pthread.h>
#include <string.h>

#include "lib_tests.h"

static void test_handles_nest_without_the_stack(void)
{
    tomograph_span_t *request, *query;
    CU_ASSERT_EQUAL(tomograph_span_begin(&request, NULL, NULL, TOMOGRAPH_KIND_SERVER, "API",
                                         "request", "192.0.2.1", 443),
                    TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_span_begin(&query, request, NULL, TOMOGRAPH_KIND_CLIENT, NULL,
                                         "SELECT", NULL, 0),
                    TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_depth(), 0);
    CU_ASSERT_STRING_EQUAL(tomograph_span_name(query), "SELECT");
    CU_ASSERT_EQUAL(tomograph_span_tag(query, "db.statement", "SELECT ?"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_span_annotate(request, "authenticated"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_span_fail(query, NULL), TOMOGRAPH_OK);
    /* Ended out of order: handles have no stack to keep. */
    CU_ASSERT_EQUAL(tomograph_span_end(request), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_span_end(query), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 2);
    CU_ASSERT_EQUAL(shipped(0)->kind, TG_SPAN_SERVER);
    CU_ASSERT_STRING_EQUAL(shipped(0)->local.service_name, "api");
    CU_ASSERT_STRING_EQUAL(shipped(0)->local.ipv4, "192.0.2.1");
    CU_ASSERT_EQUAL(tg_span_note_count(shipped(0)), 3);
    CU_ASSERT_EQUAL(shipped(1)->kind, TG_SPAN_CLIENT);
    CU_ASSERT_STRING_EQUAL(shipped(1)->local.service_name, TEST_SERVICE_LOWERCASE);
    assert_child_of(shipped(1), shipped(0));
    CU_ASSERT(shipped(1)->error);
    CU_ASSERT_PTR_NULL(tg_span_tag_value(shipped(1), "error"));
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(shipped(1), "db.statement"), "SELECT ?");
}

/* A parent wins over a token: the token is for a span with none. */
static void test_parent_or_token(void)
{
    static const char token[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    tomograph_span_t *parent, *child, *continued;
    char written[TOMOGRAPH_TOKEN_SIZE];
    tomograph_span_begin(&parent, NULL, NULL, TOMOGRAPH_KIND_INTERNAL, "s", "parent", NULL, 0);
    tomograph_span_begin(&child, parent, token, TOMOGRAPH_KIND_INTERNAL, "s", "child", NULL, 0);
    tomograph_span_begin(&continued, NULL, token, TOMOGRAPH_KIND_INTERNAL, "s", "continued", NULL,
                         0);
    CU_ASSERT_EQUAL(tomograph_span_token(continued, written, sizeof(written)), TOMOGRAPH_OK);
    CU_ASSERT_NSTRING_EQUAL(written, token, 36);
    CU_ASSERT_STRING_NOT_EQUAL(written, token);
    tomograph_span_end(child);
    tomograph_span_end(continued);
    tomograph_span_end(parent);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 3);
    assert_child_of(shipped(0), shipped(2));
    CU_ASSERT_EQUAL(shipped(1)->parent_id, 0xb7ad6b7169203331ULL);
    CU_ASSERT_EQUAL(shipped(1)->trace_id.lo, 0x8448eb211c80319cULL);
}

static void test_handle_arguments(void)
{
    tomograph_span_t *span = (tomograph_span_t *)&span;
    char token[TOMOGRAPH_TOKEN_SIZE];
    CU_ASSERT_EQUAL(tomograph_span_begin(NULL, NULL, NULL, TOMOGRAPH_KIND_INTERNAL, "s", "n", NULL, 0),
                    TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_span_begin(&span, NULL, NULL, (tomograph_kind_t)3, "s", "n", NULL, 0),
                    TOMOGRAPH_EINVAL);
    CU_ASSERT_PTR_NULL(span);
    CU_ASSERT_EQUAL(tomograph_span_begin(&span, NULL, "00-", TOMOGRAPH_KIND_INTERNAL, "s", "n",
                                         NULL, 0),
                    TOMOGRAPH_EBADTOKEN);
    CU_ASSERT_PTR_NULL(span);
    CU_ASSERT_EQUAL(tomograph_span_begin_server(NULL, "s", "n", table_get, NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_span_begin_server(&span, "s", NULL, table_get, NULL),
                    TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_span_annotate(NULL, "m"), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_span_tag(NULL, "k", "v"), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_span_fail(NULL, "r"), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_span_token(NULL, token, sizeof(token)), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(tomograph_span_inject(NULL, table_set, NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_PTR_NULL(tomograph_span_name(NULL));
    CU_ASSERT_EQUAL(tomograph_span_end(NULL), TOMOGRAPH_EINVAL);
    CU_ASSERT_EQUAL(shipped_count(), 0);
}

static void *end_elsewhere(void *span)
{
    return (void *)(long)tomograph_span_end(span);
}

/* A handle begun on one thread may end on another (a coroutine moved to
 * another thread of a pool). */
static void test_handle_ends_on_another_thread(void)
{
    tomograph_span_t *span;
    pthread_t thread;
    void *status;
    int i;
    for (i = 0; i < 3; i++) {
        tomograph_span_begin(&span, NULL, NULL, TOMOGRAPH_KIND_INTERNAL, "s", "moved", NULL, 0);
        tomograph_span_tag(span, "round", "r");
        CU_ASSERT_FATAL(pthread_create(&thread, NULL, end_elsewhere, span) == 0);
        pthread_join(thread, &status);
        CU_ASSERT_EQUAL((long)status, TOMOGRAPH_OK);
    }
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 3);
    CU_ASSERT_STRING_EQUAL(shipped(2)->name, "moved");
}

static void *exit_with_spans_open(void *unused)
{
    (void)unused;
    tomograph_start("s", "outer", NULL, 0, NULL);
    tomograph_start("s", "inner", NULL, 0, NULL);
    return NULL;
}

/* A thread that exits has left its spans open: they are not lost. */
static void test_thread_exit_finishes_its_open_spans(void)
{
    pthread_t thread;
    CU_ASSERT_FATAL(pthread_create(&thread, NULL, exit_with_spans_open, NULL) == 0);
    pthread_join(thread, NULL);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 2);
    CU_ASSERT_STRING_EQUAL(shipped(0)->name, "inner");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(shipped(1), "error"), "left open");
    assert_child_of(shipped(0), shipped(1));
}

/* osprofiler's spans as the driver bridges them: ids from their UUIDs, a
 * root with none for parent, each recorded even where new traces are not
 * (osprofiler decided), and ids that are no UUID refused. */
static void test_osprofiler_spans_keep_their_ids(void)
{
    static const char base_id[] = "0af76519-16cd-43dd-8448-eb211c80319c";
    static const char wsgi_id[] = "b7ad6b71-6920-3331-8448-eb211c80319c";
    static const char db_id[] = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f";
    tomograph_span_t *wsgi, *db, *refused = (tomograph_span_t *)&refused;
    CU_ASSERT_EQUAL(tomograph_span_begin_osprofiler(&wsgi, TOMOGRAPH_KIND_SERVER, "Keystone",
                                                    "wsgi", "192.0.2.7", base_id, wsgi_id,
                                                    base_id),
                    TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_span_begin_osprofiler(&db, TOMOGRAPH_KIND_CLIENT, "keystone", "db",
                                                    NULL, base_id, db_id, wsgi_id),
                    TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_span_begin_osprofiler(&refused, TOMOGRAPH_KIND_CLIENT, "keystone",
                                                    "db", NULL, base_id, "c1d2e3f4", wsgi_id),
                    TOMOGRAPH_EBADTOKEN);
    CU_ASSERT_PTR_NULL(refused);
    CU_ASSERT_EQUAL(tomograph_span_begin_osprofiler(&refused, TOMOGRAPH_KIND_CLIENT, "keystone",
                                                    NULL, base_id, db_id, wsgi_id, NULL),
                    TOMOGRAPH_EINVAL);
    tomograph_span_end(db);
    tomograph_span_end(wsgi);
    CU_ASSERT_EQUAL_FATAL(shipped_count(), 2);
    CU_ASSERT_EQUAL(shipped(1)->trace_id.hi, 0x0af7651916cd43ddULL);
    CU_ASSERT_EQUAL(shipped(1)->trace_id.lo, 0x8448eb211c80319cULL);
    CU_ASSERT_EQUAL(shipped(1)->id, 0xb7ad6b7169203331ULL);
    CU_ASSERT_EQUAL(shipped(1)->parent_id, 0);
    CU_ASSERT_EQUAL(shipped(1)->kind, TG_SPAN_SERVER);
    CU_ASSERT_STRING_EQUAL(shipped(1)->local.service_name, "keystone");
    CU_ASSERT_STRING_EQUAL(shipped(1)->local.ipv4, "192.0.2.7");
    CU_ASSERT_EQUAL(shipped(0)->id, 0xc1d2e3f4a5b64c7dULL);
    assert_child_of(shipped(0), shipped(1));
}

static void test_every_status_has_a_sentence(void)
{
    int status, other;
    for (status = TOMOGRAPH_OK; status <= TOMOGRAPH_ETIMEDOUT; status++) {
        const char *sentence = tomograph_strerror(status);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sentence);
        CU_ASSERT(strlen(sentence) > 5);
        CU_ASSERT_STRING_NOT_EQUAL(sentence, tomograph_strerror(-1));
        for (other = TOMOGRAPH_OK; other < status; other++)
            CU_ASSERT_STRING_NOT_EQUAL(sentence, tomograph_strerror(other));
    }
    CU_ASSERT_STRING_EQUAL(tomograph_strerror(TOMOGRAPH_ETIMEDOUT + 1), tomograph_strerror(-1));
    CU_ASSERT_PTR_NOT_NULL(strstr(tomograph_strerror(TOMOGRAPH_EWRONGSPAN), "top"));
}

void lib_test_add_handles(void)
{
    CU_pSuite suite = lib_test_suite("handles");
    LIB_TEST(suite, test_handles_nest_without_the_stack);
    LIB_TEST(suite, test_parent_or_token);
    LIB_TEST(suite, test_handle_arguments);
    LIB_TEST(suite, test_handle_ends_on_another_thread);
    LIB_TEST(suite, test_thread_exit_finishes_its_open_spans);
    LIB_TEST(suite, test_osprofiler_spans_keep_their_ids);
    LIB_TEST(suite, test_every_status_has_a_sentence);
}
