/* The shared segment of an httpd instance: the counters every process
 * writes, the shipper's, and the span queue, in one shared mapping that
 * httpd's parent makes once and every process it forks inherits (its
 * children, mod_wsgi's daemons, mod_cgid's daemon, the shipper).
 *
 * A process that did not make it finds it through its locator, a string
 * the parent puts in its environment (TG_SEGMENT_ENV) before it forks, and
 * that the module puts in a CGI's: the address, the size, a random cookie
 * and the number of a file descriptor that holds the segment's memory.
 *   - A process httpd forked has the mapping at that address: it uses it
 *     (no system call but reading /proc/self/maps once).
 *   - A program httpd or its children exec (a CGI that mod_cgi or mod_cgid
 *     runs, anything such a program runs in turn) has lost the mapping but
 *     inherited the descriptor: tg_segment_share makes the memory a memfd,
 *     sealed against shrinking and growing, its descriptor left open across
 *     exec at TG_SEGMENT_FD_FLOOR or above, and the program maps it there.
 * The environment outlives both (an app may close the descriptor, or run a
 * program with a fresh set: Python's subprocess does), and a descriptor's
 * number may be reused for anything, so tg_segment_attach believes a
 * locator only when the address is a shared mapping of this process, or
 * the descriptor a sealed file open for writing, large enough, and when the
 * memory there has the locator's cookie, layout and size.  A program whose
 * environment lost the locator (suexec cleans a CGI's) may still find the
 * descriptor among its own (tg_segment_find_inherited).
 *
 * What inheriting the descriptor opens up: every program httpd execs holds
 * it, whichever user it runs as (a CGI under suexec, a piped logger, a
 * RewriteMap program), and may read the spans queued (paths, notes) and
 * write records, as any process httpd forks (a mod_wsgi daemon running as
 * another user) already may.  It cannot shrink the memory (the seal) and
 * so fault httpd's processes; nothing outside httpd's process tree gets
 * the memory but through /proc/<pid>/fd, that is with the right to trace
 * one of httpd's processes.  A program that must not have it closes it.
 *
 * What a span costs there: tg_segment_enqueue encodes it (tg_record) and
 * pushes it, never waiting; a full queue drops it and counts it. */
#ifndef TG_SEGMENT_H
#define TG_SEGMENT_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tg_queue.h"
#include "tg_sampling.h"
#include "tg_shipper.h"
#include "tg_span.h"

#define TG_SEGMENT_ENV "TOMOGRAPH_SEGMENT"

/* Names the layout of tg_segment_t and of the queue's cells, and the form
 * of the locator: a process built with another (an old module after an
 * upgrade, an app's library of another version) neither reads nor writes
 * the segment.  6: the locator names the descriptor of a memfd; 7: no
 * spans_created (pushed + lost), the queue counts no push. */
#define TG_SEGMENT_LAYOUT 7

/* The lowest descriptor tg_segment_share leaves the segment at: above those
 * a shell script names itself (exec 3>file would close it), and above the
 * few that httpd and a CGI have open on their own. */
#define TG_SEGMENT_FD_FLOOR 64

typedef struct {
    uint64_t cookie; /* random; the locator names it */
    uint32_t layout; /* TG_SEGMENT_LAYOUT */
    uint32_t queue_records;
    uint64_t size;   /* of the whole mapping the locator names */
    /* The spans created are the queue's records (tg_queue_stats: created),
     * not a count of their own: one locked add fewer at every span. */
    alignas(64) tg_rate_limit_t sample_limit; /* TomographSampleLimit */
    /* The generation's shipper as the parent last saw it, for mod_status. */
    _Atomic int64_t shipper_pid;
    _Atomic int shipper_running;
    alignas(64) tg_shipper_counters_t shipper;
    alignas(64) unsigned char queue[];
} tg_segment_t;

/* Bytes of memory a segment with a queue of `records` needs, room to align
 * it included. */
apr_size_t tg_segment_footprint(uint32_t records);

/* Formats memory (tg_segment_footprint(records) bytes) as an empty segment
 * and returns it, aligned within memory. */
tg_segment_t *tg_segment_create(void *memory, uint32_t records);

static inline tg_queue_t *tg_segment_queue(tg_segment_t *segment)
{
    return (tg_queue_t *)(void *)segment->queue;
}

/* An empty segment of `records` in memory that a program httpd execs can
 * map again: a memfd, sealed at its size, mapped shared here, its
 * descriptor (*fd) at TG_SEGMENT_FD_FLOOR or above and inherited across
 * exec.  APR_ENOTIMPL where there are no memfds (not Linux), or the
 * system's error (ENOSYS from an old kernel or a sandbox, EMFILE...).
 * Nothing else is left open or mapped on error. */
apr_status_t tg_segment_share(uint32_t records, tg_segment_t **segment, int *fd);

/* Unmaps and closes what tg_segment_share made (the module keeps its
 * segment for the life of the process: the kernel frees it with the last
 * process that holds it). */
void tg_segment_unshare(tg_segment_t *segment, int fd);

/* The locator of segment, made in pool, for TG_SEGMENT_ENV; fd is the
 * descriptor tg_segment_share gave, -1 for memory that only forked
 * processes share (an anonymous mapping). */
const char *tg_segment_locator(const tg_segment_t *segment, int fd, apr_pool_t *pool);

/* The segment a locator names, in this process: the mapping at its address
 * when this process has it (it was forked), else the locator's descriptor
 * mapped anew (it was exec'd), kept mapped for the life of the process.
 * APR_EINVAL when the locator does not parse; APR_EMISMATCH when the
 * mapping or the descriptor is there but does not hold that segment
 * (another cookie or layout, a descriptor reused for something else);
 * APR_ENOENT when neither is there. */
apr_status_t tg_segment_attach(const char *locator, tg_segment_t **segment);

/* With no locator that works: the segment held by a descriptor this
 * process inherited, found among its descriptors by the name of the memfd
 * and checked as tg_segment_attach checks one, against the segment's own
 * header.  For a program whose environment was cleaned on its way from
 * httpd (suexec keeps only the CGI variables), which keeps the
 * descriptors.  APR_ENOENT when there is none; APR_ENOTIMPL where there
 * are no memfds. */
apr_status_t tg_segment_find_inherited(tg_segment_t **segment);

/* Encodes a finished span and queues it; never blocks.  APR_SUCCESS, or the
 * queue's error (full, too large: counted dropped).  Either way the span
 * counts created (tg_queue_stats), once its push is over: a writer killed
 * before costs that span, uncounted. */
apr_status_t tg_segment_enqueue(tg_segment_t *segment, const tg_span_t *span);

#endif
