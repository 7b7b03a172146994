#include "unit.h"

#include <apr_strings.h>
#include <apr_time.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "tg_http.h"

#define CONNECT_MS 1000L
#define REQUEST_MS 300L

static const char span_list[] = "[{\"traceId\":\"463ac35c9f6413ad\",\"id\":\"a2fb4a1d1a96d312\"}]";

static apr_status_t destroy_client(void *http)
{
    tg_http_destroy(http);
    return APR_SUCCESS;
}

static apr_status_t destroy_agent(void *agent)
{
    tg_http_agent_destroy(agent);
    return APR_SUCCESS;
}

/* An agent destroyed with the test pool, after the clients made in it
 * (cleanups run last registered, first run). */
static tg_http_agent_t *agent_for_test(void)
{
    tg_http_agent_t *agent = tg_http_agent_create();
    CU_ASSERT_PTR_NOT_NULL_FATAL(agent);
    apr_pool_cleanup_register(tg_test_pool, agent, destroy_agent, apr_pool_cleanup_null);
    return agent;
}

static tg_http_t *client_in(tg_http_agent_t *agent, const char *url, long request_ms)
{
    tg_http_t *http = tg_http_create(agent, url, CONNECT_MS, request_ms);
    CU_ASSERT_PTR_NOT_NULL_FATAL(http);
    apr_pool_cleanup_register(tg_test_pool, http, destroy_client, apr_pool_cleanup_null);
    return http;
}

/* Polls, waiting on the agent between looks, until the POST ends or
 * `limit` passes; APR_INCOMPLETE then. */
static apr_status_t finish(tg_http_agent_t *agent, tg_http_t *http, apr_interval_time_t limit,
                           long *status, char *error)
{
    apr_time_t until = apr_time_now() + limit;
    apr_status_t rv;
    while ((rv = tg_http_post_poll(http, status, error)) == APR_INCOMPLETE
           && apr_time_now() < until)
        tg_http_agent_wait(agent, 10);
    return rv;
}

/* One client in an agent of its own, and what it POSTs waited for, as the
 * HTTP exporters' POSTs are. */
typedef struct {
    tg_http_agent_t *agent;
    tg_http_t *http;
} client_t;

static client_t client_for(const char *url)
{
    client_t client;
    client.agent = agent_for_test();
    client.http = client_in(client.agent, url, REQUEST_MS);
    return client;
}

static apr_status_t post_len(client_t client, const char *body, size_t len, long *status,
                             char *error)
{
    CU_ASSERT_EQUAL_FATAL(tg_http_post_start(client.http, body, len, 0), APR_SUCCESS);
    return finish(client.agent, client.http, apr_time_from_sec(5), status, error);
}

static apr_status_t post(client_t client, const char *body, long *status, char *error)
{
    return post_len(client, body, strlen(body), status, error);
}

static tg_test_http_server_t *server_in(tg_test_http_mode_t mode)
{
    tg_test_http_server_t *server = tg_test_http_start(tg_test_pool, mode);
    CU_ASSERT_PTR_NOT_NULL_FATAL(server);
    return server;
}

static void test_post_sends_json_body_and_b3_zero(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_ACCEPT);
    client_t client = client_for(tg_test_http_url(server));
    const tg_test_http_request_t *request;
    char error[CURL_ERROR_SIZE];
    long status = -1;

    CU_ASSERT_EQUAL(post(client, span_list, &status, error), APR_SUCCESS);
    CU_ASSERT_EQUAL(status, 202);
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), 1);
    request = tg_test_http_request(server, 0);
    CU_ASSERT_STRING_EQUAL(request->request_line, "POST /api/v2/spans HTTP/1.1");
    CU_ASSERT_EQUAL(request->body_len, strlen(span_list));
    CU_ASSERT_STRING_EQUAL(request->body, span_list);
    CU_ASSERT_STRING_EQUAL(tg_test_http_header(request, "content-type", tg_test_pool),
                           "application/json");
    CU_ASSERT_STRING_EQUAL(tg_test_http_header(request, "B3", tg_test_pool), "0");
}

static void test_post_sends_exactly_len_bytes(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_ACCEPT);
    client_t client = client_for(tg_test_http_url(server));
    long status;

    /* The body need not be NUL-terminated where the caller says it ends. */
    CU_ASSERT_EQUAL(post_len(client, "[]trailing garbage", 2, &status, NULL), APR_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), 1);
    CU_ASSERT_STRING_EQUAL(tg_test_http_request(server, 0)->body, "[]");
}

