/* mod_tomograph: distributed tracing for the services httpd serves.
 *
 * The module is glue, in four parts that share mod_tomograph.h: directives
 * (mod_tomograph_config.c), the request hooks (mod_tomograph_request.c), the
 * shared queue and the shipper daemon's life (mod_tomograph_daemon.c) and
 * mod_status (mod_tomograph_status.c).  The work is done by the core in
 * src/ (span model, header codecs, the queue, the encoders and the
 * shipper), which knows nothing of httpd.
 *
 * A request's life: header_parser continues the caller's trace (or starts
 * one) and opens a SERVER span in r->pool; the first handler hands the span
 * on to the app that serves it (its headers and environment), and each call
 * mod_proxy makes to a backend gets a CLIENT span, handed on likewise;
 * log_transaction closes the span and copies it, as a compact record, onto a
 * queue in shared memory.  A daemon child, started and watched like
 * mod_cgid's, drains the queue and ships.  The request path never touches
 * the network and never waits: a full queue drops the span and counts it. */

#include "mod_tomograph.h"

#include <dlfcn.h>

#include "http_request.h"
#include "mod_status.h"

#include "tg_log.h"

static void log_to_error_log(tg_log_level_t level, apr_status_t rv, const char *message)
{
    ap_log_error(APLOG_MARK, (int)level, rv, ap_server_conf, "%s", message);
}

/* mod_proxy runs a scheme handler per attempt at a call, the one place that
 * every proxy module and a balancer's failover pass through; but its hook is
 * external, not optional, and linking to it would have the module load only
 * after mod_proxy.  Looked up here, every LoadModule done and the hooks not
 * yet sorted. */
static int hook_backend_calls(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    __typeof__(&proxy_hook_scheme_handler) hook_scheme_handler;
    *(void **)&hook_scheme_handler = dlsym(RTLD_DEFAULT, "proxy_hook_scheme_handler");
    if (hook_scheme_handler)
        hook_scheme_handler(start_backend_call, NULL, NULL, APR_HOOK_REALLY_FIRST);
    else if (ap_find_linked_module("mod_proxy.c"))
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, NULL,
                     TGLOGNO(00010) "mod_proxy without proxy_hook_scheme_handler: "
                     "its calls to backends get no CLIENT span and no trace headers");
    return OK;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    tg_log_set_sink(log_to_error_log);
    tomograph_read_environment_readers(ap_conftree);
    complete_server_confs(pconf, s);
    /* The first pass only checks the configuration; the process that runs
     * it is about to be replaced by the daemonized httpd. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    return tomograph_start(pconf, s);
}

static void register_hooks(apr_pool_t *p)
{
    /* Before mod_wsgi forks its daemons, so that they inherit the queue. */
    static const char *const before_wsgi[] = {"mod_wsgi.c", NULL};
    ap_hook_pre_config(hook_backend_calls, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, before_wsgi, APR_HOOK_REALLY_FIRST);
    ap_hook_header_parser(decide_trace, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(hand_on_span, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_insert_error_filter(insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(finish_server_span, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_error_log(note_error_log, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(proxy, request_status, finish_client_span, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
    tomograph_register_filters();
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
