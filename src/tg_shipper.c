#include "tg_shipper.h"

#include <apr_strings.h>
#include <curl/curl.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_http.h"
#include "tg_log.h"
#include "tg_record.h"
#include "tg_statsd.h"
#include "tg_zipkin.h"

/* While the queue stays empty the loop sleeps this long, doubling up to the
 * most: quick to wake after a lull, cheap when there is no traffic. */
#define IDLE_SLEEP_MIN apr_time_from_msec(1)
#define IDLE_SLEEP_MAX apr_time_from_msec(20)

/* A collector that is down fails every batch; one line a minute per kind of
 * failure says so without flooding the error log. */
#define WARN_INTERVAL apr_time_from_sec(60)

typedef enum {
    FAIL_ZIPKIN_REFUSED,
    FAIL_ZIPKIN_TIMEOUT,
    FAIL_ZIPKIN_STATUS,
    FAIL_ZIPKIN_OTHER,
    FAIL_STATSD,
    FAIL_FILE,
    FAIL_KINDS
} failure_kind_t;

typedef struct {
    apr_time_t last_logged; /* 0: never */
    unsigned silenced;      /* failures since, not logged */
} warn_limit_t;

struct tg_shipper_t {
    tg_queue_t *queue;
    tg_shipper_config_t cfg;
    tg_shipper_counters_t *counters;
    uint32_t poll_limit;      /* records per poll, so a flood cannot pin it */
    unsigned char *record;    /* TG_QUEUE_SLOT_BYTES */
    apr_pool_t *batch_pool;   /* the batch's decoded spans, cleared once shipped */
    const tg_span_t **batch;  /* cfg.batch_spans slots */
    int batch_len;
    apr_time_t batch_started; /* when its first span was taken */
    tg_buf_t out;             /* one exporter's payload */
    tg_buf_t lines;           /* one span's statsd lines */
    tg_http_t *zipkin;
    int curl_initialized;
    apr_socket_t *statsd;
    apr_sockaddr_t *statsd_addr;
    unsigned char *statsd_failed; /* per span of the batch: 1 when a datagram failed */
    warn_limit_t warn[FAIL_KINDS];
};

void tg_shipper_config_defaults(tg_shipper_config_t *cfg)
{
    cfg->zipkin_url = NULL;
    cfg->statsd_host = NULL;
    cfg->statsd_port = 8125;
    cfg->span_file = NULL;
    cfg->batch_spans = 100;
    cfg->batch_interval = apr_time_from_msec(200);
    cfg->connect_timeout_ms = 1000;
    cfg->request_timeout_ms = 5000;
    cfg->statsd_packet = 1432;
}

static apr_status_t release(void *data)
{
    tg_shipper_t *shipper = data;
    tg_http_destroy(shipper->zipkin);
    shipper->zipkin = NULL;
    if (shipper->curl_initialized)
        curl_global_cleanup();
    shipper->curl_initialized = 0;
    tg_buf_free(&shipper->out);
    tg_buf_free(&shipper->lines);
    return APR_SUCCESS;
}

/* 1 when a failure of this kind may be logged now, `note` then saying how
 * many of its kind went unlogged since the last line ("" when none). */
static int may_warn(tg_shipper_t *shipper, failure_kind_t kind, char *note, apr_size_t size)
{
    warn_limit_t *limit = &shipper->warn[kind];
    apr_time_t now = apr_time_now();
    if (limit->last_logged && now - limit->last_logged < WARN_INTERVAL) {
        limit->silenced++;
        return 0;
    }
    if (limit->silenced)
        apr_snprintf(note, size, " (and %u more like it since the last report)", limit->silenced);
    else
        note[0] = '\0';
    limit->silenced = 0;
    limit->last_logged = now;
    return 1;
}

static void count(_Atomic uint64_t *counter, uint64_t n)
{
    if (n)
        atomic_fetch_add(counter, n);
}

