/* mod_tomograph's directives: each checked when httpd reads it, so that a
 * bad value fails `apachectl configtest` with a message naming it. */

#include "mod_tomograph.h"

/* Its log lines are the module's (LogLevel tomograph:...), as in mod_tomograph.c. */
APLOG_USE_MODULE(tomograph);

#include <apr_lib.h>
#include <apr_strings.h>

#include "tg_redact.h"

#define DEFAULT_QUEUE_SIZE 4096
#define MIN_QUEUE_SIZE 16
#define MAX_QUEUE_SIZE (1 << 20)

#define MERGE_FLAG(field) conf->field = add->field != -1 ? add->field : base->field
#define MERGE_IF_SET(field) conf->field = add->field ? add->field : base->field

/* A virtual host's instance part comes from the main server when merged. */
void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    server_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    if (!s->is_virtual) {
        conf->instance = apr_pcalloc(p, sizeof(*conf->instance));
        conf->instance->queue_size = DEFAULT_QUEUE_SIZE;
        tg_export_config_defaults(&conf->instance->export);
    }
    return conf;
}

void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    server_conf_t *base = basev, *add = addv;
    server_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->instance = base->instance;
    conf->default_service = add->default_service; /* its own, not the main server's */
    MERGE_IF_SET(hmac_keys);
    MERGE_IF_SET(redact);
    MERGE_IF_SET(extract_order);
    return conf;
}

void complete_server_confs(apr_pool_t *pconf, server_rec *main_server)
{
    static const char *const default_params[] = {TG_REDACT_DEFAULT_PARAMS};
    server_conf_t *main_conf = server_conf(main_server);
    apr_array_header_t *default_redact = apr_array_make(pconf, 8, sizeof(const char *));
    server_rec *s;
    size_t i;

    for (i = 0; i < sizeof(default_params) / sizeof(default_params[0]); i++)
        APR_ARRAY_PUSH(default_redact, const char *) = default_params[i];
    for (s = main_server; s; s = s->next) {
        server_conf_t *conf = server_conf(s);
        /* httpd hands a virtual host without a directive of ours the main
         * server's object: its name would overwrite the main server's. */
        if (s != main_server && conf == main_conf) {
            conf = merge_server_conf(pconf, main_conf, create_server_conf(pconf, s));
            ap_set_module_config(s->module_config, &tomograph_module, conf);
        }
        if (!conf->default_service) {
            char *name = apr_pstrdup(pconf, s->server_hostname ? s->server_hostname : "httpd");
            ap_str_tolower(name);
            conf->default_service = name;
        }
        if (!conf->redact)
            conf->redact = default_redact;
    }
}

void *create_dir_conf(apr_pool_t *p, char *dir)
{
    dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->enable = -1;
    conf->trust_incoming = -1;
    conf->b3_join = -1;
    conf->sample_rate = -1;
    conf->deep_trace_rate = -1;
    return conf;
}

void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    dir_conf_t *base = basev, *add = addv;
    dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    MERGE_FLAG(enable);
    MERGE_FLAG(trust_incoming);
    MERGE_FLAG(b3_join);
    conf->sample_rate = add->sample_rate >= 0 ? add->sample_rate : base->sample_rate;
    conf->deep_trace_rate = add->deep_trace_rate >= 0 ? add->deep_trace_rate : base->deep_trace_rate;
    MERGE_IF_SET(service);
    MERGE_IF_SET(response_header);
    MERGE_IF_SET(propagate);
    return conf;
}

/* For the directives of instance_conf_t, each checked GLOBAL_ONLY first:
 * then cmd->server is the main server. */
static instance_conf_t *instance_conf(cmd_parms *cmd)
{
    return server_conf(cmd->server)->instance;
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
    char *name;
    if (!*arg || has_control_bytes(arg))
        return bad_value(cmd, arg, "a service name");
    name = apr_pstrdup(cmd->pool, arg);
    ap_str_tolower(name);
    /* Outside any section it names this server alone: a virtual host is
     * another service, named after its own ServerName unless it says. */
    if (!cmd->path)
        server_conf(cmd->server)->default_service = name;
    else
        conf->service = name;
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

/* A share of requests, from 0 to 1, into the dir_conf_t double at
 * cmd->info. */
static const char *set_dir_share(cmd_parms *cmd, void *mconfig, const char *arg)
{
    char *end;
    double rate = strtod(arg, &end);
    if (end == arg || *end || !(rate >= 0.0 && rate <= 1.0))
        return bad_value(cmd, arg, "a share of requests from 0 to 1");
    *(double *)((char *)mconfig + (apr_size_t)cmd->info) = rate;
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
 * tg_export_config_t. */
static const char *set_collector_url(cmd_parms *cmd, void *mconfig, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    if (!tg_export_url_is_valid(arg, cmd->pool))
        return bad_value(cmd, arg, "an http:// or https:// URL of a collector");
    *(const char **)((char *)&instance_conf(cmd)->export + (size_t)cmd->info) = arg;
    return NULL;
}

static const char *set_statsd(cmd_parms *cmd, void *mconfig, const char *arg)
{
    tg_export_config_t *export = &instance_conf(cmd)->export;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    if (tg_export_parse_statsd(arg, &export->statsd_host, &export->statsd_port, cmd->pool)
        != APR_SUCCESS)
        return bad_value(cmd, arg, "<host>:<port> of a statsd daemon (port 1 to 65535)");
    return NULL;
}

static const char *set_span_file(cmd_parms *cmd, void *mconfig, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    if (!*arg || has_control_bytes(arg) || !ap_server_root_relative(cmd->pool, arg))
        return bad_value(cmd, arg, "a file path");
    instance_conf(cmd)->span_file = arg;
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
        instance_conf(cmd)->queue_size = (int)n;
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
        instance_conf(cmd)->sample_limit = (int)n;
    return err;
}

static const char *set_batch(cmd_parms *cmd, void *mconfig, const char *spans, const char *ms)
{
    tg_export_config_t *export = &instance_conf(cmd)->export;
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
    tg_export_config_t *export = &instance_conf(cmd)->export;
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
        instance_conf(cmd)->export.statsd_packet = (apr_size_t)n;
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

const command_rec tomograph_cmds[] = {
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
    AP_INIT_TAKE1("TomographSampleRate", set_dir_share, (void *)APR_OFFSETOF(dir_conf_t, sample_rate),
                  RSRC_CONF | ACCESS_CONF, "Share of new traces recorded, from 0 to 1 (default 1)"),
    AP_INIT_TAKE1("TomographDeepTraceRate", set_dir_share,
                  (void *)APR_OFFSETOF(dir_conf_t, deep_trace_rate), RSRC_CONF | ACCESS_CONF,
                  "Share of requests, from 0 to 1 (default 0), handed a signed X-Trace-Info that "
                  "turns on the app's osprofiler; besides those whose caller sent a valid one"),
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
                  (void *)APR_OFFSETOF(tg_export_config_t, zipkin_url), RSRC_CONF,
                  "URL of a Zipkin v2 collector, e.g. http://127.0.0.1:9411/api/v2/spans"),
    AP_INIT_TAKE1("TomographOTLP", set_collector_url,
                  (void *)APR_OFFSETOF(tg_export_config_t, otlp_url), RSRC_CONF,
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
