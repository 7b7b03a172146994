/* W3C Trace Context: the traceparent and tracestate headers. */
#ifndef TG_W3C_H
#define TG_W3C_H

#include <apr_errno.h>
#include <apr_pools.h>

#include "tg_context.h"

#define TG_TRACEPARENT_LEN 55

/* tracestate bounds: the list may have this many members; what we send on
 * is cut to TG_TRACESTATE_MAX_LEN characters (the spec asks that at least
 * that much be propagated) by dropping whole members, first those longer
 * than TG_TRACESTATE_LONG_MEMBER, then from the end. */
#define TG_TRACESTATE_MAX_MEMBERS 32
#define TG_TRACESTATE_MAX_LEN 512
#define TG_TRACESTATE_LONG_MEMBER 128

/* APR_SUCCESS fills *out (sampling from flag 0x01, w3c_flags as received,
 * tracestate NULL); spaces and tabs around the value are optional
 * whitespace and ignored.  APR_EINVAL for anything the spec says to reject,
 * leaving *out untouched; APR_NOTFOUND for NULL. */
apr_status_t tg_w3c_parse_traceparent(const char *value, tg_context_t *out);

/* Version 00 for ctx: its span_id as parent-id, the sampled bit from
 * ctx->sampling and the random bit carried on from ctx->w3c_flags. */
void tg_w3c_format_traceparent(const tg_context_t *ctx, char out[TG_TRACEPARENT_LEN + 1]);

/* Parses a tracestate value; several tracestate headers arrive joined with
 * ',' (httpd joins them with ", ").  Empty members and the whitespace around
 * members are ignored, and do not count as members.  APR_SUCCESS sets *out
 * (in pool) to the list to send on: the members in their order, each key
 * once (a later member with a key already seen is discarded, the rest of
 * the list kept), joined with ',', cut as said above; or NULL when no
 * member is left.  APR_EINVAL when any member is malformed or there are
 * more than TG_TRACESTATE_MAX_MEMBERS members: a list we cannot parse must
 * not be propagated at all.  APR_NOTFOUND for NULL.  *out is untouched
 * unless APR_SUCCESS.
 *
 * Keys: 1 to 256 of a-z 0-9 _ - * / @, the first a letter or a digit (so
 * `foo@`, `foo@@bar` are keys, `@foo` is not).  Values: 1 to 256 printable
 * ASCII characters but ',' and '=', the last not a space. */
apr_status_t tg_w3c_parse_tracestate(const char *value, apr_pool_t *pool, const char **out);

#endif
