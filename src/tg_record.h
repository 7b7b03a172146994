/* The compact binary record a finished span travels in, from the httpd child
 * that made it through the shared-memory queue to the shipper.
 *
 * Layout (all integers little-endian): magic "TG", version, flags, the ids
 * and times as fixed 64-bit fields, the HTTP status and ports, then
 * length-prefixed strings, tags and notes, and a CRC-32C over everything
 * before it.  The decoder trusts nothing:
 * a record from a writer that died half-way, or any other bytes, is rejected,
 * never read past its end. */
#ifndef TG_RECORD_H
#define TG_RECORD_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_span.h"

/* Room for the record of any span, once degraded (see tg_record_encode):
 * its ids, times, flags, HTTP fields and error tag, and for a server span
 * from mod_tomograph at least 64 bytes of each string. */
#define TG_RECORD_MIN_CAP 1024

/* Encodes span into buf, never writing past cap bytes, and returns the
 * record's length.
 *
 * When the whole span does not fit and cap >= TG_RECORD_MIN_CAP, the record
 * leaves out, in this order and only until it fits: tags from the last one
 * backwards except error; the notes between the first and the last (which
 * bound the span), from the last backwards; then the ends of the longest
 * strings (the span name, method, path, service names, tag values, note
 * values: cut at a UTF-8 character boundary, never a tag key; an address
 * goes whole or not at all).  Each tag
 * or note left out and each string cut adds 1 to the record's dropped count.
 * The same span and cap always give the same record.
 *
 * Returns 0 only when cap < TG_RECORD_MIN_CAP and the whole span does not
 * fit (buf then holds garbage). */
apr_size_t tg_record_encode(const tg_span_t *span, unsigned char *buf, apr_size_t cap);

/* Decodes a record into a new span in pool.  APR_EINVAL for anything that
 * is not exactly one intact record.  A string holding a NUL (which
 * tg_record_encode never writes) ends there, as C reads it. */
apr_status_t tg_record_decode(const unsigned char *buf, apr_size_t len, apr_pool_t *pool,
                              tg_span_t **span);

/* CRC-32C (Castagnoli, as iSCSI and ext4 compute it) of len bytes: the
 * record's check.  With the CPU's crc32 instruction (SSE4.2) when it has
 * one, which costs about a tenth of the tables, else with tables eight
 * bytes at a time. */
uint32_t tg_crc32c(const void *bytes, size_t len);

/* The same with the tables, whatever the CPU has: what tg_crc32c falls back
 * to, there to be compared with it. */
uint32_t tg_crc32c_tables(const void *bytes, size_t len);

#endif
