/* Shared by the fuzz targets, one per parser of untrusted input (see the
 * "Fuzzing" section of README.md).
 *
 * A target defines fuzz_one(), which fuzz.c calls for every input with a
 * pool that is cleared after it, and states its invariants with FUZZ_CHECK:
 * a broken one aborts, so libFuzzer keeps the input as it keeps any crash. */
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>

#include "tg_context.h"

#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(#cond, __FILE__, __LINE__))

void fuzz_one(const uint8_t *data, size_t size, apr_pool_t *pool);

void fuzz_fail(const char *what, const char *file, int line) __attribute__((noreturn));

/* data as a C string in pool: like a header value, it ends at a NUL. */
const char *fuzz_string(const uint8_t *data, size_t size, apr_pool_t *pool);

/* Splits data at its NUL bytes into at most n C strings in pool (a NUL
 * after the n-th ends it), sets the parts past the last to NULL and returns
 * how many there were. */
int fuzz_split(const uint8_t *data, size_t size, const char **parts, int n, apr_pool_t *pool);

/* The HMAC key the targets sign with, and the signature (lowercase hex,
 * in pool) of text under a key, as X-Trace-HMAC carries it. */
#define FUZZ_KEY "SECRET_KEY"
const char *fuzz_signature(const char *text, const char *key, apr_pool_t *pool);

/* Whether s is one of the three sampling states. */
int fuzz_is_sampling(tg_sampling_t s);

/* Whether two contexts name the same trace, span and parent. */
int fuzz_same_ids(const tg_context_t *a, const tg_context_t *b);

/* Whether two contexts carry the same sampling decision. */
int fuzz_same_decision(const tg_context_t *a, const tg_context_t *b);

/* Whether two contexts are the same in every field. */
int fuzz_same_context(const tg_context_t *a, const tg_context_t *b);

/* What a context says once it has crossed a traceparent header, which can
 * only say sampled or not, and is sampled when debug. */
tg_sampling_t fuzz_traceparent_sampling(const tg_context_t *ctx);

/* What a context's parent is once it has crossed a b3 single header, which
 * can carry a parent only after a sampling state. */
uint64_t fuzz_b3_single_parent(const tg_context_t *ctx);

#endif
