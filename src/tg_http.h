/* A JSON POST client for the shipper, over libcurl.  One easy handle per
 * endpoint, reused, so the connection to the collector stays alive between
 * batches.  Call curl_global_init once in the process before creating one
 * (the shipper does, after the fork). */
#ifndef TG_HTTP_H
#define TG_HTTP_H

#include <apr_errno.h>
#include <stddef.h>

typedef struct tg_http_t tg_http_t;

/* NULL when libcurl cannot make a handle.  Timeouts bound each POST. */
tg_http_t *tg_http_create(const char *url, long connect_timeout_ms, long request_timeout_ms);
void tg_http_destroy(tg_http_t *http);

/* POSTs body as application/json with `b3: 0` so the collector's side does
 * not trace our export.  APR_SUCCESS when the server answered 2xx; otherwise
 * an error, *status holding the HTTP status (0 when none came back) and
 * `error` (when not NULL, at least CURL_ERROR_SIZE bytes) the reason. */
apr_status_t tg_http_post_json(tg_http_t *http, const char *body, size_t len,
                               long *status, char *error);

#endif
