#include "tg_http.h"

#include <apr_strings.h>
#include <curl/curl.h>
#include <stdlib.h>

struct tg_http_t {
    CURL *curl;
    struct curl_slist *headers;
    char error[CURL_ERROR_SIZE];
};

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

static int configure(tg_http_t *http, const char *url, long connect_timeout_ms,
                     long request_timeout_ms)
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
        && curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body) == CURLE_OK
        && curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms) == CURLE_OK
        && curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, request_timeout_ms) == CURLE_OK
        /* Timeouts by alarm() would disturb the daemon's signal handling. */
        && curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK
        /* httpd's environment is not meant for us: never pick up http_proxy. */
        && curl_easy_setopt(c, CURLOPT_NOPROXY, "*") == CURLE_OK
        && curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK;
}

tg_http_t *tg_http_create(const char *url, long connect_timeout_ms, long request_timeout_ms)
{
    tg_http_t *http = calloc(1, sizeof(*http));
    if (!http)
        return NULL;
    http->curl = curl_easy_init();
    http->headers = json_headers();
    if (!http->curl || !http->headers
        || !configure(http, url, connect_timeout_ms, request_timeout_ms)) {
        tg_http_destroy(http);
        return NULL;
    }
    return http;
}

void tg_http_destroy(tg_http_t *http)
{
    if (!http)
        return;
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

apr_status_t tg_http_post_json(tg_http_t *http, const char *body, size_t len,
                               long *status, char *error)
{
    CURLcode code;
    long answer = 0;
    http->error[0] = '\0';
    curl_easy_setopt(http->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(http->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    code = curl_easy_perform(http->curl);
    curl_easy_getinfo(http->curl, CURLINFO_RESPONSE_CODE, &answer);
    *status = answer;
    if (code != CURLE_OK) {
        if (error)
            apr_cpystrn(error, http->error[0] ? http->error : curl_easy_strerror(code),
                        CURL_ERROR_SIZE);
        return status_of(code);
    }
    if (answer < 200 || answer > 299) {
        if (error)
            apr_snprintf(error, CURL_ERROR_SIZE, "HTTP status %ld", answer);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}
