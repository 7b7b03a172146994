/* tg_record_decode on any bytes, taken as they are and resealed (their
 * last four bytes replaced by the CRC-32C of the rest, so that mutations get
 * past the CRC to the parser behind it).
 *
 * A record it takes must encode back to the very same bytes (or, when a
 * string holds a NUL, which ends it, to a shorter record that encodes back
 * to itself), must still
 * make a record in TG_RECORD_MIN_CAP and in a queue slot (keeping what the
 * degradation promises to keep), and must write Zipkin JSON that parses. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_json.h"
#include "tg_queue.h"
#include "tg_record.h"
#include "tg_zipkin.h"

#define CRC_BYTES 4
#define LARGEST_RECORD (32 * 1024) /* a span at every bound takes ~18 KB */

#define KEPT_TAG_KEY "error"

/* CRC-32C byte at a time from a table built bit by bit: independent of
 * tg_crc32c (the crc32 instruction or slicing-by-8 tables), and quick
 * enough not to slow the fuzzer down. */
static uint32_t crc32_of(const uint8_t *bytes, size_t len)
{
    static uint32_t table[256];
    uint32_t crc = 0xFFFFFFFFU;
    size_t i;
    if (!table[1]) {
        uint32_t n, entry;
        int bit;
        for (n = 0; n < 256; n++) {
            for (entry = n, bit = 0; bit < 8; bit++)
                entry = (entry & 1) ? (entry >> 1) ^ 0x82F63B78U : entry >> 1;
            table[n] = entry;
        }
    }
    for (i = 0; i < len; i++)
        crc = (crc >> 8) ^ table[(crc ^ bytes[i]) & 0xFF];
    return ~crc;
}

static int kept_tags_in(const tg_span_t *span)
{
    int n = 0, i;
    for (i = 0; span->tags && i < span->tags->nelts; i++) {
        const char *key = APR_ARRAY_IDX(span->tags, i, tg_tag_t).key;
        n += key && strcmp(key, KEPT_TAG_KEY) == 0;
    }
    return n;
}

/* A cut string is a prefix of the whole one; NULL stays NULL. */
static int is_prefix(const char *cut, const char *whole)
{
    if (!cut || !whole)
        return !cut && !whole;
    return strncmp(cut, whole, strlen(cut)) == 0;
}

/* Decodes from a heap copy of exactly len bytes, so that a read past the
 * end is one AddressSanitizer sees. */
static apr_status_t decode_exact(const uint8_t *bytes, size_t len, apr_pool_t *pool, tg_span_t **span)
{
    uint8_t *copy = malloc(len ? len : 1);
    apr_status_t rv;
    if (!copy)
        abort();
    memcpy(copy, bytes, len);
    rv = tg_record_decode(copy, len, pool, span);
    free(copy);
    return rv;
}

/* The span in at most cap bytes, decoded again: what degradation keeps. */
static void check_fits(const tg_span_t *span, size_t full_len, const uint8_t *full, size_t cap,
                       apr_pool_t *pool)
{
    uint8_t *record = malloc(cap);
    tg_span_t *back;
    size_t len;
    if (!record)
        abort();
    len = tg_record_encode(span, record, cap);
    FUZZ_CHECK(len > 0 && len <= cap);
    FUZZ_CHECK(decode_exact(record, len, pool, &back) == APR_SUCCESS);
    FUZZ_CHECK(tg_trace_id_equal(back->trace_id, span->trace_id) && back->id == span->id
               && back->parent_id == span->parent_id);
    FUZZ_CHECK(back->kind == span->kind && back->timestamp == span->timestamp
               && back->duration == span->duration && back->error == span->error);
    /* the times and flags place the first and last notes */
    FUZZ_CHECK(back->finished == span->finished);
    FUZZ_CHECK(kept_tags_in(back) == kept_tags_in(span));
    FUZZ_CHECK(back->status_code == span->status_code && is_prefix(back->method, span->method)
               && is_prefix(back->path, span->path));
    if (full_len <= cap)
        FUZZ_CHECK(len == full_len && memcmp(record, full, len) == 0);
    else
        FUZZ_CHECK(back->dropped > span->dropped || back->dropped == UINT32_MAX);
    free(record);
}

static void check_zipkin_json(const tg_span_t *span, apr_pool_t *pool)
{
    char hex[TG_SPAN_ID_HEX_LEN + 1];
    const char *id;
    tg_buf_t json;
    tg_buf_init(&json);
    tg_zipkin_append_span(&json, span);
    FUZZ_CHECK(!json.failed);
    FUZZ_CHECK(tg_json_object_get_string(json.data, json.len, "id", pool, &id));
    tg_u64_to_hex(span->id, hex);
    FUZZ_CHECK(strcmp(id, hex) == 0);
    tg_buf_free(&json);
}

static void check_record(const uint8_t *bytes, size_t len, apr_pool_t *pool)
{
    static uint8_t again[LARGEST_RECORD];
    tg_span_t *span;
    size_t again_len;
    if (decode_exact(bytes, len, pool, &span) != APR_SUCCESS)
        return;
    again_len = tg_record_encode(span, again, sizeof(again));
    if (again_len != len || memcmp(again, bytes, len) != 0) {
        /* Only a NUL inside a string, which ends it, makes the record
         * another: shorter, and one that encodes back to itself. */
        static uint8_t third[LARGEST_RECORD];
        tg_span_t *shorter;
        FUZZ_CHECK(again_len > 0 && again_len < len);
        FUZZ_CHECK(decode_exact(again, again_len, pool, &shorter) == APR_SUCCESS);
        FUZZ_CHECK(tg_record_encode(shorter, third, sizeof(third)) == again_len
                   && memcmp(third, again, again_len) == 0);
    }
    check_fits(span, again_len, again, TG_RECORD_MIN_CAP, pool);
    check_fits(span, again_len, again, TG_QUEUE_SLOT_BYTES, pool);
    check_zipkin_json(span, pool);
}

void fuzz_one(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    uint8_t *resealed;
    uint32_t crc;
    int i;
    check_record(data, size, pool);
    if (size < CRC_BYTES)
        return;
    resealed = malloc(size);
    if (!resealed)
        abort();
    memcpy(resealed, data, size);
    crc = crc32_of(resealed, size - CRC_BYTES);
    for (i = 0; i < CRC_BYTES; i++)
        resealed[size - CRC_BYTES + (size_t)i] = (uint8_t)(crc >> (8 * i));
    check_record(resealed, size, pool);
    free(resealed);
}
