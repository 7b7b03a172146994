#include "lib_spans.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "tomograph.h"

#define SPANS 4000   /* a round: the default queue (4096 records) holds it */
#define ROUNDS 31
#define COUNTED_SPANS SPANS

typedef struct {
    const char *name;
    void (*spans)(long n);
    const char *what;
} lib_case_t;

static void seed_spans(long n)
{
    for (long i = 0; i < n; i++) {
        tomograph_start("my service", "a query", "127.0.0.1", 80, NULL);
        tomograph_stop("a query");
    }
}

static void nested_spans(long n)
{
    tomograph_start("my service", "request", NULL, 0, NULL);
    seed_spans(n);
    tomograph_stop("request");
}

static void default_spans(long n)
{
    for (long i = 0; i < n; i++) {
        tomograph_start(NULL, "a query", NULL, 0, NULL);
        tomograph_stop("a query");
    }
}

static void handle_spans(long n)
{
    tomograph_span_t *span;
    for (long i = 0; i < n; i++) {
        tomograph_span_begin(&span, NULL, NULL, TOMOGRAPH_KIND_INTERNAL, NULL, "a query", NULL, 0);
        tomograph_span_end(span);
    }
}

/* The floor: a span reads the clock when it starts and when it stops. */
static void clock_reads(long n)
{
    for (long i = 0; i < n; i++) {
        volatile apr_time_t start = apr_time_now(), stop = apr_time_now();
        (void)start;
        (void)stop;
    }
}

static const lib_case_t cases[] = {
    {"seed", seed_spans, "start(service, name, host, port) + stop(name)"},
    {"nested", nested_spans, "the same under an open span"},
    {"default", default_spans, "start(NULL, name, NULL, 0) + stop(name)"},
    {"handle", handle_spans, "span_begin + span_end, no stack"},
    {"clock", clock_reads, "apr_time_now twice, a span's two times: the floor"},
};
#define CASES ((int)(sizeof(cases) / sizeof(cases[0])))

static void run_between(void (*between_rounds)(void))
{
    if (between_rounds)
        between_rounds();
}

/* Rounds of every case in turn, the first case of a round moving on by one
 * each round, so that none always runs first after the sink's work. */
static void time_cases(void (*between_rounds)(void), double medians[CASES])
{
    static double per_span[CASES][ROUNDS];
    for (int c = 0; c < CASES; c++) {
        cases[c].spans(SPANS); /* the thread's pools made, the code and data warm */
        run_between(between_rounds);
    }
    for (int round = 0; round < ROUNDS; round++)
        for (int k = 0; k < CASES; k++) {
            int c = (round + k) % CASES;
            uint64_t start = bench_cpu_ns();
            cases[c].spans(SPANS);
            per_span[c][round] = (double)(bench_cpu_ns() - start) / SPANS;
            run_between(between_rounds);
        }
    for (int c = 0; c < CASES; c++)
        medians[c] = bench_median(per_span[c], ROUNDS);
}

/* What callgrind counts (--toggle-collect): n spans of a case, warm. */
static __attribute__((noinline, noipa)) void lib_counted_spans(const lib_case_t *counted, long n)
{
    counted->spans(n);
}

static const lib_case_t *case_named(const char *name)
{
    for (int c = 0; c < CASES; c++)
        if (strcmp(cases[c].name, name) == 0)
            return &cases[c];
    return NULL;
}

/* The child under callgrind: --count CASE N. */
static int count_case(const lib_case_t *counted, long n, void (*between_rounds)(void))
{
    counted->spans(SPANS);
    run_between(between_rounds);
    lib_counted_spans(counted, n);
    run_between(between_rounds);
    return 0;
}

static double instructions_per_span(const lib_case_t *counted, const char *outdir,
                                    apr_pool_t *pool)
{
    static const char *const toggles[] = {"lib_counted_spans", NULL};
    char *args[] = {"--count", (char *)counted->name,
                    apr_psprintf(pool, "%d", COUNTED_SPANS), NULL};
    const char *out = apr_psprintf(pool, "%s/callgrind.out.%s", outdir, counted->name);
    return (double)bench_callgrind_self(args, toggles, out, pool) / COUNTED_SPANS;
}

/* The child perf profiles: --profile CASE ROUNDS, rounds of a case alone,
 * the shipper's part between them as in the timed run. */
static int profile_case(const lib_case_t *profiled, long rounds, void (*between_rounds)(void))
{
    for (long round = 0; round < rounds; round++) {
        profiled->spans(SPANS);
        run_between(between_rounds);
    }
    return 0;
}

int lib_spans_main(int argc, char **argv, const char *title, void (*between_rounds)(void))
{
    double medians[CASES];
    char outdir[] = "/tmp/tomograph-lib-bench-XXXXXX";
    apr_pool_t *pool;
    int time_only = argc == 2 && strcmp(argv[1], "--time") == 0;
    apr_initialize();
    if (argc == 4 && strcmp(argv[1], "--count") == 0 && case_named(argv[2]))
        return count_case(case_named(argv[2]), atol(argv[3]), between_rounds);
    if (argc == 4 && strcmp(argv[1], "--profile") == 0 && case_named(argv[2]))
        return profile_case(case_named(argv[2]), atol(argv[3]), between_rounds);
    if (argc > 1 && !time_only) {
        fprintf(stderr, "usage: %s [--time | --profile CASE ROUNDS]\n", argv[0]);
        return 2;
    }
    apr_pool_create(&pool, NULL);
    bench_print_header(title, argc, argv);
    time_cases(between_rounds, medians);
    if (time_only) {
        printf("%d rounds of %d spans, the cases alternated; median CPU ns per span\n", ROUNDS,
               SPANS);
        for (int c = 0; c < CASES; c++)
            printf("  %-8s %7.1f ns  %s\n", cases[c].name, medians[c], cases[c].what);
        apr_pool_destroy(pool);
        return 0;
    }
    if (!mkdtemp(outdir))
        bench_fail("mkdtemp", APR_FROM_OS_ERROR(errno));
    printf("%d rounds of %d spans, the cases alternated; median CPU ns per span, and "
           "instructions per span (callgrind, %d spans; outputs in %s)\n",
           ROUNDS, SPANS, COUNTED_SPANS, outdir);
    for (int c = 0; c < CASES; c++)
        printf("  %-8s %7.1f ns %7.0f Ir  %s\n", cases[c].name, medians[c],
               instructions_per_span(&cases[c], outdir, pool), cases[c].what);
    apr_pool_destroy(pool);
    return 0;
}
