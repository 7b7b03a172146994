#include "tg_statsd.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define UNKNOWN_SERVICE "unknown"
#define NOTE_NAME_MAX 64

/* What an id in a span's name is written as, and what makes a run one. */
#define ID_TEXT "id"
#define ID_HEX_DIGITS 16
#define ID_DECIMAL_DIGITS 4

/* What a Graphite path component may hold as it is: ASCII letters, digits
 * and '-', whatever the locale says.  '_' is kept out so that it is only
 * ever written as the one separator of a collapsed run.  Each table gives
 * the byte written for a byte kept, 0 for one that separates runs. */
#define KEPT(lowercase)                                                                            \
    {                                                                                              \
        ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f', ['g'] = 'g', \
        ['h'] = 'h', ['i'] = 'i', ['j'] = 'j', ['k'] = 'k', ['l'] = 'l', ['m'] = 'm', ['n'] = 'n', \
        ['o'] = 'o', ['p'] = 'p', ['q'] = 'q', ['r'] = 'r', ['s'] = 's', ['t'] = 't', ['u'] = 'u', \
        ['v'] = 'v', ['w'] = 'w', ['x'] = 'x', ['y'] = 'y', ['z'] = 'z',                          \
        ['A'] = 'A' | (lowercase), ['B'] = 'B' | (lowercase), ['C'] = 'C' | (lowercase),           \
        ['D'] = 'D' | (lowercase), ['E'] = 'E' | (lowercase), ['F'] = 'F' | (lowercase),           \
        ['G'] = 'G' | (lowercase), ['H'] = 'H' | (lowercase), ['I'] = 'I' | (lowercase),           \
        ['J'] = 'J' | (lowercase), ['K'] = 'K' | (lowercase), ['L'] = 'L' | (lowercase),           \
        ['M'] = 'M' | (lowercase), ['N'] = 'N' | (lowercase), ['O'] = 'O' | (lowercase),           \
        ['P'] = 'P' | (lowercase), ['Q'] = 'Q' | (lowercase), ['R'] = 'R' | (lowercase),           \
        ['S'] = 'S' | (lowercase), ['T'] = 'T' | (lowercase), ['U'] = 'U' | (lowercase),           \
        ['V'] = 'V' | (lowercase), ['W'] = 'W' | (lowercase), ['X'] = 'X' | (lowercase),           \
        ['Y'] = 'Y' | (lowercase), ['Z'] = 'Z' | (lowercase), ['0'] = '0', ['1'] = '1',            \
        ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5', ['6'] = '6', ['7'] = '7', ['8'] = '8', \
        ['9'] = '9', ['-'] = '-',                                                                  \
    }

static const unsigned char kept_as_is[256] = KEPT(0);
static const unsigned char kept_lowercase[256] = KEPT(0x20);

/* Writes part[0..len)'s runs of kept characters, one '_' between two runs
 * (none leads, none trails); nothing when it has none. */
static char *put_runs_one_by_one(char *p, const unsigned char *s, const unsigned char *end,
                                 const unsigned char *kept)
{
    char *start = p;
    int gap = 0;
    for (; s < end; s++) {
        unsigned char c = kept[*s];
        if (!c) {
            gap = 1;
            continue;
        }
        if (gap && p != start)
            *p++ = '_';
        gap = 0;
        *p++ = (char)c;
    }
    return p;
}

#ifdef __SSE2__
/* Sixteen bytes in one step: the kept ones as written, the others as '_',
 * and a bit for each byte that is not kept. */
static inline __m128i sanitize_bytes(__m128i v, int lowercase, unsigned *separators)
{
    __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
    __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8('a' - 1)),
                                   _mm_cmplt_epi8(folded, _mm_set1_epi8('z' + 1)));
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                  _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
    __m128i kept = _mm_or_si128(_mm_or_si128(letter, digit),
                                _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
    __m128i written = lowercase ? _mm_or_si128(v, _mm_and_si128(letter, _mm_set1_epi8(0x20))) : v;
    *separators = ~(unsigned)_mm_movemask_epi8(kept) & 0xffff;
    return _mm_or_si128(_mm_and_si128(kept, written),
                        _mm_andnot_si128(kept, _mm_set1_epi8('_')));
}

