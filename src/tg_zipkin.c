#include "tg_zipkin.h"

#include "tg_json.h"

#include <stddef.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Members go out in the order Zipkin's own JSON writer uses, and only when
 * they say something: the spec asks to leave out what is unknown rather than
 * send zeros or empty strings.
 *
 * A span is written in two passes: its strings are measured, which bounds
 * what the whole span can take, the buffer makes room for that once, and
 * then everything is written raw (tg_buf.h), the constant parts of the text
 * as copies of a known length. */

#define ERROR_TAG "error"
#define DROPPED_TAG "tomograph.dropped"

/* The constant text around the strings, with room to spare: the ids, kind,
 * times, flags, both endpoints' member names and port, the first and last
 * notes, the HTTP tags' keys, status and lengths, the error and dropped
 * tags. */
#define SPAN_TEXT_MAX 1024
/* Around each note between the first and last, each other tag. */
#define NOTE_TEXT_MAX (sizeof("{\"timestamp\":,\"value\":\"\"},") + TG_DECIMAL_MAX)
#define TAG_TEXT_MAX (sizeof("\"\":\"\",") + 2)

/* As JSON members, after the comma, each copied whole (KIND_TEXT_MAX
 * bytes, the spare ones overwritten by what follows).  TG_SPAN_INTERNAL is
 * past the end: Zipkin v2 leaves a local span's kind out. */
#define KIND_TEXT_MAX 24
static const struct {
    char text[KIND_TEXT_MAX];
    size_t len;
} kind_members[] = {
#define KIND(name) { ",\"kind\":\"" name "\"", sizeof(",\"kind\":\"" name "\"") - 1 }
    [TG_SPAN_SERVER] = KIND("SERVER"),
    [TG_SPAN_CLIENT] = KIND("CLIENT"),
    [TG_SPAN_PRODUCER] = KIND("PRODUCER"),
    [TG_SPAN_CONSUMER] = KIND("CONSUMER"),
#undef KIND
};

typedef struct {
    const char *str;
    size_t len;
} text_t;

/* A span's strings and their lengths, measured once. */
typedef struct {
    text_t name;   /* its own, or "" */
    text_t method; /* the HTTP fields, as tags (len 0 and str NULL when unset) */
    text_t path;
    text_t method_in_name; /* as tg_span_name cuts them for a name made of them */
    text_t path_in_name;
    /* Written in the name as long as they are: with no escape and no
     * replacement, their JSON text is their bytes (set by put_name). */
    int method_verbatim;
    int path_verbatim;
    text_t endpoint[2][3]; /* local, remote: service name, ipv4, ipv6 */
    int local_as_before;   /* the local endpoint is the list's last: copied, not measured */
    size_t room;           /* the most the span can take written */
} span_texts_t;

/* What a list's span wrote that the next is likely to write the same, for
 * it to copy:
 * - the local endpoint of the last span that wrote one, and where its text
 *   is in the output: all of a server's spans have the same.  It is that
 *   span's own, which lives as long as the list;
 * - the digits of the last timestamp above its last eight, which stay the
 *   same for 100 s. */
typedef struct {
    const tg_endpoint_t *endpoint; /* NULL: none written yet */
    size_t at, len;
    uint32_t time_high; /* 0: none written yet */
    char time_high_digits[8];
    size_t time_high_len;
} list_memo_t;

enum { SERVICE, IPV4, IPV6 };

static text_t text_of(const char *str)
{
    return (text_t){ str, str ? strlen(str) : 0 };
}

static text_t cut_text(text_t text)
{
    if (text.len > TG_SPAN_MAX_STRING)
        text.len = TG_SPAN_MAX_STRING;
    return text;
}

static void measure_endpoint(text_t texts[3], const tg_endpoint_t *endpoint, size_t *room)
{
    texts[SERVICE] = text_of(endpoint->service_name);
    texts[IPV4] = text_of(endpoint->ipv4);
    texts[IPV6] = text_of(endpoint->ipv6);
    *room += TG_JSON_STRING_MAX(texts[SERVICE].len) + TG_JSON_STRING_MAX(texts[IPV4].len)
             + TG_JSON_STRING_MAX(texts[IPV6].len);
}

