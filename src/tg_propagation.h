/* Which incoming headers a trace is continued from, and which headers carry
 * it on.  Works on any header store through two callbacks, so the module
 * passes apr_table_t accessors and tests pass plain arrays.
 *
 * Formats, as TomographExtract and TomographPropagate name them:
 *   tracecontext  traceparent (+ tracestate)   W3C Trace Context
 *   b3            b3                           B3 single header; when
 *                                              extracting, the X-B3-*
 *                                              headers after it
 *   b3multi       X-B3-TraceId, -SpanId, -ParentSpanId, -Sampled, -Flags
 *   x-trace-info  X-Trace-Info + X-Trace-HMAC  osprofiler */
#ifndef TG_PROPAGATION_H
#define TG_PROPAGATION_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "tg_context.h"

typedef const char *tg_header_get_fn(void *store, const char *name);
/* value NULL removes the header.  The store may keep name and value as
 * given: tg_inject_formats passes names that are literals and values in its
 * pool. */
typedef void tg_header_set_fn(void *store, const char *name, const char *value);

/* The two callbacks for a store that is an apr_table_t, as httpd's
 * headers_in is (names matched without regard to case).  The table keeps
 * name and value as given, not copies (apr_table_setn): from
 * tg_inject_formats, a table that does not outlive its pool. */
const char *tg_header_table_get(void *table, const char *name);
void tg_header_table_set(void *table, const char *name, const char *value);


/* TomographPropagate's default, and every format we speak. */
#define TG_FORMATS_PROPAGATE_DEFAULT                                                   \
    (TG_FORMAT_BIT(TG_FORMAT_TRACECONTEXT) | TG_FORMAT_BIT(TG_FORMAT_B3)                \
     | TG_FORMAT_BIT(TG_FORMAT_X_TRACE_INFO))
#define TG_FORMATS_ALL (TG_FORMATS_PROPAGATE_DEFAULT | TG_FORMAT_BIT(TG_FORMAT_B3_MULTI))

/* One word of TomographExtract or TomographPropagate, in any case:
 * APR_SUCCESS and *out, or APR_EINVAL for a word that names no format. */
apr_status_t tg_format_parse(const char *word, tg_format_t *out);

/* The word tg_format_parse reads for format ("none" for TG_FORMAT_NONE). */
const char *tg_format_name(tg_format_t format);

/* Reads the formats in `order` (TG_FORMAT_NONE-terminated; NULL for the
 * default: tracecontext, b3, x-trace-info) and continues the first that
 * carries a valid context; a format named twice is read once.  `b3` reads
 * the single header, then the X-B3-* headers (the single header wins, and a
 * bare `b3: 0|1|d` decision overrides X-B3-Sampled/Flags); `b3multi` reads
 * the X-B3-* headers only.  X-Trace-Info is checked against hmac_keys (an
 * array of const char *) when it is non-empty.
 *
 * APR_SUCCESS fills *out from the first valid context; out->agreeing is the
 * set of formats that carried the same trace and span id (its own format
 * included), so a caller that sends several formats counts once; formats
 * that disagree lose to the first.  tracestate is read only when traceparent
 * is valid and is the context continued or agrees with it (out->w3c_flags
 * then come from traceparent too); a malformed tracestate is dropped whole.
 *
 * APR_NOTFOUND when no usable context arrived (malformed and unsigned ones
 * are skipped; a caller starts a new trace).  *out then has zero ids and
 * format NONE, and its sampling/debug carry the first bare decision that
 * came without ids (`b3: 0`, or X-B3-Sampled/X-B3-Flags alone), else
 * TG_SAMPLING_DEFER: an exporter sends `b3: 0` so that its own requests are
 * not traced. */
apr_status_t tg_extract_in_order(tg_header_get_fn *get, void *store, const tg_format_t *order,
                                 const apr_array_header_t *hmac_keys, apr_pool_t *pool,
                                 tg_context_t *out);

/* Sets the headers of each format in `formats` (a set of TG_FORMAT_BIT) to
 * carry ctx, and removes those of the other formats, so that stale headers
 * of the caller never go further and whoever reads the store sees one
 * consistent parent.  traceparent goes with ctx->tracestate when it is not
 * NULL (else tracestate is removed).  An unsampled context (DENY, not
 * debug) still goes on, saying so: traceparent flags 00, `b3: …-0`,
 * X-B3-Sampled: 0; but without X-Trace-Info, as osprofiler has no sampled
 * flag and takes the header itself to mean "profile this" (so it is sent
 * only for ACCEPT or debug).  X-Trace-HMAC signs it with hmac_key when not
 * NULL. */
void tg_inject_formats(tg_header_set_fn *set, void *store, const tg_context_t *ctx,
                       tg_format_set_t formats, const char *hmac_key, apr_pool_t *pool);

/* tg_inject_formats into an apr_table_t with tg_header_table_set; or, when
 * the table holds no header of any format (the usual request), by adding
 * the headers sent, which is the same and need not look for any to
 * replace or remove. */
void tg_inject_into_table(apr_table_t *headers, const tg_context_t *ctx, tg_format_set_t formats,
                          const char *hmac_key, apr_pool_t *pool);

#endif
