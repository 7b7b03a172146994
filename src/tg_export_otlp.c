/* The OTLP exporter: batches POSTed as OTLP/HTTP JSON (tg_otlp) to
 * TomographOTLP's URL, e.g. http://127.0.0.1:4318/v1/traces. */
#include "tg_export_http.h"
#include "tg_otlp.h"

static const char *otlp_url(const tg_export_config_t *cfg, apr_pool_t *pool)
{
    return cfg->otlp_url;
}

static const tg_export_http_spec_t otlp_json = {tg_otlp_append_request};

const tg_exporter_t tg_exporter_otlp = TG_EXPORT_HTTP("OTLP", otlp_url, &otlp_json);
