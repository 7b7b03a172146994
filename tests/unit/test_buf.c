#include "unit.h"

#include <apr_strings.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_ids.h"

static void test_starts_empty(void)
{
    tg_buf_t buf;
    memset(&buf, 0x5a, sizeof(buf));
    tg_buf_init(&buf);
    CU_ASSERT_PTR_NULL(buf.data);
    CU_ASSERT_EQUAL(buf.len, 0);
    CU_ASSERT_EQUAL(buf.cap, 0);
    CU_ASSERT_FALSE(buf.failed);
    tg_buf_free(&buf);
}

static void test_grows_one_byte_at_a_time(void)
{
    tg_buf_t buf;
    size_t i;
    tg_buf_init(&buf);
    for (i = 0; i < 5000; i++)
        tg_buf_putc(&buf, (char)('a' + i % 26));
    CU_ASSERT_EQUAL(buf.len, 5000);
    CU_ASSERT(buf.cap > buf.len);
    CU_ASSERT_EQUAL(buf.data[5000], '\0');
    for (i = 0; i < 5000; i++)
        if (buf.data[i] != (char)('a' + i % 26))
            break;
    CU_ASSERT_EQUAL(i, 5000);
    CU_ASSERT_FALSE(buf.failed);
    tg_buf_free(&buf);
}

static void test_appends_large_and_binary_blocks(void)
{
    static const char binary[] = {'x', '\0', 'y'};
    char *block = apr_palloc(tg_test_pool, 100000);
    tg_buf_t buf;
    memset(block, 'q', 100000);
    tg_buf_init(&buf);
    tg_buf_puts(&buf, "head:");
    tg_buf_write(&buf, block, 100000);
    tg_buf_write(&buf, binary, sizeof(binary));
    tg_buf_write(&buf, NULL, 0);
    CU_ASSERT_EQUAL(buf.len, 5 + 100000 + 3);
    CU_ASSERT_EQUAL(memcmp(buf.data, "head:", 5), 0);
    CU_ASSERT_EQUAL(memcmp(buf.data + 5, block, 100000), 0);
    CU_ASSERT_EQUAL(memcmp(buf.data + 100005, binary, 3), 0);
    CU_ASSERT_EQUAL(buf.data[buf.len], '\0');
    tg_buf_free(&buf);
}

/* Every length of append around the edge of the first allocation: the
 * inline path must grow exactly when the bytes and the NUL no longer fit. */
static void test_appends_at_the_edge_of_the_room(void)
{
    char block[300];
    size_t first, second;
    memset(block, 'e', sizeof(block));
    for (first = 250; first <= 256; first++) {
        for (second = 0; second <= 8; second++) {
            tg_buf_t buf;
            tg_buf_init(&buf);
            tg_buf_write(&buf, block, first);
            tg_buf_write(&buf, block, second);
            tg_buf_putc(&buf, 'z');
            CU_ASSERT_EQUAL(buf.len, first + second + 1);
            CU_ASSERT(buf.cap > buf.len);
            CU_ASSERT_EQUAL(buf.data[buf.len - 1], 'z');
            CU_ASSERT_EQUAL(buf.data[buf.len], '\0');
            CU_ASSERT_EQUAL(strspn(buf.data, "e"), first + second);
            tg_buf_free(&buf);
        }
    }
}

static const char *appended_u64(uint64_t value)
{
    tg_buf_t buf;
    char *text;
    tg_buf_init(&buf);
    tg_buf_puts(&buf, "<");
    tg_buf_append_u64(&buf, value);
    tg_buf_puts(&buf, ">");
    text = apr_pstrdup(tg_test_pool, buf.data);
    tg_buf_free(&buf);
    return text;
}

static const char *put_i64(int64_t value)
{
    char text[TG_DECIMAL_MAX + 1];
    *tg_put_i64(text, value) = '\0';
    return apr_psprintf(tg_test_pool, "<%s>", text);
}

