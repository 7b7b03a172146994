/* mod_tomograph's shared segment and shipper daemon: the segment is made
 * once per httpd instance and outlives generations (the scoreboard's model);
 * each generation forks a shipper that httpd watches and restarts, as
 * mod_cgid does its daemon, and stops with a bounded flush: in the
 * background after a graceful restart, briefly when httpd stops. */

#include "mod_tomograph.h"

/* Its log lines are the module's (LogLevel tomograph:...), as in mod_tomograph.c. */
APLOG_USE_MODULE(tomograph);

#include <signal.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <unistd.h>

extern char **environ;

#include <apr_shm.h>
#include <apr_signal.h>
#include <apr_strings.h>

#include "ap_listen.h"
#include "mpm_common.h"

#include "tg_log.h"

/* The segment outlives a graceful restart: a module built with another
 * layout, loaded by one, makes a segment of its own rather than misread the
 * one it finds. */
#define STRINGIFY(x) #x
#define LAYOUT_NAME(layout) STRINGIFY(layout)
#define RETAINED_KEY "mod_tomograph_retained/" LAYOUT_NAME(TG_SEGMENT_LAYOUT)
#define DEFAULT_SPAN_FILE "logs/tomograph-spans.json"
/* The daemon exits with this when it cannot start at all (bad span file,
 * cannot drop privileges): restarting it would only loop, as in mod_cgid. */
#define SHIPPER_STARTUP_ERROR 254
/* What a shipper may spend flushing what it holds when it goes.  After a
 * graceful restart nothing waits for it (it drains beside the new one), so
 * it takes its time; httpd stopping or restarting hard waits for it, so it
 * takes little, whatever the collector does, and what it could not deliver
 * by then is counted failed and named in one line (TG00011). */
#define SHIPPER_RETIRE_BUDGET_MS 2000
#define SHIPPER_STOP_BUDGET_MS 250
/* How much longer than that httpd waits for it to exit before killing it,
 * and how often it looks meanwhile. */
#define SHIPPER_EXIT_GRACE apr_time_from_msec(250)
#define SHIPPER_EXIT_POLL apr_time_from_msec(5)
/* What ps shows of it: "apache2: tomograph shipper" (its command line), and
 * "tomograph" (its name, 15 bytes at most, for top and ps -o comm). */
#define SHIPPER_TITLE "tomograph shipper"
#define SHIPPER_NAME "tomograph"

/* A shipper process, as its parent watches it. */
typedef struct {
    apr_pool_t *pool;   /* holds the record and its other-child registration: the
                         * generation's pconf, then, once retired, a pool of its own */
    server_rec *server; /* its generation's; NULL once retired */
    retained_t *retained;
    apr_proc_t proc;
    apr_time_t kill_at; /* 0 until told to stop: then when it is killed if still there */
    int alive;          /* forked, not yet reaped */
    int watched;        /* registered as an other child */
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
    apr_size_t size = tg_segment_footprint((uint32_t)queue_size);
    /* A memfd, kept mapped and open for the life of the process, with no
     * cleanup: the module's code is unloaded before the process pool's
     * cleanups run, and the kernel frees the memory with the last process
     * that maps it or holds the descriptor.  Inherited by every process
     * httpd forks, and its descriptor by every program they exec (a CGI),
     * never left behind in /dev/shm. */
    apr_status_t rv = tg_segment_share((uint32_t)queue_size, &keep->shared, &keep->fd);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     TGLOGNO(00013) "cannot make the shared segment a memfd: programs httpd "
                     "runs (CGI) cannot reach the queue, and their spans go to the "
                     "exporters their environment names, if any");
        keep->fd = -1;
        /* Anonymous: forked processes have it, exec'd ones do not.  APR
         * keeps its own header at the start of the segment, so the address
         * it gives is only 8-byte aligned: tg_segment_create aligns it. */
        rv = apr_shm_create(&keep->shm, size, NULL, s->process->pool);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         TGLOGNO(00001) "cannot create %" APR_SIZE_T_FMT
                         " bytes of shared memory for TomographQueueSize %d",
                         size, queue_size);
            return rv;
        }
        keep->shared = tg_segment_create(apr_shm_baseaddr_get(keep->shm), (uint32_t)queue_size);
    }
    keep->queue = tg_segment_queue(keep->shared);
    keep->queue_size = queue_size;
    /* The same for every generation: the segment and its descriptor are. */
    keep->locator = tg_segment_locator(keep->shared, keep->fd, s->process->pool);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* The shipper daemon */

static volatile sig_atomic_t shipper_stop;
static volatile sig_atomic_t drain_budget_ms = SHIPPER_RETIRE_BUDGET_MS;

/* SIGHUP: its generation is over (a graceful restart), or httpd died. */
static void retire_at_leisure(int signum)
{
    shipper_stop = 1;
}

