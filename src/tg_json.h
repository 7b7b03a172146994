/* The strings of the JSON we write (tg_zipkin.c's spans, which the span
 * file holds too, and tg_otlp.c's requests) and the little we read
 * (osprofiler's X-Trace-Info payload: one flat object of strings). */
#ifndef TG_JSON_H
#define TG_JSON_H

#include <stddef.h>
#include <apr_pools.h>

#include "tg_buf.h"

/* Appends `len` bytes of `str` as a quoted JSON string.  Control bytes,
 * DEL, quote and backslash are escaped; bytes that are not valid UTF-8
 * become U+FFFD, so the output always parses and never carries a raw CR or
 * LF. */
void tg_json_append_string(tg_buf_t *out, const char *str, size_t len);

/* The most bytes a string of `len` bytes takes written: each byte escaped
 * as \u00XX, and the quotes. */
#define TG_JSON_STRING_MAX(len) (6 * (size_t)(len) + 2)

/* The same string written raw at p (see tg_buf.h), which has room for
 * TG_JSON_STRING_MAX(len) bytes; returns where it ends.  The second writes
 * ASCII letters in lowercase, the escapes being the same in either case. */
char *tg_json_put_string(char *p, const char *str, size_t len);
char *tg_json_put_lowercase_string(char *p, const char *str, size_t len);

/* The text of a string in lowercase without its quotes, for a writer that
 * puts several pieces between one pair. */
char *tg_json_put_lowercase_text(char *p, const char *str, size_t len);

/* Finds member `key` of the top-level JSON object in json[0..len) and, when
 * its value is a string, stores its unescaped value (NUL-terminated, in
 * `pool`) in *value.  Returns 1 when found; 0 when the text is not one
 * well-formed JSON object, when the member is absent or not a string, or
 * when it appears twice. */
int tg_json_object_get_string(const char *json, size_t len, const char *key,
                              apr_pool_t *pool, const char **value);

#endif
