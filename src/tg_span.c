#include "tg_span.h"

#include "tg_buf.h"

#include <apr_strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
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

/* The IPv4 address an IPv4-mapped ip maps, as text: the dotted part ip ends
 * in, or, when it is all hex, written anew in pool. */
static const char *mapped_ipv4(const char *ip, const struct in6_addr *address, apr_pool_t *pool)
{
    const char *last_group = strrchr(ip, ':') + 1;
    char *text;
    if (strchr(last_group, '.'))
        return last_group;
    text = apr_palloc(pool, INET_ADDRSTRLEN);
    return inet_ntop(AF_INET, &address->s6_addr[12], text, INET_ADDRSTRLEN);
}

void tg_endpoint_set_address(tg_endpoint_t *endpoint, const char *ip, apr_port_t port,
                             apr_pool_t *pool)
{
    struct in6_addr address;
    endpoint->ipv4 = NULL;
    endpoint->ipv6 = NULL;
    endpoint->port = port;
    if (!ip)
        return;
    if (!strchr(ip, ':'))
        endpoint->ipv4 = ip;
    else if (inet_pton(AF_INET6, ip, &address) == 1 && IN6_IS_ADDR_V4MAPPED(&address))
        endpoint->ipv4 = mapped_ipv4(ip, &address, pool);
    else
        endpoint->ipv6 = ip;
}

void tg_span_init(tg_span_t *span, apr_pool_t *pool, tg_span_kind_t kind, const char *name,
                  const tg_context_t *parent, apr_time_t start)
{
    /* libc's memset: inline, GCC zeroes the ~200 bytes of a span with `rep
     * stos`, whose start-up costs ~7 ns, a tenth of a libtomograph span
     * (issue 16).  The size is hidden from it so that it calls memset. */
    size_t size = sizeof(*span);
    __asm__("" : "+r"(size));
    memset(span, 0, size);
    span->pool = pool;
    span->kind = kind;
    span->name = name ? bounded_copy(pool, name) : NULL;
    if (parent && !tg_trace_id_is_zero(parent->trace_id) && parent->span_id) {
        span->id = tg_random_span_id();
        span->trace_id = parent->trace_id;
        span->parent_id = parent->span_id;
        span->debug = parent->debug;
        span->w3c_flags = parent->w3c_flags & ~TG_W3C_FLAG_SAMPLED;
    }
    else {
        tg_random_root_ids(&span->trace_id, &span->id);
        span->w3c_flags = TG_W3C_FLAG_RANDOM;
    }
    span->sampled = 1;
    span->timestamp = start;
}

tg_span_t *tg_span_start(apr_pool_t *pool, tg_span_kind_t kind, const char *name,
                         const tg_context_t *parent, apr_time_t start)
{
    tg_span_t *span = apr_palloc(pool, sizeof(*span));
    tg_span_init(span, pool, kind, name, parent, start);
    return span;
}

/* The status code a tag's value says: one to three digits, nothing else,
 * from 1 to 999; else 0. */
static int status_code_of(const char *value)
{
    int code = 0, digits;
    for (digits = 0; digits < 4 && value && value[digits] >= '0' && value[digits] <= '9'; digits++)
        code = code * 10 + (value[digits] - '0');
    return digits >= 1 && digits <= 3 && value[digits] == '\0' && code >= 1 ? code : 0;
}

/* The HTTP fields take the tags that name them, so that no span carries
 * one twice. */
static int set_http_field(tg_span_t *span, const char *key, const char *value)
{
    if (same_key(key, TG_TAG_HTTP_METHOD))
        span->method = bounded_copy(span->pool, value);
    else if (same_key(key, TG_TAG_HTTP_PATH))
        span->path = bounded_copy(span->pool, value);
    else if (same_key(key, TG_TAG_HTTP_STATUS))
        span->status_code = status_code_of(value);
    else
        return 0;
    return 1;
}

void tg_span_tag(tg_span_t *span, const char *key, const char *value)
{
    tg_tag_t *tag;
    int i;
    if (set_http_field(span, key, value))
        return;
    if (!span->tags)
        span->tags = apr_array_make(span->pool, 4, sizeof(tg_tag_t));
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
    tg_annotation_t *note;
    /* The last note of a finished span is its stop: nothing comes after. */
    if (span->finished
        || (span->annotations && span->annotations->nelts >= TG_SPAN_MAX_NOTES_BETWEEN)) {
        span->dropped++;
        return;
    }
    if (!span->annotations)
        span->annotations = apr_array_make(span->pool, 4, sizeof(tg_annotation_t));
    note = apr_array_push(span->annotations);
    note->timestamp = when;
    note->value = bounded_copy(span->pool, value);
}