static apr_status_t open_statsd(tg_shipper_t *shipper, apr_pool_t *pool)
{
    const tg_shipper_config_t *cfg = &shipper->cfg;
    apr_status_t rv = apr_sockaddr_info_get(&shipper->statsd_addr, cfg->statsd_host, APR_UNSPEC,
                                            cfg->statsd_port, 0, pool);
    if (rv != APR_SUCCESS) {
        tg_log(TG_LOG_ERR, rv, TGLOGNO(03000) "cannot resolve statsd host %s", cfg->statsd_host);
        return rv;
    }
    rv = apr_socket_create(&shipper->statsd, shipper->statsd_addr->family, SOCK_DGRAM,
                           APR_PROTO_UDP, pool);
    /* A full socket buffer loses metrics, as UDP may; it must not stall us. */
    if (rv == APR_SUCCESS)
        rv = apr_socket_opt_set(shipper->statsd, APR_SO_NONBLOCK, 1);
    if (rv != APR_SUCCESS)
        tg_log(TG_LOG_ERR, rv, TGLOGNO(03001) "cannot make a UDP socket for statsd %s:%u",
               cfg->statsd_host, (unsigned)cfg->statsd_port);
    return rv;
}

static apr_status_t open_zipkin(tg_shipper_t *shipper)
{
    const tg_shipper_config_t *cfg = &shipper->cfg;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tg_log(TG_LOG_ERR, APR_EGENERAL, TGLOGNO(03002) "cannot initialize libcurl");
        return APR_EGENERAL;
    }
    shipper->curl_initialized = 1;
    shipper->zipkin = tg_http_create(cfg->zipkin_url, cfg->connect_timeout_ms,
                                     cfg->request_timeout_ms);
    if (!shipper->zipkin) {
        tg_log(TG_LOG_ERR, APR_ENOMEM, TGLOGNO(03003) "cannot make an HTTP client for Zipkin at %s",
               cfg->zipkin_url);
        return APR_ENOMEM;
    }
    return APR_SUCCESS;
}

apr_status_t tg_shipper_create(tg_shipper_t **shipper_out, tg_queue_t *queue,
                               const tg_shipper_config_t *cfg,
                               tg_shipper_counters_t *counters, apr_pool_t *pool)
{
    tg_shipper_t *shipper;
    tg_queue_stats_t stats;
    apr_status_t rv;
    if (cfg->batch_spans < 1 || cfg->statsd_packet < 1 || cfg->batch_interval < 0)
        return APR_EINVAL;
    shipper = apr_pcalloc(pool, sizeof(*shipper));
    tg_buf_init(&shipper->out);
    tg_buf_init(&shipper->lines);
    /* First, so that whatever is made below is released with the pool,
     * even when a later step fails. */
    apr_pool_cleanup_register(pool, shipper, release, apr_pool_cleanup_null);
    shipper->queue = queue;
    shipper->cfg = *cfg;
    shipper->cfg.zipkin_url = cfg->zipkin_url ? apr_pstrdup(pool, cfg->zipkin_url) : NULL;
    shipper->cfg.statsd_host = cfg->statsd_host ? apr_pstrdup(pool, cfg->statsd_host) : NULL;
    shipper->counters = counters;
    tg_queue_stats(queue, &stats);
    shipper->poll_limit = stats.capacity;
    shipper->record = apr_palloc(pool, TG_QUEUE_SLOT_BYTES);
    shipper->batch = apr_pcalloc(pool, sizeof(*shipper->batch) * (apr_size_t)cfg->batch_spans);
    shipper->statsd_failed = apr_palloc(pool, (apr_size_t)cfg->batch_spans);
    rv = apr_pool_create(&shipper->batch_pool, pool);
    if (rv == APR_SUCCESS && shipper->cfg.statsd_host)
        rv = open_statsd(shipper, pool);
    if (rv == APR_SUCCESS && shipper->cfg.zipkin_url)
        rv = open_zipkin(shipper);
    if (rv != APR_SUCCESS)
        return rv;
    *shipper_out = shipper;
    return APR_SUCCESS;
}

static failure_kind_t zipkin_failure_kind(apr_status_t rv, long status)
{
    if (rv == APR_ECONNREFUSED)
        return FAIL_ZIPKIN_REFUSED;
    if (rv == APR_TIMEUP)
        return FAIL_ZIPKIN_TIMEOUT;
    return status ? FAIL_ZIPKIN_STATUS : FAIL_ZIPKIN_OTHER;
}

