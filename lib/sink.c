#include "sink.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tg_log.h"
#include "tg_segment.h"
#include "tg_shipper.h"

/* The environment a process outside httpd is configured by. */
#define ENV_ZIPKIN "TOMOGRAPH_ZIPKIN"
#define ENV_OTLP "TOMOGRAPH_OTLP"
#define ENV_STATSD "TOMOGRAPH_STATSD"
#define ENV_SPAN_FILE "TOMOGRAPH_SPAN_FILE"
#define ENV_QUEUE_SIZE "TOMOGRAPH_QUEUE_SIZE"
#define ENV_EXIT_BUDGET "TOMOGRAPH_EXIT_BUDGET"

/* The queue's bounds are TomographQueueSize's. */
#define DEFAULT_QUEUE_SIZE 4096
#define MIN_QUEUE_SIZE 16
#define MAX_QUEUE_SIZE (1 << 20)

#define DEFAULT_EXIT_BUDGET_MS 1000
#define MAX_EXIT_BUDGET_MS 60000

/* An application's spans are few next to a server's, and tomograph_flush
 * waits for the batch being filled: a short wait keeps a flush short, at
 * the price of smaller POSTs. */
#define BATCH_INTERVAL apr_time_from_msec(100)

/* How often tomograph_sink_flush looks at the counters. */
#define FLUSH_POLL apr_time_from_msec(2)

/* EXPORTERS: the process's own segment and the thread that ships it. */
typedef struct exporters_t {
    apr_pool_t *pool; /* unmanaged, its own allocator: see start_exporters */
    void *memory;     /* malloc'd, holds the segment */
    tg_segment_t *segment;
    tg_shipper_t *shipper;
    unsigned exporters_on; /* a bit per index of tg_exporters[] */
    pthread_t thread;
    volatile sig_atomic_t stop;
    volatile sig_atomic_t drain_budget_ms;
    /* In a forked child: the copy of its parent's, and of theirs. */
    struct exporters_t *inherited;
} exporters_t;

static pthread_once_t process_once = PTHREAD_ONCE_INIT; /* not reset by fork */
static pthread_once_t decision_once = PTHREAD_ONCE_INIT; /* reset in a forked child */
static tomograph_sink_kind_t sink_kind = TOMOGRAPH_SINK_NONE;
static tg_segment_t *sink_segment; /* MODULE: the module's; EXPORTERS: exporters->segment */
static exporters_t *exporters;     /* EXPORTERS: this process's, NULL otherwise */
static exporters_t *inherited; /* a forked child's copies of its ancestors', kept, never freed */
static int exit_budget_ms = DEFAULT_EXIT_BUDGET_MS;

/* Outside httpd the core's lines go to stderr, which is all a script or a
 * program has; below warnings they would be noise in its output. */
static void stderr_sink(tg_log_level_t level, apr_status_t rv, const char *message)
{
    char reason[120];
    if (level > TG_LOG_WARNING)
        return;
    if (rv == APR_SUCCESS)
        fprintf(stderr, "tomograph: %s\n", message);
    else
        fprintf(stderr, "tomograph: %s: %s\n", message, apr_strerror(rv, reason, sizeof(reason)));
}

/* The child has no shipper thread (threads do not survive fork) and must not
 * touch the parent's copy of it, whose pool or transfer fork may have caught
 * half done, nor close its connections, which are the parent's sockets too:
 * it decides again at its first span.  The copy stays, unused and kept. */
static void forget_decision_in_child(void)
{
    if (exporters) {
        exporters->inherited = inherited;
        inherited = exporters;
    }
    decision_once = (pthread_once_t)PTHREAD_ONCE_INIT;
    sink_kind = TOMOGRAPH_SINK_NONE;
    sink_segment = NULL;
    exporters = NULL;
}

static void stop_exporters_at_exit(void);

static void prepare_process(void)
{
    /* Never terminated: the application, or another library, may use APR
     * after our last span. */
    apr_initialize();
    pthread_atfork(NULL, NULL, forget_decision_in_child);
    /* Registered once per program (a forked child inherits it), it acts on
     * whatever the process holds when it exits. */
    atexit(stop_exporters_at_exit);
}

/* A variable's bad value: said once, at the decision, and that setting
 * left off; the application goes on. */
