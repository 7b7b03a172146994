/* A JSON POST client for the shipper, over libcurl.  One easy handle per
 * endpoint, reused, so the connection to the collector stays alive between
 * batches.  Call curl_global_init once in the process before creating one
 * (the shipper does, after the fork).
 *
 * A POST can run in the background (start, then poll) so that the shipper
 * keeps draining the span queue while a slow or silent collector holds it.
 * Endpoints made in one agent progress together, and one wait covers them
 * all. */
#ifndef TG_HTTP_H
#define TG_HTTP_H

#include <apr_errno.h>
#include <stddef.h>

typedef struct tg_http_agent_t tg_http_agent_t;
typedef struct tg_http_t tg_http_t;

/* NULL when libcurl cannot make one.  Destroy its endpoints first. */
tg_http_agent_t *tg_http_agent_create(void);
void tg_http_agent_destroy(tg_http_agent_t *agent);

/* Waits at most timeout_ms for any POST of the agent's to make progress
 * (the whole time when none is under way). */
void tg_http_agent_wait(tg_http_agent_t *agent, long timeout_ms);

/* An endpoint of `agent`; NULL when libcurl cannot make a handle.
 * Timeouts bound each POST. */
tg_http_t *tg_http_create(tg_http_agent_t *agent, const char *url, long connect_timeout_ms,
                          long request_timeout_ms);
/* Abandons a POST under way. */
void tg_http_destroy(tg_http_t *http);

/* Starts POSTing body as application/json with `b3: 0` (so that the
 * collector's side does not trace our export), in the background.  It ends
 * within timeout_ms (the request timeout when timeout_ms is 0 or more than
 * that).  body must stay unchanged until the POST is over.  APR_EBUSY when
 * one is already under way. */
apr_status_t tg_http_post_start(tg_http_t *http, const char *body, size_t len, long timeout_ms);

/* Moves the agent's POSTs on without blocking.  APR_INCOMPLETE while this
 * one is under way (APR_EINVAL when none was started).  Once it is over,
 * APR_SUCCESS when the server answered 2xx; otherwise an error, *status
 * holding the HTTP status (0 when none came back) and `error` (when not
 * NULL, at least CURL_ERROR_SIZE bytes) the reason: APR_ECONNREFUSED,
 * APR_TIMEUP, APR_EHOSTUNREACH or APR_EGENERAL. */
apr_status_t tg_http_post_poll(tg_http_t *http, long *status, char *error);

/* Abandons the POST under way, if any (its connection is closed). */
void tg_http_post_cancel(tg_http_t *http);

#endif
