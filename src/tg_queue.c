#include "tg_queue.h"

#include <stdatomic.h>
#include <stdalign.h>
#include <string.h>

#define CACHE_LINE 64
#define CELL_BYTES 64
#define MAX_CELLS (TG_QUEUE_SLOT_BYTES / CELL_BYTES)
#define CELLS_PER_RECORD (TG_QUEUE_BYTES_PER_RECORD / CELL_BYTES)

/* A record is a run of cells [position, end).  The sequence number of a
 * cell at absolute position p says whose turn it is (Vyukov):
 *   seq == p          free for a writer in this lap, or claimed by one
 *   seq == p + 1      first cell of a published record, ready for the reader
 *   seq == p + cells  released by the reader, free in the next lap
 * Only the first cell of a record is ever published; the reader releases
 * every cell of it, in order, so a writer that finds the last cell of the run
 * it wants free knows the earlier ones are too.
 *
 * `end` is written by the writer right after it claims its run, so that the
 * reader knows how far a record reaches even when its writer died before
 * publishing it.  It is trusted only when it is in range for that position
 * (position < end <= position + MAX_CELLS): a value left from an earlier lap
 * never is. */
typedef struct {
    _Atomic uint64_t seq;
    _Atomic uint64_t end;
    /* bytes; 0 for padding at the end of the ring.  Atomic (relaxed): the
     * count of records published (tg_queue_stats) reads it while a writer
     * of the next lap may be writing it, and throws such a read away. */
    _Atomic uint32_t len;
} cell_t;

struct tg_queue_t {
    uint64_t cells;
    uint64_t mask;
    /* Writers and the reader touch different lines, counters included: a
     * line that both wrote would move between their cores at every record. */
    alignas(CACHE_LINE) _Atomic uint64_t tail;
    alignas(CACHE_LINE) _Atomic uint64_t head;
    _Atomic uint64_t stuck_position; /* +1, so that 0 means none */
    _Atomic int64_t stuck_since;
    _Atomic uint64_t popped;
    _Atomic uint64_t skipped_stale;
    /* Counted by the writers that drop, which the queue's positions cannot
     * tell; the records pushed are not counted at all (a locked add at each
     * push, a fifth of what it costs): tg_queue_stats counts those it holds
     * published. */
    alignas(CACHE_LINE) _Atomic uint64_t dropped_full;
    _Atomic uint64_t dropped_oversize;
    alignas(CACHE_LINE) cell_t cell[];
};

static uint64_t ring_cells(uint32_t records)
{
    uint64_t wanted = (uint64_t)records * CELLS_PER_RECORD, cells = 2 * MAX_CELLS;
    while (cells < wanted)
        cells <<= 1;
    return cells;
}

