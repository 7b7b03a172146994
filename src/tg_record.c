#include "tg_record.h"

#include <apr_strings.h>
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HAVE_CRC32_INSTRUCTION 1
#endif

/* Version 2 layout, integers little-endian:
 *
 *   "TG"  u8 version  u8 flags (kind in bits 0-2, then shared, debug, error,
 *         finished; bit 7 must be 0)
 *   u64 trace id hi, u64 trace id lo, u64 id, u64 parent id,
 *   u64 timestamp, u64 duration (apr_time_t, two's complement), u32 dropped
 *   strings: name, local service/ipv4/ipv6, remote service/ipv4/ipv6
 *   u16 local port, u16 remote port
 *   u16 tag count, then per tag: string key, string value
 *   u16 note count, then per note: u64 timestamp, string value
 *   u32 CRC-32C (tg_crc32c) of every byte before it
 *
 * A string is a u16 length and that many bytes (no NUL), or the length
 * NULL_STRING alone for a NULL pointer.  The version changes whenever this
 * layout does: the shipper may outlive a graceful restart by a moment and
 * must refuse what it cannot read rather than misread it.  (Version 1 had
 * the same fields under a CRC-32 of zlib's polynomial.) */

#define RECORD_VERSION 2
#define NULL_STRING 0xFFFFu

#define FLAG_KIND_MASK 0x07u
#define FLAG_SHARED 0x08u
#define FLAG_DEBUG 0x10u
#define FLAG_ERROR 0x20u
#define FLAG_FINISHED 0x40u
#define FLAG_RESERVED 0x80u

#define CRC_BYTES 4

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
/* Compiled for SSE4.2 alone, and called only when the CPU has it. */
__attribute__((target("sse4.2")))
static uint32_t crc32c_instruction(const unsigned char *p, size_t len)
{
    uint64_t crc = 0xFFFFFFFFU;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t word;
        memcpy(&word, p, sizeof(word));
        crc = _mm_crc32_u64(crc, word);
    }
    for (; len > 0; p++, len--)
        crc = _mm_crc32_u8((uint32_t)crc, *p);
    return ~(uint32_t)crc;
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

/* The tags a reader of the span needs most: kept while others can go. */
static const char *const kept_tag_keys[] = { "http.method", "http.path", "http.status_code", "error" };

/* A valid UTF-8 character has at most this many bytes after its first. */
#define UTF8_MAX_CONTINUATION 3

typedef struct {
    unsigned char *buf; /* NULL to measure only */
    apr_size_t cap;
    apr_size_t len;
    int overflow;
    apr_size_t string_limit; /* bytes kept of a name, value or note */
    unsigned cut;            /* strings string_limit cut short */
} writer_t;

/* What of a span goes into its record. */
typedef struct {
    int tags;  /* entries within the span's bounds, */
    int notes; /* some of which may be left out: */
    unsigned char keep_tag[TG_SPAN_MAX_TAGS];
    unsigned char keep_note[TG_SPAN_MAX_ANNOTATIONS];
    apr_size_t string_limit;
    uint64_t dropped; /* the span's own count and everything left out */
} plan_t;

static writer_t measuring_writer(apr_size_t string_limit)
{
    return (writer_t){ NULL, APR_SIZE_MAX, 0, 0, string_limit, 0 };
}

static int make_room(writer_t *w, apr_size_t n)
{
    if (w->overflow || n > w->cap - w->len)
        w->overflow = 1;
    return !w->overflow;
}

/* Inlined wherever it is called, with `bytes` a constant there, so that
 * the copy is one store. */