/* Whether the bytes are written one for one: no two separators side by
 * side (a run of them collapses). */
static inline int no_adjacent(unsigned separators)
{
    return !(separators & (separators >> 1));
}

/* The same, sixteen bytes at a time, when the part (of four bytes or more)
 * starts and ends with kept characters and no two separators are side by
 * side: then every byte is written, a separator as '_'.  The last fifteen
 * or fewer come from a load that overlaps the one before rather than
 * reaching past the end.  NULL when the part is not like that. */
static inline __attribute__((always_inline)) char *put_runs_at_once(char *p, const unsigned char *s,
                                                                    size_t len, int lowercase)
{
    unsigned separators, carried = 0;
    size_t at;
    __m128i v;
    if (len >= 16) {
        for (at = 0;;) {
            v = sanitize_bytes(_mm_loadu_si128((const __m128i *)(const void *)(s + at)), lowercase,
                               &separators);
            if (!no_adjacent(separators) || (carried & separators & 1))
                return NULL;
            _mm_storeu_si128((__m128i *)(void *)(p + at), v);
            if (at + 16 == len)
                return p + len;
            carried = separators >> 15;
            at += 16;
            if (at + 16 > len) {
                /* The last sixteen, overlapping: the pair across the seam
                 * is inside them. */
                at = len - 16;
                carried = 0;
            }
        }
    }
    /* Eight to fifteen bytes: the first eight and the last eight side by
     * side, a separator on either side of the seam counting as adjacent;
     * four to seven: the first four and the last four so. */
    if (len >= 8) {
        uint64_t first, last;
        memcpy(&first, s, 8);
        memcpy(&last, s + len - 8, 8);
        v = sanitize_bytes(_mm_unpacklo_epi64(_mm_cvtsi64_si128((long long)first),
                                              _mm_cvtsi64_si128((long long)last)),
                           lowercase, &separators);
        if (!no_adjacent(separators))
            return NULL;
        _mm_storel_epi64((__m128i *)(void *)p, v);
        _mm_storel_epi64((__m128i *)(void *)(p + len - 8), _mm_unpackhi_epi64(v, v));
        return p + len;
    }
    {
        uint32_t first, last;
        memcpy(&first, s, 4);
        memcpy(&last, s + len - 4, 4);
        /* The eight bytes above them are zero, separators: not looked at. */
        v = sanitize_bytes(_mm_cvtsi64_si128((long long)(first | (uint64_t)last << 32)),
                           lowercase, &separators);
        if (!no_adjacent(separators & 0xff))
            return NULL;
        first = (uint32_t)_mm_cvtsi128_si32(v);
        last = (uint32_t)_mm_cvtsi128_si32(_mm_srli_epi64(v, 32));
        memcpy(p, &first, 4);
        memcpy(p + len - 4, &last, 4);
        return p + len;
    }
}
#endif

/* The runs of part[0..len), lowercase or as they are.  The room it needs:
 * len bytes, and 16 spare after them. */
static inline __attribute__((always_inline)) char *put_runs(char *p, const char *part, size_t len,
                                                            int lowercase)
{
    const unsigned char *kept = lowercase ? kept_lowercase : kept_as_is;
    const unsigned char *s = (const unsigned char *)part, *end = s + len;
    while (s < end && !kept[*s])
        s++;
    while (end > s && !kept[end[-1]])
        end--;
#ifdef __SSE2__
    if (end - s >= 4) {
        char *written = put_runs_at_once(p, s, (size_t)(end - s), lowercase);
        if (written)
            return written;
    }
#endif
    /* Up to three bytes, the first and last kept: the middle one is either. */
    if (end - s <= 3 && s < end) {
        size_t short_len = (size_t)(end - s);
        p[0] = (char)kept[s[0]];
        p[short_len - 1] = (char)kept[end[-1]];
        if (short_len == 3)
            p[1] = kept[s[1]] ? (char)kept[s[1]] : '_';
        return p + short_len;
    }
    return put_runs_one_by_one(p, s, end, kept);
}

