#include "tg_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Digits of UINT64_MAX, 18446744073709551615, and room for a minus sign. */
#define MAX_DECIMAL_LEN 21

void tg_buf_init(tg_buf_t *buf)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->failed = 0;
}

void tg_buf_free(tg_buf_t *buf)
{
    free(buf->data);
    tg_buf_init(buf);
}

void tg_buf_reset(tg_buf_t *buf)
{
    tg_buf_truncate(buf, 0);
    buf->failed = 0;
}

void tg_buf_truncate(tg_buf_t *buf, size_t len)
{
    if (len < buf->len) {
        buf->len = len;
        buf->data[len] = '\0';
    }
}

int tg_buf_grow(tg_buf_t *buf, size_t extra)
{
    size_t need, cap;
    char *grown;
    if (buf->failed)
        return 0;
    if (extra > (size_t)-1 / 2 - buf->len) {
        buf->failed = 1;
        return 0;
    }
    need = buf->len + extra + 1;
    if (need <= buf->cap)
        return 1;
    cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap *= 2;
    grown = realloc(buf->data, cap);
    if (!grown) {
        buf->failed = 1;
        return 0;
    }
    buf->data = grown;
    buf->cap = cap;
    return 1;
}

void tg_buf_append(tg_buf_t *buf, const void *bytes, size_t len)
{
    tg_buf_write(buf, bytes, len);
}

void tg_buf_append_copy(tg_buf_t *buf, size_t start, size_t len)
{
    if (start > buf->len || len > buf->len - start || !tg_buf_room_for(buf, len))
        return;
    memcpy(buf->data + buf->len, buf->data + start, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

/* Two digits per step, from a table of "00" to "99": half the divisions of
 * one digit at a time. */
static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Writes value's digits to end at `end`; returns where they start. */
static char *decimal_before(char *end, uint64_t value)
{
    while (value >= 100) {
        end -= 2;
        memcpy(end, digit_pairs + 2 * (value % 100), 2);
        value /= 100;
    }
    if (value >= 10) {
        end -= 2;
        memcpy(end, digit_pairs + 2 * value, 2);
    }
    else {
        *--end = (char)('0' + value);
    }
    return end;
}

static void append_decimal(tg_buf_t *buf, uint64_t magnitude, int negative)
{
    char text[MAX_DECIMAL_LEN];
    char *end = text + sizeof(text), *start = decimal_before(end, magnitude);
    if (negative)
        *--start = '-';
    tg_buf_write(buf, start, (size_t)(end - start));
}

void tg_buf_append_u64(tg_buf_t *buf, uint64_t value)
{
    append_decimal(buf, value, 0);
}

void tg_buf_append_i64(tg_buf_t *buf, int64_t value)
{
    /* The magnitude of INT64_MIN is no int64_t: negate in unsigned. */
    append_decimal(buf, value < 0 ? -(uint64_t)value : (uint64_t)value, value < 0);
}

void tg_buf_printf(tg_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    int needed;
    va_start(ap, fmt);
    needed = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (needed < 0 || !tg_buf_room_for(buf, (size_t)needed))
        return;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)needed + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)needed;
}
