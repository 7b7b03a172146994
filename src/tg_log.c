#include "tg_log.h"

#include <stdarg.h>
#include <stdio.h>

static void stderr_sink(tg_log_level_t level, apr_status_t rv, const char *message)
{
    char reason[120];
    if (rv == APR_SUCCESS) {
        fprintf(stderr, "tomograph[%d]: %s\n", (int)level, message);
        return;
    }
    fprintf(stderr, "tomograph[%d]: %s: %s\n", (int)level, message,
            apr_strerror(rv, reason, sizeof(reason)));
}

static tg_log_sink_fn *current_sink = stderr_sink;
static tg_log_level_t current_level = TG_LOG_DEBUG;

void tg_log_set_sink(tg_log_sink_fn *sink)
{
    current_sink = sink ? sink : stderr_sink;
}

void tg_log_set_level(tg_log_level_t level)
{
    current_level = level;
}

void tg_log(tg_log_level_t level, apr_status_t rv, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    if (level > current_level)
        return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    current_sink(level, rv, message);
}