/* A name component: never empty, "_" at worst. */
static inline __attribute__((always_inline)) char *put_name_part(char *p, const char *part,
                                                                 size_t len, int lowercase)
{
    char *end = put_runs(p, part, len, lowercase);
    if (end == p)
        *end++ = '_';
    return end;
}

/* What a span is named from, measured once: its own name, or its method
 * and path as tg_span_name cuts them. */
typedef struct {
    const char *name;
    size_t name_len;
    size_t method_len;
    size_t path_len;
} name_source_t;

static size_t measure_name(const tg_span_t *span, name_source_t *source)
{
    source->method_len = source->path_len = 0;
    if (span->name || !span->method) {
        source->name = span->name ? span->name : "";
        source->name_len = strlen(source->name);
        return source->name_len;
    }
    source->name = NULL;
    source->name_len = 0;
    source->method_len = strnlen(span->method, TG_SPAN_MAX_STRING);
    source->path_len = span->path ? strnlen(span->path, TG_SPAN_MAX_STRING) : 0;
    return source->method_len + 1 + source->path_len;
}

/* Whether a run of a written name is an id: every value it takes would be
 * a metric of its own, a file of its own in Graphite.  Four decimal digits
 * or more (a version's "2" or "1" stays), or sixteen hex digits or more
 * with nothing but '-' between them (a UUID, a project's 32-digit id, with
 * a prefix such as "req-" or not). */
static int is_id(const char *run, const char *end)
{
    size_t digits = 0, hex = 0;
    int only_digits = 1;
    for (; run < end; run++) {
        char c = *run;
        int decimal = c >= '0' && c <= '9';
        only_digits &= decimal;
        digits += (size_t)decimal;
        if (decimal || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
            hex++;
        else if (c != '-')
            hex = 0;
        if (hex >= ID_HEX_DIGITS)
            return 1;
    }
    return only_digits && digits >= ID_DECIMAL_DIGITS;
}

/* Whether the written name [p, end) may hold an id: four decimal digits or
 * sixteen hex digits in all.  Most names hold neither, and this tells at
 * sixteen bytes a step (the bytes of the last step past end, which the
 * writer's room holds, masked out); without SSE2, any name may. */
static int may_hold_id(const char *p, const char *end)
{
#ifdef __SSE2__
    /* From the 16 - n'th byte on, n bytes of ones then zeros: the mask of
     * the n bytes of a step that lie in the name. */
    static const unsigned char in_name_bytes[32] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    const __m128i one = _mm_set1_epi8(1), zero = _mm_setzero_si128();
    __m128i decimal = zero, hex = zero;
    for (; p < end; p += 16) {
        size_t n = end - p < 16 ? (size_t)(end - p) : 16;
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        __m128i in_name = _mm_loadu_si128((const __m128i *)(const void *)(in_name_bytes + 16 - n));
        __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8('a' - 1)),
                                       _mm_cmplt_epi8(folded, _mm_set1_epi8('f' + 1)));
        /* Each byte 1 or 0, summed by eight into each half. */
        digit = _mm_and_si128(_mm_and_si128(digit, in_name), one);
        letter = _mm_and_si128(_mm_and_si128(letter, in_name), one);
        decimal = _mm_add_epi64(decimal, _mm_sad_epu8(digit, zero));
        hex = _mm_add_epi64(hex, _mm_sad_epu8(_mm_or_si128(digit, letter), zero));
    }
    decimal = _mm_add_epi64(decimal, _mm_unpackhi_epi64(decimal, decimal));
    hex = _mm_add_epi64(hex, _mm_unpackhi_epi64(hex, hex));
    return _mm_cvtsi128_si32(decimal) >= ID_DECIMAL_DIGITS
           || _mm_cvtsi128_si32(hex) >= ID_HEX_DIGITS;
#else
    (void)p;
    (void)end;
    return 1;
#endif
}

/* The written name [start, end) with each run that is an id (is_id)
 * replaced by ID_TEXT, which is never longer; returns its new end.  The
 * room it is written in has 16 spare bytes after it (put_runs). */
