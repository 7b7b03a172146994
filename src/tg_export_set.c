#include "tg_export_set.h"

#include <apr_strings.h>

/* While draining, the longest between two looks at the deliveries: a wait
 * ends early on progress, but not on a backoff that ends. */
#define DRAIN_WAIT_MAX apr_time_from_msec(20)

typedef struct {
    const tg_exporter_t *exporter;
    void *state;
    tg_export_counters_t *counters;
    apr_time_t due; /* when it wants pumping (its pump's answer); 0: idle */
    int undelivered; /* given up at the last drain's end */
} member_t;

struct tg_export_set_t {
    member_t members[TG_EXPORTER_COUNT];
    int count;
};

apr_status_t tg_export_set_open(tg_export_set_t **set_out, const tg_export_config_t *cfg,
                                tg_export_counters_t counters[TG_EXPORTER_COUNT],
                                apr_pool_t *pool)
{
    tg_export_set_t *set = apr_pcalloc(pool, sizeof(*set));
    int i;
    for (i = 0; i < TG_EXPORTER_COUNT; i++) {
        member_t *member = &set->members[set->count];
        apr_status_t rv;
        if (!tg_exporters[i]->target(cfg, pool))
            continue;
        member->exporter = tg_exporters[i];
        member->counters = &counters[i];
        rv = member->exporter->open(member->exporter, &member->state, cfg, member->counters,
                                    pool);
        if (rv != APR_SUCCESS)
            return rv;
        set->count++;
    }
    *set_out = set;
    return APR_SUCCESS;
}

void tg_export_set_count_taken(tg_export_set_t *set, int n)
{
    int i;
    for (i = 0; i < set->count; i++) {
        atomic_fetch_add(&set->members[i].counters->taken, (uint64_t)n);
        atomic_fetch_add(&set->members[i].counters->in_flight, (uint64_t)n);
    }
}

void tg_export_set_fail(tg_export_set_t *set, int n)
{
    int i;
    for (i = 0; i < set->count; i++)
        tg_export_settle(set->members[i].counters, &set->members[i].counters->failed, n);
}

/* An idle exporter is not called: a loop that polls for spans does so far
 * more often than batches come. */
apr_time_t tg_export_set_pump(tg_export_set_t *set, apr_time_t now, apr_time_t deadline)
{
    apr_time_t soonest = 0;
    int i;
    for (i = 0; i < set->count; i++) {
        member_t *member = &set->members[i];
        if (member->due && member->due <= now)
            member->due = member->exporter->pump(member->state, now, deadline);
        if (member->due && (!soonest || member->due < soonest))
            soonest = member->due;
    }
    return soonest;
}

void tg_export_set_take(tg_export_set_t *set, const tg_span_t *const *spans, int n,
                        apr_time_t now, apr_time_t deadline)
{
    int i;
    for (i = 0; i < set->count; i++) {
        member_t *member = &set->members[i];
        member->exporter->take(member->state, spans, n, now);
        if (member->exporter->pump)
            member->due = now;
    }
    tg_export_set_pump(set, now, deadline);
}

void tg_export_set_wait(tg_export_set_t *set, apr_interval_time_t timeout)
{
    int i;
    /* Only a delivery under way can end the wait early; without one, a
     * plain sleep. */
    for (i = 0; i < set->count; i++) {
        const member_t *member = &set->members[i];
        if (member->due && member->exporter->wait
            && member->exporter->wait(member->state, timeout))
            return;
    }
    apr_sleep(timeout);
}

void tg_export_set_drain(tg_export_set_t *set, apr_time_t started,
                         const volatile sig_atomic_t *budget_ms)
{
    apr_time_t now, deadline;
    int i;
    while ((now = apr_time_now()) < (deadline = started + apr_time_from_msec(*budget_ms))) {
        apr_time_t due = tg_export_set_pump(set, now, deadline), wake;
        if (!due || due >= deadline)
            break;
        /* Until a backoff ends, or a delivery's progress wakes us. */
        wake = due > now ? due : deadline;
        tg_export_set_wait(set, wake - now < DRAIN_WAIT_MAX ? wake - now : DRAIN_WAIT_MAX);
    }
    for (i = 0; i < set->count; i++) {
        member_t *member = &set->members[i];
        member->undelivered = member->exporter->give_up ? member->exporter->give_up(member->state)
                                                        : 0;
    }
}

const char *tg_export_set_undelivered(const tg_export_set_t *set, apr_pool_t *pool)
{
    const char *named = NULL;
    int i;
    for (i = 0; i < set->count; i++) {
        const member_t *member = &set->members[i];
        if (member->undelivered)
            named = apr_psprintf(pool, "%s%s%s %d", named ? named : "", named ? ", " : "",
                                 member->exporter->name, member->undelivered);
    }
    return named;
}
