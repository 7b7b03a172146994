#include "tg_ids.h"

#include <apr_general.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int tg_hex_to_u64(const char *hex, size_t len, uint64_t *out)
{
    uint64_t value = 0;
    size_t i;
    if (len == 0 || len > 16)
        return 0;
    for (i = 0; i < len; i++) {
        int digit = hex_value(hex[i]);
        if (digit < 0)
            return 0;
        value = (value << 4) | (uint64_t)digit;
    }
    *out = value;
    return 1;
}

#ifdef __SSE2__
#include <emmintrin.h>

/* Ids are written on every request that shows them and in every span
 * exported: 16 digits in a dozen instructions.  Each byte's two nibbles go
 * side by side, the most significant byte first, then each nibble n becomes
 * '0' + n, plus the gap from '9' + 1 to 'a' where n > 9. */
static inline char *put_hex64(char *p, uint64_t value)
{
    __m128i bytes = _mm_cvtsi64_si128((long long)__builtin_bswap64(value));
    __m128i low_nibble = _mm_set1_epi8(0x0f);
    __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble);
    __m128i nibbles = _mm_unpacklo_epi8(high, _mm_and_si128(bytes, low_nibble));
    __m128i letters = _mm_and_si128(_mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9)),
                                    _mm_set1_epi8('a' - '9' - 1));
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

static inline char *put_hex64(char *p, uint64_t value)
{
    uint64_t high = hex_word((uint32_t)(value >> 32)), low = hex_word((uint32_t)value);
    memcpy(p, &high, 8);
    memcpy(p + 8, &low, 8);
    return p + 16;
}
#endif

char *tg_put_hex64(char *p, uint64_t value)
{
    return put_hex64(p, value);
}

void tg_u64_to_hex(uint64_t value, char out[TG_SPAN_ID_HEX_LEN + 1])
{
    *put_hex64(out, value) = '\0';
}

int tg_trace_id_from_hex(const char *hex, size_t len, tg_trace_id_t *out)
{
    tg_trace_id_t id = {0, 0};
    if (len == 16) {
        if (!tg_hex_to_u64(hex, 16, &id.lo))
            return 0;
    }
    else if (len != 32 || !tg_hex_to_u64(hex, 16, &id.hi) || !tg_hex_to_u64(hex + 16, 16, &id.lo)) {
        return 0;
    }
    *out = id;
    return 1;
}

void tg_trace_id_to_hex(tg_trace_id_t id, char out[TG_TRACE_ID_HEX_LEN + 1])
{
    *put_hex64(put_hex64(out, id.hi), id.lo) = '\0';
}

int tg_trace_id_is_zero(tg_trace_id_t id)
{
    return id.hi == 0 && id.lo == 0;
}

int tg_trace_id_equal(tg_trace_id_t a, tg_trace_id_t b)
{
    return a.hi == b.hi && a.lo == b.lo;
}

/* Ids are splitmix64 (Steele, Lea and Flood) drawn from one counter that
 * every thread of a process shares: position n gives mix(key + n * GAMMA),
 * where the key is seeded from the OS.  mix is a bijection, so no two draws
 * of a process repeat until the counter wraps, whichever threads make them;
 * and a draw is a few multiplies, each thread taking its positions from the
 * counter in blocks (one atomic add every POSITIONS_PER_BLOCK positions).
 * Ids need to be unique, not secret; what must never happen is two
 * processes drawing the same sequence, so a forked child takes a fresh key
 * before it returns from fork(). */
#define GAMMA 0x9e3779b97f4a7c15ULL

static struct {
    _Atomic uint64_t counter;
    uint64_t key;
    atomic_int seeded;
} generator;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void take_fresh_key(void)
{
    uint64_t key;
    if (apr_generate_random_bytes((unsigned char *)&key, sizeof(key)) != APR_SUCCESS) {
        /* No OS entropy: still unique per process and instant. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        key = mix(((uint64_t)now.tv_sec << 32) ^ (uint64_t)now.tv_nsec
                  ^ ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&now);
    }
    generator.key = key;
}

static void seed(void)
{
    take_fresh_key();
    /* A fork before the first draw has nothing to repeat: the handler goes
     * in with the first key. */
    pthread_atfork(NULL, NULL, take_fresh_key);
    atomic_store_explicit(&generator.seeded, 1, memory_order_release);
}

/* Positions a thread takes from the shared counter at once: the counter's
 * atomic add (a locked instruction, ~5 ns, a fifth of what the queue costs a
 * span) then comes once every ~20 spans instead of at each. */
#define POSITIONS_PER_BLOCK 64

/* The positions this thread took and has not drawn yet, [next, end).  A
 * forked child keeps its thread's block: the same positions as its parent's
 * thread, drawn under the child's fresh key, as the counter itself is. */
static _Thread_local struct {
    uint64_t next, end;
} block;

/* The first of n consecutive positions of the sequence, taken for the
 * caller alone. */
static uint64_t take_positions(unsigned n)
{
    uint64_t first;
    if (block.end - block.next >= n) {
        first = block.next;
        block.next += n;
        return first;
    }
    if (!atomic_load_explicit(&generator.seeded, memory_order_acquire))
        pthread_once(&seed_once, seed);
    first = atomic_fetch_add_explicit(&generator.counter, POSITIONS_PER_BLOCK, memory_order_relaxed);
    block.next = first + n;
    block.end = first + POSITIONS_PER_BLOCK;
    return first;
}

static uint64_t draw_at(uint64_t position)
{
    return mix(generator.key + position * GAMMA);
}

/* mix is zero at one position only: the next one is then taken instead. */
static uint64_t draw_nonzero(void)
{
    uint64_t id;
    do
        id = draw_at(take_positions(1));
    while (id == 0);
    return id;
}

uint64_t tg_random_span_id(void)
{
    return draw_nonzero();
}

void tg_random_root_ids(tg_trace_id_t *trace_id, uint64_t *span_id)
{
    uint64_t position = take_positions(3);
    trace_id->hi = draw_at(position);
    trace_id->lo = draw_at(position + 1);
    if (!trace_id->lo)
        trace_id->lo = draw_nonzero();
    if (span_id) {
        *span_id = draw_at(position + 2);
        if (!*span_id)
            *span_id = draw_nonzero();
    }
}
