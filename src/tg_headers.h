/* One pass over the names of a table of HTTP headers (httpd's headers_in,
 * or what a proxied request will carry): what the module needs to know of
 * them before it looks any up.  Most requests carry no trace header and no
 * body, and a lookup per header costs more than a look at every name.
 *
 * Names are matched without regard to case, as HTTP's are. */
#ifndef TG_HEADERS_H
#define TG_HEADERS_H

#include <apr_tables.h>

/* A header whose name begins as one a trace format reads, or its
 * companion's: traceparent, tracestate; b3; X-B3-*, X-Trace-Info,
 * X-Trace-HMAC.  Without it, extracting from the table would find nothing
 * and injecting into it needs no search for headers to replace. */
#define TG_HEADERS_MAY_CARRY_CONTEXT 0x1u
/* A body announced: a Content-Length other than 0, or a Transfer-Encoding
 * (chunks; HTTP/2 says chunked for a stream with data and no length). */
#define TG_HEADERS_ANNOUNCE_BODY 0x2u

/* The TG_HEADERS_* bits that hold for table. */
unsigned tg_headers_survey(const apr_table_t *table);

#endif