static size_t tags_room(const apr_array_header_t *tags)
{
    size_t room = 0;
    int i;
    for (i = 0; tags && i < tags->nelts; i++) {
        const tg_tag_t *tag = &APR_ARRAY_IDX(tags, i, tg_tag_t);
        room += TAG_TEXT_MAX + TG_JSON_STRING_MAX((tag->key ? strlen(tag->key) : 0)
                                                  + (tag->value ? strlen(tag->value) : 0));
    }
    return room;
}

static size_t notes_room(const apr_array_header_t *notes)
{
    size_t room = 0;
    int i;
    for (i = 0; notes && i < notes->nelts; i++) {
        const char *value = APR_ARRAY_IDX(notes, i, tg_annotation_t).value;
        room += NOTE_TEXT_MAX + TG_JSON_STRING_MAX(value ? strlen(value) : 0);
    }
    return room;
}

/* `memo`: the list's, when the span's local endpoint is the one it holds. */
static void measure(const tg_span_t *span, span_texts_t *texts, const list_memo_t *memo)
{
    size_t room = SPAN_TEXT_MAX;
    texts->name = text_of(span->name);
    texts->method = text_of(span->method);
    texts->path = text_of(span->path);
    texts->method_in_name = cut_text(texts->method);
    texts->path_in_name = cut_text(texts->path);
    /* The name's parts, then the tags': twice each. */
    room += TG_JSON_STRING_MAX(texts->name.len) + 2 * TG_JSON_STRING_MAX(texts->method.len)
            + 2 * TG_JSON_STRING_MAX(texts->path.len);
    texts->local_as_before = memo != NULL;
    if (memo)
        room += memo->len;
    else
        measure_endpoint(texts->endpoint[0], &span->local, &room);
    measure_endpoint(texts->endpoint[1], &span->remote, &room);
    texts->room = room + tags_room(span->tags) + notes_room(span->annotations);
}

/* Zipkin keeps span and service names in lowercase (its collector lowercases
 * what it stores), so the span file says what the collector shows.  A span
 * without a name of its own is named as tg_span_name names it. */
/* Whether a field's JSON text is its bytes: its part in the name is all of
 * it, and came out as long as it went in (an escape or a replacement makes
 * it longer).  A cut part's escapes may make up for what was cut. */
static int written_verbatim(text_t in_name, text_t field, ptrdiff_t written)
{
    return in_name.len == field.len && (size_t)written == field.len;
}

static char *put_name(char *p, const tg_span_t *span, span_texts_t *texts)
{
    char *text_at;
    texts->method_verbatim = texts->path_verbatim = 0;
    if (span->name || !span->method) {
        if (!texts->name.len)
            return p;
        p = TG_PUT_LITERAL(p, ",\"name\":");
        return tg_json_put_lowercase_string(p, texts->name.str, texts->name.len);
    }
    if (!texts->method_in_name.len && !span->path)
        return p;
    p = TG_PUT_LITERAL(p, ",\"name\":\"");
    text_at = p;
    p = tg_json_put_lowercase_text(p, texts->method_in_name.str, texts->method_in_name.len);
    texts->method_verbatim = written_verbatim(texts->method_in_name, texts->method, p - text_at);
    if (span->path) {
        *p++ = ' ';
        text_at = p;
        p = tg_json_put_lowercase_text(p, texts->path_in_name.str, texts->path_in_name.len);
        texts->path_verbatim = written_verbatim(texts->path_in_name, texts->path, p - text_at);
    }
    *p++ = '"';
    return p;
}

