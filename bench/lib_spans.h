/* What libtomograph's two benchmarks share: the spans they time, the run
 * that times them, and the count callgrind makes of them.  lib_api_bench
 * links it with a sink that does nothing, lib_bench with the library's own
 * (lib/sink.c) onto a segment of its own: the same spans, the same loops,
 * so that the two programs' figures differ by what the sink does alone.
 *
 * The cases, each n spans in a loop:
 *  - seed:    tomograph_start("my service", "a query", "127.0.0.1", 80) and
 *             tomograph_stop("a query"), as the seed's README writes them
 *  - nested:  the same under an open span (a child, not a new trace)
 *  - default: no service, no host (TOMOGRAPH_SERVICE or the program's name)
 *  - handle:  tomograph_span_begin and tomograph_span_end, no stack
 *  - clock:   no span, the two clock reads (apr_time_now) a span makes */
#ifndef LIB_SPANS_H
#define LIB_SPANS_H

/* The benchmark's main, after the sink is ready.  Without arguments: the
 * cases timed in rounds that alternate them (CPU ns per span, median of the
 * rounds), then each counted by callgrind (instructions per span); with
 * `--time`, the timing alone; with `--count CASE N`, the child that
 * callgrind counts; with `--profile CASE ROUNDS`, rounds of one case for
 * perf record.  between_rounds (NULL:
 * none) runs after every round, untimed and uncounted: the shipper's part. */
int lib_spans_main(int argc, char **argv, const char *title, void (*between_rounds)(void));

#endif
