/* mod_tomograph's section of mod_status: the shipper's pid and whether it
 * runs, and the counters of the accounting. */

#include "mod_tomograph.h"

/* Its log lines are the module's (LogLevel tomograph:...), as in mod_tomograph.c. */
APLOG_USE_MODULE(tomograph);

#include "http_protocol.h"
#include "mod_status.h"
#include "util_time.h"

/* An exporter's counters, read once. */
typedef struct {
    uint64_t taken, sent, failed, dropped, in_flight;
    apr_time_t last_sent; /* 0: never */
} exporter_status_t;

static void read_exporter(const tg_export_counters_t *counters, exporter_status_t *status)
{
    status->taken = atomic_load(&counters->taken);
    status->sent = atomic_load(&counters->sent);
    status->failed = atomic_load(&counters->failed);
    status->dropped = atomic_load(&counters->dropped);
    status->in_flight = atomic_load(&counters->in_flight);
    status->last_sent = atomic_load(&counters->last_sent);
}

static void print_exporter_keys(request_rec *r, const char *name, const exporter_status_t *status)
{
    ap_rprintf(r, "Tomograph%sTaken: %" APR_UINT64_T_FMT "\n"
                  "Tomograph%sSent: %" APR_UINT64_T_FMT "\n"
                  "Tomograph%sFailed: %" APR_UINT64_T_FMT "\n"
                  "Tomograph%sDropped: %" APR_UINT64_T_FMT "\n"
                  "Tomograph%sInFlight: %" APR_UINT64_T_FMT "\n"
                  "Tomograph%sLastSent: %" APR_TIME_T_FMT "\n",
               name, status->taken, name, status->sent, name, status->failed, name,
               status->dropped, name, status->in_flight, name, apr_time_sec(status->last_sent));
}

static void print_exporter_row(request_rec *r, const char *name, const exporter_status_t *status)
{
    const char *last_sent = status->last_sent
        ? ap_ht_time(r->pool, status->last_sent, "%Y-%m-%dT%H:%M:%SZ", 1) : "never";
    ap_rprintf(r, "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                  "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td><td>%"
                  APR_UINT64_T_FMT "</td><td>%s</td></tr>\n",
               name, status->taken, status->sent, status->failed, status->dropped,
               status->in_flight, last_sent);
}

/* The ?auto keys read TomographSpansCreated, TomographZipkinSent...; the
 * accounting they show: created = queued + dropped by the queue; and for
 * each exporter, taken = sent + failed + dropped + in flight.  LastSent is
 * when an exporter last delivered, in Unix seconds (0: never). */
int status_hook(request_rec *r, int flags)
{
    const tg_shipper_counters_t *counters;
    exporter_status_t exporter;
    tg_queue_stats_t queue;
    uint64_t created, undecodable;
    int64_t shipper_pid;
    int shipper_running, i;

    if (!tomograph_retained || !tomograph_retained->shared)
        return OK;
    counters = &tomograph_retained->shared->shipper;
    tg_queue_stats(tomograph_retained->queue, &queue);
    created = queue.created;
    undecodable = atomic_load(&counters->undecodable);
    shipper_pid = atomic_load(&tomograph_retained->shared->shipper_pid);
    shipper_running = atomic_load(&tomograph_retained->shared->shipper_running);
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "TomographShipperPid: %" APR_INT64_T_FMT "\n"
                      "TomographShipperRunning: %d\n", shipper_pid, shipper_running);
        ap_rprintf(r, "TomographSpansCreated: %" APR_UINT64_T_FMT "\n"
                      "TomographSpansQueued: %" APR_UINT64_T_FMT "\n"
                      "TomographSpansDropped: %" APR_UINT64_T_FMT "\n"
                      "TomographQueueDepth: %" APR_UINT64_T_FMT "\n"
                      "TomographQueueUsedBytes: %" APR_UINT64_T_FMT "\n"
                      "TomographSpansUndecodable: %" APR_UINT64_T_FMT "\n",
                   created, queue.pushed, tg_queue_lost(&queue), queue.depth, queue.used_bytes,
                   undecodable);
        for (i = 0; i < TG_EXPORTER_COUNT; i++) {
            read_exporter(&counters->exporters[i], &exporter);
            print_exporter_keys(r, tg_exporters[i]->name, &exporter);
        }
        return OK;
    }
    ap_rprintf(r, "<hr>\n<h2>Tomograph</h2>\n<p>shipper pid %" APR_INT64_T_FMT ", %s</p>\n",
               shipper_pid, shipper_running ? "running" : "not running");
    ap_rprintf(r, "<p>spans created %" APR_UINT64_T_FMT
                  ", queued %" APR_UINT64_T_FMT ", dropped by the queue %" APR_UINT64_T_FMT
                  ", in the queue %" APR_UINT64_T_FMT " (%" APR_UINT64_T_FMT " bytes)"
                  ", undecodable %" APR_UINT64_T_FMT "</p>\n"
                  "<table><tr><th>exporter</th><th>taken</th><th>sent</th><th>failed</th>"
                  "<th>dropped</th><th>in flight</th><th>last sent (UTC)</th></tr>\n",
               created, queue.pushed, tg_queue_lost(&queue), queue.depth, queue.used_bytes,
               undecodable);
    for (i = 0; i < TG_EXPORTER_COUNT; i++) {
        read_exporter(&counters->exporters[i], &exporter);
        print_exporter_row(r, tg_exporters[i]->name, &exporter);
    }
    ap_rputs("</table>\n", r);
    return OK;
}
