/* osprofiler's X-Trace-Info / X-Trace-HMAC pair, as OpenStack services send
 * and check it (osprofiler/web.py, _utils.py signed_pack/signed_unpack).
 *
 * X-Trace-Info is base64url (padded) of JSON {"base_id": UUID, "parent_id":
 * UUID}; X-Trace-HMAC is lowercase hex HMAC-SHA1 of the X-Trace-Info text.
 *
 * Ids: osprofiler's ids are UUIDs, ours are a 128-bit trace id and a 64-bit
 * span id.  base_id <-> trace id: the UUID's 128 bits are the trace id.
 * parent_id -> span id: the UUID's first 64 bits.  Going out, our span id
 * becomes the first 64 bits of parent_id and the trace id's low 64 bits the
 * rest, so a header we send and read back gives the same ids. */
#ifndef TG_OSPROFILER_H
#define TG_OSPROFILER_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "tg_context.h"

/* Parses and verifies.  `keys` is an array of const char * HMAC keys; when it
 * is non-empty the header is accepted only if `hmac` matches one of them.
 * APR_SUCCESS fills *out (sampling ACCEPT: osprofiler only sends when
 * profiling); APR_EACCES for an unsigned or wrongly signed header; APR_EINVAL
 * for a malformed one; APR_NOTFOUND for a NULL info.  *out is untouched
 * unless APR_SUCCESS. */
apr_status_t tg_osprofiler_parse(const char *info, const char *hmac,
                                 const apr_array_header_t *keys, apr_pool_t *pool,
                                 tg_context_t *out);

/* The ids of a span osprofiler made, from the UUIDs of its notifications
 * (base_id, trace_id: the span's own, parent_id), mapped as X-Trace-Info's
 * are, so that the spans a service's osprofiler records and the ones the
 * module records name each other: *parent is the context the span
 * continues (trace id base_id, span id parent_id's first 64 bits, sampling
 * ACCEPT; span id 0 for osprofiler's root, whose parent_id is base_id) and
 * *span_id trace_id's first 64 bits.  APR_EINVAL, and nothing written, when
 * one is not a UUID or an id would be zero. */
apr_status_t tg_osprofiler_span_ids(const char *base_id, const char *trace_id,
                                    const char *parent_id, tg_context_t *parent,
                                    uint64_t *span_id);

/* Makes the X-Trace-Info value for ctx and, when key is not NULL, its
 * X-Trace-HMAC (else *hmac is NULL).  Both in pool. */
const char *tg_osprofiler_format(const tg_context_t *ctx, const char *key,
                                 apr_pool_t *pool, const char **hmac);

#endif
