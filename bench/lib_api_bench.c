/* libtomograph's calls alone: CPU ns and instructions per span started and
 * stopped, with a sink that does nothing (the three functions of
 * lib/sink.h, defined here), so that what is measured is the API's own part
 * of a span: the handle and its pool, the ids, the clock, the stack.  What
 * the real sink adds (encoding the record, the queue) is lib_bench's, which
 * times the same spans (bench/lib_spans.h). */
#include "lib_spans.h"
#include "sink.h"

tomograph_sink_kind_t tomograph_sink_kind(void)
{
    return TOMOGRAPH_SINK_NONE;
}

void tomograph_sink_ship(const tg_span_t *span)
{
    (void)span;
}

int tomograph_sink_flush(long timeout_ms)
{
    (void)timeout_ms;
    return 1;
}

int main(int argc, char **argv)
{
    return lib_spans_main(argc, argv, "libtomograph: one span started and stopped, sink doing nothing",
                          NULL);
}
