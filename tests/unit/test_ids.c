#include "unit.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tg_ids.h"

static void test_hex_to_u64_reads_lowercase_hex(void)
{
    uint64_t value = 7;
    CU_ASSERT_TRUE(tg_hex_to_u64("0", 1, &value));
    CU_ASSERT_EQUAL(value, 0);
    CU_ASSERT_TRUE(tg_hex_to_u64("ff", 2, &value));
    CU_ASSERT_EQUAL(value, 0xff);
    CU_ASSERT_TRUE(tg_hex_to_u64("0123456789abcdef", 16, &value));
    CU_ASSERT_EQUAL(value, 0x0123456789abcdefULL);
    CU_ASSERT_TRUE(tg_hex_to_u64("ffffffffffffffff", 16, &value));
    CU_ASSERT_EQUAL(value, UINT64_MAX);
    /* Exactly len digits are read, whatever follows. */
    CU_ASSERT_TRUE(tg_hex_to_u64("12zz", 2, &value));
    CU_ASSERT_EQUAL(value, 0x12);
}

static void test_hex_to_u64_rejects(void)
{
    static const struct {
        const char *hex;
        size_t len;
    } cases[] = {
        {"", 0}, {"00000000000000000", 17}, {"FF", 2}, {"aBcd", 4}, {"g", 1}, {"-1", 2},
        {" 1", 2}, {"1 ", 2}, {"0x1", 3}, {"1\0" "2", 3},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t value = 42;
        CU_ASSERT_FALSE(tg_hex_to_u64(cases[i].hex, cases[i].len, &value));
        CU_ASSERT_EQUAL(value, 42);
    }
}

static void test_u64_to_hex_writes_16_lowercase_digits(void)
{
    char hex[TG_SPAN_ID_HEX_LEN + 1];
    memset(hex, 'x', sizeof(hex));
    tg_u64_to_hex(0, hex);
    CU_ASSERT_STRING_EQUAL(hex, "0000000000000000");
    tg_u64_to_hex(0xa2fb4a1d1a96d312ULL, hex);
    CU_ASSERT_STRING_EQUAL(hex, "a2fb4a1d1a96d312");
    tg_u64_to_hex(UINT64_MAX, hex);
    CU_ASSERT_STRING_EQUAL(hex, "ffffffffffffffff");
}

/* Every byte value at every position of the id, as printf writes it. */
static void test_u64_to_hex_writes_every_byte_in_place(void)
{
    int position, byte;
    for (position = 0; position < 8; position++) {
        for (byte = 0; byte < 256; byte++) {
            uint64_t value = ((uint64_t)byte << (8 * position)) | 0x0100000000000001ULL;
            char hex[TG_SPAN_ID_HEX_LEN + 1], want[TG_SPAN_ID_HEX_LEN + 1];
            memset(hex, 'x', sizeof(hex));
            snprintf(want, sizeof(want), "%016" PRIx64, value);
            tg_u64_to_hex(value, hex);
            CU_ASSERT_STRING_EQUAL(hex, want);
        }
    }
}

/* The same digits for raw writing: no NUL, and the end returned. */
static void test_put_hex64_writes_sixteen_lowercase_digits(void)
{
    static const uint64_t values[] = { 0, 1, 0xf, 0x10, 0xabcdef, 0x0123456789abcdefULL,
                                       0xfedcba9876543210ULL, UINT64_MAX, 0x8000000000000000ULL };
    uint64_t mixed = 0x9e3779b97f4a7c15ULL;
    char got[17], want[17];
    size_t i;
    for (i = 0; i < sizeof(values) / sizeof(values[0]) + 1000; i++) {
        uint64_t value = i < sizeof(values) / sizeof(values[0])
                             ? values[i] : (mixed = mixed * 6364136223846793005ULL + 1);
        CU_ASSERT_PTR_EQUAL(tg_put_hex64(got, value), got + 16);
        got[16] = '\0';
        snprintf(want, sizeof(want), "%016" PRIx64, value);
        CU_ASSERT_STRING_EQUAL(got, want);
    }
}

