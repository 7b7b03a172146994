/* The span queue alone: ns per enqueue and per dequeue with 1, 2 and 4
 * producer processes sharing an anonymous mapping with one consumer (this
 * process), as httpd children share theirs with the shipper.  Every record
 * is a typical server span, encoded once with tg_record_encode.
 *
 * Two measures for each producer count:
 *  - separate: the producers fill a queue that holds all their records, all
 *    at once (they contend on its tail), then the consumer empties it.  CPU
 *    time per operation: the cost the request path and the shipper pay.
 *  - together: producers and consumer at once on a queue of the default
 *    size (4096), a producer retrying when it finds the queue full.  Wall
 *    time per record: the throughput of the whole, contention included. */
#include <apr_general.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"

#define RECORDS_PER_PRODUCER 16384
#define MAX_PRODUCERS 4
#define ROUNDS 7
#define DEFAULT_QUEUE_SIZE 4096

static const int producer_counts[] = {1, 2, 4};

/* Shared with the producers: the start line and what each measured. */
typedef struct {
    _Atomic int ready;
    _Atomic int go;
    uint64_t cpu_ns[MAX_PRODUCERS];
    uint64_t full[MAX_PRODUCERS]; /* pushes refused because the queue was full */
} control_t;

typedef struct {
    tg_queue_t *queue;
    uint32_t records; /* the queue's size, as given to tg_queue_create */
    control_t *control;
    const unsigned char *record;
    apr_size_t record_len;
    int retry_when_full;
} run_t;

static void produce(const run_t *run, int me)
{
    uint64_t full = 0, cpu_start;
    int i;
    bench_touch_queue(run->queue, run->records);
    atomic_fetch_add(&run->control->ready, 1);
    while (!atomic_load(&run->control->go))
        sched_yield();
    cpu_start = bench_cpu_ns();
    for (i = 0; i < RECORDS_PER_PRODUCER; i++) {
        while (tg_queue_push(run->queue, run->record, run->record_len) != APR_SUCCESS) {
            full++;
            if (!run->retry_when_full)
                break;
            sched_yield();
        }
    }
    run->control->cpu_ns[me] = bench_cpu_ns() - cpu_start;
    run->control->full[me] = full;
    _exit(0);
}

static void start_producers(const run_t *run, int producers)
{
    int i;
    atomic_store(&run->control->ready, 0);
    atomic_store(&run->control->go, 0);
    for (i = 0; i < producers; i++) {
        pid_t pid = fork();
        if (pid == 0)
            produce(run, i);
        if (pid < 0) {
            perror("fork");
            exit(1);
        }
    }
    while (atomic_load(&run->control->ready) < producers)
        sched_yield();
}

static void wait_producers(int producers)
{
    int i, status;
    for (i = 0; i < producers; i++)
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "a producer failed\n");
            exit(1);
        }
}

