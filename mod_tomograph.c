/* mod_tomograph: distributed tracing for the services httpd serves.
 *
 * This file is glue: directives, hooks and the shipper daemon's life.  The
 * work is done by the core in src/ (span model, header codecs, the queue,
 * the encoders and the shipper), which knows nothing of httpd.
 *
 * A request's life: post_read_request continues the caller's trace (or starts
 * one) and opens a SERVER span in r->pool; fixups hands the span on to the
 * app (its headers and environment); log_transaction closes the span and
 * copies it, as a compact record, onto a queue in shared memory.  A daemon
 * child, started and watched like mod_cgid's, drains the queue and ships.
 * The request path never touches the network and never waits: a full queue
 * drops the span and counts it. */

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_listen.h"
#include "ap_mpm.h"
#include "mpm_common.h"
#include "mod_proxy.h"
#include "mod_status.h"

#include <apr_lib.h>
#include <apr_optional.h>
#include <apr_shm.h>
#include <apr_signal.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include <signal.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "tg_ids.h"
#include "tg_log.h"
#include "tg_propagation.h"
#include "tg_queue.h"
#include "tg_record.h"
#include "tg_redact.h"
#include "tg_sampling.h"
#include "tg_shipper.h"
#include "tg_span.h"

module AP_MODULE_DECLARE_DATA tomograph_module;

#define DEFAULT_QUEUE_SIZE 4096
#define MIN_QUEUE_SIZE 16
#define MAX_QUEUE_SIZE (1 << 20)
#define DEFAULT_SPAN_FILE "logs/tomograph-spans.json"
#define RETAINED_KEY "mod_tomograph_retained"
#define ENV_TRACE_ID "TOMOGRAPH_TRACE_ID"
#define ENV_SPAN_ID "TOMOGRAPH_SPAN_ID"

/* Whether the configuration reads the ids from the environment (a log
 * format, a header...): then every request gets them, else only those whose
 * handler reads the environment (decide_trace, hand_on_span).  Two entries
 * and their hex cost a static file's request an eighth of its span. */
static int environment_named;
/* The daemon exits with this when it cannot start at all (bad span file,
 * cannot drop privileges): restarting it would only loop, as in mod_cgid. */
#define SHIPPER_STARTUP_ERROR 254
/* How long the shipper may take to flush on restart or stop, and how much
 * longer httpd waits for it to exit when it stops before killing it. */
#define SHIPPER_DRAIN_BUDGET (2 * APR_USEC_PER_SEC)
#define SHIPPER_EXIT_GRACE (APR_USEC_PER_SEC / 2)

typedef struct {
    /* Instance-wide (main server only, GLOBAL_ONLY). */
    tg_shipper_config_t export;    /* the span file is opened by the shipper */
    const char *span_file;
    int queue_size;
    int sample_limit;              /* new sampled traces a second; 0: no cap */
    /* Per virtual host. */
    apr_array_header_t *hmac_keys; /* const char *; NULL when unset here */
    apr_array_header_t *redact;    /* query parameter names; NULL: the defaults */
    tg_format_t *extract_order;    /* ends with TG_FORMAT_NONE; NULL: the default */
    const char *default_service;   /* ServerName, lowercased, set in post_config */
} server_conf_t;

/* -1 (or NULL) is "unset here": merging takes the enclosing value. */
typedef struct {
    int enable;
    int trust_incoming;
    int b3_join;
    double sample_rate;
    const char *service;
    const char *response_header; /* "" turns an inherited one off */
    tg_format_set_t propagate;   /* formats handed on to the app and backends; 0 unset */
} dir_conf_t;

/* The shared segment: counters first, then the queue.  It is made once per
 * httpd instance and kept across restarts (the scoreboard's model), so spans
 * that old children finish after a graceful restart reach the new shipper. */
typedef struct {
    _Atomic uint64_t spans_created;
    tg_rate_limit_t sample_limit;    /* TomographSampleLimit */
    tg_shipper_counters_t shipper;
    alignas(64) unsigned char queue[];
} shared_t;

/* Outlives generations: lives in the process pool's userdata. */
typedef struct {
    apr_shm_t *shm;
    shared_t *shared;
    tg_queue_t *queue;
    int queue_size;
} retained_t;

typedef struct {
    apr_pool_t *pool; /* pconf of the generation that started it */
    server_rec *server;
    retained_t *retained;
    apr_proc_t proc;
} shipper_daemon_t;

static retained_t *retained;

/* ------------------------------------------------------------------------ */
/* Configuration */

#define MERGE_FLAG(field) conf->field = add->field != -1 ? add->field : base->field
#define MERGE_IF_SET(field) conf->field = add->field ? add->field : base->field

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    server_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->queue_size = DEFAULT_QUEUE_SIZE;
    tg_shipper_config_defaults(&conf->export);
    return conf;
}

static void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    server_conf_t *base = basev, *add = addv;
    server_conf_t *conf = apr_pmemdup(p, add, sizeof(*conf));
    MERGE_IF_SET(hmac_keys);
    MERGE_IF_SET(redact);
    MERGE_IF_SET(extract_order);
    return conf;
}

static void *create_dir_conf(apr_pool_t *p, char *dir)
{
    dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->enable = -1;
    conf->trust_incoming = -1;
    conf->b3_join = -1;
    conf->sample_rate = -1;
    return conf;
}

static void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    dir_conf_t *base = basev, *add = addv;
    dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    MERGE_FLAG(enable);
    MERGE_FLAG(trust_incoming);
    MERGE_FLAG(b3_join);
    conf->sample_rate = add->sample_rate >= 0 ? add->sample_rate : base->sample_rate;
    MERGE_IF_SET(service);
    MERGE_IF_SET(response_header);
    MERGE_IF_SET(propagate);
    return conf;
}

static server_conf_t *server_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &tomograph_module);
}

static const char *bad_value(cmd_parms *cmd, const char *arg, const char *expected)
{
    return apr_psprintf(cmd->pool, "%s: '%s' is not %s", cmd->cmd->name, arg, expected);
}

static int has_control_bytes(const char *s)
{
    for (; *s; s++)
        if (apr_iscntrl(*s))
            return 1;
    return 0;
}

static const char *set_service(cmd_parms *cmd, void *mconfig, const char *arg)
{
    dir_conf_t *conf = mconfig;
    if (!*arg || has_control_bytes(arg))
        return bad_value(cmd, arg, "a service name");
    conf->service = apr_pstrdup(cmd->pool, arg);
    ap_str_tolower((char *)conf->service);
    return NULL;
}

