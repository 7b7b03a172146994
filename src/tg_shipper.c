#include "tg_shipper.h"

#include <apr_portable.h>
#include <apr_strings.h>
#include <curl/curl.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tg_buf.h"
#include "tg_http.h"
#include "tg_ids.h"
#include "tg_log.h"
#include "tg_otlp.h"
#include "tg_record.h"
#include "tg_statsd.h"
#include "tg_zipkin.h"

/* Between two looks at the queue the loop waits this long: the least after
 * a look that found the queue a quarter full, doubling up to the most while
 * looks find less.  Spans wait for their batch for up to a second anyway,
 * and the queue holds thousands: at ten thousand spans a second, a look
 * every 20 ms takes 200 of them, where one every 5 ms took four wake-ups for
 * the same work. */
#define IDLE_WAIT_MIN apr_time_from_msec(5)
#define IDLE_WAIT_MAX apr_time_from_msec(20)

/* The wait after a failed POST: from the least, doubled after each failure
 * up to the most, back to the least after a success. */
#define RETRY_DELAY_MIN apr_time_from_msec(100)
#define RETRY_DELAY_MAX apr_time_from_sec(10)

/* A collector that is down fails every batch; one line a minute per kind of
 * failure says so without flooding the error log. */
#define WARN_INTERVAL apr_time_from_sec(60)

#define HTTP_TOO_MANY_REQUESTS 429

/* A server span in Zipkin JSON, give or take. */
#define TYPICAL_SPAN_BYTES 600

typedef struct {
    apr_time_t last_logged; /* 0: never */
    unsigned silenced;      /* failures since, not logged */
} warn_limit_t;

typedef enum {
    HTTP_RETRY_REFUSED,
    HTTP_RETRY_TIMEOUT,
    HTTP_RETRY_STATUS,
    HTTP_RETRY_OTHER,
    HTTP_REJECTED,
    HTTP_GAVE_UP,
    HTTP_OVERFLOW,
    HTTP_UNENCODABLE,
    HTTP_WARNINGS
} http_warning_t;

typedef void encode_fn(tg_buf_t *out, const tg_span_t *const *spans, int n);

/* One POST body and the spans it carries. */
typedef struct {
    char *body; /* malloc'd */
    apr_size_t len;
    int spans;
    int attempts;
} payload_t;

/* Zipkin and OTLP alike: batches encoded by `encode`, kept in a ring of
 * payloads until delivered, the oldest first.  The head may be on the wire;
 * the others wait. */
typedef struct {
    const char *name; /* for the log */
    const char *url;
    encode_fn *encode;
    tg_export_counters_t *counters;
    tg_http_t *http;   /* NULL: exporter off */
    payload_t *ring;
    int ring_size;
    int head;
    int count;
    int waiting_spans; /* in the payloads not on the wire */
    int on_wire;       /* the head is being POSTed */
    apr_time_t not_before;
    apr_interval_time_t retry_delay; /* the next backoff; 0 after a success */
    int undelivered;   /* given up by the last drain, at its deadline */
    warn_limit_t warn[HTTP_WARNINGS];
} http_exporter_t;

enum { EXPORTER_ZIPKIN, EXPORTER_OTLP, HTTP_EXPORTERS };
/* The HTTP ones, statsd and the span file. */
#define EXPORTERS (HTTP_EXPORTERS + 2)

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
    tg_buf_t out;             /* one exporter's payload, or the pending statsd lines */
    int curl_initialized;
    tg_http_agent_t *agent;   /* the HTTP exporters' connections */
    http_exporter_t http[HTTP_EXPORTERS];
    apr_socket_t *statsd;
    apr_sockaddr_t *statsd_addr;
    unsigned char *statsd_failed; /* per span of the batch: 1 when a datagram failed */
    warn_limit_t statsd_warn;
    warn_limit_t file_warn;
    apr_time_t queue_checked; /* when the queue's losses were last looked at */
    /* The counters of the exporters configured: each takes every record. */
    tg_export_counters_t *takers[EXPORTERS];
    int taker_count;
};

void tg_shipper_config_defaults(tg_shipper_config_t *cfg)
{
    cfg->zipkin_url = NULL;
    cfg->otlp_url = NULL;
    cfg->statsd_host = NULL;
    cfg->statsd_port = 8125;
    cfg->span_file = NULL;
    /* As Zipkin's own reporters batch (zipkin-reporter's AsyncReporter:
     * a message a second at most), and OpenTelemetry's batch span processor
     * by size (512 spans): fewer, larger POSTs, each costing libcurl about
     * as much whatever it carries, and a span seen in the collector within
     * a second.  512 typical spans are about 300 kB, under the 500 kB
     * messages zipkin-reporter sends. */
    cfg->batch_spans = 512;
    cfg->batch_interval = apr_time_from_sec(1);
    cfg->batch_bytes = 1024 * 1024;
    cfg->buffer_spans = 10000;
    cfg->max_attempts = 10;
    cfg->connect_timeout_ms = 1000;
    cfg->request_timeout_ms = 5000;
    cfg->statsd_packet = 1432;
}