static void bad_value(const char *name, const char *value, const char *expected)
{
    tg_log(TG_LOG_WARNING, APR_SUCCESS,
           TGLOGNO(04001) "%s: '%s' is not %s; ignored", name, value, expected);
}

/* The number variable `name` holds, within [min, max]; fallback when it is
 * unset or out of range. */
static apr_int64_t number_from_env(const char *name, apr_int64_t min, apr_int64_t max,
                                   apr_int64_t fallback, const char *expected)
{
    const char *value = getenv(name);
    char *end;
    apr_int64_t n;
    if (!value)
        return fallback;
    n = apr_strtoi64(value, &end, 10);
    if (end == value || *end || n < min || n > max) {
        bad_value(name, value, expected);
        return fallback;
    }
    return n;
}

static const char *url_from_env(const char *name, apr_pool_t *pool)
{
    const char *value = getenv(name);
    if (!value || tg_export_url_is_valid(value, pool))
        return value;
    bad_value(name, value, "an http:// or https:// URL of a collector");
    return NULL;
}

/* The exporters the environment names, with the span file opened; each bad
 * one said and left off.  How many are on. */
static int config_from_env(tg_export_config_t *cfg, apr_pool_t *pool)
{
    const char *statsd = getenv(ENV_STATSD);
    const char *span_path = getenv(ENV_SPAN_FILE);
    tg_export_config_defaults(cfg);
    cfg->batch_interval = BATCH_INTERVAL;
    cfg->zipkin_url = url_from_env(ENV_ZIPKIN, pool);
    cfg->otlp_url = url_from_env(ENV_OTLP, pool);
    if (statsd
        && tg_export_parse_statsd(statsd, &cfg->statsd_host, &cfg->statsd_port, pool)
               != APR_SUCCESS)
        bad_value(ENV_STATSD, statsd, "<host>:<port> of a statsd daemon (port 1 to 65535)");
    if (span_path && *span_path) {
        apr_status_t rv = apr_file_open(&cfg->span_file, span_path,
                                        APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_APPEND,
                                        APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD,
                                        pool);
        if (rv == APR_SUCCESS)
            cfg->span_path = span_path;
        else {
            cfg->span_file = NULL;
            tg_log(TG_LOG_WARNING, rv, TGLOGNO(04002) "cannot open " ENV_SPAN_FILE " %s; ignored",
                   span_path);
        }
    }
    return tg_export_count_on(cfg, pool);
}

static void *ship_until_stopped(void *data)
{
    exporters_t *own = data;
    tg_shipper_run(own->shipper, &own->stop, &own->drain_budget_ms);
    return NULL;
}

/* The shipper thread, with every signal blocked: the application's
 * handlers run on its own threads, as it expects.  APR_SUCCESS once it
 * runs. */
static apr_status_t start_thread(exporters_t *own)
{
    sigset_t all, previous;
    int err;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    err = pthread_create(&own->thread, NULL, ship_until_stopped, own);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return err ? APR_FROM_OS_ERROR(err) : APR_SUCCESS;
}

static void destroy_exporters(exporters_t *own)
{
    apr_pool_destroy(own->pool);
    free(own->memory);
    free(own);
}

/* EXPORTERS when the environment names one that works; NULL otherwise.
 * The pool has an allocator of its own, unmanaged: a child forked while
 * the shipper thread held APR's global allocator would find it locked
 * forever when it makes its own. */
static exporters_t *start_exporters(void)
{
    exporters_t *own = calloc(1, sizeof(*own));
    tg_export_config_t cfg;
    uint32_t records;
    apr_status_t rv;
    int i;
    if (!own || apr_pool_create_unmanaged_ex(&own->pool, NULL, NULL) != APR_SUCCESS) {
        free(own);
        return NULL;
    }
    if (!config_from_env(&cfg, own->pool)) {
        destroy_exporters(own);
        return NULL;
    }
    for (i = 0; i < TG_EXPORTER_COUNT; i++)
        if (tg_exporters[i]->target(&cfg, own->pool))
            own->exporters_on |= 1u << i;
    records = (uint32_t)number_from_env(ENV_QUEUE_SIZE, MIN_QUEUE_SIZE, MAX_QUEUE_SIZE,
                                        DEFAULT_QUEUE_SIZE, "a number of spans from 16 to 1048576");
    exit_budget_ms = (int)number_from_env(ENV_EXIT_BUDGET, 0, MAX_EXIT_BUDGET_MS,
                                          DEFAULT_EXIT_BUDGET_MS,
                                          "a number of milliseconds from 0 to 60000");
    own->memory = malloc(tg_segment_footprint(records));
    rv = own->memory ? APR_SUCCESS : APR_ENOMEM;
    if (rv == APR_SUCCESS) {
        own->segment = tg_segment_create(own->memory, records);
        /* libcurl's global state is made here, on the application's
         * thread, before the shipper thread exists. */
        rv = tg_shipper_create(&own->shipper, tg_segment_queue(own->segment), &cfg,
                               &own->segment->shipper, own->pool);
    }
    if (rv == APR_SUCCESS)
        rv = start_thread(own);
    if (rv != APR_SUCCESS) {
        tg_log(TG_LOG_ERR, rv, TGLOGNO(04003) "cannot start shipping spans to %s; they are dropped",
               tg_export_describe(&cfg, own->pool));
        destroy_exporters(own);
        return NULL;
    }
    return own;
}

