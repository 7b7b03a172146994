#include "tg_record.h"

#include <apr_strings.h>
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HAVE_CRC32_INSTRUCTION 1
#endif

/* Version 4 layout, integers little-endian:
 *
 *   "TG"  u8 version  u8 flags (kind in bits 0-2, tg_span_kind_t, then
 *         shared, debug, error, finished; bit 7 must be 0)
 *   u64 trace id hi, u64 trace id lo, u64 id, u64 parent id,
 *   u64 timestamp, u64 duration (apr_time_t, two's complement), u32 dropped
 *   u16 status code, u16 local port, u16 remote port
 *   strings: name, method, path, local service/ipv4/ipv6, remote
 *            service/ipv4/ipv6
 *   u16 tag count, then per tag: string key, string value
 *   u16 note count, then per note: u64 timestamp, string value (the notes
 *       between the first and the last, which the times above place)
 *   u8 transfer (TG_TRANSFER_* bits), then a u64 for each bit set, in the
 *       bits' order: body read at, first byte at, request and response bytes
 *   u32 CRC-32C (tg_crc32c) of every byte before it
 *
 * A string is a u16 length, that many bytes and a NUL (so that the reader
 * copies the record once and points into the copy), or the length
 * NULL_STRING alone for a NULL pointer.  The version changes whenever this
 * layout does: the shipper may outlive a graceful restart by a moment and
 * must refuse what it cannot read rather than misread it.  (Version 3 had no
 * transfer fields; version 2 stored
 * every note and the HTTP tags as tags, without the NULs; version 1 had a
 * CRC-32 of zlib's polynomial.)  Kind 4, internal, came with libtomograph
 * in the same layout: a reader older than it refuses such a record, which
 * it cannot have met before, rather than misreading it. */

#define RECORD_VERSION 4
#define NULL_STRING 0xFFFFu

#define FLAG_KIND_MASK 0x07u
#define FLAG_SHARED 0x08u
#define FLAG_DEBUG 0x10u
#define FLAG_ERROR 0x20u
#define FLAG_FINISHED 0x40u
#define FLAG_RESERVED 0x80u

#define CRC_BYTES 4

/* name, method, path, two endpoints' service, ipv4 and ipv6 */
#define FIXED_STRINGS 9

/* What of a span goes into its record. */
typedef struct {
    int tags;  /* entries within the span's bounds, */
    int notes; /* some of which may be left out: */
    unsigned char keep_tag[TG_SPAN_MAX_TAGS];
    unsigned char keep_note[TG_SPAN_MAX_NOTES_BETWEEN];
    apr_size_t string_limit;               /* bytes kept of a string that may be cut */
    uint64_t dropped;                      /* the span's own count and what is left out */
    uint16_t fixed_length[FIXED_STRINGS];  /* as they go out, once measured */
    apr_size_t length;
} plan_t;
/* Magic, version, flags, six u64, u32 dropped, u16 status and ports. */
#define FIXED_BYTES (4 + 6 * 8 + 4 + 3 * 2)

/* ---- CRC-32C ---- */

/* Castagnoli's polynomial, bit-reversed: the one the crc32 instruction
 * computes. */
#define CRC32C_POLYNOMIAL 0x82F63B78U
#define SLICES 8

/* crc_tables[0] takes one byte; crc_tables[k] a byte followed by k zero
 * bytes, so eight bytes go in one step of eight lookups. */
static uint32_t crc_tables[SLICES][256];
static pthread_once_t crc_tables_once = PTHREAD_ONCE_INIT;