static void test_append_u64_at_the_edges(void)
{
    CU_ASSERT_STRING_EQUAL(appended_u64(0), "<0>");
    CU_ASSERT_STRING_EQUAL(appended_u64(7), "<7>");
    CU_ASSERT_STRING_EQUAL(appended_u64(10), "<10>");
    CU_ASSERT_STRING_EQUAL(appended_u64(99), "<99>");
    CU_ASSERT_STRING_EQUAL(appended_u64(100), "<100>");
    CU_ASSERT_STRING_EQUAL(appended_u64(1001), "<1001>");
    CU_ASSERT_STRING_EQUAL(appended_u64(1556604172355737ULL), "<1556604172355737>");
    CU_ASSERT_STRING_EQUAL(appended_u64(UINT64_MAX), "<18446744073709551615>");
    CU_ASSERT_STRING_EQUAL(appended_u64(UINT64_MAX - 1), "<18446744073709551614>");
}

static void test_put_i64_at_the_edges(void)
{
    CU_ASSERT_STRING_EQUAL(put_i64(0), "<0>");
    CU_ASSERT_STRING_EQUAL(put_i64(1), "<1>");
    CU_ASSERT_STRING_EQUAL(put_i64(-1), "<-1>");
    CU_ASSERT_STRING_EQUAL(put_i64(-10), "<-10>");
    CU_ASSERT_STRING_EQUAL(put_i64(-1556604172355737LL), "<-1556604172355737>");
    CU_ASSERT_STRING_EQUAL(put_i64(INT64_MAX), "<9223372036854775807>");
    CU_ASSERT_STRING_EQUAL(put_i64(INT64_MIN), "<-9223372036854775808>");
    CU_ASSERT_STRING_EQUAL(put_i64(INT64_MIN + 1), "<-9223372036854775807>");
}

/* Around every power of ten (where a digit is added) and across many
 * values between, the same text as printf. */
static void test_append_integers_write_what_printf_writes(void)
{
    uint64_t power = 1, mixed = 0x9e3779b97f4a7c15ULL;
    int i;
    for (i = 0; i < 20; i++, power *= 10) {
        uint64_t values[] = { power - 1, power, power + 1, power * 5 + 3 };
        size_t j;
        for (j = 0; j < sizeof(values) / sizeof(values[0]); j++) {
            char want[64];
            snprintf(want, sizeof(want), "<%" PRIu64 ">", values[j]);
            CU_ASSERT_STRING_EQUAL(appended_u64(values[j]), want);
            snprintf(want, sizeof(want), "<%" PRId64 ">", -(int64_t)(values[j] >> 1));
            CU_ASSERT_STRING_EQUAL(put_i64(-(int64_t)(values[j] >> 1)), want);
        }
    }
    for (i = 0; i < 1000; i++) {
        char want[64];
        mixed = mixed * 6364136223846793005ULL + 1442695040888963407ULL;
        snprintf(want, sizeof(want), "<%" PRIu64 ">", mixed >> (i % 64));
        CU_ASSERT_STRING_EQUAL(appended_u64(mixed >> (i % 64)), want);
        snprintf(want, sizeof(want), "<%" PRId64 ">", (int64_t)mixed);
        CU_ASSERT_STRING_EQUAL(put_i64((int64_t)mixed), want);
    }
}

static void test_append_integers_grow_the_buffer(void)
{
    tg_buf_t buf;
    int i;
    tg_buf_init(&buf);
    tg_buf_append_u64(&buf, 5); /* into an empty buffer: allocates */
    CU_ASSERT_STRING_EQUAL(buf.data, "5");
    for (i = 0; i < 100; i++)
        tg_buf_append_u64(&buf, UINT64_MAX);
    CU_ASSERT_EQUAL(buf.len, 1 + 100 * 20);
    CU_ASSERT_EQUAL(strlen(buf.data), buf.len);
    CU_ASSERT_EQUAL(memcmp(buf.data + buf.len - 20, "18446744073709551615", 20), 0);
    tg_buf_free(&buf);
}

