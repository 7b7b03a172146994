/* The shipper alone.
 *
 * 1. Spans per second from the queue to a local receiver: the queue is
 *    filled with typical server spans, then tg_shipper_drain ships them all,
 *    timed, to (a) a span file in /tmp, (b) a Zipkin receiver in a thread of
 *    this process that answers 202 at once (the unit tests' server), (c) that
 *    receiver and statsd (a loopback UDP socket nobody reads) together, as a
 *    production configuration has them.
 * 2. Drops at a steady request rate (default 10,000 spans/s for 10 s) with the
 *    default queue size: a producer process pushes at that pace, as httpd's
 *    children would, while tg_shipper_run ships to Zipkin and statsd.
 *
 * usage: shipper_bench [spans-per-second [seconds]] */
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "http_server.h"
#include "tg_shipper.h"

#define THROUGHPUT_SPANS 50000
#define THROUGHPUT_SLOTS 65536
#define ROUNDS 3
#define DEFAULT_QUEUE_SIZE 4096
#define DEFAULT_RATE 10000
#define DEFAULT_SECONDS 10
#define TICKS_PER_SECOND 1000 /* the producer pushes rate/1000 spans a millisecond */

typedef enum { SINK_FILE = 1, SINK_ZIPKIN = 2, SINK_STATSD = 4 } sink_t;

typedef struct {
    const char *zipkin_url;
    apr_port_t statsd_port;
    const char *span_path;
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t record_len;
} receivers_t;

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

/* A shipper for `sinks`, its resources in pool. */
static tg_shipper_t *make_shipper(const receivers_t *receivers, int sinks, tg_queue_t *queue,
                                  tg_shipper_counters_t *counters, apr_pool_t *pool)
{
    tg_shipper_config_t cfg;
    tg_shipper_t *shipper;
    apr_status_t rv;
    tg_shipper_config_defaults(&cfg);
    if (sinks & SINK_ZIPKIN)
        cfg.zipkin_url = receivers->zipkin_url;
    if (sinks & SINK_STATSD) {
        cfg.statsd_host = "127.0.0.1";
        cfg.statsd_port = receivers->statsd_port;
    }
    if (sinks & SINK_FILE) {
        rv = apr_file_open(&cfg.span_file, receivers->span_path,
                           APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE, APR_FPROT_OS_DEFAULT,
                           pool);
        if (rv != APR_SUCCESS)
            bench_fail(receivers->span_path, rv);
    }
    memset(counters, 0, sizeof(*counters));
    rv = tg_shipper_create(&shipper, queue, &cfg, counters, pool);
    if (rv != APR_SUCCESS)
        bench_fail("tg_shipper_create", rv);
    return shipper;
}

/* The spans every configured exporter took, or -1 if they disagree (an
 * exporter failed some). */
static long long delivered(const tg_shipper_counters_t *counters, int sinks)
{
    long long common = -1;
    const tg_export_counters_t *exporters[] = {
        sinks & SINK_ZIPKIN ? &counters->zipkin : NULL,
        sinks & SINK_STATSD ? &counters->statsd : NULL,
        sinks & SINK_FILE ? &counters->file : NULL,
    };
    size_t i;
    for (i = 0; i < sizeof(exporters) / sizeof(*exporters); i++) {
        long long sent;
        if (!exporters[i])
            continue;
        if (atomic_load(&exporters[i]->failed))
            return -1;
        sent = (long long)atomic_load(&exporters[i]->sent);
        if (common >= 0 && sent != common)
            return -1;
        common = sent;
    }
    return common;
}

static void fill(tg_queue_t *queue, const receivers_t *receivers, int spans)
{
    int i;
    for (i = 0; i < spans; i++)
        if (tg_queue_push(queue, receivers->record, receivers->record_len) != APR_SUCCESS) {
            fprintf(stderr, "shipper_bench: the queue refused span %d\n", i);
            exit(1);
        }
}

