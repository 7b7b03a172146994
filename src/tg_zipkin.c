#include "tg_zipkin.h"

#include "tg_json.h"

#include <string.h>

/* Members go out in the order Zipkin's own JSON writer uses, and only when
 * they say something: the spec asks to leave out what is unknown rather than
 * send zeros or empty strings. */

#define ERROR_TAG "error"
#define DROPPED_TAG "tomograph.dropped"

/* As JSON strings, quoted. */
static const char *const kind_names[] = {
    [TG_SPAN_SERVER] = "\"SERVER\"",
    [TG_SPAN_CLIENT] = "\"CLIENT\"",
    [TG_SPAN_PRODUCER] = "\"PRODUCER\"",
    [TG_SPAN_CONSUMER] = "\"CONSUMER\"",
};

static int is_set(const char *str)
{
    return str && *str;
}

static void append_string(tg_buf_t *out, const char *str)
{
    tg_json_append_string(out, str ? str : "", str ? strlen(str) : 0);
}

/* Zipkin keeps span and service names in lowercase (its collector lowercases
 * what it stores), so the span file says what the collector shows.  Only
 * ASCII letters change, which is why the escaped text can be lowercased in
 * place: a JSON escape means the same in either case, and the bytes of
 * non-ASCII UTF-8 are all above 0x7F. */
static void append_lowercase_string(tg_buf_t *out, const char *str)
{
    size_t start = out->len, i;
    append_string(out, str);
    if (out->failed)
        return;
    for (i = start; i < out->len; i++)
        if (out->data[i] >= 'A' && out->data[i] <= 'Z')
            out->data[i] = (char)(out->data[i] - 'A' + 'a');
}

/* The comma before every member or element but the first. */
static void separate(tg_buf_t *out, int *members)
{
    if ((*members)++)
        tg_buf_putc(out, ',');
}

/* A member's name as it goes out after a comma, `,"name":`, and its length:
 * `name` is a literal that needs no escaping. */
typedef struct {
    const char *text;
    size_t len;
} member_t;

#define MEMBER(name) ((member_t){ ",\"" name "\":", sizeof(name) + 3 })

/* Starts a member: its name, after a comma unless it is the first. */
static void open_member(tg_buf_t *out, int *members, member_t member)
{
    size_t first = (*members)++ == 0;
    tg_buf_write(out, member.text + first, member.len - first);
}

static void append_hex_member(tg_buf_t *out, int *members, member_t name, const char *hex,
                              size_t len)
{
    open_member(out, members, name);
    tg_buf_putc(out, '"');
    tg_buf_write(out, hex, len);
    tg_buf_putc(out, '"');
}

static void append_id_member(tg_buf_t *out, int *members, member_t name, uint64_t id)
{
    char hex[TG_SPAN_ID_HEX_LEN + 1];
    tg_u64_to_hex(id, hex);
    append_hex_member(out, members, name, hex, TG_SPAN_ID_HEX_LEN);
}

static void append_time_member(tg_buf_t *out, int *members, member_t name, apr_time_t usec)
{
    open_member(out, members, name);
    tg_buf_append_i64(out, usec);
}

static void append_endpoint(tg_buf_t *out, int *members, member_t name,
                            const tg_endpoint_t *endpoint)
{
    int fields = 0;
    if (!is_set(endpoint->service_name) && !is_set(endpoint->ipv4) && !is_set(endpoint->ipv6)
        && !endpoint->port)
        return;
    open_member(out, members, name);
    tg_buf_putc(out, '{');
    if (is_set(endpoint->service_name)) {
        open_member(out, &fields, MEMBER("serviceName"));
        append_lowercase_string(out, endpoint->service_name);
    }
    if (is_set(endpoint->ipv4)) {
        open_member(out, &fields, MEMBER("ipv4"));
        append_string(out, endpoint->ipv4);
    }
    if (is_set(endpoint->ipv6)) {
        open_member(out, &fields, MEMBER("ipv6"));
        append_string(out, endpoint->ipv6);
    }
    if (endpoint->port) {
        open_member(out, &fields, MEMBER("port"));
        tg_buf_append_u64(out, endpoint->port);
    }
    tg_buf_putc(out, '}');
}

