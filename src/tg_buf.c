#include "tg_buf.h"

#include <stdlib.h>

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

char *tg_buf_detach(tg_buf_t *buf)
{
    char *data = buf->data;
    tg_buf_init(buf);
    return data;
}

void tg_buf_reset(tg_buf_t *buf)
{
    tg_buf_rewind(buf, 0);
}

void tg_buf_rewind(tg_buf_t *buf, size_t len)
{
    if (len < buf->len) {
        buf->len = len;
        buf->data[len] = '\0';
    }
    buf->failed = 0;
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

char *tg_put_u64_from_10e8(char *p, uint64_t value)
{
    if (value < TG_TEN_TO_THE_8 * TG_TEN_TO_THE_8) {
        p = tg_put_below_10e8(p, (uint32_t)(value / TG_TEN_TO_THE_8));
        return tg_put_eight_digits(p, (uint32_t)(value % TG_TEN_TO_THE_8));
    }
    p = tg_put_below_10e8(p, (uint32_t)(value / (TG_TEN_TO_THE_8 * TG_TEN_TO_THE_8)));
    p = tg_put_eight_digits(p, (uint32_t)(value / TG_TEN_TO_THE_8 % TG_TEN_TO_THE_8));
    return tg_put_eight_digits(p, (uint32_t)(value % TG_TEN_TO_THE_8));
}

void tg_buf_append_u64(tg_buf_t *buf, uint64_t value)
{
    if (tg_buf_room_for(buf, TG_DECIMAL_MAX))
        tg_buf_wrote(buf, tg_put_u64(tg_buf_tail(buf), value));
}

