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
#include "mod_status.h"

#include <apr_lib.h>
#include <apr_optional.h>
#include <apr_shm.h>
#include <apr_signal.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "tg_ids.h"
#include "tg_log.h"
#include "tg_propagation.h"
#include "tg_queue.h"
#include "tg_record.h"
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
/* The daemon exits with this when it cannot start at all (bad span file,
 * cannot drop privileges): restarting it would only loop, as in mod_cgid. */
#define SHIPPER_STARTUP_ERROR 254
/* How long the shipper may take to flush on restart or stop: less than the
 * 3 s after which APR_KILL_AFTER_TIMEOUT sends SIGKILL. */
#define SHIPPER_DRAIN_BUDGET (2 * APR_USEC_PER_SEC)

typedef struct {
    /* Instance-wide (main server only, GLOBAL_ONLY). */
    const char *zipkin_url;
    const char *statsd_host;
    apr_port_t statsd_port;
    const char *span_file;
    int queue_size;
    /* Per virtual host. */
    apr_array_header_t *hmac_keys; /* const char *; NULL when unset here */
    const char *default_service;   /* ServerName, lowercased, set in post_config */
} server_conf_t;

typedef struct {
    int enable; /* -1 unset */
    const char *service;
} dir_conf_t;

/* The shared segment: counters first, then the queue.  It is made once per
 * httpd instance and kept across restarts (the scoreboard's model), so spans
 * that old children finish after a graceful restart reach the new shipper. */
typedef struct {
    _Atomic uint64_t spans_created;
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

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    server_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->queue_size = DEFAULT_QUEUE_SIZE;
    return conf;
}

static void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    server_conf_t *base = basev, *add = addv;
    server_conf_t *conf = apr_pmemdup(p, add, sizeof(*conf));
    conf->hmac_keys = add->hmac_keys ? add->hmac_keys : base->hmac_keys;
    return conf;
}

static void *create_dir_conf(apr_pool_t *p, char *dir)
{
    dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->enable = -1;
    return conf;
}

static void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    dir_conf_t *base = basev, *add = addv;
    dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->enable = add->enable != -1 ? add->enable : base->enable;
    conf->service = add->service ? add->service : base->service;
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

/* TAKE1 rather than FLAG, so that a bad value is named in the error. */
static const char *set_enable(cmd_parms *cmd, void *mconfig, const char *arg)
{
    if (strcasecmp(arg, "on") != 0 && strcasecmp(arg, "off") != 0)
        return bad_value(cmd, arg, "On or Off");
    ((dir_conf_t *)mconfig)->enable = strcasecmp(arg, "on") == 0;
    return NULL;
}

static const char *set_zipkin(cmd_parms *cmd, void *mconfig, const char *arg)
{
    apr_uri_t uri;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname
        || (strcasecmp(uri.scheme, "http") != 0 && strcasecmp(uri.scheme, "https") != 0)
        || has_control_bytes(arg))
        return bad_value(cmd, arg, "an http:// or https:// URL of a Zipkin v2 endpoint");
    server_conf(cmd->server)->zipkin_url = arg;
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
    conf->statsd_host = host;
    conf->statsd_port = port;
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

