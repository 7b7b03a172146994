/* The span-file exporter: each batch appended to TomographSpanFile as Zipkin
 * v2 JSON (tg_zipkin), one span a line, in whole lines or not at all.  The
 * file is opened by the caller (the daemon, before it drops privileges). */
#include <apr_strings.h>

#include "tg_buf.h"
#include "tg_exporter.h"
#include "tg_log.h"
#include "tg_zipkin.h"

typedef struct {
    apr_file_t *file;
    const char *path; /* for the log */
    tg_export_counters_t *counters;
    tg_buf_t lines;
    tg_warn_limit_t warn;
} file_exporter_t;

static const char *span_path(const tg_export_config_t *cfg, apr_pool_t *pool)
{
    if (!cfg->span_file)
        return NULL;
    return cfg->span_path ? cfg->span_path : "(unnamed)";
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

static void take(void *state, const tg_span_t *const *spans, int n, apr_time_t now)
{
    file_exporter_t *exporter = state;
    apr_status_t rv = APR_ENOMEM;
    char note[TG_WARN_NOTE_BYTES];
    int i;
    tg_buf_reset(&exporter->lines);
    for (i = 0; i < n; i++) {
        tg_zipkin_append_span(&exporter->lines, spans[i]);
        tg_buf_putc(&exporter->lines, '\n');
    }
    if (!exporter->lines.failed)
        rv = append_lines(exporter->file, exporter->lines.data, exporter->lines.len);
    if (rv == APR_SUCCESS) {
        tg_export_delivered(exporter->counters, n, now);
        return;
    }
    tg_export_settle(exporter->counters, &exporter->counters->failed, n);
    if (tg_warn_limit_pass(&exporter->warn, note))
        tg_log(TG_LOG_WARNING, rv, TGLOGNO(03005) "cannot write %d spans to the span file %s%s", n,
               exporter->path, note);
}

static apr_status_t close_file_exporter(void *state)
{
    file_exporter_t *exporter = state;
    tg_buf_free(&exporter->lines);
    return APR_SUCCESS;
}

static apr_status_t open_file_exporter(const tg_exporter_t *self, void **state,
                                       const tg_export_config_t *cfg,
                                       tg_export_counters_t *counters, apr_pool_t *pool)
{
    file_exporter_t *exporter = apr_pcalloc(pool, sizeof(*exporter));
    exporter->file = cfg->span_file;
    exporter->path = apr_pstrdup(pool, span_path(cfg, pool));
    exporter->counters = counters;
    tg_buf_init(&exporter->lines);
    apr_pool_cleanup_register(pool, exporter, close_file_exporter, apr_pool_cleanup_null);
    /* A line a span, typical ones, from the start. */
    tg_buf_grow(&exporter->lines,
                (apr_size_t)cfg->batch_spans * (TG_EXPORT_TYPICAL_SPAN_BYTES + 1));
    *state = exporter;
    return APR_SUCCESS;
}

const tg_exporter_t tg_exporter_file = {.name = "File", .target = span_path,
                                        .open = open_file_exporter, .take = take};
