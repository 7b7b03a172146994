/* What the C benchmarks share: the span they push (a typical server span),
 * a queue in shared memory as httpd makes it, a clock, and the lines every
 * benchmark prints (machine, command). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <apr_network_io.h>
#include <apr_pools.h>
#include <stdint.h>

#include "tg_queue.h"
#include "tg_span.h"

/* The server span mod_tomograph makes for a request continued from a
 * caller: named after its request (method, path), its status, both
 * endpoints, started and finished. */
tg_span_t *bench_typical_span(apr_pool_t *pool);

/* bench_typical_span encoded once with tg_record_encode; exits on failure. */
apr_size_t bench_typical_record(apr_pool_t *pool, unsigned char record[TG_QUEUE_SLOT_BYTES]);

/* An empty queue for `records` records in a shared anonymous mapping (every page
 * touched), as mod_tomograph's apr_shm_create makes it: forked producers
 * share it.  Exits on failure; bench_unmap_queue releases it. */
tg_queue_t *bench_shared_queue(uint32_t records);
void bench_unmap_queue(tg_queue_t *queue, uint32_t records);

/* Maps every page of the queue into the calling process.  A forked process
 * gets the shared pages one fault at a time on first touch; an httpd child
 * pays that once in its life, so a benchmark pays it before timing. */
void bench_touch_queue(const tg_queue_t *queue, uint32_t records);

/* A UDP socket bound on a free loopback port and never read, standing in for
 * a statsd that keeps up (the kernel drops what overflows its buffer, as a
 * busy statsd would).  Returns its port; exits on failure. */
apr_port_t bench_statsd_sink(apr_pool_t *pool);

/* Prints "<program>: what: <rv's message>" and exits with 1. */
void bench_fail(const char *what, apr_status_t rv) __attribute__((noreturn));

uint64_t bench_now_ns(void);
/* CPU time of the calling process, in ns: the cost of work, whatever the
 * scheduler did with the wall clock meanwhile. */
uint64_t bench_cpu_ns(void);

/* Prints the machine (nproc, CPU model) and the command that reproduces
 * this run (the build, then argv). */
void bench_print_header(const char *title, int argc, char **argv);

/* The median of n values (sorts them). */
double bench_median(double *values, int n);

/* Runs this program again under callgrind with args (NULL-terminated),
 * counting only while one of the functions `toggles` names (NULL-terminated)
 * is on the stack, its output written to `out`; the instructions counted.
 * Exits when the run fails or its output has no total. */
unsigned long long bench_callgrind_self(char *const *args, const char *const *toggles,
                                        const char *out, apr_pool_t *pool);

#endif
