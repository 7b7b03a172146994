/* Which incoming header a trace is continued from, and which headers carry
 * it on.  Works on any header store through two callbacks, so the module
 * passes apr_table_t accessors and tests pass plain arrays. */
#ifndef TG_PROPAGATION_H
#define TG_PROPAGATION_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "tg_context.h"

typedef const char *tg_header_get_fn(void *store, const char *name);
/* value NULL removes the header. */
typedef void tg_header_set_fn(void *store, const char *name, const char *value);

/* Tries traceparent, then b3, then the X-B3-* headers, then X-Trace-Info
 * (checked against hmac_keys, an array of const char *, when non-empty) and
 * takes the first valid one.  APR_SUCCESS fills *out; APR_NOTFOUND when no
 * usable context arrived (malformed and unsigned ones are skipped; a caller
 * starts a new trace).  On APR_NOTFOUND *out has zero ids and format NONE,
 * and its sampling/debug carry a bare decision that came without ids
 * (`b3: 0`, or X-B3-Sampled/X-B3-Flags alone), else TG_SAMPLING_DEFER: an
 * exporter sends `b3: 0` so that its own requests are not traced. */
apr_status_t tg_extract(tg_header_get_fn *get, void *store, const apr_array_header_t *hmac_keys,
                        apr_pool_t *pool, tg_context_t *out);

/* Replaces every trace header in the store with ones that carry ctx:
 * traceparent, b3, X-B3-*, and X-Trace-Info (signed with hmac_key when it is
 * not NULL).  Stale headers of the caller are removed, so whoever reads the
 * store sees one consistent parent. */
void tg_inject(tg_header_set_fn *set, void *store, const tg_context_t *ctx,
               const char *hmac_key, apr_pool_t *pool);

#endif