static void decide(void)
{
    const char *locator = getenv(TG_SEGMENT_ENV);
    pthread_once(&process_once, prepare_process);
    /* Under httpd the module's segment: its mapping in a process httpd
     * forked, its descriptor mapped anew in a program httpd exec'd (a CGI),
     * found by its name when the environment lost the locator (suexec's);
     * a program with neither (one an application ran with its descriptors
     * closed) falls through.  The search costs a look at /proc/self/fd,
     * once per process. */
    if ((locator && tg_segment_attach(locator, &sink_segment) == APR_SUCCESS)
        || tg_segment_find_inherited(&sink_segment) == APR_SUCCESS) {
        sink_kind = TOMOGRAPH_SINK_MODULE;
        return;
    }
    tg_log_set_sink(stderr_sink);
    exporters = start_exporters();
    if (exporters) {
        sink_segment = exporters->segment;
        sink_kind = TOMOGRAPH_SINK_EXPORTERS;
    }
}

tomograph_sink_kind_t tomograph_sink_kind(void)
{
    pthread_once(&decision_once, decide);
    return sink_kind;
}

void tomograph_sink_ship(const tg_span_t *span)
{
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_NONE)
        tg_segment_enqueue(sink_segment, span);
}

/* 1 when nothing queued or held by an exporter is left undelivered.  A
 * record the shipper has popped and not yet counted taken is in neither the
 * queue's depth nor in_flight: every exporter on must have taken all that
 * was popped. */
static int delivered_all(const exporters_t *own)
{
    tg_queue_stats_t stats;
    int i;
    tg_queue_stats(tg_segment_queue(own->segment), &stats);
    if (stats.depth)
        return 0;
    for (i = 0; i < TG_EXPORTER_COUNT; i++) {
        const tg_export_counters_t *counters = &own->segment->shipper.exporters[i];
        if ((own->exporters_on & (1u << i))
            && (atomic_load(&counters->taken) != stats.popped
                || atomic_load(&counters->in_flight)))
            return 0;
    }
    return 1;
}

int tomograph_sink_flush(long timeout_ms)
{
    apr_time_t deadline;
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_EXPORTERS)
        return 1;
    deadline = apr_time_now() + apr_time_from_msec(timeout_ms > 0 ? timeout_ms : 0);
    while (!delivered_all(exporters)) {
        if (apr_time_now() >= deadline)
            return 0;
        apr_sleep(FLUSH_POLL);
    }
    return 1;
}

/* At exit: the thread drains what is buffered within the budget and is
 * joined; a collector that never answers costs the budget, no more.  The
 * segment stays: a thread of the application still running may yet enqueue
 * on it, spans that nothing ships any more. */
static void stop_exporters_at_exit(void)
{
    exporters_t *own = exporters;
    const char *undelivered;
    if (!own || own->stop)
        return;
    own->drain_budget_ms = exit_budget_ms;
    own->stop = 1;
    pthread_join(own->thread, NULL);
    undelivered = tg_shipper_undelivered(own->shipper, own->pool);
    if (undelivered)
        tg_log(TG_LOG_WARNING, APR_SUCCESS,
               TGLOGNO(04004) "spans not delivered within " ENV_EXIT_BUDGET " (%d ms) at exit, "
               "lost: %s",
               exit_budget_ms, undelivered);
    apr_pool_destroy(own->pool);
}