/* Median spans per second of ROUNDS drains of THROUGHPUT_SPANS. */
static double throughput(const receivers_t *receivers, int sinks, tg_queue_t *queue,
                         apr_pool_t *parent)
{
    double rates[ROUNDS];
    int round;
    for (round = 0; round < ROUNDS; round++) {
        apr_pool_t *pool;
        tg_shipper_counters_t counters;
        tg_shipper_t *shipper;
        uint64_t start, elapsed;
        apr_pool_create(&pool, parent);
        shipper = make_shipper(receivers, sinks, queue, &counters, pool);
        fill(queue, receivers, THROUGHPUT_SPANS);
        start = bench_now_ns();
        tg_shipper_drain(shipper, apr_time_now() + apr_time_from_sec(120));
        elapsed = bench_now_ns() - start;
        if (delivered(&counters, sinks) != THROUGHPUT_SPANS) {
            fprintf(stderr, "shipper_bench: %s: not every span was delivered\n", sink_name(sinks));
            exit(1);
        }
        rates[round] = THROUGHPUT_SPANS / ((double)elapsed / 1e9);
        apr_pool_destroy(pool);
    }
    return bench_median(rates, ROUNDS);
}

/* ---- steady rate ---- */

static volatile sig_atomic_t producer_done;

static void note_producer_exit(int signum)
{
    producer_done = 1;
}

static void sleep_until(uint64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
                          .tv_nsec = (long)(deadline_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* The producer process: `rate` spans a second for `seconds`, pushed a
 * millisecond's worth at a time on an absolute schedule (a late tick is
 * caught up, so the rate holds on average).  Writes the deepest queue it
 * saw to the pipe `report`. */
static void produce_at_rate(tg_queue_t *queue, const receivers_t *receivers, int rate,
                            int seconds, int report)
{
    uint64_t start = bench_now_ns(), tick_ns = 1000000000u / TICKS_PER_SECOND, deepest = 0;
    long long pushed = 0, target;
    long long total = (long long)rate * seconds;
    long tick;
    for (tick = 1; pushed < total; tick++) {
        tg_queue_stats_t stats;
        sleep_until(start + (uint64_t)tick * tick_ns);
        target = (long long)rate * tick / TICKS_PER_SECOND;
        if (target > total)
            target = total;
        for (; pushed < target; pushed++)
            tg_queue_push(queue, receivers->record, receivers->record_len);
        tg_queue_stats(queue, &stats);
        if (stats.depth > deepest)
            deepest = stats.depth;
    }
    if (write(report, &deepest, sizeof(deepest)) != sizeof(deepest))
        _exit(1);
    _exit(0);
}

static void steady_rate(const receivers_t *receivers, int rate, int seconds, apr_pool_t *parent)
{
    apr_pool_t *pool;
    tg_queue_t *queue = bench_shared_queue(DEFAULT_QUEUE_SIZE);
    tg_shipper_counters_t counters;
    tg_shipper_t *shipper;
    tg_queue_stats_t stats;
    uint64_t deepest = 0, start;
    int report[2], status;
    pid_t producer;
    struct sigaction on_child = {.sa_handler = note_producer_exit};

    apr_pool_create(&pool, parent);
    shipper = make_shipper(receivers, SINK_ZIPKIN | SINK_STATSD, queue, &counters, pool);
    sigemptyset(&on_child.sa_mask);
    sigaction(SIGCHLD, &on_child, NULL);
    if (pipe(report) != 0) {
        perror("pipe");
        exit(1);
    }
    start = bench_now_ns();
    producer = fork();
    if (producer == 0) {
        close(report[0]);
        produce_at_rate(queue, receivers, rate, seconds, report[1]);
    }
    if (producer < 0) {
        perror("fork");
        exit(1);
    }
    close(report[1]);
    /* As in httpd's shipper daemon: poll and sleep until told to stop, then
     * drain what is left (the budget mod_tomograph gives it: 2 s). */
    tg_shipper_run(shipper, &producer_done, 2 * APR_USEC_PER_SEC);
    if (read(report[0], &deepest, sizeof(deepest)) != sizeof(deepest)
        || waitpid(producer, &status, 0) != producer || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "shipper_bench: the producer failed\n");
        exit(1);
    }
    close(report[0]);
    tg_queue_stats(queue, &stats);
    printf("steady rate: %d spans/s for %d s (%.1f s with the final drain), queue %u slots, "
           "exporters Zipkin (local receiver) + statsd\n",
           rate, seconds, (double)(bench_now_ns() - start) / 1e9, (unsigned)stats.capacity);
    printf("  pushed %llu, dropped (queue full) %llu, deepest queue %llu, left queued %llu\n",
           (unsigned long long)stats.pushed, (unsigned long long)stats.dropped_full,
           (unsigned long long)deepest, (unsigned long long)stats.depth);
    printf("  zipkin sent %llu failed %llu, statsd sent %llu failed %llu\n",
           (unsigned long long)atomic_load(&counters.zipkin.sent),
           (unsigned long long)atomic_load(&counters.zipkin.failed),
           (unsigned long long)atomic_load(&counters.statsd.sent),
           (unsigned long long)atomic_load(&counters.statsd.failed));
    printf("drops at %d spans/s: %llu (target 0): %s\n", rate,
           (unsigned long long)stats.dropped_full, stats.dropped_full == 0 ? "met" : "NOT met");
    apr_pool_destroy(pool);
    bench_unmap_queue(queue, DEFAULT_QUEUE_SIZE);
}

