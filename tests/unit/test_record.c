#include "unit.h"

#include "tg_buf.h"
#include "tg_queue.h"
#include "tg_record.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

#define T0 ((apr_time_t)1556604172355737)
#define HEADER_BYTES 62 /* magic, version, flags, 6 x u64, u32 dropped, u16 status, 2 x u16 port */
#define VERSION 4
#define MAGIC_AND_VERSION "TG\x04"
#define FIXED_STRINGS 9 /* name, method, path, two endpoints' service, ipv4, ipv6 */
#define BIG (32 * 1024)

/* ---- helpers ---- */

/* Bit-at-a-time CRC-32C (Castagnoli), independent of the one under test. */
static uint32_t reference_crc32c(const unsigned char *bytes, size_t len)
{
    uint32_t crc = 0xFFFFFFFFU;
    size_t i;
    int bit;
    for (i = 0; i < len; i++) {
        crc ^= bytes[i];
        for (bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78U : crc >> 1;
    }
    return ~crc;
}

static void put_le(unsigned char *at, uint64_t value, int bytes)
{
    int i;
    for (i = 0; i < bytes; i++)
        at[i] = (unsigned char)(value >> (8 * i));
}

static uint64_t get_le(const unsigned char *at, int bytes)
{
    uint64_t value = 0;
    int i;
    for (i = bytes - 1; i >= 0; i--)
        value = (value << 8) | at[i];
    return value;
}

/* Rewrites the trailing CRC so that only the change under test is wrong. */
static void reseal(unsigned char *record, size_t len)
{
    put_le(record + len - 4, reference_crc32c(record, len - 4), 4);
}

/* Decodes from a heap copy of exactly len bytes, so that valgrind and
 * ASan see any read past the end. */
static apr_status_t decode_exact(const unsigned char *record, size_t len, tg_span_t **span)
{
    unsigned char *copy = malloc(len ? len : 1);
    apr_status_t rv;
    memcpy(copy, record, len);
    rv = tg_record_decode(copy, len, tg_test_pool, span);
    free(copy);
    return rv;
}

static char *repeat(char c, size_t n)
{
    char *s = apr_palloc(tg_test_pool, n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* A span with every field set, one NULL string and one empty one. */
static tg_span_t *typical_span(void)
{
    tg_context_t parent;
    tg_span_t *span;
    memset(&parent, 0, sizeof(parent));
    parent.trace_id.hi = 0x4e441824ec2b6a44ULL;
    parent.trace_id.lo = 0xffdc9bb9a6453df3ULL;
    parent.span_id = 0x6b221d5bc9e6496cULL;
    parent.debug = 1;
    span = tg_span_start(tg_test_pool, TG_SPAN_CLIENT, "get /api", &parent, T0);
    span->shared = 1;
    span->error = 1;
    span->dropped = 3;
    span->local.service_name = "keystone";
    span->local.ipv4 = "192.168.99.1";
    span->local.ipv6 = "2001:db8::c001";
    span->local.port = 5000;
    span->remote.service_name = NULL;
    span->remote.ipv4 = "172.19.0.2";
    span->remote.ipv6 = "";
    span->remote.port = 58648;
    tg_span_tag(span, "http.method", "GET");
    tg_span_tag(span, "http.path", "/v3/auth/tokens?x=\"y\"");
    tg_span_tag(span, "empty", "");
    tg_span_annotate(span, T0 + 7, "wsgi.start");
    tg_span_finish(span, T0 + 1431);
    return span;
}

/* Every bound reached: the largest record a span can make. */
static tg_span_t *largest_span(void)
{
    tg_span_t *span;
    int i;
    span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, repeat('n', TG_SPAN_MAX_STRING), NULL, T0);
    span->method = repeat('m', TG_SPAN_MAX_STRING);
    span->path = repeat('p', TG_SPAN_MAX_STRING);
    span->status_code = 999;
    span->local.service_name = repeat('s', TG_SPAN_MAX_STRING);
    span->local.ipv4 = repeat('4', TG_SPAN_MAX_STRING);
    span->local.ipv6 = repeat('6', TG_SPAN_MAX_STRING);
    span->remote.service_name = repeat('S', TG_SPAN_MAX_STRING);
    span->remote.ipv4 = repeat('f', TG_SPAN_MAX_STRING);
    span->remote.ipv6 = repeat('x', TG_SPAN_MAX_STRING);
    span->local.port = 65535;
    span->remote.port = 1;
    for (i = 0; i < TG_SPAN_MAX_TAGS; i++) {
        char *key = repeat('k', TG_SPAN_MAX_STRING);
        key[0] = (char)('A' + i);
        tg_span_tag(span, key, repeat('v', TG_SPAN_MAX_STRING));
    }
    for (i = 0; i < TG_SPAN_MAX_NOTES_BETWEEN; i++)
        tg_span_annotate(span, T0 + i, "a");
    tg_span_finish(span, T0 + 99);
    for (i = 0; i < span->annotations->nelts; i++)
        APR_ARRAY_IDX(span->annotations, i, tg_annotation_t).value = repeat('a', TG_SPAN_MAX_STRING);
    span->dropped = 0xFFFFFFFFU;
    return span;
}

static void assert_same_string(const char *got, const char *want)
{
    if (!want) {
        CU_ASSERT_PTR_NULL(got);
    }
    else if (!got) {
        CU_FAIL("NULL where a string was expected");
    }
    else {
        CU_ASSERT_STRING_EQUAL(got, want);
    }
}

static void assert_same_endpoint(const tg_endpoint_t *got, const tg_endpoint_t *want)
{
    assert_same_string(got->service_name, want->service_name);
    assert_same_string(got->ipv4, want->ipv4);
    assert_same_string(got->ipv6, want->ipv6);
    CU_ASSERT_EQUAL(got->port, want->port);
}

static int length_of(const apr_array_header_t *array)
{
    return array ? array->nelts : 0;
}

static void assert_same_span(const tg_span_t *got, const tg_span_t *want)
{
    int i;
    CU_ASSERT_TRUE(tg_trace_id_equal(got->trace_id, want->trace_id));
    CU_ASSERT_EQUAL(got->id, want->id);
    CU_ASSERT_EQUAL(got->parent_id, want->parent_id);
    CU_ASSERT_EQUAL(got->kind, want->kind);
    assert_same_string(got->name, want->name);
    assert_same_string(got->method, want->method);
    assert_same_string(got->path, want->path);
    CU_ASSERT_EQUAL(got->status_code, want->status_code);
    assert_same_endpoint(&got->local, &want->local);
    assert_same_endpoint(&got->remote, &want->remote);
    CU_ASSERT_EQUAL(got->timestamp, want->timestamp);
    CU_ASSERT_EQUAL(got->duration, want->duration);
    CU_ASSERT_EQUAL(!!got->shared, !!want->shared);
    CU_ASSERT_EQUAL(!!got->debug, !!want->debug);
    CU_ASSERT_EQUAL(!!got->error, !!want->error);
    CU_ASSERT_EQUAL(!!got->finished, !!want->finished);
    CU_ASSERT_EQUAL(got->dropped, want->dropped);
    CU_ASSERT_EQUAL_FATAL(length_of(got->tags), length_of(want->tags));
    for (i = 0; i < length_of(got->tags); i++) {
        const tg_tag_t *g = &APR_ARRAY_IDX(got->tags, i, tg_tag_t);
        const tg_tag_t *w = &APR_ARRAY_IDX(want->tags, i, tg_tag_t);
        assert_same_string(g->key, w->key);
        assert_same_string(g->value, w->value);
    }
    CU_ASSERT_EQUAL_FATAL(length_of(got->annotations), length_of(want->annotations));
    for (i = 0; i < length_of(got->annotations); i++) {
        const tg_annotation_t *g = &APR_ARRAY_IDX(got->annotations, i, tg_annotation_t);
        const tg_annotation_t *w = &APR_ARRAY_IDX(want->annotations, i, tg_annotation_t);
        CU_ASSERT_EQUAL(g->timestamp, w->timestamp);
        assert_same_string(g->value, w->value);
    }
}

static size_t encode_or_fail(const tg_span_t *span, unsigned char *buf, size_t cap)
{
    size_t len = tg_record_encode(span, buf, cap);
    CU_ASSERT_FATAL(len > 0);
    return len;
}

/* ---- a record assembled by hand, to reach what our encoder never writes ---- */

static void hand_uint(tg_buf_t *b, uint64_t value, int bytes)
{
    unsigned char le[8];
    put_le(le, value, bytes);
    tg_buf_write(b, le, (size_t)bytes);
}

static void hand_string(tg_buf_t *b, const char *str, size_t len)
{
    hand_uint(b, len, 2);
    tg_buf_write(b, str, len);
    tg_buf_putc(b, '\0');
}

/* Header of a SERVER span with its ports, then `strings` copies of the
 * given string (of the FIXED_STRINGS a record has; the rest NULL). */
static void hand_head(tg_buf_t *b, unsigned flags, const char *str, size_t len, int strings)
{
    int i;
    tg_buf_write(b, MAGIC_AND_VERSION, 3);
    hand_uint(b, flags, 1);
    hand_uint(b, 0x1111, 8);
    hand_uint(b, 0x2222, 8);
    hand_uint(b, 0x3333, 8);
    hand_uint(b, 0, 8);
    hand_uint(b, (uint64_t)T0, 8);
    hand_uint(b, 25, 8);
    hand_uint(b, 0, 4);
    hand_uint(b, 0, 2);
    hand_uint(b, 80, 2);
    hand_uint(b, 0, 2);
    for (i = 0; i < FIXED_STRINGS; i++) {
        if (i < strings)
            hand_string(b, str, len);
        else
            hand_uint(b, 0xFFFF, 2);
    }
}

static void hand_tags(tg_buf_t *b, int count)
{
    int i;
    hand_uint(b, (uint64_t)count, 2);
    for (i = 0; i < count; i++) {
        hand_string(b, "k", 1);
        hand_string(b, "v", 1);
    }
}

static void hand_notes(tg_buf_t *b, int count)
{
    int i;
    hand_uint(b, (uint64_t)count, 2);
    for (i = 0; i < count; i++) {
        hand_uint(b, (uint64_t)(T0 + i), 8);
        hand_string(b, "n", 1);
    }
}

static apr_status_t decode_sealed(tg_buf_t *b, tg_span_t **span)
{
    apr_status_t rv;
    hand_uint(b, 0, 1); /* no transfer field */
    hand_uint(b, 0, 4);
    reseal((unsigned char *)b->data, b->len);
    CU_ASSERT_FATAL(!b->failed);
    rv = decode_exact((const unsigned char *)b->data, b->len, span);
    tg_buf_free(b);
    return rv;
}

static apr_status_t decode_hand_record(unsigned flags, size_t string_len, int tags, int notes)
{
    tg_buf_t b;
    tg_span_t *span;
    tg_buf_init(&b);
    hand_head(&b, flags, repeat('x', string_len), string_len, 1);
    hand_tags(&b, tags);
    hand_notes(&b, notes);
    return decode_sealed(&b, &span);
}

/* ---- round trips ---- */

static void test_typical_span_round_trips(void)
{
    unsigned char buf[BIG];
    tg_span_t *span = typical_span();
    tg_span_t *back = NULL;
    size_t len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    assert_same_span(back, span);
}

static void test_every_kind_round_trips(void)
{
    unsigned char buf[BIG];
    tg_span_kind_t kind;
    for (kind = TG_SPAN_SERVER; kind <= TG_SPAN_INTERNAL; kind++) {
        tg_span_t *span = tg_span_start(tg_test_pool, kind, "k", NULL, T0);
        tg_span_t *back = NULL;
        size_t len = encode_or_fail(span, buf, sizeof(buf));
        CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
        CU_ASSERT_EQUAL(back->kind, kind);
        CU_ASSERT_FALSE(back->finished);
    }
}

static void test_largest_span_round_trips(void)
{
    static unsigned char buf[BIG];
    tg_span_t *span = largest_span();
    tg_span_t *back = NULL;
    size_t len = encode_or_fail(span, buf, sizeof(buf));
    /* the layout as documented in tg_record.c, every string full */
    size_t string = 2 + TG_SPAN_MAX_STRING + 1;
    CU_ASSERT_EQUAL(len, HEADER_BYTES + FIXED_STRINGS * string + 2 + TG_SPAN_MAX_TAGS * 2 * string
                             + 2 + TG_SPAN_MAX_NOTES_BETWEEN * (8 + string) + 1 + 4);
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    assert_same_span(back, span);
}

/* The transfer's numbers travel as such, only those known. */
static void test_transfer_round_trips(void)
{
    unsigned char buf[BIG];
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "upload", NULL, T0);
    tg_span_t *back = NULL;
    apr_size_t len, plain_len;
    tg_span_finish(span, T0 + 50);
    plain_len = encode_or_fail(span, buf, sizeof(buf));
    span->transfer = TG_TRANSFER_ALL;
    span->body_read_at = T0 + 20;
    span->first_byte_at = T0 + 40;
    span->request_bytes = 150000;
    span->response_bytes = 5000000000ULL;
    len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL(len, plain_len + 4 * 8);
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    CU_ASSERT_EQUAL(back->transfer, TG_TRANSFER_ALL);
    CU_ASSERT_EQUAL(back->body_read_at, T0 + 20);
    CU_ASSERT_EQUAL(back->first_byte_at, T0 + 40);
    CU_ASSERT_EQUAL(back->request_bytes, 150000);
    CU_ASSERT_EQUAL(back->response_bytes, 5000000000ULL);
    span->transfer = TG_TRANSFER_RESPONSE_BYTES;
    len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL(len, plain_len + 8);
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    CU_ASSERT_EQUAL(back->transfer, TG_TRANSFER_RESPONSE_BYTES);
    CU_ASSERT_EQUAL(back->response_bytes, 5000000000ULL);
}

/* A transfer byte with a bit no field has, or values the record does not
 * hold, is no record. */
static void test_bad_transfer_is_rejected(void)
{
    tg_buf_t b;
    tg_span_t *span;
    tg_buf_init(&b);
    hand_head(&b, 0x40, "svc", 3, 2);
    hand_tags(&b, 0);
    hand_notes(&b, 0);
    hand_uint(&b, 0x10, 1);
    hand_uint(&b, 0, 4);
    reseal((unsigned char *)b.data, b.len);
    CU_ASSERT_EQUAL(decode_exact((const unsigned char *)b.data, b.len, &span), APR_EINVAL);
    tg_buf_free(&b);
    tg_buf_init(&b);
    hand_head(&b, 0x40, "svc", 3, 2);
    hand_tags(&b, 0);
    hand_notes(&b, 0);
    hand_uint(&b, TG_TRANSFER_FIRST_BYTE | TG_TRANSFER_RESPONSE_BYTES, 1);
    hand_uint(&b, T0, 8); /* the first byte's time, and no length after it */
    hand_uint(&b, 0, 4);
    reseal((unsigned char *)b.data, b.len);
    CU_ASSERT_EQUAL(decode_exact((const unsigned char *)b.data, b.len, &span), APR_EINVAL);
    tg_buf_free(&b);
}

static void test_minimal_span_round_trips_nulls(void)
{
    unsigned char buf[BIG];
    tg_span_t *span = apr_pcalloc(tg_test_pool, sizeof(*span)); /* no strings, no arrays */
    tg_span_t *back = NULL;
    size_t len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    assert_same_span(back, span);
    CU_ASSERT_PTR_NULL(back->name);
    CU_ASSERT_PTR_NULL(back->method);
    CU_ASSERT_PTR_NULL(back->local.service_name);
    CU_ASSERT_PTR_NULL(back->tags);
    CU_ASSERT_PTR_NULL(back->annotations);
}

/* Every length a string is copied by in its own way (none, 1-3, 4-7, 8-16,
 * longer): each byte different, so that a copy that overlaps wrongly or
 * stops short shows. */
static void test_strings_of_every_short_length_round_trip(void)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN0123456789";
    unsigned char buf[BIG];
    size_t n;
    for (n = 0; n < sizeof(alphabet); n++) {
        const char *text = apr_pstrndup(tg_test_pool, alphabet, n);
        tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, text, NULL, T0);
        tg_span_t *back = NULL;
        size_t len;
        span->method = apr_pstrndup(tg_test_pool, alphabet + 1, n ? n - 1 : 0);
        span->path = text;
        span->local.service_name = apr_pstrndup(tg_test_pool, alphabet + 2, n / 2);
        tg_span_tag(span, text[0] ? text : "empty", text);
        tg_span_annotate(span, T0 + 1, text);
        len = encode_or_fail(span, buf, sizeof(buf));
        CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
        assert_same_span(back, span);
        CU_ASSERT_STRING_EQUAL(back->path, text);
    }
}