static void make_crc_tables(void)
{
    uint32_t n, entry;
    int bit, k;
    for (n = 0; n < 256; n++) {
        entry = n;
        for (bit = 0; bit < 8; bit++)
            entry = (entry & 1) ? (entry >> 1) ^ CRC32C_POLYNOMIAL : entry >> 1;
        crc_tables[0][n] = entry;
    }
    for (n = 0; n < 256; n++)
        for (k = 1; k < SLICES; k++)
            crc_tables[k][n] = (crc_tables[k - 1][n] >> 8) ^ crc_tables[0][crc_tables[k - 1][n] & 0xFF];
}

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t tg_crc32c_tables(const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    uint32_t crc = 0xFFFFFFFFU;
    pthread_once(&crc_tables_once, make_crc_tables);
    for (; len >= SLICES; p += SLICES, len -= SLICES) {
        uint32_t low = crc ^ load_le32(p), high = load_le32(p + 4);
        crc = crc_tables[7][low & 0xFF] ^ crc_tables[6][(low >> 8) & 0xFF]
              ^ crc_tables[5][(low >> 16) & 0xFF] ^ crc_tables[4][low >> 24]
              ^ crc_tables[3][high & 0xFF] ^ crc_tables[2][(high >> 8) & 0xFF]
              ^ crc_tables[1][(high >> 16) & 0xFF] ^ crc_tables[0][high >> 24];
    }
    for (; len > 0; p++, len--)
        crc = (crc >> 8) ^ crc_tables[0][(crc ^ *p) & 0xFF];
    return ~crc;
}

#ifdef HAVE_CRC32_INSTRUCTION
static inline uint64_t load_word(const unsigned char *p)
{
    uint64_t word;
    memcpy(&word, p, sizeof(word));
    return word;
}

/* Compiled for SSE4.2 alone, and called only when the CPU has it.  Each
 * word is read by the crc32 instruction itself, and the tail goes in at
 * most three steps. */
__attribute__((target("sse4.2")))
static uint32_t crc32c_instruction(const unsigned char *p, size_t len)
{
    uint64_t crc = 0xFFFFFFFFU;
    uint32_t crc32;
    uint16_t half;
    /* Four words a step: a record is a few hundred bytes. */
    for (; len >= 32; p += 32, len -= 32) {
        crc = _mm_crc32_u64(crc, load_word(p));
        crc = _mm_crc32_u64(crc, load_word(p + 8));
        crc = _mm_crc32_u64(crc, load_word(p + 16));
        crc = _mm_crc32_u64(crc, load_word(p + 24));
    }
    for (; len >= 8; p += 8, len -= 8)
        crc = _mm_crc32_u64(crc, load_word(p));
    crc32 = (uint32_t)crc;
    if (len & 4) {
        uint32_t word;
        memcpy(&word, p, sizeof(word));
        crc32 = _mm_crc32_u32(crc32, word);
        p += 4;
    }
    if (len & 2) {
        memcpy(&half, p, sizeof(half));
        crc32 = _mm_crc32_u16(crc32, half);
        p += 2;
    }
    if (len & 1)
        crc32 = _mm_crc32_u8(crc32, *p);
    return ~crc32;
}
#endif

uint32_t tg_crc32c(const void *bytes, size_t len)
{
#ifdef HAVE_CRC32_INSTRUCTION
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_instruction(bytes, len);
#endif
    return tg_crc32c_tables(bytes, len);
}

/* ---- writing ---- */

/* The one tag kept while others can go (the HTTP ones are fields). */
#define KEPT_TAG_KEY "error"

/* A valid UTF-8 character has at most this many bytes after its first. */
#define UTF8_MAX_CONTINUATION 3

/* The strings of the fixed part, in record order. */
enum {
    NAME, METHOD, PATH,
    LOCAL_SERVICE, LOCAL_IPV4, LOCAL_IPV6,
    REMOTE_SERVICE, REMOTE_IPV4, REMOTE_IPV6
};

/* Measuring and writing walk the same layout with the same code; the
 * writer needs no bounds: it writes what was measured into as much room,
 * or a span whose largest record fits the room (worst_case_length).
 * Everything below is inlined into each walk, so that each is compiled for
 * what it does: a measure only adds lengths, a write only stores. */
#define INLINE static inline __attribute__((always_inline))

