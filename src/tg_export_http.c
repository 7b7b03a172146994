#include "tg_export_http.h"

#include <apr_strings.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <unistd.h>

#include "tg_http.h"
#include "tg_ids.h"
#include "tg_log.h"

/* The wait after a failed POST: from the least, doubled after each failure
 * up to the most, back to the least after a success. */
#define RETRY_DELAY_MIN apr_time_from_msec(100)
#define RETRY_DELAY_MAX apr_time_from_sec(10)

#define HTTP_TOO_MANY_REQUESTS 429

typedef enum {
    WARN_RETRY_REFUSED,
    WARN_RETRY_TIMEOUT,
    WARN_RETRY_STATUS,
    WARN_RETRY_OTHER,
    WARN_REJECTED,
    WARN_GAVE_UP,
    WARN_OVERFLOW,
    WARN_UNENCODABLE,
    WARNINGS
} warning_t;

/* One POST body and the spans it carries. */
typedef struct {
    char *body; /* malloc'd */
    apr_size_t len;
    int spans;
    int attempts;
} payload_t;

/* The payloads in a ring, the oldest first.  The head may be on the wire;
 * the others wait. */
typedef struct {
    const char *name; /* for the log */
    const char *url;
    const tg_export_http_spec_t *spec;
    tg_export_config_t cfg; /* its bounds */
    tg_export_counters_t *counters;
    tg_http_t *http;
    tg_buf_t out;      /* the next payload, encoded */
    payload_t *ring;
    int ring_size;
    int head;
    int count;
    int waiting_spans; /* in the payloads not on the wire */
    int on_wire;       /* the head is being POSTed */
    apr_time_t not_before;
    apr_interval_time_t retry_delay; /* the next backoff; 0 after a success */
    tg_warn_limit_t warn[WARNINGS];
} http_exporter_t;

/* --- the agent the HTTP exporters of the process share --- */

static tg_http_agent_t *shared_agent;
static int agent_users;
static pid_t agent_owner; /* the process that made it */
/* A forked child's copy of its parent's agent: never used, never freed (its
 * connections are the parent's), and kept where leak checkers see it. */
static tg_http_agent_t *inherited_agent;

/* The agent, made (with libcurl's global state) for its first user.  A
 * process forked from one with an agent (an application's child, its
 * library's thread left behind) makes its own: the copy it inherited drives
 * the parent's connections, over sockets the two now share. */
static tg_http_agent_t *use_agent(void)
{
    if (agent_users && agent_owner != getpid()) {
        inherited_agent = shared_agent;
        agent_users = 0;
    }
    if (!agent_users) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            tg_log(TG_LOG_ERR, APR_EGENERAL, TGLOGNO(03002) "cannot initialize libcurl");
            return NULL;
        }
        shared_agent = tg_http_agent_create();
        if (!shared_agent) {
            curl_global_cleanup();
            return NULL;
        }
        agent_owner = getpid();
    }
    agent_users++;
    return shared_agent;
}

/* ...and released with its last. */
static void stop_using_agent(void)
{
    if (--agent_users)
        return;
    tg_http_agent_destroy(shared_agent);
    shared_agent = NULL;
    curl_global_cleanup();
}

/* --- the ring --- */

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
    tg_export_settle(exporter->counters, &exporter->counters->dropped, spans);
    return spans;
}

/* Drops the oldest waiting payloads until `incoming` more spans fit in the
 * buffer. */
static void make_room(http_exporter_t *exporter, int incoming)
{
    int buffer_spans = exporter->cfg.buffer_spans, dropped = 0;
    char note[TG_WARN_NOTE_BYTES];
    while (exporter->waiting_spans && exporter->waiting_spans + incoming > buffer_spans)
        dropped += drop_oldest_waiting(exporter);
    if (dropped && tg_warn_limit_pass(&exporter->warn[WARN_OVERFLOW], note))
        tg_log(TG_LOG_WARNING, 0, TGLOGNO(03103) "%s export to %s: its buffer of %d spans is full; "
               "dropped the oldest %d%s", exporter->name, exporter->url, buffer_spans, dropped,
               note);
}

static void unencodable(http_exporter_t *exporter, int spans)
{
    char note[TG_WARN_NOTE_BYTES];
    tg_export_settle(exporter->counters, &exporter->counters->failed, spans);
    if (tg_warn_limit_pass(&exporter->warn[WARN_UNENCODABLE], note))
        tg_log(TG_LOG_WARNING, APR_ENOMEM, TGLOGNO(03104) "%s export: out of memory encoding "
               "%d spans; they are lost%s", exporter->name, spans, note);
}