/* `member` is a literal where this is inlined. */
static inline __attribute__((always_inline)) char *put_endpoint(char *p, const char *member,
                                                                size_t member_len,
                                                                const text_t texts[3],
                                                                apr_port_t port)
{
    char separator = '{';
    if (!texts[SERVICE].len && !texts[IPV4].len && !texts[IPV6].len && !port)
        return p;
    memcpy(p, member, member_len);
    p += member_len;
    if (texts[SERVICE].len) {
        *p++ = separator;
        p = TG_PUT_LITERAL(p, "\"serviceName\":");
        p = tg_json_put_lowercase_string(p, texts[SERVICE].str, texts[SERVICE].len);
        separator = ',';
    }
    if (texts[IPV4].len) {
        *p++ = separator;
        p = TG_PUT_LITERAL(p, "\"ipv4\":");
        p = tg_json_put_string(p, texts[IPV4].str, texts[IPV4].len);
        separator = ',';
    }
    if (texts[IPV6].len) {
        *p++ = separator;
        p = TG_PUT_LITERAL(p, "\"ipv6\":");
        p = tg_json_put_string(p, texts[IPV6].str, texts[IPV6].len);
        separator = ',';
    }
    if (port) {
        *p++ = separator;
        p = TG_PUT_LITERAL(p, "\"port\":");
        p = tg_put_u64(p, port);
    }
    *p++ = '}';
    return p;
}

static char *put_optional_string(char *p, const char *str)
{
    return tg_json_put_string(p, str ? str : "", str ? strlen(str) : 0);
}

/* The span's timestamp as written: where its digits are, and where the last
 * eight of them start (NULL when it has no more than eight).  The stop's
 * time often shares all but its last eight digits with it: then those are
 * written with the start's, and kept here. */
typedef struct {
    const char *digits;
    size_t len;
    const char *last_eight;
    int stop_shares_high;
    char stop_last_eight[8];
} timestamp_text_t;

/* The eight digits of a < 10^8 at `a` and those of b < 10^8 at `b`, leading
 * zeros included: tg_digit_values's steps, with SSE2 for both at once. */
static void put_eight_digits_twice(char *a, uint32_t a_value, char *b, uint32_t b_value)
{
#ifdef __SSE2__
    __m128i n = _mm_set_epi64x(b_value, a_value);
    /* n / 10^4 (exact below 2^32), and n % 10^4 beside it: each 32-bit lane
     * a value below 10^4, the first four digits in the lower lane. */
    __m128i high = _mm_srli_epi64(_mm_mul_epu32(n, _mm_set1_epi64x(0xD1B71759)), 45);
    __m128i low = _mm_sub_epi64(n, _mm_mul_epu32(high, _mm_set1_epi64x(10000)));
    __m128i fours = _mm_or_si128(high, _mm_slli_epi64(low, 32));
    /* Each in two of two digits (x / 100 as x * 5243 >> 19, exact below
     * 43,699), the first pair in the lower 16-bit lane ... */
    __m128i high_pairs = _mm_srli_epi16(_mm_mulhi_epu16(fours, _mm_set1_epi32(5243)), 3);
    __m128i pairs = _mm_or_si128(
        _mm_slli_epi32(_mm_sub_epi16(fours, _mm_mullo_epi16(high_pairs, _mm_set1_epi32(100))), 16),
        high_pairs);
    /* ... and each of those in two digits (y / 10 as y * 6554 >> 16, exact
     * below 16,389), the first in the lower byte. */
    __m128i tens = _mm_mulhi_epu16(pairs, _mm_set1_epi16(6554));
    __m128i digits = _mm_or_si128(
        tens, _mm_slli_epi16(_mm_sub_epi16(pairs, _mm_mullo_epi16(tens, _mm_set1_epi16(10))), 8));
    digits = _mm_add_epi8(digits, _mm_set1_epi8('0'));
    _mm_storel_epi64((__m128i *)(void *)a, digits);
    _mm_storel_epi64((__m128i *)(void *)b, _mm_unpackhi_epi64(digits, digits));
#else
    tg_put_eight_digits(a, a_value);
    tg_put_eight_digits(b, b_value);
#endif
}

/* The digits above the last eight of a timestamp in [10^8, 10^16): the
 * memo's when the same, else written and kept in it (when there is one). */
