#include "tg_queue.h"

#include <stdatomic.h>
#include <stdalign.h>
#include <string.h>

#define CACHE_LINE 64

/* A slot's sequence number says whose turn it is (Vyukov):
 *   seq == pos            free for the writer of position pos, or claimed by it
 *   seq == pos + 1        published, ready for the reader of position pos
 *   seq == pos + capacity released by the reader, free for the next lap */
typedef struct {
    _Atomic uint64_t seq;
    uint32_t len;
    alignas(16) unsigned char data[TG_QUEUE_SLOT_BYTES];
} slot_t;

struct tg_queue_t {
    uint32_t capacity;
    uint32_t mask;
    /* Writers and the reader touch different lines. */
    alignas(CACHE_LINE) _Atomic uint64_t tail;
    alignas(CACHE_LINE) _Atomic uint64_t head;
    _Atomic uint64_t stuck_position; /* +1, so that 0 means none */
    _Atomic int64_t stuck_since;
    alignas(CACHE_LINE) _Atomic uint64_t pushed;
    _Atomic uint64_t dropped_full;
    _Atomic uint64_t dropped_oversize;
    _Atomic uint64_t abandoned;
    _Atomic uint64_t popped;
    _Atomic uint64_t skipped_stale;
    alignas(CACHE_LINE) slot_t slots[];
};

static uint32_t round_up_pow2(uint32_t n)
{
    uint32_t p = 1;
    while (p < n && p < (1u << 31))
        p <<= 1;
    return p;
}

apr_size_t tg_queue_footprint(uint32_t slots)
{
    return sizeof(tg_queue_t) + (apr_size_t)round_up_pow2(slots) * sizeof(slot_t);
}

tg_queue_t *tg_queue_create(void *mem, uint32_t slots)
{
    tg_queue_t *queue = mem;
    uint32_t i;
    memset(queue, 0, sizeof(*queue));
    queue->capacity = round_up_pow2(slots);
    queue->mask = queue->capacity - 1;
    for (i = 0; i < queue->capacity; i++) {
        atomic_init(&queue->slots[i].seq, i);
        queue->slots[i].len = 0;
    }
    return queue;
}

static void count(_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

apr_status_t tg_queue_reserve(tg_queue_t *queue, tg_queue_reservation_t *reservation)
{
    uint64_t pos = atomic_load_explicit(&queue->tail, memory_order_relaxed);
    slot_t *slot;
    for (;;) {
        int64_t lag;
        slot = &queue->slots[pos & queue->mask];
        lag = (int64_t)(atomic_load_explicit(&slot->seq, memory_order_acquire) - pos);
        if (lag == 0) {
            if (atomic_compare_exchange_weak_explicit(&queue->tail, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        }
        else if (lag < 0) {
            /* The slot still holds last lap's record: the queue is full. */
            count(&queue->dropped_full);
            return APR_EAGAIN;
        }
        else {
            pos = atomic_load_explicit(&queue->tail, memory_order_relaxed);
        }
    }
    reservation->queue = queue;
    reservation->position = pos;
    reservation->data = slot->data;
    return APR_SUCCESS;
}

apr_status_t tg_queue_commit(tg_queue_reservation_t *reservation, apr_size_t len)
{
    tg_queue_t *queue = reservation->queue;
    uint64_t pos = reservation->position;
    slot_t *slot = &queue->slots[pos & queue->mask];
    uint64_t expected = pos;
    slot->len = (uint32_t)(len <= TG_QUEUE_SLOT_BYTES ? len : 0);
    /* A compare-and-swap, not a store: the reader may have given up on this
     * slot (tg_queue_pop) and exactly one of us may own its fate. */
    if (!atomic_compare_exchange_strong_explicit(&slot->seq, &expected, pos + 1,
                                                 memory_order_release, memory_order_relaxed))
        return APR_TIMEUP;
    count(slot->len ? &queue->pushed : &queue->abandoned);
    return APR_SUCCESS;
}

apr_status_t tg_queue_push(tg_queue_t *queue, const void *record, apr_size_t len)
{
    tg_queue_reservation_t reservation;
    apr_status_t rv;
    if (len == 0 || len > TG_QUEUE_SLOT_BYTES) {
        count(&queue->dropped_oversize);
        return APR_ENOSPC;
    }
    rv = tg_queue_reserve(queue, &reservation);
    if (rv != APR_SUCCESS)
        return rv;
    memcpy(reservation.data, record, len);
    return tg_queue_commit(&reservation, len);
}

/* The slot at pos is claimed but unpublished.  Says whether it has been so
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

apr_status_t tg_queue_pop(tg_queue_t *queue, void *buf, apr_size_t *len)
{
    uint64_t pos = atomic_load_explicit(&queue->head, memory_order_relaxed);
    for (;;) {
        slot_t *slot = &queue->slots[pos & queue->mask];
        uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        int64_t lag = (int64_t)(seq - (pos + 1));
        if (lag == 0) {
            if (!atomic_compare_exchange_weak_explicit(&queue->head, &pos, pos + 1,
                                                       memory_order_relaxed, memory_order_relaxed))
                continue;
        }
        else if (lag > 0) {
            /* Another reader (an old shipper still draining) took it. */
            pos = atomic_load_explicit(&queue->head, memory_order_relaxed);
            continue;
        }
        else {
            uint64_t expected = pos;
            if (atomic_load_explicit(&queue->tail, memory_order_acquire) == pos
                || !writer_is_stale(queue, pos))
                return APR_EAGAIN;
            if (!atomic_compare_exchange_strong(&queue->head, &pos, pos + 1))
                continue;
            if (atomic_compare_exchange_strong(&slot->seq, &expected, pos + queue->capacity)) {
                count(&queue->skipped_stale);
                pos++;
                continue;
            }
            /* The writer published after all, between our two looks. */
        }
        atomic_thread_fence(memory_order_acquire);
        *len = slot->len;
        if (*len)
            memcpy(buf, slot->data, *len);
        atomic_store_explicit(&slot->seq, pos + queue->capacity, memory_order_release);
        if (*len == 0) {
            pos++;
            continue; /* abandoned by its writer, already counted */
        }
        count(&queue->popped);
        return APR_SUCCESS;
    }
}

void tg_queue_stats(const tg_queue_t *queue, tg_queue_stats_t *stats)
{
    tg_queue_t *q = (tg_queue_t *)queue;
    uint64_t tail = atomic_load(&q->tail), head = atomic_load(&q->head);
    stats->pushed = atomic_load(&q->pushed);
    stats->dropped_full = atomic_load(&q->dropped_full);
    stats->dropped_oversize = atomic_load(&q->dropped_oversize);
    stats->abandoned = atomic_load(&q->abandoned);
    stats->popped = atomic_load(&q->popped);
    stats->skipped_stale = atomic_load(&q->skipped_stale);
    stats->depth = tail > head ? tail - head : 0;
    stats->capacity = q->capacity;
}
