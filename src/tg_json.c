#include "tg_json.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Containers nested deeper than this make the reader give up: the input is a
 * header an attacker controls, and each level costs a stack frame. */
#define MAX_DEPTH 32

#define DEL 0x7F

static const char hex_digits[] = "0123456789abcdef";
static const char replacement_character[] = "\xef\xbf\xbd"; /* U+FFFD */

/* The well-formed multi-byte UTF-8 sequences (the Unicode standard's table
 * 3-7, RFC 3629): the second byte's range is narrower than 80..BF after the
 * leads that would otherwise begin overlong forms, surrogates or code
 * points past U+10FFFF. */
static const struct {
    unsigned char lead_min, lead_max, second_min, second_max;
    size_t length;
} utf8_sequences[] = {
    {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
    {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3}, {0xf0, 0xf0, 0x90, 0xbf, 4},
    {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
};

/* Length (1..4) of the well-formed UTF-8 sequence at s, or 0 when the bytes
 * there are not one. */
static size_t utf8_sequence_length(const unsigned char *s, size_t avail)
{
    size_t kind, i;
    if (s[0] < 0x80)
        return 1;
    for (kind = 0; kind < sizeof(utf8_sequences) / sizeof(utf8_sequences[0]); kind++) {
        size_t length = utf8_sequences[kind].length;
        if (s[0] < utf8_sequences[kind].lead_min || s[0] > utf8_sequences[kind].lead_max)
            continue;
        if (avail < length || s[1] < utf8_sequences[kind].second_min
            || s[1] > utf8_sequences[kind].second_max)
            return 0;
        for (i = 2; i < length; i++)
            if ((s[i] & 0xc0) != 0x80)
                return 0;
        return length;
    }
    return 0;
}

/* The escape for a byte that cannot appear raw in a JSON string, written to
 * `escape` (at least 7 bytes); 0 when the byte needs none.  DEL may appear
 * raw in JSON, but is a control byte like those below 0x20 to a terminal
 * showing a span file: escaped too. */
static size_t escape_byte(unsigned char c, char *escape)
{
    char short_form = 0;
    switch (c) {
    case '"': short_form = '"'; break;
    case '\\': short_form = '\\'; break;
    case '\b': short_form = 'b'; break;
    case '\f': short_form = 'f'; break;
    case '\n': short_form = 'n'; break;
    case '\r': short_form = 'r'; break;
    case '\t': short_form = 't'; break;
    default:
        if (c >= 0x20 && c != DEL)
            return 0;
    }
    escape[0] = '\\';
    if (short_form) {
        escape[1] = short_form;
        return 2;
    }
    memcpy(escape + 1, "u00", 3);
    escape[4] = hex_digits[c >> 4];
    escape[5] = hex_digits[c & 0xf];
    return 6;
}

/* Most of what we write: ASCII that goes out as it is. */
static int is_plain_ascii(unsigned char c)
{
    return c >= 0x20 && c < DEL && c != '"' && c != '\\';
}

/* Writes the character at *s that is not plain ASCII: its escape, the
 * UTF-8 sequence it starts, or U+FFFD for a byte that starts none. */
static char *put_unplain(char *p, const unsigned char **s, const unsigned char *end)
{
    size_t escape_len = escape_byte(**s, p), sequence_len;
    if (escape_len) {
        (*s)++;
        return p + escape_len;
    }
    sequence_len = utf8_sequence_length(*s, (size_t)(end - *s));
    if (sequence_len) {
        memcpy(p, *s, sequence_len);
        *s += sequence_len;
        return p + sequence_len;
    }
    memcpy(p, replacement_character, sizeof(replacement_character) - 1);
    (*s)++;
    return p + sizeof(replacement_character) - 1;
}

/* One character at a time: what the fast paths below leave. */
static char *put_characters(char *p, const unsigned char *s, const unsigned char *end,
                            int lowercase)
{
    while (s < end) {
        if (is_plain_ascii(*s)) {
            unsigned char c = *s++;
            *p++ = (char)(lowercase && c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        else {
            p = put_unplain(p, &s, end);
        }
    }
    return p;
}

#ifdef __SSE2__
/* A bit for each byte of v that is not plain ASCII: below 0x20 or, as a
 * signed byte, below 0 (0x80 and up), DEL, quote, backslash. */
static inline unsigned unplain_bytes(__m128i v)
{
    __m128i control = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(DEL));
    __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    return (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(control, del), _mm_or_si128(quote, backslash)));
}

/* 0x20 added to the bytes from 'A' to 'Z'. */
static inline __m128i lowercase_bytes(__m128i v)
{
    __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
                                  _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
    return _mm_add_epi8(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
}

static inline __m128i load_two(uint64_t first, uint64_t second)
{
    return _mm_unpacklo_epi64(_mm_cvtsi64_si128((long long)first),
                              _mm_cvtsi64_si128((long long)second));
}

/* The text sixteen bytes at a time while they are plain (the bytes before
 * the first that is not go out as well); the last fifteen or fewer in one
 * step too, from loads that overlap rather than reach past the end; one
 * character at a time where something needs more than a copy.
 * `lowercase` is a constant where this is inlined. */
static inline __attribute__((always_inline)) char *put_text(char *p, const unsigned char *s,
                                                            size_t len, int lowercase)
{
    const unsigned char *end = s + len;
    size_t left;
    __m128i v;
    while ((left = (size_t)(end - s)) >= 16) {
        unsigned unplain;
        v = _mm_loadu_si128((const __m128i *)(const void *)s);
        unplain = unplain_bytes(v);
        _mm_storeu_si128((__m128i *)(void *)p, lowercase ? lowercase_bytes(v) : v);
        if (!unplain) {
            s += 16;
            p += 16;
            continue;
        }
        left = (size_t)__builtin_ctz(unplain);
        s += left;
        p = put_unplain(p + left, &s, end);
    }
    if (left >= 8) {
        uint64_t first, last;
        memcpy(&first, s, 8);
        memcpy(&last, end - 8, 8);
        v = load_two(first, last);
        if (!unplain_bytes(v)) {
            if (lowercase)
                v = lowercase_bytes(v);
            _mm_storel_epi64((__m128i *)(void *)p, v);
            _mm_storel_epi64((__m128i *)(void *)(p + left - 8), _mm_unpackhi_epi64(v, v));
            return p + left;
        }
    }
    else if (left >= 4) {
        uint32_t first, last;
        memcpy(&first, s, 4);
        memcpy(&last, end - 4, 4);
        /* The eight bytes above them are zero, not plain: not looked at. */
        v = _mm_cvtsi64_si128((long long)(first | (uint64_t)last << 32));
        if (!(unplain_bytes(v) & 0xff)) {
            if (lowercase)
                v = lowercase_bytes(v);
            first = (uint32_t)_mm_cvtsi128_si32(v);
            last = (uint32_t)_mm_cvtsi128_si32(_mm_srli_epi64(v, 32));
            memcpy(p, &first, 4);
            memcpy(p + left - 4, &last, 4);
            return p + left;
        }
    }
    else if (left) {
        /* One to three: the first, middle and last bytes, a space above. */
        uint32_t bytes = s[0] | (uint32_t)s[left / 2] << 8 | (uint32_t)end[-1] << 16
                         | (uint32_t)' ' << 24;
        v = _mm_cvtsi32_si128((int)bytes);
        if (!(unplain_bytes(v) & 0xf)) {
            if (lowercase)
                bytes = (uint32_t)_mm_cvtsi128_si32(lowercase_bytes(v));
            p[0] = (char)bytes;
            p[left / 2] = (char)(bytes >> 8);
            p[left - 1] = (char)(bytes >> 16);
            return p + left;
        }
    }
    return put_characters(p, s, end, lowercase);
}
#else
static inline char *put_text(char *p, const unsigned char *s, size_t len, int lowercase)
{
    return put_characters(p, s, s + len, lowercase);
}
#endif

char *tg_json_put_lowercase_text(char *p, const char *str, size_t len)
{
    return put_text(p, (const unsigned char *)str, len, 1);
}

char *tg_json_put_string(char *p, const char *str, size_t len)
{
    *p = '"';
    p = put_text(p + 1, (const unsigned char *)str, len, 0);
    *p = '"';
    return p + 1;
}

char *tg_json_put_lowercase_string(char *p, const char *str, size_t len)
{
    *p = '"';
    p = put_text(p + 1, (const unsigned char *)str, len, 1);
    *p = '"';
    return p + 1;
}

void tg_json_append_string(tg_buf_t *out, const char *str, size_t len)
{
    if (tg_buf_room_for(out, TG_JSON_STRING_MAX(len)))
        tg_buf_wrote(out, tg_json_put_string(tg_buf_tail(out), str, len));
}

/* ---- Reader ----------------------------------------------------------- */

typedef struct {
    const char *pos;
    const char *end;
} reader_t;

static void skip_whitespace(reader_t *r)
{
    while (r->pos < r->end && (*r->pos == ' ' || *r->pos == '\t' || *r->pos == '\n' || *r->pos == '\r'))
        r->pos++;
}

static int consume(reader_t *r, char c)
{
    if (r->pos < r->end && *r->pos == c) {
        r->pos++;
        return 1;
    }
    return 0;
}

static int consume_literal(reader_t *r, const char *literal)
{
    size_t len = strlen(literal);
    if ((size_t)(r->end - r->pos) < len || memcmp(r->pos, literal, len) != 0)
        return 0;
    r->pos += len;
    return 1;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int consume_digits(reader_t *r)
{
    const char *start = r->pos;
    while (r->pos < r->end && is_digit(*r->pos))
        r->pos++;
    return r->pos > start;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int skip_number(reader_t *r)
{
    consume(r, '-');
    if (!consume(r, '0') && !consume_digits(r))
        return 0;
    if (consume(r, '.') && !consume_digits(r))
        return 0;
    if (consume(r, 'e') || consume(r, 'E')) {
        if (!consume(r, '+'))
            consume(r, '-');
        if (!consume_digits(r))
            return 0;
    }
    return 1;
}

static int read_hex4(reader_t *r, unsigned *out)
{
    unsigned value = 0;
    int i;
    if (r->end - r->pos < 4)
        return 0;
    for (i = 0; i < 4; i++) {
        char c = *r->pos++;
        value <<= 4;
        if (is_digit(c))
            value |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            value |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            value |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = value;
    return 1;
}

/* Reads the code point of a \u escape (r after the 'u'), joining a
 * surrogate pair; a lone surrogate has no UTF-8 form and is rejected. */
static int read_unicode_escape(reader_t *r, unsigned *code_point)
{
    unsigned high, low;
    if (!read_hex4(r, &high))
        return 0;
    if (high >= 0xdc00 && high <= 0xdfff)
        return 0;
    if (high < 0xd800 || high > 0xdbff) {
        *code_point = high;
        return 1;
    }
    if (!consume(r, '\\') || !consume(r, 'u') || !read_hex4(r, &low) || low < 0xdc00 || low > 0xdfff)
        return 0;
    *code_point = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
    return 1;
}

static size_t encode_utf8(unsigned code_point, char *out)
{
    if (code_point < 0x80) {
        out[0] = (char)code_point;
        return 1;
    }
    if (code_point < 0x800) {
        out[0] = (char)(0xc0 | (code_point >> 6));
        out[1] = (char)(0x80 | (code_point & 0x3f));
        return 2;
    }
    if (code_point < 0x10000) {
        out[0] = (char)(0xe0 | (code_point >> 12));
        out[1] = (char)(0x80 | ((code_point >> 6) & 0x3f));
        out[2] = (char)(0x80 | (code_point & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (code_point >> 18));
    out[1] = (char)(0x80 | ((code_point >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((code_point >> 6) & 0x3f));
    out[3] = (char)(0x80 | (code_point & 0x3f));
    return 4;
}

static char unescape_short(char c)
{
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '/': return '/';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return 0;
    }
}

/* Reads a string (r on its opening quote).  When `decoded` is not NULL the
 * unescaped bytes go there; an escape is never shorter than what it stands
 * for, so the caller sizes it by the distance to the closing quote. */
static int read_string(reader_t *r, char *decoded, size_t *decoded_len)
{
    size_t written = 0;
    if (!consume(r, '"'))
        return 0;
    for (;;) {
        const unsigned char *c = (const unsigned char *)r->pos;
        char utf8[4];
        const char *piece = utf8;
        size_t piece_len;
        if (r->pos >= r->end || *c < 0x20)
            return 0;
        if (*c == '"') {
            r->pos++;
            break;
        }
        if (*c == '\\') {
            unsigned code_point;
            r->pos++;
            if (consume(r, 'u')) {
                if (!read_unicode_escape(r, &code_point))
                    return 0;
                piece_len = encode_utf8(code_point, utf8);
            }
            else {
                if (r->pos >= r->end || !(utf8[0] = unescape_short(*r->pos)))
                    return 0;
                r->pos++;
                piece_len = 1;
            }
        }
        else {
            piece = r->pos;
            piece_len = utf8_sequence_length(c, (size_t)(r->end - r->pos));
            if (!piece_len)
                return 0;
            r->pos += piece_len;
        }
        if (decoded)
            memcpy(decoded + written, piece, piece_len);
        written += piece_len;
    }
    if (decoded_len)
        *decoded_len = written;
    return 1;
}

/* Upper bound of a string's decoded length: the raw bytes up to its
 * closing quote (r on the opening quote). */
static size_t raw_string_length(const reader_t *r)
{
    const char *p = r->pos + 1;
    while (p < r->end && *p != '"')
        p += (*p == '\\' && r->end - p > 1) ? 2 : 1;
    return (size_t)(p - r->pos);
}

/* Reads one element of an array or member of an object; `state` belongs to
 * the callback. */
typedef int element_fn(reader_t *r, int depth, void *state);

static int skip_value(reader_t *r, int depth, void *state);

/* Reads an array or object (r on its opening bracket) at nesting `depth`,
 * handing each element to `element`. */
static int read_container(reader_t *r, char close, int depth, element_fn *element, void *state)
{
    r->pos++;
    skip_whitespace(r);
    if (consume(r, close))
        return 1;
    do {
        skip_whitespace(r);
        if (!element(r, depth, state))
            return 0;
        skip_whitespace(r);
    } while (consume(r, ','));
    return consume(r, close);
}

static int consume_name_separator(reader_t *r)
{
    skip_whitespace(r);
    if (!consume(r, ':'))
        return 0;
    skip_whitespace(r);
    return 1;
}

static int skip_member(reader_t *r, int depth, void *state)
{
    return read_string(r, NULL, NULL) && consume_name_separator(r) && skip_value(r, depth, state);
}

static int skip_value(reader_t *r, int depth, void *state)
{
    if (r->pos >= r->end)
        return 0;
    switch (*r->pos) {
    case '{':
        return depth < MAX_DEPTH && read_container(r, '}', depth + 1, skip_member, state);
    case '[':
        return depth < MAX_DEPTH && read_container(r, ']', depth + 1, skip_value, state);
    case '"':
        return read_string(r, NULL, NULL);
    case 't':
        return consume_literal(r, "true");
    case 'f':
        return consume_literal(r, "false");
    case 'n':
        return consume_literal(r, "null");
    default:
        return skip_number(r);
    }
}

/* Decodes the string at r into pool memory. */
static int read_pool_string(reader_t *r, apr_pool_t *pool, char **out, size_t *out_len)
{
    char *decoded = apr_palloc(pool, raw_string_length(r) + 1);
    if (!read_string(r, decoded, out_len))
        return 0;
    decoded[*out_len] = '\0';
    *out = decoded;
    return 1;
}

/* The search for one member of the top-level object. */
typedef struct {
    const char *key;
    size_t key_len;
    apr_pool_t *pool;
    const char *value; /* the last string value seen under key */
    int matches;       /* how many times key came */
    int is_string;     /* whether the last one was a string a C string can hold */
} lookup_t;

static int lookup_member(reader_t *r, int depth, void *state)
{
    lookup_t *lookup = state;
    char *name, *text;
    size_t name_len, text_len;
    if (!read_pool_string(r, lookup->pool, &name, &name_len) || !consume_name_separator(r))
        return 0;
    if (name_len != lookup->key_len || memcmp(name, lookup->key, name_len) != 0)
        return skip_value(r, depth, NULL);
    lookup->matches++;
    lookup->is_string = r->pos < r->end && *r->pos == '"';
    if (!lookup->is_string)
        return skip_value(r, depth, NULL);
    if (!read_pool_string(r, lookup->pool, &text, &text_len))
        return 0;
    /* An embedded NUL cannot be handed back as a C string. */
    lookup->is_string = memchr(text, '\0', text_len) == NULL;
    lookup->value = text;
    return 1;
}

int tg_json_object_get_string(const char *json, size_t len, const char *key,
                              apr_pool_t *pool, const char **value)
{
    reader_t r = {json, json + len};
    lookup_t lookup = {key, strlen(key), pool, NULL, 0, 0};
    skip_whitespace(&r);
    if (r.pos >= r.end || *r.pos != '{' || !read_container(&r, '}', 1, lookup_member, &lookup))
        return 0;
    skip_whitespace(&r);
    if (r.pos != r.end || lookup.matches != 1 || !lookup.is_string)
        return 0;
    *value = lookup.value;
    return 1;
}
