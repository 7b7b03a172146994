/* What the parts of mod_tomograph share (see mod_tomograph.c): its
 * configuration, the shared segment, and the hooks that mod_tomograph.c
 * registers.  Private to the module: nothing here is exported from it. */
#ifndef MOD_TOMOGRAPH_H
#define MOD_TOMOGRAPH_H

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "ap_mpm.h"
#include "util_cfgtree.h"
#include "mod_proxy.h"

#include <apr_shm.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "tg_log.h"
#include "tg_propagation.h"
#include "tg_queue.h"
#include "tg_sampling.h"
#include "tg_segment.h"
#include "tg_shipper.h"

extern module AP_MODULE_DECLARE_DATA tomograph_module;

/* What one httpd instance has once, whichever virtual host a request is for:
 * one shipper, one queue, one sampling budget.  Its directives are refused
 * inside <VirtualHost> (GLOBAL_ONLY), so no virtual host can half-override it. */
typedef struct {
    tg_export_config_t export;    /* the span file is opened by the shipper */
    const char *span_file;
    int queue_size;
    int sample_limit;              /* new sampled traces a second; 0: no cap */
} instance_conf_t;

/* Each virtual host has its own, merged field by field with the main
 * server's (post_config gives one to a virtual host without any Tomograph
 * directive, which httpd would have share the main server's). */
typedef struct {
    instance_conf_t *instance;     /* the main server's, shared by every virtual host */
    apr_array_header_t *hmac_keys; /* const char *; NULL when unset here */
    apr_array_header_t *redact;    /* query parameter names; NULL: the defaults */
    tg_format_t *extract_order;    /* ends with TG_FORMAT_NONE; NULL: the default */
    const char *default_service;   /* TomographService outside any section, else the
                                    * ServerName (set at post_config); lowercased */
} server_conf_t;

/* -1 (or NULL) is "unset here": merging takes the enclosing value. */
typedef struct {
    int enable;
    int trust_incoming;
    int b3_join;
    double sample_rate;
    double deep_trace_rate;      /* share of requests handed a signed X-Trace-Info */
    const char *service;         /* in a <Location> or <Directory>; NULL: default_service */
    const char *response_header; /* "" turns an inherited one off */
    tg_format_set_t propagate;   /* formats handed on to the app and backends; 0 unset */
} dir_conf_t;

/* Outlives generations: lives in the process pool's userdata.  The shared
 * segment (tg_segment.h) is made once per httpd instance and kept across
 * restarts (the scoreboard's model), so spans that old children finish
 * after a graceful restart reach the new shipper; its descriptor too, one
 * for the life of the instance, which mod_cgid's daemon of each generation
 * inherits. */
typedef struct {
    apr_shm_t *shm;        /* only where there are no memfds (fd -1) */
    tg_segment_t *shared;
    tg_queue_t *queue;
    int queue_size;
    int fd;                /* the memfd holding the segment, open across exec; -1: none */
    const char *locator;   /* TG_SEGMENT_ENV's value, the same in every generation */
} retained_t;

/* This process's view of the segment: set in post_config, inherited by the
 * children; NULL until then (a request then goes untraced). */
extern retained_t *tomograph_retained;

static inline server_conf_t *server_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &tomograph_module);
}

static inline dir_conf_t *dir_conf(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &tomograph_module);
}

/* mod_tomograph_config.c */
extern const command_rec tomograph_cmds[];
void *create_server_conf(apr_pool_t *p, server_rec *s);
void *merge_server_conf(apr_pool_t *p, void *basev, void *addv);
/* At post_config: gives each virtual host a configuration of its own and
 * its default service name, and the main server the default redactions. */
void complete_server_confs(apr_pool_t *pconf, server_rec *main_server);
void *create_dir_conf(apr_pool_t *p, char *dir);
void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv);

/* mod_tomograph_daemon.c: makes the shared segment (once per instance) and
 * starts this generation's shipper; OK or an HTTP error for post_config. */
int tomograph_start(apr_pool_t *pconf, server_rec *s);

/* mod_tomograph_request.c */
/* Notes whether a directive of the configuration tree names the
 * environment variables the module sets (then every request gets them). */
void tomograph_read_environment_readers(const ap_directive_t *conftree);
int decide_trace(request_rec *r);
int hand_on_span(request_rec *r);
void insert_error_filter(request_rec *r);
int finish_server_span(request_rec *r);
void tomograph_register_filters(void);
void note_error_log(const ap_errorlog_info *info, const char *message);
int start_backend_call(request_rec *r, proxy_worker *worker, proxy_server_conf *conf,
                       char *url, const char *proxyname, apr_port_t proxyport);
int finish_client_span(int *status, request_rec *r);

/* mod_tomograph_status.c */
int status_hook(request_rec *r, int flags);

#endif