/* On/Off directives are TAKE1 rather than FLAG, so that a bad value is
 * named in the error; cmd->info is the offset of the dir_conf_t field. */
static const char *set_dir_flag(cmd_parms *cmd, void *mconfig, const char *arg)
{
    int *field = (int *)((char *)mconfig + (size_t)cmd->info);
    if (strcasecmp(arg, "on") != 0 && strcasecmp(arg, "off") != 0)
        return bad_value(cmd, arg, "On or Off");
    *field = strcasecmp(arg, "on") == 0;
    return NULL;
}

static const char *set_sample_rate(cmd_parms *cmd, void *mconfig, const char *arg)
{
    char *end;
    double rate = strtod(arg, &end);
    if (end == arg || *end || !(rate >= 0.0 && rate <= 1.0))
        return bad_value(cmd, arg, "a sampling rate from 0 to 1");
    ((dir_conf_t *)mconfig)->sample_rate = rate;
    return NULL;
}

static const char *set_response_header_name(cmd_parms *cmd, void *mconfig, const char *arg)
{
    const char *c;
    for (c = arg; *c; c++)
        if (!apr_isalnum(*c) && *c != '-' && *c != '_')
            return bad_value(cmd, arg, "a header name (letters, digits, '-', '_') or Off");
    ((dir_conf_t *)mconfig)->response_header = strcasecmp(arg, "off") == 0 ? "" : arg;
    return NULL;
}

/* Parses each word of a TomographExtract or TomographPropagate line. */
static const char *parse_formats(cmd_parms *cmd, int argc, char *const argv[], tg_format_t *formats)
{
    int i;
    if (argc < 1 || argc > 4)
        return apr_psprintf(cmd->pool, "%s: one to four of tracecontext, b3, b3multi, x-trace-info",
                            cmd->cmd->name);
    for (i = 0; i < argc; i++)
        if (tg_format_parse(argv[i], &formats[i]) != APR_SUCCESS)
            return bad_value(cmd, argv[i], "one of tracecontext, b3, b3multi, x-trace-info");
    formats[argc] = TG_FORMAT_NONE;
    return NULL;
}

static const char *set_extract(cmd_parms *cmd, void *mconfig, int argc, char *const argv[])
{
    tg_format_t *order = apr_pcalloc(cmd->pool, 5 * sizeof(*order));
    const char *err = parse_formats(cmd, argc, argv, order);
    if (!err)
        server_conf(cmd->server)->extract_order = order;
    return err;
}

static const char *set_propagate(cmd_parms *cmd, void *mconfig, int argc, char *const argv[])
{
    dir_conf_t *conf = mconfig;
    tg_format_t formats[5];
    const char *err = parse_formats(cmd, argc, argv, formats);
    int i;
    if (err)
        return err;
    conf->propagate = 0;
    for (i = 0; formats[i] != TG_FORMAT_NONE; i++)
        conf->propagate |= TG_FORMAT_BIT(formats[i]);
    return NULL;
}

static const char *add_redact(cmd_parms *cmd, void *mconfig, const char *arg)
{
    server_conf_t *conf = server_conf(cmd->server);
    if (!*arg || strpbrk(arg, "=&; \t"))
        return bad_value(cmd, arg, "a query parameter name");
    if (!conf->redact)
        conf->redact = apr_array_make(cmd->pool, 8, sizeof(const char *));
    APR_ARRAY_PUSH(conf->redact, const char *) = arg;
    return NULL;
}

/* TomographZipkin and TomographOTLP; cmd->info is the offset of the URL in
 * tg_shipper_config_t. */
static const char *set_collector_url(cmd_parms *cmd, void *mconfig, const char *arg)
{
    apr_uri_t uri;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname
        || (strcasecmp(uri.scheme, "http") != 0 && strcasecmp(uri.scheme, "https") != 0)
        || has_control_bytes(arg))
        return bad_value(cmd, arg, "an http:// or https:// URL of a collector");
    *(const char **)((char *)&server_conf(cmd->server)->export + (size_t)cmd->info) = arg;
    return NULL;
}

static const char *set_statsd(cmd_parms *cmd, void *mconfig, const char *arg)
{
    server_conf_t *conf = server_conf(cmd->server);
    char *host, *scope;
    apr_port_t port;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    if (apr_parse_addr_port(&host, &scope, &port, arg, cmd->pool) != APR_SUCCESS || !host
        || port == 0 || scope)
        return bad_value(cmd, arg, "<host>:<port> of a statsd daemon (port 1 to 65535)");
    conf->export.statsd_host = host;
    conf->export.statsd_port = port;
    return NULL;
}

static const char *set_span_file(cmd_parms *cmd, void *mconfig, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    if (!*arg || has_control_bytes(arg) || !ap_server_root_relative(cmd->pool, arg))
        return bad_value(cmd, arg, "a file path");
    server_conf(cmd->server)->span_file = arg;
    return NULL;
}

static const char *parse_number(cmd_parms *cmd, const char *arg, apr_int64_t min,
                                apr_int64_t max, const char *what, apr_int64_t *out);

static const char *set_queue_size(cmd_parms *cmd, void *mconfig, const char *arg)
{
    apr_int64_t n;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (!err)
        err = parse_number(cmd, arg, MIN_QUEUE_SIZE, MAX_QUEUE_SIZE, "a number of spans", &n);
    if (!err)
        server_conf(cmd->server)->queue_size = (int)n;
    return err;
}

/* A whole number from min to max, or NULL (the error then in *err). */
static const char *parse_number(cmd_parms *cmd, const char *arg, apr_int64_t min,
                                apr_int64_t max, const char *what, apr_int64_t *out)
{
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || n < min || n > max)
        return bad_value(cmd, arg,
                         apr_psprintf(cmd->pool, "%s from %" APR_INT64_T_FMT " to %" APR_INT64_T_FMT,
                                      what, min, max));
    *out = n;
    return NULL;
}

static const char *set_sample_limit(cmd_parms *cmd, void *mconfig, const char *arg)
{
    apr_int64_t n;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (!err)
        err = parse_number(cmd, arg, 0, 1000000000, "a number of new traces a second (0: no limit)",
                           &n);
    if (!err)
        server_conf(cmd->server)->sample_limit = (int)n;
    return err;
}

static const char *set_batch(cmd_parms *cmd, void *mconfig, const char *spans, const char *ms)
{
    tg_shipper_config_t *export = &server_conf(cmd->server)->export;
    apr_int64_t n, wait;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (!err)
        err = parse_number(cmd, spans, 1, export->buffer_spans, "a number of spans a batch", &n);
    if (!err)
        err = parse_number(cmd, ms, 1, 60000, "a number of milliseconds a span may wait", &wait);
    if (err)
        return err;
    export->batch_spans = (int)n;
    export->batch_interval = apr_time_from_msec(wait);
    return NULL;
}