static int positive_arg(int argc, char **argv, int i, int fallback)
{
    int value;
    if (argc <= i)
        return fallback;
    value = atoi(argv[i]);
    if (value <= 0) {
        fprintf(stderr, "usage: shipper_bench [spans-per-second [seconds]]\n");
        exit(2);
    }
    return value;
}

int main(int argc, char **argv)
{
    static const int throughput_sinks[] = {SINK_FILE, SINK_ZIPKIN, SINK_ZIPKIN | SINK_STATSD};
    int rate = positive_arg(argc, argv, 1, DEFAULT_RATE);
    int seconds = positive_arg(argc, argv, 2, DEFAULT_SECONDS);
    receivers_t *receivers;
    tg_test_http_server_t *server;
    tg_queue_t *queue;
    apr_pool_t *pool;
    char span_path[] = "/tmp/tomograph-bench-spans-XXXXXX";
    int span_fd;
    size_t i;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    receivers = apr_pcalloc(pool, sizeof(*receivers));
    server = tg_test_http_start(pool, TG_TEST_HTTP_ACCEPT);
    if (!server)
        bench_fail("cannot start the local receiver", APR_EGENERAL);
    receivers->zipkin_url = tg_test_http_url(server);
    receivers->statsd_port = bench_statsd_sink(pool);
    span_fd = mkstemp(span_path);
    if (span_fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(span_fd);
    receivers->span_path = span_path;
    receivers->record_len = bench_typical_record(pool, receivers->record);

    bench_print_header("shipper_bench: the shipper alone", argc, argv);
    printf("record: %zu bytes (a typical server span); default batches (100 spans or 200 ms)\n",
           (size_t)receivers->record_len);
    queue = bench_shared_queue(THROUGHPUT_SLOTS);
    for (i = 0; i < sizeof(throughput_sinks) / sizeof(*throughput_sinks); i++) {
        double rate_per_s = throughput(receivers, throughput_sinks[i], queue, pool);
        printf("throughput to %-30s %9.0f spans/s (median of %d drains of %d; target >= 100000: "
               "%s)\n", sink_name(throughput_sinks[i]), rate_per_s, ROUNDS, THROUGHPUT_SPANS,
               rate_per_s >= 100000 ? "met" : "NOT met");
    }
    bench_unmap_queue(queue, THROUGHPUT_SLOTS);
    fflush(stdout);
    steady_rate(receivers, rate, seconds, pool);
    unlink(span_path);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
