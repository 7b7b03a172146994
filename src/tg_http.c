#include "tg_http.h"

#include <apr_strings.h>
#include <curl/curl.h>
#include <stdlib.h>

struct tg_http_agent_t {
    CURLM *multi;
};

struct tg_http_t {
    tg_http_agent_t *agent;
    CURL *curl;
    struct curl_slist *headers;
    long request_timeout_ms;
    int busy;         /* a POST was started and its end not yet reported */
    int done;         /* it ended, with `result` */
    CURLcode result;
    char error[CURL_ERROR_SIZE];
};

tg_http_agent_t *tg_http_agent_create(void)
{
    tg_http_agent_t *agent = calloc(1, sizeof(*agent));
    CURLM *multi = curl_multi_init();
    if (!agent || !multi) {
        free(agent);
        curl_multi_cleanup(multi); /* none: a harmless error */
        return NULL;
    }
    agent->multi = multi;
    return agent;
}

void tg_http_agent_destroy(tg_http_agent_t *agent)
{
    if (!agent)
        return;
    curl_multi_cleanup(agent->multi);
    free(agent);
}

void tg_http_agent_wait(tg_http_agent_t *agent, long timeout_ms)
{
    /* curl_multi_poll, unlike curl_multi_wait, sleeps even with no socket
     * to watch, so an idle agent is a plain sleep. */
    curl_multi_poll(agent->multi, NULL, 0, timeout_ms > 0 ? (int)timeout_ms : 0, NULL);
}

/* Moves every POST of the agent on, and marks those that ended. */
static void agent_perform(tg_http_agent_t *agent)
{
    CURLMsg *msg;
    int running, left;
    curl_multi_perform(agent->multi, &running);
    while ((msg = curl_multi_info_read(agent->multi, &left))) {
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        tg_http_t *http = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg dies with the removal: everything is read from it first. */
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&http);
        curl_multi_remove_handle(agent->multi, easy);
        if (http) {
            http->result = result;
            http->done = 1;
        }
    }
}

/* The collector's answer is of no use to us; reading it keeps the
 * connection reusable. */
static size_t discard_body(char *data, size_t size, size_t nmemb, void *unused)
{
    return size * nmemb;
}

static struct curl_slist *json_headers(void)
{
    /* An empty Expect: stops curl from waiting for "100 Continue" before
     * sending a large batch, which costs a round trip or, with a server that
     * never sends one, a whole second. */
    static const char *const lines[] = {"Content-Type: application/json", "b3: 0", "Expect:"};
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct curl_slist *longer = curl_slist_append(list, lines[i]);
        if (!longer) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = longer;
    }
    return list;
}

/* libcurl's largest (CURL_MAX_READ_SIZE). */
#define UPLOAD_BUFFER_BYTES (512L * 1024)

static int configure(tg_http_t *http, const char *url, long connect_timeout_ms)
{
    CURL *c = http->curl;
    /* The URL is the administrator's, but nothing but HTTP makes sense here:
     * refuse file:// and friends outright. */
#if LIBCURL_VERSION_NUM >= 0x075500
    if (curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
        return 0;
#else
    if (curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK)
        return 0;
#endif
    return curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK
        && curl_easy_setopt(c, CURLOPT_HTTPHEADER, http->headers) == CURLE_OK
        && curl_easy_setopt(c, CURLOPT_ERRORBUFFER, http->error) == CURLE_OK
        && curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)http) == CURLE_OK
        && curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body) == CURLE_OK
        && curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms) == CURLE_OK
        /* Timeouts by alarm() would disturb the daemon's signal handling. */
        && curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK
        /* httpd's environment is not meant for us: never pick up http_proxy. */
        && curl_easy_setopt(c, CURLOPT_NOPROXY, "*") == CURLE_OK
        /* A batch's body is a few hundred KB: sent from libcurl's upload
         * buffer in as few writes (and waits to write) as it allows. */
        && curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUFFER_BYTES) == CURLE_OK
        && curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK;
}

tg_http_t *tg_http_create(tg_http_agent_t *agent, const char *url, long connect_timeout_ms,
                          long request_timeout_ms)
{
    tg_http_t *http = calloc(1, sizeof(*http));
    if (!http)
        return NULL;
    http->agent = agent;
    http->request_timeout_ms = request_timeout_ms;
    http->curl = curl_easy_init();
    http->headers = json_headers();
    if (!http->curl || !http->headers
        || !configure(http, url, connect_timeout_ms)) {
        tg_http_destroy(http);
        return NULL;
    }
    return http;
}

void tg_http_destroy(tg_http_t *http)
{
    if (!http)
        return;
    tg_http_post_cancel(http);
    if (http->curl)
        curl_easy_cleanup(http->curl);
    curl_slist_free_all(http->headers);
    free(http);
}

static apr_status_t status_of(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_CONNECT:
        return APR_ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return APR_TIMEUP;
    case CURLE_COULDNT_RESOLVE_HOST:
        return APR_EHOSTUNREACH;
    default:
        return APR_EGENERAL;
    }
}

apr_status_t tg_http_post_start(tg_http_t *http, const char *body, size_t len, long timeout_ms)
{
    long limit = timeout_ms > 0 && timeout_ms < http->request_timeout_ms ? timeout_ms
                                                                        : http->request_timeout_ms;
    if (http->busy)
        return APR_EBUSY;
    http->error[0] = '\0';
    if (curl_easy_setopt(http->curl, CURLOPT_POSTFIELDS, body) != CURLE_OK
        || curl_easy_setopt(http->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK
        || curl_easy_setopt(http->curl, CURLOPT_TIMEOUT_MS, limit) != CURLE_OK
        || curl_multi_add_handle(http->agent->multi, http->curl) != CURLM_OK)
        return APR_EGENERAL;
    http->busy = 1;
    http->done = 0;
    /* Off at once: the connection (or its reuse) need not wait for a poll. */
    agent_perform(http->agent);
    return APR_SUCCESS;
}

void tg_http_post_cancel(tg_http_t *http)
{
    if (http->busy && !http->done)
        curl_multi_remove_handle(http->agent->multi, http->curl);
    http->busy = 0;
    http->done = 0;
}

apr_status_t tg_http_post_poll(tg_http_t *http, long *status, char *error)
{
    long answer = 0;
    if (!http->busy)
        return APR_EINVAL;
    if (!http->done)
        agent_perform(http->agent);
    if (!http->done)
        return APR_INCOMPLETE;
    http->busy = 0;
    curl_easy_getinfo(http->curl, CURLINFO_RESPONSE_CODE, &answer);
    *status = answer;
    if (http->result != CURLE_OK) {
        if (error)
            apr_cpystrn(error, http->error[0] ? http->error : curl_easy_strerror(http->result),
                        CURL_ERROR_SIZE);
        return status_of(http->result);
    }
    if (answer < 200 || answer > 299) {
        if (error)
            apr_snprintf(error, CURL_ERROR_SIZE, "HTTP status %ld", answer);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}