static inline __attribute__((always_inline)) void put_uint(writer_t *w, uint64_t value, int bytes)
{
    if (!make_room(w, (apr_size_t)bytes))
        return;
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
 * of a UTF-8 character without its end, which JSON would show as U+FFFD.
 * Spans built by tg_span are already within TG_SPAN_MAX_STRING; a string
 * set by hand is cut there too. */
static apr_size_t kept_length(const char *str, apr_size_t limit)
{
    apr_size_t len = strnlen(str, limit);
    int back;
    for (back = 0; back < UTF8_MAX_CONTINUATION && len > 0 && ((unsigned char)str[len] & 0xC0) == 0x80;
         back++)
        len--;
    return len;
}

static void put_length_and_bytes(writer_t *w, const char *str, apr_size_t len)
{
    put_uint(w, len, 2);
    if (!make_room(w, len))
        return;
    if (w->buf)
        memcpy(w->buf + w->len, str, len);
    w->len += len;
}

static void put_string_within(writer_t *w, const char *str, apr_size_t limit)
{
    apr_size_t len;
    if (!str) {
        put_uint(w, NULL_STRING, 2);
        return;
    }
    len = kept_length(str, limit);
    if (limit < TG_SPAN_MAX_STRING && len < kept_length(str, TG_SPAN_MAX_STRING))
        w->cut++;
    put_length_and_bytes(w, str, len);
}

static void put_string(writer_t *w, const char *str)
{
    put_string_within(w, str, w->string_limit);
}

/* A tag key is never cut: a cut key names another tag.  Only the short keys
 * of kept_tag_keys are still there when strings are cut. */
static void put_key(writer_t *w, const char *key)
{
    put_string_within(w, key, TG_SPAN_MAX_STRING);
}

/* A cut address is no address: it goes whole or not at all. */
static void put_address(writer_t *w, const char *address)
{
    if (address && strnlen(address, TG_SPAN_MAX_STRING) > w->string_limit) {
        w->cut++;
        address = NULL;
    }
    put_string_within(w, address, TG_SPAN_MAX_STRING);
}

static void put_endpoint_strings(writer_t *w, const tg_endpoint_t *endpoint)
{
    put_string(w, endpoint->service_name);
    put_address(w, endpoint->ipv4);
    put_address(w, endpoint->ipv6);
}

static void put_tag(writer_t *w, const tg_tag_t *tag)
{
    put_key(w, tag->key);
    put_string(w, tag->value);
}

static void put_note(writer_t *w, const tg_annotation_t *note)
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
    unsigned kind = (unsigned)span->kind <= TG_SPAN_CONSUMER ? (unsigned)span->kind : FLAG_KIND_MASK;
    return kind
           | (span->shared ? FLAG_SHARED : 0)
           | (span->debug ? FLAG_DEBUG : 0)
           | (span->error ? FLAG_ERROR : 0)
           | (span->finished ? FLAG_FINISHED : 0);
}

/* Writes the record the plan says (or measures it, with a measuring
 * writer); the CRC last. */
static void write_record(writer_t *w, const tg_span_t *span, const plan_t *plan)
{
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
    put_string(w, span->name);
    put_endpoint_strings(w, &span->local);
    put_endpoint_strings(w, &span->remote);
    put_uint(w, span->local.port, 2);
    put_uint(w, span->remote.port, 2);
    put_uint(w, (uint64_t)count_kept(plan->keep_tag, plan->tags), 2);
    for (i = 0; i < plan->tags; i++)
        if (plan->keep_tag[i])
            put_tag(w, tag_at(span, i));
    put_uint(w, (uint64_t)count_kept(plan->keep_note, plan->notes), 2);
    for (i = 0; i < plan->notes; i++)
        if (plan->keep_note[i])
            put_note(w, note_at(span, i));
    put_uint(w, w->buf && !w->overflow ? tg_crc32c(w->buf, w->len) : 0, CRC_BYTES);
}

static void plan_everything(plan_t *plan, const tg_span_t *span)
{
    plan->tags = at_most(length_of(span->tags), TG_SPAN_MAX_TAGS);
    plan->notes = at_most(length_of(span->annotations), TG_SPAN_MAX_ANNOTATIONS);
    memset(plan->keep_tag, 1, sizeof(plan->keep_tag));
    memset(plan->keep_note, 1, sizeof(plan->keep_note));
    plan->string_limit = TG_SPAN_MAX_STRING;
    /* Entries past the bounds (possible only in a span filled by hand) are
     * counted as dropped, like those tg_span refuses. */
    plan->dropped = (uint64_t)span->dropped
                    + (uint64_t)(length_of(span->tags) - plan->tags)
                    + (uint64_t)(length_of(span->annotations) - plan->notes);
}