static const char *set_queue_size(cmd_parms *cmd, void *mconfig, const char *arg)
{
    char *end;
    apr_int64_t n;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    n = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || n < MIN_QUEUE_SIZE || n > MAX_QUEUE_SIZE)
        return bad_value(cmd, arg,
                         apr_psprintf(cmd->pool, "a number of spans from %d to %d",
                                      MIN_QUEUE_SIZE, MAX_QUEUE_SIZE));
    server_conf(cmd->server)->queue_size = (int)n;
    return NULL;
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
    AP_INIT_TAKE1("TomographEnable", set_enable, NULL, RSRC_CONF | ACCESS_CONF,
                 "On to trace requests here (the default), Off not to"),
    AP_INIT_TAKE1("TomographZipkin", set_zipkin, NULL, RSRC_CONF,
                  "URL of a Zipkin v2 collector, e.g. http://127.0.0.1:9411/api/v2/spans"),
    AP_INIT_TAKE1("TomographStatsd", set_statsd, NULL, RSRC_CONF,
                  "<host>:<port> of a statsd daemon (UDP)"),
    AP_INIT_TAKE1("TomographSpanFile", set_span_file, NULL, RSRC_CONF,
                  "File that gets every span as a line of Zipkin v2 JSON (relative to ServerRoot)"),
    AP_INIT_TAKE1("TomographQueueSize", set_queue_size, NULL, RSRC_CONF,
                  "Spans the shared-memory queue holds (default 4096)"),
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
    apr_size_t size = sizeof(shared_t) + tg_queue_footprint((uint32_t)queue_size);
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
    keep->shared = apr_shm_baseaddr_get(keep->shm);
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

    tg_shipper_config_defaults(&cfg);
    cfg.zipkin_url = conf->zipkin_url;
    cfg.statsd_host = conf->statsd_host;
    cfg.statsd_port = conf->statsd_port;
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
                 TGLOGNO(00005) "shipper %" APR_PID_T_FMT " started: zipkin %s, statsd %s:%u, "
                 "span file %s", getpid(), cfg.zipkin_url ? cfg.zipkin_url : "off",
                 cfg.statsd_host ? cfg.statsd_host : "off", (unsigned)cfg.statsd_port,
                 conf->span_file ? conf->span_file : "off");
    tg_shipper_run(shipper, &shipper_stop, SHIPPER_DRAIN_BUDGET);
    apr_pool_destroy(pool);
    /* _exit, not exit: the atexit handlers and pools we inherited belong to
     * the parent (they would kill its other children). */
    _exit(0);
}

static apr_status_t start_shipper(shipper_daemon_t *daemon);

static void shipper_maintenance(int reason, void *data, apr_wait_t status)
{
    shipper_daemon_t *daemon = data;
    int mpm_state;
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
        start_shipper(daemon);
        break;
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(data);
        start_shipper(daemon);
        break;
    case APR_OC_REASON_RESTART:
        apr_proc_other_child_unregister(data);
        break;
    case APR_OC_REASON_UNREGISTER:
        /* This generation ends: let the shipper flush and exit.  The note
         * taken by start_shipper kills it if it has not within 3 s. */
        kill(daemon->proc.pid, SIGHUP);
        break;
    }
}

