/* The shipper alone, fed by a producer process through a queue in shared
 * memory of the default size, as httpd's children feed it, and running its
 * daemon loop (tg_shipper_run, then the final drain) as in httpd.
 *
 * 1. Spans per second from the queue to a local receiver: the producer
 *    pushes spans as fast as the queue takes them (waiting when it is full),
 *    timed from the first push until the shipper has settled the last span,
 *    to (a) a span file in /tmp, (b) a Zipkin receiver in a thread of this
 *    process that answers 202 at once (the unit tests' server), (c) that
 *    receiver and statsd (a loopback UDP socket nobody reads) together, as a
 *    production configuration has them.
 * 2. Drops at a steady request rate (default 10,000 spans/s for 10 s): the
 *    producer pushes at that pace and drops what a full queue refuses, as
 *    httpd's children do, while the shipper ships to Zipkin and statsd.
 * 3. With --per-span: the instructions the shipper spends per span, counted
 *    by callgrind, on the traffic of bench/callgrind_per_request.py (spans
 *    one at a time, a request's worth of the shipper's clock apart, so that
 *    batches close on their interval as they do there; Zipkin and statsd).
 *    The shipper runs in a child under valgrind, counted from its first
 *    span to its drain; two runs of different span counts are differenced,
 *    so that what does not depend on the count cancels.  A quick stand-in
 *    for that benchmark while changing the shipper: no httpd, no node.js
 *    collectors (the receiver is the unit tests' server, here, uncounted).
 *
 * usage: shipper_bench [spans-per-second [seconds]]
 *        shipper_bench --per-span [N1 N2 [callgrind-output-directory]] */
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "tg_queue.h"
#include "http_server.h"
#include "tg_shipper.h"

#define DEFAULT_QUEUE_SIZE 4096 /* mod_tomograph's TomographQueueSize default */
#define THROUGHPUT_SPANS 100000
#define ROUNDS 5
#define DEFAULT_RATE 10000
#define DEFAULT_SECONDS 10
#define TICKS_PER_SECOND 1000 /* a paced producer pushes rate/1000 spans a millisecond */
#define FULL_WAIT_NS 20000    /* a fast producer's pause when the queue is full */
/* More than the 2 s mod_tomograph gives: a fast producer leaves a full buffer. */
#define DRAIN_BUDGET_MS 30000

/* --per-span: the span counts differenced, and the shipper's clock between
 * two spans (callgrind_per_request.py's 1200 requests took about 3.4 s). */
#define PER_SPAN_N1 200
#define PER_SPAN_N2 1200
#define PER_SPAN_GAP apr_time_from_msec(3)

typedef enum { SINK_FILE = 1, SINK_ZIPKIN = 2, SINK_STATSD = 4 } sink_t;

typedef struct {
    const char *zipkin_url;
    apr_port_t statsd_port;
    const char *span_path;
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t record_len;
} receivers_t;

typedef struct {
    long total; /* spans to push */
    int rate;   /* spans a second; 0: as fast as the queue takes them */
} load_t;

typedef struct {
    double seconds; /* from the first push until the shipper has settled the last span */
    tg_shipper_counters_t counters;
    tg_queue_stats_t queue;
    uint64_t deepest; /* records queued at once, at most (as the producer saw it) */
} outcome_t;

static volatile sig_atomic_t producer_done;

static void note_producer_exit(int signum)
{
    producer_done = 1;
}

static const char *sink_name(int sinks)
{
    switch (sinks) {
    case SINK_FILE:
        return "span file in /tmp";
    case SINK_ZIPKIN:
        return "Zipkin (local receiver, 202)";
    case SINK_ZIPKIN | SINK_STATSD:
        return "Zipkin + statsd";
    }
    return "?";
}

