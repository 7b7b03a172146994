/* Where libtomograph's finished spans go (include/tomograph.h, "Where a
 * finished span goes"): decided once per process, at the first span, and
 * anew in a forked child.
 *
 * Both places are a tg_segment_t (src/tg_segment.h) that the span is
 * enqueued on: mod_tomograph's, found through TOMOGRAPH_SEGMENT, which its
 * shipper drains; or, outside httpd, one of the process's own in private
 * memory, drained by a thread of the library that runs the shipper's loop
 * (tg_shipper_run) to the exporters the environment names.  No code of the
 * module's or the shipper's is written again here. */
#ifndef TOMOGRAPH_SINK_H
#define TOMOGRAPH_SINK_H

#include "tg_span.h"

typedef enum {
    TOMOGRAPH_SINK_NONE,    /* nothing configured: spans are dropped, uncounted */
    TOMOGRAPH_SINK_MODULE,  /* mod_tomograph's queue */
    TOMOGRAPH_SINK_EXPORTERS /* the process's own queue and shipper thread */
} tomograph_sink_kind_t;

/* Which sink this process has, deciding it on the first call. */
tomograph_sink_kind_t tomograph_sink_kind(void);

/* Hands a finished span on; never blocks (a full queue drops it, counted). */
void tomograph_sink_ship(const tg_span_t *span);

/* Outside httpd: waits at most timeout_ms for the shipper thread to deliver
 * what is queued.  1 when nothing is left undelivered. */
int tomograph_sink_flush(long timeout_ms);

#endif
