#include "tg_segment.h"

#include <apr_strings.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_ids.h"
#include "tg_record.h"

/* address:size:cookie:descriptor, the last in decimal (-1: none). */
#define LOCATOR_FORMAT "%" SCNxPTR ":%" SCNx64 ":%" SCNx64 ":%d"

/* memfd_create and file seals: Linux (glibc 2.27, with _GNU_SOURCE, which
 * APR's flags define). */
#if defined(MFD_ALLOW_SEALING) && defined(F_ADD_SEALS)
#define HAVE_SEALED_MEMFD 1
#endif

/* What /proc/self/fd/<n> shows of the memfd a segment is in (a memfd has
 * no file: " (deleted)"), and what tg_segment_find_inherited looks for. */
#define MEMFD_NAME "tomograph"
#define MEMFD_LINK "/memfd:" MEMFD_NAME

/* What the descriptor of a segment is sealed against, any program httpd
 * execs holding it: a file shrunk under its mappings makes every process
 * that touches the lost pages fault (SIGBUS); and no seal may be added
 * later (F_SEAL_FUTURE_WRITE would keep the next programs from mapping it
 * for writing). */
#define SEGMENT_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static apr_size_t segment_bytes(uint32_t records)
{
    return sizeof(tg_segment_t) + tg_queue_footprint(records);
}

apr_size_t tg_segment_footprint(uint32_t records)
{
    return alignof(tg_segment_t) + segment_bytes(records);
}

tg_segment_t *tg_segment_create(void *memory, uint32_t records)
{
    uintptr_t base = (uintptr_t)memory;
    tg_segment_t *segment = (tg_segment_t *)((base + alignof(tg_segment_t) - 1)
                                             & ~(uintptr_t)(alignof(tg_segment_t) - 1));
    memset(segment, 0, sizeof(*segment));
    segment->layout = TG_SEGMENT_LAYOUT;
    segment->queue_records = records;
    segment->size = segment_bytes(records);
    tg_queue_create(segment->queue, records);
    /* Last: a reader that finds the cookie finds the rest made. */
    segment->cookie = tg_random_span_id();
    return segment;
}

apr_status_t tg_segment_share(uint32_t records, tg_segment_t **segment_out, int *fd_out)
{
#ifdef HAVE_SEALED_MEMFD
    apr_size_t size = tg_segment_footprint(records);
    apr_status_t rv = APR_SUCCESS;
    void *memory;
    /* Close-on-exec until it is where it belongs: in a process with other
     * threads, a program one of them runs meanwhile does not get it. */
    int made = memfd_create(MEMFD_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int fd;
    if (made < 0)
        return APR_FROM_OS_ERROR(errno);
    if (ftruncate(made, (off_t)size) != 0 || fcntl(made, F_ADD_SEALS, SEGMENT_SEALS) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        close(made);
        return rv;
    }
    /* F_DUPFD's copy is inherited across exec (FD_CLOEXEC clear). */
    fd = fcntl(made, F_DUPFD, TG_SEGMENT_FD_FLOOR);
    if (fd < 0)
        rv = APR_FROM_OS_ERROR(errno);
    close(made);
    if (rv != APR_SUCCESS)
        return rv;
    memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memory == MAP_FAILED) {
        rv = APR_FROM_OS_ERROR(errno);
        close(fd);
        return rv;
    }
    /* Page-aligned: the segment starts at the start of the file, where a
     * program that maps the descriptor looks for it. */
    *segment_out = tg_segment_create(memory, records);
    *fd_out = fd;
    return APR_SUCCESS;
#else
    (void)records;
    (void)segment_out;
    (void)fd_out;
    return APR_ENOTIMPL;
#endif
}

void tg_segment_unshare(tg_segment_t *segment, int fd)
{
    munmap(segment, tg_segment_footprint(segment->queue_records));
    close(fd);
}

const char *tg_segment_locator(const tg_segment_t *segment, int fd, apr_pool_t *pool)
{
    return apr_psprintf(pool, "%" PRIxPTR ":%" PRIx64 ":%" PRIx64 ":%d", (uintptr_t)segment,
                        segment->size, segment->cookie, fd < 0 ? -1 : fd);
}

/* Whether [start, start + size) lies in one shared, writable mapping of
 * this process: a locator inherited by a program that did not inherit the
 * mapping names memory that is not there, or is something else's. */
static int is_shared_mapping(uintptr_t start, uint64_t size)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    if (!maps)
        return 0;
    while (!found && fgets(line, sizeof(line), maps)) {
        uintptr_t low, high;
        char perms[5];
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &low, &high, perms) == 3)
            found = low <= start && start + size <= high && perms[0] == 'r' && perms[1] == 'w'
                    && perms[3] == 's';
    }
    fclose(maps);
    return found;
}

static int is_segment(const tg_segment_t *segment, uint64_t size, uint64_t cookie)
{
    return segment->cookie == cookie && segment->layout == TG_SEGMENT_LAYOUT
           && segment->size == size;
}