typedef struct {
    unsigned char *buf;      /* NULL to measure only */
    apr_size_t len;
    unsigned cut;            /* strings string_limit cut short */
    plan_t *plan;            /* measuring notes the fixed strings' lengths there */
    int planned;             /* writing what the plan measured: its lengths hold */
    apr_size_t string_limit; /* the plan's; a constant where it is known to be the bound */
} writer_t;

static writer_t measuring_writer(plan_t *plan)
{
    return (writer_t){ NULL, 0, 0, plan, 0, plan->string_limit };
}

/* With `bytes` a constant, the copy is one store. */
INLINE void put_uint(writer_t *w, uint64_t value, int bytes)
{
    if (w->buf) {
        /* The low bytes, least significant first, are the first in memory
         * of a little-endian value. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        value = __builtin_bswap64(value);
#endif
        memcpy(w->buf + w->len, &value, (size_t)bytes);
    }
    w->len += (apr_size_t)bytes;
}

/* How much of str a limit keeps: at most limit bytes, and never the start
 * of a UTF-8 character without its end, which JSON would show as U+FFFD. */
INLINE apr_size_t kept_length(const char *str, apr_size_t limit)
{
    apr_size_t len = strnlen(str, limit);
    int back;
    if (len < limit)
        return len;
    for (back = 0; back < UTF8_MAX_CONTINUATION && len > 0 && ((unsigned char)str[len] & 0xC0) == 0x80;
         back++)
        len--;
    return len;
}

/* The length str goes out with under limit (NULL_STRING for none),
 * counting a cut. */
INLINE apr_size_t length_within(writer_t *w, const char *str, apr_size_t limit)
{
    apr_size_t len;
    if (!str)
        return NULL_STRING;
    len = kept_length(str, limit);
    if (limit < TG_SPAN_MAX_STRING && len < kept_length(str, TG_SPAN_MAX_STRING))
        w->cut++;
    return len;
}

/* A cut address is no address: it goes whole or not at all. */
INLINE apr_size_t address_length(writer_t *w, const char *address)
{
    apr_size_t limit = w->string_limit;
    if (address && limit < TG_SPAN_MAX_STRING && strnlen(address, TG_SPAN_MAX_STRING) > limit) {
        w->cut++;
        return NULL_STRING;
    }
    return length_within(w, address, TG_SPAN_MAX_STRING);
}

/* Most strings of a record are short (a method, an address, a service's
 * name): up to 16 bytes go by two loads and two stores that may overlap,
 * not by a call. */
INLINE void copy_bytes(unsigned char *dst, const char *src, apr_size_t len)
{
    if (len >= 8 && len <= 16) {
        uint64_t head, tail;
        memcpy(&head, src, 8);
        memcpy(&tail, src + len - 8, 8);
        memcpy(dst, &head, 8);
        memcpy(dst + len - 8, &tail, 8);
    }
    else if (len >= 4 && len < 8) {
        uint32_t head, tail;
        memcpy(&head, src, 4);
        memcpy(&tail, src + len - 4, 4);
        memcpy(dst, &head, 4);
        memcpy(dst + len - 4, &tail, 4);
    }
    else if (len > 0 && len < 4) {
        dst[0] = (unsigned char)src[0];
        dst[len / 2] = (unsigned char)src[len / 2];
        dst[len - 1] = (unsigned char)src[len - 1];
    }
    else {
        memcpy(dst, src, len);
    }
}

INLINE void put_string_of_length(writer_t *w, const char *str, apr_size_t len)
{
    put_uint(w, len, 2);
    if (len == NULL_STRING)
        return;
    if (w->buf) {
        copy_bytes(w->buf + w->len, str, len);
        w->buf[w->len + len] = '\0';
    }
    w->len += len + 1;
}

INLINE void put_string(writer_t *w, const char *str)
{
    put_string_of_length(w, str, length_within(w, str, w->string_limit));
}

/* A tag key is never cut: a cut key names another tag.  Only the short key
 * KEPT_TAG_KEY is still there when strings are cut. */
INLINE void put_key(writer_t *w, const char *key)
{
    put_string_of_length(w, key, length_within(w, key, TG_SPAN_MAX_STRING));
}

/* The fixed part's string i (an enum above), read where it is used: read
 * all at once, they would be kept in registers across each strnlen call,
 * and saved and restored around it. */
INLINE const char *fixed_string(const tg_span_t *span, int i)
{
    switch (i) {
    case NAME: return span->name;
    case METHOD: return span->method;
    case PATH: return span->path;
    case LOCAL_SERVICE: return span->local.service_name;
    case LOCAL_IPV4: return span->local.ipv4;
    case LOCAL_IPV6: return span->local.ipv6;
    case REMOTE_SERVICE: return span->remote.service_name;
    case REMOTE_IPV4: return span->remote.ipv4;
    default: return span->remote.ipv6;
    }
}

/* Measuring notes each fixed string's length in the plan and writing
 * reuses it: a record costs one pass over its strings. */
INLINE void put_fixed_strings(writer_t *w, const tg_span_t *span)
{
    int i;
    /* Unrolled, each string's kind is known where its code is. */
#pragma GCC unroll 9
    for (i = 0; i < FIXED_STRINGS; i++) {
        const char *str = fixed_string(span, i);
        apr_size_t len;
        if (w->planned) {
            len = w->plan->fixed_length[i];
        }
        else {
            int address = i == LOCAL_IPV4 || i == LOCAL_IPV6 || i == REMOTE_IPV4 || i == REMOTE_IPV6;
            len = address ? address_length(w, str) : length_within(w, str, w->string_limit);
            if (!w->buf)
                w->plan->fixed_length[i] = (uint16_t)len;
        }
        put_string_of_length(w, str, len);
    }
}

INLINE void put_tag(writer_t *w, const tg_tag_t *tag)
{
    put_key(w, tag->key);
    put_string(w, tag->value);
}

INLINE void put_note(writer_t *w, const tg_annotation_t *note)
{
    put_uint(w, (uint64_t)note->timestamp, 8);
    put_string(w, note->value);
}

static int length_of(const apr_array_header_t *array)
{
    return array ? array->nelts : 0;
}

static int at_most(int n, int bound)
{
    return n < bound ? n : bound;
}

static int count_kept(const unsigned char *keep, int n)
{
    int kept = 0, i;
    for (i = 0; i < n; i++)
        kept += keep[i];
    return kept;
}

static const tg_tag_t *tag_at(const tg_span_t *span, int i)
{
    return &APR_ARRAY_IDX(span->tags, i, tg_tag_t);
}

static const tg_annotation_t *note_at(const tg_span_t *span, int i)
{
    return &APR_ARRAY_IDX(span->annotations, i, tg_annotation_t);
}

static unsigned flags_of(const tg_span_t *span)
{
    /* A kind we do not know is written as one the reader refuses, rather
     * than masked into one it would take for another. */
    unsigned kind = (unsigned)span->kind <= TG_SPAN_INTERNAL ? (unsigned)span->kind : FLAG_KIND_MASK;
    return kind
           | (span->shared ? FLAG_SHARED : 0)
           | (span->debug ? FLAG_DEBUG : 0)
           | (span->error ? FLAG_ERROR : 0)
           | (span->finished ? FLAG_FINISHED : 0);
}

/* A status code outside what the field holds goes out as unknown. */
static uint64_t status_of(const tg_span_t *span)
{
    return span->status_code > 0 && span->status_code <= 999 ? (uint64_t)span->status_code : 0;
}

INLINE void put_transfer(writer_t *w, const tg_span_t *span)
{
    unsigned known = span->transfer & TG_TRANSFER_ALL;
    put_uint(w, known, 1);
    if (known & TG_TRANSFER_BODY_READ)
        put_uint(w, (uint64_t)span->body_read_at, 8);
    if (known & TG_TRANSFER_FIRST_BYTE)
        put_uint(w, (uint64_t)span->first_byte_at, 8);
    if (known & TG_TRANSFER_REQUEST_BYTES)
        put_uint(w, span->request_bytes, 8);
    if (known & TG_TRANSFER_RESPONSE_BYTES)
        put_uint(w, span->response_bytes, 8);
}

/* Writes the record the plan says (or measures it, with a measuring
 * writer); the CRC last. */
INLINE void write_record(writer_t *w, const tg_span_t *span)
{
    const plan_t *plan = w->plan;
    int i;

    put_uint(w, 'T', 1);
    put_uint(w, 'G', 1);
    put_uint(w, RECORD_VERSION, 1);
    put_uint(w, flags_of(span), 1);
    put_uint(w, span->trace_id.hi, 8);
    put_uint(w, span->trace_id.lo, 8);
    put_uint(w, span->id, 8);
    put_uint(w, span->parent_id, 8);
    put_uint(w, (uint64_t)span->timestamp, 8);
    put_uint(w, (uint64_t)span->duration, 8);
    put_uint(w, plan->dropped < UINT32_MAX ? plan->dropped : UINT32_MAX, 4);
    put_uint(w, status_of(span), 2);
    put_uint(w, span->local.port, 2);
    put_uint(w, span->remote.port, 2);
    put_fixed_strings(w, span);
    put_uint(w, (uint64_t)count_kept(plan->keep_tag, plan->tags), 2);
    for (i = 0; i < plan->tags; i++)
        if (plan->keep_tag[i])
            put_tag(w, tag_at(span, i));
    put_uint(w, (uint64_t)count_kept(plan->keep_note, plan->notes), 2);
    for (i = 0; i < plan->notes; i++)
        if (plan->keep_note[i])
            put_note(w, note_at(span, i));
    put_transfer(w, span);
    put_uint(w, w->buf ? tg_crc32c(w->buf, w->len) : 0, CRC_BYTES);
}

INLINE void plan_everything(plan_t *plan, const tg_span_t *span)
{
    plan->tags = at_most(length_of(span->tags), TG_SPAN_MAX_TAGS);
    plan->notes = at_most(length_of(span->annotations), TG_SPAN_MAX_NOTES_BETWEEN);
    if (plan->tags)
        memset(plan->keep_tag, 1, (size_t)plan->tags);
    if (plan->notes)
        memset(plan->keep_note, 1, (size_t)plan->notes);
    plan->string_limit = TG_SPAN_MAX_STRING;
    /* Entries past the bounds (possible only in a span filled by hand) are
     * counted as dropped, like those tg_span refuses. */
    plan->dropped = (uint64_t)span->dropped
                    + (uint64_t)(length_of(span->tags) - plan->tags)
                    + (uint64_t)(length_of(span->annotations) - plan->notes);
}

/* Measures the record as planned, noting the fixed strings' lengths. */
static writer_t measure_record(const tg_span_t *span, plan_t *plan)
{
    writer_t w = measuring_writer(plan);
    write_record(&w, span);
    return w;
}

/* Each returns the bytes it saves. */
static apr_size_t leave_out_tag(plan_t *plan, const tg_span_t *span, int i)
{
    writer_t w = measuring_writer(plan);
    put_tag(&w, tag_at(span, i));
    plan->keep_tag[i] = 0;
    plan->dropped++;
    return w.len;
}

static apr_size_t leave_out_note(plan_t *plan, const tg_span_t *span, int i)
{
    writer_t w = measuring_writer(plan);
    put_note(&w, note_at(span, i));
    plan->keep_note[i] = 0;
    plan->dropped++;
    return w.len;
}

/* The longest string limit under which the record fits: long strings are
 * cut first, and a string shorter than the limit is not cut at all. */
static void cut_strings_to_fit(plan_t *plan, const tg_span_t *span, apr_size_t cap)
{
    apr_size_t fits = 0, too_long = TG_SPAN_MAX_STRING;
    while (too_long - fits > 1) {
        plan->string_limit = fits + (too_long - fits) / 2;
        if (measure_record(span, plan).len <= cap)
            fits = plan->string_limit;
        else
            too_long = plan->string_limit;
    }
    plan->string_limit = fits;
}

/* Leaves out, in this order, until the record fits: tags from the last
 * backwards but KEPT_TAG_KEY, the notes (all between the first and the
 * last, which bound the span) from the last backwards, then the ends of the
 * longest strings.  With cap >= TG_RECORD_MIN_CAP the last step always
 * succeeds: what is never cut (fixed fields, the error tag's key, the
 * addresses left out) takes under 200 bytes. */
static void plan_to_fit(plan_t *plan, const tg_span_t *span, apr_size_t cap)
{
    apr_size_t len = measure_record(span, plan).len;
    int i;
    for (i = plan->tags - 1; i >= 0 && len > cap; i--)
        if (!tag_at(span, i)->key || strcmp(tag_at(span, i)->key, KEPT_TAG_KEY) != 0)
            len -= leave_out_tag(plan, span, i);
    for (i = plan->notes - 1; i >= 0 && len > cap; i--)
        len -= leave_out_note(plan, span, i);
    if (len > cap)
        cut_strings_to_fit(plan, span, cap);
}

/* Measures the record within cap, leaving out what must go; its length, 0
 * when even that does not fit (cap < TG_RECORD_MIN_CAP). */
static apr_size_t plan_within(const tg_span_t *span, apr_size_t cap, plan_t *plan)
{
    writer_t measured;
    plan_everything(plan, span);
    measured = measure_record(span, plan);
    if (measured.len > cap) {
        if (cap < TG_RECORD_MIN_CAP)
            return plan->length = 0;
        plan_to_fit(plan, span, cap);
        /* The strings cut are counted as dropped in the header, which comes
         * before them: count them first.  This last measure also notes the
         * fixed strings' lengths as they will go out. */
        plan->dropped += measure_record(span, plan).cut;
        measured = measure_record(span, plan);
    }
    return plan->length = measured.len;
}

/* Writes with a writer that does not measure (buf is not NULL), compiled
 * for each kind of writer. */
INLINE apr_size_t write_with(writer_t w, const tg_span_t *span)
{
    /* Says buf is not NULL to the compiler, which then drops the measuring. */
    if (!w.buf)
        return 0;
    write_record(&w, span);
    return w.len;
}

/* The longest record the span can make: each of its strings at the bound. */
static apr_size_t worst_case_length(const tg_span_t *span, const plan_t *plan)
{
    const apr_size_t string = 2 + TG_SPAN_MAX_STRING + 1;
    apr_size_t present = 0;
    int i;
    /* A NULL string is its 2-byte length alone. */
#pragma GCC unroll 9
    for (i = 0; i < FIXED_STRINGS; i++)
        present += fixed_string(span, i) != NULL;
    return FIXED_BYTES + 2 + 2 + CRC_BYTES + FIXED_STRINGS * 2 + present * (string - 2)
           + (apr_size_t)plan->tags * 2 * string + (apr_size_t)plan->notes * (8 + string);
}

/* A span whose largest record fits is written at once, its strings
 * measured as they go: what the request path's spans are.  The others are
 * planned first. */
apr_size_t tg_record_encode(const tg_span_t *span, unsigned char *buf, apr_size_t cap)
{
    plan_t plan;
    plan_everything(&plan, span);
    if (worst_case_length(span, &plan) <= cap)
        return write_with((writer_t){ buf, 0, 0, &plan, 0, TG_SPAN_MAX_STRING }, span);
    if (!plan_within(span, cap, &plan))
        return 0;
    return write_with((writer_t){ buf, 0, 0, &plan, 1, plan.string_limit }, span);
}

/* ---- reading ---- */

/* Reads the copy of the record's body, from `at` to `end`. */
typedef struct {
    const char *at;
    const char *end;
} reader_t;

/* With n a constant, one load. */
INLINE uint64_t load_uint(const void *bytes, int n)
{
    uint64_t value = 0;
    memcpy(&value, bytes, (size_t)n);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    value = __builtin_bswap64(value);
#endif
    return value;
}

/* The string at the reader into *str: it ends with the NUL our writer puts
 * after it.  A NUL inside (which our writer never puts) ends it sooner, as
 * C reads it; the record's layout holds either way.  0 when the record is
 * not one: the string is too long, or runs past the body, or has no NUL
 * after it. */
INLINE int get_string(reader_t *r, const char **str)
{
    apr_size_t len;
    if (r->end - r->at < 2)
        return 0;
    len = (apr_size_t)load_uint(r->at, 2);
    r->at += 2;
    /* NULL_STRING is above the bound: one test lets every string that has
     * its bytes through, a NULL or a bad one to the slow side. */
    if (len > TG_SPAN_MAX_STRING || len >= (apr_size_t)(r->end - r->at)) {
        *str = NULL;
        return len == NULL_STRING;
    }
    if (r->at[len] != '\0')
        return 0;
    *str = r->at;
    r->at += len + 1;
    return 1;
}

/* A count of entries up to bound, and an array with room for them in
 * *array (NULL for none); 0 when the count is not one. */
static int get_array(reader_t *r, apr_pool_t *pool, int bound, int entry_size,
                     apr_array_header_t **array)
{
    int n;
    if (r->end - r->at < 2)
        return 0;
    n = (int)load_uint(r->at, 2);
    r->at += 2;
    if (n > bound)
        return 0;
    *array = n ? apr_array_make(pool, n, entry_size) : NULL;
    return 1;
}

INLINE int get_endpoint_strings(reader_t *r, tg_endpoint_t *endpoint)
{
    return get_string(r, &endpoint->service_name) && get_string(r, &endpoint->ipv4)
           && get_string(r, &endpoint->ipv6);
}

/* The tags and notes, each array filled up to the room made for it. */
static int get_tags_and_notes(reader_t *r, tg_span_t *span)
{
    int i;
    if (!get_array(r, span->pool, TG_SPAN_MAX_TAGS, sizeof(tg_tag_t), &span->tags))
        return 0;
    for (i = 0; span->tags && i < span->tags->nalloc; i++) {
        tg_tag_t *tag = apr_array_push(span->tags);
        if (!get_string(r, &tag->key) || !get_string(r, &tag->value))
            return 0;
    }
    if (!get_array(r, span->pool, TG_SPAN_MAX_NOTES_BETWEEN, sizeof(tg_annotation_t),
                   &span->annotations))
        return 0;
    for (i = 0; span->annotations && i < span->annotations->nalloc; i++) {
        tg_annotation_t *note = apr_array_push(span->annotations);
        if (r->end - r->at < 8)
            return 0;
        note->timestamp = (apr_time_t)load_uint(r->at, 8);
        r->at += 8;
        if (!get_string(r, &note->value))
            return 0;
    }
    return 1;
}

/* The next u64 of the record, when its bit is in `known`; 0 when the record
 * ends before it. */
static int get_transfer_value(reader_t *r, unsigned known, unsigned bit, uint64_t *value)
{
    if (!(known & bit))
        return 1;
    if (r->end - r->at < 8)
        return 0;
    *value = load_uint(r->at, 8);
    r->at += 8;
    return 1;
}

/* The transfer fields, as they were. */
static int get_transfer(reader_t *r, tg_span_t *span)
{
    uint64_t body_read_at = 0, first_byte_at = 0;
    unsigned known;
    if (r->end - r->at < 1)
        return 0;
    known = (unsigned char)*r->at++;
    span->request_bytes = span->response_bytes = 0;
    if ((known & ~TG_TRANSFER_ALL)
        || !get_transfer_value(r, known, TG_TRANSFER_BODY_READ, &body_read_at)
        || !get_transfer_value(r, known, TG_TRANSFER_FIRST_BYTE, &first_byte_at)
        || !get_transfer_value(r, known, TG_TRANSFER_REQUEST_BYTES, &span->request_bytes)
        || !get_transfer_value(r, known, TG_TRANSFER_RESPONSE_BYTES, &span->response_bytes))
        return 0;
    span->transfer = known;
    span->body_read_at = (apr_time_t)body_read_at;
    span->first_byte_at = (apr_time_t)first_byte_at;
    return 1;
}

/* Checks everything the CRC does not say: the record is ours, of this
 * version, long enough for its fixed part, and its trailer matches.
 * Returns the length of the body. */
static int check_frame(const unsigned char *buf, apr_size_t len, apr_size_t *body)
{
    if (len < FIXED_BYTES + CRC_BYTES || buf[0] != 'T' || buf[1] != 'G'
        || buf[2] != RECORD_VERSION)
        return 0;
    *body = len - CRC_BYTES;
    return load_uint(buf + *body, CRC_BYTES) == tg_crc32c(buf, *body);
}

apr_status_t tg_record_decode(const unsigned char *buf, apr_size_t len, apr_pool_t *pool,
                              tg_span_t **out)
{
    reader_t r;
    tg_span_t *span;
    char *copy;
    apr_size_t body;
    unsigned flags;

    if (!check_frame(buf, len, &body))
        return APR_EINVAL;
    flags = buf[3];
    if ((flags & FLAG_KIND_MASK) > TG_SPAN_INTERNAL || (flags & FLAG_RESERVED))
        return APR_EINVAL;
    /* One allocation: the span, then one copy of the body, which its
     * strings point into (read by bytes and memcpy: it needs no alignment). */
    span = apr_palloc(pool, sizeof(*span) + body);
    copy = (char *)(span + 1);
    memcpy(copy, buf, body);
    /* The fixed part, known to be there, read at its offsets.  The span is
     * not zeroed first: each member is written once, here or (the strings,
     * tags and notes) by the reads below. */
    span->pool = pool;
    span->trace_id.hi = load_uint(buf + 4, 8);
    span->trace_id.lo = load_uint(buf + 12, 8);
    span->id = load_uint(buf + 20, 8);
    span->parent_id = load_uint(buf + 28, 8);
    span->kind = (tg_span_kind_t)(flags & FLAG_KIND_MASK);
    span->status_code = (int)load_uint(buf + 56, 2);
    span->local.port = (apr_port_t)load_uint(buf + 58, 2);
    span->remote.port = (apr_port_t)load_uint(buf + 60, 2);
    span->timestamp = (apr_time_t)load_uint(buf + 36, 8);
    span->duration = (apr_time_t)load_uint(buf + 44, 8);
    span->shared = (flags & FLAG_SHARED) != 0;
    span->sampled = 1;
    span->w3c_flags = 0;
    span->debug = (flags & FLAG_DEBUG) != 0;
    span->error = (flags & FLAG_ERROR) != 0;
    span->finished = (flags & FLAG_FINISHED) != 0;
    span->dropped = (unsigned)load_uint(buf + 52, 4);
    r = (reader_t){ copy + FIXED_BYTES, copy + body };
    if (span->status_code > 999 || !get_string(&r, &span->name) || !get_string(&r, &span->method)
        || !get_string(&r, &span->path) || !get_endpoint_strings(&r, &span->local)
        || !get_endpoint_strings(&r, &span->remote) || !get_tags_and_notes(&r, span)
        || !get_transfer(&r, span) || r.at != r.end)
        return APR_EINVAL;
    *out = span;
    return APR_SUCCESS;
}
