/* A growable byte buffer for the shipper's encoders.
 *
 * The shipper is a long-lived loop, so its output buffers are reused from
 * batch to batch (tg_buf_reset keeps the memory) instead of living in a pool
 * that grows.  The contents stay NUL-terminated so they can be handed to
 * libcurl or printed.  On allocation failure the buffer keeps what it had and
 * sets `failed`; callers check once at the end instead of after every append.
 *
 * The encoders append a few bytes at a time, tens of times per span, so the
 * short appends (tg_buf_puts, tg_buf_putc, tg_buf_write) are inline: a test
 * and a copy while the buffer has room, a call only to grow it. */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} tg_buf_t;

void tg_buf_init(tg_buf_t *buf);
void tg_buf_free(tg_buf_t *buf);
void tg_buf_reset(tg_buf_t *buf);

/* Back to the first len bytes (no change when there are no more) and out
 * of failure: what was there before stays, what the failed appends after it
 * were to write is given up.  tg_buf_reset is tg_buf_rewind(buf, 0). */
void tg_buf_rewind(tg_buf_t *buf, size_t len);

/* Hands the contents over: returns the data (malloc'd and NUL-terminated,
 * or NULL when nothing was ever written), which the caller frees, and
 * leaves the buffer empty, without memory. */
char *tg_buf_detach(tg_buf_t *buf);

/* Makes room for `extra` more bytes and the NUL after them.  Returns 0,
 * changing nothing, when the buffer has failed or fails now. */
int tg_buf_grow(tg_buf_t *buf, size_t extra);

static inline int tg_buf_room_for(tg_buf_t *buf, size_t extra)
{
    return (!buf->failed && extra < buf->cap - buf->len) || tg_buf_grow(buf, extra);
}

/* len bytes of any kind; the body of the other appends: a test and a copy
 * while the buffer has room. */
static inline void tg_buf_write(tg_buf_t *buf, const void *bytes, size_t len)
{
    if (!tg_buf_room_for(buf, len))
        return;
    if (len)
        memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

static inline void tg_buf_puts(tg_buf_t *buf, const char *str)
{
    tg_buf_write(buf, str, strlen(str));
}

static inline void tg_buf_putc(tg_buf_t *buf, char c)
{
    if (!tg_buf_room_for(buf, 1))
        return;
    buf->data[buf->len++] = c;
    buf->data[buf->len] = '\0';
}

/* Decimal, as printf's PRIu64 writes it, without its cost. */
void tg_buf_append_u64(tg_buf_t *buf, uint64_t value);

/* Raw writing, for an encoder that makes room for the most a whole item can
 * take (one tg_buf_room_for) and then writes it without a test per piece:
 * each writer puts its bytes at `p` and returns where they end, and
 * tg_buf_wrote closes the buffer there. */
static inline char *tg_buf_tail(tg_buf_t *buf)
{
    return buf->data + buf->len;
}

static inline void tg_buf_wrote(tg_buf_t *buf, char *end)
{
    buf->len = (size_t)(end - buf->data);
    *end = '\0';
}

/* A string literal, copied by its constant length (a few moves, no call). */
#define TG_PUT_LITERAL(p, literal) \
    (memcpy((p), (literal), sizeof(literal) - 1), (p) + sizeof(literal) - 1)

/* Decimal, eight digits at a time, inline: an encoder writes several
 * numbers per span, mostly short ones.  The room they need: 20 characters
 * at most (the digits of UINT64_MAX, or a minus sign and the 19 of
 * INT64_MIN), and spare bytes after them, as they store eight at once. */
#define TG_DECIMAL_MAX 24
#define TG_TEN_TO_THE_8 UINT64_C(100000000)

/* The digits of n < 10^8 as the values 0 to 9 in the bytes of a word, in
 * memory order, without a table or a loop (Paul Khuong's method, checked
 * for every n below 10^8): n split in two halves of four digits, each in a
 * 32-bit lane, each lane in two of two digits (16-bit lanes), each of those
 * in two digits (bytes), dividing by multiplying. */
static inline uint64_t tg_digit_values(uint32_t n)
{
    uint64_t fours = (uint64_t)(n / 10000) | (uint64_t)(n % 10000) << 32;
    uint64_t high_pairs = ((fours * 10486) >> 20) & 0x0000007f0000007fULL; /* / 100 */
    uint64_t pairs = ((fours - 100 * high_pairs) << 16) + high_pairs;
    uint64_t tens = ((pairs * 103) >> 10) & 0x000f000f000f000fULL; /* / 10 */
    uint64_t values = tens + ((pairs - 10 * tens) << 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    values = __builtin_bswap64(values);
#endif
    return values;
}

#define TG_ASCII_ZEROS 0x3030303030303030ULL

/* The eight digits of n < 10^8, leading zeros included. */
static inline char *tg_put_eight_digits(char *p, uint32_t n)
{
    uint64_t word = tg_digit_values(n) + TG_ASCII_ZEROS;
    memcpy(p, &word, 8);
    return p + 8;
}

/* The digits of n < 10^8, the leading zeros (the zero bytes that come
 * first in memory, of which there are at most seven) shifted out. */
static inline char *tg_put_below_10e8(char *p, uint32_t n)
{
    uint64_t values = tg_digit_values(n), word;
    unsigned zeros;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    zeros = (unsigned)__builtin_ctzll(values | (UINT64_C(1) << 56)) >> 3;
    word = (values + TG_ASCII_ZEROS) >> (8 * zeros);
#else
    zeros = (unsigned)__builtin_clzll(values | 1) >> 3;
    word = (values + TG_ASCII_ZEROS) << (8 * zeros);
#endif
    memcpy(p, &word, 8);
    return p + 8 - zeros;
}

/* tg_put_u64 for 10^8 and more, out of line. */
char *tg_put_u64_from_10e8(char *p, uint64_t value);

static inline __attribute__((always_inline)) char *tg_put_u64(char *p, uint64_t value)
{
    if (value < TG_TEN_TO_THE_8)
        return tg_put_below_10e8(p, (uint32_t)value);
    return tg_put_u64_from_10e8(p, value);
}

static inline char *tg_put_i64(char *p, int64_t value)
{
    if (value >= 0)
        return tg_put_u64(p, (uint64_t)value);
    /* The magnitude of INT64_MIN is no int64_t: negate in unsigned. */
    *p = '-';
    return tg_put_u64(p + 1, -(uint64_t)value);
}

#endif