/* Encodes spans[0..n) into payloads of at most batch_bytes (halving the
 * spans until each fits) and queues them for their POST. */
static void add_payloads(http_exporter_t *exporter, const tg_span_t *const *spans, int n)
{
    tg_buf_t *out = &exporter->out;
    payload_t *payload;
    apr_size_t len;
    char *body;
    tg_buf_reset(out);
    exporter->spec->encode(out, spans, n);
    if (!out->failed && out->len > exporter->cfg.batch_bytes && n > 1) {
        add_payloads(exporter, spans, n / 2);
        add_payloads(exporter, spans + n / 2, n - n / 2);
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
    make_room(exporter, n);
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

void tg_export_http_take(void *state, const tg_span_t *const *spans, int n, apr_time_t now)
{
    add_payloads(state, spans, n);
}

/* --- POSTs --- */

/* The backoff before the next try: equal jitter, between half the delay
 * and the whole, so that many shippers restarted together spread out. */
static apr_interval_time_t next_retry_delay(http_exporter_t *exporter)
{
    apr_interval_time_t delay = exporter->retry_delay ? exporter->retry_delay : RETRY_DELAY_MIN;
    exporter->retry_delay = delay * 2 < RETRY_DELAY_MAX ? delay * 2 : RETRY_DELAY_MAX;
    return delay / 2 + (apr_interval_time_t)(tg_random_span_id() % (uint64_t)(delay / 2 + 1));
}

static warning_t retry_warning(apr_status_t rv, long status)
{
    if (status)
        return WARN_RETRY_STATUS;
    if (rv == APR_ECONNREFUSED)
        return WARN_RETRY_REFUSED;
    if (rv == APR_TIMEUP)
        return WARN_RETRY_TIMEOUT;
    return WARN_RETRY_OTHER;
}

/* A 4xx says the batch itself is at fault, and a 3xx that the URL is (curl
 * follows no redirect): sending it again is no use.  429 (too many
 * requests) is the exception OTLP makes. */
static int is_refusal(long status)
{
    return status >= 300 && status < 500 && status != HTTP_TOO_MANY_REQUESTS;
}

/* The head's POST ended with rv at `now`. */
static void post_ended(http_exporter_t *exporter, apr_status_t rv, long status,
                       const char *error, apr_time_t now)
{
    payload_t *payload = head_of(exporter);
    tg_export_counters_t *counters = exporter->counters;
    int spans = payload->spans, attempts = ++payload->attempts;
    int max_attempts = exporter->cfg.max_attempts;
    char note[TG_WARN_NOTE_BYTES];
    exporter->on_wire = 0;
    if (rv == APR_SUCCESS) {
        tg_export_delivered(counters, spans, now);
        pop_head(exporter);
        exporter->retry_delay = 0;
        exporter->not_before = 0;
        return;
    }
    if (is_refusal(status)) {
        tg_export_settle(counters, &counters->failed, spans);
        pop_head(exporter);
        if (tg_warn_limit_pass(&exporter->warn[WARN_REJECTED], note))
            tg_log(TG_LOG_WARNING, rv, TGLOGNO(03100) "%s collector at %s refused %d spans (%s); "
                   "they are not sent again%s", exporter->name, exporter->url, spans, error, note);
        return;
    }
    exporter->not_before = now + next_retry_delay(exporter);
    if (max_attempts && attempts >= max_attempts) {
        tg_export_settle(counters, &counters->failed, spans);
        pop_head(exporter);
        if (tg_warn_limit_pass(&exporter->warn[WARN_GAVE_UP], note))
            tg_log(TG_LOG_WARNING, rv, TGLOGNO(03101) "%s export to %s failed: %s; gave up on %d "
                   "spans after %d attempts%s", exporter->name, exporter->url, error, spans,
                   attempts, note);
        return;
    }
    atomic_fetch_add(&counters->retried, (uint64_t)spans);
    exporter->waiting_spans += spans;
    if (tg_warn_limit_pass(&exporter->warn[retry_warning(rv, status)], note))
        tg_log(TG_LOG_WARNING, rv, TGLOGNO(03102) "%s export to %s failed: %s; %d spans kept, "
               "next try in %" APR_TIME_T_FMT " ms%s", exporter->name, exporter->url, error,
               exporter->waiting_spans, apr_time_as_msec(exporter->not_before - now), note);
    make_room(exporter, 0);
}

/* Starts the head's POST.  Its timeout ends by `deadline` (0: none); 0 when
 * no time is left for one. */
static int start_post(http_exporter_t *exporter, apr_time_t now, apr_time_t deadline)
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
        post_ended(exporter, rv, 0, "cannot start an HTTP request", now);
    return 1;
}

/* Settles the POST that ended, if any, and starts the next while one is
 * due; returns once a POST is under way or none is due. */
apr_time_t tg_export_http_pump(void *state, apr_time_t now, apr_time_t deadline)
{
    http_exporter_t *exporter = state;
    char error[CURL_ERROR_SIZE];
    for (;;) {
        long status = 0;
        apr_status_t rv;
        if (!exporter->on_wire) {
            if (!exporter->count)
                return 0;
            if (now < exporter->not_before || !start_post(exporter, now, deadline))
                return exporter->not_before > now ? exporter->not_before : now;
            if (!exporter->on_wire)
                continue;
        }
        rv = tg_http_post_poll(exporter->http, &status, error);
        if (rv == APR_INCOMPLETE)
            return now;
        post_ended(exporter, rv, status, error, now);
    }
}

int tg_export_http_wait(void *state, apr_interval_time_t timeout)
{
    http_exporter_t *exporter = state;
    if (!exporter->on_wire)
        return 0;
    /* Rounded up: a wait of 0 ms would turn an idle loop into a spin. */
    tg_http_agent_wait(shared_agent, (long)((timeout + 999) / 1000));
    return 1;
}

/* What could not be delivered in time: counted failed, and the POST on the
 * wire abandoned. */
int tg_export_http_give_up(void *state)
{
    http_exporter_t *exporter = state;
    int spans = 0;
    if (exporter->on_wire)
        tg_http_post_cancel(exporter->http);
    exporter->on_wire = 0;
    while (exporter->count) {
        spans += head_of(exporter)->spans;
        pop_head(exporter);
    }
    exporter->waiting_spans = 0;
    tg_export_settle(exporter->counters, &exporter->counters->failed, spans);
    return spans;
}

/* --- its life --- */

static apr_status_t close_http(void *state)
{
    http_exporter_t *exporter = state;
    /* The handle goes before the agent it belongs to. */
    tg_http_destroy(exporter->http);
    while (exporter->count)
        pop_head(exporter);
    tg_buf_free(&exporter->out);
    stop_using_agent();
    return APR_SUCCESS;
}

apr_status_t tg_export_http_open(const tg_exporter_t *self, void **state,
                                 const tg_export_config_t *cfg, tg_export_counters_t *counters,
                                 apr_pool_t *pool)
{
    http_exporter_t *exporter = apr_pcalloc(pool, sizeof(*exporter));
    apr_size_t room = (apr_size_t)cfg->batch_spans * TG_EXPORT_TYPICAL_SPAN_BYTES;
    tg_http_agent_t *agent = use_agent();
    exporter->name = self->name;
    exporter->url = apr_pstrdup(pool, self->target(cfg, pool));
    exporter->spec = self->spec;
    exporter->cfg = *cfg;
    exporter->counters = counters;
    tg_buf_init(&exporter->out);
    if (agent) {
        apr_pool_cleanup_register(pool, exporter, close_http, apr_pool_cleanup_null);
        exporter->http = tg_http_create(agent, exporter->url, cfg->connect_timeout_ms,
                                        cfg->request_timeout_ms);
    }
    if (!exporter->http) {
        tg_log(TG_LOG_ERR, APR_ENOMEM, TGLOGNO(03003) "cannot make an HTTP client for %s at %s",
               exporter->name, exporter->url);
        return APR_ENOMEM;
    }
    exporter->ring_size = cfg->buffer_spans + 1;
    exporter->ring = apr_palloc(pool, sizeof(*exporter->ring) * (apr_size_t)exporter->ring_size);
    /* Room for a batch of typical spans, no more than a POST may carry. */
    tg_buf_grow(&exporter->out, room < cfg->batch_bytes ? room : cfg->batch_bytes);
    *state = exporter;
    return APR_SUCCESS;
}