static writer_t measure_record(const tg_span_t *span, const plan_t *plan)
{
    writer_t w = measuring_writer(plan->string_limit);
    write_record(&w, span, plan);
    return w;
}

static int is_kept_tag(const tg_tag_t *tag)
{
    size_t i;
    for (i = 0; tag->key && i < sizeof(kept_tag_keys) / sizeof(kept_tag_keys[0]); i++)
        if (strcmp(tag->key, kept_tag_keys[i]) == 0)
            return 1;
    return 0;
}

/* Each returns the bytes it saves. */
static apr_size_t leave_out_tag(plan_t *plan, const tg_span_t *span, int i)
{
    writer_t w = measuring_writer(plan->string_limit);
    put_tag(&w, tag_at(span, i));
    plan->keep_tag[i] = 0;
    plan->dropped++;
    return w.len;
}

static apr_size_t leave_out_note(plan_t *plan, const tg_span_t *span, int i)
{
    writer_t w = measuring_writer(plan->string_limit);
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
 * backwards but those of kept_tag_keys, the notes between the first and the
 * last (which bound the span) from the last backwards, then the ends of
 * the longest strings.  With cap >= TG_RECORD_MIN_CAP the last step always
 * succeeds: what is never cut (fixed fields, up to TG_SPAN_MAX_TAGS keys of
 * kept_tag_keys, two notes) takes under 600 bytes. */
static void plan_to_fit(plan_t *plan, const tg_span_t *span, apr_size_t cap)
{
    apr_size_t len = measure_record(span, plan).len;
    int i;
    for (i = plan->tags - 1; i >= 0 && len > cap; i--)
        if (!is_kept_tag(tag_at(span, i)))
            len -= leave_out_tag(plan, span, i);
    for (i = plan->notes - 2; i >= 1 && len > cap; i--)
        len -= leave_out_note(plan, span, i);
    if (len > cap)
        cut_strings_to_fit(plan, span, cap);
}

apr_size_t tg_record_encode(const tg_span_t *span, unsigned char *buf, apr_size_t cap)
{
    writer_t w = { buf, cap, 0, 0, TG_SPAN_MAX_STRING, 0 };
    plan_t plan;

    plan_everything(&plan, span);
    write_record(&w, span, &plan);
    if (!w.overflow || cap < TG_RECORD_MIN_CAP)
        return w.overflow ? 0 : w.len;
    plan_to_fit(&plan, span, cap);
    /* The strings cut are counted as dropped in the header, which comes
     * before them: count them first. */
    plan.dropped += measure_record(span, &plan).cut;
    w = (writer_t){ buf, cap, 0, 0, plan.string_limit, 0 };
    write_record(&w, span, &plan);
    return w.overflow ? 0 : w.len;
}

/* ---- reading ---- */

typedef struct {
    const unsigned char *buf;
    apr_size_t len;
    apr_size_t pos;
    int bad;
    char *strings; /* where the next string goes, NUL-terminated */
} reader_t;

static const unsigned char *take(reader_t *r, apr_size_t n)
{
    const unsigned char *bytes;
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    bytes = r->buf + r->pos;
    r->pos += n;
    return bytes;
}

/* Inlined like put_uint, so that the copy is one load. */
static inline __attribute__((always_inline)) uint64_t get_uint(reader_t *r, int n)
{
    const unsigned char *bytes = take(r, (apr_size_t)n);
    uint64_t value = 0;
    if (!bytes)
        return 0;
    memcpy(&value, bytes, (size_t)n);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    value = __builtin_bswap64(value);
#endif
    return value;
}

static const char *get_string(reader_t *r)
{
    char *str;
    apr_size_t len = (apr_size_t)get_uint(r, 2);
    const unsigned char *bytes;
    if (r->bad || len == NULL_STRING)
        return NULL;
    if (len > TG_SPAN_MAX_STRING) {
        r->bad = 1;
        return NULL;
    }
    bytes = take(r, len);
    /* Our writer never puts a NUL inside a string; C would cut it there. */
    if (!bytes || memchr(bytes, '\0', len)) {
        r->bad = 1;
        return NULL;
    }
    str = r->strings;
    memcpy(str, bytes, len);
    str[len] = '\0';
    r->strings += len + 1;
    return str;
}

static int get_count(reader_t *r, int bound)
{
    int n = (int)get_uint(r, 2);
    if (n > bound)
        r->bad = 1;
    return r->bad ? 0 : n;
}

static void get_endpoint_strings(reader_t *r, tg_endpoint_t *endpoint)
{
    endpoint->service_name = get_string(r);
    endpoint->ipv4 = get_string(r);
    endpoint->ipv6 = get_string(r);
}

/* Checks everything the CRC does not say: the record is ours, of this
 * version, and its trailer matches.  Returns the length of the body. */
static int check_frame(const unsigned char *buf, apr_size_t len, apr_size_t *body)
{
    reader_t trailer;
    if (len < 4 + CRC_BYTES || buf[0] != 'T' || buf[1] != 'G' || buf[2] != RECORD_VERSION)
        return 0;
    *body = len - CRC_BYTES;
    trailer = (reader_t){ buf, len, *body, 0, NULL };
    return get_uint(&trailer, CRC_BYTES) == tg_crc32c(buf, *body);
}

apr_status_t tg_record_decode(const unsigned char *buf, apr_size_t len, apr_pool_t *pool,
                              tg_span_t **out)
{
    reader_t r;
    tg_span_t *span;
    apr_size_t body;
    unsigned flags;
    int tags, notes, i;

    if (!check_frame(buf, len, &body))
        return APR_EINVAL;
    /* One block for every string: each takes its bytes and a NUL where the
     * record has its bytes and a 2-byte length, so the body's length is
     * room enough. */
    r = (reader_t){ buf, body, 4, 0, apr_palloc(pool, body) };
    flags = buf[3];
    if ((flags & FLAG_KIND_MASK) > TG_SPAN_CONSUMER || (flags & FLAG_RESERVED))
        return APR_EINVAL;

    span = apr_pcalloc(pool, sizeof(*span));
    span->pool = pool;
    span->kind = (tg_span_kind_t)(flags & FLAG_KIND_MASK);
    span->shared = (flags & FLAG_SHARED) != 0;
    span->debug = (flags & FLAG_DEBUG) != 0;
    span->error = (flags & FLAG_ERROR) != 0;
    span->finished = (flags & FLAG_FINISHED) != 0;
    span->trace_id.hi = get_uint(&r, 8);
    span->trace_id.lo = get_uint(&r, 8);
    span->id = get_uint(&r, 8);
    span->parent_id = get_uint(&r, 8);
    span->timestamp = (apr_time_t)get_uint(&r, 8);
    span->duration = (apr_time_t)get_uint(&r, 8);
    span->dropped = (unsigned)get_uint(&r, 4);
    span->name = get_string(&r);
    get_endpoint_strings(&r, &span->local);
    get_endpoint_strings(&r, &span->remote);
    span->local.port = (apr_port_t)get_uint(&r, 2);
    span->remote.port = (apr_port_t)get_uint(&r, 2);

    tags = get_count(&r, TG_SPAN_MAX_TAGS);
    span->tags = apr_array_make(pool, tags ? tags : 1, sizeof(tg_tag_t));
    for (i = 0; i < tags && !r.bad; i++) {
        tg_tag_t *tag = apr_array_push(span->tags);
        tag->key = get_string(&r);
        tag->value = get_string(&r);
    }
    notes = get_count(&r, TG_SPAN_MAX_ANNOTATIONS);
    span->annotations = apr_array_make(pool, notes ? notes : 1, sizeof(tg_annotation_t));
    for (i = 0; i < notes && !r.bad; i++) {
        tg_annotation_t *note = apr_array_push(span->annotations);
        note->timestamp = (apr_time_t)get_uint(&r, 8);
        note->value = get_string(&r);
    }

    if (r.bad || r.pos != r.len)
        return APR_EINVAL;
    *out = span;
    return APR_SUCCESS;
}
