#include "tg_exporter.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <strings.h>

#define TG_EXPORTER_ENTRY(name) &tg_exporter_##name,
const tg_exporter_t *const tg_exporters[TG_EXPORTER_COUNT] = {TG_EXPORTERS(TG_EXPORTER_ENTRY)};
#undef TG_EXPORTER_ENTRY

void tg_export_config_defaults(tg_export_config_t *cfg)
{
    cfg->zipkin_url = NULL;
    cfg->otlp_url = NULL;
    cfg->statsd_host = NULL;
    cfg->statsd_port = 8125;
    cfg->span_file = NULL;
    cfg->span_path = NULL;
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

int tg_export_config_is_valid(const tg_export_config_t *cfg)
{
    return cfg->batch_spans >= 1 && cfg->statsd_packet >= 1 && cfg->batch_interval >= 0
        && cfg->batch_bytes >= 1 && cfg->buffer_spans >= cfg->batch_spans
        && cfg->max_attempts >= 0 && cfg->connect_timeout_ms > 0 && cfg->request_timeout_ms > 0;
}

int tg_export_url_is_valid(const char *url, apr_pool_t *pool)
{
    apr_uri_t uri;
    const char *c;
    for (c = url; *c; c++)
        if (apr_iscntrl(*c))
            return 0;
    return apr_uri_parse(pool, url, &uri) == APR_SUCCESS && uri.scheme && uri.hostname
           && *uri.hostname
           && (strcasecmp(uri.scheme, "http") == 0 || strcasecmp(uri.scheme, "https") == 0);
}

apr_status_t tg_export_parse_statsd(const char *hostport, const char **host_out,
                                    apr_port_t *port_out, apr_pool_t *pool)
{
    char *host, *scope;
    apr_port_t port;
    if (apr_parse_addr_port(&host, &scope, &port, hostport, pool) != APR_SUCCESS || !host
        || port == 0 || scope)
        return APR_EINVAL;
    *host_out = host;
    *port_out = port;
    return APR_SUCCESS;
}

int tg_export_count_on(const tg_export_config_t *cfg, apr_pool_t *pool)
{
    int i, on = 0;
    for (i = 0; i < TG_EXPORTER_COUNT; i++)
        on += tg_exporters[i]->target(cfg, pool) != NULL;
    return on;
}

const char *tg_export_describe(const tg_export_config_t *cfg, apr_pool_t *pool)
{
    const char *line = "";
    int i;
    for (i = 0; i < TG_EXPORTER_COUNT; i++) {
        const char *target = tg_exporters[i]->target(cfg, pool);
        line = apr_psprintf(pool, "%s%s%s %s", line, i ? ", " : "", tg_exporters[i]->name,
                            target ? target : "off");
    }
    return line;
}

void tg_export_settle(tg_export_counters_t *counters, _Atomic uint64_t *outcome, int n)
{
    if (n <= 0)
        return;
    atomic_fetch_add(outcome, (uint64_t)n);
    atomic_fetch_sub(&counters->in_flight, (uint64_t)n);
}

void tg_export_delivered(tg_export_counters_t *counters, int n, apr_time_t now)
{
    if (n <= 0)
        return;
    tg_export_settle(counters, &counters->sent, n);
    atomic_store(&counters->last_sent, now);
}

int tg_warn_limit_pass(tg_warn_limit_t *limit, char note[TG_WARN_NOTE_BYTES])
{
    apr_time_t now = apr_time_now();
    if (limit->last_logged && now - limit->last_logged < TG_WARN_INTERVAL) {
        limit->silenced++;
        return 0;
    }
    if (limit->silenced)
        apr_snprintf(note, TG_WARN_NOTE_BYTES, " (and %u more like it since the last report)",
                     limit->silenced);
    else
        note[0] = '\0';
    limit->silenced = 0;
    limit->last_logged = now;
    return 1;
}
