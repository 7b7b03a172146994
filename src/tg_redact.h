/* Keeping secrets out of spans: what a request writes to the error log may
 * become a note on its span (and so reach Zipkin, statsd names and files),
 * and such lines often quote URLs or headers. */
#ifndef TG_REDACT_H
#define TG_REDACT_H

#include <apr_pools.h>
#include <apr_tables.h>

#define TG_REDACTED "[redacted]"

/* The query parameters whose values are secret unless configured otherwise. */
#define TG_REDACT_DEFAULT_PARAMS "token", "password", "passwd", "secret", "key", "signature"

/* Returns text with TG_REDACTED in place of (a) the value of every query
 * parameter (`name=value`, name matched without regard to case, value
 * running to the next '&', ';', quote, whitespace or end) whose name is in
 * param_names, and (b) every occurrence of each string of `secrets` (at
 * least 4 bytes long; shorter ones would blank innocent text).  Both arrays
 * hold const char *; either may be NULL.  Returns text itself when nothing
 * matched. */
const char *tg_redact(apr_pool_t *pool, const char *text, const apr_array_header_t *param_names,
                      const apr_array_header_t *secrets);

/* Adds to secrets the value of a credential header and its parts: the
 * credentials after an Authorization scheme, each cookie's value. */
void tg_redact_add_header_secret(apr_array_header_t *secrets, apr_pool_t *pool,
                                 const char *value);

#endif