/* SIGTERM: httpd stops and waits for it; a drain already under way is cut
 * short too. */
static void stop_soon(int signum)
{
    drain_budget_ms = SHIPPER_STOP_BUDGET_MS;
    shipper_stop = 1;
}

/* The memory the kernel gave to the process's arguments, which begins at
 * argv[0]: the arguments lie there one after the other, and the environment
 * right after them.  (httpd's process->argv is a copy but for argv[0], made
 * as it reads its options.)  Only argv[0] itself when the strings from there
 * do not end exactly where the environment begins. */
static apr_size_t argument_area(char *start)
{
    char *end = start + strlen(start) + 1;
    char *environment = environ ? environ[0] : NULL;
    char *at = end;
    while (environment && at < environment)
        at += strlen(at) + 1;
    return (apr_size_t)((environment && at == environment ? environment : end) - start);
}

/* ps and top tell the shipper from httpd's children: its command line (ps
 * aux, /proc/<pid>/cmdline) is rewritten in that memory, as nginx and
 * mod_wsgi's display-name do, cut to fit; and its name (top, ps -o comm) is
 * set apart. */
static void set_process_title(const process_rec *process, apr_pool_t *pool)
{
    const char *title = apr_pstrcat(pool, process->short_name, ": " SHIPPER_TITLE, NULL);
    char *area = (char *)process->argv[0];
    apr_size_t size = argument_area(area);
    memset(area, 0, size);
    apr_cpystrn(area, title, size);
#ifdef __linux__
    prctl(PR_SET_NAME, SHIPPER_NAME);
#endif
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
    const char *undelivered;
    apr_status_t rv;

    apr_signal(SIGHUP, retire_at_leisure);
    apr_signal(SIGTERM, stop_soon);
    apr_signal(SIGINT, SIG_IGN);
    apr_signal(SIGPIPE, SIG_IGN);
    apr_signal(SIGCHLD, SIG_DFL);
    ap_close_listeners();
    apr_pool_create(&pool, s->process->pool);
    set_process_title(s->process, pool);
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
    tg_shipper_run(shipper, &shipper_stop, &drain_budget_ms);
    undelivered = tg_shipper_undelivered(shipper, pool);
    if (undelivered)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     TGLOGNO(00011) "shipper %" APR_PID_T_FMT " stopped with spans it could "
                     "not deliver in the %d ms it had to flush, counted failed: %s",
                     getpid(), (int)drain_budget_ms, undelivered);
    apr_pool_destroy(pool);
    /* _exit, not exit: the atexit handlers and pools we inherited belong to
     * the parent (they would kill its other children). */
    _exit(0);
}

static void shipper_maintenance(int reason, void *data, apr_wait_t status);

static void watch(shipper_daemon_t *daemon)
{
    apr_proc_other_child_register(&daemon->proc, shipper_maintenance, daemon, NULL, daemon->pool);
    daemon->watched = 1;
}

static void unwatch(shipper_daemon_t *daemon)
{
    if (daemon->watched)
        apr_proc_other_child_unregister(daemon);
    daemon->watched = 0;
}

/* What mod_status shows: the generation's shipper, any child may ask. */
static void publish(const shipper_daemon_t *daemon, int running)
{
    atomic_store(&daemon->retained->shared->shipper_pid, (int64_t)daemon->proc.pid);
    atomic_store(&daemon->retained->shared->shipper_running, running);
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
        publish(daemon, 0);
        return rv;
    }
    daemon->alive = 1;
    daemon->kill_at = 0;
    watch(daemon);
    publish(daemon, 1);
    return APR_SUCCESS;
}

/* httpd stops, or restarts hard, and waits for its processes: the shipper
 * flushes briefly (wait_for_exit kills it should it overstay). */
static void tell_to_stop(shipper_daemon_t *daemon)
{
    if (daemon->kill_at)
        return;
    daemon->kill_at = apr_time_now() + apr_time_from_msec(SHIPPER_STOP_BUDGET_MS)
                      + SHIPPER_EXIT_GRACE;
    kill(daemon->proc.pid, SIGTERM);
}

/* waitpid, not apr_proc_wait: that one reports a stopped process (SIGSTOP)
 * as gone, and it would be left behind. */
static void wait_for_exit(shipper_daemon_t *daemon)
{
    int status;
    while (waitpid(daemon->proc.pid, &status, WNOHANG) == 0) {
        if (apr_time_now() >= daemon->kill_at) {
            kill(daemon->proc.pid, SIGKILL);
            waitpid(daemon->proc.pid, &status, 0);
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ap_server_conf,
                         TGLOGNO(00012) "shipper %" APR_PID_T_FMT " had not exited %d ms after "
                         "it was told to stop: killed, and the spans it held with it",
                         daemon->proc.pid,
                         SHIPPER_STOP_BUDGET_MS + (int)apr_time_as_msec(SHIPPER_EXIT_GRACE));
            break;
        }
        apr_sleep(SHIPPER_EXIT_POLL);
    }
    daemon->alive = 0;
}