static void test_u64_hex_round_trip(void)
{
    static const uint64_t values[] = {1, 0x10, 0x8000000000000000ULL, 0x0102030405060708ULL,
                                      0xfedcba9876543210ULL};
    size_t i;
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char hex[TG_SPAN_ID_HEX_LEN + 1];
        uint64_t back = 0;
        tg_u64_to_hex(values[i], hex);
        CU_ASSERT_TRUE(tg_hex_to_u64(hex, strlen(hex), &back));
        CU_ASSERT_EQUAL(back, values[i]);
    }
}

static void test_trace_id_from_hex(void)
{
    tg_trace_id_t id;
    CU_ASSERT_TRUE(tg_trace_id_from_hex("463ac35c9f6413ad48485a3953bb6124", 32, &id));
    CU_ASSERT_EQUAL(id.hi, 0x463ac35c9f6413adULL);
    CU_ASSERT_EQUAL(id.lo, 0x48485a3953bb6124ULL);
    /* A 64-bit id, as old B3 callers send it. */
    CU_ASSERT_TRUE(tg_trace_id_from_hex("48485a3953bb6124", 16, &id));
    CU_ASSERT_EQUAL(id.hi, 0);
    CU_ASSERT_EQUAL(id.lo, 0x48485a3953bb6124ULL);
}

static void test_trace_id_from_hex_rejects(void)
{
    static const char *const values[] = {
        "", "48485a3953bb612", "48485a3953bb61240", "463ac35c9f6413ad48485a3953bb612",
        "463ac35c9f6413ad48485a3953bb61240", "463AC35C9F6413AD48485A3953BB6124",
        "463ac35c9f6413ad48485a3953bb612g", "463ac35c9f6413a-48485a3953bb6124", "48485A3953BB6124",
    };
    size_t i;
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        tg_trace_id_t id = {5, 6};
        CU_ASSERT_FALSE(tg_trace_id_from_hex(values[i], strlen(values[i]), &id));
        CU_ASSERT_EQUAL(id.hi, 5);
        CU_ASSERT_EQUAL(id.lo, 6);
    }
}

static void test_trace_id_to_hex(void)
{
    char hex[TG_TRACE_ID_HEX_LEN + 1];
    tg_trace_id_t id = {0x463ac35c9f6413adULL, 0x48485a3953bb6124ULL}, back;
    tg_trace_id_to_hex(id, hex);
    CU_ASSERT_STRING_EQUAL(hex, "463ac35c9f6413ad48485a3953bb6124");
    CU_ASSERT_TRUE(tg_trace_id_from_hex(hex, strlen(hex), &back));
    CU_ASSERT_TRUE(tg_trace_id_equal(back, id));
    /* A 64-bit id widens with leading zeros. */
    id.hi = 0;
    tg_trace_id_to_hex(id, hex);
    CU_ASSERT_STRING_EQUAL(hex, "000000000000000048485a3953bb6124");
}