/* "5" is seconds, "500ms" milliseconds, as for httpd's own timeouts. */
static const char *parse_timeout(cmd_parms *cmd, const char *arg, long *ms)
{
    apr_interval_time_t timeout;
    if (ap_timeout_parameter_parse(arg, &timeout, "s") != APR_SUCCESS || timeout < 1000
        || timeout > apr_time_from_sec(300))
        return bad_value(cmd, arg, "a timeout from 1ms to 300 (seconds, or with a ms suffix)");
    *ms = (long)apr_time_as_msec(timeout);
    return NULL;
}

static const char *set_timeout(cmd_parms *cmd, void *mconfig, const char *connect,
                               const char *request)
{
    tg_shipper_config_t *export = &server_conf(cmd->server)->export;
    long connect_ms, request_ms;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (!err)
        err = parse_timeout(cmd, connect, &connect_ms);
    if (!err)
        err = parse_timeout(cmd, request ? request : connect, &request_ms);
    if (err)
        return err;
    export->connect_timeout_ms = connect_ms;
    export->request_timeout_ms = request_ms;
    return NULL;
}

static const char *set_statsd_packet(cmd_parms *cmd, void *mconfig, const char *arg)
{
    apr_int64_t n;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (!err)
        err = parse_number(cmd, arg, 64, 65507, "a UDP payload size in bytes", &n);
    if (!err)
        server_conf(cmd->server)->export.statsd_packet = (apr_size_t)n;
    return err;
}

static const char *add_hmac_key(cmd_parms *cmd, void *mconfig, const char *arg)
{
    server_conf_t *conf = server_conf(cmd->server);
    if (!*arg)
        return apr_psprintf(cmd->pool, "%s: a key may not be empty", cmd->cmd->name);
    if (!conf->hmac_keys)
        conf->hmac_keys = apr_array_make(cmd->pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(conf->hmac_keys, const char *) = arg;
    return NULL;
}

static const command_rec tomograph_cmds[] = {
    AP_INIT_TAKE1("TomographService", set_service, NULL, RSRC_CONF | ACCESS_CONF,
                  "Service name of the spans made here (default: the ServerName)"),
    AP_INIT_TAKE1("TomographEnable", set_dir_flag, (void *)APR_OFFSETOF(dir_conf_t, enable),
                  RSRC_CONF | ACCESS_CONF, "On to trace requests here (the default), Off not to"),
    AP_INIT_TAKE1("TomographTrustIncoming", set_dir_flag,
                  (void *)APR_OFFSETOF(dir_conf_t, trust_incoming), RSRC_CONF | ACCESS_CONF,
                  "On (the default) to continue the caller's trace, Off to start a new one here"),
    AP_INIT_TAKE1("TomographB3Join", set_dir_flag, (void *)APR_OFFSETOF(dir_conf_t, b3_join),
                  RSRC_CONF | ACCESS_CONF,
                  "On to share a B3 caller's span id (Zipkin's shared span), Off (the default) for a child span"),
    AP_INIT_TAKE1("TomographSampleRate", set_sample_rate, NULL, RSRC_CONF | ACCESS_CONF,
                  "Share of new traces recorded, from 0 to 1 (default 1)"),
    AP_INIT_TAKE1("TomographSampleLimit", set_sample_limit, NULL, RSRC_CONF,
                  "Most new traces sampled a second (default 0: no limit)"),
    AP_INIT_TAKE1("TomographResponseHeader", set_response_header_name, NULL, RSRC_CONF | ACCESS_CONF,
                  "Response header that gives the client the trace id (default Off)"),
    AP_INIT_TAKE_ARGV("TomographExtract", set_extract, NULL, RSRC_CONF,
                      "Incoming formats in the order tried (default: tracecontext b3 x-trace-info)"),
    AP_INIT_TAKE_ARGV("TomographPropagate", set_propagate, NULL, RSRC_CONF | ACCESS_CONF,
                      "Formats handed on to the app and to backends (default: tracecontext b3 "
                      "x-trace-info)"),
    AP_INIT_ITERATE("TomographRedact", add_redact, NULL, RSRC_CONF,
                    "Query parameters whose values never reach a span (default: token password "
                    "passwd secret key signature)"),
    AP_INIT_TAKE1("TomographZipkin", set_collector_url,
                  (void *)APR_OFFSETOF(tg_shipper_config_t, zipkin_url), RSRC_CONF,
                  "URL of a Zipkin v2 collector, e.g. http://127.0.0.1:9411/api/v2/spans"),
    AP_INIT_TAKE1("TomographOTLP", set_collector_url,
                  (void *)APR_OFFSETOF(tg_shipper_config_t, otlp_url), RSRC_CONF,
                  "URL of an OTLP/HTTP JSON endpoint, e.g. http://127.0.0.1:4318/v1/traces"),
    AP_INIT_TAKE2("TomographBatch", set_batch, NULL, RSRC_CONF,
                  "Most spans in one POST, and longest a span waits for it in ms (default 512 1000)"),
    AP_INIT_TAKE12("TomographTimeout", set_timeout, NULL, RSRC_CONF,
                   "Connect and request timeouts of the collectors (default 1 5; ms suffix allowed)"),
    AP_INIT_TAKE1("TomographStatsdPacket", set_statsd_packet, NULL, RSRC_CONF,
                  "Largest statsd datagram payload in bytes (default 1432)"),
    AP_INIT_TAKE1("TomographStatsd", set_statsd, NULL, RSRC_CONF,
                  "<host>:<port> of a statsd daemon (UDP)"),
    AP_INIT_TAKE1("TomographSpanFile", set_span_file, NULL, RSRC_CONF,
                  "File that gets every span as a line of Zipkin v2 JSON (relative to ServerRoot)"),
    AP_INIT_TAKE1("TomographQueueSize", set_queue_size, NULL, RSRC_CONF,
                  "Room in the shared-memory queue, in spans of 512 bytes (default 4096)"),
    AP_INIT_ITERATE("TomographHMACKey", add_hmac_key, NULL, RSRC_CONF,
                    "Keys that sign X-Trace-Info (osprofiler's hmac_keys); when set, unsigned ones are ignored"),
    {NULL}
};

/* ------------------------------------------------------------------------ */
/* Logging from the core */

static void log_to_error_log(tg_log_level_t level, apr_status_t rv, const char *message)
{
    ap_log_error(APLOG_MARK, (int)level, rv, ap_server_conf, "%s", message);
}

/* ------------------------------------------------------------------------ */
/* Shared memory */

static retained_t *retained_data(server_rec *s)
{
    void *data = NULL;
    apr_pool_userdata_get(&data, RETAINED_KEY, s->process->pool);
    if (!data) {
        data = apr_pcalloc(s->process->pool, sizeof(retained_t));
        apr_pool_userdata_set(data, RETAINED_KEY, apr_pool_cleanup_null, s->process->pool);
    }
    return data;
}

static apr_status_t create_shared(retained_t *keep, server_rec *s, int queue_size)
{
    /* APR keeps its own header at the start of the segment, so the address
     * it gives is only 8-byte aligned: room to align to a cache line. */
    apr_size_t size = alignof(shared_t) + sizeof(shared_t) + tg_queue_footprint((uint32_t)queue_size);
    uintptr_t base;
    /* Anonymous: inherited by every process httpd forks, removed with the
     * last of them, never left behind in /dev/shm. */
    apr_status_t rv = apr_shm_create(&keep->shm, size, NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     TGLOGNO(00001) "cannot create %" APR_SIZE_T_FMT
                     " bytes of shared memory for TomographQueueSize %d",
                     size, queue_size);
        return rv;
    }
    base = (uintptr_t)apr_shm_baseaddr_get(keep->shm);
    keep->shared = (shared_t *)((base + alignof(shared_t) - 1) & ~(uintptr_t)(alignof(shared_t) - 1));
    memset(keep->shared, 0, sizeof(shared_t));
    keep->queue = tg_queue_create(keep->shared->queue, (uint32_t)queue_size);
    keep->queue_size = queue_size;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* The shipper daemon */

static volatile sig_atomic_t shipper_stop;

static void request_shipper_stop(int signum)
{
    shipper_stop = 1;
}

static apr_status_t open_span_file(apr_file_t **file, const char *path, apr_pool_t *pool)
{
    return apr_file_open(file, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_APPEND,
                         APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD, pool);
}

/* Runs in the forked child; never returns. */
static void run_shipper(shipper_daemon_t *daemon)
{
    server_rec *s = daemon->server;
    server_conf_t *conf = server_conf(s);
    tg_shipper_config_t cfg;
    tg_shipper_t *shipper;
    apr_pool_t *pool;
    apr_status_t rv;

    apr_signal(SIGHUP, request_shipper_stop);
    apr_signal(SIGTERM, request_shipper_stop);
    apr_signal(SIGINT, SIG_IGN);
    apr_signal(SIGPIPE, SIG_IGN);
    apr_signal(SIGCHLD, SIG_DFL);
    ap_close_listeners();
    apr_pool_create(&pool, s->process->pool);

    cfg = conf->export;
    /* Opened before dropping privileges, so the file may stay owned by root
     * and out of the reach of the User that runs the apps. */
    if (conf->span_file) {
        const char *path = ap_server_root_relative(pool, conf->span_file);
        rv = open_span_file(&cfg.span_file, path, pool);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         TGLOGNO(00002) "shipper: cannot open TomographSpanFile %s", path);
            _exit(SHIPPER_STARTUP_ERROR);
        }
    }
    if (ap_run_drop_privileges(pool, s) != OK) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     TGLOGNO(00003) "shipper: cannot drop privileges to User/Group");
        _exit(SHIPPER_STARTUP_ERROR);
    }
    rv = tg_shipper_create(&shipper, daemon->retained->queue, &cfg,
                           &daemon->retained->shared->shipper, pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, TGLOGNO(00004) "shipper: cannot start");
        _exit(SHIPPER_STARTUP_ERROR);
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 TGLOGNO(00005) "shipper %" APR_PID_T_FMT " started: zipkin %s, otlp %s, "
                 "statsd %s:%u, span file %s", getpid(), cfg.zipkin_url ? cfg.zipkin_url : "off",
                 cfg.otlp_url ? cfg.otlp_url : "off",
                 cfg.statsd_host ? cfg.statsd_host : "off", (unsigned)cfg.statsd_port,
                 conf->span_file ? conf->span_file : "off");
    tg_shipper_run(shipper, &shipper_stop, SHIPPER_DRAIN_BUDGET);
    apr_pool_destroy(pool);
    /* _exit, not exit: the atexit handlers and pools we inherited belong to
     * the parent (they would kill its other children). */
    _exit(0);
}