/* The segment at the start of the file fd is open on, mapped anew; the
 * mapping is kept (the process's spans go there until it exits).  The
 * checks before mapping keep us from mapping what a reused descriptor is
 * now (a socket, a pipe, a log file) or memory that its holder may shrink
 * under us. */
static apr_status_t map_descriptor(int fd, uint64_t size, uint64_t cookie,
                                   tg_segment_t **segment_out)
{
#ifdef HAVE_SEALED_MEMFD
    struct stat st;
    int flags, seals;
    void *memory;
    if (fd < 0 || fstat(fd, &st) != 0)
        return APR_ENOENT;
    flags = fcntl(fd, F_GETFL);
    seals = fcntl(fd, F_GET_SEALS);
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size < size
        || size > SIZE_MAX || flags < 0 || (flags & O_ACCMODE) != O_RDWR || seals < 0
        || (seals & (F_SEAL_SHRINK | F_SEAL_WRITE)) != F_SEAL_SHRINK)
        return APR_EMISMATCH;
    memory = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memory == MAP_FAILED)
        return APR_EMISMATCH;
    if (!is_segment(memory, size, cookie)) {
        munmap(memory, (size_t)size);
        return APR_EMISMATCH;
    }
    *segment_out = memory;
    return APR_SUCCESS;
#else
    (void)size;
    (void)cookie;
    (void)segment_out;
    return fd < 0 ? APR_ENOENT : APR_EMISMATCH;
#endif
}

/* Whether fd is open on a memfd that tg_segment_share made. */
static int is_segment_memfd(long fd)
{
    char path[64], target[64];
    ssize_t length;
    snprintf(path, sizeof(path), "/proc/self/fd/%ld", fd);
    length = readlink(path, target, sizeof(target) - 1);
    if (length < 0)
        return 0;
    target[length] = '\0';
    return strcmp(target, MEMFD_LINK " (deleted)") == 0 || strcmp(target, MEMFD_LINK) == 0;
}

apr_status_t tg_segment_find_inherited(tg_segment_t **segment_out)
{
#ifdef HAVE_SEALED_MEMFD
    /* The fields map_descriptor checks against, read from the file: with no
     * locator, the segment's own header is all there is to go by. */
    unsigned char head[offsetof(tg_segment_t, size) + sizeof(uint64_t)];
    DIR *fds = opendir("/proc/self/fd");
    struct dirent *entry;
    apr_status_t rv = APR_ENOENT;
    if (!fds)
        return APR_ENOENT;
    while (rv != APR_SUCCESS && (entry = readdir(fds)) != NULL) {
        uint64_t cookie, size;
        char *end;
        long fd = strtol(entry->d_name, &end, 10);
        /* tg_segment_share never leaves one below the floor. */
        if (end == entry->d_name || *end || fd < TG_SEGMENT_FD_FLOOR || fd > INT_MAX
            || fd == dirfd(fds) || !is_segment_memfd(fd)
            || pread((int)fd, head, sizeof(head), 0) != (ssize_t)sizeof(head))
            continue;
        memcpy(&cookie, head + offsetof(tg_segment_t, cookie), sizeof(cookie));
        memcpy(&size, head + offsetof(tg_segment_t, size), sizeof(size));
        if (cookie && size >= sizeof(tg_segment_t))
            rv = map_descriptor((int)fd, size, cookie, segment_out);
    }
    closedir(fds);
    return rv == APR_SUCCESS ? APR_SUCCESS : APR_ENOENT;
#else
    (void)segment_out;
    return APR_ENOTIMPL;
#endif
}

apr_status_t tg_segment_attach(const char *locator, tg_segment_t **segment_out)
{
    uintptr_t address;
    uint64_t size, cookie;
    int fd, end = 0;
    apr_status_t mapped = APR_ENOENT, described;
    if (!locator
        || sscanf(locator, LOCATOR_FORMAT "%n", &address, &size, &cookie, &fd, &end) != 4
        || locator[end] || !address || size < sizeof(tg_segment_t)
        || address % alignof(tg_segment_t) || fd < -1)
        return APR_EINVAL;
    /* Forked: the mapping is here, at the same address. */
    if (is_shared_mapping(address, size)) {
        if (is_segment((const tg_segment_t *)address, size, cookie)) {
            *segment_out = (tg_segment_t *)address;
            return APR_SUCCESS;
        }
        /* Something else is mapped there (a program exec'd): the
         * descriptor may still hold the segment. */
        mapped = APR_EMISMATCH;
    }
    described = map_descriptor(fd, size, cookie, segment_out);
    return described == APR_ENOENT ? mapped : described;
}

apr_status_t tg_segment_enqueue(tg_segment_t *segment, const tg_span_t *span)
{
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t length = tg_record_encode(span, record, sizeof(record));
    return tg_queue_push(tg_segment_queue(segment), record, length);
}
