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

/* Ids are written on every request that shows them: 16 digits in a dozen
 * instructions.  Each byte's two nibbles go side by side, the most
 * significant byte first, then each nibble n becomes '0' + n, plus the gap
 * from '9' + 1 to 'a' where n > 9. */
void tg_u64_to_hex(uint64_t value, char out[TG_SPAN_ID_HEX_LEN + 1])
{
    __m128i bytes = _mm_cvtsi64_si128((long long)__builtin_bswap64(value));
    __m128i low_nibble = _mm_set1_epi8(0x0f);
    __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble);
    __m128i low = _mm_and_si128(bytes, low_nibble);
    __m128i nibbles = _mm_unpacklo_epi8(high, low);
    __m128i letters = _mm_and_si128(_mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9)),
                                    _mm_set1_epi8('a' - '9' - 1));
    __m128i digits = _mm_add_epi8(_mm_add_epi8(nibbles, _mm_set1_epi8('0')), letters);
    _mm_storeu_si128((__m128i *)out, digits);
    out[TG_SPAN_ID_HEX_LEN] = '\0';
}
#else
/* The two digits of every byte, "00" to "ff": a byte per step instead of a
 * digit. */
static const char hex_pairs[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

void tg_u64_to_hex(uint64_t value, char out[TG_SPAN_ID_HEX_LEN + 1])
{
    int i;
    for (i = TG_SPAN_ID_HEX_LEN - 2; i >= 0; i -= 2) {
        memcpy(out + i, hex_pairs + 2 * (value & 0xff), 2);
        value >>= 8;
    }
    out[TG_SPAN_ID_HEX_LEN] = '\0';
}
#endif

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
    tg_u64_to_hex(id.hi, out);
    tg_u64_to_hex(id.lo, out + 16);
}

int tg_trace_id_is_zero(tg_trace_id_t id)
{
    return id.hi == 0 && id.lo == 0;
}

int tg_trace_id_equal(tg_trace_id_t a, tg_trace_id_t b)
{
    return a.hi == b.hi && a.lo == b.lo;
}

/* xoshiro256** (Blackman and Vigna): fast, and its 256-bit state is seeded
 * from the OS.  Ids need to be unique, not secret; what must never happen is
 * two processes drawing the same sequence, so every fork bumps a generation
 * that each thread compares with the one it seeded under. */
typedef struct {
    uint64_t s[4];
    unsigned generation;
    int seeded;
} rng_state_t;

static _Thread_local rng_state_t rng;
static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void note_fork_in_child(void)
{
    atomic_fetch_add(&fork_generation, 1);
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, note_fork_in_child);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void seed(void)
{
    uint64_t entropy[4];
    int i;
    if (apr_generate_random_bytes((unsigned char *)entropy, sizeof(entropy)) != APR_SUCCESS) {
        /* No OS entropy: still unique per process and thread and instant. */
        struct timespec now;
        uint64_t mix;
        clock_gettime(CLOCK_REALTIME, &now);
        mix = ((uint64_t)now.tv_sec << 32) ^ (uint64_t)now.tv_nsec ^ ((uint64_t)getpid() << 16)
              ^ (uint64_t)(uintptr_t)&rng;
        for (i = 0; i < 4; i++)
            entropy[i] = splitmix64(&mix);
    }
    for (i = 0; i < 4; i++)
        rng.s[i] = entropy[i];
    if (!(rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]))
        rng.s[0] = 1;
    rng.generation = atomic_load(&fork_generation);
    rng.seeded = 1;
}

/* The calling thread's generator, seeded.  The fork handler goes in with
 * the first seed: a fork before any state exists has nothing to repeat. */
static rng_state_t *thread_rng(void)
{
    rng_state_t *state = &rng;
    if (!state->seeded || state->generation != atomic_load_explicit(&fork_generation,
                                                                    memory_order_relaxed)) {
        pthread_once(&atfork_once, install_atfork);
        seed();
    }
    return state;
}

static uint64_t next_random(rng_state_t *state)
{
    uint64_t *s = state->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static uint64_t next_nonzero(rng_state_t *state)
{
    uint64_t id;
    do
        id = next_random(state);
    while (id == 0);
    return id;
}

uint64_t tg_random_span_id(void)
{
    return next_nonzero(thread_rng());
}

tg_trace_id_t tg_random_trace_id(void)
{
    tg_trace_id_t id;
    tg_random_root_ids(&id, NULL);
    return id;
}

void tg_random_root_ids(tg_trace_id_t *trace_id, uint64_t *span_id)
{
    rng_state_t *state = thread_rng();
    trace_id->hi = next_random(state);
    trace_id->lo = next_nonzero(state);
    if (span_id)
        *span_id = next_nonzero(state);
}
