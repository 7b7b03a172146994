/* The library's life in a process and its threads: APR and the settings
 * once per process, the pools each thread keeps, what a thread leaves at
 * exit and what a forked child inherits (lib/lib.h). */
#ifndef _GNU_SOURCE /* program_invocation_short_name; APR's flags define it */
#define _GNU_SOURCE
#endif
#include <apr_general.h>
#include <apr_strings.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"
#include "sink.h"
#include "tg_log.h"
#include "tg_slice.h"

/* Cleared pools a thread keeps: enough for the spans open at once in most
 * code, few enough that an idle thread holds little (a pool keeps the
 * largest span it held, a few KB; the bounds of tg_span_t cap it). */
#define KEPT_POOLS 8

/* A pool that owns its allocator lives in memory the allocator maps, and
 * points to the allocator from there: memory a leak checker (LSan) does not
 * scan.  Held by its pointer alone, the allocator would look leaked at exit;
 * pools held for long are held by their allocators (whose owner is the
 * pool, apr_allocator_owner_get). */
static apr_pool_t *pool_of(apr_allocator_t *allocator)
{
    return apr_allocator_owner_get(allocator);
}

static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static tg_lib_settings_t settings;
static apr_allocator_t *settings_memory; /* its pool's; NULL until the settings are read */
static pthread_key_t thread_key;

static _Thread_local struct {
    int watched; /* thread_key set, so that thread_exit runs */
    int count;
    apr_allocator_t *pools[KEPT_POOLS]; /* the pools, by their allocators */
    int handle_count;
    void *handles[KEPT_POOLS];
} kept;

/* TOMOGRAPH_SAMPLE_RATE: a number from 0 to 1; anything else (or nothing)
 * records every new trace, as the module does without TomographSampleRate. */
static double sample_rate(const char *text)
{
    char *end;
    double rate;
    if (!tg_lib_given(text))
        return 1.0;
    rate = strtod(text, &end);
    return *end == '\0' && rate >= 0.0 && rate <= 1.0 ? rate : 1.0;
}

/* TOMOGRAPH_HMAC_KEYS: comma-separated, the whitespace around each key and
 * empty ones ignored, as osprofiler reads its hmac_keys. */
static apr_array_header_t *hmac_keys(apr_pool_t *pool, const char *list)
{
    apr_array_header_t *keys = NULL;
    while (list && *list) {
        const char *comma = strchr(list, ','), *end = comma ? comma : list + strlen(list);
        tg_slice_t key = tg_slice_trim_ows(list, end);
        if (key.len) {
            if (!keys)
                keys = apr_array_make(pool, 2, sizeof(const char *));
            APR_ARRAY_PUSH(keys, const char *) = apr_pstrmemdup(pool, key.text, key.len);
        }
        list = comma ? comma + 1 : end;
    }
    return keys;
}

/* A thread that exits with spans open has left them open: they go as
 * tomograph_clear sends them, and its pools are freed. */
static void thread_exit(void *unused)
{
    (void)unused;
    tomograph_clear();
    while (kept.count)
        apr_pool_destroy(pool_of(kept.pools[--kept.count]));
    while (kept.handle_count)
        free(kept.handles[--kept.handle_count]);
    kept.watched = 0;
}

/* The settings live as long as the process, in a pool never destroyed; APR
 * is never terminated either: the application (or httpd) may use it too. */
static void start_process(void)
{
    apr_pool_t *pool;
    const char *service = getenv("TOMOGRAPH_SERVICE");
    if (apr_initialize() != APR_SUCCESS || apr_pool_create_unmanaged_ex(&pool, NULL, NULL) != APR_SUCCESS
        || pthread_key_create(&thread_key, thread_exit) != 0)
        return;
    settings_memory = apr_pool_allocator_get(pool);
    if (!tg_lib_given(service))
        service = program_invocation_short_name;
    settings.default_service = tg_lib_given(service) ? tg_lib_service_name(pool, service) : NULL;
    settings.sampler.rate = sample_rate(getenv("TOMOGRAPH_SAMPLE_RATE"));
    settings.hmac_keys = hmac_keys(pool, getenv("TOMOGRAPH_HMAC_KEYS"));
    settings.signing_key = settings.hmac_keys ? APR_ARRAY_IDX(settings.hmac_keys, 0, const char *) : NULL;
    pthread_atfork(NULL, NULL, tg_lib_stack_forget);
    /* The core's debug notes (a malformed incoming header) come on the
     * application's thread, where no call may write. */
    tg_log_set_level(TG_LOG_INFO);
}

const tg_lib_settings_t *tg_lib_settings(void)
{
    pthread_once(&process_once, start_process);
    return settings_memory ? &settings : NULL;
}

/* Whether thread_exit will run for this thread: to finish the spans it
 * leaves open, to free the pools it keeps. */
static int watch_thread(void)
{
    if (!kept.watched && tg_lib_settings())
        kept.watched = pthread_setspecific(thread_key, &kept) == 0;
    return kept.watched;
}

apr_pool_t *tg_lib_pool_acquire(void)
{
    apr_pool_t *pool;
    if (kept.count)
        return pool_of(kept.pools[--kept.count]);
    /* A thread that keeps pools is watched already: one that has none yet
     * may be about to open its first span. */
    watch_thread();
    /* Its own allocator, no parent: nothing shared with another thread. */
    return apr_pool_create_unmanaged_ex(&pool, NULL, NULL) == APR_SUCCESS ? pool : NULL;
}

void tg_lib_pool_release(apr_pool_t *pool)
{
    if (kept.count == KEPT_POOLS || !watch_thread()) {
        apr_pool_destroy(pool);
        return;
    }
    apr_pool_clear(pool);
    kept.pools[kept.count++] = apr_pool_allocator_get(pool);
}

void *tg_lib_handle_acquire(void)
{
    if (kept.handle_count)
        return kept.handles[--kept.handle_count];
    watch_thread();
    return malloc(TG_LIB_HANDLE_BYTES);
}

void tg_lib_handle_release(void *handle)
{
    if (kept.handle_count == KEPT_POOLS || !watch_thread()) {
        free(handle);
        return;
    }
    kept.handles[kept.handle_count++] = handle;
}

int tomograph_flush(long timeout_ms)
{
    if (timeout_ms < 0)
        return TOMOGRAPH_EINVAL;
    return tomograph_sink_flush(timeout_ms) ? TOMOGRAPH_OK : TOMOGRAPH_ETIMEDOUT;
}