static void test_two_posts_share_one_connection(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_ACCEPT);
    client_t client = client_for(tg_test_http_url(server));
    long status;

    CU_ASSERT_EQUAL(post(client, "[]", &status, NULL), APR_SUCCESS);
    CU_ASSERT_EQUAL(post(client, span_list, &status, NULL), APR_SUCCESS);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 2);
    CU_ASSERT_EQUAL(tg_test_http_accepts(server), 1);
    CU_ASSERT_STRING_EQUAL(tg_test_http_request(server, 1)->body, span_list);
}

static void test_large_batch_goes_without_waiting_for_continue(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_ACCEPT);
    client_t client = client_for(tg_test_http_url(server));
    apr_size_t len = 1500000; /* past curl's threshold for Expect */
    char *body = apr_palloc(tg_test_pool, len + 1);
    apr_time_t start;
    long status;

    memset(body, ' ', len);
    body[0] = '[';
    body[len - 1] = ']';
    body[len] = '\0';
    start = apr_time_now();
    CU_ASSERT_EQUAL(post(client, body, &status, NULL), APR_SUCCESS);
    /* A server that never sends "100 Continue" would otherwise cost curl's
     * one-second wait, well past the request timeout. */
    CU_ASSERT(apr_time_now() - start < apr_time_from_msec(REQUEST_MS));
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), 1);
    CU_ASSERT_PTR_NULL(tg_test_http_header(tg_test_http_request(server, 0), "expect", tg_test_pool));
    CU_ASSERT_EQUAL(tg_test_http_request(server, 0)->body_len, len);
    CU_ASSERT_EQUAL(memcmp(tg_test_http_request(server, 0)->body, body, len), 0);
}

static void test_server_error_reports_status(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_FAIL);
    client_t client = client_for(tg_test_http_url(server));
    char error[CURL_ERROR_SIZE] = "";
    long status = -1;

    CU_ASSERT_NOT_EQUAL(post(client, span_list, &status, error), APR_SUCCESS);
    CU_ASSERT_EQUAL(status, 500);
    CU_ASSERT_PTR_NOT_NULL(strstr(error, "500"));
    /* The error answer left the connection usable. */
    CU_ASSERT_NOT_EQUAL(post(client, span_list, &status, NULL), APR_SUCCESS);
    CU_ASSERT_EQUAL(status, 500);
    CU_ASSERT_EQUAL(tg_test_http_accepts(server), 1);
}

static void test_silent_server_times_out_within_bound(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_SILENT);
    client_t client = client_for(tg_test_http_url(server));
    char error[CURL_ERROR_SIZE] = "";
    long status = -1;
    apr_time_t start = apr_time_now(), took;

    CU_ASSERT_EQUAL(post(client, span_list, &status, error), APR_TIMEUP);
    took = apr_time_now() - start;
    CU_ASSERT(took >= apr_time_from_msec(REQUEST_MS - 20));
    CU_ASSERT(took < apr_time_from_msec(REQUEST_MS + 700));
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_NOT_EQUAL(error[0], '\0');
}

static void test_closed_port_is_refused(void)
{
    const char *url = tg_test_http_closed_url(tg_test_pool);
    client_t client;
    char error[CURL_ERROR_SIZE] = "";
    long status = -1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(url);
    client = client_for(url);
    CU_ASSERT_EQUAL(post(client, span_list, &status, error), APR_ECONNREFUSED);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_NOT_EQUAL(error[0], '\0');
}

static void test_proxy_environment_is_ignored(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_ACCEPT);
    const char *dead_proxy = tg_test_http_closed_url(tg_test_pool);
    client_t client = client_for(tg_test_http_url(server));
    apr_status_t rv;
    long status;

    setenv("http_proxy", dead_proxy, 1);
    setenv("HTTP_PROXY", dead_proxy, 1);
    rv = post(client, "[]", &status, NULL);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    CU_ASSERT_EQUAL(rv, APR_SUCCESS);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 1);
}

static void test_non_http_url_is_refused(void)
{
    client_t client = client_for("file:///etc/hostname");
    char error[CURL_ERROR_SIZE] = "";
    long status = -1;

    CU_ASSERT_NOT_EQUAL(post(client, "[]", &status, error), APR_SUCCESS);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_NOT_EQUAL(error[0], '\0');
}

/* --- POSTs in the background --- */