static void test_null_and_empty_strings_stay_apart(void)
{
    unsigned char buf[BIG];
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "", NULL, T0);
    tg_span_t *back = NULL;
    size_t len;
    span->local.ipv4 = NULL;
    span->local.ipv6 = "";
    len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back->name);
    CU_ASSERT_STRING_EQUAL(back->name, "");
    CU_ASSERT_PTR_NULL(back->local.ipv4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back->local.ipv6);
    CU_ASSERT_STRING_EQUAL(back->local.ipv6, "");
}

static void test_decoded_span_lives_in_the_pool_and_grows(void)
{
    unsigned char buf[BIG];
    tg_span_t *back = NULL;
    size_t len = encode_or_fail(typical_span(), buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    CU_ASSERT_PTR_EQUAL(back->pool, tg_test_pool);
    /* the buffer is gone: nothing may point into it */
    memset(buf, 0, len);
    CU_ASSERT_STRING_EQUAL(back->name, "get /api");
    tg_span_tag(back, "added", "later");
    tg_span_tag(back, "http.method", "POST");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(back, "added"), "later");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(back, "http.method"), "POST");
}

/* The decoder does not zero the span it allocates: decoded into memory
 * that held other bytes, every member is still the record's (or, for what
 * the record does not carry, a new span's). */
