#include "tg_buf.h"

#include <stdlib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

#ifdef __SSE2__
/* Sixteen hex digits at once: the value's bytes most significant first,
 * each split into its two nibbles side by side, then '0' added to each and
 * 'a' - '0' - 10 more to those of 10 or more. */
char *tg_put_hex64(char *p, uint64_t value)
{
    const __m128i low_nibble = _mm_set1_epi8(0x0f);
    __m128i bytes = _mm_cvtsi64_si128((long long)__builtin_bswap64(value));
    __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble);
    __m128i nibbles = _mm_unpacklo_epi8(high, _mm_and_si128(bytes, low_nibble));
    __m128i letters = _mm_and_si128(_mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9)),
                                    _mm_set1_epi8('a' - '0' - 10));
    _mm_storeu_si128((__m128i *)(void *)p,
                     _mm_add_epi8(_mm_add_epi8(nibbles, _mm_set1_epi8('0')), letters));
    return p + 16;
}
#else
/* Eight hex digits, most significant first, as the bytes of a word in
 * memory order: each nibble spread to a byte of its own, the word's bytes
 * reversed on a little-endian CPU, then '0' added to each and 'a' - '0' - 10
 * more to those of 10 or more. */
static uint64_t hex_word(uint32_t half)
{
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t x = half, letters;
    x = (x | x << 16) & 0x0000ffff0000ffffULL;
    x = (x | x << 8) & 0x00ff00ff00ff00ffULL;
    x = (x | x << 4) & 0x0f0f0f0f0f0f0f0fULL;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    letters = ((x + ones * 6) >> 4) & ones;
    return x + ones * '0' + letters * ('a' - '0' - 10);
}

char *tg_put_hex64(char *p, uint64_t value)
{
    uint64_t high = hex_word((uint32_t)(value >> 32)), low = hex_word((uint32_t)value);
    memcpy(p, &high, 8);
    memcpy(p + 8, &low, 8);
    return p + 16;
}
#endif

void tg_buf_append_u64(tg_buf_t *buf, uint64_t value)
{
    if (tg_buf_room_for(buf, TG_DECIMAL_MAX))
        tg_buf_wrote(buf, tg_put_u64(tg_buf_tail(buf), value));
}