static void test_background_post_returns_at_once_and_ends_later(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_ACCEPT);
    tg_http_agent_t *agent = agent_for_test();
    tg_http_t *http = client_in(agent, tg_test_http_url(server), REQUEST_MS);
    long status = -1;

    CU_ASSERT_EQUAL(tg_http_post_start(http, span_list, strlen(span_list), 0), APR_SUCCESS);
    CU_ASSERT_EQUAL(finish(agent, http, apr_time_from_sec(2), &status, NULL), APR_SUCCESS);
    CU_ASSERT_EQUAL(status, 202);
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), 1);
    CU_ASSERT_STRING_EQUAL(tg_test_http_request(server, 0)->body, span_list);
    CU_ASSERT_STRING_EQUAL(tg_test_http_header(tg_test_http_request(server, 0), "b3",
                                               tg_test_pool),
                           "0");
    /* Reported once: there is nothing more to poll. */
    CU_ASSERT_EQUAL(tg_http_post_poll(http, &status, NULL), APR_EINVAL);
}

static void test_background_posts_keep_the_connection(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_ACCEPT);
    tg_http_agent_t *agent = agent_for_test();
    tg_http_t *http = client_in(agent, tg_test_http_url(server), REQUEST_MS);
    long status;
    int i;

    for (i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(tg_http_post_start(http, "[]", 2, 0), APR_SUCCESS);
        CU_ASSERT_EQUAL(finish(agent, http, apr_time_from_sec(2), &status, NULL), APR_SUCCESS);
    }
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 3);
    CU_ASSERT_EQUAL(tg_test_http_accepts(server), 1);
}

static void test_second_start_while_busy_is_refused(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_SILENT);
    tg_http_agent_t *agent = agent_for_test();
    tg_http_t *http = client_in(agent, tg_test_http_url(server), REQUEST_MS);
    long status;

    CU_ASSERT_EQUAL(tg_http_post_poll(http, &status, NULL), APR_EINVAL);
    CU_ASSERT_EQUAL(tg_http_post_start(http, "[]", 2, 0), APR_SUCCESS);
    CU_ASSERT_EQUAL(tg_http_post_start(http, "[1]", 3, 0), APR_EBUSY);
    CU_ASSERT_EQUAL(tg_http_post_poll(http, &status, NULL), APR_INCOMPLETE);
}

static void test_silent_server_holds_only_its_own_post(void)
{
    tg_test_http_server_t *silent = server_in(TG_TEST_HTTP_SILENT);
    tg_test_http_server_t *answering = server_in(TG_TEST_HTTP_ACCEPT);
    tg_http_agent_t *agent = agent_for_test();
    tg_http_t *stuck = client_in(agent, tg_test_http_url(silent), 5000);
    tg_http_t *quick = client_in(agent, tg_test_http_url(answering), 5000);
    apr_time_t start = apr_time_now();
    long status;

    CU_ASSERT_EQUAL(tg_http_post_start(stuck, span_list, strlen(span_list), 0), APR_SUCCESS);
    CU_ASSERT_EQUAL(tg_http_post_start(quick, span_list, strlen(span_list), 0), APR_SUCCESS);
    CU_ASSERT_EQUAL(finish(agent, quick, apr_time_from_sec(2), &status, NULL), APR_SUCCESS);
    CU_ASSERT(apr_time_now() - start < apr_time_from_sec(1));
    CU_ASSERT_EQUAL(tg_http_post_poll(stuck, &status, NULL), APR_INCOMPLETE);
}

static void test_start_timeout_shortens_the_request_timeout(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_SILENT);
    tg_http_agent_t *agent = agent_for_test();
    tg_http_t *http = client_in(agent, tg_test_http_url(server), 5000);
    char error[CURL_ERROR_SIZE] = "";
    apr_time_t start = apr_time_now(), took;
    long status = -1;

    CU_ASSERT_EQUAL(tg_http_post_start(http, "[]", 2, 200), APR_SUCCESS);
    CU_ASSERT_EQUAL(finish(agent, http, apr_time_from_sec(3), &status, error), APR_TIMEUP);
    took = apr_time_now() - start;
    CU_ASSERT(took >= apr_time_from_msec(180));
    CU_ASSERT(took < apr_time_from_msec(900));
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_NOT_EQUAL(error[0], '\0');
}

static void test_start_timeout_longer_than_request_timeout_is_cut(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_SILENT);
    tg_http_agent_t *agent = agent_for_test();
    tg_http_t *http = client_in(agent, tg_test_http_url(server), REQUEST_MS);
    apr_time_t start = apr_time_now();
    long status;

    CU_ASSERT_EQUAL(tg_http_post_start(http, "[]", 2, 60000), APR_SUCCESS);
    CU_ASSERT_EQUAL(finish(agent, http, apr_time_from_sec(3), &status, NULL), APR_TIMEUP);
    CU_ASSERT(apr_time_now() - start < apr_time_from_msec(REQUEST_MS + 700));
}