static apr_status_t start_shipper(shipper_daemon_t *daemon);

/* The spans a dead shipper held are lost: counted failed before the next. */
static void restart_shipper(shipper_daemon_t *daemon)
{
    tg_shipper_counters_write_off(&daemon->retained->shared->shipper);
    start_shipper(daemon);
}

/* httpd stops: the shipper flushes what it holds before httpd goes, or is
 * killed when it takes longer than it was given. */
static void stop_shipper_and_wait(pid_t pid)
{
    apr_time_t deadline = apr_time_now() + SHIPPER_DRAIN_BUDGET + SHIPPER_EXIT_GRACE;
    int status;
    kill(pid, SIGHUP);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (apr_time_now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return;
        }
        apr_sleep(apr_time_from_msec(10));
    }
}

static void shipper_maintenance(int reason, void *data, apr_wait_t status)
{
    shipper_daemon_t *daemon = data;
    int mpm_state, generation;
    switch (reason) {
    case APR_OC_REASON_DEATH:
        apr_proc_other_child_unregister(data);
        if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS
            && mpm_state == AP_MPMQ_STOPPING)
            break;
        if (status == SHIPPER_STARTUP_ERROR) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, daemon->server,
                         TGLOGNO(00006) "shipper could not start; spans stay queued "
                         "until it can (fix the error above and restart httpd)");
            break;
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, daemon->server,
                     TGLOGNO(00007) "shipper %" APR_PID_T_FMT " died (status %d); restarting it",
                     daemon->proc.pid, (int)status);
        restart_shipper(daemon);
        break;
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(data);
        restart_shipper(daemon);
        break;
    case APR_OC_REASON_RESTART:
        /* A stop or a hard restart (ap_reclaim_child_processes). */
        apr_proc_other_child_unregister(data);
        stop_shipper_and_wait(daemon->proc.pid);
        break;
    case APR_OC_REASON_UNREGISTER:
        /* A graceful restart clears this generation's pool.  The old shipper
         * drains while the new one starts (the queue takes two readers), so
         * the parent does not wait for it: the MPM reaps it, as an extra
         * process of the old generation, and kills it if httpd stops first. */
        kill(daemon->proc.pid, SIGHUP);
        if (ap_mpm_query(AP_MPMQ_GENERATION, &generation) == APR_SUCCESS)
            ap_register_extra_mpm_process(daemon->proc.pid, (ap_generation_t)generation);
        break;
    }
}