/* Every span has its start note at least. */
static void append_annotations(tg_buf_t *out, int *members, const tg_span_t *span)
{
    int n = tg_span_note_count(span), elements = 0, i;
    open_member(out, members, MEMBER("annotations"));
    tg_buf_putc(out, '[');
    for (i = 0; i < n; i++) {
        tg_annotation_t note = tg_span_note_at(span, i);
        int fields = 0;
        separate(out, &elements);
        tg_buf_putc(out, '{');
        append_time_member(out, &fields, MEMBER("timestamp"), note.timestamp);
        open_member(out, &fields, MEMBER("value"));
        append_string(out, note.value);
        tg_buf_putc(out, '}');
    }
    tg_buf_putc(out, ']');
}

/* Among the tags added by hand: the HTTP fields have keys of their own. */
static int has_tag(const tg_span_t *span, const char *key)
{
    int i;
    for (i = 0; span->tags && i < span->tags->nelts; i++) {
        const char *stored = APR_ARRAY_IDX(span->tags, i, tg_tag_t).key;
        if (stored && strcmp(stored, key) == 0)
            return 1;
    }
    return 0;
}

/* Zipkin has no error flag of its own: its UI marks a span failed when it
 * carries an "error" tag, so a span flagged in error gets one unless the
 * module already said more in it.  Likewise what the span lost to its
 * bounds or its record's room shows as a tag, since Zipkin has no field
 * for it either. */
static void append_tags(tg_buf_t *out, int *members, const tg_span_t *span)
{
    int n = tg_span_tag_count(span), fields = 0, i;
    int add_error = span->error && !has_tag(span, ERROR_TAG);
    int add_dropped = span->dropped && !has_tag(span, DROPPED_TAG);
    if (!n && !add_error && !add_dropped)
        return;
    open_member(out, members, MEMBER("tags"));
    tg_buf_putc(out, '{');
    for (i = 0; i < n; i++) {
        char status[TG_STATUS_DIGITS];
        tg_tag_t tag = tg_span_tag_at(span, i, status);
        separate(out, &fields);
        append_string(out, tag.key);
        tg_buf_putc(out, ':');
        append_string(out, tag.value);
    }
    if (add_error) {
        open_member(out, &fields, MEMBER(ERROR_TAG));
        tg_buf_puts(out, "\"true\"");
    }
    if (add_dropped) {
        open_member(out, &fields, MEMBER(DROPPED_TAG));
        tg_buf_putc(out, '"');
        tg_buf_append_u64(out, span->dropped);
        tg_buf_putc(out, '"');
    }
    tg_buf_putc(out, '}');
}

void tg_zipkin_append_span(tg_buf_t *out, const tg_span_t *span)
{
    char trace_hex[TG_TRACE_ID_HEX_LEN + 1], name_buf[TG_SPAN_NAME_MAX + 1];
    const char *name = tg_span_name(span, name_buf);
    int members = 0;

    tg_buf_putc(out, '{');
    tg_trace_id_to_hex(span->trace_id, trace_hex);
    append_hex_member(out, &members, MEMBER("traceId"), trace_hex, TG_TRACE_ID_HEX_LEN);
    if (span->parent_id)
        append_id_member(out, &members, MEMBER("parentId"), span->parent_id);
    append_id_member(out, &members, MEMBER("id"), span->id);
    if ((unsigned)span->kind < sizeof(kind_names) / sizeof(kind_names[0])) {
        open_member(out, &members, MEMBER("kind"));
        tg_buf_puts(out, kind_names[span->kind]);
    }
    if (is_set(name)) {
        open_member(out, &members, MEMBER("name"));
        append_lowercase_string(out, name);
    }
    if (span->timestamp > 0)
        append_time_member(out, &members, MEMBER("timestamp"), span->timestamp);
    /* Zipkin rounds a duration under 1 µs up, and so do we. */
    if (span->finished || span->duration > 0)
        append_time_member(out, &members, MEMBER("duration"), span->duration > 1 ? span->duration : 1);
    append_endpoint(out, &members, MEMBER("localEndpoint"), &span->local);
    append_endpoint(out, &members, MEMBER("remoteEndpoint"), &span->remote);
    append_annotations(out, &members, span);
    append_tags(out, &members, span);
    if (span->debug) {
        open_member(out, &members, MEMBER("debug"));
        tg_buf_puts(out, "true");
    }
    if (span->shared) {
        open_member(out, &members, MEMBER("shared"));
        tg_buf_puts(out, "true");
    }
    tg_buf_putc(out, '}');
}

void tg_zipkin_append_list(tg_buf_t *out, const tg_span_t *const *spans, int n)
{
    int elements = 0, i;
    tg_buf_putc(out, '[');
    for (i = 0; i < n; i++) {
        separate(out, &elements);
        tg_zipkin_append_span(out, spans[i]);
    }
    tg_buf_putc(out, ']');
}