static void test_decoded_span_owes_nothing_to_old_bytes(void)
{
    unsigned char buf[BIG];
    tg_span_t *minimal = apr_pcalloc(tg_test_pool, sizeof(*minimal));
    const tg_span_t *spans[2];
    apr_pool_t *pool;
    int i;
    spans[0] = typical_span();
    spans[1] = minimal;
    CU_ASSERT_EQUAL_FATAL(apr_pool_create(&pool, tg_test_pool), APR_SUCCESS);
    for (i = 0; i < 2; i++) {
        tg_span_t *back = NULL;
        size_t len = encode_or_fail(spans[i], buf, sizeof(buf));
        /* A cleared pool hands its memory out again from the start. */
        memset(apr_palloc(pool, BIG), 0xA5, BIG);
        apr_pool_clear(pool);
        CU_ASSERT_EQUAL_FATAL(tg_record_decode(buf, len, pool, &back), APR_SUCCESS);
        assert_same_span(back, spans[i]);
        CU_ASSERT_PTR_EQUAL(back->pool, pool);
        CU_ASSERT_TRUE(back->sampled);
        CU_ASSERT_EQUAL(back->w3c_flags, 0);
    }
    apr_pool_destroy(pool);
}

/* ---- what a span filled by hand cannot smuggle through ---- */

static void test_overfull_hand_span_counts_what_is_left_out(void)
{
    unsigned char buf[BIG];
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_t *back = NULL;
    size_t len;
    int i;
    span->tags = apr_array_make(tg_test_pool, 1, sizeof(tg_tag_t));
    span->annotations = apr_array_make(tg_test_pool, 1, sizeof(tg_annotation_t));
    for (i = 0; i < TG_SPAN_MAX_TAGS + 6; i++) {
        tg_tag_t *tag = apr_array_push(span->tags);
        tag->key = apr_psprintf(tg_test_pool, "k%d", i);
        tag->value = "v";
    }
    for (i = 0; i < TG_SPAN_MAX_ANNOTATIONS + 2; i++) {
        tg_annotation_t *note = apr_array_push(span->annotations);
        note->timestamp = T0;
        note->value = "n";
    }
    span->dropped = 1;
    len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    CU_ASSERT_EQUAL(back->tags->nelts, TG_SPAN_MAX_TAGS);
    CU_ASSERT_EQUAL(back->annotations->nelts, TG_SPAN_MAX_NOTES_BETWEEN);
    /* 1 before, 6 tags, 4 of the 18 notes between the first and the last */
    CU_ASSERT_EQUAL(back->dropped, 1 + 6 + 4);
}