static apr_size_t cell_table_bytes(uint64_t cells)
{
    apr_size_t bytes = sizeof(tg_queue_t) + cells * sizeof(cell_t);
    return (bytes + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
}

apr_size_t tg_queue_footprint(uint32_t records)
{
    uint64_t cells = ring_cells(records);
    return cell_table_bytes(cells) + cells * CELL_BYTES;
}

tg_queue_t *tg_queue_create(void *mem, uint32_t records)
{
    tg_queue_t *queue = mem;
    uint64_t i, cells = ring_cells(records);
    memset(queue, 0, sizeof(*queue));
    queue->cells = cells;
    queue->mask = cells - 1;
    for (i = 0; i < cells; i++) {
        atomic_init(&queue->cell[i].seq, i);
        atomic_init(&queue->cell[i].end, 0);
        atomic_init(&queue->cell[i].len, 0);
    }
    return queue;
}

static void count(_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static cell_t *cell_at(tg_queue_t *queue, uint64_t position)
{
    return &queue->cell[position & queue->mask];
}

/* Computed, not stored: each process may map the segment elsewhere. */
static unsigned char *bytes_at(tg_queue_t *queue, uint64_t position)
{
    return (unsigned char *)queue + cell_table_bytes(queue->cells)
           + (position & queue->mask) * CELL_BYTES;
}

/* How the cell at position compares with this lap: 0 free, < 0 still
 * holding last lap's record (full), > 0 taken by another writer. */
static int64_t lap_of(tg_queue_t *queue, uint64_t position)
{
    return (int64_t)(atomic_load_explicit(&cell_at(queue, position)->seq, memory_order_acquire)
                     - position);
}

/* The cell at `at` still holds last lap's record.  When the reader has
 * already moved past that record (it copies a record before it moves on),
 * only its release is missing: a reader killed in between would otherwise
 * leave the ring wedged there for good.  Frees the cell and says so. */
static int free_if_taken(tg_queue_t *queue, uint64_t at)
{
    cell_t *cell = cell_at(queue, at);
    uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
    if (atomic_load_explicit(&queue->head, memory_order_acquire) <= at - queue->cells)
        return 0;
    /* A compare-and-swap: the reader may be releasing it at the same time. */
    atomic_compare_exchange_strong(&cell->seq, &seq, at);
    return 1;
}

/* Claims [pos, pos + cells) if the tail is still pos and the run is free.
 * Returns 1 when claimed, 0 when the tail moved (*pos reloaded), -1 full.
 * Every cell is looked at: while an old shipper and a new one overlap, two
 * readers may release runs out of order. */
static int claim(tg_queue_t *queue, uint64_t *pos, uint64_t cells)
{
    uint64_t i;
    for (i = 0; i < cells; i++) {
        int64_t lap = lap_of(queue, *pos + i);
        if (lap < 0 && !free_if_taken(queue, *pos + i))
            return -1;
        if (lap > 0) {
            *pos = atomic_load_explicit(&queue->tail, memory_order_relaxed);
            return 0;
        }
    }
    if (!atomic_compare_exchange_weak_explicit(&queue->tail, pos, *pos + cells,
                                               memory_order_relaxed, memory_order_relaxed))
        return 0;
    atomic_store_explicit(&cell_at(queue, *pos)->end, *pos + cells, memory_order_release);
    return 1;
}

/* Publishes the run starting at pos, with a store: no locked instruction
 * (a compare-and-swap here cost ~5 ns a span).  Only a writer held up for
 * longer than TG_QUEUE_STALE_USEC, whose run the reader gave up on and
 * freed meanwhile, publishes out of turn.  Its store then sets a sequence
 * number back, in a cell of a later lap, which costs one record at most,
 * counted lost, and never wedges the ring: a writer of a later lap finds
 * the cell held by a lap the reader has passed and frees it
 * (free_if_taken), the reader releases any cell of a record it takes, and
 * a record whose first cell went back is skipped as a dead writer's.  Such
 * a writer's bytes may land in reused cells too, which the record's own
 * checksum catches: either way it costs its own record and one other at
 * most, as it did when this was a compare-and-swap. */
static void publish(tg_queue_t *queue, uint64_t pos, uint32_t len)
{
    cell_t *first = cell_at(queue, pos);
    atomic_store_explicit(&first->len, len, memory_order_relaxed);
    atomic_store_explicit(&first->seq, pos + 1, memory_order_release);
}

/* Claims a run of `cells` and sets *pos to it.  A record never wraps: when
 * the run does not fit before the end of the ring, what is left there is
 * claimed and published as padding, and the run starts over at the
 * beginning.  APR_EAGAIN when the queue is full. */
static apr_status_t claim_record(tg_queue_t *queue, uint64_t cells, uint64_t *pos)
{
    *pos = atomic_load_explicit(&queue->tail, memory_order_relaxed);
    for (;;) {
        uint64_t room_to_end = queue->cells - (*pos & queue->mask);
        uint64_t want = cells <= room_to_end ? cells : room_to_end;
        int claimed = claim(queue, pos, want);
        if (claimed < 0)
            return APR_EAGAIN;
        if (!claimed)
            continue;
        if (want == cells)
            return APR_SUCCESS;
        publish(queue, *pos, 0);
        *pos += want;
    }
}

/* tg_queue_claim, inlined in tg_queue_push: a writer's span pays no call. */
static inline apr_status_t claim_room(tg_queue_t *queue, apr_size_t len, tg_queue_room_t *room)
{
    apr_status_t rv;
    if (len == 0 || len > TG_QUEUE_SLOT_BYTES) {
        count(&queue->dropped_oversize);
        return APR_ENOSPC;
    }
    rv = claim_record(queue, (len + CELL_BYTES - 1) / CELL_BYTES, &room->position);
    if (rv == APR_EAGAIN)
        count(&queue->dropped_full);
    if (rv != APR_SUCCESS)
        return rv;
    room->bytes = bytes_at(queue, room->position);
    room->length = (uint32_t)len;
    return APR_SUCCESS;
}

apr_status_t tg_queue_claim(tg_queue_t *queue, apr_size_t len, tg_queue_room_t *room)
{
    return claim_room(queue, len, room);
}

/* Publishing is all there is to count: the record is pushed once it is
 * published (tg_queue_stats). */
void tg_queue_publish(tg_queue_t *queue, const tg_queue_room_t *room)
{
    publish(queue, room->position, room->length);
}

apr_status_t tg_queue_push(tg_queue_t *queue, const void *record, apr_size_t len)
{
    tg_queue_room_t room;
    apr_status_t rv = claim_room(queue, len, &room);
    if (rv != APR_SUCCESS)
        return rv;
    memcpy(room.bytes, record, len);
    publish(queue, room.position, room.length);
    return APR_SUCCESS;
}

static int end_is_valid(uint64_t position, uint64_t end)
{
    return end > position && end - position <= MAX_CELLS;
}

/* Where the run claimed at pos ends: its own `end`, or, when its writer died
 * before writing it, the next run whose writer did (else the tail). */
static uint64_t run_end(tg_queue_t *queue, uint64_t pos, uint64_t tail)
{
    uint64_t end = atomic_load_explicit(&cell_at(queue, pos)->end, memory_order_acquire), next;
    if (end_is_valid(pos, end))
        return end;
    for (next = pos + 1; next < tail && next < pos + MAX_CELLS; next++)
        if (end_is_valid(next, atomic_load_explicit(&cell_at(queue, next)->end,
                                                    memory_order_acquire)))
            return next;
    return next; /* a record is never longer */
}

/* The run at pos is claimed but unpublished.  Says whether it has been so
 * for long enough that its writer must be dead. */
static int writer_is_stale(tg_queue_t *queue, uint64_t pos)
{
    apr_time_t now = apr_time_now();
    if (atomic_load(&queue->stuck_position) != pos + 1) {
        atomic_store(&queue->stuck_since, now);
        atomic_store(&queue->stuck_position, pos + 1);
        return 0;
    }
    return now - atomic_load(&queue->stuck_since) >= TG_QUEUE_STALE_USEC;
}

/* Frees the cells of a record taken: each from what it held to its place
 * in the next lap, unless a writer that found the record taken already did
 * (free_if_taken). */
static void release(tg_queue_t *queue, uint64_t pos, uint64_t end)
{
    uint64_t at;
    for (at = pos; at < end; at++) {
        cell_t *cell = cell_at(queue, at);
        uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_relaxed);
        if (seq < at + queue->cells)
            atomic_compare_exchange_strong(&cell->seq, &seq, at + queue->cells);
    }
}

static apr_size_t record_length(cell_t *first, uint64_t pos, uint64_t end)
{
    uint32_t len = atomic_load_explicit(&first->len, memory_order_relaxed);
    return len <= (end - pos) * CELL_BYTES ? len : 0;
}

apr_status_t tg_queue_pop(tg_queue_t *queue, void *buf, apr_size_t *len)
{
    uint64_t pos = atomic_load_explicit(&queue->head, memory_order_relaxed);
    for (;;) {
        cell_t *first = cell_at(queue, pos);
        int64_t lag = lap_of(queue, pos) - 1;
        uint64_t end;
        if (lag > 0) {
            /* Another reader (an old shipper still draining) took it. */
            pos = atomic_load_explicit(&queue->head, memory_order_relaxed);
            continue;
        }
        if (lag < 0) {
            uint64_t tail = atomic_load_explicit(&queue->tail, memory_order_acquire);
            uint64_t expected = pos;
            if (tail == pos || !writer_is_stale(queue, pos))
                return APR_EAGAIN;
            end = run_end(queue, pos, tail);
            if (!atomic_compare_exchange_strong(&queue->head, &pos, end))
                continue;
            if (atomic_compare_exchange_strong(&first->seq, &expected, pos + queue->cells)
                || expected != pos + 1) {
                release(queue, pos + 1, end);
                count(&queue->skipped_stale);
                pos = end;
                continue;
            }
            /* The writer published after all, between our two looks. */
            *len = record_length(first, pos, end);
            if (*len)
                memcpy(buf, bytes_at(queue, pos), *len);
        }
        else {
            end = atomic_load_explicit(&first->end, memory_order_acquire);
            if (!end_is_valid(pos, end))
                end = pos + 1; /* cannot happen but for a corrupted segment */
            /* Copied before the head moves on: once it has, a writer may free
             * these cells (free_if_taken).  Another reader may copy it too;
             * only the one that moves the head keeps its copy. */
            *len = record_length(first, pos, end);
            if (*len)
                memcpy(buf, bytes_at(queue, pos), *len);
            if (!atomic_compare_exchange_strong_explicit(&queue->head, &pos, end,
                                                         memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
        }
        /* Counted the moment it is ours, before its cells go back: a reader
         * killed between the two leaves them taken, which the next writer
         * mends (free_if_taken), not a record gone uncounted. */
        if (*len)
            count(&queue->popped);
        release(queue, pos, end);
        if (*len == 0) {
            pos = end;
            continue; /* padding */
        }
        return APR_SUCCESS;
    }
}

/* The records published in [head, tail), padding aside, walking the runs;
 * 0 when a run it reaches was taken (or reused) meanwhile, the walk then
 * being worthless: *moved says so.  A run's seq, end and len are read
 * between two looks at its seq that must agree: seq only grows, so equal
 * looks mean none of the three changed in between. */
static uint64_t published_between(tg_queue_t *queue, uint64_t head, uint64_t tail, int *moved)
{
    uint64_t pos = head, depth = 0;
    *moved = 0;
    while ((int64_t)(tail - pos) > 0) {
        cell_t *cell = cell_at(queue, pos);
        uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
        uint64_t end = atomic_load_explicit(&cell->end, memory_order_acquire);
        uint32_t len = atomic_load_explicit(&cell->len, memory_order_acquire);
        if ((seq != pos && seq != pos + 1)
            || atomic_load_explicit(&cell->seq, memory_order_acquire) != seq) {
            *moved = 1;
            return 0;
        }
        if (seq == pos + 1) {
            depth += len != 0;
            pos = end_is_valid(pos, end) ? end : pos + 1;
        }
        else /* claimed, not yet published (or its writer dead) */
            pos = run_end(queue, pos, tail);
    }
    return depth;
}

/* Walks taken while the reader moves on are retried this many times, then
 * the last one's figure stands (a record or so off, for that instant). */
#define STATS_TRIES 16

void tg_queue_stats(const tg_queue_t *queue, tg_queue_stats_t *stats)
{
    tg_queue_t *q = (tg_queue_t *)queue;
    uint64_t tail, head, depth;
    int tries = 0, moved;
    /* popped and head before the walk and after: unchanged, the reader took
     * nothing meanwhile, and popped + depth is every record published. */
    do {
        stats->popped = atomic_load(&q->popped);
        head = atomic_load(&q->head);
        tail = atomic_load(&q->tail);
        depth = published_between(q, head, tail, &moved);
    } while ((moved || atomic_load(&q->head) != head || atomic_load(&q->popped) != stats->popped)
             && ++tries < STATS_TRIES);
    stats->depth = depth;
    stats->pushed = stats->popped + depth;
    stats->dropped_full = atomic_load(&q->dropped_full);
    stats->dropped_oversize = atomic_load(&q->dropped_oversize);
    stats->skipped_stale = atomic_load(&q->skipped_stale);
    stats->created = stats->pushed + tg_queue_lost(stats);
    stats->used_bytes = (tail > head ? tail - head : 0) * CELL_BYTES;
    stats->capacity = (uint32_t)(q->cells / CELLS_PER_RECORD);
}

uint64_t tg_queue_lost(const tg_queue_stats_t *stats)
{
    return stats->dropped_full + stats->dropped_oversize + stats->skipped_stale;
}
