/* What libtomograph's files share inside the library (include/tomograph.h
 * is what it offers).  Nothing here is named tomograph_: the library exports
 * those names alone, so these stay private to it.
 *
 * Memory: a span handle is a block of its own (tg_lib_handle_acquire), and
 * what its span holds beyond it (tags, notes, long strings) lives in an APR
 * pool of its own, made at the span's first need of one; the pool owns its
 * allocator, so that a handle begun on one thread may end on another and no
 * call allocates from a lock shared between threads.  Making such a pool
 * costs two mallocs, so each thread keeps a few cleared ones for its next
 * spans (tg_lib_pool_acquire, tg_lib_pool_release), and a few handles: a
 * span that needs no pool (the seed's usual span) costs no allocation.
 *
 * Lifetimes: the process's settings are read once, at the first call
 * (tg_lib_settings); a thread's open spans are finished, and its pools
 * freed, when it exits; a forked child forgets the spans its parent's
 * thread had open (tg_lib_stack_forget).  The other threads of the parent
 * do not exist in the child: what they held stays there unused, their
 * spans unshipped, as the parent's. */
#ifndef TG_LIB_H
#define TG_LIB_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "tg_sampling.h"
#include "tomograph.h"

/* Whether an optional string was given: not NULL, not empty. */
static inline int tg_lib_given(const char *text)
{
    return text && *text;
}

/* Whether text is kept, a string cut at `size` bytes (NUL-ended within them
 * when shorter): equal through kept's NUL, or over all `size` bytes when
 * kept was cut there.  Byte by byte: the strings are short, and libc's
 * vector compares cost more to start than that (~3 ns a call, at 100 ns a
 * span). */
static inline int tg_lib_is_kept(const char *text, const char *kept, size_t size)
{
    size_t i;
    for (i = 0; i < size; i++) {
        if (text[i] != kept[i])
            return 0;
        if (!text[i])
            return 1;
    }
    return 1;
}

/* The environment's settings, read at the first call of the process. */
typedef struct {
    const char *default_service;    /* TOMOGRAPH_SERVICE or the program's name, lowercase */
    tg_sampler_t sampler;           /* TOMOGRAPH_SAMPLE_RATE, for new traces */
    apr_array_header_t *hmac_keys;  /* TOMOGRAPH_HMAC_KEYS, const char *; NULL when none */
    const char *signing_key;        /* the first of them, which signs X-Trace-Info */
} tg_lib_settings_t;

/* Initializes APR and the process's state on the first call; NULL when that
 * failed (no memory). */
const tg_lib_settings_t *tg_lib_settings(void);

/* A cleared pool for a span or a call's scratch; NULL when out of memory. */
apr_pool_t *tg_lib_pool_acquire(void);

/* Frees what pool holds and keeps it for this thread's next span (or
 * destroys it when the thread keeps enough). */
void tg_lib_pool_release(apr_pool_t *pool);

/* A block of TG_LIB_HANDLE_BYTES for a span handle; NULL when out of memory. */
#define TG_LIB_HANDLE_BYTES 512
void *tg_lib_handle_acquire(void);

/* Keeps handle for this thread's next span (or frees it when the thread
 * keeps enough). */
void tg_lib_handle_release(void *handle);

/* A service name as spans carry it: lowercase (as the module writes
 * TomographService), cut at TG_SPAN_MAX_STRING, copied into pool. */
const char *tg_lib_service_name(apr_pool_t *pool, const char *name);

/* Frees a span without finishing or shipping it: a span of the parent's,
 * in a forked child. */
void tg_lib_span_discard(tomograph_span_t *span);

/* Empties this thread's stack without shipping anything (a forked child). */
void tg_lib_stack_forget(void);

#endif