static char *put_time_high(char *p, uint32_t high, list_memo_t *memo)
{
    char *start = p;
    if (memo && memo->time_high == high) {
        memcpy(p, memo->time_high_digits, 8);
        return p + memo->time_high_len;
    }
    p = tg_put_below_10e8(p, high);
    if (memo) {
        memo->time_high = high;
        memcpy(memo->time_high_digits, start, 8);
        memo->time_high_len = (size_t)(p - start);
    }
    return p;
}

static char *put_timestamp(char *p, const tg_span_t *span, timestamp_text_t *text,
                           list_memo_t *memo)
{
    uint64_t usec = (uint64_t)span->timestamp;
    uint32_t last_eight;
    text->digits = p;
    if (usec < TG_TEN_TO_THE_8 || usec >= TG_TEN_TO_THE_8 * TG_TEN_TO_THE_8) {
        p = tg_put_u64(p, usec);
        text->last_eight = NULL;
        text->stop_shares_high = 0;
    }
    else {
        p = put_time_high(p, (uint32_t)(usec / TG_TEN_TO_THE_8), memo);
        text->last_eight = p;
        last_eight = (uint32_t)(usec % TG_TEN_TO_THE_8);
        /* When the duration carries into no other digit. */
        text->stop_shares_high = span->duration >= 0
                                 && (uint64_t)span->duration < TG_TEN_TO_THE_8 - last_eight;
        put_eight_digits_twice(p, last_eight, text->stop_last_eight,
                               text->stop_shares_high ? last_eight + (uint32_t)span->duration : 0);
        p += 8;
    }
    text->len = (size_t)(p - text->digits);
    return p;
}

/* The stop's time: the start's with its last eight digits changed when it
 * shares the others (the start's written far enough back for the copy of
 * sixteen bytes not to overlap). */
static char *put_stop_time(char *p, const tg_span_t *span, const timestamp_text_t *start)
{
    if (start->stop_shares_high) {
        memcpy(p, start->digits, 16);
        p += start->last_eight - start->digits;
        memcpy(p, start->stop_last_eight, 8);
        return p + 8;
    }
    /* As tg_span_note_at places it; wrapping, not undefined, past the end
     * of time. */
    return tg_put_i64(p, (apr_time_t)((uint64_t)span->timestamp + (uint64_t)span->duration));
}

/* Every span has its first note, its start; the stop ends a finished one.
 * `start` holds the digits of the span's timestamp when they were written
 * already (len 0 when not). */
static char *put_annotations(char *p, const tg_span_t *span, const timestamp_text_t *start)
{
    const apr_array_header_t *notes = span->annotations;
    int i;
    p = TG_PUT_LITERAL(p, ",\"annotations\":[{\"timestamp\":");
    if (start->len) {
        /* At most TG_DECIMAL_MAX digits, copied whole: the start's were
         * written far enough back for that not to overlap. */
        memcpy(p, start->digits, TG_DECIMAL_MAX);
        p += start->len;
    }
    else {
        p = tg_put_i64(p, span->timestamp);
    }
    p = TG_PUT_LITERAL(p, ",\"value\":\"" TG_NOTE_START "\"}");
    for (i = 0; notes && i < notes->nelts; i++) {
        const tg_annotation_t *note = &APR_ARRAY_IDX(notes, i, tg_annotation_t);
        p = TG_PUT_LITERAL(p, ",{\"timestamp\":");
        p = tg_put_i64(p, note->timestamp);
        p = TG_PUT_LITERAL(p, ",\"value\":");
        p = put_optional_string(p, note->value);
        *p++ = '}';
    }
    if (span->finished) {
        p = TG_PUT_LITERAL(p, ",{\"timestamp\":");
        p = put_stop_time(p, span, start);
        p = TG_PUT_LITERAL(p, ",\"value\":\"" TG_NOTE_STOP "\"}");
    }
    *p++ = ']';
    return p;
}

/* The status as a JSON string: three digits, as every status from 100 on
 * has, without the integer writer's general case; others by it. */
