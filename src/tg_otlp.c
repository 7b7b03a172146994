#include "tg_otlp.h"

#include <stdlib.h>
#include <string.h>

#include "tg_json.h"

/* Span.SpanKind of trace.proto; 0 (UNSPECIFIED) is not a kind we make. */
static const unsigned span_kinds[] = {
    [TG_SPAN_INTERNAL] = 1,
    [TG_SPAN_SERVER] = 2,
    [TG_SPAN_CLIENT] = 3,
    [TG_SPAN_PRODUCER] = 4,
    [TG_SPAN_CONSUMER] = 5,
};

#define STATUS_CODE_ERROR "2"

/* A span named after its request goes out as the module has always named
 * it, in lowercase ("get /api"): the name the Zipkin exporter gives it too. */
static const char *name_of(const tg_span_t *span, char buf[TG_SPAN_NAME_MAX + 1])
{
    const char *name = tg_span_name(span, buf);
    char *c;
    if (span->name || !name)
        return name;
    for (c = buf; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return name;
}

static const char *service_of(const tg_span_t *span)
{
    const char *name = span->local.service_name;
    return name && *name ? name : TG_OTLP_UNKNOWN_SERVICE;
}

static void append_text(tg_buf_t *out, const char *str)
{
    tg_json_append_string(out, str ? str : "", str ? strlen(str) : 0);
}

/* A fixed64 of nanoseconds, as the decimal string the mapping asks of
 * 64-bit integers. */
static void append_nanos_member(tg_buf_t *out, const char *name, apr_time_t usec)
{
    apr_uint64_t nanos = usec > 0 ? (apr_uint64_t)usec * 1000 : 0;
    tg_buf_putc(out, '"');
    tg_buf_puts(out, name);
    tg_buf_puts(out, "\":\"");
    tg_buf_append_u64(out, nanos);
    tg_buf_putc(out, '"');
}

/* A KeyValue of common.proto with a string AnyValue. */
static void append_string_attribute(tg_buf_t *out, const char *key, const char *value)
{
    tg_buf_puts(out, "{\"key\":");
    append_text(out, key);
    tg_buf_puts(out, ",\"value\":{\"stringValue\":");
    append_text(out, value);
    tg_buf_puts(out, "}}");
}

/* An int64 AnyValue, as the decimal string the mapping asks of it. */
static void append_int_attribute(tg_buf_t *out, const char *key, uint64_t value)
{
    tg_buf_puts(out, "{\"key\":");
    append_text(out, key);
    tg_buf_puts(out, ",\"value\":{\"intValue\":\"");
    tg_buf_append_u64(out, value);
    tg_buf_puts(out, "\"}}");
}

/* Opens the list before the first attribute, a comma before the others. */
static void next_attribute(tg_buf_t *out, int *written)
{
    tg_buf_puts(out, (*written)++ ? "," : ",\"attributes\":[");
}

/* An endpoint's address and port, under the names of OpenTelemetry's
 * network attributes, which its Zipkin mapping reads Zipkin's endpoints
 * from. */
static void append_endpoint(tg_buf_t *out, const tg_endpoint_t *endpoint, const char *address_key,
                            const char *port_key, int *written)
{
    const char *address = endpoint->ipv4 ? endpoint->ipv4 : endpoint->ipv6;
    if (address && *address) {
        next_attribute(out, written);
        append_string_attribute(out, address_key, address);
    }
    if (endpoint->port) {
        next_attribute(out, written);
        append_int_attribute(out, port_key, endpoint->port);
    }
}

static void append_attributes(tg_buf_t *out, const tg_span_t *span)
{
    int n = tg_span_tag_count(span), written = 0, i;
    for (i = 0; i < n; i++) {
        char digits[TG_TAG_DIGITS];
        tg_tag_t tag = tg_span_tag_at(span, i, digits);
        next_attribute(out, &written);
        append_string_attribute(out, tag.key, tag.value);
    }
    append_endpoint(out, &span->local, "network.local.address", "network.local.port", &written);
    append_endpoint(out, &span->remote, "network.peer.address", "network.peer.port", &written);
    if (written)
        tg_buf_putc(out, ']');
}

static void append_events(tg_buf_t *out, const tg_span_t *span)
{
    int n = tg_span_note_count(span), i;
    tg_buf_puts(out, ",\"events\":[");
    for (i = 0; i < n; i++) {
        tg_annotation_t note = tg_span_note_at(span, i);
        tg_buf_puts(out, i ? ",{" : "{");
        append_nanos_member(out, "timeUnixNano", note.timestamp);
        tg_buf_puts(out, ",\"name\":");
        append_text(out, note.value);
        tg_buf_putc(out, '}');
    }
    tg_buf_putc(out, ']');
}

/* The span's ids in hex.  A 64-bit trace id widens with leading zeros, as
 * in B3: OTLP wants 16 bytes. */
static void append_ids(tg_buf_t *out, const tg_span_t *span)
{
    char *p;
    if (!tg_buf_room_for(out, sizeof("{\"traceId\":\"\",\"spanId\":\"\",\"parentSpanId\":\"\"") + 64))
        return;
    p = TG_PUT_LITERAL(tg_buf_tail(out), "{\"traceId\":\"");
    p = tg_put_hex64(p, span->trace_id.hi);
    p = tg_put_hex64(p, span->trace_id.lo);
    p = TG_PUT_LITERAL(p, "\",\"spanId\":\"");
    p = tg_put_hex64(p, span->id);
    *p++ = '"';
    if (span->parent_id) {
        p = TG_PUT_LITERAL(p, ",\"parentSpanId\":\"");
        p = tg_put_hex64(p, span->parent_id);
        *p++ = '"';
    }
    tg_buf_wrote(out, p);
}

static void append_span(tg_buf_t *out, const tg_span_t *span)
{
    char name_buf[TG_SPAN_NAME_MAX + 1];
    append_ids(out, span);
    tg_buf_puts(out, ",\"name\":");
    append_text(out, name_of(span, name_buf));
    if ((unsigned)span->kind < sizeof(span_kinds) / sizeof(span_kinds[0])) {
        tg_buf_puts(out, ",\"kind\":");
        tg_buf_append_u64(out, (uint64_t)span_kinds[span->kind]);
    }
    tg_buf_putc(out, ',');
    append_nanos_member(out, "startTimeUnixNano", span->timestamp);
    /* A finished span lasts at least 1 µs, as in the Zipkin encoder. */
    if (span->finished || span->duration > 0) {
        tg_buf_putc(out, ',');
        append_nanos_member(out, "endTimeUnixNano",
                            span->timestamp + (span->duration > 1 ? span->duration : 1));
    }
    append_attributes(out, span);
    append_events(out, span);
    if (span->error)
        tg_buf_puts(out, ",\"status\":{\"code\":" STATUS_CODE_ERROR "}");
    tg_buf_putc(out, '}');
}

/* One resourceSpans: the spans of `service` from `first` on, each marked
 * in `written`. */
static void append_service(tg_buf_t *out, const tg_span_t *const *spans, int first, int n,
                           const char *service, unsigned char *written)
{
    int i, members = 0;
    tg_buf_puts(out, "{\"resource\":{\"attributes\":[");
    append_string_attribute(out, "service.name", service);
    tg_buf_puts(out, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"" TG_OTLP_SCOPE "\"},\"spans\":[");
    for (i = first; i < n; i++) {
        if (written[i] || strcmp(service_of(spans[i]), service) != 0)
            continue;
        if (members++)
            tg_buf_putc(out, ',');
        append_span(out, spans[i]);
        written[i] = 1;
    }
    tg_buf_puts(out, "]}]}");
}

void tg_otlp_append_request(tg_buf_t *out, const tg_span_t *const *spans, int n)
{
    /* Spans come out grouped by service: each pass writes one service's. */
    unsigned char *written = n > 0 ? calloc((size_t)n, 1) : NULL;
    int i, groups = 0;
    if (n > 0 && !written) {
        out->failed = 1;
        return;
    }
    tg_buf_puts(out, "{\"resourceSpans\":[");
    for (i = 0; i < n; i++) {
        if (written[i])
            continue;
        if (groups++)
            tg_buf_putc(out, ',');
        append_service(out, spans, i, n, service_of(spans[i]), written);
    }
    tg_buf_puts(out, "]}");
    free(written);
}
