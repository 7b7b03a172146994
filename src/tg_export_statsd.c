/* The statsd exporter: each batch's lines (tg_statsd) packed into UDP
 * datagrams of at most statsd_packet bytes and sent at once, from a
 * non-blocking socket: a full socket buffer loses metrics, as UDP may, and
 * never stalls the caller. */
#include <apr_portable.h>
#include <apr_strings.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "tg_buf.h"
#include "tg_exporter.h"
#include "tg_log.h"
#include "tg_statsd.h"

static const char *statsd_address(const tg_export_config_t *cfg, apr_pool_t *pool)
{
    if (!cfg->statsd_host)
        return NULL;
    return apr_psprintf(pool, "%s:%u", cfg->statsd_host, (unsigned)cfg->statsd_port);
}

typedef struct {
    const char *host; /* host:port, for the log */
    apr_socket_t *socket;
    apr_sockaddr_t *addr;
    apr_size_t packet;
    tg_export_counters_t *counters;
    tg_buf_t lines;
    apr_array_header_t *datagrams; /* datagram_t: the batch's, in lines */
    unsigned char *failed;         /* per span of the batch: 1 when a datagram failed */
    tg_warn_limit_t warn;
} statsd_exporter_t;

/* One datagram of the batch's lines: where it lies in them, and the spans
 * whose lines it holds. */
typedef struct {
    apr_size_t start;
    apr_size_t len;
    int first_span;
    int last_span;
} datagram_t;

/* Sends datagrams in order and returns how many went before the first that
 * could not (n when all did), that one's error in *rv.  On Linux, up to
 * SENDMMSG_CHUNK a system call: a batch's hundred datagrams cost two calls,
 * not a hundred. */
#define SENDMMSG_CHUNK 64

#ifdef __linux__
static int send_datagrams(statsd_exporter_t *exporter, const datagram_t *datagrams, int n,
                          apr_status_t *rv)
{
    struct mmsghdr messages[SENDMMSG_CHUNK];
    struct iovec bytes[SENDMMSG_CHUNK];
    apr_os_sock_t fd;
    int sent = 0, i, count, done;

    *rv = apr_os_sock_get(&fd, exporter->socket);
    if (*rv != APR_SUCCESS)
        return 0;
    while (sent < n) {
        count = n - sent < SENDMMSG_CHUNK ? n - sent : SENDMMSG_CHUNK;
        memset(messages, 0, sizeof(messages[0]) * (size_t)count);
        for (i = 0; i < count; i++) {
            bytes[i].iov_base = exporter->lines.data + datagrams[sent + i].start;
            bytes[i].iov_len = datagrams[sent + i].len;
            messages[i].msg_hdr.msg_name = &exporter->addr->sa;
            messages[i].msg_hdr.msg_namelen = (socklen_t)exporter->addr->salen;
            messages[i].msg_hdr.msg_iov = &bytes[i];
            messages[i].msg_hdr.msg_iovlen = 1;
        }
        do
            done = sendmmsg(fd, messages, (unsigned)count, 0);
        while (done < 0 && errno == EINTR);
        if (done < 0) {
            *rv = APR_FROM_OS_ERROR(errno);
            return sent;
        }
        /* Fewer than asked: the next one's error comes with the next call. */
        sent += done;
    }
    return sent;
}
#else
static int send_datagrams(statsd_exporter_t *exporter, const datagram_t *datagrams, int n,
                          apr_status_t *rv)
{
    int sent;
    for (sent = 0; sent < n; sent++) {
        apr_size_t len = datagrams[sent].len;
        *rv = apr_socket_sendto(exporter->socket, exporter->addr, 0,
                                exporter->lines.data + datagrams[sent].start, &len);
        if (*rv != APR_SUCCESS)
            break;
    }
    return sent;
}
#endif

/* Sends them all: a span whose lines are in a datagram that fails counts
 * as failed. */
static void send_all_datagrams(statsd_exporter_t *exporter)
{
    const datagram_t *all = (const datagram_t *)exporter->datagrams->elts;
    int at = 0, n = exporter->datagrams->nelts;
    apr_status_t rv;
    char note[TG_WARN_NOTE_BYTES];
    while (at < n) {
        at += send_datagrams(exporter, all + at, n - at, &rv);
        if (at == n)
            break;
        memset(exporter->failed + all[at].first_span, 1,
               (size_t)(all[at].last_span + 1 - all[at].first_span));
        at++;
        if (tg_warn_limit_pass(&exporter->warn, note))
            tg_log(TG_LOG_WARNING, rv, TGLOGNO(03006) "cannot send a datagram to statsd at %s%s",
                   exporter->host, note);
    }
}

