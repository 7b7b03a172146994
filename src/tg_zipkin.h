/* Zipkin v2 JSON (zipkin2-api.yaml, definitions/Span). */
#ifndef TG_ZIPKIN_H
#define TG_ZIPKIN_H

#include "tg_buf.h"
#include "tg_span.h"

/* Appends one span as a JSON object (no trailing newline). */
void tg_zipkin_append_span(tg_buf_t *out, const tg_span_t *span);

/* Appends a JSON array of n spans: the body of POST /api/v2/spans. */
void tg_zipkin_append_list(tg_buf_t *out, const tg_span_t *const *spans, int n);

#endif
