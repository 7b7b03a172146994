/* What every fuzz target shares: libFuzzer's entry points around
 * fuzz_one(), a per-input pool that AddressSanitizer can see into, and the
 * helpers of fuzz.h. */
#include "fuzz.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "tg_hmac.h"

/* ---- pool memory that AddressSanitizer can see ----
 *
 * An APR pool carves its allocations out of large blocks, so a read or a
 * write past the end of one lands in the next and no sanitizer notices.
 * While an input runs, apr_palloc and apr_pcalloc (ours, and libapr's own
 * calls, which go through the PLT) give each allocation a malloc of its
 * own instead, freed once the pool has been cleared after the input. */

typedef void *palloc_fn(apr_pool_t *pool, apr_size_t size);

static struct {
    void **blocks;
    size_t n, cap;
    int on;
} tracked;

static void *tracked_block(apr_size_t size)
{
    void *block;
    if (tracked.n == tracked.cap) {
        tracked.cap = tracked.cap ? 2 * tracked.cap : 256;
        tracked.blocks = realloc(tracked.blocks, tracked.cap * sizeof(*tracked.blocks));
        if (!tracked.blocks)
            abort();
    }
    block = malloc(size ? size : 1);
    if (!block)
        abort();
    tracked.blocks[tracked.n++] = block;
    return block;
}

static void free_tracked_blocks(void)
{
    size_t i;
    for (i = 0; i < tracked.n; i++)
        free(tracked.blocks[i]);
    tracked.n = 0;
}

static palloc_fn *real_allocator(const char *name)
{
    palloc_fn *real = (palloc_fn *)dlsym(RTLD_NEXT, name);
    if (!real)
        abort();
    return real;
}

APR_DECLARE(void *) apr_palloc(apr_pool_t *pool, apr_size_t size)
{
    static palloc_fn *real;
    if (tracked.on)
        return tracked_block(size);
    if (!real)
        real = real_allocator("apr_palloc");
    return real(pool, size);
}

#undef apr_pcalloc
APR_DECLARE(void *) apr_pcalloc(apr_pool_t *pool, apr_size_t size);
APR_DECLARE(void *) apr_pcalloc(apr_pool_t *pool, apr_size_t size)
{
    static palloc_fn *real;
    if (tracked.on)
        return memset(tracked_block(size), 0, size);
    if (!real)
        real = real_allocator("apr_pcalloc");
    return real(pool, size);
}

/* ---- libFuzzer's entry points ---- */

static apr_pool_t *input_pool;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&input_pool, NULL) != APR_SUCCESS)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tracked.on = 1;
    fuzz_one(data, size, input_pool);
    /* The pool's cleanups may still use its memory. */
    apr_pool_clear(input_pool);
    tracked.on = 0;
    free_tracked_blocks();
    return 0;
}

/* ---- helpers ---- */

void fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "\n== invariant broken at %s:%d: %s\n", file, line, what);
    abort();
}

const char *fuzz_string(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    char *copy = apr_palloc(pool, size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    return copy;
}

int fuzz_split(const uint8_t *data, size_t size, const char **parts, int n, apr_pool_t *pool)
{
    const char *text = fuzz_string(data, size, pool);
    const char *end = text + size;
    int count = 0, i;
    while (count < n && text <= end) {
        parts[count++] = text;
        text += strlen(text) + 1;
    }
    for (i = count; i < n; i++)
        parts[i] = NULL;
    return count;
}

const char *fuzz_signature(const char *text, const char *key, apr_pool_t *pool)
{
    char *hex = apr_palloc(pool, TG_HMAC_SHA1_HEX_LEN + 1);
    tg_hmac_sha1_hex(key, strlen(key), text, strlen(text), hex);
    return hex;
}

int fuzz_is_sampling(tg_sampling_t s)
{
    return s == TG_SAMPLING_ACCEPT || s == TG_SAMPLING_DENY || s == TG_SAMPLING_DEFER;
}

int fuzz_same_ids(const tg_context_t *a, const tg_context_t *b)
{
    return tg_trace_id_equal(a->trace_id, b->trace_id) && a->span_id == b->span_id
           && a->parent_id == b->parent_id;
}

int fuzz_same_decision(const tg_context_t *a, const tg_context_t *b)
{
    return a->sampling == b->sampling && !!a->debug == !!b->debug;
}

int fuzz_same_context(const tg_context_t *a, const tg_context_t *b)
{
    return fuzz_same_ids(a, b) && fuzz_same_decision(a, b) && a->w3c_flags == b->w3c_flags
           && a->format == b->format;
}

tg_sampling_t fuzz_traceparent_sampling(const tg_context_t *ctx)
{
    return ctx->sampling == TG_SAMPLING_ACCEPT || ctx->debug ? TG_SAMPLING_ACCEPT : TG_SAMPLING_DENY;
}

uint64_t fuzz_b3_single_parent(const tg_context_t *ctx)
{
    return ctx->sampling == TG_SAMPLING_DEFER && !ctx->debug ? 0 : ctx->parent_id;
}
