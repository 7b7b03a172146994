/* mod_tomograph's section of mod_status: the shipper's pid and whether it
 * runs, and the counters of the accounting. */

#include "mod_tomograph.h"

/* Its log lines are the module's (LogLevel tomograph:...), as in mod_tomograph.c. */
APLOG_USE_MODULE(tomograph);

#include "http_protocol.h"
#include "mod_status.h"

/* The ?auto keys read TomographSpansCreated, TomographZipkinSent...; the
 * accounting they show: created = queued + dropped by the queue; and for
 * each exporter, taken = sent + failed + dropped + in flight. */
int status_hook(request_rec *r, int flags)
{
    static const char *const names[] = {"Zipkin", "OTLP", "Statsd", "File"};
    const tg_export_counters_t *exporters[4];
    tg_queue_stats_t queue;
    uint64_t created, lost, undecodable;
    int64_t shipper_pid;
    int shipper_running, i;

    if (!tomograph_retained || !tomograph_retained->shared)
        return OK;
    exporters[0] = &tomograph_retained->shared->shipper.zipkin;
    exporters[1] = &tomograph_retained->shared->shipper.otlp;
    exporters[2] = &tomograph_retained->shared->shipper.statsd;
    exporters[3] = &tomograph_retained->shared->shipper.file;
    tg_queue_stats(tomograph_retained->queue, &queue);
    created = atomic_load(&tomograph_retained->shared->spans_created);
    undecodable = atomic_load(&tomograph_retained->shared->shipper.undecodable);
    lost = queue.dropped_full + queue.dropped_oversize + queue.abandoned + queue.skipped_stale;
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
                   created, queue.pushed, lost, queue.depth, queue.used_bytes, undecodable);
        for (i = 0; i < 4; i++)
            ap_rprintf(r, "Tomograph%sTaken: %" APR_UINT64_T_FMT "\n"
                          "Tomograph%sSent: %" APR_UINT64_T_FMT "\n"
                          "Tomograph%sFailed: %" APR_UINT64_T_FMT "\n"
                          "Tomograph%sDropped: %" APR_UINT64_T_FMT "\n"
                          "Tomograph%sInFlight: %" APR_UINT64_T_FMT "\n",
                       names[i], (uint64_t)atomic_load(&exporters[i]->taken),
                       names[i], (uint64_t)atomic_load(&exporters[i]->sent),
                       names[i], (uint64_t)atomic_load(&exporters[i]->failed),
                       names[i], (uint64_t)atomic_load(&exporters[i]->dropped),
                       names[i], (uint64_t)atomic_load(&exporters[i]->in_flight));
        return OK;
    }
    ap_rprintf(r, "<hr>\n<h2>Tomograph</h2>\n<p>shipper pid %" APR_INT64_T_FMT ", %s</p>\n",
               shipper_pid, shipper_running ? "running" : "not running");
    ap_rprintf(r, "<p>spans created %" APR_UINT64_T_FMT
                  ", queued %" APR_UINT64_T_FMT ", dropped by the queue %" APR_UINT64_T_FMT
                  ", in the queue %" APR_UINT64_T_FMT " (%" APR_UINT64_T_FMT " bytes)"
                  ", undecodable %" APR_UINT64_T_FMT "</p>\n"
                  "<table><tr><th>exporter</th><th>taken</th><th>sent</th><th>failed</th>"
                  "<th>dropped</th><th>in flight</th></tr>\n",
               created, queue.pushed, lost, queue.depth, queue.used_bytes, undecodable);
    for (i = 0; i < 4; i++)
        ap_rprintf(r, "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                      "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td><td>%"
                      APR_UINT64_T_FMT "</td></tr>\n",
                   names[i], (uint64_t)atomic_load(&exporters[i]->taken),
                   (uint64_t)atomic_load(&exporters[i]->sent),
                   (uint64_t)atomic_load(&exporters[i]->failed),
                   (uint64_t)atomic_load(&exporters[i]->dropped),
                   (uint64_t)atomic_load(&exporters[i]->in_flight));
    ap_rputs("</table>\n", r);
    return OK;
}