static void test_rewind(void)
{
    tg_buf_t buf;
    tg_buf_init(&buf);
    tg_buf_rewind(&buf, 3); /* nothing there yet: no effect */
    CU_ASSERT_EQUAL(buf.len, 0);
    tg_buf_puts(&buf, "span,span,");
    tg_buf_rewind(&buf, 9);
    CU_ASSERT_STRING_EQUAL(buf.data, "span,span");
    CU_ASSERT_EQUAL(buf.len, 9);
    tg_buf_rewind(&buf, 50); /* longer than the contents: no effect */
    CU_ASSERT_STRING_EQUAL(buf.data, "span,span");
    CU_ASSERT_EQUAL(buf.len, 9);
    tg_buf_rewind(&buf, 0);
    CU_ASSERT_STRING_EQUAL(buf.data, "");
    tg_buf_putc(&buf, 'x');
    CU_ASSERT_STRING_EQUAL(buf.data, "x");
    tg_buf_free(&buf);
}

static void test_reset_keeps_memory(void)
{
    tg_buf_t buf;
    char *data;
    size_t cap;
    char block[2000];
    memset(block, '1', sizeof(block));
    tg_buf_init(&buf);
    tg_buf_write(&buf, block, 2000);
    data = buf.data;
    cap = buf.cap;
    tg_buf_reset(&buf);
    CU_ASSERT_EQUAL(buf.len, 0);
    CU_ASSERT_PTR_EQUAL(buf.data, data);
    CU_ASSERT_EQUAL(buf.cap, cap);
    CU_ASSERT_STRING_EQUAL(buf.data, "");
    /* The next batch fits in what is there. */
    tg_buf_write(&buf, block, 1500);
    CU_ASSERT_PTR_EQUAL(buf.data, data);
    CU_ASSERT_EQUAL(buf.cap, cap);
    CU_ASSERT_EQUAL(buf.len, 1500);
    tg_buf_free(&buf);
    CU_ASSERT_PTR_NULL(buf.data);
    CU_ASSERT_EQUAL(buf.cap, 0);
    CU_ASSERT_EQUAL(buf.len, 0);
}

static void test_impossible_growth_fails_and_keeps_contents(void)
{
    tg_buf_t buf;
    tg_buf_init(&buf);
    tg_buf_puts(&buf, "kept");
    CU_ASSERT_FALSE(tg_buf_room_for(&buf, SIZE_MAX / 2));
    CU_ASSERT_TRUE(buf.failed);
    CU_ASSERT_STRING_EQUAL(buf.data, "kept");
    CU_ASSERT_EQUAL(buf.len, 4);
    /* Once failed, later appends are dropped so the caller checks once. */
    tg_buf_puts(&buf, "more");
    tg_buf_putc(&buf, 'c');
    tg_buf_append_u64(&buf, 6);
    CU_ASSERT_STRING_EQUAL(buf.data, "kept");
    CU_ASSERT_TRUE(buf.failed);
    /* A rewind keeps what came before the failure and takes appends again. */
    tg_buf_rewind(&buf, 2);
    CU_ASSERT_FALSE(buf.failed);
    tg_buf_puts(&buf, "ep");
    CU_ASSERT_STRING_EQUAL(buf.data, "keep");
    CU_ASSERT_EQUAL(buf.len, 4);
    CU_ASSERT_FALSE(tg_buf_room_for(&buf, SIZE_MAX / 2));
    CU_ASSERT_TRUE(buf.failed);
    /* A reset starts a clean batch. */
    tg_buf_reset(&buf);
    CU_ASSERT_FALSE(buf.failed);
    tg_buf_puts(&buf, "new");
    CU_ASSERT_STRING_EQUAL(buf.data, "new");
    tg_buf_free(&buf);
}

/* Every number below 10^5 and a spread of eight-digit ones, each of which
 * the writers take in one piece, and what the raw writer returns: the end
 * of the digits, which are all it wrote as far as the text goes. */