static void test_long_hand_string_is_cut(void)
{
    unsigned char buf[BIG];
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    tg_span_t *back = NULL;
    size_t len;
    span->local.service_name = repeat('s', TG_SPAN_MAX_STRING + 40);
    len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    CU_ASSERT_STRING_EQUAL(back->local.service_name, repeat('s', TG_SPAN_MAX_STRING));
}

/* ---- a span larger than its room ---- */

#define FILLER_TAGS (TG_SPAN_MAX_TAGS - 1)
#define SENTINEL 0xA5

/* A server span as the module makes it, every bound reached: 23 tags of
 * full length and the error tag, 16 notes and most strings at full length. */
static tg_span_t *bounded_server_span(void)
{
    tg_context_t parent;
    tg_span_t *span;
    int i;
    memset(&parent, 0, sizeof(parent));
    parent.trace_id.hi = 0x4e441824ec2b6a44ULL;
    parent.trace_id.lo = 0xffdc9bb9a6453df3ULL;
    parent.span_id = 0x6b221d5bc9e6496cULL;
    span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, repeat('n', TG_SPAN_MAX_STRING), &parent, T0);
    span->local.service_name = repeat('s', TG_SPAN_MAX_STRING);
    span->local.ipv4 = "192.168.99.1";
    span->local.port = 443;
    span->remote.service_name = repeat('r', TG_SPAN_MAX_STRING);
    span->remote.ipv6 = "2001:db8:85a3::8a2e:370:7334";
    span->remote.port = 58648;
    tg_span_tag(span, "http.method", "GET");
    for (i = 0; i < FILLER_TAGS; i++) {
        if (i == FILLER_TAGS / 2)
            tg_span_tag(span, "http.path", repeat('p', TG_SPAN_MAX_STRING));
        tg_span_tag(span, apr_psprintf(tg_test_pool, "%03d%s", i, repeat('k', TG_SPAN_MAX_STRING - 3)),
                    repeat('v', TG_SPAN_MAX_STRING));
    }
    tg_span_tag(span, "http.status_code", "500");
    tg_span_tag(span, "error", "500");
    for (i = 1; i < TG_SPAN_MAX_ANNOTATIONS - 1; i++)
        tg_span_annotate(span, T0 + i, "a");
    tg_span_finish(span, T0 + 99);
    for (i = 0; i < span->annotations->nelts; i++)
        APR_ARRAY_IDX(span->annotations, i, tg_annotation_t).value = repeat('a', TG_SPAN_MAX_STRING);
    span->error = 1;
    span->dropped = 2;
    return span;
}

static int is_filler_key(const char *key)
{
    return key && strlen(key) == TG_SPAN_MAX_STRING;
}

static size_t full_length(const tg_span_t *span)
{
    static unsigned char buf[BIG];
    return encode_or_fail(span, buf, sizeof(buf));
}

/* Encodes into cap bytes (checking that nothing is written past them) and
 * decodes the record. */
static tg_span_t *fit(const tg_span_t *span, size_t cap, size_t *len)
{
    static unsigned char buf[BIG + 1];
    tg_span_t *back = NULL;
    memset(buf, SENTINEL, cap + 1);
    *len = tg_record_encode(span, buf, cap);
    CU_ASSERT_FATAL(*len > 0 && *len <= cap);
    CU_ASSERT_EQUAL(buf[cap], SENTINEL);
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, *len, &back), APR_SUCCESS);
    return back;
}

static void assert_prefix(const char *got, const char *want)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_FATAL(strlen(got) <= strlen(want));
    CU_ASSERT_EQUAL(memcmp(got, want, strlen(got)), 0);
}

static const tg_annotation_t *note_of(const tg_span_t *span, int i)
{
    return &APR_ARRAY_IDX(span->annotations, i, tg_annotation_t);
}

static const tg_tag_t *tag_of(const tg_span_t *span, int i)
{
    return &APR_ARRAY_IDX(span->tags, i, tg_tag_t);
}

/* What no degradation may lose: ids, times, flags (so the first and last
 * notes), the HTTP fields (the path perhaps cut) and the error tag. */
static void assert_essentials_kept(const tg_span_t *back, const tg_span_t *span)
{
    int last = tg_span_note_count(span) - 1;
    CU_ASSERT_TRUE(tg_trace_id_equal(back->trace_id, span->trace_id));
    CU_ASSERT_EQUAL(back->id, span->id);
    CU_ASSERT_EQUAL(back->parent_id, span->parent_id);
    CU_ASSERT_EQUAL(back->kind, span->kind);
    CU_ASSERT_EQUAL(back->timestamp, span->timestamp);
    CU_ASSERT_EQUAL(back->duration, span->duration);
    CU_ASSERT_EQUAL(back->error, span->error);
    CU_ASSERT_EQUAL(back->finished, span->finished);
    CU_ASSERT_EQUAL(tg_span_note_at(back, 0).timestamp, tg_span_note_at(span, 0).timestamp);
    CU_ASSERT_EQUAL(tg_span_note_at(back, tg_span_note_count(back) - 1).timestamp,
                    tg_span_note_at(span, last).timestamp);
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(back, "http.method"), "GET");
    assert_prefix(tg_span_tag_value(back, "http.path"), tg_span_tag_value(span, "http.path"));
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(back, "http.status_code"), "500");
    CU_ASSERT_STRING_EQUAL(tg_span_tag_value(back, "error"), "500");
}

static void test_span_at_every_bound_fits_a_queue_slot(void)
{
    tg_span_t *span = bounded_server_span(), *back;
    size_t len;
    CU_ASSERT(full_length(span) > 7 * TG_QUEUE_SLOT_BYTES);
    back = fit(span, TG_QUEUE_SLOT_BYTES, &len);
    assert_essentials_kept(back, span);
    CU_ASSERT(back->dropped > span->dropped);
    /* the addresses are short: no cut reaches them */
    CU_ASSERT_STRING_EQUAL(back->local.ipv4, "192.168.99.1");
    CU_ASSERT_STRING_EQUAL(back->remote.ipv6, "2001:db8:85a3::8a2e:370:7334");
}

/* Strings are cut last, to the longest length that fits, all to the same
 * length: 23 filler tags, 14 notes and 4 strings (the name, both
 * services, the path) are left out or cut. */
static void test_strings_are_cut_last_and_evenly(void)
{
    tg_span_t *span = bounded_server_span(), *back;
    size_t len, cut;
    back = fit(span, TG_RECORD_MIN_CAP, &len);
    CU_ASSERT_EQUAL_FATAL(back->tags->nelts, 1);
    CU_ASSERT_PTR_NULL(back->annotations);
    cut = strlen(back->name);
    CU_ASSERT(cut >= 64 && cut < TG_SPAN_MAX_STRING);
    CU_ASSERT_EQUAL(strlen(back->local.service_name), cut);
    CU_ASSERT_EQUAL(strlen(back->remote.service_name), cut);
    CU_ASSERT_EQUAL(strlen(back->path), cut);
    CU_ASSERT_STRING_EQUAL(back->method, "GET");
    /* one byte more of each would not have fitted */
    CU_ASSERT(len + 4 > TG_RECORD_MIN_CAP);
    CU_ASSERT_EQUAL(back->dropped, span->dropped + FILLER_TAGS + TG_SPAN_MAX_NOTES_BETWEEN + 4);
}

