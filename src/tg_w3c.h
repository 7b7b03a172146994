/* W3C Trace Context: the traceparent header. */
#ifndef TG_W3C_H
#define TG_W3C_H

#include <apr_errno.h>

#include "tg_context.h"

#define TG_TRACEPARENT_LEN 55

/* APR_SUCCESS fills *out (sampling from flag 0x01, w3c_flags as received);
 * APR_EINVAL for anything the spec says to reject, leaving *out untouched;
 * APR_NOTFOUND for NULL. */
apr_status_t tg_w3c_parse_traceparent(const char *value, tg_context_t *out);

/* Version 00 for ctx: its span_id as parent-id, the sampled bit from
 * ctx->sampling and the random bit carried on from ctx->w3c_flags. */
void tg_w3c_format_traceparent(const tg_context_t *ctx, char out[TG_TRACEPARENT_LEN + 1]);

#endif
