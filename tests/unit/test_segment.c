#include "unit.h"

#include "tg_record.h"
#include "tg_segment.h"

#include <apr_strings.h>
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

/* As httpd makes it: an anonymous shared mapping. */
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
    CU_ASSERT_EQUAL(tg_segment_attach(tg_segment_locator(mapped.segment, tg_test_pool), &found),
                    APR_SUCCESS);
    CU_ASSERT_PTR_EQUAL(found, mapped.segment);
    munmap(mapped.memory, mapped.size);
}

static void test_a_forked_child_finds_it_and_its_spans_reach_the_parent(void)
{
    mapped_t mapped = map_segment();
    const char *locator = tg_segment_locator(mapped.segment, tg_test_pool);
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
    const char *locator = tg_segment_locator(mapped.segment, tg_test_pool);
    void *private_copy = aligned_alloc(64, mapped.size);
    tg_segment_t *found = NULL;
    memcpy(private_copy, mapped.segment, sizeof(tg_segment_t));
    munmap(mapped.memory, mapped.size);
    CU_ASSERT_EQUAL(tg_segment_attach(locator, &found), APR_ENOENT);
    CU_ASSERT_EQUAL(tg_segment_attach(tg_segment_locator(private_copy, tg_test_pool), &found),
                    APR_ENOENT);
    CU_ASSERT_PTR_NULL(found);
    free(private_copy);
}

static void test_another_segment_at_the_address_is_refused(void)
{
    mapped_t mapped = map_segment();
    tg_segment_t *found = NULL;
    const char *locator = tg_segment_locator(mapped.segment, tg_test_pool);
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
    static const char *const bad[] = {"", "zz", "7f00:10", "7f00:10:1:extra", "0:100:1",
                                      "7f01:100:1", "7f00:1:1"};
    tg_segment_t *found = NULL;
    size_t i;
    CU_ASSERT_EQUAL(tg_segment_attach(NULL, &found), APR_EINVAL);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(tg_segment_attach(bad[i], &found), APR_EINVAL);
    CU_ASSERT_PTR_NULL(found);
}

void tg_test_add_segment(void)
{
    CU_pSuite suite = TG_SUITE("segment");
    TG_TEST(suite, test_a_locator_finds_its_segment);
    TG_TEST(suite, test_a_forked_child_finds_it_and_its_spans_reach_the_parent);
    TG_TEST(suite, test_a_locator_to_memory_not_shared_here_is_refused);
    TG_TEST(suite, test_another_segment_at_the_address_is_refused);
    TG_TEST(suite, test_a_locator_that_does_not_parse_is_refused);
}