static void count(_Atomic uint64_t *counter, uint64_t n)
{
    if (n)
        atomic_fetch_add(counter, n);
}

/* n spans leave the exporter's hands into `outcome`. */
static void settle(tg_export_counters_t *counters, _Atomic uint64_t *outcome, int n)
{
    count(outcome, (uint64_t)n);
    if (n)
        atomic_fetch_sub(&counters->in_flight, (uint64_t)n);
}

/* 1 when a failure of this kind may be logged now, `note` then saying how
 * many of its kind went unlogged since the last line ("" when none). */
static int may_warn(warn_limit_t *limit, char *note, apr_size_t size)
{
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

/* --- the HTTP exporters --- */

static payload_t *head_of(http_exporter_t *exporter)
{
    return &exporter->ring[exporter->head];
}

static void pop_head(http_exporter_t *exporter)
{
    free(head_of(exporter)->body);
    exporter->head = (exporter->head + 1) % exporter->ring_size;
    exporter->count--;
}

/* Drops the oldest payload that is not on the wire. */
static int drop_oldest_waiting(http_exporter_t *exporter)
{
    payload_t *head = head_of(exporter);
    int spans;
    if (!exporter->on_wire) {
        spans = head->spans;
        pop_head(exporter);
    }
    else {
        /* The head stays on the wire: it takes the place of the one after
         * it, which goes. */
        payload_t *next = &exporter->ring[(exporter->head + 1) % exporter->ring_size];
        spans = next->spans;
        free(next->body);
        *next = *head;
        exporter->head = (exporter->head + 1) % exporter->ring_size;
        exporter->count--;
    }
    exporter->waiting_spans -= spans;
    settle(exporter->counters, &exporter->counters->dropped, spans);
    return spans;
}

/* Drops the oldest waiting payloads until `incoming` more spans fit in the
 * buffer. */
static void make_room(tg_shipper_t *shipper, http_exporter_t *exporter, int incoming)
{
    int dropped = 0;
    char note[80];
    while (exporter->waiting_spans && exporter->waiting_spans + incoming > shipper->cfg.buffer_spans)
        dropped += drop_oldest_waiting(exporter);
    if (dropped && may_warn(&exporter->warn[HTTP_OVERFLOW], note, sizeof(note)))
        tg_log(TG_LOG_WARNING, 0, TGLOGNO(03103) "%s export to %s: its buffer of %d spans is full; "
               "dropped the oldest %d%s", exporter->name, exporter->url, shipper->cfg.buffer_spans,
               dropped, note);
}

static void unencodable(http_exporter_t *exporter, int spans)
{
    char note[80];
    settle(exporter->counters, &exporter->counters->failed, spans);
    if (may_warn(&exporter->warn[HTTP_UNENCODABLE], note, sizeof(note)))
        tg_log(TG_LOG_WARNING, APR_ENOMEM, TGLOGNO(03104) "%s export: out of memory encoding "
               "%d spans; they are lost%s", exporter->name, spans, note);
}

/* Encodes spans[0..n) into payloads of at most batch_bytes (halving the
 * spans until each fits) and queues them for their POST. */
static void add_payloads(tg_shipper_t *shipper, http_exporter_t *exporter,
                         const tg_span_t *const *spans, int n)
{
    tg_buf_t *out = &shipper->out;
    payload_t *payload;
    apr_size_t len;
    char *body;
    tg_buf_reset(out);
    exporter->encode(out, spans, n);
    if (!out->failed && out->len > shipper->cfg.batch_bytes && n > 1) {
        add_payloads(shipper, exporter, spans, n / 2);
        add_payloads(shipper, exporter, spans + n / 2, n - n / 2);
        return;
    }
    if (out->failed) {
        unencodable(exporter, n);
        return;
    }
    /* The payload takes the bytes as they are (a batch is hundreds of kB,
     * too many to copy), and the buffer starts over with room for a batch
     * somewhat larger, so that the next is unlikely to have to grow it. */
    len = out->len;
    body = tg_buf_detach(out);
    tg_buf_grow(out, len + len / 2);
    make_room(shipper, exporter, n);
    /* Room made, at most buffer_spans payloads (of a span at least) wait
     * beside the one on the wire: the ring has a slot for each. */
    payload = &exporter->ring[(exporter->head + exporter->count) % exporter->ring_size];
    payload->body = body;
    payload->len = len;
    payload->spans = n;
    payload->attempts = 0;
    exporter->count++;
    exporter->waiting_spans += n;
}

/* The backoff before the next try: equal jitter, between half the delay
 * and the whole, so that many shippers restarted together spread out. */
static apr_interval_time_t next_retry_delay(http_exporter_t *exporter)
{
    apr_interval_time_t delay = exporter->retry_delay ? exporter->retry_delay : RETRY_DELAY_MIN;
    exporter->retry_delay = delay * 2 < RETRY_DELAY_MAX ? delay * 2 : RETRY_DELAY_MAX;
    return delay / 2 + (apr_interval_time_t)(tg_random_span_id() % (uint64_t)(delay / 2 + 1));
}

static http_warning_t retry_warning(apr_status_t rv, long status)
{
    if (status)
        return HTTP_RETRY_STATUS;
    if (rv == APR_ECONNREFUSED)
        return HTTP_RETRY_REFUSED;
    if (rv == APR_TIMEUP)
        return HTTP_RETRY_TIMEOUT;
    return HTTP_RETRY_OTHER;
}

/* A 4xx says the batch itself is at fault, and a 3xx that the URL is (curl
 * follows no redirect): sending it again is no use.  429 (too many
 * requests) is the exception OTLP makes. */
static int is_refusal(long status)
{
    return status >= 300 && status < 500 && status != HTTP_TOO_MANY_REQUESTS;
}

/* The head's POST ended with rv at `now`. */
static void post_ended(tg_shipper_t *shipper, http_exporter_t *exporter, apr_status_t rv,
                       long status, const char *error, apr_time_t now)
{
    payload_t *payload = head_of(exporter);
    tg_export_counters_t *counters = exporter->counters;
    int spans = payload->spans, attempts = ++payload->attempts;
    char note[80];
    exporter->on_wire = 0;
    if (rv == APR_SUCCESS) {
        settle(counters, &counters->sent, spans);
        pop_head(exporter);
        exporter->retry_delay = 0;
        exporter->not_before = 0;
        return;
    }
    if (is_refusal(status)) {
        settle(counters, &counters->failed, spans);
        pop_head(exporter);
        if (may_warn(&exporter->warn[HTTP_REJECTED], note, sizeof(note)))
            tg_log(TG_LOG_WARNING, rv, TGLOGNO(03100) "%s collector at %s refused %d spans (%s); "
                   "they are not sent again%s", exporter->name, exporter->url, spans, error, note);
        return;
    }
    exporter->not_before = now + next_retry_delay(exporter);
    if (shipper->cfg.max_attempts && attempts >= shipper->cfg.max_attempts) {
        settle(counters, &counters->failed, spans);
        pop_head(exporter);
        if (may_warn(&exporter->warn[HTTP_GAVE_UP], note, sizeof(note)))
            tg_log(TG_LOG_WARNING, rv, TGLOGNO(03101) "%s export to %s failed: %s; gave up on %d "
                   "spans after %d attempts%s", exporter->name, exporter->url, error, spans,
                   attempts, note);
        return;
    }
    count(&counters->retried, (uint64_t)spans);
    exporter->waiting_spans += spans;
    if (may_warn(&exporter->warn[retry_warning(rv, status)], note, sizeof(note)))
        tg_log(TG_LOG_WARNING, rv, TGLOGNO(03102) "%s export to %s failed: %s; %d spans kept, "
               "next try in %" APR_TIME_T_FMT " ms%s", exporter->name, exporter->url, error,
               exporter->waiting_spans, apr_time_as_msec(exporter->not_before - now), note);
    make_room(shipper, exporter, 0);
}

/* Starts the head's POST.  Its timeout ends by `deadline` (0: none); 0 when
 * no time is left for one. */
static int start_post(tg_shipper_t *shipper, http_exporter_t *exporter, apr_time_t now,
                      apr_time_t deadline)
{
    payload_t *payload = head_of(exporter);
    long timeout_ms = 0;
    apr_status_t rv;
    if (deadline) {
        timeout_ms = (long)apr_time_as_msec(deadline - now);
        if (timeout_ms <= 0)
            return 0;
    }
    rv = tg_http_post_start(exporter->http, payload->body, payload->len, timeout_ms);
    exporter->waiting_spans -= payload->spans;
    exporter->on_wire = 1;
    if (rv != APR_SUCCESS)
        post_ended(shipper, exporter, rv, 0, "cannot start an HTTP request", now);
    return 1;
}

/* Settles the POST that ended, if any, and starts the next while the
 * exporter has one due; returns once a POST is under way or none is due. */
static void pump(tg_shipper_t *shipper, http_exporter_t *exporter, apr_time_t now,
                 apr_time_t deadline)
{
    char error[CURL_ERROR_SIZE];
    if (!exporter->http)
        return;
    for (;;) {
        long status = 0;
        apr_status_t rv;
        if (!exporter->on_wire) {
            if (!exporter->count || now < exporter->not_before
                || !start_post(shipper, exporter, now, deadline))
                return;
            if (!exporter->on_wire)
                continue;
        }
        rv = tg_http_post_poll(exporter->http, &status, error);
        if (rv == APR_INCOMPLETE)
            return;
        post_ended(shipper, exporter, rv, status, error, now);
    }
}

static void pump_all(tg_shipper_t *shipper, apr_time_t now, apr_time_t deadline)
{
    int i;
    for (i = 0; i < HTTP_EXPORTERS; i++)
        pump(shipper, &shipper->http[i], now, deadline);
}

/* What drain could not deliver in time: counted failed, and the POST on
 * the wire abandoned.  Named by the host once the drain is over
 * (tg_shipper_undelivered), in one line for every exporter. */
static void give_up(http_exporter_t *exporter)
{
    int spans = 0;
    if (exporter->on_wire)
        tg_http_post_cancel(exporter->http);
    exporter->on_wire = 0;
    while (exporter->count) {
        spans += head_of(exporter)->spans;
        pop_head(exporter);
    }
    exporter->waiting_spans = 0;
    settle(exporter->counters, &exporter->counters->failed, spans);
    exporter->undelivered = spans;
}

static apr_status_t open_http(tg_shipper_t *shipper, http_exporter_t *exporter, const char *name,
                              const char *url, encode_fn *encode,
                              tg_export_counters_t *counters, apr_pool_t *pool)
{
    const tg_shipper_config_t *cfg = &shipper->cfg;
    exporter->name = name;
    exporter->url = url;
    exporter->encode = encode;
    exporter->counters = counters;
    if (!url)
        return APR_SUCCESS;
    if (!shipper->curl_initialized) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            tg_log(TG_LOG_ERR, APR_EGENERAL, TGLOGNO(03002) "cannot initialize libcurl");
            return APR_EGENERAL;
        }
        shipper->curl_initialized = 1;
        shipper->agent = tg_http_agent_create();
    }
    exporter->http = shipper->agent ? tg_http_create_in(shipper->agent, url,
                                                        cfg->connect_timeout_ms,
                                                        cfg->request_timeout_ms)
                                    : NULL;
    if (!exporter->http) {
        tg_log(TG_LOG_ERR, APR_ENOMEM, TGLOGNO(03003) "cannot make an HTTP client for %s at %s",
               name, url);
        return APR_ENOMEM;
    }
    exporter->ring_size = cfg->buffer_spans + 1;
    exporter->ring = apr_palloc(pool, sizeof(*exporter->ring) * (apr_size_t)exporter->ring_size);
    return APR_SUCCESS;
}