/* With just enough room for all but three filler tags, the last three go;
 * the HTTP tags after them stay, as do every note and string. */
static void test_tags_go_first_from_the_last(void)
{
    tg_span_t *span = bounded_server_span(), *back;
    size_t tag_bytes = 2 * (2 + TG_SPAN_MAX_STRING + 1), len;
    int i, filler = 0;
    back = fit(span, full_length(span) - 3 * tag_bytes, &len);
    assert_essentials_kept(back, span);
    CU_ASSERT_EQUAL(back->dropped, span->dropped + 3);
    CU_ASSERT_EQUAL_FATAL(back->tags->nelts, TG_SPAN_MAX_TAGS - 3);
    for (i = 0; i < back->tags->nelts; i++) {
        const char *key = tag_of(back, i)->key;
        if (is_filler_key(key))
            CU_ASSERT_EQUAL(atoi(key), filler++); /* in order, none skipped */
    }
    CU_ASSERT_EQUAL(filler, FILLER_TAGS - 3);
    CU_ASSERT_STRING_EQUAL(tag_of(back, back->tags->nelts - 1)->key, "error");
    CU_ASSERT_EQUAL(back->annotations->nelts, TG_SPAN_MAX_NOTES_BETWEEN);
    CU_ASSERT_STRING_EQUAL(back->name, span->name);
    CU_ASSERT_STRING_EQUAL(back->path, span->path);
}

/* Once no filler tag is left, notes go from the last backwards. */
static void test_middle_notes_go_after_the_tags(void)
{
    tg_span_t *span = bounded_server_span(), *back;
    size_t tag_bytes = 2 * (2 + TG_SPAN_MAX_STRING + 1), note_bytes = 8 + 2 + TG_SPAN_MAX_STRING + 1;
    size_t len;
    int i;
    back = fit(span, full_length(span) - FILLER_TAGS * tag_bytes - 5 * note_bytes, &len);
    assert_essentials_kept(back, span);
    CU_ASSERT_EQUAL(back->dropped, span->dropped + FILLER_TAGS + 5);
    CU_ASSERT_EQUAL(back->tags->nelts, 1);
    CU_ASSERT_EQUAL_FATAL(back->annotations->nelts, TG_SPAN_MAX_NOTES_BETWEEN - 5);
    for (i = 0; i < back->annotations->nelts; i++)
        CU_ASSERT_EQUAL(note_of(back, i)->timestamp, T0 + 1 + i);
    CU_ASSERT_STRING_EQUAL(note_of(back, 1)->value, note_of(span, 1)->value);
    CU_ASSERT_STRING_EQUAL(back->name, span->name);
}

/* From the smallest room up to the whole span: always a record with the
 * essentials, never a byte past the room, and more room never loses more.
 * Every room where strings are cut or notes left out, then a sample of
 * those (31 bytes apart) where only tags of 516 bytes each go. */
static void test_rooms_from_the_minimum_up_fit(void)
{
    tg_span_t *span = bounded_server_span(), *back;
    size_t full = full_length(span), cap, len;
    unsigned previous = UINT32_MAX;
    for (cap = TG_RECORD_MIN_CAP; cap <= full; cap += cap < 3 * TG_QUEUE_SLOT_BYTES ? 1 : 31) {
        back = fit(span, cap, &len);
        assert_essentials_kept(back, span);
        CU_ASSERT(back->dropped <= previous);
        CU_ASSERT_EQUAL(back->dropped > span->dropped, cap < full);
        previous = back->dropped;
    }
    back = fit(span, full, &len);
    CU_ASSERT_EQUAL(len, full);
    CU_ASSERT_EQUAL(back->dropped, span->dropped);
}

static void test_same_span_and_room_make_the_same_record(void)
{
    static unsigned char one[TG_QUEUE_SLOT_BYTES], two[TG_QUEUE_SLOT_BYTES];
    tg_span_t *span = bounded_server_span();
    size_t len;
    memset(one, 0x00, sizeof(one));
    memset(two, 0xFF, sizeof(two));
    len = tg_record_encode(span, one, sizeof(one));
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(tg_record_encode(span, two, sizeof(two)), len);
    CU_ASSERT_EQUAL(memcmp(one, two, len), 0);
}

static void test_below_the_minimum_it_is_all_or_nothing(void)
{
    static unsigned char buf[TG_RECORD_MIN_CAP];
    tg_span_t *span = bounded_server_span();
    memset(buf, SENTINEL, sizeof(buf));
    CU_ASSERT_EQUAL(tg_record_encode(span, buf, TG_RECORD_MIN_CAP - 1), 0);
    CU_ASSERT_EQUAL(buf[TG_RECORD_MIN_CAP - 1], SENTINEL);
}

static void test_span_that_fits_loses_nothing(void)
{
    unsigned char buf[TG_QUEUE_SLOT_BYTES];
    tg_span_t *span = typical_span(), *back = NULL;
    size_t len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL(len, full_length(span));
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    assert_same_span(back, span);
}

/* A cut never ends inside a UTF-8 character: "é" is two bytes. */
static void test_cut_keeps_characters_whole(void)
{
    tg_span_t *span = bounded_server_span(), *back;
    size_t cap, len;
    int odd_cuts = 0, i;
    char *name = apr_palloc(tg_test_pool, TG_SPAN_MAX_STRING + 1);
    for (i = 0; i < TG_SPAN_MAX_STRING; i += 2)
        memcpy(name + i, "\xc3\xa9", 2);
    name[TG_SPAN_MAX_STRING] = '\0';
    span->name = name;
    for (cap = TG_RECORD_MIN_CAP; cap < TG_RECORD_MIN_CAP + 40; cap++) {
        back = fit(span, cap, &len);
        CU_ASSERT_EQUAL(strlen(back->name) % 2, 0);
        assert_prefix(back->name, name);
        odd_cuts += strlen(back->local.service_name) % 2;
    }
    CU_ASSERT(odd_cuts > 0); /* the limit did fall inside a character */
}

/* A cut address would be a wrong one: an address longer than the cut
 * (possible only in a span filled by hand) is left out whole. */
static void test_long_address_is_left_out_not_cut(void)
{
    tg_span_t *span = bounded_server_span(), *back;
    size_t len;
    span->remote.ipv4 = repeat('4', TG_SPAN_MAX_STRING);
    back = fit(span, TG_RECORD_MIN_CAP, &len);
    assert_essentials_kept(back, span);
    CU_ASSERT_PTR_NULL(back->remote.ipv4);
    CU_ASSERT_STRING_EQUAL(back->remote.ipv6, span->remote.ipv6);
    CU_ASSERT_STRING_EQUAL(back->local.ipv4, span->local.ipv4);
}