static apr_status_t start_shipper(shipper_daemon_t *daemon)
{
    apr_status_t rv = apr_proc_fork(&daemon->proc, daemon->pool);
    if (rv == APR_INCHILD) {
#ifdef __linux__
        /* Should the parent die without a word, so does the shipper. */
        prctl(PR_SET_PDEATHSIG, SIGHUP);
#endif
        run_shipper(daemon);
    }
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, daemon->server,
                     TGLOGNO(00008) "cannot fork the shipper");
        return rv;
    }
    apr_proc_other_child_register(&daemon->proc, shipper_maintenance, daemon, NULL, daemon->pool);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Start-up */

/* Whether a directive names one of our environment variables (LogFormat,
 * ErrorLogFormat, Header, RewriteCond, <If>...).  Case does not matter to
 * the environment's table, so it does not here. */
static int names_our_environment(const ap_directive_t *directive)
{
    for (; directive; directive = directive->next) {
        if (directive->args
            && (ap_strcasestr(directive->args, ENV_TRACE_ID)
                || ap_strcasestr(directive->args, ENV_SPAN_ID)))
            return 1;
        if (names_our_environment(directive->first_child))
            return 1;
    }
    return 0;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_conf_t *conf = server_conf(s);
    shipper_daemon_t *daemon;
    server_rec *vhost;

    tg_log_set_sink(log_to_error_log);
    environment_named = names_our_environment(ap_conftree);
    for (vhost = s; vhost; vhost = vhost->next) {
        server_conf_t *vconf = server_conf(vhost);
        vconf->default_service = apr_pstrdup(pconf, vhost->server_hostname ? vhost->server_hostname
                                                                           : "httpd");
        ap_str_tolower((char *)vconf->default_service);
        if (!vconf->redact) {
            static const char *const defaults[] = {TG_REDACT_DEFAULT_PARAMS};
            size_t i;
            vconf->redact = apr_array_make(pconf, 8, sizeof(const char *));
            for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
                APR_ARRAY_PUSH(vconf->redact, const char *) = defaults[i];
        }
    }
    /* The first pass only checks the configuration; the process that runs
     * it is about to be replaced by the daemonized httpd. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;

    retained = retained_data(s);
    if (!retained->shared) {
        if (create_shared(retained, s, conf->queue_size) != APR_SUCCESS)
            return HTTP_INTERNAL_SERVER_ERROR;
    }
    else if (retained->queue_size != conf->queue_size) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     TGLOGNO(00009) "TomographQueueSize %d takes effect at the next full "
                     "restart; the queue keeps %d spans until then",
                     conf->queue_size, retained->queue_size);
    }
    if (!conf->export.zipkin_url && !conf->export.otlp_url && !conf->export.statsd_host
        && !conf->span_file)
        conf->span_file = DEFAULT_SPAN_FILE;
    daemon = apr_pcalloc(pconf, sizeof(*daemon));
    daemon->pool = pconf;
    daemon->server = s;
    daemon->retained = retained;
    if (start_shipper(daemon) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    return OK;
}

/* ------------------------------------------------------------------------ */
/* Requests */

/* What the module keeps for a client's request, on the original
 * request_rec; internal redirects and subrequests reach it from theirs. */
typedef struct {
    tg_span_t server;
    tg_span_t *client;             /* the call mod_proxy is making, if any */
    const char *tracestate;        /* the trusted caller's, handed on unchanged */
    const char *first_uri;         /* r->uri when the trace began */
    int have_hex;                  /* the ids below are written (when first asked for) */
    char trace_hex[TG_TRACE_ID_HEX_LEN + 1];
    char span_hex[TG_SPAN_ID_HEX_LEN + 1];
} request_trace_t;

static request_rec *original_request(const request_rec *r)
{
    for (;;) {
        if (r->main)
            r = r->main;
        else if (r->prev)
            r = r->prev;
        else
            return (request_rec *)r;
    }
}

static request_trace_t *find_trace(const request_rec *r)
{
    return ap_get_module_config(original_request(r)->request_config, &tomograph_module);
}

static dir_conf_t *dir_conf(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &tomograph_module);
}

static int tracing_enabled(const request_rec *r)
{
    return dir_conf(r)->enable != 0;
}

static void set_endpoint(tg_endpoint_t *endpoint, const char *ip, int ipv6, apr_port_t port)
{
    if (ipv6)
        endpoint->ipv6 = ip;
    else
        endpoint->ipv4 = ip;
    endpoint->port = port;
}

/* ip is the text form of addr (which may be NULL): its family says which
 * an address is without reading the text. */
static void set_endpoint_of(tg_endpoint_t *endpoint, const char *ip, const apr_sockaddr_t *addr)
{
    set_endpoint(endpoint, ip, addr && addr->family == APR_INET6, addr ? addr->port : 0);
}

static int decide_sampled(const tg_context_t *caller, int trusted, const dir_conf_t *dconf,
                          const server_conf_t *sconf)
{
    tg_sampler_t sampler;
    sampler.rate = dconf->sample_rate >= 0 ? dconf->sample_rate : 1.0;
    /* No cap, nothing to count. */
    sampler.limit = sconf->sample_limit ? &retained->shared->sample_limit : NULL;
    sampler.limit_per_second = (uint64_t)sconf->sample_limit;
    /* The coin and the clock only when the rate and the cap need them. */
    return tg_sampling_decide(&sampler, caller, trusted,
                              sampler.rate < 1.0 ? tg_random_span_id() : 0,
                              sampler.limit_per_second ? apr_time_now() : 0);
}

/* The ids in hex, written the first time something shows them: most
 * requests (a static file) never do. */
static const request_trace_t *with_hex(request_trace_t *trace)
{
    if (!trace->have_hex) {
        tg_trace_id_to_hex(trace->server.trace_id, trace->trace_hex);
        tg_u64_to_hex(trace->server.id, trace->span_hex);
        trace->have_hex = 1;
    }
    return trace;
}

static void set_response_header(request_rec *r, request_trace_t *trace)
{
    const char *name = dir_conf(r)->response_header;
    if (name && *name)
        apr_table_setn(r->err_headers_out, name, with_hex(trace)->trace_hex);
}

