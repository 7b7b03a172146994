/* The span queue: a bounded ring in memory that every httpd child (and any
 * process httpd forks, mod_wsgi daemons included) maps at the same place,
 * written by many and drained by the shipper.
 *
 * No lock: each slot carries a sequence number (Vyukov's bounded queue), so a
 * writer claims a slot with one compare-and-swap on the tail and publishes it
 * with one on the slot.  A writer killed between the two leaves one slot
 * claimed and never published; the reader skips such a slot once it has been
 * stuck for TG_QUEUE_STALE_USEC, so a dead writer costs its own record and
 * nothing else.  Records carry their own checksum (tg_record), which catches
 * the one torn case a skip allows: a writer frozen for longer than that which
 * wakes up and writes into a slot already reused.
 *
 * The queue does not allocate: the caller provides tg_queue_footprint(slots)
 * bytes (shared memory in httpd, malloc in tests). */
#ifndef TG_QUEUE_H
#define TG_QUEUE_H

#include <apr_errno.h>
#include <apr_time.h>
#include <stdint.h>

#define TG_QUEUE_SLOT_BYTES 2048 /* largest record */
#define TG_QUEUE_STALE_USEC (2 * APR_USEC_PER_SEC)

typedef struct tg_queue_t tg_queue_t;

/* What crossed the queue, for mod_status and the accounting identity
 * (pushed = popped + skipped + still queued). */
typedef struct {
    uint64_t pushed;
    uint64_t dropped_full;
    uint64_t dropped_oversize;
    uint64_t abandoned;     /* reserved, then committed empty */
    uint64_t popped;
    uint64_t skipped_stale;
    uint64_t depth;
    uint32_t capacity;
} tg_queue_stats_t;

/* Bytes needed for a queue of `slots` records (rounded up to a power of 2). */
apr_size_t tg_queue_footprint(uint32_t slots);

/* Formats mem (tg_queue_footprint(slots) bytes, suitably aligned) as an
 * empty queue and returns it. */
tg_queue_t *tg_queue_create(void *mem, uint32_t slots);

/* A slot claimed by a writer, to be filled in place (the request path
 * encodes a span straight into shared memory, no copy) and then committed. */
typedef struct {
    tg_queue_t *queue;
    uint64_t position;
    unsigned char *data; /* TG_QUEUE_SLOT_BYTES to fill */
} tg_queue_reservation_t;

/* Never blocks.  APR_EAGAIN (counted) when the queue is full. */
apr_status_t tg_queue_reserve(tg_queue_t *queue, tg_queue_reservation_t *reservation);

/* Publishes len bytes of reservation->data.  len 0 abandons the slot (the
 * writer could not encode its record; counted).  APR_TIMEUP when the reader
 * had already given the slot up as stale (the record is lost, and counted
 * by the reader). */
apr_status_t tg_queue_commit(tg_queue_reservation_t *reservation, apr_size_t len);

/* reserve + copy + commit.  APR_ENOSPC (counted) when the record is larger
 * than a slot. */
apr_status_t tg_queue_push(tg_queue_t *queue, const void *record, apr_size_t len);

/* Never blocks.  Copies the oldest record into buf (at least
 * TG_QUEUE_SLOT_BYTES) and sets *len.  APR_EAGAIN when there is none ready. */
apr_status_t tg_queue_pop(tg_queue_t *queue, void *buf, apr_size_t *len);

void tg_queue_stats(const tg_queue_t *queue, tg_queue_stats_t *stats);

#endif