static void test_cancel_frees_the_client_for_the_next_post(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_SILENT);
    tg_http_agent_t *agent = agent_for_test();
    tg_http_t *http = client_in(agent, tg_test_http_url(server), 5000);
    apr_time_t start;
    long status;

    CU_ASSERT_EQUAL(tg_http_post_start(http, "[]", 2, 0), APR_SUCCESS);
    tg_http_post_cancel(http);
    CU_ASSERT_EQUAL(tg_http_post_poll(http, &status, NULL), APR_EINVAL);
    /* The abandoned connection, its answer never read, is closed rather
     * than reused: the next POST opens another. */
    tg_test_http_set_mode(server, TG_TEST_HTTP_ACCEPT);
    start = apr_time_now();
    CU_ASSERT_EQUAL(tg_http_post_start(http, span_list, strlen(span_list), 0), APR_SUCCESS);
    CU_ASSERT_EQUAL(finish(agent, http, apr_time_from_sec(3), &status, NULL), APR_SUCCESS);
    CU_ASSERT(apr_time_now() - start < apr_time_from_sec(2));
    CU_ASSERT_EQUAL(tg_test_http_accepts(server), 2);
}

static void test_background_refusal_and_rejection(void)
{
    const char *closed = tg_test_http_closed_url(tg_test_pool);
    tg_test_http_server_t *rejecting = server_in(TG_TEST_HTTP_REJECT);
    tg_http_agent_t *agent = agent_for_test();
    tg_http_t *refused, *rejected;
    char error[CURL_ERROR_SIZE] = "";
    long status = -1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(closed);
    refused = client_in(agent, closed, REQUEST_MS);
    rejected = client_in(agent, tg_test_http_url(rejecting), REQUEST_MS);
    CU_ASSERT_EQUAL(tg_http_post_start(refused, "[]", 2, 0), APR_SUCCESS);
    CU_ASSERT_EQUAL(finish(agent, refused, apr_time_from_sec(2), &status, error), APR_ECONNREFUSED);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_EQUAL(tg_http_post_start(rejected, "[]", 2, 0), APR_SUCCESS);
    CU_ASSERT_EQUAL(finish(agent, rejected, apr_time_from_sec(2), &status, error), APR_EGENERAL);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(error, "400"));
}

static void test_idle_agent_wait_sleeps(void)
{
    tg_http_agent_t *agent = agent_for_test();
    apr_time_t start = apr_time_now(), took;
    tg_http_agent_wait(agent, 50);
    took = apr_time_now() - start;
    CU_ASSERT(took >= apr_time_from_msec(45));
    CU_ASSERT(took < apr_time_from_msec(500));
}

static void test_destroy_during_a_post(void)
{
    tg_test_http_server_t *server = server_in(TG_TEST_HTTP_SILENT);
    tg_http_agent_t *agent = agent_for_test();
    tg_http_t *http = tg_http_create(agent, tg_test_http_url(server), CONNECT_MS, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(http);
    CU_ASSERT_EQUAL(tg_http_post_start(http, "[]", 2, 0), APR_SUCCESS);
    /* Under valgrind: no leak, no use of the freed handle by the agent. */
    tg_http_destroy(http);
    tg_http_agent_wait(agent, 10);
}

void tg_test_add_http(void)
{
    CU_pSuite suite = TG_SUITE("http");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    TG_TEST(suite, test_post_sends_json_body_and_b3_zero);
    TG_TEST(suite, test_post_sends_exactly_len_bytes);
    TG_TEST(suite, test_two_posts_share_one_connection);
    TG_TEST(suite, test_large_batch_goes_without_waiting_for_continue);
    TG_TEST(suite, test_server_error_reports_status);
    TG_TEST(suite, test_silent_server_times_out_within_bound);
    TG_TEST(suite, test_closed_port_is_refused);
    TG_TEST(suite, test_proxy_environment_is_ignored);
    TG_TEST(suite, test_non_http_url_is_refused);
    TG_TEST(suite, test_background_post_returns_at_once_and_ends_later);
    TG_TEST(suite, test_background_posts_keep_the_connection);
    TG_TEST(suite, test_second_start_while_busy_is_refused);
    TG_TEST(suite, test_silent_server_holds_only_its_own_post);
    TG_TEST(suite, test_start_timeout_shortens_the_request_timeout);
    TG_TEST(suite, test_start_timeout_longer_than_request_timeout_is_cut);
    TG_TEST(suite, test_cancel_frees_the_client_for_the_next_post);
    TG_TEST(suite, test_background_refusal_and_rejection);
    TG_TEST(suite, test_idle_agent_wait_sleeps);
    TG_TEST(suite, test_destroy_during_a_post);
}