/* The worst a span filled by hand can be: every string at full length and
 * every tag keyed as the one kept, so only strings can be cut. */
static void test_worst_hand_span_fits_the_minimum(void)
{
    tg_span_t *span = largest_span(), *back;
    size_t len;
    int i;
    for (i = 0; i < span->tags->nelts; i++)
        APR_ARRAY_IDX(span->tags, i, tg_tag_t).key = "error";
    back = fit(span, TG_RECORD_MIN_CAP, &len);
    CU_ASSERT_EQUAL(back->tags->nelts, TG_SPAN_MAX_TAGS);
    CU_ASSERT_PTR_NULL(back->annotations);
    CU_ASSERT_STRING_EQUAL(tag_of(back, TG_SPAN_MAX_TAGS - 1)->key, "error");
    CU_ASSERT_EQUAL(back->id, span->id);
    CU_ASSERT_EQUAL(back->dropped, UINT32_MAX); /* saturated, not wrapped */
}

/* ---- the bytes themselves ---- */

static void test_layout_starts_as_documented(void)
{
    unsigned char buf[BIG];
    tg_span_t *span = typical_span();
    size_t len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL(buf[0], 'T');
    CU_ASSERT_EQUAL(buf[1], 'G');
    CU_ASSERT_EQUAL(buf[2], VERSION);
    /* CLIENT (1) | shared | debug | error | finished */
    CU_ASSERT_EQUAL(buf[3], 0x01 | 0x08 | 0x10 | 0x20 | 0x40);
    CU_ASSERT_EQUAL(get_le(buf + 4, 8), span->trace_id.hi);
    CU_ASSERT_EQUAL(get_le(buf + 12, 8), span->trace_id.lo);
    CU_ASSERT_EQUAL(get_le(buf + 20, 8), span->id);
    CU_ASSERT_EQUAL(get_le(buf + 28, 8), span->parent_id);
    CU_ASSERT_EQUAL(get_le(buf + 36, 8), (uint64_t)T0);
    CU_ASSERT_EQUAL(get_le(buf + 44, 8), 1431);
    CU_ASSERT_EQUAL(get_le(buf + 52, 4), 3);
    CU_ASSERT_EQUAL(get_le(buf + 56, 2), 0); /* no status code */
    CU_ASSERT_EQUAL(get_le(buf + 58, 2), 5000);
    CU_ASSERT_EQUAL(get_le(buf + 60, 2), 58648);
    CU_ASSERT_EQUAL(get_le(buf + 62, 2), strlen("get /api"));
    CU_ASSERT_EQUAL(memcmp(buf + 64, "get /api", 9), 0); /* its NUL included */
    CU_ASSERT_EQUAL(get_le(buf + 73, 2), strlen("GET"));
    CU_ASSERT_EQUAL(memcmp(buf + 75, "GET", 4), 0);
    CU_ASSERT_EQUAL(get_le(buf + len - 4, 4), reference_crc32c(buf, len - 4));
}

static void test_reference_crc_is_crc32c(void)
{
    /* the standard check value, so the test above compares with CRC-32C */
    CU_ASSERT_EQUAL(reference_crc32c((const unsigned char *)"123456789", 9), 0xE3069283U);
}

/* ---- the CRC ---- */

/* The check value and the test vectors of RFC 3720 (iSCSI), appendix B.4. */
static void check_known_vectors(uint32_t (*crc)(const void *, size_t))
{
    unsigned char bytes[32];
    size_t i;
    CU_ASSERT_EQUAL(crc("", 0), 0x00000000U);
    CU_ASSERT_EQUAL(crc("123456789", 9), 0xE3069283U);
    memset(bytes, 0, sizeof(bytes));
    CU_ASSERT_EQUAL(crc(bytes, sizeof(bytes)), 0x8A9136AAU);
    memset(bytes, 0xFF, sizeof(bytes));
    CU_ASSERT_EQUAL(crc(bytes, sizeof(bytes)), 0x62A8AB43U);
    for (i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)i;
    CU_ASSERT_EQUAL(crc(bytes, sizeof(bytes)), 0x46DD794EU);
    for (i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)(sizeof(bytes) - 1 - i);
    CU_ASSERT_EQUAL(crc(bytes, sizeof(bytes)), 0x113FDB5CU);
}

static void test_crc_gives_the_known_crc32c_values(void)
{
    check_known_vectors(tg_crc32c);
}

static void test_crc_tables_give_the_known_crc32c_values(void)
{
    check_known_vectors(tg_crc32c_tables);
}

/* The CPU's instruction (where tg_crc32c uses it), the tables and the
 * reference agree on every length around the eight-byte steps and every
 * alignment of the start. */
static void test_crc_instruction_and_tables_agree(void)
{
    unsigned char bytes[8 + 600];
    uint64_t state = 0x2545F4914F6CDD1DULL;
    size_t start, len, i;
    for (i = 0; i < sizeof(bytes); i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        bytes[i] = (unsigned char)(state >> 56);
    }
    for (start = 0; start < 8; start++) {
        for (len = 0; len <= 600; len += len < 80 ? 1 : 37) {
            uint32_t want = reference_crc32c(bytes + start, len);
            CU_ASSERT_EQUAL(tg_crc32c(bytes + start, len), want);
            CU_ASSERT_EQUAL(tg_crc32c_tables(bytes + start, len), want);
        }
    }
}

static void test_encode_refuses_every_short_buffer(void)
{
    unsigned char want[BIG], buf[BIG];
    tg_span_t *span = typical_span();
    size_t len = encode_or_fail(span, want, sizeof(want));
    size_t cap;
    for (cap = 0; cap < len; cap++) {
        memset(buf, 0xA5, sizeof(buf));
        CU_ASSERT_EQUAL(tg_record_encode(span, buf, cap), 0);
        /* and writes nothing past cap */
        CU_ASSERT_EQUAL(buf[cap], 0xA5);
    }
    CU_ASSERT_EQUAL(tg_record_encode(span, buf, len), len);
    CU_ASSERT_EQUAL(memcmp(buf, want, len), 0);
}

static void test_every_truncation_is_rejected(void)
{
    unsigned char buf[BIG];
    tg_span_t *back;
    size_t len = encode_or_fail(typical_span(), buf, sizeof(buf));
    size_t cut;
    for (cut = 0; cut < len; cut++)
        CU_ASSERT_EQUAL(decode_exact(buf, cut, &back), APR_EINVAL);
}