static void test_zero_and_equality(void)
{
    tg_trace_id_t zero = {0, 0}, low = {0, 1}, high = {1, 0}, both = {1, 1};
    CU_ASSERT_TRUE(tg_trace_id_is_zero(zero));
    CU_ASSERT_FALSE(tg_trace_id_is_zero(low));
    CU_ASSERT_FALSE(tg_trace_id_is_zero(high));
    CU_ASSERT_TRUE(tg_trace_id_equal(both, both));
    CU_ASSERT_FALSE(tg_trace_id_equal(both, low));
    CU_ASSERT_FALSE(tg_trace_id_equal(both, high));
    CU_ASSERT_FALSE(tg_trace_id_equal(low, high));
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t count_repeats(uint64_t *values, size_t n)
{
    size_t i, repeats = 0;
    qsort(values, n, sizeof(*values), compare_u64);
    for (i = 1; i < n; i++)
        repeats += values[i] == values[i - 1];
    return repeats;
}

#define DRAWS 20000

static void test_random_span_ids_nonzero_and_distinct(void)
{
    uint64_t *ids = apr_palloc(tg_test_pool, DRAWS * sizeof(*ids));
    size_t i, zeros = 0;
    for (i = 0; i < DRAWS; i++) {
        ids[i] = tg_random_span_id();
        zeros += ids[i] == 0;
    }
    CU_ASSERT_EQUAL(zeros, 0);
    CU_ASSERT_EQUAL(count_repeats(ids, DRAWS), 0);
}

static tg_trace_id_t random_trace_id(void)
{
    tg_trace_id_t id;
    tg_random_root_ids(&id, NULL);
    return id;
}

static void test_random_trace_ids_nonzero_and_distinct(void)
{
    uint64_t *halves = apr_palloc(tg_test_pool, DRAWS * sizeof(*halves));
    uint64_t high_bits = 0;
    size_t i, zero_low_halves = 0;
    for (i = 0; i < DRAWS; i++) {
        tg_trace_id_t id = random_trace_id();
        zero_low_halves += id.lo == 0;
        halves[i] = id.hi;
        high_bits |= id.hi;
    }
    CU_ASSERT_EQUAL(zero_low_halves, 0);
    /* Full 128-bit ids: the high half is random too. */
    CU_ASSERT_EQUAL(high_bits, UINT64_MAX);
    CU_ASSERT_EQUAL(count_repeats(halves, DRAWS), 0);
}

/* An httpd child's worker threads draw at once: none may get an id another
 * thread got. */
#define DRAWING_THREADS 4

static void *draw_span_ids(void *ids)
{
    size_t i;
    for (i = 0; i < DRAWS; i++)
        ((uint64_t *)ids)[i] = tg_random_span_id();
    return NULL;
}

static void test_threads_drawing_at_once_get_distinct_ids(void)
{
    uint64_t *ids = apr_palloc(tg_test_pool, DRAWING_THREADS * DRAWS * sizeof(*ids));
    pthread_t threads[DRAWING_THREADS];
    int i;
    for (i = 0; i < DRAWING_THREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&threads[i], NULL, draw_span_ids, ids + i * DRAWS) == 0);
    for (i = 0; i < DRAWING_THREADS; i++)
        pthread_join(threads[i], NULL);
    CU_ASSERT_EQUAL(count_repeats(ids, DRAWING_THREADS * DRAWS), 0);
}

/* A forked child (an httpd worker) must not draw the ids its parent draws
 * next, although it starts with a copy of the parent's generator. */
static void test_forked_child_draws_different_ids(void)
{
    uint64_t child_ids[2], parent_ids[2];
    int fds[2], status;
    pid_t pid;
    tg_random_span_id(); /* the parent's generator is seeded before the fork */
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        uint64_t ids[2];
        ids[0] = tg_random_span_id();
        ids[1] = random_trace_id().hi;
        _exit(write(fds[1], ids, sizeof(ids)) == (ssize_t)sizeof(ids) ? 0 : 1);
    }
    close(fds[1]);
    parent_ids[0] = tg_random_span_id();
    parent_ids[1] = random_trace_id().hi;
    CU_ASSERT_EQUAL(read(fds[0], child_ids, sizeof(child_ids)), (ssize_t)sizeof(child_ids));
    close(fds[0]);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_NOT_EQUAL(child_ids[0], 0);
    CU_ASSERT_NOT_EQUAL(child_ids[0], parent_ids[0]);
    CU_ASSERT_NOT_EQUAL(child_ids[1], parent_ids[1]);
}

void tg_test_add_ids(void)
{
    CU_pSuite suite = TG_SUITE("ids");
    TG_TEST(suite, test_hex_to_u64_reads_lowercase_hex);
    TG_TEST(suite, test_hex_to_u64_rejects);
    TG_TEST(suite, test_u64_to_hex_writes_16_lowercase_digits);
    TG_TEST(suite, test_u64_to_hex_writes_every_byte_in_place);
    TG_TEST(suite, test_put_hex64_writes_sixteen_lowercase_digits);
    TG_TEST(suite, test_u64_hex_round_trip);
    TG_TEST(suite, test_trace_id_from_hex);
    TG_TEST(suite, test_trace_id_from_hex_rejects);
    TG_TEST(suite, test_trace_id_to_hex);
    TG_TEST(suite, test_zero_and_equality);
    TG_TEST(suite, test_random_span_ids_nonzero_and_distinct);
    TG_TEST(suite, test_random_trace_ids_nonzero_and_distinct);
    TG_TEST(suite, test_threads_drawing_at_once_get_distinct_ids);
    TG_TEST(suite, test_forked_child_draws_different_ids);
}
