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
void tg_buf_truncate(tg_buf_t *buf, size_t len);

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

/* The body of the appends: a test and a copy while the buffer has room. */
static inline void tg_buf_write(tg_buf_t *buf, const void *bytes, size_t len)
{
    if (!tg_buf_room_for(buf, len))
        return;
    if (len)
        memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

/* Out of line, for blocks of any length. */
void tg_buf_append(tg_buf_t *buf, const void *bytes, size_t len);

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

/* Appends a copy of data[start, start + len), bytes already in the buffer
 * (which growing may move). */
void tg_buf_append_copy(tg_buf_t *buf, size_t start, size_t len);

/* Decimal, as printf's PRIu64 and PRId64 write them, without its cost. */
void tg_buf_append_u64(tg_buf_t *buf, uint64_t value);
void tg_buf_append_i64(tg_buf_t *buf, int64_t value);

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

/* The room tg_put_u64 and tg_put_i64 need: 20 characters at most (the
 * digits of UINT64_MAX, or a minus sign and the 19 of INT64_MIN), and spare
 * bytes after them, as they store eight digits at a time. */
#define TG_DECIMAL_MAX 24

char *tg_put_u64(char *p, uint64_t value);
char *tg_put_i64(char *p, int64_t value);

/* 16 lowercase hex digits, leading zeros included. */
char *tg_put_hex64(char *p, uint64_t value);

void tg_buf_printf(tg_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
