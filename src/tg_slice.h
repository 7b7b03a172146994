/* Slices of a header value, as the trace header parsers cut it: a pointer
 * into the value and a length, no copy.  Optional whitespace (RFC 9110's
 * OWS: spaces and tabs) may stand around a header value and around the
 * members of a list, and is not part of them. */
#ifndef TG_SLICE_H
#define TG_SLICE_H

#include <stddef.h>

typedef struct {
    const char *text;
    size_t len;
} tg_slice_t;

static inline int tg_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* [start, end) without the optional whitespace around it. */
static inline tg_slice_t tg_slice_trim_ows(const char *start, const char *end)
{
    tg_slice_t trimmed;
    while (start < end && tg_is_ows(*start))
        start++;
    while (end > start && tg_is_ows(end[-1]))
        end--;
    trimmed.text = start;
    trimmed.len = (size_t)(end - start);
    return trimmed;
}

#endif
