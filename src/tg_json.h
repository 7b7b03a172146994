/* The JSON we write (Zipkin v2 spans, span-file lines) and the little we read
 * (osprofiler's X-Trace-Info payload: one flat object of strings). */
#ifndef TG_JSON_H
#define TG_JSON_H

#include <stddef.h>
#include <apr_pools.h>

#include "tg_buf.h"

/* Appends `len` bytes of `str` as a quoted JSON string.  Control bytes,
 * quote and backslash are escaped; bytes that are not valid UTF-8 become
 * U+FFFD, so the output always parses and never carries a raw CR or LF. */
void tg_json_append_string(tg_buf_t *out, const char *str, size_t len);

/* Finds member `key` of the top-level JSON object in json[0..len) and, when
 * its value is a string, stores its unescaped value (NUL-terminated, in
 * `pool`) in *value.  Returns 1 when found; 0 when the text is not one
 * well-formed JSON object, when the member is absent or not a string, or
 * when it appears twice. */
int tg_json_object_get_string(const char *json, size_t len, const char *key,
                              apr_pool_t *pool, const char **value);

#endif
