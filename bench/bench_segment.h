/* A segment as mod_tomograph's parent makes one, in the benchmark's own
 * process: libtomograph there enqueues its spans as it does in a mod_wsgi
 * daemon under the module (encoded, pushed onto the shared queue), and the
 * benchmark plays the shipper's part by popping them between rounds.
 *
 * Linked into lib_bench, and built alone as bench_segment.so for the Python
 * benchmarks, which load it with ctypes before their first span. */
#ifndef BENCH_SEGMENT_H
#define BENCH_SEGMENT_H

#include <stdint.h>

/* Makes the segment (a queue of `records` records, every page touched) in
 * an anonymous shared mapping (httpd's where there are no memfds; a forked
 * process writes to either alike: its locator names no descriptor) and
 * puts its locator in TOMOGRAPH_SEGMENT:
 * to be called before the process's first span.  The locator, or NULL (the
 * reason on stderr) on failure. */
const char *bench_segment_open(uint32_t records);

/* Pops every record queued; how many. */
uint64_t bench_segment_drain(void);

/* Records the queue lost (dropped when full or too large): 0 when the
 * benchmark drained it often enough. */
uint64_t bench_segment_lost(void);

#endif