static void add_datagram(apr_array_header_t *datagrams, apr_size_t start, apr_size_t len,
                         int first_span, int last_span)
{
    datagram_t *datagram = apr_array_push(datagrams);
    datagram->start = start;
    datagram->len = len;
    datagram->first_span = first_span;
    datagram->last_span = last_span;
}

/* The batch's lines, packed into datagrams of at most `packet` bytes, all
 * written first and then sent: each span's lines are written straight after
 * those pending, and whenever they overflow, the longest run of whole lines
 * that fits makes a datagram (a line longer than a datagram goes alone
 * rather than split, which statsd could not read).  A span whose lines
 * straddle datagrams counts as failed when any of them fails. */
static void take(void *state, const tg_span_t *const *spans, int n, apr_time_t now)
{
    statsd_exporter_t *exporter = state;
    tg_buf_t *lines = &exporter->lines;
    apr_size_t packet = exporter->packet, pending = 0;
    tg_statsd_memo_t memo = {NULL, 0, {0}};
    int first_span = 0, i, failed = 0;
    memset(exporter->failed, 0, (size_t)n);
    apr_array_clear(exporter->datagrams);
    tg_buf_reset(lines);
    for (i = 0; i < n; i++) {
        apr_size_t span_start = lines->len;
        tg_statsd_append_span(lines, spans[i], &memo);
        if (lines->failed) {
            /* Out of memory: what was pending is lost with this span. */
            memset(exporter->failed + first_span, 1, (size_t)(i + 1 - first_span));
            tg_buf_rewind(lines, pending);
            first_span = i + 1;
            continue;
        }
        /* Each line ends in '\n', which the last of a datagram leaves out. */
        while (lines->len - pending > packet + 1) {
            const char *from = lines->data + pending;
            const char *newline = memrchr(from, '\n', packet + 1);
            apr_size_t cut;
            if (!newline)
                newline = memchr(from, '\n', lines->len - pending);
            cut = (apr_size_t)(newline - lines->data);
            add_datagram(exporter->datagrams, pending, cut - pending, first_span,
                         cut >= span_start ? i : i - 1);
            /* What is left is this span's lines. */
            pending = cut + 1;
            first_span = i;
        }
        if (pending == lines->len)
            first_span = i + 1;
    }
    if (lines->len > pending)
        add_datagram(exporter->datagrams, pending, lines->len - 1 - pending, first_span, n - 1);
    send_all_datagrams(exporter);
    for (i = 0; i < n; i++)
        failed += exporter->failed[i];
    tg_export_delivered(exporter->counters, n - failed, now);
    tg_export_settle(exporter->counters, &exporter->counters->failed, failed);
}

static apr_status_t close_statsd(void *state)
{
    statsd_exporter_t *exporter = state;
    tg_buf_free(&exporter->lines);
    return APR_SUCCESS;
}

static apr_status_t open_statsd(const tg_exporter_t *self, void **state,
                                const tg_export_config_t *cfg, tg_export_counters_t *counters,
                                apr_pool_t *pool)
{
    statsd_exporter_t *exporter = apr_pcalloc(pool, sizeof(*exporter));
    apr_status_t rv;
    exporter->host = statsd_address(cfg, pool);
    exporter->packet = cfg->statsd_packet;
    exporter->counters = counters;
    exporter->datagrams = apr_array_make(pool, 16, sizeof(datagram_t));
    exporter->failed = apr_palloc(pool, (apr_size_t)cfg->batch_spans);
    tg_buf_init(&exporter->lines);
    apr_pool_cleanup_register(pool, exporter, close_statsd, apr_pool_cleanup_null);
    rv = apr_sockaddr_info_get(&exporter->addr, cfg->statsd_host, APR_UNSPEC, cfg->statsd_port,
                               0, pool);
    if (rv != APR_SUCCESS) {
        tg_log(TG_LOG_ERR, rv, TGLOGNO(03000) "cannot resolve statsd host %s", cfg->statsd_host);
        return rv;
    }
    rv = apr_socket_create(&exporter->socket, exporter->addr->family, SOCK_DGRAM, APR_PROTO_UDP,
                           pool);
    if (rv == APR_SUCCESS)
        rv = apr_socket_opt_set(exporter->socket, APR_SO_NONBLOCK, 1);
    if (rv != APR_SUCCESS) {
        tg_log(TG_LOG_ERR, rv, TGLOGNO(03001) "cannot make a UDP socket for statsd %s",
               exporter->host);
        return rv;
    }
    *state = exporter;
    return APR_SUCCESS;
}

const tg_exporter_t tg_exporter_statsd = {.name = "Statsd", .target = statsd_address,
                                          .open = open_statsd, .take = take};
