/* Logging seam between the core and its host.
 *
 * The core never includes httpd headers; mod_tomograph.c installs a sink
 * that forwards to ap_log_error, tests install one that records.  Every
 * message carries a numbered tag of our own (TGnnnnn), never an AH number:
 * those belong to httpd.  Numbers are unique across the tree; the next free
 * one is noted in src/README.md. */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <apr_errno.h>

#define TGLOGNO(n) "TG" #n ": "

/* Same numbering as syslog and APLOG_*, so the host can pass them through. */
typedef enum {
    TG_LOG_ERR = 3,
    TG_LOG_WARNING = 4,
    TG_LOG_NOTICE = 5,
    TG_LOG_INFO = 6,
    TG_LOG_DEBUG = 7
} tg_log_level_t;

typedef void tg_log_sink_fn(tg_log_level_t level, apr_status_t rv, const char *message);

/* NULL restores the default sink, which writes to stderr. */
void tg_log_set_sink(tg_log_sink_fn *sink);

/* Messages less severe than level are dropped before they are made (the
 * default, TG_LOG_DEBUG, keeps all).  libtomograph drops the debug notes
 * on incoming headers: they come on the application's thread, which the
 * library must not write from. */
void tg_log_set_level(tg_log_level_t level);

void tg_log(tg_log_level_t level, apr_status_t rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
