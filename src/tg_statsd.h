/* statsd lines for a span, as the seed translates one: the span's length as
 * a timer and each of its notes as a counter. */
#ifndef TG_STATSD_H
#define TG_STATSD_H

#include "tg_buf.h"
#include "tg_span.h"

/* Appends a metric-name component: characters that statsd or Graphite would
 * split or misread (':', '|', '@', '.', '/', whitespace, control bytes...)
 * become '_', and runs of them collapse.  Never empty: "_" at worst. */
void tg_statsd_append_name_part(tg_buf_t *out, const char *part);

/* Appends the span's lines, each ending in '\n':
 *   <service>.<span name>:<duration ms>|ms
 *   <service>.<span name>.<note>:1|c      (one per note: its text up to the
 *                                          first ':' or '/', 64 bytes at most) */
void tg_statsd_append_span(tg_buf_t *out, const tg_span_t *span);

#endif