static char *collapse_ids(char *start, char *end)
{
    char *read = start, *write = start;
    if (!may_hold_id(start, end))
        return end;
    while (read < end) {
        char *run_end = memchr(read, '_', (size_t)(end - read));
        size_t len;
        run_end = run_end ? run_end : end;
        len = (size_t)(run_end - read);
        if (is_id(read, run_end)) {
            memcpy(write, ID_TEXT, sizeof(ID_TEXT) - 1);
            write += sizeof(ID_TEXT) - 1;
        }
        else {
            memmove(write, read, len);
            write += len;
        }
        if (run_end < end)
            *write++ = '_';
        read = run_end + 1;
    }
    return write;
}

/* The span's name as a component, before its ids are collapsed.  One named
 * after its request is named as the module has always named it, in
 * lowercase ("get /api" is "get_api"): the runs of its method and of its
 * path, with the separator between. */
static char *put_span_name_runs(char *p, const tg_span_t *span, const name_source_t *source)
{
    char *start = p, *path_at;
    if (source->name)
        return put_name_part(p, source->name, source->name_len, 0);
    p = put_runs(p, span->method, source->method_len, 1);
    if (span->path) {
        path_at = p + (p != start);
        *p = '_';
        p = put_runs(path_at, span->path, source->path_len, 1);
        if (p == path_at)
            p = path_at - (path_at != start); /* no runs in the path: no separator */
    }
    if (p == start)
        *p++ = '_';
    return p;
}

/* The span's name as a component, its ids collapsed (is_id): a request
 * for /v2/images/<uuid> is timed as get_v2_images_id. */
static char *put_span_name(char *p, const tg_span_t *span, const name_source_t *source)
{
    return collapse_ids(p, put_span_name_runs(p, span, source));
}

/* statsd takes fractional milliseconds, and a span is timed to the
 * microsecond: the value is exact, "12" or "12.345" (trailing zeros of the
 * fraction left out, "12.3"), never rounded through a double. */
static char *put_milliseconds(char *p, uint64_t usec)
{
    unsigned fraction;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (usec < TG_TEN_TO_THE_8) {
        /* From the eight digits at once: five of milliseconds, their
         * leading zeros but the last shifted out, then three of fraction,
         * their trailing zeros cut. */
        uint64_t values = tg_digit_values((uint32_t)usec), word = values + TG_ASCII_ZEROS;
        uint32_t decimals = (uint32_t)(values >> 40);
        unsigned zeros = (unsigned)__builtin_ctzll(values | (UINT64_C(1) << 32)) >> 3;
        uint64_t integer = word >> (8 * zeros);
        memcpy(p, &integer, 8);
        p += 5 - zeros;
        if (!decimals)
            return p;
        *p = '.';
        word >>= 40;
        memcpy(p + 1, &word, 4);
        return p + 4 - ((unsigned)(__builtin_clz(decimals) - 8) >> 3);
    }
#endif
    fraction = (unsigned)(usec % 1000);
    p = tg_put_u64(p, usec / 1000);
    if (!fraction)
        return p;
    p[0] = '.';
    p[1] = (char)('0' + fraction / 100);
    p[2] = (char)('0' + fraction / 10 % 10);
    p[3] = (char)('0' + fraction % 10);
    p += 4;
    while (p[-1] == '0')
        p--;
    return p;
}

/* A note's counter is named after what the note is, not all it says: its
 * text up to the first ':' or '/', where a message or a path would follow
 * ("error: AH01114: ...", "subrequest /x"), and at most NOTE_NAME_MAX bytes,
 * so that the number of metric names stays bounded. */
static char *put_note_line(char *p, const char *prefix, size_t prefix_len,
                           const tg_annotation_t *note, apr_time_t span_start)
{
    const char *text = note->value ? note->value : "";
    size_t len = strcspn(text, ":/");
    memcpy(p, prefix, prefix_len);
    p += prefix_len;
    *p++ = '.';
    p = put_name_part(p, text, len < NOTE_NAME_MAX ? len : NOTE_NAME_MAX, 0);
    /* A moment of the transfer: how long after the start, which Graphite
     * averages and bounds (time to first byte), where a count would only
     * repeat the number of requests. */
    if (strcmp(text, TG_NOTE_FIRST_BYTE) == 0 || strcmp(text, TG_NOTE_BODY_READ) == 0) {
        *p++ = ':';
        p = put_milliseconds(p, note->timestamp > span_start
                                    ? (uint64_t)(note->timestamp - span_start) : 1);
        return TG_PUT_LITERAL(p, "|ms\n");
    }
    return TG_PUT_LITERAL(p, ":1|c\n");
}