static char *put_status_value(char *p, unsigned status)
{
    *p++ = '"';
    if (status >= 100 && status <= 999) {
        p[0] = (char)('0' + status / 100);
        p[1] = (char)('0' + status / 10 % 10);
        p[2] = (char)('0' + status % 10);
        p += 3;
    }
    else {
        p = tg_put_u64(p, status);
    }
    *p = '"';
    return p + 1;
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

/* An HTTP field's tag value: its bytes when its text in the name showed
 * they need no escape, for less than looking at them again. */
static char *put_field_value(char *p, text_t text, int verbatim)
{
    if (!verbatim)
        return tg_json_put_string(p, text.str, text.len);
    *p = '"';
    memcpy(p + 1, text.str, text.len);
    p[1 + text.len] = '"';
    return p + 2 + text.len;
}

/* The brace before the first tag, a comma before each other. */
static char *open_tag(char *p, int *tags)
{
    *p = (*tags)++ ? ',' : '{';
    return p + 1;
}

/* The HTTP fields first, as tg_span_tag_at gives them.  Zipkin has no error
 * flag of its own: its UI marks a span failed when it carries an "error"
 * tag, so a span flagged in error gets one unless the module already said
 * more in it.  Likewise what the span lost to its bounds or its record's
 * room shows as a tag, since Zipkin has no field for it either. */
static char *put_tags(char *p, const tg_span_t *span, const span_texts_t *texts)
{
    const apr_array_header_t *tags = span->tags;
    char *tags_at = p;
    int written = 0, i;
    p = TG_PUT_LITERAL(p, ",\"tags\":");
    if (span->method) {
        p = open_tag(p, &written);
        p = TG_PUT_LITERAL(p, "\"" TG_TAG_HTTP_METHOD "\":");
        p = put_field_value(p, texts->method, texts->method_verbatim);
    }
    if (span->path) {
        p = open_tag(p, &written);
        p = TG_PUT_LITERAL(p, "\"" TG_TAG_HTTP_PATH "\":");
        p = put_field_value(p, texts->path, texts->path_verbatim);
    }
    if (span->status_code) {
        p = open_tag(p, &written);
        p = TG_PUT_LITERAL(p, "\"" TG_TAG_HTTP_STATUS "\":");
        p = put_status_value(p, (unsigned)span->status_code);
    }
    if (span->transfer & TG_TRANSFER_REQUEST_BYTES) {
        p = open_tag(p, &written);
        p = TG_PUT_LITERAL(p, "\"" TG_TAG_REQUEST_LENGTH "\":\"");
        p = tg_put_u64(p, span->request_bytes);
        *p++ = '"';
    }
    if (span->transfer & TG_TRANSFER_RESPONSE_BYTES) {
        p = open_tag(p, &written);
        p = TG_PUT_LITERAL(p, "\"" TG_TAG_RESPONSE_LENGTH "\":\"");
        p = tg_put_u64(p, span->response_bytes);
        *p++ = '"';
    }
    for (i = 0; tags && i < tags->nelts; i++) {
        const tg_tag_t *tag = &APR_ARRAY_IDX(tags, i, tg_tag_t);
        p = open_tag(p, &written);
        p = put_optional_string(p, tag->key);
        *p++ = ':';
        p = put_optional_string(p, tag->value);
    }
    if (span->error && !has_tag(span, ERROR_TAG)) {
        p = open_tag(p, &written);
        p = TG_PUT_LITERAL(p, "\"" ERROR_TAG "\":\"true\"");
    }
    if (span->dropped && !has_tag(span, DROPPED_TAG)) {
        p = open_tag(p, &written);
        p = TG_PUT_LITERAL(p, "\"" DROPPED_TAG "\":\"");
        p = tg_put_u64(p, span->dropped);
        *p++ = '"';
    }
    if (!written)
        return tags_at; /* no tag: no member */
    *p++ = '}';
    return p;
}

static int same_string(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Compared by their strings, as they are in the span, rather than by their
 * lengths and bytes: a hit needs them measured no more. */
static int same_endpoint(const tg_endpoint_t *a, const tg_endpoint_t *b)
{
    return a->port == b->port && same_string(a->service_name, b->service_name)
           && same_string(a->ipv4, b->ipv4) && same_string(a->ipv6, b->ipv6);
}

/* The local endpoint, copied from the memo's when the same; `base` is the
 * start of the output, which holds the memo's text. */
static char *put_local_endpoint(char *p, const tg_span_t *span, const span_texts_t *texts,
                                char *base, list_memo_t *memo)
{
    char *start = p;
    if (texts->local_as_before) {
        memcpy(p, base + memo->at, memo->len);
        return p + memo->len;
    }
    p = put_endpoint(p, ",\"localEndpoint\":", sizeof(",\"localEndpoint\":") - 1,
                     texts->endpoint[0], span->local.port);
    if (memo) {
        memo->endpoint = &span->local;
        memo->at = (size_t)(start - base);
        memo->len = (size_t)(p - start);
    }
    return p;
}

static char *put_span(char *p, const tg_span_t *span, span_texts_t *texts, char *base,
                      list_memo_t *memo)
{
    timestamp_text_t timestamp = { NULL, 0, NULL, 0, { 0 } };
    p = TG_PUT_LITERAL(p, "{\"traceId\":\"");
    p = tg_put_hex64(p, span->trace_id.hi);
    p = tg_put_hex64(p, span->trace_id.lo);
    if (span->parent_id) {
        p = TG_PUT_LITERAL(p, "\",\"parentId\":\"");
        p = tg_put_hex64(p, span->parent_id);
    }
    p = TG_PUT_LITERAL(p, "\",\"id\":\"");
    p = tg_put_hex64(p, span->id);
    *p++ = '"';
    if ((unsigned)span->kind < sizeof(kind_members) / sizeof(kind_members[0])) {
        memcpy(p, kind_members[span->kind].text, KIND_TEXT_MAX);
        p += kind_members[span->kind].len;
    }
    p = put_name(p, span, texts);
    if (span->timestamp > 0) {
        p = TG_PUT_LITERAL(p, ",\"timestamp\":");
        p = put_timestamp(p, span, &timestamp, memo);
    }
    /* Zipkin rounds a duration under 1 µs up, and so do we. */
    if (span->finished || span->duration > 0) {
        p = TG_PUT_LITERAL(p, ",\"duration\":");
        p = tg_put_u64(p, span->duration > 1 ? (uint64_t)span->duration : 1);
    }
    p = put_local_endpoint(p, span, texts, base, memo);
    p = put_endpoint(p, ",\"remoteEndpoint\":", sizeof(",\"remoteEndpoint\":") - 1,
                     texts->endpoint[1], span->remote.port);
    p = put_annotations(p, span, &timestamp);
    p = put_tags(p, span, texts);
    if (span->debug)
        p = TG_PUT_LITERAL(p, ",\"debug\":true");
    if (span->shared)
        p = TG_PUT_LITERAL(p, ",\"shared\":true");
    *p++ = '}';
    return p;
}

static void append_span(tg_buf_t *out, const tg_span_t *span, list_memo_t *memo)
{
    span_texts_t texts;
    measure(span, &texts,
            memo && memo->endpoint && same_endpoint(memo->endpoint, &span->local) ? memo : NULL);
    if (tg_buf_room_for(out, texts.room))
        tg_buf_wrote(out, put_span(tg_buf_tail(out), span, &texts, out->data, memo));
}

void tg_zipkin_append_span(tg_buf_t *out, const tg_span_t *span)
{
    append_span(out, span, NULL);
}

void tg_zipkin_append_list(tg_buf_t *out, const tg_span_t *const *spans, int n)
{
    list_memo_t memo = { NULL, 0, 0, 0, { 0 }, 0 };
    int i;
    tg_buf_putc(out, '[');
    for (i = 0; i < n; i++) {
        if (i)
            tg_buf_putc(out, ',');
        append_span(out, spans[i], &memo);
    }
    tg_buf_putc(out, ']');
}
