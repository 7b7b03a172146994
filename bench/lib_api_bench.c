/* libtomograph's calls alone: CPU ns per span started and stopped, with a
 * sink that does nothing (the three functions of lib/sink.h, defined here),
 * so that what is measured is the API's own part of a span: the handle and
 * its pool, the ids, the clock, the stack.  What the real sink adds
 * (encoding the record, the queue) is lib_bench's and queue_bench's.
 *
 * Measured, each the median of ROUNDS rounds of SPANS spans:
 *  - seed:    tomograph_start("my service", "a query", "127.0.0.1", 80) and
 *             tomograph_stop("a query"), as the seed's README writes them
 *  - nested:  the same under an open span (a child, not a new trace)
 *  - default: no service, no host (TOMOGRAPH_SERVICE or the program's name)
 *  - handle:  tomograph_span_begin and tomograph_span_end, no stack */
#include <apr_general.h>
#include <stdio.h>

#include "bench_common.h"
#include "sink.h"
#include "tomograph.h"

#define SPANS 200000
#define ROUNDS 7

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

static void seed_spans(void)
{
    for (int i = 0; i < SPANS; i++) {
        tomograph_start("my service", "a query", "127.0.0.1", 80, NULL);
        tomograph_stop("a query");
    }
}

static void default_spans(void)
{
    for (int i = 0; i < SPANS; i++) {
        tomograph_start(NULL, "a query", NULL, 0, NULL);
        tomograph_stop("a query");
    }
}

static void handle_spans(void)
{
    tomograph_span_t *span;
    for (int i = 0; i < SPANS; i++) {
        tomograph_span_begin(&span, NULL, NULL, TOMOGRAPH_KIND_INTERNAL, NULL, "a query", NULL, 0);
        tomograph_span_end(span);
    }
}

/* ns per span, the median of the rounds. */
static double measure(void (*spans)(void))
{
    double per_span[ROUNDS];
    spans(); /* the thread's pools made, the code and data warm */
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t start = bench_cpu_ns();
        spans();
        per_span[round] = (double)(bench_cpu_ns() - start) / SPANS;
    }
    return bench_median(per_span, ROUNDS);
}

int main(int argc, char **argv)
{
    double seed, nested, defaults, handle;
    apr_initialize();
    bench_print_header("libtomograph: one span started and stopped, sink doing nothing", argc, argv);
    seed = measure(seed_spans);
    tomograph_start("my service", "request", NULL, 0, NULL);
    nested = measure(seed_spans);
    tomograph_stop("request");
    defaults = measure(default_spans);
    handle = measure(handle_spans);
    printf("%d rounds of %d spans, median CPU ns per span\n", ROUNDS, SPANS);
    printf("  seed     %6.1f  start(service, name, host, port) + stop(name)\n", seed);
    printf("  nested   %6.1f  the same under an open span\n", nested);
    printf("  default  %6.1f  start(NULL, name, NULL, 0) + stop(name)\n", defaults);
    printf("  handle   %6.1f  span_begin + span_end, no stack\n", handle);
    apr_terminate();
    return 0;
}
