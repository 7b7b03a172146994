/* mod_tomograph's shared segment and shipper daemon: the segment is made
 * once per httpd instance and outlives generations (the scoreboard's model);
 * each generation forks a shipper that httpd watches and restarts, as
 * mod_cgid does its daemon, and stops with a bounded flush. */

#include "mod_tomograph.h"

/* Its log lines are the module's (LogLevel tomograph:...), as in mod_tomograph.c. */
APLOG_USE_MODULE(tomograph);

#include <signal.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <stdlib.h>
#include <unistd.h>

#include <apr_shm.h>
#include <apr_signal.h>

#include "ap_listen.h"
#include "mpm_common.h"

#include "tg_log.h"

/* Names the layout of the shared segment (shared_t, the queue's cells), which
 * outlives a graceful restart: a module built with another layout, loaded by
 * one, makes a segment of its own rather than misread the one it finds. */
#define SHARED_LAYOUT "3"
#define RETAINED_KEY "mod_tomograph_retained/" SHARED_LAYOUT
#define DEFAULT_SPAN_FILE "logs/tomograph-spans.json"
/* The daemon exits with this when it cannot start at all (bad span file,
 * cannot drop privileges): restarting it would only loop, as in mod_cgid. */
#define SHIPPER_STARTUP_ERROR 254
/* How long the shipper may take to flush on restart or stop, and how much
 * longer httpd waits for it to exit when it stops before killing it. */
#define SHIPPER_DRAIN_BUDGET (2 * APR_USEC_PER_SEC)
#define SHIPPER_EXIT_GRACE (APR_USEC_PER_SEC / 2)

typedef struct {
    apr_pool_t *pool; /* pconf of the generation that started it */
    server_rec *server;
    retained_t *retained;
    apr_proc_t proc;
} shipper_daemon_t;

retained_t *tomograph_retained;

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
    /* APR keeps its own header at the start of the segment, so the address
     * it gives is only 8-byte aligned: room to align to a cache line. */
    apr_size_t size = alignof(shared_t) + sizeof(shared_t) + tg_queue_footprint((uint32_t)queue_size);
    uintptr_t base;
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
    base = (uintptr_t)apr_shm_baseaddr_get(keep->shm);
    keep->shared = (shared_t *)((base + alignof(shared_t) - 1) & ~(uintptr_t)(alignof(shared_t) - 1));
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
    instance_conf_t *conf = server_conf(s)->instance;
    tg_export_config_t cfg;
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
    tg_shipper_keep_freed_memory();

    cfg = conf->export;
    /* Opened before dropping privileges, so the file may stay owned by root
     * and out of the reach of the User that runs the apps.  A file that
     * cannot be opened (a mistyped directory) does not silence the other
     * exporters. */
    if (conf->span_file) {
        const char *path = ap_server_root_relative(pool, conf->span_file);
        rv = open_span_file(&cfg.span_file, path, pool);
        cfg.span_path = path;
        if (rv != APR_SUCCESS) {
            int others;
            cfg.span_file = NULL;
            others = tg_export_count_on(&cfg, pool);
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         TGLOGNO(00002) "shipper: cannot open TomographSpanFile %s%s", path,
                         others ? "; shipping to the other exporters without it" : "");
            if (!others)
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
                 TGLOGNO(00005) "shipper %" APR_PID_T_FMT " started: %s", getpid(),
                 tg_export_describe(&cfg, pool));
    tg_shipper_run(shipper, &shipper_stop, SHIPPER_DRAIN_BUDGET);
    apr_pool_destroy(pool);
    /* _exit, not exit: the atexit handlers and pools we inherited belong to
     * the parent (they would kill its other children). */
    _exit(0);
}


static apr_status_t start_shipper(shipper_daemon_t *daemon);

/* The spans a dead shipper held are lost: counted failed before the next. */
static void restart_shipper(shipper_daemon_t *daemon)
{
    tg_shipper_counters_write_off(&daemon->retained->shared->shipper);
    start_shipper(daemon);
}

/* httpd stops: the shipper flushes what it holds before httpd goes, or is
 * killed when it takes longer than it was given. */
static void stop_shipper_and_wait(pid_t pid)
{
    apr_time_t deadline = apr_time_now() + SHIPPER_DRAIN_BUDGET + SHIPPER_EXIT_GRACE;
    int status;
    kill(pid, SIGHUP);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (apr_time_now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return;
        }
        apr_sleep(apr_time_from_msec(10));
    }
}

static void shipper_maintenance(int reason, void *data, apr_wait_t status)
{
    shipper_daemon_t *daemon = data;
    int mpm_state, generation;
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
        restart_shipper(daemon);
        break;
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(data);
        restart_shipper(daemon);
        break;
    case APR_OC_REASON_RESTART:
        /* A stop or a hard restart (ap_reclaim_child_processes). */
        apr_proc_other_child_unregister(data);
        stop_shipper_and_wait(daemon->proc.pid);
        break;
    case APR_OC_REASON_UNREGISTER:
        /* A graceful restart clears this generation's pool.  The old shipper
         * drains while the new one starts (the queue takes two readers), so
         * the parent does not wait for it: the MPM reaps it, as an extra
         * process of the old generation, and kills it if httpd stops first. */
        kill(daemon->proc.pid, SIGHUP);
        if (ap_mpm_query(AP_MPMQ_GENERATION, &generation) == APR_SUCCESS)
            ap_register_extra_mpm_process(daemon->proc.pid, (ap_generation_t)generation);
        break;
    }
}

static apr_status_t start_shipper(shipper_daemon_t *daemon)
{
    apr_status_t rv = apr_proc_fork(&daemon->proc, daemon->pool);
    if (rv == APR_INCHILD) {
#ifdef __linux__
        /* Should the parent die without a word, so does the shipper. */
        prctl(PR_SET_PDEATHSIG, SIGHUP);
#endif
        run_shipper(daemon);
    }
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, daemon->server,
                     TGLOGNO(00008) "cannot fork the shipper");
        return rv;
    }
    apr_proc_other_child_register(&daemon->proc, shipper_maintenance, daemon, NULL, daemon->pool);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Start-up */

/* Makes the shared segment (once per instance) and starts this generation's
 * shipper. */
int tomograph_start(apr_pool_t *pconf, server_rec *s)
{
    instance_conf_t *conf = server_conf(s)->instance;
    shipper_daemon_t *daemon;

    tomograph_retained = retained_data(s);
    if (!tomograph_retained->shared) {
        if (create_shared(tomograph_retained, s, conf->queue_size) != APR_SUCCESS)
            return HTTP_INTERNAL_SERVER_ERROR;
    }
    else if (tomograph_retained->queue_size != conf->queue_size) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     TGLOGNO(00009) "TomographQueueSize %d takes effect at the next full "
                     "restart; the queue keeps %d spans until then",
                     conf->queue_size, tomograph_retained->queue_size);
    }
    if (!conf->span_file && !tg_export_count_on(&conf->export, pconf))
        conf->span_file = DEFAULT_SPAN_FILE;
    daemon = apr_pcalloc(pconf, sizeof(*daemon));
    daemon->pool = pconf;
    daemon->server = s;
    daemon->retained = tomograph_retained;
    if (start_shipper(daemon) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    return OK;
}
