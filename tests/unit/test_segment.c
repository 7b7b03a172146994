#include "unit.h"

#include "tg_record.h"
#include "tg_segment.h"

#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define RECORDS 64

typedef struct {
    void *memory;
    apr_size_t size;
    tg_segment_t *segment;
} mapped_t;

/* As httpd makes it where there are no memfds: an anonymous shared mapping. */
static mapped_t map_segment(void)
{
    mapped_t mapped;
    mapped.size = tg_segment_footprint(RECORDS);
    mapped.memory = mmap(NULL, mapped.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                         -1, 0);
    CU_ASSERT_FATAL(mapped.memory != MAP_FAILED);
    mapped.segment = tg_segment_create(mapped.memory, RECORDS);
    return mapped;
}

static void test_a_locator_finds_its_segment(void)
{
    mapped_t mapped = map_segment();
    tg_segment_t *found = NULL;
    CU_ASSERT_EQUAL(tg_segment_attach(tg_segment_locator(mapped.segment, -1, tg_test_pool), &found),
                    APR_SUCCESS);
    CU_ASSERT_PTR_EQUAL(found, mapped.segment);
    munmap(mapped.memory, mapped.size);
}

static void test_a_forked_child_finds_it_and_its_spans_reach_the_parent(void)
{
    mapped_t mapped = map_segment();
    const char *locator = tg_segment_locator(mapped.segment, -1, tg_test_pool);
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    tg_span_t *span;
    int status;
    pid_t child = fork();
    if (child == 0) {
        apr_pool_t *pool;
        tg_segment_t *found;
        tg_span_t *made;
        apr_pool_create(&pool, NULL);
        made = tg_span_start(pool, TG_SPAN_CLIENT, "select", NULL, 1000);
        tg_span_finish(made, 2000);
        _exit(tg_segment_attach(locator, &found) == APR_SUCCESS
              && tg_segment_enqueue(found, made) == APR_SUCCESS ? 0 : 1);
    }
    CU_ASSERT_EQUAL_FATAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    {
        tg_queue_stats_t stats;
        tg_queue_stats(tg_segment_queue(mapped.segment), &stats);
        CU_ASSERT_EQUAL(stats.created, 1);
        CU_ASSERT_EQUAL(stats.pushed, 1);
    }
    CU_ASSERT_EQUAL_FATAL(tg_queue_pop(tg_segment_queue(mapped.segment), record, &len),
                          APR_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(tg_record_decode(record, len, tg_test_pool, &span), APR_SUCCESS);
    CU_ASSERT_STRING_EQUAL(span->name, "select");
    munmap(mapped.memory, mapped.size);
}

/* The environment outlives the mapping: a program an app runs inherits the
 * locator, not the memory. */
static void test_a_locator_to_memory_not_shared_here_is_refused(void)
{
    mapped_t mapped = map_segment();
    const char *locator = tg_segment_locator(mapped.segment, -1, tg_test_pool);
    void *private_copy = aligned_alloc(64, mapped.size);
    tg_segment_t *found = NULL;
    memcpy(private_copy, mapped.segment, sizeof(tg_segment_t));
    munmap(mapped.memory, mapped.size);
    CU_ASSERT_EQUAL(tg_segment_attach(locator, &found), APR_ENOENT);
    CU_ASSERT_EQUAL(tg_segment_attach(tg_segment_locator(private_copy, -1, tg_test_pool), &found),
                    APR_ENOENT);
    CU_ASSERT_PTR_NULL(found);
    free(private_copy);
}

static void test_another_segment_at_the_address_is_refused(void)
{
    mapped_t mapped = map_segment();
    tg_segment_t *found = NULL;
    const char *locator = tg_segment_locator(mapped.segment, -1, tg_test_pool);
    mapped.segment->cookie ^= 1;
    CU_ASSERT_EQUAL(tg_segment_attach(locator, &found), APR_EMISMATCH);
    mapped.segment->cookie ^= 1;
    mapped.segment->layout = TG_SEGMENT_LAYOUT + 1;
    CU_ASSERT_EQUAL(tg_segment_attach(locator, &found), APR_EMISMATCH);
    CU_ASSERT_PTR_NULL(found);
    munmap(mapped.memory, mapped.size);
}

static void test_a_locator_that_does_not_parse_is_refused(void)
{
    static const char *const bad[] = {"", "zz", "7f00:10", "7f00:100:1", "7f00:10:1:extra",
                                      "7f00:100:1:3x", "7f00:100:1:-2", "0:100:1:-1",
                                      "7f01:100:1:-1", "7f00:1:1:-1"};
    tg_segment_t *found = NULL;
    size_t i;
    CU_ASSERT_EQUAL(tg_segment_attach(NULL, &found), APR_EINVAL);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(tg_segment_attach(bad[i], &found), APR_EINVAL);
    CU_ASSERT_PTR_NULL(found);
}

/* --- a program httpd exec'd: the descriptor without the mapping --- */

/* A locator naming fd and, at address, memory that is no shared mapping of
 * this process (as in a program exec'd, where the parent's address holds
 * nothing, or something of its own): tg_segment_attach must map fd. */
static const char *locator_without_mapping(const tg_segment_t *segment, uint64_t cookie, int fd)
{
    static alignas(64) char private_memory[sizeof(tg_segment_t)];
    return apr_psprintf(tg_test_pool, "%" PRIxPTR ":%" PRIx64 ":%" PRIx64 ":%d",
                        (uintptr_t)private_memory, segment->size, cookie, fd);
}

static void test_a_program_without_the_mapping_maps_the_descriptor(void)
{
    tg_segment_t *segment, *found = NULL;
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    tg_queue_stats_t stats;
    apr_size_t len;
    tg_span_t *span;
    int fd, status;
    const char *locator;
    pid_t child;
    CU_ASSERT_EQUAL_FATAL(tg_segment_share(RECORDS, &segment, &fd), APR_SUCCESS);
    CU_ASSERT(fd >= TG_SEGMENT_FD_FLOOR);
    CU_ASSERT_EQUAL(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    /* Nothing that holds the descriptor can shrink the memory under the
     * processes that map it. */
    CU_ASSERT_EQUAL(ftruncate(fd, 0), -1);
    locator = tg_segment_locator(segment, fd, tg_test_pool);
    child = fork();
    if (child == 0) {
        apr_pool_t *pool;
        tg_span_t *made;
        apr_pool_create(&pool, NULL);
        made = tg_span_start(pool, TG_SPAN_CLIENT, "exec'd", NULL, 1000);
        tg_span_finish(made, 2000);
        /* What exec takes away. */
        munmap(segment, tg_segment_footprint(RECORDS));
        _exit(tg_segment_attach(locator, &found) == APR_SUCCESS
              && tg_segment_enqueue(found, made) == APR_SUCCESS ? 0 : 1);
    }
    CU_ASSERT_EQUAL_FATAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tg_queue_stats(tg_segment_queue(segment), &stats);
    CU_ASSERT_EQUAL(stats.created, 1);
    CU_ASSERT_EQUAL_FATAL(tg_queue_pop(tg_segment_queue(segment), record, &len), APR_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(tg_record_decode(record, len, tg_test_pool, &span), APR_SUCCESS);
    CU_ASSERT_STRING_EQUAL(span->name, "exec'd");

    /* And in this process, at an address where it is not mapped: a mapping
     * of its own, of the same memory. */
    CU_ASSERT_EQUAL_FATAL(
        tg_segment_attach(locator_without_mapping(segment, segment->cookie, fd), &found),
        APR_SUCCESS);
    CU_ASSERT_PTR_NOT_EQUAL(found, segment);
    atomic_store(&found->shipper_pid, 4242);
    CU_ASSERT_EQUAL(atomic_load(&segment->shipper_pid), 4242);
    munmap(found, found->size);
    tg_segment_unshare(segment, fd);
}

static void test_a_descriptor_holding_another_segment_is_refused(void)
{
    tg_segment_t *segment, *found = NULL;
    int fd;
    CU_ASSERT_EQUAL_FATAL(tg_segment_share(RECORDS, &segment, &fd), APR_SUCCESS);
    CU_ASSERT_EQUAL(
        tg_segment_attach(locator_without_mapping(segment, segment->cookie ^ 1, fd), &found),
        APR_EMISMATCH);
    segment->layout = TG_SEGMENT_LAYOUT + 1;
    CU_ASSERT_EQUAL(
        tg_segment_attach(locator_without_mapping(segment, segment->cookie, fd), &found),
        APR_EMISMATCH);
    CU_ASSERT_PTR_NULL(found);
    segment->layout = TG_SEGMENT_LAYOUT;
    tg_segment_unshare(segment, fd);
}

/* The number, reused for something else: a file of the right size, a
 * sealed memfd with nothing in it, a pipe, a device, the segment's own
 * memory opened read-only. */
static void test_a_descriptor_that_is_not_the_segment_is_refused(void)
{
    tg_segment_t *segment, *found = NULL;
    FILE *file = tmpfile();
    int fd, pipe_fds[2], empty, null, read_only;
    char path[64];
    CU_ASSERT_EQUAL_FATAL(tg_segment_share(RECORDS, &segment, &fd), APR_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    CU_ASSERT_EQUAL_FATAL(ftruncate(fileno(file), (off_t)tg_segment_footprint(RECORDS)), 0);
    CU_ASSERT_EQUAL(tg_segment_attach(locator_without_mapping(segment, segment->cookie,
                                                              fileno(file)), &found),
                    APR_EMISMATCH);
    empty = memfd_create("empty", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CU_ASSERT_FATAL(empty >= 0);
    CU_ASSERT_EQUAL(ftruncate(empty, (off_t)tg_segment_footprint(RECORDS)), 0);
    CU_ASSERT_EQUAL(fcntl(empty, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    CU_ASSERT_EQUAL(tg_segment_attach(locator_without_mapping(segment, segment->cookie, empty),
                                      &found),
                    APR_EMISMATCH);
    CU_ASSERT_EQUAL_FATAL(pipe(pipe_fds), 0);
    CU_ASSERT_EQUAL(tg_segment_attach(locator_without_mapping(segment, segment->cookie,
                                                              pipe_fds[0]), &found),
                    APR_EMISMATCH);
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    CU_ASSERT_FATAL(null >= 0);
    CU_ASSERT_EQUAL(tg_segment_attach(locator_without_mapping(segment, segment->cookie, null),
                                      &found),
                    APR_EMISMATCH);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    read_only = open(path, O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(read_only >= 0);
    CU_ASSERT_EQUAL(tg_segment_attach(locator_without_mapping(segment, segment->cookie,
                                                              read_only), &found),
                    APR_EMISMATCH);
    CU_ASSERT_PTR_NULL(found);
    close(read_only);
    close(null);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    close(empty);
    fclose(file);
    tg_segment_unshare(segment, fd);
}

/* A program that closed it (or ran with a fresh set), or a locator made
 * without one. */
static void test_a_closed_descriptor_or_none_is_not_found(void)
{
    tg_segment_t *segment, *found = NULL;
    int fd;
    CU_ASSERT_EQUAL_FATAL(tg_segment_share(RECORDS, &segment, &fd), APR_SUCCESS);
    CU_ASSERT_EQUAL(tg_segment_attach(locator_without_mapping(segment, segment->cookie, -1),
                                      &found),
                    APR_ENOENT);
    close(fd);
    CU_ASSERT_EQUAL(tg_segment_attach(locator_without_mapping(segment, segment->cookie, fd),
                                      &found),
                    APR_ENOENT);
    CU_ASSERT_PTR_NULL(found);
    munmap(segment, tg_segment_footprint(RECORDS));
}

/* A program whose environment lost the locator (suexec cleans a CGI's)
 * and kept the descriptor. */
static void test_a_program_without_the_locator_finds_the_descriptor_it_inherited(void)
{
    tg_segment_t *segment, *found = NULL;
    int fd, status, empty;
    pid_t child;
    CU_ASSERT_EQUAL(tg_segment_find_inherited(&found), APR_ENOENT);
    /* A memfd of the same name, where tg_segment_share leaves one, that
     * holds no segment is passed over. */
    fd = memfd_create("tomograph", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CU_ASSERT_FATAL(fd >= 0);
    empty = fcntl(fd, F_DUPFD_CLOEXEC, TG_SEGMENT_FD_FLOOR);
    close(fd);
    CU_ASSERT_FATAL(empty >= TG_SEGMENT_FD_FLOOR);
    CU_ASSERT_EQUAL(ftruncate(empty, (off_t)tg_segment_footprint(RECORDS)), 0);
    CU_ASSERT_EQUAL(fcntl(empty, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    CU_ASSERT_EQUAL(tg_segment_find_inherited(&found), APR_ENOENT);
    CU_ASSERT_EQUAL_FATAL(tg_segment_share(RECORDS, &segment, &fd), APR_SUCCESS);
    child = fork();
    if (child == 0) {
        munmap(segment, tg_segment_footprint(RECORDS));
        if (tg_segment_find_inherited(&found) != APR_SUCCESS)
            _exit(1);
        atomic_store(&found->shipper_pid, 4242);
        _exit(0);
    }
    CU_ASSERT_EQUAL_FATAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(atomic_load(&segment->shipper_pid), 4242);
    tg_segment_unshare(segment, fd);
    CU_ASSERT_EQUAL(tg_segment_find_inherited(&found), APR_ENOENT);
    CU_ASSERT_PTR_NULL(found);
    close(empty);
}

void tg_test_add_segment(void)
{
    CU_pSuite suite = TG_SUITE("segment");
    TG_TEST(suite, test_a_locator_finds_its_segment);
    TG_TEST(suite, test_a_forked_child_finds_it_and_its_spans_reach_the_parent);
    TG_TEST(suite, test_a_locator_to_memory_not_shared_here_is_refused);
    TG_TEST(suite, test_another_segment_at_the_address_is_refused);
    TG_TEST(suite, test_a_locator_that_does_not_parse_is_refused);
    TG_TEST(suite, test_a_program_without_the_mapping_maps_the_descriptor);
    TG_TEST(suite, test_a_descriptor_holding_another_segment_is_refused);
    TG_TEST(suite, test_a_descriptor_that_is_not_the_segment_is_refused);
    TG_TEST(suite, test_a_closed_descriptor_or_none_is_not_found);
    TG_TEST(suite, test_a_program_without_the_locator_finds_the_descriptor_it_inherited);
}