void tg_span_finish(tg_span_t *span, apr_time_t end)
{
    if (span->finished)
        return;
    span->duration = end > span->timestamp ? end - span->timestamp : 1;
    span->finished = 1;
}

/* A note in its place among the notes (which are in the order of their
 * times), finished span or not, while the span has room. */
static void insert_note(tg_span_t *span, apr_time_t when, const char *value)
{
    tg_annotation_t *notes;
    int i;
    if (!span->annotations)
        span->annotations = apr_array_make(span->pool, 2, sizeof(tg_annotation_t));
    if (span->annotations->nelts >= TG_SPAN_MAX_NOTES_BETWEEN) {
        span->dropped++;
        return;
    }
    apr_array_push(span->annotations);
    notes = (tg_annotation_t *)span->annotations->elts;
    for (i = span->annotations->nelts - 1; i > 0 && notes[i - 1].timestamp > when; i--)
        notes[i] = notes[i - 1];
    notes[i].timestamp = when;
    notes[i].value = value;
}

void tg_span_spell_out_transfer(tg_span_t *span)
{
    if (span->transfer & TG_TRANSFER_BODY_READ)
        insert_note(span, span->body_read_at, TG_NOTE_BODY_READ);
    if (span->transfer & TG_TRANSFER_FIRST_BYTE)
        insert_note(span, span->first_byte_at, TG_NOTE_FIRST_BYTE);
    span->transfer &= ~(TG_TRANSFER_BODY_READ | TG_TRANSFER_FIRST_BYTE);
}

const char *tg_span_name(const tg_span_t *span, char buf[TG_SPAN_NAME_MAX + 1])
{
    size_t method_len, path_len;
    if (span->name || !span->method)
        return span->name;
    method_len = strnlen(span->method, TG_SPAN_MAX_STRING);
    memcpy(buf, span->method, method_len);
    if (!span->path) {
        buf[method_len] = '\0';
        return buf;
    }
    path_len = strnlen(span->path, TG_SPAN_MAX_STRING);
    buf[method_len] = ' ';
    memcpy(buf + method_len + 1, span->path, path_len);
    buf[method_len + 1 + path_len] = '\0';
    return buf;
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

/* Three digits at most: status_code is kept within 1..999. */
static const char *status_digits(int code, char out[TG_TAG_DIGITS])
{
    char *p = out + TG_TAG_DIGITS - 1;
    *p = '\0';
    do {
        *--p = (char)('0' + code % 10);
        code /= 10;
    } while (code && p > out);
    return p;
}

_Static_assert(TG_TAG_DIGITS >= TG_DECIMAL_MAX, "room for tg_put_u64's stores");

static const char *length_digits(uint64_t bytes, char out[TG_TAG_DIGITS])
{
    *tg_put_u64(out, bytes) = '\0';
    return out;
}

tg_tag_t tg_span_tag_at(const tg_span_t *span, int i, char digits[TG_TAG_DIGITS])
{
    if (span->method && i-- == 0)
        return (tg_tag_t){ TG_TAG_HTTP_METHOD, span->method };
    if (span->path && i-- == 0)
        return (tg_tag_t){ TG_TAG_HTTP_PATH, span->path };
    if (span->status_code && i-- == 0)
        return (tg_tag_t){ TG_TAG_HTTP_STATUS, status_digits(span->status_code, digits) };
    if ((span->transfer & TG_TRANSFER_REQUEST_BYTES) && i-- == 0)
        return (tg_tag_t){ TG_TAG_REQUEST_LENGTH, length_digits(span->request_bytes, digits) };
    if ((span->transfer & TG_TRANSFER_RESPONSE_BYTES) && i-- == 0)
        return (tg_tag_t){ TG_TAG_RESPONSE_LENGTH, length_digits(span->response_bytes, digits) };
    return APR_ARRAY_IDX(span->tags, i, tg_tag_t);
}

const char *tg_span_tag_value(const tg_span_t *span, const char *key)
{
    int n = tg_span_tag_count(span), i;
    char digits[TG_TAG_DIGITS];
    for (i = 0; i < n; i++) {
        tg_tag_t tag = tg_span_tag_at(span, i, digits);
        /* Digits written in digits are gone on return. */
        if (same_key(tag.key, key))
            return (uintptr_t)tag.value - (uintptr_t)digits < TG_TAG_DIGITS
                       ? apr_pstrdup(span->pool, tag.value)
                       : tag.value;
    }
    return NULL;
}