/* A shipper for `sinks` with the default configuration, its resources in pool. */
static tg_shipper_t *make_shipper(const receivers_t *receivers, int sinks, tg_queue_t *queue,
                                  tg_shipper_counters_t *counters, apr_pool_t *pool)
{
    tg_export_config_t cfg;
    tg_shipper_t *shipper;
    apr_status_t rv;
    tg_export_config_defaults(&cfg);
    if (sinks & SINK_ZIPKIN)
        cfg.zipkin_url = receivers->zipkin_url;
    if (sinks & SINK_STATSD) {
        cfg.statsd_host = "127.0.0.1";
        cfg.statsd_port = receivers->statsd_port;
    }
    if (sinks & SINK_FILE) {
        rv = apr_file_open(&cfg.span_file, receivers->span_path,
                           APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE,
                           APR_FPROT_OS_DEFAULT, pool);
        if (rv != APR_SUCCESS)
            bench_fail(receivers->span_path, rv);
    }
    memset(counters, 0, sizeof(*counters));
    rv = tg_shipper_create(&shipper, queue, &cfg, counters, pool);
    if (rv != APR_SUCCESS)
        bench_fail("tg_shipper_create", rv);
    return shipper;
}

static void sleep_until(uint64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
                          .tv_nsec = (long)(deadline_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void note_depth(tg_queue_t *queue, uint64_t *deepest)
{
    tg_queue_stats_t stats;
    tg_queue_stats(queue, &stats);
    if (stats.depth > *deepest)
        *deepest = stats.depth;
}

/* Pushes everything as fast as the queue takes it, pausing when it is full. */
static void push_fast(tg_queue_t *queue, const receivers_t *receivers, long total,
                      uint64_t *deepest)
{
    const struct timespec pause = {.tv_nsec = FULL_WAIT_NS};
    long pushed;
    for (pushed = 0; pushed < total; pushed++)
        while (tg_queue_push(queue, receivers->record, receivers->record_len) != APR_SUCCESS) {
            note_depth(queue, deepest);
            nanosleep(&pause, NULL);
        }
}

/* Pushes `rate` spans a second, a millisecond's worth at a time on an
 * absolute schedule (a late tick is caught up, so the rate holds on
 * average); what a full queue refuses is dropped, as in httpd. */
static void push_paced(tg_queue_t *queue, const receivers_t *receivers, long total, int rate,
                       uint64_t *deepest)
{
    uint64_t start = bench_now_ns(), tick_ns = 1000000000u / TICKS_PER_SECOND;
    long pushed = 0, tick;
    for (tick = 1; pushed < total; tick++) {
        long target = (long)((long long)rate * tick / TICKS_PER_SECOND);
        sleep_until(start + (uint64_t)tick * tick_ns);
        for (; pushed < target && pushed < total; pushed++)
            tg_queue_push(queue, receivers->record, receivers->record_len);
        note_depth(queue, deepest);
    }
}

/* The producer process: pushes the load, then writes the deepest queue it
 * saw to the pipe `report`. */
static void produce(tg_queue_t *queue, const receivers_t *receivers, const load_t *load,
                    int report)
{
    uint64_t deepest = 0;
    bench_touch_queue(queue, DEFAULT_QUEUE_SIZE);
    if (load->rate)
        push_paced(queue, receivers, load->total, load->rate, &deepest);
    else
        push_fast(queue, receivers, load->total, &deepest);
    _exit(write(report, &deepest, sizeof(deepest)) == sizeof(deepest) ? 0 : 1);
}

/* Runs the load through a fresh queue and shipper. */
static void ship_load(const receivers_t *receivers, int sinks, const load_t *load,
                      outcome_t *outcome, apr_pool_t *parent)
{
    tg_queue_t *queue = bench_shared_queue(DEFAULT_QUEUE_SIZE);
    apr_pool_t *pool;
    tg_shipper_t *shipper;
    int report[2], status;
    uint64_t start;
    pid_t producer;
    volatile sig_atomic_t drain_budget_ms = DRAIN_BUDGET_MS;

    apr_pool_create(&pool, parent);
    shipper = make_shipper(receivers, sinks, queue, &outcome->counters, pool);
    if (pipe(report) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    producer_done = 0;
    start = bench_now_ns();
    producer = fork();
    if (producer == 0) {
        close(report[0]);
        produce(queue, receivers, load, report[1]);
    }
    if (producer < 0) {
        perror("fork");
        exit(1);
    }
    close(report[1]);
    /* As httpd's shipper daemon does: poll, waiting while the queue is idle,
     * until told to stop (here: the producer is done), then drain. */
    tg_shipper_run(shipper, &producer_done, &drain_budget_ms);
    outcome->seconds = (double)(bench_now_ns() - start) / 1e9;
    if (read(report[0], &outcome->deepest, sizeof(outcome->deepest)) != sizeof(outcome->deepest)
        || waitpid(producer, &status, 0) != producer || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "shipper_bench: the producer failed\n");
        exit(1);
    }
    close(report[0]);
    tg_queue_stats(queue, &outcome->queue);
    apr_pool_destroy(pool);
    bench_unmap_queue(queue, DEFAULT_QUEUE_SIZE);
}

static unsigned long long counter(_Atomic uint64_t *value)
{
    return (unsigned long long)atomic_load(value);
}

/* An exporter the shipper opened: it took every span. */
static int was_open(tg_export_counters_t *exporter)
{
    return counter(&exporter->taken) > 0;
}

/* Spans the exporters did not deliver: failed or dropped from their buffers. */
static unsigned long long lost(outcome_t *outcome)
{
    unsigned long long spans = 0;
    int i;
    for (i = 0; i < TG_EXPORTER_COUNT; i++)
        spans += counter(&outcome->counters.exporters[i].failed)
                 + counter(&outcome->counters.exporters[i].dropped);
    return spans;
}

static void print_exporters(outcome_t *outcome)
{
    int i;
    for (i = 0; i < TG_EXPORTER_COUNT; i++) {
        tg_export_counters_t *exporter = &outcome->counters.exporters[i];
        if (was_open(exporter))
            printf(" %s sent %llu failed %llu dropped %llu;", tg_exporters[i]->name,
                   counter(&exporter->sent), counter(&exporter->failed),
                   counter(&exporter->dropped));
    }
    printf(" undecodable %llu\n", counter(&outcome->counters.undecodable));
}

/* The spans the slowest exporter delivered. */
static unsigned long long delivered(outcome_t *outcome)
{
    unsigned long long least = (unsigned long long)-1;
    int i;
    for (i = 0; i < TG_EXPORTER_COUNT; i++) {
        tg_export_counters_t *exporter = &outcome->counters.exporters[i];
        if (was_open(exporter) && counter(&exporter->sent) < least)
            least = counter(&exporter->sent);
    }
    return least;
}

static void throughput(const receivers_t *receivers, int sinks, apr_pool_t *pool)
{
    const load_t load = {.total = THROUGHPUT_SPANS, .rate = 0};
    double rates[ROUNDS];
    int round;
    for (round = 0; round < ROUNDS; round++) {
        outcome_t outcome;
        ship_load(receivers, sinks, &load, &outcome, pool);
        rates[round] = (double)delivered(&outcome) / outcome.seconds;
        printf("  %-30s round %d: %9.0f spans/s, %.2f s;", sink_name(sinks), round + 1,
               rates[round], outcome.seconds);
        print_exporters(&outcome);
    }
    {
        double median = bench_median(rates, ROUNDS);
        printf("throughput to %-30s %9.0f spans/s (median of %d; target >= 100000: %s)\n",
               sink_name(sinks), median, ROUNDS,
               median >= 100000 ? "met" : "NOT met");
    }
}

static void steady_rate(const receivers_t *receivers, int rate, int seconds, apr_pool_t *pool)
{
    const int sinks = SINK_ZIPKIN | SINK_STATSD;
    const load_t load = {.total = (long)rate * seconds, .rate = rate};
    outcome_t outcome;
    unsigned long long losses;
    ship_load(receivers, sinks, &load, &outcome, pool);
    losses = outcome.queue.dropped_full + lost(&outcome);
    printf("steady rate: %d spans/s for %d s (%.1f s with the final drain), queue of %u "
           "records, exporters Zipkin (local receiver) + statsd\n",
           rate, seconds, outcome.seconds, (unsigned)outcome.queue.capacity);
    printf("   pushed %llu, dropped (queue full) %llu, deepest queue %llu records\n",
           (unsigned long long)outcome.queue.pushed,
           (unsigned long long)outcome.queue.dropped_full,
           (unsigned long long)outcome.deepest);
    printf("  ");
    print_exporters(&outcome);
    printf("drops at %d spans/s: %llu (queue full %llu, exporters %llu; target 0): %s\n", rate,
           losses, (unsigned long long)outcome.queue.dropped_full,
           losses - outcome.queue.dropped_full, losses == 0 ? "met" : "NOT met");
}

/* --per-span: each span pushed as a request ends, then the shipper's loop
 * as tg_shipper_run goes through it when requests come further apart than
 * its wait (a poll that takes the span, a wait), on a clock a request
 * apart; then the drain.  Callgrind counts the shipper's calls, not the
 * pushes. */
static void ship_one_at_a_time(tg_shipper_t *shipper, tg_queue_t *queue,
                               const receivers_t *receivers, long spans)
{
    apr_time_t now = apr_time_now();
    volatile sig_atomic_t drain_budget_ms = DRAIN_BUDGET_MS;
    long i;
    for (i = 0; i < spans; i++, now += PER_SPAN_GAP) {
        if (tg_queue_push(queue, receivers->record, receivers->record_len) != APR_SUCCESS)
            bench_fail("tg_queue_push", APR_ENOSPC);
        tg_shipper_poll(shipper, now);
        tg_shipper_wait(shipper, 0);
    }
    tg_shipper_drain(shipper, apr_time_now(), &drain_budget_ms);
}

/* The child of --per-span, under callgrind: `--ship N URL PORT`. */
static int ship_counted(char **argv, apr_pool_t *pool)
{
    receivers_t *receivers = apr_pcalloc(pool, sizeof(*receivers));
    tg_shipper_counters_t counters;
    tg_queue_t *queue = bench_shared_queue(DEFAULT_QUEUE_SIZE);
    tg_shipper_t *shipper;
    long spans = atol(argv[2]);
    receivers->zipkin_url = argv[3];
    receivers->statsd_port = (apr_port_t)atoi(argv[4]);
    receivers->record_len = bench_typical_record(pool, receivers->record);
    shipper = make_shipper(receivers, SINK_ZIPKIN | SINK_STATSD, queue, &counters, pool);
    ship_one_at_a_time(shipper, queue, receivers, spans);
    if (atomic_load(&counters.exporters[TG_EXPORTER_zipkin].sent) != (uint64_t)spans
        || atomic_load(&counters.exporters[TG_EXPORTER_statsd].sent) != (uint64_t)spans) {
        fprintf(stderr, "shipper_bench --ship: not every span was delivered:");
        print_exporters(&(outcome_t){.counters = counters});
        return 1;
    }
    return 0;
}

/* Runs `--ship spans` under callgrind and returns what it counted. */
static unsigned long long count_shipping(const receivers_t *receivers, long spans,
                                         const char *outdir, apr_pool_t *pool)
{
    static const char *const toggles[] = {"tg_shipper_poll", "tg_shipper_wait",
                                           "tg_shipper_drain", NULL};
    char *args[] = {
        "--ship", apr_psprintf(pool, "%ld", spans), (char *)receivers->zipkin_url,
        apr_psprintf(pool, "%u", (unsigned)receivers->statsd_port), NULL,
    };
    return bench_callgrind_self(args, toggles,
                                apr_psprintf(pool, "%s/callgrind.out.%ld", outdir, spans), pool);
}

static void per_span(const receivers_t *receivers, long n1, long n2, const char *outdir,
                     apr_pool_t *pool)
{
    unsigned long long i1 = count_shipping(receivers, n1, outdir, pool);
    unsigned long long i2 = count_shipping(receivers, n2, outdir, pool);
    printf("per span: %ld and %ld spans one at a time, %d ms of the shipper's clock apart, to "
           "Zipkin (local receiver, 202) and statsd; shipper defaults\n",
           n1, n2, (int)apr_time_as_msec(PER_SPAN_GAP));
    printf("  Ir %llu and %llu (callgrind outputs in %s)\n", i1, i2, outdir);
    printf("instructions per span: %.0f\n", (double)(i2 - i1) / (double)(n2 - n1));
}

static int positive_arg(int argc, char **argv, int i, int fallback)
{
    int value;
    if (argc <= i)
        return fallback;
    value = atoi(argv[i]);
    if (value <= 0) {
        fprintf(stderr, "usage: shipper_bench [spans-per-second [seconds]]\n"
                        "       shipper_bench --per-span [N1 N2 [callgrind-output-directory]]\n");
        exit(2);
    }
    return value;
}

int main(int argc, char **argv)
{
    static const int throughput_sinks[] = {SINK_FILE, SINK_ZIPKIN, SINK_ZIPKIN | SINK_STATSD};
    int ship_mode = argc == 5 && strcmp(argv[1], "--ship") == 0;
    int per_span_mode = argc > 1 && strcmp(argv[1], "--per-span") == 0;
    int rate = ship_mode || per_span_mode ? 0 : positive_arg(argc, argv, 1, DEFAULT_RATE);
    int seconds = ship_mode || per_span_mode ? 0 : positive_arg(argc, argv, 2, DEFAULT_SECONDS);
    struct sigaction on_child = {.sa_handler = note_producer_exit};
    receivers_t *receivers;
    tg_test_http_server_t *server;
    apr_pool_t *pool;
    char span_path[] = "/tmp/tomograph-bench-spans-XXXXXX";
    int span_fd;
    size_t i;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    /* This process ships, as httpd's shipper daemon does. */
    tg_shipper_keep_freed_memory();
    if (ship_mode)
        return ship_counted(argv, pool);
    sigemptyset(&on_child.sa_mask);
    sigaction(SIGCHLD, &on_child, NULL);
    receivers = apr_pcalloc(pool, sizeof(*receivers));
    server = tg_test_http_start(pool, TG_TEST_HTTP_ACCEPT);
    if (!server)
        bench_fail("cannot start the local receiver", APR_EGENERAL);
    receivers->zipkin_url = tg_test_http_url(server);
    receivers->statsd_port = bench_statsd_sink(pool);
    if (per_span_mode) {
        char outdir[] = "/tmp/tomograph-per-span-XXXXXX";
        bench_print_header("shipper_bench: instructions per span (callgrind)", argc, argv);
        if (argc > 4 && apr_dir_make_recursive(argv[4], APR_FPROT_OS_DEFAULT, pool) != APR_SUCCESS)
            bench_fail(argv[4], APR_EGENERAL);
        per_span(receivers, positive_arg(argc, argv, 2, PER_SPAN_N1),
                 positive_arg(argc, argv, 3, PER_SPAN_N2),
                 argc > 4 ? argv[4] : mkdtemp(outdir), pool);
        apr_pool_destroy(pool);
        apr_terminate();
        return 0;
    }
    span_fd = mkstemp(span_path);
    if (span_fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(span_fd);
    receivers->span_path = span_path;
    receivers->record_len = bench_typical_record(pool, receivers->record);

    bench_print_header("shipper_bench: the shipper alone", argc, argv);
    printf("record: %zu bytes (a typical server span); queue of %d records; shipper defaults "
           "(batches of 512 spans or 1 s)\n", (size_t)receivers->record_len,
           DEFAULT_QUEUE_SIZE);
    printf("throughput: %d spans pushed as fast as the queue takes them, timed until the "
           "shipper has settled them all\n", THROUGHPUT_SPANS);
    for (i = 0; i < sizeof(throughput_sinks) / sizeof(*throughput_sinks); i++)
        throughput(receivers, throughput_sinks[i], pool);
    steady_rate(receivers, rate, seconds, pool);
    unlink(span_path);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