/* A body cut short under a CRC that matches it: the parser must notice. */
static void test_every_resealed_truncation_is_rejected(void)
{
    unsigned char record[BIG], buf[BIG];
    tg_span_t *back;
    size_t len = encode_or_fail(typical_span(), record, sizeof(record));
    size_t body;
    for (body = 0; body < len - 4; body++) {
        memcpy(buf, record, body);
        reseal(buf, body + 4);
        CU_ASSERT_EQUAL(decode_exact(buf, body + 4, &back), APR_EINVAL);
    }
}

static void test_trailing_bytes_are_rejected(void)
{
    unsigned char buf[BIG];
    tg_span_t *back;
    size_t len = encode_or_fail(typical_span(), buf, sizeof(buf) / 2);
    buf[len] = 0;
    CU_ASSERT_EQUAL(decode_exact(buf, len + 1, &back), APR_EINVAL);
    memcpy(buf + len, buf, len); /* two records back to back */
    CU_ASSERT_EQUAL(decode_exact(buf, 2 * len, &back), APR_EINVAL);
    /* a byte between the notes and a CRC that covers it */
    memmove(buf + len - 3, buf + len - 4, 4);
    buf[len - 4] = 0;
    reseal(buf, len + 1);
    CU_ASSERT_EQUAL(decode_exact(buf, len + 1, &back), APR_EINVAL);
}