/* "tracecontext b3" for a set of formats. */
static const char *formats_named(apr_pool_t *pool, tg_format_set_t formats)
{
    const char *names = NULL;
    tg_format_t format;
    for (format = TG_FORMAT_TRACECONTEXT; format <= TG_FORMAT_X_TRACE_INFO; format++)
        if (formats & TG_FORMAT_BIT(format))
            names = names ? apr_pstrcat(pool, names, " ", tg_format_name(format), NULL)
                          : tg_format_name(format);
    return names;
}

/* Opens the trace of root, r's client request (see ensure_trace); out of
 * line, so that the hooks that find the trace made pay for none of it. */
static __attribute__((noinline)) request_trace_t *start_trace(request_rec *r, request_rec *root)
{
    const server_conf_t *sconf = server_conf(root->server);
    const dir_conf_t *dconf = dir_conf(r);
    int trusted = dconf->trust_incoming != 0;
    request_trace_t *trace;
    tg_context_t caller;
    tg_span_t *span;
    int looked, continued;

    /* tg_span_init fills the span, the larger part. */
    trace = apr_palloc(root->pool, sizeof(*trace));
    trace->client = NULL;
    trace->tracestate = NULL;
    trace->have_hex = 0;
    span = &trace->server;
    /* Most requests carry no trace header: one look at the names first. */
    looked = tg_header_table_may_carry_context(root->headers_in);
    continued = looked
                && tg_extract_in_order(tg_header_table_get, root->headers_in, sconf->extract_order,
                                       sconf->hmac_keys, root->pool, &caller)
                       == APR_SUCCESS;
    /* Named after its request; r's strings live as long as the span. */
    tg_span_init(span, root->pool, TG_SPAN_SERVER, NULL, continued && trusted ? &caller : NULL,
                 root->request_time);
    span->method = root->method;
    span->path = root->parsed_uri.path ? root->parsed_uri.path : root->uri;
    if (continued && trusted) {
        if (dconf->b3_join == 1
            && (caller.format == TG_FORMAT_B3 || caller.format == TG_FORMAT_B3_MULTI)) {
            span->id = caller.span_id;
            span->parent_id = caller.parent_id;
            span->shared = 1;
        }
        trace->tracestate = caller.tracestate;
        if (caller.agreeing & (caller.agreeing - 1))
            tg_span_tag(span, "tomograph.formats", formats_named(root->pool, caller.agreeing));
    }
    else if (continued) {
        char hex[TG_TRACE_ID_HEX_LEN + 1];
        tg_trace_id_to_hex(caller.trace_id, hex);
        tg_span_tag(span, "tomograph.untrusted.trace_id", hex);
        tg_u64_to_hex(caller.span_id, hex);
        tg_span_tag(span, "tomograph.untrusted.span_id", hex);
    }
    span->sampled = decide_sampled(looked ? &caller : NULL, trusted, dconf, sconf);
    set_endpoint_of(&span->local, root->connection->local_ip, root->connection->local_addr);
    set_endpoint_of(&span->remote, root->useragent_ip, root->useragent_addr);
    trace->first_uri = root->uri;
    ap_set_module_config(root->request_config, &tomograph_module, trace);
    return trace;
}

/* The trace of r's client request, made the first time it is asked for,
 * once per-directory settings are known (header_parser at the latest; a
 * request refused earlier gets its span when it is logged).  Every hook
 * asks: the lookup stays small, the making apart. */
static request_trace_t *ensure_trace(request_rec *r)
{
    request_rec *root = original_request(r);
    request_trace_t *trace = ap_get_module_config(root->request_config, &tomograph_module);
    if (trace || !retained)
        return trace;
    return start_trace(r, root);
}

static void annotate_uri(request_rec *r, const char *what)
{
    request_trace_t *trace = ensure_trace(r);
    if (trace)
        tg_span_annotate(&trace->server, apr_time_now(), apr_pstrcat(r->pool, what, " ", r->uri, NULL));
}

/* The trace's ids in r's environment, by `put`: apr_table_addn where r's
 * environment cannot have them yet, which spares a search. */
static void give_ids_to_environment(request_rec *r, request_trace_t *trace,
                                    void (*put)(apr_table_t *, const char *, const char *))
{
    put(r->subprocess_env, ENV_TRACE_ID, with_hex(trace)->trace_hex);
    put(r->subprocess_env, ENV_SPAN_ID, trace->span_hex);
}

/* Runs for the client's request and for each internal redirect (httpd
 * runs header_parser for no subrequest), once per-directory settings are
 * known.  Gives the trace's ids to the logs (%{TOMOGRAPH_TRACE_ID}e) when
 * the configuration reads them, and the client its response header. */
static int decide_trace(request_rec *r)
{
    request_trace_t *trace;
    if (r->prev)
        annotate_uri(r, "internal redirect to");
    trace = ensure_trace(r);
    if (!trace || !tracing_enabled(r))
        return DECLINED;
    /* Set again after each internal redirect, which renames them REDIRECT_*:
     * this request's environment never has them yet. */
    if (environment_named)
        give_ids_to_environment(r, trace, apr_table_addn);
    set_response_header(r, trace);
    return DECLINED;
}

static const char *signing_key(const request_rec *r)
{
    const apr_array_header_t *keys = server_conf(r->server)->hmac_keys;
    return keys ? APR_ARRAY_IDX(keys, 0, const char *) : NULL;
}

static void hand_on_context(request_rec *r, const request_trace_t *trace, const tg_span_t *span)
{
    const dir_conf_t *dconf = dir_conf(r);
    tg_context_t ctx;
    tg_span_context(span, &ctx);
    ctx.tracestate = trace->tracestate;
    tg_inject_into_table(r->headers_in, &ctx,
                         dconf->propagate ? dconf->propagate : TG_FORMATS_PROPAGATE_DEFAULT,
                         signing_key(r), r->pool);
}

/* Whether what serves r reads the trace from its request headers: an app
 * (mod_wsgi, CGI...) or a backend does, the static file handler does not, and
 * writing the headers costs more than all the rest of a span.  With no
 * handler configured, ap_invoke_handler names r's content type (text/html):
 * the file is sent as it is; content types named application/x-httpd-* are
 * the old way to configure one (PHP). */
static int handler_reads_context(const request_rec *r)
{
    const char *handler = r->handler;
    if (r->proxyreq)
        return 1;
    if (!handler)
        return 0;
    /* A content type: the common case, settled by its first letter.  With no
     * parameters, ap_invoke_handler hands on r's content type itself. */
    if (handler == r->content_type || ap_strchr_c(handler, '/'))
        return handler[0] == 'a' && strncmp(handler, "application/x-httpd-", 20) == 0;
    return strcmp(handler, "default-handler") != 0;
}