static void test_put_integers_write_what_printf_writes(void)
{
    uint64_t mixed = 0x2545f4914f6cdd1dULL;
    char got[TG_DECIMAL_MAX + 1], want[32];
    uint64_t value;
    int i;
    for (value = 0; value < 100000; value++) {
        char *end = tg_put_u64(got, value);
        CU_ASSERT_EQUAL_FATAL((size_t)(end - got), (size_t)snprintf(want, sizeof(want), "%" PRIu64, value));
        CU_ASSERT_EQUAL_FATAL(memcmp(got, want, strlen(want)), 0);
    }
    for (i = 0; i < 100000; i++) {
        mixed ^= mixed << 13, mixed ^= mixed >> 7, mixed ^= mixed << 17;
        value = mixed % 100000000 * (i % 2 ? 100000000 : 1) + mixed % 7;
        *tg_put_u64(got, value) = '\0';
        snprintf(want, sizeof(want), "%" PRIu64, value);
        CU_ASSERT_STRING_EQUAL_FATAL(got, want);
        *tg_put_i64(got, -(int64_t)(mixed >> 1)) = '\0';
        snprintf(want, sizeof(want), "%" PRId64, -(int64_t)(mixed >> 1));
        CU_ASSERT_STRING_EQUAL_FATAL(got, want);
    }
}

/* Raw writing: room made once, pieces written without tests, the buffer
 * closed where they end. */
static void test_raw_writes_close_where_they_end(void)
{
    tg_buf_t buf;
    char *p;
    tg_buf_init(&buf);
    tg_buf_puts(&buf, "at:");
    CU_ASSERT_FATAL(tg_buf_room_for(&buf, 2 * TG_DECIMAL_MAX + 16));
    p = tg_buf_tail(&buf);
    p = TG_PUT_LITERAL(p, "[");
    p = tg_put_i64(p, -42);
    p = TG_PUT_LITERAL(p, ",");
    p = tg_put_hex64(p, 0xbeef);
    tg_buf_wrote(&buf, p);
    CU_ASSERT_STRING_EQUAL(buf.data, "at:[-42,000000000000beef");
    CU_ASSERT_EQUAL(buf.len, strlen(buf.data));
    tg_buf_free(&buf);
}

static void test_detach_hands_over_the_contents(void)
{
    tg_buf_t buf;
    char *data;
    tg_buf_init(&buf);
    CU_ASSERT_PTR_NULL(tg_buf_detach(&buf)); /* nothing ever written */
    tg_buf_puts(&buf, "payload");
    data = tg_buf_detach(&buf);
    CU_ASSERT_STRING_EQUAL(data, "payload");
    CU_ASSERT_PTR_NULL(buf.data);
    CU_ASSERT_EQUAL(buf.len, 0);
    CU_ASSERT_EQUAL(buf.cap, 0);
    /* The buffer goes on, apart from the data handed over. */
    tg_buf_puts(&buf, "next");
    CU_ASSERT_STRING_EQUAL(buf.data, "next");
    CU_ASSERT_STRING_EQUAL(data, "payload");
    free(data);
    tg_buf_free(&buf);
}

void tg_test_add_buf(void)
{
    CU_pSuite suite = TG_SUITE("buf");
    TG_TEST(suite, test_starts_empty);
    TG_TEST(suite, test_grows_one_byte_at_a_time);
    TG_TEST(suite, test_appends_large_and_binary_blocks);
    TG_TEST(suite, test_appends_at_the_edge_of_the_room);
    TG_TEST(suite, test_append_u64_at_the_edges);
    TG_TEST(suite, test_put_i64_at_the_edges);
    TG_TEST(suite, test_append_integers_write_what_printf_writes);
    TG_TEST(suite, test_append_integers_grow_the_buffer);
    TG_TEST(suite, test_put_integers_write_what_printf_writes);
    TG_TEST(suite, test_raw_writes_close_where_they_end);
    TG_TEST(suite, test_detach_hands_over_the_contents);
    TG_TEST(suite, test_rewind);
    TG_TEST(suite, test_reset_keeps_memory);
    TG_TEST(suite, test_impossible_growth_fails_and_keeps_contents);
}
