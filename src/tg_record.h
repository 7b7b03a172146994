/* The compact binary record a finished span travels in, from the httpd child
 * that made it through the shared-memory queue to the shipper.
 *
 * Layout (all integers little-endian): magic "TG", version, flags, the ids
 * and times as fixed 64-bit fields, then length-prefixed strings, tags and
 * notes, and a CRC-32 over everything before it.  The decoder trusts nothing:
 * a record from a writer that died half-way, or any other bytes, is rejected,
 * never read past its end. */
#ifndef TG_RECORD_H
#define TG_RECORD_H

#include <apr_errno.h>
#include <apr_pools.h>

#include "tg_span.h"

/* Encodes span into buf.  Returns the record's length, or 0 when it does not
 * fit in cap bytes (buf then holds garbage). */
apr_size_t tg_record_encode(const tg_span_t *span, unsigned char *buf, apr_size_t cap);

/* Decodes a record into a new span in pool.  APR_EINVAL for anything that
 * is not exactly one intact record. */
apr_status_t tg_record_decode(const unsigned char *buf, apr_size_t len, apr_pool_t *pool,
                              tg_span_t **span);

#endif
