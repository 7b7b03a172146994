#include "unit.h"

#include "tg_queue.h"

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static tg_queue_t *make_queue(uint32_t records, void **mem)
{
    *mem = aligned_alloc(64, tg_queue_footprint(records));
    return tg_queue_create(*mem, records);
}

static void fill(unsigned char *bytes, apr_size_t len, unsigned seed)
{
    apr_size_t i;
    for (i = 0; i < len; i++)
        bytes[i] = (unsigned char)(seed * 31 + i);
}

static void test_records_come_out_in_order_and_intact(void)
{
    void *mem;
    tg_queue_t *queue = make_queue(8, &mem);
    unsigned char in[TG_QUEUE_SLOT_BYTES], out[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    unsigned i;
    /* Many laps round a small ring, with every record length we accept. */
    for (i = 0; i < 100; i++) {
        apr_size_t n = 1 + (i * 97) % TG_QUEUE_SLOT_BYTES;
        fill(in, n, i);
        CU_ASSERT_EQUAL_FATAL(tg_queue_push(queue, in, n), APR_SUCCESS);
        CU_ASSERT_EQUAL_FATAL(tg_queue_pop(queue, out, &len), APR_SUCCESS);
        CU_ASSERT_EQUAL(len, n);
        CU_ASSERT(memcmp(in, out, n) == 0);
    }
    CU_ASSERT_EQUAL(tg_queue_pop(queue, out, &len), APR_EAGAIN);
    free(mem);
}

static void test_full_queue_drops_and_counts(void)
{
    void *mem;
    tg_queue_t *queue = make_queue(5, &mem); /* rounds up to 8 records of 512 bytes */
    unsigned char record[TG_QUEUE_BYTES_PER_RECORD], out[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    tg_queue_stats_t stats;
    unsigned i;
    for (i = 0; i < 8; i++) {
        fill(record, sizeof(record), i);
        CU_ASSERT_EQUAL(tg_queue_push(queue, record, sizeof(record)), APR_SUCCESS);
    }
    CU_ASSERT_EQUAL(tg_queue_push(queue, record, sizeof(record)), APR_EAGAIN);
    CU_ASSERT_EQUAL(tg_queue_push(queue, record, 1), APR_EAGAIN);
    tg_queue_stats(queue, &stats);
    CU_ASSERT_EQUAL(stats.capacity, 8);
    CU_ASSERT_EQUAL(stats.pushed, 8);
    CU_ASSERT_EQUAL(stats.dropped_full, 2);
    CU_ASSERT_EQUAL(tg_queue_lost(&stats), 2);
    CU_ASSERT_EQUAL(stats.depth, 8);
    CU_ASSERT_EQUAL(stats.used_bytes, 8 * TG_QUEUE_BYTES_PER_RECORD);
    /* Room again once the reader has taken one: the first in comes out. */
    CU_ASSERT_EQUAL(tg_queue_pop(queue, out, &len), APR_SUCCESS);
    fill(record, sizeof(record), 0);
    CU_ASSERT(len == sizeof(record) && memcmp(out, record, len) == 0);
    CU_ASSERT_EQUAL(tg_queue_push(queue, record, sizeof(record)), APR_SUCCESS);
    free(mem);
}

/* Small records take little room: the same memory holds many more of them. */
static void test_small_records_take_little_room(void)
{
    void *mem;
    tg_queue_t *queue = make_queue(8, &mem);
    unsigned char out[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    unsigned i, pushed = 0;
    while (tg_queue_push(queue, &pushed, sizeof(pushed)) == APR_SUCCESS)
        pushed++;
    CU_ASSERT_EQUAL(pushed, 8 * TG_QUEUE_BYTES_PER_RECORD / 64);
    for (i = 0; i < pushed; i++) {
        CU_ASSERT_EQUAL_FATAL(tg_queue_pop(queue, out, &len), APR_SUCCESS);
        CU_ASSERT_EQUAL(*(unsigned *)out, i);
    }
    free(mem);
}

static void test_oversize_and_empty_records_are_refused(void)
{
    void *mem;
    tg_queue_t *queue = make_queue(4, &mem);
    static unsigned char big[TG_QUEUE_SLOT_BYTES + 1];
    tg_queue_stats_t stats;
    CU_ASSERT_EQUAL(tg_queue_push(queue, big, sizeof(big)), APR_ENOSPC);
    CU_ASSERT_EQUAL(tg_queue_push(queue, big, 0), APR_ENOSPC);
    CU_ASSERT_EQUAL(tg_queue_push(queue, big, TG_QUEUE_SLOT_BYTES), APR_SUCCESS);
    tg_queue_stats(queue, &stats);
    CU_ASSERT_EQUAL(stats.dropped_oversize, 2);
    CU_ASSERT_EQUAL(stats.pushed, 1);
    free(mem);
}

#define MARKER 0xff

/* Takes one record if there is one, counting it torn unless it is the
 * `fill`ed record of seed 0 (which starts with 0, unlike the marker);
 * returns its first byte, or -1 when none was ready. */
static int pop_one(tg_queue_t *queue, unsigned *torn)
{
    unsigned char out[TG_QUEUE_SLOT_BYTES], expected[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    if (tg_queue_pop(queue, out, &len) != APR_SUCCESS)
        return -1;
    if (out[0] == MARKER)
        return MARKER;
    fill(expected, sizeof(expected), 0);
    *torn += len != sizeof(expected) || memcmp(out, expected, len) != 0;
    return out[0];
}

/* Sends the marker after what the dead writer left, and takes records
 * until it comes out: within three times TG_QUEUE_STALE_USEC. */
static void marker_gets_through(tg_queue_t *queue, unsigned *torn)
{
    unsigned char marker[1] = {MARKER};
    apr_time_t started = apr_time_now();
    int marker_sent = 0;
    for (;;) {
        CU_ASSERT_FATAL(apr_time_now() - started < 3 * TG_QUEUE_STALE_USEC);
        if (!marker_sent)
            marker_sent = tg_queue_push(queue, marker, sizeof(marker)) == APR_SUCCESS;
        switch (pop_one(queue, torn)) {
        case MARKER:
            return;
        case -1:
            apr_sleep(1000);
        }
    }
}

/* Forks a writer that claims room for a record, writes half of it, says so
 * in *claimed and waits, without publishing, until *woken is set: then it
 * writes the rest, publishes and waits to be killed.  Returns once the room
 * is claimed. */
static pid_t writer_stopped_mid_record(tg_queue_t *queue, const unsigned char *record,
                                       _Atomic int *claimed, _Atomic int *woken)
{
    apr_time_t started = apr_time_now();
    pid_t writer = fork();
    CU_ASSERT_FATAL(writer >= 0);
    if (writer == 0) {
        tg_queue_room_t room;
        if (tg_queue_claim(queue, TG_QUEUE_SLOT_BYTES, &room) != APR_SUCCESS)
            _exit(1);
        memcpy(room.bytes, record, TG_QUEUE_SLOT_BYTES / 2);
        atomic_store(claimed, 1);
        while (!atomic_load(woken))
            apr_sleep(1000);
        memcpy(room.bytes + TG_QUEUE_SLOT_BYTES / 2, record + TG_QUEUE_SLOT_BYTES / 2,
               TG_QUEUE_SLOT_BYTES / 2);
        tg_queue_publish(queue, &room);
        atomic_store(claimed, 2);
        for (;;)
            pause();
    }
    while (!atomic_load(claimed)) {
        CU_ASSERT_FATAL(apr_time_now() - started < apr_time_from_sec(10));
        apr_sleep(1000);
    }
    return writer;
}

/* Two flags in memory a forked writer shares. */
static _Atomic int *shared_flags(void)
{
    _Atomic int *flags = mmap(NULL, 2 * sizeof(*flags), PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(flags != MAP_FAILED);
    return flags;
}

/* A writer killed between claiming its room and publishing it (an httpd
 * child killed mid-span) must cost its own record only: the reader waits
 * TG_QUEUE_STALE_USEC, then moves on to the records after it. */
static void test_dead_writer_costs_only_its_own_record(void)
{
    apr_size_t size = tg_queue_footprint(64);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    _Atomic int *flags = shared_flags();
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    tg_queue_t *queue;
    tg_queue_stats_t stats;
    unsigned torn = 0;
    int status;
    pid_t writer;
    CU_ASSERT_FATAL(mem != MAP_FAILED);
    queue = tg_queue_create(mem, 64);
    fill(record, sizeof(record), 0);
    CU_ASSERT_EQUAL(tg_queue_push(queue, record, sizeof(record)), APR_SUCCESS);
    writer = writer_stopped_mid_record(queue, record, &flags[0], &flags[1]);
    kill(writer, SIGKILL);
    waitpid(writer, &status, 0);
    CU_ASSERT_EQUAL(pop_one(queue, &torn), 0);
    marker_gets_through(queue, &torn);
    tg_queue_stats(queue, &stats);
    CU_ASSERT_EQUAL(stats.skipped_stale, 1);
    CU_ASSERT_EQUAL(stats.popped, 2);
    CU_ASSERT_EQUAL(stats.used_bytes, 0);
    CU_ASSERT_EQUAL(stats.created, stats.popped + tg_queue_lost(&stats));
    CU_ASSERT_EQUAL(torn, 0);
    munmap((void *)flags, 2 * sizeof(*flags));
    munmap(mem, size);
}

/* Pushes one record and takes records until it comes out, within three
 * times TG_QUEUE_STALE_USEC: what proves the ring is not wedged. */
static void push_gets_through(tg_queue_t *queue, unsigned *torn)
{
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_time_t started = apr_time_now();
    int pushed = 0;
    fill(record, sizeof(record), 0);
    for (;;) {
        CU_ASSERT_FATAL(apr_time_now() - started < 3 * TG_QUEUE_STALE_USEC);
        if (!pushed)
            pushed = tg_queue_push(queue, record, sizeof(record)) == APR_SUCCESS;
        if (pop_one(queue, torn) < 0) {
            if (pushed)
                return;
            apr_sleep(1000);
        }
    }
}

/* A writer frozen between claiming its room and publishing it for longer
 * than TG_QUEUE_STALE_USEC, then woken once the ring has gone round (its
 * cells reused by other records): its late publication costs one record at
 * most besides its own, counted lost, and the ring goes on. */
static void test_frozen_writer_woken_late_does_not_wedge_the_ring(void)
{
    enum { RING_RECORDS = 64 };
    apr_size_t size = tg_queue_footprint(RING_RECORDS);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    _Atomic int *flags = shared_flags();
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    tg_queue_t *queue;
    tg_queue_stats_t stats;
    unsigned i, torn = 0;
    int status;
    pid_t writer;
    apr_time_t until;
    CU_ASSERT_FATAL(mem != MAP_FAILED);
    queue = tg_queue_create(mem, RING_RECORDS);
    fill(record, sizeof(record), 0);
    writer = writer_stopped_mid_record(queue, record, &flags[0], &flags[1]);
    /* The reader gives its room up once stale... */
    until = apr_time_now() + TG_QUEUE_STALE_USEC + apr_time_from_msec(200);
    while (apr_time_now() < until)
        if (pop_one(queue, &torn) < 0)
            apr_sleep(1000);
    tg_queue_stats(queue, &stats);
    CU_ASSERT_EQUAL(stats.skipped_stale, 1);
    CU_ASSERT_EQUAL(stats.used_bytes, 0);
    /* ... other writers go round the ring two and a half times... */
    for (i = 0; i < 5 * RING_RECORDS / 8; i++) {
        CU_ASSERT_EQUAL(tg_queue_push(queue, record, sizeof(record)), APR_SUCCESS);
        CU_ASSERT_EQUAL(pop_one(queue, &torn), 0);
    }
    /* ... then it wakes, writes and publishes where it had claimed. */
    atomic_store(&flags[1], 1);
    until = apr_time_now() + apr_time_from_sec(10);
    while (atomic_load(&flags[0]) != 2 && apr_time_now() < until)
        apr_sleep(1000);
    CU_ASSERT_EQUAL(atomic_load(&flags[0]), 2);
    kill(writer, SIGKILL);
    waitpid(writer, &status, 0);
    for (i = 0; i < 3 * RING_RECORDS / 8; i++)
        push_gets_through(queue, &torn);
    tg_queue_stats(queue, &stats);
    CU_ASSERT(stats.skipped_stale >= 1 && stats.skipped_stale <= 2);
    CU_ASSERT_EQUAL(stats.depth, 0);
    CU_ASSERT_EQUAL(stats.used_bytes, 0);
    CU_ASSERT_EQUAL(stats.created, stats.popped + tg_queue_lost(&stats));
    munmap((void *)flags, 2 * sizeof(*flags));
    munmap(mem, size);
}

#define PRODUCERS 4
#define RECORDS_EACH 20000

typedef struct {
    unsigned producer;
    unsigned sequence;
    unsigned char padding[600];
} test_record_t;

/* Lengths vary with the sequence, so runs of every size wrap the ring. */
static apr_size_t record_length(unsigned sequence)
{
    return offsetof(test_record_t, padding) + 1 + (sequence * 37) % 600;
}

static void produce(tg_queue_t *queue, unsigned producer)
{
    test_record_t record;
    unsigned i;
    memset(&record, 0, sizeof(record));
    record.producer = producer;
    for (i = 0; i < RECORDS_EACH; i++) {
        record.sequence = i;
        memset(record.padding, (int)(producer + i), sizeof(record.padding));
        while (tg_queue_push(queue, &record, record_length(i)) == APR_EAGAIN)
            sched_yield();
    }
}

/* Several processes write into one shared mapping, as httpd children do:
 * every record arrives exactly once, intact, in each writer's order. */
static void test_processes_share_the_queue(void)
{
    apr_size_t size = tg_queue_footprint(64);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    tg_queue_t *queue;
    pid_t children[PRODUCERS];
    unsigned next[PRODUCERS] = {0};
    unsigned received = 0, p;
    int torn = 0, out_of_order = 0;
    apr_time_t deadline = apr_time_now() + 60 * APR_USEC_PER_SEC;
    CU_ASSERT_FATAL(mem != MAP_FAILED);
    queue = tg_queue_create(mem, 64);
    for (p = 0; p < PRODUCERS; p++) {
        children[p] = fork();
        CU_ASSERT_FATAL(children[p] >= 0);
        if (children[p] == 0) {
            produce(queue, p);
            _exit(0);
        }
    }
    while (received < PRODUCERS * RECORDS_EACH && apr_time_now() < deadline) {
        test_record_t record;
        unsigned char expected[sizeof(record.padding)];
        apr_size_t len;
        if (tg_queue_pop(queue, &record, &len) != APR_SUCCESS) {
            sched_yield();
            continue;
        }
        received++;
        if (record.producer >= PRODUCERS || len != record_length(record.sequence)) {
            torn++;
            continue;
        }
        memset(expected, (int)(record.producer + record.sequence), sizeof(expected));
        torn += memcmp(expected, record.padding, len - offsetof(test_record_t, padding)) != 0;
        out_of_order += record.sequence != next[record.producer];
        next[record.producer] = record.sequence + 1;
    }
    for (p = 0; p < PRODUCERS; p++) {
        int status;
        waitpid(children[p], &status, 0);
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CU_ASSERT_EQUAL(next[p], RECORDS_EACH);
    }
    CU_ASSERT_EQUAL(received, PRODUCERS * RECORDS_EACH);
    CU_ASSERT_EQUAL(torn, 0);
    CU_ASSERT_EQUAL(out_of_order, 0);
    munmap(mem, size);
}

/* A reader killed at any point, even between taking a record and freeing
 * its room, must not wedge the ring: writers free the room of a record the
 * reader has moved past.  Kills a popping child many times at random
 * moments, then needs three whole laps to go through. */
static void test_reader_killed_anywhere_does_not_wedge_the_ring(void)
{
    apr_size_t size = tg_queue_footprint(8);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    unsigned char record[200], out[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    tg_queue_t *queue;
    unsigned kill_round, i, stuck = 0;
    CU_ASSERT_FATAL(mem != MAP_FAILED);
    queue = tg_queue_create(mem, 8);
    memset(record, 7, sizeof(record));
    for (kill_round = 0; kill_round < 600; kill_round++) {
        apr_time_t until = apr_time_now() + rand() % 2000;
        pid_t reader = fork();
        int status;
        CU_ASSERT_FATAL(reader >= 0);
        if (reader == 0) {
            for (;;)
                tg_queue_pop(queue, out, &len);
        }
        /* Keep it busy taking records, so that the kill lands mid-pop. */
        while (apr_time_now() < until)
            tg_queue_push(queue, record, sizeof(record));
        kill(reader, SIGKILL);
        waitpid(reader, &status, 0);
    }
    while (tg_queue_pop(queue, out, &len) == APR_SUCCESS)
        ;
    for (i = 0; i < 3 * 8 * TG_QUEUE_BYTES_PER_RECORD / 256; i++) {
        stuck += tg_queue_push(queue, record, sizeof(record)) != APR_SUCCESS;
        stuck += tg_queue_pop(queue, out, &len) != APR_SUCCESS;
    }
    CU_ASSERT_EQUAL(stuck, 0);
    munmap(mem, size);
}

void tg_test_add_queue(void)
{
    CU_pSuite suite = TG_SUITE("queue");
    TG_TEST(suite, test_records_come_out_in_order_and_intact);
    TG_TEST(suite, test_full_queue_drops_and_counts);
    TG_TEST(suite, test_small_records_take_little_room);
    TG_TEST(suite, test_oversize_and_empty_records_are_refused);
    TG_TEST(suite, test_dead_writer_costs_only_its_own_record);
    TG_TEST(suite, test_frozen_writer_woken_late_does_not_wedge_the_ring);
    TG_TEST(suite, test_processes_share_the_queue);
    TG_TEST(suite, test_reader_killed_anywhere_does_not_wedge_the_ring);
}