static void test_every_bit_flip_is_detected(void)
{
    unsigned char buf[BIG];
    tg_span_t *back;
    size_t len = encode_or_fail(typical_span(), buf, sizeof(buf));
    size_t bit;
    for (bit = 0; bit < len * 8; bit++) {
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        CU_ASSERT_EQUAL(decode_exact(buf, len, &back), APR_EINVAL);
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    CU_ASSERT_EQUAL(decode_exact(buf, len, &back), APR_SUCCESS);
}

/* Each of these carries a correct CRC: what rejects it is the check named. */
static void test_wrong_magic_or_version_is_rejected(void)
{
    unsigned char buf[BIG];
    tg_span_t *back;
    size_t len = encode_or_fail(typical_span(), buf, sizeof(buf));
    static const struct { size_t at; unsigned char value; } changes[] = {
        { 0, 'X' }, { 1, 'g' }, { 2, 0 }, { 2, VERSION - 1 }, { 2, VERSION + 1 }, { 2, 0xFF }
    };
    size_t i;
    for (i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        unsigned char saved = buf[changes[i].at];
        buf[changes[i].at] = changes[i].value;
        reseal(buf, len);
        CU_ASSERT_EQUAL(decode_exact(buf, len, &back), APR_EINVAL);
        buf[changes[i].at] = saved;
    }
    reseal(buf, len);
    CU_ASSERT_EQUAL(decode_exact(buf, len, &back), APR_SUCCESS);
}

static void test_kind_out_of_range_is_rejected(void)
{
    unsigned char buf[BIG];
    tg_span_t *back;
    size_t len = encode_or_fail(typical_span(), buf, sizeof(buf));
    unsigned kind;
    for (kind = TG_SPAN_INTERNAL + 1; kind <= 7; kind++) {
        buf[3] = (unsigned char)((buf[3] & ~0x07u) | kind);
        reseal(buf, len);
        CU_ASSERT_EQUAL(decode_exact(buf, len, &back), APR_EINVAL);
    }
    buf[3] = 0x80 | 0x02; /* PRODUCER with the reserved bit */
    reseal(buf, len);
    CU_ASSERT_EQUAL(decode_exact(buf, len, &back), APR_EINVAL);
    buf[3] = 0x02;
    reseal(buf, len);
    CU_ASSERT_EQUAL_FATAL(decode_exact(buf, len, &back), APR_SUCCESS);
    CU_ASSERT_EQUAL(back->kind, TG_SPAN_PRODUCER);
    CU_ASSERT_FALSE(back->shared || back->debug || back->error || back->finished);
}

static void test_unknown_kind_is_not_taken_for_another(void)
{
    unsigned char buf[BIG];
    tg_span_t *span = typical_span(), *back;
    size_t len;
    span->kind = (tg_span_kind_t)(TG_SPAN_CLIENT + 8); /* would mask into CLIENT */
    len = encode_or_fail(span, buf, sizeof(buf));
    CU_ASSERT_EQUAL(decode_exact(buf, len, &back), APR_EINVAL);
}

static void test_hand_record_decodes(void)
{
    tg_buf_t b;
    tg_span_t *span = NULL;
    tg_buf_init(&b);
    hand_head(&b, 0x40, "svc", 3, 2);
    hand_tags(&b, 1);
    hand_notes(&b, 2);
    CU_ASSERT_EQUAL_FATAL(decode_sealed(&b, &span), APR_SUCCESS);
    CU_ASSERT_EQUAL(span->trace_id.hi, 0x1111);
    CU_ASSERT_EQUAL(span->trace_id.lo, 0x2222);
    CU_ASSERT_EQUAL(span->id, 0x3333);
    CU_ASSERT_EQUAL(span->duration, 25);
    CU_ASSERT_TRUE(span->finished);
    CU_ASSERT_STRING_EQUAL(span->name, "svc");
    CU_ASSERT_STRING_EQUAL(span->method, "svc");
    CU_ASSERT_PTR_NULL(span->path);
    CU_ASSERT_PTR_NULL(span->local.service_name);
    CU_ASSERT_EQUAL(span->local.port, 80);
    CU_ASSERT_EQUAL(span->tags->nelts, 1);
    CU_ASSERT_EQUAL(span->annotations->nelts, 2);
}

static void test_string_over_the_bound_is_rejected(void)
{
    CU_ASSERT_EQUAL(decode_hand_record(0, TG_SPAN_MAX_STRING, 0, 0), APR_SUCCESS);
    CU_ASSERT_EQUAL(decode_hand_record(0, TG_SPAN_MAX_STRING + 1, 0, 0), APR_EINVAL);
}

static void test_string_length_just_below_null_is_rejected(void)
{
    tg_buf_t b;
    tg_span_t *span;
    tg_buf_init(&b);
    hand_head(&b, 0, "", 0, 0);
    b.data[HEADER_BYTES] = (char)0xFE; /* name length 0xFFFE instead of NULL */
    hand_tags(&b, 0);
    hand_notes(&b, 0);
    CU_ASSERT_EQUAL(decode_sealed(&b, &span), APR_EINVAL);
}

/* A NUL inside a string (our writer never puts one) ends it, as C reads
 * it: the layout around it still holds. */
static void test_nul_inside_a_string_ends_it(void)
{
    tg_buf_t b;
    tg_span_t *span = NULL;
    tg_buf_init(&b);
    hand_head(&b, 0, "get\0/", 5, 1);
    hand_tags(&b, 0);
    hand_notes(&b, 0);
    CU_ASSERT_EQUAL_FATAL(decode_sealed(&b, &span), APR_SUCCESS);
    CU_ASSERT_STRING_EQUAL(span->name, "get");
    CU_ASSERT_PTR_NULL(span->method);
}

/* The reader copies the record once and points into the copy: each string
 * must end with the NUL the writer puts after it. */
static void test_string_without_its_nul_is_rejected(void)
{
    tg_buf_t b;
    tg_span_t *span;
    tg_buf_init(&b);
    hand_head(&b, 0, "get", 3, 1);
    b.data[HEADER_BYTES + 2 + 3] = '/';
    hand_tags(&b, 0);
    hand_notes(&b, 0);
    CU_ASSERT_EQUAL(decode_sealed(&b, &span), APR_EINVAL);
}

static void test_status_code_over_three_digits_is_rejected(void)
{
    tg_buf_t b;
    tg_span_t *span;
    tg_buf_init(&b);
    hand_head(&b, 0, "", 0, 0);
    b.data[HEADER_BYTES - 6] = (char)0xE8; /* 1000, little-endian */
    b.data[HEADER_BYTES - 5] = 0x03;
    hand_tags(&b, 0);
    hand_notes(&b, 0);
    CU_ASSERT_EQUAL(decode_sealed(&b, &span), APR_EINVAL);
}

static void test_counts_over_the_bounds_are_rejected(void)
{
    CU_ASSERT_EQUAL(decode_hand_record(0, 1, TG_SPAN_MAX_TAGS, TG_SPAN_MAX_NOTES_BETWEEN), APR_SUCCESS);
    CU_ASSERT_EQUAL(decode_hand_record(0, 1, TG_SPAN_MAX_TAGS + 1, 0), APR_EINVAL);
    CU_ASSERT_EQUAL(decode_hand_record(0, 1, 0, TG_SPAN_MAX_NOTES_BETWEEN + 1), APR_EINVAL);
    CU_ASSERT_EQUAL(decode_hand_record(0, 1, 0xFFFF, 0), APR_EINVAL);
}

/* ---- garbage ---- */

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64: reproducible, so a failure can be replayed */
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void test_random_garbage_is_rejected(void)
{
    unsigned char buf[600];
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    tg_span_t *back;
    int round;
    for (round = 0; round < 20000; round++) {
        size_t len = (size_t)(next_random(&state) % sizeof(buf)), i;
        for (i = 0; i < len; i++)
            buf[i] = (unsigned char)next_random(&state);
        if (round % 2 && len >= 4) { /* half of it has our magic, version and valid flags */
            memcpy(buf, MAGIC_AND_VERSION, 3);
            buf[3] &= 0x7B;
        }
        CU_ASSERT_EQUAL(decode_exact(buf, len, &back), APR_EINVAL);
    }
}

/* Sealed garbage gets past the CRC: the parser alone must hold. */
static void test_sealed_garbage_never_crashes(void)
{
    unsigned char record[BIG], buf[BIG];
    uint64_t state = 0xD1B54A32D192ED03ULL;
    size_t len = encode_or_fail(typical_span(), record, sizeof(record));
    int round, accepted = 0;
    for (round = 0; round < 20000; round++) {
        tg_span_t *back = NULL;
        size_t i, changes = 1 + next_random(&state) % 4;
        size_t cut = len - next_random(&state) % 3 * (next_random(&state) % 16);
        memcpy(buf, record, len);
        for (i = 0; i < changes; i++)
            buf[4 + next_random(&state) % (cut - 8)] = (unsigned char)next_random(&state);
        reseal(buf, cut);
        if (decode_exact(buf, cut, &back) == APR_SUCCESS) {
            /* whatever passed must be a span that encodes again */
            accepted++;
            CU_ASSERT(tg_record_encode(back, buf, sizeof(buf)) > 0);
        }
    }
    CU_ASSERT(accepted > 0); /* the test did reach the end of the parser */
}

void tg_test_add_record(void)
{
    CU_pSuite suite = TG_SUITE("record");
    TG_TEST(suite, test_typical_span_round_trips);
    TG_TEST(suite, test_every_kind_round_trips);
    TG_TEST(suite, test_largest_span_round_trips);
    TG_TEST(suite, test_transfer_round_trips);
    TG_TEST(suite, test_bad_transfer_is_rejected);
    TG_TEST(suite, test_minimal_span_round_trips_nulls);
    TG_TEST(suite, test_strings_of_every_short_length_round_trip);
    TG_TEST(suite, test_null_and_empty_strings_stay_apart);
    TG_TEST(suite, test_decoded_span_lives_in_the_pool_and_grows);
    TG_TEST(suite, test_decoded_span_owes_nothing_to_old_bytes);
    TG_TEST(suite, test_overfull_hand_span_counts_what_is_left_out);
    TG_TEST(suite, test_long_hand_string_is_cut);
    TG_TEST(suite, test_span_at_every_bound_fits_a_queue_slot);
    TG_TEST(suite, test_strings_are_cut_last_and_evenly);
    TG_TEST(suite, test_tags_go_first_from_the_last);
    TG_TEST(suite, test_middle_notes_go_after_the_tags);
    TG_TEST(suite, test_rooms_from_the_minimum_up_fit);
    TG_TEST(suite, test_same_span_and_room_make_the_same_record);
    TG_TEST(suite, test_below_the_minimum_it_is_all_or_nothing);
    TG_TEST(suite, test_span_that_fits_loses_nothing);
    TG_TEST(suite, test_cut_keeps_characters_whole);
    TG_TEST(suite, test_long_address_is_left_out_not_cut);
    TG_TEST(suite, test_worst_hand_span_fits_the_minimum);
    TG_TEST(suite, test_layout_starts_as_documented);
    TG_TEST(suite, test_reference_crc_is_crc32c);
    TG_TEST(suite, test_crc_gives_the_known_crc32c_values);
    TG_TEST(suite, test_crc_tables_give_the_known_crc32c_values);
    TG_TEST(suite, test_crc_instruction_and_tables_agree);
    TG_TEST(suite, test_encode_refuses_every_short_buffer);
    TG_TEST(suite, test_every_truncation_is_rejected);
    TG_TEST(suite, test_every_resealed_truncation_is_rejected);
    TG_TEST(suite, test_trailing_bytes_are_rejected);
    TG_TEST(suite, test_every_bit_flip_is_detected);
    TG_TEST(suite, test_wrong_magic_or_version_is_rejected);
    TG_TEST(suite, test_kind_out_of_range_is_rejected);
    TG_TEST(suite, test_unknown_kind_is_not_taken_for_another);
    TG_TEST(suite, test_hand_record_decodes);
    TG_TEST(suite, test_string_over_the_bound_is_rejected);
    TG_TEST(suite, test_string_length_just_below_null_is_rejected);
    TG_TEST(suite, test_nul_inside_a_string_ends_it);
    TG_TEST(suite, test_string_without_its_nul_is_rejected);
    TG_TEST(suite, test_status_code_over_three_digits_is_rejected);
    TG_TEST(suite, test_counts_over_the_bounds_are_rejected);
    TG_TEST(suite, test_random_garbage_is_rejected);
    TG_TEST(suite, test_sealed_garbage_never_crashes);
}