/* Pops `expected` records; exits if one is missing or of the wrong size. */
static void consume(const run_t *run, long expected)
{
    unsigned char buf[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    long got = 0;
    while (got < expected) {
        if (tg_queue_pop(run->queue, buf, &len) != APR_SUCCESS)
            continue;
        if (len != run->record_len) {
            fprintf(stderr, "popped %zu bytes, pushed %zu\n", (size_t)len, (size_t)run->record_len);
            exit(1);
        }
        got++;
    }
}

static uint64_t total_full(const control_t *control, int producers)
{
    uint64_t full = 0;
    int i;
    for (i = 0; i < producers; i++)
        full += control->full[i];
    return full;
}

static double mean_producer_cpu_ns(const control_t *control, int producers)
{
    uint64_t cpu = 0;
    int i;
    for (i = 0; i < producers; i++)
        cpu += control->cpu_ns[i];
    return (double)cpu / producers;
}

/* Fills a queue that holds everything, then empties it: ns per enqueue and
 * per dequeue, each the median of ROUNDS. */
static void measure_separate(run_t *run, int producers, double *enqueue_ns, double *dequeue_ns)
{
    double enqueue[ROUNDS], dequeue[ROUNDS];
    long records = (long)producers * RECORDS_PER_PRODUCER;
    int round;
    for (round = 0; round < ROUNDS; round++) {
        uint64_t cpu_start;
        start_producers(run, producers);
        atomic_store(&run->control->go, 1);
        wait_producers(producers);
        if (total_full(run->control, producers)) {
            fprintf(stderr, "the queue filled up in the separate run\n");
            exit(1);
        }
        enqueue[round] = mean_producer_cpu_ns(run->control, producers) / RECORDS_PER_PRODUCER;
        cpu_start = bench_cpu_ns();
        consume(run, records);
        dequeue[round] = (double)(bench_cpu_ns() - cpu_start) / (double)records;
    }
    *enqueue_ns = bench_median(enqueue, ROUNDS);
    *dequeue_ns = bench_median(dequeue, ROUNDS);
}

/* Producers and consumer at once: wall ns per record, median of ROUNDS, and
 * how often a producer found the queue full (summed over the rounds). */
static void measure_together(run_t *run, int producers, double *record_ns, uint64_t *full)
{
    double per_record[ROUNDS];
    long records = (long)producers * RECORDS_PER_PRODUCER;
    int round;
    *full = 0;
    for (round = 0; round < ROUNDS; round++) {
        uint64_t start;
        start_producers(run, producers);
        start = bench_now_ns();
        atomic_store(&run->control->go, 1);
        consume(run, records);
        per_record[round] = (double)(bench_now_ns() - start) / (double)records;
        wait_producers(producers);
        *full += total_full(run->control, producers);
    }
    *record_ns = bench_median(per_record, ROUNDS);
}

int main(int argc, char **argv)
{
    apr_pool_t *pool;
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    uint32_t big_records = MAX_PRODUCERS * RECORDS_PER_PRODUCER;
    tg_queue_t *big, *small;
    control_t *control;
    run_t run;
    size_t i;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    control = mmap(NULL, sizeof(*control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (control == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    big = bench_shared_queue(big_records);
    small = bench_shared_queue(DEFAULT_QUEUE_SIZE);
    run = (run_t){.control = control, .record = record,
                  .record_len = bench_typical_record(pool, record)};

    bench_print_header("queue_bench: the span queue alone", argc, argv);
    printf("record: %zu bytes (a typical server span); %d records per producer, "
           "median of %d rounds\n", (size_t)run.record_len, RECORDS_PER_PRODUCER, ROUNDS);
    printf("separate: producers fill a queue for %u records at once, then the consumer empties "
           "it (CPU ns per operation)\n", (unsigned)big_records);
    printf("together: producers and consumer at once on a queue for %d records (the default), "
           "retrying when full "
           "(wall ns per record)\n", DEFAULT_QUEUE_SIZE);
    printf("%-10s %12s %12s %14s %12s\n", "producers", "enqueue ns", "dequeue ns",
           "together ns", "full");
    for (i = 0; i < sizeof(producer_counts) / sizeof(*producer_counts); i++) {
        int producers = producer_counts[i];
        double enqueue_ns, dequeue_ns, record_ns;
        uint64_t full;
        run.queue = big;
        run.records = big_records;
        run.retry_when_full = 0;
        measure_separate(&run, producers, &enqueue_ns, &dequeue_ns);
        run.queue = small;
        run.records = DEFAULT_QUEUE_SIZE;
        run.retry_when_full = 1;
        measure_together(&run, producers, &record_ns, &full);
        printf("%-10d %12.1f %12.1f %14.1f %12llu\n", producers, enqueue_ns, dequeue_ns,
               record_ns, (unsigned long long)full);
    }
    bench_unmap_queue(big, big_records);
    bench_unmap_queue(small, DEFAULT_QUEUE_SIZE);
    munmap(control, sizeof(*control));
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
