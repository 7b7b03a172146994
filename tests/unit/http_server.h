/* A tiny HTTP/1.1 server on a loopback port, running in a thread of the
 * test, standing in for a Zipkin or OTLP collector.  It records the first
 * TG_TEST_HTTP_MAX_REQUESTS requests it reads (and counts them all) and
 * answers according to its mode, which the test may change at any time.  It
 * stops (thread joined, memory freed) when the pool it was started with is
 * cleared. */
#ifndef TG_TEST_HTTP_SERVER_H
#define TG_TEST_HTTP_SERVER_H

#include <apr_pools.h>
#include <stddef.h>

#define TG_TEST_HTTP_MAX_REQUESTS 1024

typedef enum {
    TG_TEST_HTTP_ACCEPT,   /* 202, Content-Length: 0, connection kept alive */
    TG_TEST_HTTP_FAIL,     /* 500 with a short body, connection kept alive */
    TG_TEST_HTTP_REJECT,   /* 400 with a short body, connection kept alive */
    TG_TEST_HTTP_THROTTLE, /* 429 with a short body, connection kept alive */
    TG_TEST_HTTP_REDIRECT, /* 301 to another path, connection kept alive */
    TG_TEST_HTTP_SILENT    /* reads requests and never answers */
} tg_test_http_mode_t;

typedef struct {
    char *request_line; /* "POST /api/v2/spans HTTP/1.1" */
    char *head;         /* the header lines, each ending in "\r\n" */
    char *body;         /* NUL-terminated copy of the body */
    size_t body_len;
} tg_test_http_request_t;

typedef struct tg_test_http_server_t tg_test_http_server_t;

/* NULL when the socket or the thread cannot be made. */
tg_test_http_server_t *tg_test_http_start(apr_pool_t *pool, tg_test_http_mode_t mode);

/* The same on the port of `url` (one of tg_test_http_closed_url's, say: a
 * collector that comes back); NULL when that port is taken. */
tg_test_http_server_t *tg_test_http_start_at(apr_pool_t *pool, tg_test_http_mode_t mode,
                                             const char *url);

/* Applies to the requests read from now on. */
void tg_test_http_set_mode(tg_test_http_server_t *server, tg_test_http_mode_t mode);

/* "http://127.0.0.1:<port>/api/v2/spans" */
const char *tg_test_http_url(const tg_test_http_server_t *server);

int tg_test_http_accepts(const tg_test_http_server_t *server);
int tg_test_http_request_count(const tg_test_http_server_t *server);

/* Requests are recorded before they are answered, so a client that has its
 * answer can read its request here. */
const tg_test_http_request_t *tg_test_http_request(const tg_test_http_server_t *server, int i);

/* The value of the first header called `name` (any case), copied into pool;
 * NULL when absent. */
const char *tg_test_http_header(const tg_test_http_request_t *request, const char *name,
                                apr_pool_t *pool);

/* A URL on a loopback port that nothing listens on. */
const char *tg_test_http_closed_url(apr_pool_t *pool);

#endif