static void ship_zipkin(tg_shipper_t *shipper)
{
    char error[CURL_ERROR_SIZE] = "out of memory encoding the batch";
    long status = 0;
    apr_status_t rv = APR_ENOMEM;
    char note[80];
    tg_buf_reset(&shipper->out);
    tg_zipkin_append_list(&shipper->out, shipper->batch, shipper->batch_len);
    if (!shipper->out.failed)
        rv = tg_http_post_json(shipper->zipkin, shipper->out.data, shipper->out.len, &status,
                               error);
    if (rv == APR_SUCCESS) {
        count(&shipper->counters->zipkin.sent, (uint64_t)shipper->batch_len);
        return;
    }
    count(&shipper->counters->zipkin.failed, (uint64_t)shipper->batch_len);
    if (may_warn(shipper, zipkin_failure_kind(rv, status), note, sizeof(note)))
        tg_log(TG_LOG_WARNING, rv, TGLOGNO(03004) "Zipkin export to %s failed: %s; %d spans lost%s",
               shipper->cfg.zipkin_url, error, shipper->batch_len, note);
}

static void ship_file(tg_shipper_t *shipper)
{
    apr_status_t rv = APR_ENOMEM;
    char note[80];
    int i;
    tg_buf_reset(&shipper->out);
    for (i = 0; i < shipper->batch_len; i++) {
        tg_zipkin_append_span(&shipper->out, shipper->batch[i]);
        tg_buf_putc(&shipper->out, '\n');
    }
    if (!shipper->out.failed) {
        rv = apr_file_write_full(shipper->cfg.span_file, shipper->out.data, shipper->out.len, NULL);
        if (rv == APR_SUCCESS)
            rv = apr_file_flush(shipper->cfg.span_file);
    }
    if (rv == APR_SUCCESS) {
        count(&shipper->counters->file.sent, (uint64_t)shipper->batch_len);
        return;
    }
    count(&shipper->counters->file.failed, (uint64_t)shipper->batch_len);
    if (may_warn(shipper, FAIL_FILE, note, sizeof(note)))
        tg_log(TG_LOG_WARNING, rv, TGLOGNO(03005) "cannot write %d spans to the span file%s",
               shipper->batch_len, note);
}

/* Packs a batch's statsd lines into datagrams.  A span whose lines straddle
 * datagrams counts as failed when any of them fails. */
typedef struct {
    tg_shipper_t *shipper;
    int first_span; /* the first and last spans with lines in the pending datagram */
    int last_span;
} statsd_packer_t;

static void mark_failed(statsd_packer_t *packer, int first, int last)
{
    memset(packer->shipper->statsd_failed + first, 1, (size_t)(last + 1 - first));
}

static void send_datagram(statsd_packer_t *packer)
{
    tg_shipper_t *shipper = packer->shipper;
    tg_buf_t *datagram = &shipper->out;
    apr_size_t len = datagram->len;
    apr_status_t rv = APR_ENOMEM;
    char note[80];
    if (len == 0)
        return;
    if (!datagram->failed)
        rv = apr_socket_sendto(shipper->statsd, shipper->statsd_addr, 0, datagram->data, &len);
    tg_buf_reset(datagram);
    if (rv == APR_SUCCESS)
        return;
    mark_failed(packer, packer->first_span, packer->last_span);
    if (may_warn(shipper, FAIL_STATSD, note, sizeof(note)))
        tg_log(TG_LOG_WARNING, rv, TGLOGNO(03006) "cannot send a datagram to statsd at %s:%u%s",
               shipper->cfg.statsd_host, (unsigned)shipper->cfg.statsd_port, note);
}

/* Adds one line (without its '\n') to the pending datagram, sending that
 * first when the line would not fit.  A line longer than a datagram goes
 * alone rather than split, which statsd could not read. */
static void pack_line(statsd_packer_t *packer, int span, const char *line, apr_size_t len)
{
    tg_buf_t *datagram = &packer->shipper->out;
    if (datagram->len && datagram->len + 1 + len > packer->shipper->cfg.statsd_packet)
        send_datagram(packer);
    if (datagram->len)
        tg_buf_putc(datagram, '\n');
    else
        packer->first_span = span;
    tg_buf_append(datagram, line, len);
    packer->last_span = span;
}

