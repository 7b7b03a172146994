/* libtomograph with its own sink (lib/sink.c), as under mod_tomograph: the
 * process attaches a segment through TOMOGRAPH_SEGMENT, here one it made
 * itself (bench/bench_segment.h), and every span ends encoded and pushed
 * onto the segment's queue.  CPU ns and instructions per span, the spans of
 * lib_api_bench (bench/lib_spans.h); the queue is emptied between rounds,
 * untimed, as the shipper would. */
#include <stdio.h>
#include <stdlib.h>

#include "bench_segment.h"
#include "lib_spans.h"
#include "sink.h"

#define QUEUE_RECORDS 4096 /* TomographQueueSize's default */

static void drain(void)
{
    bench_segment_drain();
    if (bench_segment_lost()) {
        fprintf(stderr, "lib_bench: the queue filled: spans were dropped\n");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (!bench_segment_open(QUEUE_RECORDS))
        return 1;
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_MODULE) {
        fprintf(stderr, "lib_bench: libtomograph did not attach the segment\n");
        return 1;
    }
    return lib_spans_main(argc, argv,
                          "libtomograph: one span started and stopped, enqueued on a segment",
                          drain);
}
