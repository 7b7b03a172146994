/* The span queue: a bounded ring of bytes in memory that every httpd child
 * (and any process httpd forks, mod_wsgi daemons included) maps at the same
 * place, written by many and drained by the shipper.
 *
 * Records have variable length: a record takes as many 64-byte cells as it
 * needs, so a typical span costs a few hundred bytes, not the largest one's.
 *
 * No lock: each cell carries a sequence number (Vyukov's bounded queue,
 * extended to runs of cells), so a writer claims its cells with one
 * compare-and-swap on the tail and publishes them with a store on the first
 * cell: one locked instruction a record, and no count (tg_queue_stats
 * derives them).  A writer killed between the two leaves its cells claimed
 * and never published; the reader skips them once they have been stuck for
 * TG_QUEUE_STALE_USEC, so a dead writer costs its own record and nothing
 * else.  A writer frozen for longer than that which wakes up costs its own
 * record and one other at most, counted lost or caught by the records' own
 * checksum (tg_record): it may write into cells already reused, and its
 * publication may set back a later lap's cell (see publish in tg_queue.c).
 *
 * The queue does not allocate: the caller provides tg_queue_footprint(n)
 * bytes (shared memory in httpd, malloc in tests). */
#ifndef TG_QUEUE_H
#define TG_QUEUE_H

#include <apr_errno.h>
#include <apr_time.h>
#include <stdint.h>

#define TG_QUEUE_SLOT_BYTES 2048       /* the largest record */
#define TG_QUEUE_BYTES_PER_RECORD 512  /* the room a queue sized in records gives each */
#define TG_QUEUE_STALE_USEC (2 * APR_USEC_PER_SEC)

typedef struct tg_queue_t tg_queue_t;

/* What crossed the queue, for mod_status and the accounting identity
 * (pushed = popped + depth; claimed cells of dead writers are skipped_stale;
 * created = pushed + lost).  A push costs the writer no count of its own:
 * the records pushed are those the reader popped (counted) and those the
 * queue holds published (walked: a walk over the records queued, whose
 * figure holds for the instant the reader had nothing to take), and the
 * records lost are counted by whoever drops or skips them. */
typedef struct {
    uint64_t created;         /* every record given to tg_queue_push that came
                               * out of it one way or the other: pushed + lost */
    uint64_t pushed;
    uint64_t dropped_full;
    uint64_t dropped_oversize;
    uint64_t popped;
    uint64_t skipped_stale;
    uint64_t depth;           /* records published and not yet popped */
    uint64_t used_bytes;      /* room taken, published or not */
    uint32_t capacity;        /* records of TG_QUEUE_BYTES_PER_RECORD it holds */
} tg_queue_stats_t;

/* Bytes needed for a queue with room for `records` records of
 * TG_QUEUE_BYTES_PER_RECORD (rounded up to a power of 2 of cells). */
apr_size_t tg_queue_footprint(uint32_t records);

/* Formats mem (tg_queue_footprint(records) bytes, 64-byte aligned) as an
 * empty queue and returns it. */
tg_queue_t *tg_queue_create(void *mem, uint32_t records);

/* Room claimed in the queue for one record, not yet visible to the reader. */
typedef struct {
    unsigned char *bytes;     /* `length` bytes to write the record into */
    uint64_t position;
    uint32_t length;
} tg_queue_room_t;

/* Never blocks.  Claims room for a record of len bytes (1 to
 * TG_QUEUE_SLOT_BYTES).  APR_EAGAIN when the queue is full, APR_ENOSPC when
 * len is out of range (both counted).  The caller writes room->bytes, then
 * publishes the room once, promptly: until then the reader waits on it, and
 * room never published (its writer died) is skipped as stale after
 * TG_QUEUE_STALE_USEC, counted lost. */
apr_status_t tg_queue_claim(tg_queue_t *queue, apr_size_t len, tg_queue_room_t *room);

/* Makes the record written into room visible to the reader.  A writer held
 * up so long that the reader gave its room up as stale is not told: the
 * record is lost, counted by the reader. */
void tg_queue_publish(tg_queue_t *queue, const tg_queue_room_t *room);

/* The writer's call: tg_queue_claim, a copy of len bytes of record,
 * tg_queue_publish.  The two apart let a test stop a writer between them,
 * where a crash or a freeze of an httpd child may. */
apr_status_t tg_queue_push(tg_queue_t *queue, const void *record, apr_size_t len);

/* Never blocks.  Copies the oldest record into buf (at least
 * TG_QUEUE_SLOT_BYTES) and sets *len.  APR_EAGAIN when there is none ready. */
apr_status_t tg_queue_pop(tg_queue_t *queue, void *buf, apr_size_t *len);

/* Costs a walk over the records queued (depth), which the shipper and
 * mod_status pay, not the writers. */
void tg_queue_stats(const tg_queue_t *queue, tg_queue_stats_t *stats);

/* Records the queue lost before any reader saw them: dropped (full or too
 * large), or skipped as a dead writer's. */
uint64_t tg_queue_lost(const tg_queue_stats_t *stats);

#endif
