#include "tg_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Makes room for `extra` more bytes plus the terminating NUL. */
static int reserve(tg_buf_t *buf, size_t extra)
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
    if (!reserve(buf, len))
        return;
    if (len)
        memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void tg_buf_puts(tg_buf_t *buf, const char *str)
{
    tg_buf_append(buf, str, strlen(str));
}

void tg_buf_putc(tg_buf_t *buf, char c)
{
    tg_buf_append(buf, &c, 1);
}

void tg_buf_printf(tg_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    int needed;
    va_start(ap, fmt);
    needed = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (needed < 0 || !reserve(buf, (size_t)needed))
        return;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)needed + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)needed;
}