static apr_status_t part_with_shipper(void *data);

/* A graceful restart ends the shipper's generation: it drains in the
 * background while the next one starts (the queue takes two readers).  Its
 * record moves to a pool of its own, so that httpd still knows the process
 * when it exits: the MPM would take it for a child of its own that it lost
 * track of (event's and prefork's "long lost child came home!").  Released
 * once it is reaped. */
static void retire(shipper_daemon_t *daemon)
{
    shipper_daemon_t *retired;
    apr_pool_t *pool;
    apr_pool_create(&pool, daemon->server->process->pool);
    retired = apr_pmemdup(pool, daemon, sizeof(*daemon));
    retired->pool = pool;
    retired->server = NULL;
    retired->watched = 0;
    daemon->alive = 0;
    apr_pool_cleanup_register(pool, retired, part_with_shipper, apr_pool_cleanup_null);
    watch(retired);
    kill(retired->proc.pid, SIGHUP);
}

/* The pool that holds a shipper's record goes: its generation's at a
 * restart (graceful or hard) or when httpd exits, a retired one's when httpd
 * exits.  A shipper still at work when a graceful restart comes retires;
 * otherwise httpd waits for it as for its children (told to stop by the
 * MPM's reclaim, or now). */
static apr_status_t part_with_shipper(void *data)
{
    shipper_daemon_t *daemon = data;
    unwatch(daemon);
    if (!daemon->alive)
        return APR_SUCCESS;
    if (daemon->server && !daemon->kill_at
        && ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING) {
        retire(daemon);
        return APR_SUCCESS;
    }
    tell_to_stop(daemon);
    wait_for_exit(daemon);
    return APR_SUCCESS;
}

/* The shipper was reaped (status -1 when another waitpid took it): a
 * retired one is let go; the generation's is started again unless httpd is
 * stopping or it could not start at all. */
static void shipper_gone(shipper_daemon_t *daemon, int status)
{
    int mpm_state;
    daemon->alive = 0;
    unwatch(daemon);
    if (!daemon->server) {
        apr_pool_destroy(daemon->pool);
        return;
    }
    publish(daemon, 0);
    if (daemon->kill_at
        || (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS
            && mpm_state == AP_MPMQ_STOPPING))
        return;
    if (status == SHIPPER_STARTUP_ERROR) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, daemon->server,
                     TGLOGNO(00006) "shipper could not start; spans stay queued "
                     "until it can (fix the error above and restart httpd)");
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, daemon->server,
                 TGLOGNO(00007) "shipper %" APR_PID_T_FMT " died (status %d); restarting it",
                 daemon->proc.pid, status);
    /* The spans it held are lost: counted failed before the next starts. */
    tg_shipper_counters_write_off(&daemon->retained->shared->shipper);
    start_shipper(daemon);
}

static void shipper_maintenance(int reason, void *data, apr_wait_t status)
{
    shipper_daemon_t *daemon = data;
    switch (reason) {
    case APR_OC_REASON_DEATH:
        shipper_gone(daemon, status);
        break;
    case APR_OC_REASON_LOST:
        shipper_gone(daemon, -1);
        break;
    case APR_OC_REASON_RESTART:
        /* A stop or a hard restart: ap_reclaim_child_processes, at each turn
         * of its loop, which ends when the children are gone; the shipper's
         * pool waits for what is left of it (part_with_shipper). */
        tell_to_stop(daemon);
        break;
    case APR_OC_REASON_UNREGISTER:
        daemon->watched = 0;
        break;
    }
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
    /* In the environment before mod_wsgi forks its daemons (at pre_mpm, or
     * in its post_config, after ours) and mod_cgid its own (in its
     * post_config, after ours): an app's libtomograph finds the segment
     * there, in every process httpd forks.  A CGI's environment is made
     * from its request's instead (hand_on_span puts it there). */
    setenv(TG_SEGMENT_ENV, tomograph_retained->locator, 1);
    if (!conf->span_file && !tg_export_count_on(&conf->export, pconf))
        conf->span_file = DEFAULT_SPAN_FILE;
    daemon = apr_pcalloc(pconf, sizeof(*daemon));
    daemon->pool = pconf;
    daemon->server = s;
    daemon->retained = tomograph_retained;
    apr_pool_cleanup_register(pconf, daemon, part_with_shipper, apr_pool_cleanup_null);
    if (start_shipper(daemon) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    return OK;
}