static void close_http(http_exporter_t *exporter)
{
    /* Handles go before the agent they belong to. */
    tg_http_destroy(exporter->http);
    exporter->http = NULL;
    while (exporter->count)
        pop_head(exporter);
}

/* --- the shipper --- */

static apr_status_t release(void *data)
{
    tg_shipper_t *shipper = data;
    int i;
    for (i = 0; i < HTTP_EXPORTERS; i++)
        close_http(&shipper->http[i]);
    tg_http_agent_destroy(shipper->agent);
    shipper->agent = NULL;
    if (shipper->curl_initialized)
        curl_global_cleanup();
    shipper->curl_initialized = 0;
    tg_buf_free(&shipper->out);
    return APR_SUCCESS;
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

static int config_is_valid(const tg_shipper_config_t *cfg)
{
    return cfg->batch_spans >= 1 && cfg->statsd_packet >= 1 && cfg->batch_interval >= 0
        && cfg->batch_bytes >= 1 && cfg->buffer_spans >= cfg->batch_spans
        && cfg->max_attempts >= 0 && cfg->connect_timeout_ms > 0 && cfg->request_timeout_ms > 0;
}

static const char *copy_or_null(apr_pool_t *pool, const char *str)
{
    return str ? apr_pstrdup(pool, str) : NULL;
}

/* Which exporters are there, known once they are open. */
static void note_takers(tg_shipper_t *shipper)
{
    tg_shipper_counters_t *counters = shipper->counters;
    if (shipper->http[EXPORTER_ZIPKIN].http)
        shipper->takers[shipper->taker_count++] = &counters->zipkin;
    if (shipper->http[EXPORTER_OTLP].http)
        shipper->takers[shipper->taker_count++] = &counters->otlp;
    if (shipper->statsd)
        shipper->takers[shipper->taker_count++] = &counters->statsd;
    if (shipper->cfg.span_file)
        shipper->takers[shipper->taker_count++] = &counters->file;
}

apr_status_t tg_shipper_create(tg_shipper_t **shipper_out, tg_queue_t *queue,
                               const tg_shipper_config_t *cfg,
                               tg_shipper_counters_t *counters, apr_pool_t *pool)
{
    tg_shipper_t *shipper;
    tg_queue_stats_t stats;
    apr_status_t rv;
    if (!config_is_valid(cfg))
        return APR_EINVAL;
    shipper = apr_pcalloc(pool, sizeof(*shipper));
    tg_buf_init(&shipper->out);
    /* First, so that whatever is made below is released with the pool,
     * even when a later step fails. */
    apr_pool_cleanup_register(pool, shipper, release, apr_pool_cleanup_null);
    shipper->queue = queue;
    shipper->cfg = *cfg;
    shipper->cfg.zipkin_url = copy_or_null(pool, cfg->zipkin_url);
    shipper->cfg.otlp_url = copy_or_null(pool, cfg->otlp_url);
    shipper->cfg.statsd_host = copy_or_null(pool, cfg->statsd_host);
    shipper->counters = counters;
    tg_queue_stats(queue, &stats);
    shipper->poll_limit = stats.capacity;
    shipper->record = apr_palloc(pool, TG_QUEUE_SLOT_BYTES);
    shipper->batch = apr_pcalloc(pool, sizeof(*shipper->batch) * (apr_size_t)cfg->batch_spans);
    shipper->statsd_failed = apr_palloc(pool, (apr_size_t)cfg->batch_spans);
    /* Room for a batch of typical spans from the start, rather than
     * growing to it (copying as it goes) during the first; no more than a
     * POST may carry. */
    if (cfg->zipkin_url || cfg->otlp_url || cfg->span_file) {
        apr_size_t room = (apr_size_t)cfg->batch_spans * TYPICAL_SPAN_BYTES;
        tg_buf_grow(&shipper->out, room < cfg->batch_bytes ? room : cfg->batch_bytes);
    }
    rv = apr_pool_create(&shipper->batch_pool, pool);
    if (rv == APR_SUCCESS && shipper->cfg.statsd_host)
        rv = open_statsd(shipper, pool);
    if (rv == APR_SUCCESS)
        rv = open_http(shipper, &shipper->http[EXPORTER_ZIPKIN], "Zipkin", shipper->cfg.zipkin_url,
                       tg_zipkin_append_list, &counters->zipkin, pool);
    if (rv == APR_SUCCESS)
        rv = open_http(shipper, &shipper->http[EXPORTER_OTLP], "OTLP", shipper->cfg.otlp_url,
                       tg_otlp_append_request, &counters->otlp, pool);
    if (rv != APR_SUCCESS)
        return rv;
    note_takers(shipper);
    *shipper_out = shipper;
    return APR_SUCCESS;
}

/* Appends len bytes of whole lines to file, or nothing: a write cut short
 * (the disk full) would leave half a line, which the next batch would
 * continue into a line that is no span; what of it went in is cut off.
 * Lines another shipper appended meanwhile (the last generation's, draining
 * beside this one after a graceful restart, onto the same full disk) go
 * with it. */
static apr_status_t append_lines(apr_file_t *file, const char *lines, apr_size_t len)
{
    apr_off_t end = 0;
    apr_size_t written = 0;
    apr_status_t rv = apr_file_seek(file, APR_END, &end);
    if (rv == APR_SUCCESS)
        rv = apr_file_write_full(file, lines, len, &written);
    if (rv == APR_SUCCESS)
        rv = apr_file_flush(file);
    if (rv != APR_SUCCESS && written > 0)
        apr_file_trunc(file, end);
    return rv;
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
    if (!shipper->out.failed)
        rv = append_lines(shipper->cfg.span_file, shipper->out.data, shipper->out.len);
    if (rv == APR_SUCCESS) {
        settle(&shipper->counters->file, &shipper->counters->file.sent, shipper->batch_len);
        return;
    }
    settle(&shipper->counters->file, &shipper->counters->file.failed, shipper->batch_len);
    if (may_warn(&shipper->file_warn, note, sizeof(note)))
        tg_log(TG_LOG_WARNING, rv, TGLOGNO(03005) "cannot write %d spans to the span file%s",
               shipper->batch_len, note);
}

/* One datagram of the batch's statsd lines: where it lies in shipper->out,
 * and the spans whose lines it holds. */
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
static int send_datagrams(tg_shipper_t *shipper, const datagram_t *datagrams, int n,
                          apr_status_t *rv)
{
    struct mmsghdr messages[SENDMMSG_CHUNK];
    struct iovec bytes[SENDMMSG_CHUNK];
    apr_os_sock_t fd;
    int sent = 0, i, count, done;

    *rv = apr_os_sock_get(&fd, shipper->statsd);
    if (*rv != APR_SUCCESS)
        return 0;
    while (sent < n) {
        count = n - sent < SENDMMSG_CHUNK ? n - sent : SENDMMSG_CHUNK;
        memset(messages, 0, sizeof(messages[0]) * (size_t)count);
        for (i = 0; i < count; i++) {
            bytes[i].iov_base = shipper->out.data + datagrams[sent + i].start;
            bytes[i].iov_len = datagrams[sent + i].len;
            messages[i].msg_hdr.msg_name = &shipper->statsd_addr->sa;
            messages[i].msg_hdr.msg_namelen = (socklen_t)shipper->statsd_addr->salen;
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
static int send_datagrams(tg_shipper_t *shipper, const datagram_t *datagrams, int n,
                          apr_status_t *rv)
{
    int sent;
    for (sent = 0; sent < n; sent++) {
        apr_size_t len = datagrams[sent].len;
        *rv = apr_socket_sendto(shipper->statsd, shipper->statsd_addr, 0,
                                shipper->out.data + datagrams[sent].start, &len);
        if (*rv != APR_SUCCESS)
            break;
    }
    return sent;
}
#endif

/* Sends them all: a span whose lines are in a datagram that fails counts
 * as failed. */
static void send_all_datagrams(tg_shipper_t *shipper, const apr_array_header_t *datagrams)
{
    const datagram_t *all = (const datagram_t *)datagrams->elts;
    int at = 0;
    apr_status_t rv;
    char note[80];
    while (at < datagrams->nelts) {
        at += send_datagrams(shipper, all + at, datagrams->nelts - at, &rv);
        if (at == datagrams->nelts)
            break;
        memset(shipper->statsd_failed + all[at].first_span, 1,
               (size_t)(all[at].last_span + 1 - all[at].first_span));
        at++;
        if (may_warn(&shipper->statsd_warn, note, sizeof(note)))
            tg_log(TG_LOG_WARNING, rv, TGLOGNO(03006) "cannot send a datagram to statsd at %s:%u%s",
                   shipper->cfg.statsd_host, (unsigned)shipper->cfg.statsd_port, note);
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

/* The batch's statsd lines, packed into datagrams of at most statsd_packet
 * bytes, all written first and then sent: each span's lines are written
 * straight after those pending, and whenever they overflow, the longest run
 * of whole lines that fits makes a datagram (a line longer than a datagram
 * goes alone rather than split, which statsd could not read).  A span whose
 * lines straddle datagrams counts as failed when any of them fails. */
static void ship_statsd(tg_shipper_t *shipper)
{
    tg_export_counters_t *counters = &shipper->counters->statsd;
    tg_buf_t *lines = &shipper->out;
    apr_size_t packet = shipper->cfg.statsd_packet, pending = 0;
    apr_array_header_t *datagrams = apr_array_make(shipper->batch_pool, 16, sizeof(datagram_t));
    tg_statsd_memo_t memo = { NULL, 0, { 0 } };
    int first_span = 0, i, failed = 0;
    memset(shipper->statsd_failed, 0, (size_t)shipper->batch_len);
    tg_buf_reset(lines);
    for (i = 0; i < shipper->batch_len; i++) {
        apr_size_t span_start = lines->len;
        tg_statsd_append_span(lines, shipper->batch[i], &memo);
        if (lines->failed) {
            /* Out of memory: what was pending is lost with this span. */
            memset(shipper->statsd_failed + first_span, 1, (size_t)(i + 1 - first_span));
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
            add_datagram(datagrams, pending, cut - pending, first_span,
                         cut >= span_start ? i : i - 1);
            /* What is left is this span's lines. */
            pending = cut + 1;
            first_span = i;
        }
        if (pending == lines->len)
            first_span = i + 1;
    }
    if (lines->len > pending)
        add_datagram(datagrams, pending, lines->len - 1 - pending, first_span,
                     shipper->batch_len - 1);
    send_all_datagrams(shipper, datagrams);
    for (i = 0; i < shipper->batch_len; i++)
        failed += shipper->statsd_failed[i];
    settle(counters, &counters->sent, shipper->batch_len - failed);
    settle(counters, &counters->failed, failed);
}

/* Hands the batch to every exporter: statsd and the file at once, the HTTP
 * exporters' payloads to their buffers, POSTed as soon as may be. */
static void ship_batch(tg_shipper_t *shipper, apr_time_t now, apr_time_t deadline)
{
    int i;
    if (shipper->batch_len == 0)
        return;
    for (i = 0; i < HTTP_EXPORTERS; i++)
        if (shipper->http[i].http)
            add_payloads(shipper, &shipper->http[i], shipper->batch, shipper->batch_len);
    if (shipper->statsd)
        ship_statsd(shipper);
    if (shipper->cfg.span_file)
        ship_file(shipper);
    shipper->batch_len = 0;
    apr_pool_clear(shipper->batch_pool);
    pump_all(shipper, now, deadline);
}

static void count_taken(tg_export_counters_t *counters)
{
    atomic_fetch_add(&counters->taken, 1);
    atomic_fetch_add(&counters->in_flight, 1);
}

/* Pops one record into the batch, shipping the batch when that fills it.
 * 0 when the queue had nothing ready. */
static int take_one(tg_shipper_t *shipper, apr_time_t now, apr_time_t deadline)
{
    apr_size_t len;
    tg_span_t *span;
    int i;
    if (tg_queue_pop(shipper->queue, shipper->record, &len) != APR_SUCCESS)
        return 0;
    /* Taken as soon as it is off the queue, before it is decoded: a shipper
     * killed from here on leaves it in flight, which is written off
     * (tg_shipper_counters_write_off), not lost uncounted. */
    for (i = 0; i < shipper->taker_count; i++)
        count_taken(shipper->takers[i]);
    if (tg_record_decode(shipper->record, len, shipper->batch_pool, &span) != APR_SUCCESS) {
        count(&shipper->counters->undecodable, 1);
        for (i = 0; i < shipper->taker_count; i++)
            settle(shipper->takers[i], &shipper->takers[i]->failed, 1);
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
        ship_batch(shipper, now, deadline);
    return 1;
}

/* Spans the queue lost before any shipper saw them (full, oversize, a dead
 * writer's), reported in one line a minute while losses go on. */
static void report_queue_losses(tg_shipper_t *shipper, apr_time_t now)
{
    tg_shipper_counters_t *counters = shipper->counters;
    tg_queue_stats_t stats;
    uint64_t lost, reported;
    apr_time_t reported_at;
    if (now - shipper->queue_checked < APR_USEC_PER_SEC)
        return;
    shipper->queue_checked = now;
    tg_queue_stats(shipper->queue, &stats);
    lost = stats.dropped_full + stats.dropped_oversize + stats.skipped_stale;
    reported = atomic_load(&counters->queue_lost_reported);
    reported_at = atomic_load(&counters->queue_reported_at);
    if (lost == reported || (reported_at && now - reported_at < WARN_INTERVAL))
        return;
    tg_log(TG_LOG_WARNING, APR_SUCCESS,
           TGLOGNO(03110) "the span queue lost %" APR_UINT64_T_FMT " spans since the last report "
           "(%" APR_UINT64_T_FMT " in all: %" APR_UINT64_T_FMT " when full, %" APR_UINT64_T_FMT
           " too large, %" APR_UINT64_T_FMT " from dead writers); a larger TomographQueueSize "
           "helps if the shipper keeps up",
           lost - reported, lost, stats.dropped_full, stats.dropped_oversize, stats.skipped_stale);
    atomic_store(&counters->queue_lost_reported, lost);
    atomic_store(&counters->queue_reported_at, now);
}

int tg_shipper_poll(tg_shipper_t *shipper, apr_time_t now)
{
    int taken = 0;
    while ((uint32_t)taken < shipper->poll_limit && take_one(shipper, now, 0))
        taken++;
    if (shipper->batch_len && now - shipper->batch_started >= shipper->cfg.batch_interval)
        ship_batch(shipper, now, 0);
    else
        pump_all(shipper, now, 0);
    report_queue_losses(shipper, now);
    return taken;
}

void tg_shipper_wait(tg_shipper_t *shipper, apr_interval_time_t timeout)
{
    /* Only a POST on the wire can end the wait early; without one, a plain
     * sleep does what libcurl's poll would, for less. */
    if (shipper->http[EXPORTER_ZIPKIN].on_wire || shipper->http[EXPORTER_OTLP].on_wire)
        /* Rounded up: a wait of 0 ms would turn the idle loop into a spin. */
        tg_http_agent_wait(shipper->agent, (long)((timeout + 999) / 1000));
    else
        apr_sleep(timeout);
}

/* The soonest an HTTP exporter has something to do, when none has a POST on
 * the wire; `now` when one has (its progress wakes the wait); 0 when none
 * has work left. */
static apr_time_t next_http_work(const tg_shipper_t *shipper, apr_time_t now)
{
    apr_time_t soonest = 0;
    int i;
    for (i = 0; i < HTTP_EXPORTERS; i++) {
        const http_exporter_t *exporter = &shipper->http[i];
        apr_time_t due;
        if (!exporter->count)
            continue;
        due = exporter->on_wire || exporter->not_before < now ? now : exporter->not_before;
        if (!soonest || due < soonest)
            soonest = due;
    }
    return soonest;
}

/* The end of a drain begun at `started`, its budget read anew at each step:
 * a signal handler may cut it meanwhile. */
static apr_time_t drain_deadline(apr_time_t started, volatile sig_atomic_t *budget_ms)
{
    return started + apr_time_from_msec(*budget_ms);
}

static void drain(tg_shipper_t *shipper, apr_time_t started, volatile sig_atomic_t *budget_ms)
{
    apr_time_t now, deadline;
    int i;
    for (i = 0; i < HTTP_EXPORTERS; i++)
        shipper->http[i].undelivered = 0;
    /* What stays queued is not lost: the queue outlives this process, and
     * the next shipper takes it. */
    while ((now = apr_time_now()) < (deadline = drain_deadline(started, budget_ms))
           && take_one(shipper, now, deadline))
        ;
    ship_batch(shipper, apr_time_now(), drain_deadline(started, budget_ms));
    while ((now = apr_time_now()) < (deadline = drain_deadline(started, budget_ms))) {
        apr_time_t due, wake;
        pump_all(shipper, now, deadline);
        due = next_http_work(shipper, now);
        /* Nothing left, or nothing to try before the deadline: a collector
         * in backoff past it is not waited for. */
        if (!due || due >= deadline)
            break;
        /* Until a backoff ends, or a POST's progress wakes us. */
        wake = due > now ? due : deadline;
        tg_shipper_wait(shipper, wake - now < IDLE_WAIT_MAX ? wake - now : IDLE_WAIT_MAX);
    }
    for (i = 0; i < HTTP_EXPORTERS; i++)
        give_up(&shipper->http[i]);
}

void tg_shipper_drain(tg_shipper_t *shipper, apr_time_t deadline)
{
    apr_time_t now = apr_time_now();
    apr_time_t budget_ms = deadline > now ? apr_time_as_msec(deadline - now) : 0;
    volatile sig_atomic_t budget = budget_ms < SIG_ATOMIC_MAX ? (sig_atomic_t)budget_ms
                                                              : SIG_ATOMIC_MAX;
    drain(shipper, now, &budget);
}

const char *tg_shipper_undelivered(const tg_shipper_t *shipper, apr_pool_t *pool)
{
    const char *named = NULL;
    int i;
    for (i = 0; i < HTTP_EXPORTERS; i++)
        if (shipper->http[i].undelivered)
            named = apr_psprintf(pool, "%s%s%s %d", named ? named : "", named ? ", " : "",
                                 shipper->http[i].name, shipper->http[i].undelivered);
    return named;
}

/* Each POST frees a payload of a few hundred KB, and libcurl its upload
 * buffer, which the next one takes again.  Given back (glibc trims the heap
 * past 1 MB free), the next POST faulted every page of it in again: at 10k
 * spans/s, 1,000 page faults a second, half the shipper's time. */
#define FREED_MEMORY_KEPT (8 * 1024 * 1024)

void tg_shipper_keep_freed_memory(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, FREED_MEMORY_KEPT);
    mallopt(M_TRIM_THRESHOLD, FREED_MEMORY_KEPT);
#endif
}

void tg_shipper_run(tg_shipper_t *shipper, volatile sig_atomic_t *stop,
                    volatile sig_atomic_t *drain_budget_ms)
{
    apr_interval_time_t idle_wait = 0;
    while (!*stop) {
        int taken = tg_shipper_poll(shipper, apr_time_now());
        /* A poll takes all that is queued, up to its limit: only when it
         * reached that is more waiting. */
        if ((uint32_t)taken >= shipper->poll_limit)
            continue;
        if ((uint32_t)taken >= shipper->poll_limit / 4)
            idle_wait = IDLE_WAIT_MIN;
        else
            idle_wait = idle_wait ? idle_wait * 2 : IDLE_WAIT_MIN;
        if (idle_wait > IDLE_WAIT_MAX)
            idle_wait = IDLE_WAIT_MAX;
        tg_shipper_wait(shipper, idle_wait);
    }
    drain(shipper, apr_time_now(), drain_budget_ms);
}

static void write_off(tg_export_counters_t *counters)
{
    uint64_t lost = atomic_exchange(&counters->in_flight, 0);
    count(&counters->failed, lost);
}

void tg_shipper_counters_write_off(tg_shipper_counters_t *counters)
{
    write_off(&counters->zipkin);
    write_off(&counters->otlp);
    write_off(&counters->statsd);
    write_off(&counters->file);
}