static apr_status_t start_shipper(shipper_daemon_t *daemon)
{
    apr_status_t rv = apr_proc_fork(&daemon->proc, daemon->pool);
    if (rv == APR_INCHILD)
        run_shipper(daemon);
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, daemon->server,
                     TGLOGNO(00008) "cannot fork the shipper");
        return rv;
    }
    apr_pool_note_subprocess(daemon->pool, &daemon->proc, APR_KILL_AFTER_TIMEOUT);
    apr_proc_other_child_register(&daemon->proc, shipper_maintenance, daemon, NULL, daemon->pool);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Start-up */

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_conf_t *conf = server_conf(s);
    shipper_daemon_t *daemon;
    server_rec *vhost;

    tg_log_set_sink(log_to_error_log);
    for (vhost = s; vhost; vhost = vhost->next) {
        server_conf_t *vconf = server_conf(vhost);
        vconf->default_service = apr_pstrdup(pconf, vhost->server_hostname ? vhost->server_hostname
                                                                           : "httpd");
        ap_str_tolower((char *)vconf->default_service);
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
    if (!conf->zipkin_url && !conf->statsd_host && !conf->span_file)
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

/* The span of the client's request, reached from any internal redirect
 * (r->prev) or subrequest (r->main) made while serving it. */
static tg_span_t *request_span(const request_rec *r)
{
    for (;;) {
        if (r->main)
            r = r->main;
        else if (r->prev)
            r = r->prev;
        else
            break;
    }
    return ap_get_module_config(r->request_config, &tomograph_module);
}

static int tracing_enabled(const request_rec *r)
{
    dir_conf_t *conf = ap_get_module_config(r->per_dir_config, &tomograph_module);
    return conf->enable != 0;
}

static const char *header_get(void *store, const char *name)
{
    return apr_table_get(store, name);
}

static void header_set(void *store, const char *name, const char *value)
{
    if (value)
        apr_table_set(store, name, value);
    else
        apr_table_unset(store, name);
}

static void set_endpoint(tg_endpoint_t *endpoint, const char *ip, const apr_sockaddr_t *addr)
{
    if (ip && ap_strchr_c(ip, ':'))
        endpoint->ipv6 = ip;
    else
        endpoint->ipv4 = ip;
    endpoint->port = addr ? addr->port : 0;
}

static int start_server_span(request_rec *r)
{
    server_conf_t *conf;
    tg_context_t caller;
    tg_span_t *span;
    const char *path;
    char *name;
    int continued;

    if (r->prev || r->main || !retained)
        return DECLINED;
    conf = server_conf(r->server);
    continued = tg_extract(header_get, r->headers_in, conf->hmac_keys, r->pool, &caller)
                == APR_SUCCESS;
    path = r->parsed_uri.path ? r->parsed_uri.path : r->uri;
    name = apr_pstrcat(r->pool, r->method, " ", path, NULL);
    ap_str_tolower(name);
    span = tg_span_start(r->pool, TG_SPAN_SERVER, name, continued ? &caller : NULL,
                         r->request_time);
    tg_span_tag(span, "http.method", r->method);
    tg_span_tag(span, "http.path", path);
    set_endpoint(&span->local, r->connection->local_ip, r->connection->local_addr);
    set_endpoint(&span->remote, r->useragent_ip, r->useragent_addr);
    ap_set_module_config(r->request_config, &tomograph_module, span);
    return DECLINED;
}

/* Hands the server span on to whatever serves the request: mod_wsgi's app
 * reads it from its environ, mod_proxy's backend from the headers. */
static int hand_on_span(request_rec *r)
{
    tg_span_t *span = request_span(r);
    server_conf_t *conf;
    tg_context_t ctx;
    char trace_hex[TG_TRACE_ID_HEX_LEN + 1], span_hex[TG_SPAN_ID_HEX_LEN + 1];

    if (!span || r->main || !tracing_enabled(r))
        return DECLINED;
    conf = server_conf(r->server);
    tg_span_context(span, &ctx);
    tg_inject(header_set, r->headers_in, &ctx,
              conf->hmac_keys ? APR_ARRAY_IDX(conf->hmac_keys, 0, const char *) : NULL, r->pool);
    tg_trace_id_to_hex(span->trace_id, trace_hex);
    tg_u64_to_hex(span->id, span_hex);
    /* Set again after each internal redirect, which renames them REDIRECT_*. */
    apr_table_set(r->subprocess_env, ENV_TRACE_ID, trace_hex);
    apr_table_set(r->subprocess_env, ENV_SPAN_ID, span_hex);
    return DECLINED;
}

static void enqueue(tg_span_t *span)
{
    tg_queue_reservation_t reservation;
    atomic_fetch_add_explicit(&retained->shared->spans_created, 1, memory_order_relaxed);
    if (tg_queue_reserve(retained->queue, &reservation) != APR_SUCCESS)
        return; /* full: counted by the queue */
    tg_queue_commit(&reservation, tg_record_encode(span, reservation.data, TG_QUEUE_SLOT_BYTES));
}

static int finish_server_span(request_rec *r)
{
    const request_rec *last = r;
    tg_span_t *span;
    dir_conf_t *dconf;
    server_conf_t *conf;

    while (r->prev)
        r = r->prev;
    span = ap_get_module_config(r->request_config, &tomograph_module);
    if (!span || span->finished)
        return DECLINED;
    for (last = r; last->next; last = last->next)
        ;
    if (!tracing_enabled(last))
        return DECLINED;
    dconf = ap_get_module_config(last->per_dir_config, &tomograph_module);
    conf = server_conf(last->server);
    span->local.service_name = dconf->service ? dconf->service : conf->default_service;
    tg_span_tag(span, "http.status_code", apr_itoa(r->pool, last->status));
    if (last->status >= 500) {
        span->error = 1;
        tg_span_tag(span, "error", apr_itoa(r->pool, last->status));
    }
    tg_span_finish(span, apr_time_now());
    enqueue(span);
    return DECLINED;
}

/* ------------------------------------------------------------------------ */
/* mod_status */

static int status_hook(request_rec *r, int flags)
{
    tg_queue_stats_t queue;
    const tg_shipper_counters_t *shipped;
    uint64_t created;

    if (!retained || !retained->shared)
        return OK;
    tg_queue_stats(retained->queue, &queue);
    shipped = &retained->shared->shipper;
    created = atomic_load(&retained->shared->spans_created);
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "TomographSpansCreated: %" APR_UINT64_T_FMT "\n", created);
        ap_rprintf(r, "TomographSpansQueued: %" APR_UINT64_T_FMT "\n", queue.pushed);
        ap_rprintf(r, "TomographSpansDropped: %" APR_UINT64_T_FMT "\n",
                   queue.dropped_full + queue.dropped_oversize + queue.abandoned
                       + queue.skipped_stale);
        ap_rprintf(r, "TomographQueueDepth: %" APR_UINT64_T_FMT "\n", queue.depth);
        ap_rprintf(r, "TomographZipkinSent: %" APR_UINT64_T_FMT "\n",
                   (uint64_t)atomic_load(&shipped->zipkin.sent));
        ap_rprintf(r, "TomographZipkinFailed: %" APR_UINT64_T_FMT "\n",
                   (uint64_t)atomic_load(&shipped->zipkin.failed));
        ap_rprintf(r, "TomographStatsdSent: %" APR_UINT64_T_FMT "\n",
                   (uint64_t)atomic_load(&shipped->statsd.sent));
        ap_rprintf(r, "TomographFileSent: %" APR_UINT64_T_FMT "\n",
                   (uint64_t)atomic_load(&shipped->file.sent));
        return OK;
    }
    ap_rprintf(r, "<hr>\n<h2>Tomograph</h2>\n<dl><dt>spans created %" APR_UINT64_T_FMT
                  ", queued %" APR_UINT64_T_FMT ", dropped (queue full) %" APR_UINT64_T_FMT
                  ", in queue %" APR_UINT64_T_FMT " of %u</dt>\n",
               created, queue.pushed, queue.dropped_full, queue.depth, (unsigned)queue.capacity);
    ap_rprintf(r, "<dt>zipkin sent %" APR_UINT64_T_FMT ", failed %" APR_UINT64_T_FMT
                  "; statsd sent %" APR_UINT64_T_FMT "; span file %" APR_UINT64_T_FMT "</dt></dl>\n",
               (uint64_t)atomic_load(&shipped->zipkin.sent),
               (uint64_t)atomic_load(&shipped->zipkin.failed),
               (uint64_t)atomic_load(&shipped->statsd.sent),
               (uint64_t)atomic_load(&shipped->file.sent));
    return OK;
}

/* ------------------------------------------------------------------------ */

static void register_hooks(apr_pool_t *p)
{
    /* Before mod_wsgi forks its daemons, so that they inherit the queue. */
    static const char *const before_wsgi[] = {"mod_wsgi.c", NULL};
    ap_hook_post_config(post_config, NULL, before_wsgi, APR_HOOK_REALLY_FIRST);
    ap_hook_post_read_request(start_server_span, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_fixups(hand_on_span, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(finish_server_span, NULL, NULL, APR_HOOK_REALLY_LAST);
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