/* Runs first among handlers, when what serves r is known for sure.  Hands
 * the server span on in the headers to whatever reads them, and notes what
 * serves r when it is not what was asked for: a subrequest that is run (not a
 * mere lookup: mod_wsgi looks one up for PATH_TRANSLATED on every request),
 * or the file DirectoryIndex put in place without a redirect request. */
static int hand_on_span(request_rec *r)
{
    request_trace_t *trace = ensure_trace(r);
    if (!trace || !tracing_enabled(r))
        return DECLINED;
    if (r->main)
        annotate_uri(r, "subrequest");
    else if (!r->prev && r->uri != trace->first_uri && strcmp(r->uri, trace->first_uri) != 0)
        annotate_uri(r, "internal redirect to");
    if (handler_reads_context(r)) {
        hand_on_context(r, trace, &trace->server);
        /* Only a subrequest's environment may hold them already: it is a copy
         * of its parent's.  An internal redirect's renames them REDIRECT_*. */
        if (!environment_named)
            give_ids_to_environment(r, trace, r->main ? apr_table_setn : apr_table_addn);
    }
    return DECLINED;
}

static void insert_error_filter(request_rec *r)
{
    request_trace_t *trace = ensure_trace(r);
    if (trace)
        set_response_header(r, trace);
}

static const char *service_name(const request_rec *r)
{
    const char *service = dir_conf(r)->service;
    return service ? service : server_conf(r->server)->default_service;
}

static void enqueue(const tg_span_t *span)
{
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    atomic_fetch_add_explicit(&retained->shared->spans_created, 1, memory_order_relaxed);
    /* A full queue drops the span; the queue counts it. */
    tg_queue_push(retained->queue, record, tg_record_encode(span, record, sizeof(record)));
}

static void mark_error(tg_span_t *span, const char *reason)
{
    span->error = 1;
    tg_span_tag(span, "error", reason);
}

static void finish_span(tg_span_t *span, const request_rec *r)
{
    span->local.service_name = service_name(r);
    tg_span_finish(span, apr_time_now());
    if (span->sampled && tracing_enabled(r))
        enqueue(span);
}

static const char *redact(request_rec *r, const char *text);

/* ---- mod_proxy: a CLIENT span for each call to a backend ---- */

/* r->headers_in is here the copy that mod_proxy is about to send. */
static int start_client_span(request_rec *r)
{
    request_trace_t *trace = ensure_trace(r);
    const char *url;
    apr_uri_t uri;
    tg_context_t parent;
    tg_span_t *client;

    if (!trace || !tracing_enabled(r))
        return OK;
    if (trace->client && !trace->client->finished) {
        /* A balancer fails over: the last try ended without an answer. */
        mark_error(trace->client, "retried on another backend");
        finish_span(trace->client, r);
    }
    url = r->filename && strncmp(r->filename, "proxy:", 6) == 0 ? r->filename + 6 : r->uri;
    if (apr_uri_parse(r->pool, url, &uri) != APR_SUCCESS)
        memset(&uri, 0, sizeof(uri));
    tg_span_context(&trace->server, &parent);
    /* In the client request's pool, its strings copied there: r may be a
     * subrequest, gone before the end. */
    client = tg_span_start(original_request(r)->pool, TG_SPAN_CLIENT, NULL, &parent, apr_time_now());
    client->sampled = trace->server.sampled;
    client->local = trace->server.local;
    tg_span_tag(client, TG_TAG_HTTP_METHOD, r->method);
    tg_span_tag(client, TG_TAG_HTTP_PATH, uri.path ? uri.path : "/");
    if (uri.hostname) {
        tg_span_tag(client, "http.url",
                    apr_psprintf(r->pool, "%s://%s:%u%s", uri.scheme ? uri.scheme : "http",
                                 uri.hostname, (unsigned)(uri.port ? uri.port
                                                          : apr_uri_port_of_scheme(uri.scheme)),
                                 uri.path ? uri.path : "/"));
        if (apr_isdigit(*uri.hostname) || ap_strchr_c(uri.hostname, ':'))
            set_endpoint(&client->remote, uri.hostname, ap_strchr_c(uri.hostname, ':') != NULL,
                         uri.port);
        else
            tg_span_tag(client, "peer.hostname", uri.hostname);
    }
    hand_on_context(r, trace, client);
    trace->client = client;
    return OK;
}

static int finish_client_span(int *status, request_rec *r)
{
    request_trace_t *trace = find_trace(r);
    tg_span_t *client = trace ? trace->client : NULL;
    const char *backend_status;

    if (!client || client->finished)
        return DECLINED;
    backend_status = apr_table_get(r->notes, "proxy-status");
    if (backend_status)
        tg_span_tag(client, TG_TAG_HTTP_STATUS, backend_status);
    if (*status != OK && *status != DONE) {
        /* mod_proxy leaves error-notes for some failures only; a refused or
         * timed-out connection gets none, and no backend status either. */
        const char *reason = apr_table_get(r->notes, "error-notes");
        const char *status_line = ap_get_status_line(*status);
        mark_error(client, reason ? redact(r, reason)
                           : backend_status ? status_line
                           : apr_pstrcat(r->pool, "no answer from the backend: ", status_line,
                                         NULL));
    }
    else if (backend_status && atoi(backend_status) >= 500) {
        mark_error(client, backend_status);
    }
    finish_span(client, r);
    return DECLINED;
}

/* ---- the end of the request ---- */

static int finish_server_span(request_rec *r)
{
    const request_rec *last;
    request_trace_t *trace;
    tg_span_t *span;

    r = original_request(r);
    for (last = r; last->next; last = last->next)
        ;
    /* A request refused before header_parser gets its span here. */
    trace = ensure_trace((request_rec *)last);
    if (!trace || trace->server.finished)
        return DECLINED;
    span = &trace->server;
    if (trace->client && !trace->client->finished) {
        mark_error(trace->client, "no answer from the backend");
        finish_span(trace->client, last);
    }
    span->status_code = last->status;
    if (last->status >= 500)
        mark_error(span, apr_itoa(r->pool, last->status));
    finish_span(span, last);
    return DECLINED;
}

/* ---- error-log lines as notes ---- */

typedef struct {
    apr_array_header_t *secrets;
    apr_pool_t *pool;
} secret_sink_t;

static int collect_secret(void *data, const char *name, const char *value)
{
    secret_sink_t *sink = data;
    tg_redact_add_header_secret(sink->secrets, sink->pool, value);
    return 1;
}

