/* statsd lines for a span, as the seed translates one: the span's length as
 * a timer and each of its notes as a counter. */
#ifndef TG_STATSD_H
#define TG_STATSD_H

#include "tg_buf.h"
#include "tg_span.h"

/* The most bytes of a service's name, as written, that a memo holds. */
#define TG_STATSD_MEMO_TEXT 32

/* What the spans of a batch written one after the other share, kept from
 * one to the next: the local service's name as written (the spans of a
 * server all have the same).  Zeroed before the first span; it points to
 * the name in the span it was written from, which must outlive it. */
typedef struct {
    const char *service; /* NULL: none yet */
    size_t len;
    char text[TG_STATSD_MEMO_TEXT];
} tg_statsd_memo_t;

/* Appends the span's lines, each ending in '\n', each component of their
 * names (the service's, the span's, a note's) written so that statsd and
 * Graphite read it as one: characters they would split or misread (':',
 * '|', '@', '.', '/', whitespace, control bytes...) become '_', runs of
 * them collapse, and "_" stands for a component with nothing left:
 *   <service>.<span name>:<duration ms>|ms  (the name's ids written "id")
 *   <service>.<span name>.<note>:1|c      (one per note: its text up to the
 *                                          first ':' or '/', 64 bytes at most)
 *   <service>.<span name>.<note>:<ms>|ms  (TG_NOTE_BODY_READ, TG_NOTE_FIRST_BYTE:
 *                                          their time from the span's start)
 * The same lines, whatever the memo holds. */
void tg_statsd_append_span(tg_buf_t *out, const tg_span_t *span, tg_statsd_memo_t *memo);

#endif