/* A line of a constant counter: the prefix and, say, ".start:1|c\n". */
static char *put_counter_line(char *p, const char *prefix, size_t prefix_len, const char *suffix,
                              size_t suffix_len)
{
    memcpy(p, prefix, prefix_len);
    memcpy(p + prefix_len, suffix, suffix_len);
    return p + prefix_len + suffix_len;
}

#define COUNTER_LINE(note) "." note ":1|c\n", sizeof("." note ":1|c\n") - 1

/* Every line starts with <service>.<span name>, sanitized once, copied
 * after.  Room for each line: the prefix, a note's name, the value and the
 * spare bytes the writers store beyond what they write. */
#define LINE_TEXT_MAX (NOTE_NAME_MAX + TG_DECIMAL_MAX + 32)

/* The service's name as a component: the memo's when it holds this name
 * (`len` is then the memo's), else written, and kept in the memo when it
 * is short enough.  The room it needs: len bytes, and TG_STATSD_MEMO_TEXT
 * spare. */
static char *put_service(char *p, const char *service, size_t len, int in_memo,
                         tg_statsd_memo_t *memo)
{
    char *start = p;
    if (in_memo) {
        memcpy(p, memo->text, TG_STATSD_MEMO_TEXT);
        return p + len;
    }
    p = put_name_part(p, service, len, 0);
    if ((size_t)(p - start) <= TG_STATSD_MEMO_TEXT) {
        memo->service = service;
        memo->len = (size_t)(p - start);
        memcpy(memo->text, start, memo->len);
    }
    return p;
}

void tg_statsd_append_span(tg_buf_t *out, const tg_span_t *span, tg_statsd_memo_t *memo)
{
    const char *service = span->local.service_name;
    const apr_array_header_t *notes = span->annotations;
    size_t service_len, prefix_max, prefix_len;
    int lines = tg_span_note_count(span) + 1, in_memo, i;
    name_source_t name;
    char *p, *prefix;
    if (!service || !*service)
        service = UNKNOWN_SERVICE;
    /* Written, a name is never longer than it was (nor measured again when
     * the memo holds it). */
    in_memo = memo->service && strcmp(service, memo->service) == 0;
    service_len = in_memo ? memo->len : strlen(service);
    prefix_max = service_len + 1 + measure_name(span, &name) + 16;
    if (!tg_buf_room_for(out, (size_t)lines * (prefix_max + LINE_TEXT_MAX)))
        return;
    p = prefix = tg_buf_tail(out);
    p = put_service(p, service, service_len, in_memo, memo);
    *p++ = '.';
    p = put_span_name(p, span, &name);
    prefix_len = (size_t)(p - prefix);
    /* As in Zipkin JSON: an unfinished span has no length to report, and a
     * finished one took at least 1 µs. */
    if (span->finished || span->duration > 0) {
        *p++ = ':';
        p = put_milliseconds(p, span->duration > 1 ? (uint64_t)span->duration : 1);
        p = TG_PUT_LITERAL(p, "|ms\n");
        p = put_counter_line(p, prefix, prefix_len, COUNTER_LINE(TG_NOTE_START));
    }
    else {
        /* The prefix written is the start line's. */
        p = TG_PUT_LITERAL(p, "." TG_NOTE_START ":1|c\n");
    }
    for (i = 0; notes && i < notes->nelts; i++)
        p = put_note_line(p, prefix, prefix_len, &APR_ARRAY_IDX(notes, i, tg_annotation_t),
                          span->timestamp);
    if (span->finished)
        p = put_counter_line(p, prefix, prefix_len, COUNTER_LINE(TG_NOTE_STOP));
    tg_buf_wrote(out, p);
}