/* text without the credentials the request carries or its response sets,
 * nor the values of the query parameters TomographRedact names.  Looked up
 * at each call, so that a cookie set late is known too (a span takes few
 * notes). */
static const char *redact(request_rec *r, const char *text)
{
    secret_sink_t sink;
    sink.pool = r->pool;
    sink.secrets = apr_array_make(r->pool, 4, sizeof(const char *));
    apr_table_do(collect_secret, &sink, r->headers_in, "Authorization", "Cookie",
                 "X-Auth-Token", "X-Subject-Token", NULL);
    apr_table_do(collect_secret, &sink, r->headers_out, "Set-Cookie", NULL);
    apr_table_do(collect_secret, &sink, r->err_headers_out, "Set-Cookie", NULL);
    return tg_redact(r->pool, text, server_conf(r->server)->redact, sink.secrets);
}

/* The seed's "handler for ERROR-level logging": a line the request writes
 * at level error or worse becomes a note on its span. */
static void note_error_log(const ap_errorlog_info *info, const char *message)
{
    static _Thread_local int noting;
    request_trace_t *trace;
    request_rec *r;

    if (noting || !info->r || info->level < 0 || info->level > APLOG_ERR || !retained)
        return;
    r = (request_rec *)info->r;
    trace = find_trace(r);
    if (!trace || trace->server.finished || !trace->server.sampled
        || (trace->server.annotations
            && trace->server.annotations->nelts >= TG_SPAN_MAX_NOTES_BETWEEN)) {
        if (trace)
            trace->server.dropped++;
        return;
    }
    noting = 1; /* anything logged from here on must not come back in */
    tg_span_annotate(&trace->server, apr_time_now(),
                     redact(r, apr_pstrcat(r->pool, "error: ", message, NULL)));
    noting = 0;
}

/* ------------------------------------------------------------------------ */
/* mod_status */

/* The ?auto keys read TomographSpansCreated, TomographZipkinSent...; the
 * accounting they show: created = queued + dropped by the queue; and for
 * each exporter, taken = sent + failed + dropped + in flight. */
static int status_hook(request_rec *r, int flags)
{
    static const char *const names[] = {"Zipkin", "OTLP", "Statsd", "File"};
    const tg_export_counters_t *exporters[4];
    tg_queue_stats_t queue;
    uint64_t created, lost, undecodable;
    int i;

    if (!retained || !retained->shared)
        return OK;
    exporters[0] = &retained->shared->shipper.zipkin;
    exporters[1] = &retained->shared->shipper.otlp;
    exporters[2] = &retained->shared->shipper.statsd;
    exporters[3] = &retained->shared->shipper.file;
    tg_queue_stats(retained->queue, &queue);
    created = atomic_load(&retained->shared->spans_created);
    undecodable = atomic_load(&retained->shared->shipper.undecodable);
    lost = queue.dropped_full + queue.dropped_oversize + queue.abandoned + queue.skipped_stale;
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "TomographSpansCreated: %" APR_UINT64_T_FMT "\n"
                      "TomographSpansQueued: %" APR_UINT64_T_FMT "\n"
                      "TomographSpansDropped: %" APR_UINT64_T_FMT "\n"
                      "TomographQueueDepth: %" APR_UINT64_T_FMT "\n"
                      "TomographQueueUsedBytes: %" APR_UINT64_T_FMT "\n"
                      "TomographSpansUndecodable: %" APR_UINT64_T_FMT "\n",
                   created, queue.pushed, lost, queue.depth, queue.used_bytes, undecodable);
        for (i = 0; i < 4; i++)
            ap_rprintf(r, "Tomograph%sTaken: %" APR_UINT64_T_FMT "\n"
                          "Tomograph%sSent: %" APR_UINT64_T_FMT "\n"
                          "Tomograph%sFailed: %" APR_UINT64_T_FMT "\n"
                          "Tomograph%sDropped: %" APR_UINT64_T_FMT "\n"
                          "Tomograph%sInFlight: %" APR_UINT64_T_FMT "\n",
                       names[i], (uint64_t)atomic_load(&exporters[i]->taken),
                       names[i], (uint64_t)atomic_load(&exporters[i]->sent),
                       names[i], (uint64_t)atomic_load(&exporters[i]->failed),
                       names[i], (uint64_t)atomic_load(&exporters[i]->dropped),
                       names[i], (uint64_t)atomic_load(&exporters[i]->in_flight));
        return OK;
    }
    ap_rprintf(r, "<hr>\n<h2>Tomograph</h2>\n<p>spans created %" APR_UINT64_T_FMT
                  ", queued %" APR_UINT64_T_FMT ", dropped by the queue %" APR_UINT64_T_FMT
                  ", in the queue %" APR_UINT64_T_FMT " (%" APR_UINT64_T_FMT " bytes)"
                  ", undecodable %" APR_UINT64_T_FMT "</p>\n"
                  "<table><tr><th>exporter</th><th>taken</th><th>sent</th><th>failed</th>"
                  "<th>dropped</th><th>in flight</th></tr>\n",
               created, queue.pushed, lost, queue.depth, queue.used_bytes, undecodable);
    for (i = 0; i < 4; i++)
        ap_rprintf(r, "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                      "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td><td>%"
                      APR_UINT64_T_FMT "</td></tr>\n",
                   names[i], (uint64_t)atomic_load(&exporters[i]->taken),
                   (uint64_t)atomic_load(&exporters[i]->sent),
                   (uint64_t)atomic_load(&exporters[i]->failed),
                   (uint64_t)atomic_load(&exporters[i]->dropped),
                   (uint64_t)atomic_load(&exporters[i]->in_flight));
    ap_rputs("</table>\n", r);
    return OK;
}

/* ------------------------------------------------------------------------ */

static void register_hooks(apr_pool_t *p)
{
    /* Before mod_wsgi forks its daemons, so that they inherit the queue. */
    static const char *const before_wsgi[] = {"mod_wsgi.c", NULL};
    ap_hook_post_config(post_config, NULL, before_wsgi, APR_HOOK_REALLY_FIRST);
    ap_hook_header_parser(decide_trace, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(hand_on_span, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_insert_error_filter(insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(finish_server_span, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_error_log(note_error_log, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(proxy, fixups, start_client_span, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(proxy, request_status, finish_client_span, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(tomograph) = {
    STANDARD20_MODULE_STUFF,
    create_dir_conf,
    merge_dir_conf,
    create_server_conf,
    merge_server_conf,
    tomograph_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
