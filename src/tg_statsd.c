#include "tg_statsd.h"

#include <string.h>

#define UNKNOWN_SERVICE "unknown"
#define NOTE_NAME_MAX 64

/* What a Graphite path component may hold as it is: ASCII only, whatever
 * the locale says.  '_' is kept out so that it is only ever written as the
 * one separator of a collapsed run. */
static const unsigned char kept[256] = {
    ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1, ['0' ... '9'] = 1, ['-'] = 1,
};

static int is_kept(unsigned char c)
{
    return kept[c];
}

/* Appends part[0..len) as a name component: its runs of kept characters,
 * one '_' between two runs (none leads, none trails), each run copied at
 * once. */
static void append_name_part(tg_buf_t *out, const char *part, size_t len)
{
    const unsigned char *p = (const unsigned char *)part, *end = p + len;
    int wrote = 0;
    for (;;) {
        const unsigned char *run;
        while (p < end && !is_kept(*p))
            p++;
        if (p == end)
            break;
        for (run = p; p < end && is_kept(*p); p++)
            continue;
        if (wrote)
            tg_buf_putc(out, '_');
        tg_buf_write(out, run, (size_t)(p - run));
        wrote = 1;
    }
    if (!wrote)
        tg_buf_putc(out, '_');
}

void tg_statsd_append_name_part(tg_buf_t *out, const char *part)
{
    part = part ? part : "";
    append_name_part(out, part, strlen(part));
}

/* A note's counter is named after what the note is, not all it says: its
 * text up to the first ':' or '/', where a message or a path would follow
 * ("error: AH01114: ...", "subrequest /x"), and at most NOTE_NAME_MAX bytes,
 * so that the number of metric names stays bounded. */
static void append_note_name(tg_buf_t *out, const char *note)
{
    size_t len;
    note = note ? note : "";
    len = strcspn(note, ":/");
    append_name_part(out, note, len < NOTE_NAME_MAX ? len : NOTE_NAME_MAX);
}

/* A span named after its request is named as the module has always named
 * it, in lowercase ("get /api"). */
static const char *span_name(const tg_span_t *span, char buf[TG_SPAN_NAME_MAX + 1])
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

/* Appends <service>.<span name> and returns its length. */
static size_t append_metric_prefix(tg_buf_t *out, const tg_span_t *span)
{
    const char *service = span->local.service_name;
    char name_buf[TG_SPAN_NAME_MAX + 1];
    size_t start = out->len;
    tg_statsd_append_name_part(out, service && *service ? service : UNKNOWN_SERVICE);
    tg_buf_putc(out, '.');
    tg_statsd_append_name_part(out, span_name(span, name_buf));
    return out->len - start;
}

/* statsd takes fractional milliseconds, and a span is timed to the
 * microsecond: the value is exact, "12" or "12.345" (trailing zeros of the
 * fraction left out, "12.3"), never rounded through a double. */
static void append_milliseconds(tg_buf_t *out, apr_time_t usec)
{
    unsigned fraction = (unsigned)(usec % 1000);
    char decimals[4] = { '.', (char)('0' + fraction / 100), (char)('0' + fraction / 10 % 10),
                         (char)('0' + fraction % 10) };
    size_t len = sizeof(decimals);
    tg_buf_append_i64(out, usec / 1000);
    if (!fraction)
        return;
    while (decimals[len - 1] == '0')
        len--;
    tg_buf_write(out, decimals, len);
}

void tg_statsd_append_span(tg_buf_t *out, const tg_span_t *span)
{
    int notes = tg_span_note_count(span), i;
    size_t prefix_at = 0, prefix_len = 0;
    /* As in Zipkin JSON: an unfinished span has no length to report, and a
     * finished one took at least 1 µs. */
    if (span->finished || span->duration > 0) {
        prefix_at = out->len;
        prefix_len = append_metric_prefix(out, span);
        tg_buf_putc(out, ':');
        append_milliseconds(out, span->duration > 1 ? span->duration : 1);
        tg_buf_puts(out, "|ms\n");
    }
    for (i = 0; i < notes; i++) {
        /* Every line starts the same: sanitized once, copied after. */
        if (prefix_len) {
            tg_buf_append_copy(out, prefix_at, prefix_len);
        }
        else {
            prefix_at = out->len;
            prefix_len = append_metric_prefix(out, span);
        }
        tg_buf_putc(out, '.');
        append_note_name(out, tg_span_note_at(span, i).value);
        tg_buf_puts(out, ":1|c\n");
    }
}
