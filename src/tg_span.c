#include "tg_span.h"

#include <apr_strings.h>
#include <string.h>

static const char *bounded_copy(apr_pool_t *pool, const char *value)
{
    return apr_pstrndup(pool, value ? value : "", TG_SPAN_MAX_STRING);
}

/* Whether a stored (already cut) key is what `key` becomes once cut, so a
 * key longer than the bound still finds its tag instead of adding a twin.
 * NULL reads as "", as bounded_copy stores it (a span decoded from a record
 * may carry a NULL its writer set by hand). */
static int same_key(const char *stored, const char *key)
{
    return strncmp(stored ? stored : "", key ? key : "", TG_SPAN_MAX_STRING) == 0;
}

static void push_note(tg_span_t *span, apr_time_t when, const char *value)
{
    tg_annotation_t *note = apr_array_push(span->annotations);
    note->timestamp = when;
    note->value = bounded_copy(span->pool, value);
}

tg_span_t *tg_span_start(apr_pool_t *pool, tg_span_kind_t kind, const char *name,
                         const tg_context_t *parent, apr_time_t start)
{
    tg_span_t *span = apr_pcalloc(pool, sizeof(*span));
    span->pool = pool;
    span->kind = kind;
    span->name = bounded_copy(pool, name);
    span->id = tg_random_span_id();
    if (parent && !tg_trace_id_is_zero(parent->trace_id) && parent->span_id) {
        span->trace_id = parent->trace_id;
        span->parent_id = parent->span_id;
        span->debug = parent->debug;
        span->w3c_flags = parent->w3c_flags & ~TG_W3C_FLAG_SAMPLED;
    }
    else {
        span->trace_id = tg_random_trace_id();
        span->w3c_flags = TG_W3C_FLAG_RANDOM;
    }
    span->sampled = 1;
    span->timestamp = start;
    span->tags = apr_array_make(pool, 8, sizeof(tg_tag_t));
    span->annotations = apr_array_make(pool, 4, sizeof(tg_annotation_t));
    tg_span_annotate(span, start, TG_NOTE_START);
    return span;
}

void tg_span_tag(tg_span_t *span, const char *key, const char *value)
{
    tg_tag_t *tag;
    int i;
    for (i = 0; i < span->tags->nelts; i++) {
        tag = &APR_ARRAY_IDX(span->tags, i, tg_tag_t);
        if (same_key(tag->key, key)) {
            tag->value = bounded_copy(span->pool, value);
            return;
        }
    }
    if (span->tags->nelts >= TG_SPAN_MAX_TAGS) {
        span->dropped++;
        return;
    }
    tag = apr_array_push(span->tags);
    tag->key = bounded_copy(span->pool, key);
    tag->value = bounded_copy(span->pool, value);
}

void tg_span_annotate(tg_span_t *span, apr_time_t when, const char *value)
{
    /* Until the span is finished, the last slot is kept for its closing note. */
    int limit = TG_SPAN_MAX_ANNOTATIONS - (span->finished ? 0 : 1);
    if (span->annotations->nelts >= limit) {
        span->dropped++;
        return;
    }
    push_note(span, when, value);
}

void tg_span_finish(tg_span_t *span, apr_time_t end)
{
    if (span->finished)
        return;
    push_note(span, end, TG_NOTE_STOP);
    span->duration = end > span->timestamp ? end - span->timestamp : 1;
    span->finished = 1;
}

void tg_span_context(const tg_span_t *span, tg_context_t *out)
{
    memset(out, 0, sizeof(*out));
    out->trace_id = span->trace_id;
    out->span_id = span->id;
    out->parent_id = span->parent_id;
    out->sampling = span->sampled ? TG_SAMPLING_ACCEPT : TG_SAMPLING_DENY;
    out->debug = span->debug;
    out->w3c_flags = span->w3c_flags | (span->sampled ? TG_W3C_FLAG_SAMPLED : 0);
}

const char *tg_span_tag_value(const tg_span_t *span, const char *key)
{
    int i;
    for (i = 0; i < span->tags->nelts; i++) {
        const tg_tag_t *tag = &APR_ARRAY_IDX(span->tags, i, tg_tag_t);
        if (same_key(tag->key, key))
            return tag->value;
    }
    return NULL;
}
