/* The three functions of lib/sink.h, for the tests: every span shipped is
 * encoded into a queue record and decoded back, as the real sink's queue
 * carries it (which also checks that the record takes what the library
 * makes), and kept. */
#include <pthread.h>

#include "lib_tests.h"
#include "sink.h"
#include "tg_record.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static apr_pool_t *pool;
static apr_array_header_t *spans;
static int broken;
static int flushed = 1;

void recording_sink_reset(void)
{
    pthread_mutex_lock(&lock);
    if (!pool)
        apr_pool_create(&pool, NULL);
    apr_pool_clear(pool);
    spans = apr_array_make(pool, 8, sizeof(tg_span_t *));
    broken = 0;
    flushed = 1;
    pthread_mutex_unlock(&lock);
}

int shipped_count(void)
{
    return spans->nelts;
}

const tg_span_t *shipped(int i)
{
    CU_ASSERT_FATAL(i < spans->nelts);
    return APR_ARRAY_IDX(spans, i, tg_span_t *);
}

int shipped_broken(void)
{
    return broken;
}

void recording_sink_set_flushed(int value)
{
    flushed = value;
}

tomograph_sink_kind_t tomograph_sink_kind(void)
{
    return TOMOGRAPH_SINK_NONE;
}

void tomograph_sink_ship(const tg_span_t *span)
{
    static unsigned char record[64 * 1024];
    tg_span_t *copy;
    apr_size_t len;
    pthread_mutex_lock(&lock);
    len = tg_record_encode(span, record, sizeof(record));
    if (len && tg_record_decode(record, len, pool, &copy) == APR_SUCCESS)
        APR_ARRAY_PUSH(spans, tg_span_t *) = copy;
    else
        broken++;
    pthread_mutex_unlock(&lock);
}

int tomograph_sink_flush(long timeout_ms)
{
    (void)timeout_ms;
    return flushed;
}
