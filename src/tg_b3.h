/* B3 propagation (openzipkin/b3-propagation): the single `b3` header and the
 * X-B3-* multi headers. */
#ifndef TG_B3_H
#define TG_B3_H

#include <apr_errno.h>

#include "tg_context.h"

/* `b3: {trace}-{span}[-{sampling}[-{parent}]]` or `b3: {sampling}` alone,
 * sampling being 1, 0 or d.  Buffers hold the longest form and a NUL. */
#define TG_B3_SINGLE_MAX (32 + 1 + 16 + 1 + 1 + 1 + 16)

/* Parses the single header.  APR_SUCCESS fills *out with a context that has
 * ids; a bare sampling value ("0", "1", "d") gives APR_INCOMPLETE with only
 * sampling/debug filled; anything malformed gives APR_EINVAL and leaves *out
 * untouched.  NULL gives APR_NOTFOUND. */
apr_status_t tg_b3_parse_single(const char *value, tg_context_t *out);

/* Parses the multi headers (any may be NULL when absent), with the same
 * results as tg_b3_parse_single. */
apr_status_t tg_b3_parse_multi(const char *trace_id, const char *span_id,
                               const char *parent_span_id, const char *sampled,
                               const char *flags, tg_context_t *out);

/* Writes the single header for ctx (span_id being the span sent on). */
void tg_b3_format_single(const tg_context_t *ctx, char out[TG_B3_SINGLE_MAX + 1]);

/* Values of the multi headers for ctx; parent_span_id is "" when there is
 * no parent, sampled is "" when debug (X-B3-Flags: 1 then says it all). */
typedef struct {
    char trace_id[33];
    char span_id[17];
    char parent_span_id[17];
    char sampled[2];
    char flags[2];
} tg_b3_multi_t;

void tg_b3_format_multi(const tg_context_t *ctx, tg_b3_multi_t *out);

#endif