static void ship_statsd(tg_shipper_t *shipper)
{
    statsd_packer_t packer = {.shipper = shipper};
    tg_buf_t *lines = &shipper->lines;
    int i, failed = 0;
    memset(shipper->statsd_failed, 0, (size_t)shipper->batch_len);
    tg_buf_reset(&shipper->out);
    for (i = 0; i < shipper->batch_len; i++) {
        apr_size_t at;
        tg_buf_reset(lines);
        tg_statsd_append_span(lines, shipper->batch[i]);
        if (lines->failed) {
            mark_failed(&packer, i, i);
            continue;
        }
        for (at = 0; at < lines->len;) {
            const char *line = lines->data + at;
            const char *newline = memchr(line, '\n', lines->len - at);
            apr_size_t len = newline ? (apr_size_t)(newline - line) : lines->len - at;
            if (len)
                pack_line(&packer, i, line, len);
            at += len + 1;
        }
    }
    send_datagram(&packer);
    for (i = 0; i < shipper->batch_len; i++)
        failed += shipper->statsd_failed[i];
    count(&shipper->counters->statsd.sent, (uint64_t)(shipper->batch_len - failed));
    count(&shipper->counters->statsd.failed, (uint64_t)failed);
}

static void ship_batch(tg_shipper_t *shipper)
{
    if (shipper->batch_len == 0)
        return;
    if (shipper->zipkin)
        ship_zipkin(shipper);
    if (shipper->statsd)
        ship_statsd(shipper);
    if (shipper->cfg.span_file)
        ship_file(shipper);
    shipper->batch_len = 0;
    apr_pool_clear(shipper->batch_pool);
}

/* Pops one record into the batch, shipping the batch when that fills it.
 * 0 when the queue had nothing ready. */
static int take_one(tg_shipper_t *shipper, apr_time_t now)
{
    apr_size_t len;
    tg_span_t *span;
    if (tg_queue_pop(shipper->queue, shipper->record, &len) != APR_SUCCESS)
        return 0;
    if (tg_record_decode(shipper->record, len, shipper->batch_pool, &span) != APR_SUCCESS) {
        count(&shipper->counters->undecodable, 1);
        /* Whatever the decoder left behind goes now, not with a batch that
         * may never come. */
        if (shipper->batch_len == 0)
            apr_pool_clear(shipper->batch_pool);
        return 1;
    }
    if (shipper->batch_len == 0)
        shipper->batch_started = now;
    shipper->batch[shipper->batch_len++] = span;
    if (shipper->batch_len == shipper->cfg.batch_spans)
        ship_batch(shipper);
    return 1;
}

int tg_shipper_poll(tg_shipper_t *shipper, apr_time_t now)
{
    int taken = 0;
    while ((uint32_t)taken < shipper->poll_limit && take_one(shipper, now))
        taken++;
    if (shipper->batch_len && now - shipper->batch_started >= shipper->cfg.batch_interval)
        ship_batch(shipper);
    return taken;
}

void tg_shipper_drain(tg_shipper_t *shipper, apr_time_t deadline)
{
    /* What stays queued is not lost: the queue outlives this process, and
     * the next shipper takes it. */
    while (apr_time_now() < deadline && take_one(shipper, apr_time_now()))
        ;
    ship_batch(shipper);
}

void tg_shipper_run(tg_shipper_t *shipper, volatile sig_atomic_t *stop,
                    apr_interval_time_t drain_budget)
{
    apr_interval_time_t idle_sleep = 0;
    while (!*stop) {
        if (tg_shipper_poll(shipper, apr_time_now()) > 0) {
            idle_sleep = 0;
            continue;
        }
        idle_sleep = idle_sleep ? idle_sleep * 2 : IDLE_SLEEP_MIN;
        if (idle_sleep > IDLE_SLEEP_MAX)
            idle_sleep = IDLE_SLEEP_MAX;
        apr_sleep(idle_sleep);
    }
    tg_shipper_drain(shipper, apr_time_now() + drain_budget);
}
