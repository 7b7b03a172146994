/* The Zipkin exporter: batches POSTed as Zipkin v2 JSON (tg_zipkin) to
 * TomographZipkin's URL, e.g. http://127.0.0.1:9411/api/v2/spans. */
#include "tg_export_http.h"
#include "tg_zipkin.h"

static const char *zipkin_url(const tg_export_config_t *cfg, apr_pool_t *pool)
{
    return cfg->zipkin_url;
}

static const tg_export_http_spec_t zipkin_json = {tg_zipkin_append_list};

const tg_exporter_t tg_exporter_zipkin = TG_EXPORT_HTTP("Zipkin", zipkin_url, &zipkin_json);
