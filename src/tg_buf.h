/* A growable byte buffer for the shipper's encoders.
 *
 * The shipper is a long-lived loop, so its output buffers are reused from
 * batch to batch (tg_buf_reset keeps the memory) instead of living in a pool
 * that grows.  The contents stay NUL-terminated so they can be handed to
 * libcurl or printed.  On allocation failure the buffer keeps what it had and
 * sets `failed`; callers check once at the end instead of after every append. */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stddef.h>

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

void tg_buf_append(tg_buf_t *buf, const void *bytes, size_t len);
void tg_buf_puts(tg_buf_t *buf, const char *str);
void tg_buf_putc(tg_buf_t *buf, char c);
void tg_buf_printf(tg_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
