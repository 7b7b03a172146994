#include "unit.h"

#include <apr_file_info.h>
#include <apr_strings.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_server.h"
#include "json_check.h"
#include "tg_buf.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_record.h"
#include "tg_shipper.h"
#include "tg_statsd.h"
#include "tg_zipkin.h"

#define QUEUE_SLOTS 64
#define MAX_SPANS 40
#define MAX_DATAGRAMS 64
#define T0 ((apr_time_t)1700000000 * APR_USEC_PER_SEC)

/* Everything one test sets up; it all lives in tg_test_pool. */
typedef struct {
    tg_queue_t *queue;
    tg_export_config_t cfg;
    tg_shipper_counters_t counters;
    const char *span_path;
    const tg_span_t *spans[MAX_SPANS];
    int n_spans;
} fixture_t;

/* An exporter's counters. */
#define EXPORTER(fx, name) (&(fx)->counters.exporters[TG_EXPORTER_##name])

static int warnings;
static char last_warning[1024];

static void record_warning(tg_log_level_t level, apr_status_t rv, const char *message)
{
    if (level == TG_LOG_WARNING) {
        warnings++;
        apr_cpystrn(last_warning, message, sizeof(last_warning));
    }
}

static apr_status_t restore_log_sink(void *unused)
{
    tg_log_set_sink(NULL);
    return APR_SUCCESS;
}

static apr_status_t free_memory(void *mem)
{
    free(mem);
    return APR_SUCCESS;
}

/* A queue in malloc'd memory, and no exporter yet. */
static fixture_t *fixture(void)
{
    fixture_t *fx = apr_pcalloc(tg_test_pool, sizeof(*fx));
    apr_size_t footprint = (tg_queue_footprint(QUEUE_SLOTS) + 63) / 64 * 64;
    void *mem = aligned_alloc(64, footprint);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
    apr_pool_cleanup_register(tg_test_pool, mem, free_memory, apr_pool_cleanup_null);
    fx->queue = tg_queue_create(mem, QUEUE_SLOTS);
    tg_export_config_defaults(&fx->cfg);
    warnings = 0;
    last_warning[0] = '\0';
    tg_log_set_sink(record_warning);
    apr_pool_cleanup_register(tg_test_pool, NULL, restore_log_sink, apr_pool_cleanup_null);
    return fx;
}

/* A finished server span of service nova-api with `notes` notes between
 * its start and stop, remembered in the fixture. */
static const tg_span_t *make_span(fixture_t *fx, const char *name, int notes)
{
    apr_time_t start = T0 + fx->n_spans * 1000;
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, name, NULL, start);
    int i;
    span->local.service_name = "nova-api";
    span->local.ipv4 = "10.0.0.7";
    for (i = 0; i < notes; i++)
        tg_span_annotate(span, start + 10 + i, apr_psprintf(tg_test_pool, "db-query-%d", i));
    tg_span_tag(span, "http.method", "GET");
    tg_span_finish(span, start + 4250);
    CU_ASSERT_FATAL(fx->n_spans < MAX_SPANS);
    fx->spans[fx->n_spans++] = span;
    return span;
}

static int queue_span(tg_queue_t *queue, const tg_span_t *span)
{
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t len = tg_record_encode(span, record, sizeof(record));
    return len > 0 && tg_queue_push(queue, record, len) == APR_SUCCESS;
}

static const tg_span_t *push_span(fixture_t *fx, const char *name, int notes)
{
    const tg_span_t *span = make_span(fx, name, notes);
    CU_ASSERT_FATAL(queue_span(fx->queue, span));
    return span;
}

static void push_spans(fixture_t *fx, int n)
{
    while (n-- > 0)
        push_span(fx, "GET /v2.1/servers", 2);
}

/* A span file deleted when the test pool closes it; buffered (then only a
 * flush puts a batch on disk), or not, as the module opens it. */
static void with_span_file_buffered(fixture_t *fx, int buffered)
{
    const char *dir;
    char *path;
    CU_ASSERT_EQUAL_FATAL(apr_temp_dir_get(&dir, tg_test_pool), APR_SUCCESS);
    path = apr_pstrcat(tg_test_pool, dir, "/tg-shipper-XXXXXX", NULL);
    CU_ASSERT_EQUAL_FATAL(apr_file_mktemp(&fx->cfg.span_file, path,
                                          APR_FOPEN_CREATE | APR_FOPEN_READ | APR_FOPEN_WRITE
                                              | APR_FOPEN_APPEND | APR_FOPEN_EXCL
                                              | APR_FOPEN_DELONCLOSE
                                              | (buffered ? APR_FOPEN_BUFFERED : 0),
                                          tg_test_pool),
                          APR_SUCCESS);
    fx->span_path = path;
}

static void with_span_file(fixture_t *fx)
{
    with_span_file_buffered(fx, 1);
}

static tg_shipper_t *shipper_for(fixture_t *fx)
{
    tg_shipper_t *shipper = NULL;
    CU_ASSERT_EQUAL_FATAL(tg_shipper_create(&shipper, fx->queue, &fx->cfg, &fx->counters,
                                            tg_test_pool),
                          APR_SUCCESS);
    return shipper;
}

/* A drain of budget_ms from started, as the daemon's loop ends with one. */
static void drain_for(tg_shipper_t *shipper, apr_time_t started, int budget_ms)
{
    volatile sig_atomic_t budget = budget_ms;
    tg_shipper_drain(shipper, started, &budget);
}

static char *span_file_text(const fixture_t *fx)
{
    apr_file_t *file;
    apr_finfo_t info;
    char *text;
    apr_size_t len;
    CU_ASSERT_EQUAL_FATAL(apr_file_open(&file, fx->span_path, APR_FOPEN_READ, 0, tg_test_pool),
                          APR_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(apr_file_info_get(&info, APR_FINFO_SIZE, file), APR_SUCCESS);
    len = (apr_size_t)info.size;
    text = apr_palloc(tg_test_pool, len + 1);
    if (len)
        CU_ASSERT_EQUAL_FATAL(apr_file_read_full(file, text, len, NULL), APR_SUCCESS);
    text[len] = '\0';
    apr_file_close(file);
    return text;
}

static char *id_hex(uint64_t id)
{
    char *hex = apr_palloc(tg_test_pool, TG_SPAN_ID_HEX_LEN + 1);
    tg_u64_to_hex(id, hex);
    return hex;
}

static char *trace_hex(tg_trace_id_t id)
{
    char *hex = apr_palloc(tg_test_pool, TG_TRACE_ID_HEX_LEN + 1);
    tg_trace_id_to_hex(id, hex);
    return hex;
}

/* The span file holds exactly `spans`, one well-formed JSON object a line, in order. */
static void assert_span_file_holds(const fixture_t *fx, const tg_span_t *const *spans, int n)
{
    char *text = span_file_text(fx), *line = text;
    int i;
    for (i = 0; i < n; i++) {
        char *newline = strchr(line, '\n');
        const char *id = NULL, *trace_id = NULL;
        CU_ASSERT_PTR_NOT_NULL_FATAL(newline);
        CU_ASSERT(tg_json_object_get_string(line, (size_t)(newline - line), "id", tg_test_pool,
                                            &id));
        CU_ASSERT(tg_json_object_get_string(line, (size_t)(newline - line), "traceId",
                                            tg_test_pool, &trace_id));
        CU_ASSERT_STRING_EQUAL(id ? id : "", id_hex(spans[i]->id));
        CU_ASSERT_STRING_EQUAL(trace_id ? trace_id : "", trace_hex(spans[i]->trace_id));
        line = newline + 1;
    }
    CU_ASSERT_STRING_EQUAL(line, "");
}

static void assert_span_file_holds_all(const fixture_t *fx)
{
    assert_span_file_holds(fx, fx->spans, fx->n_spans);
}

static uint64_t load(_Atomic uint64_t *counter)
{
    return atomic_load(counter);
}

/* The accounting identity, then each counter. */
static void assert_counts(tg_export_counters_t *c, uint64_t taken, uint64_t sent, uint64_t failed,
                          uint64_t dropped, uint64_t in_flight)
{
    CU_ASSERT_EQUAL(load(&c->taken),
                    load(&c->sent) + load(&c->failed) + load(&c->dropped) + load(&c->in_flight));
    CU_ASSERT_EQUAL(load(&c->taken), taken);
    CU_ASSERT_EQUAL(load(&c->sent), sent);
    CU_ASSERT_EQUAL(load(&c->failed), failed);
    CU_ASSERT_EQUAL(load(&c->dropped), dropped);
    CU_ASSERT_EQUAL(load(&c->in_flight), in_flight);
}

/* --- the span file, batching, drain --- */

static void test_poll_writes_one_json_line_per_span(void)
{
    fixture_t *fx = fixture();
    tg_shipper_t *shipper;
    with_span_file(fx);
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 3);
    assert_span_file_holds_all(fx);
    assert_counts(EXPORTER(fx, file), 3, 3, 0, 0, 0);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 0);
}

static void test_batch_waits_for_size_or_interval(void)
{
    fixture_t *fx = fixture();
    tg_shipper_t *shipper;
    with_span_file(fx);
    fx->cfg.batch_spans = 2;
    fx->cfg.batch_interval = apr_time_from_sec(1);
    shipper = shipper_for(fx);
    push_spans(fx, 5);

    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 5);
    assert_span_file_holds(fx, fx->spans, 4); /* two full batches */
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0 + apr_time_from_sec(1) - 1), 0);
    assert_span_file_holds(fx, fx->spans, 4);
    assert_counts(EXPORTER(fx, file), 5, 4, 0, 0, 1);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0 + apr_time_from_sec(1)), 0);
    assert_span_file_holds_all(fx);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, file)->sent), 5);
}

/* In a child process: 3 spans shipped with room on disk for less than their
 * first line, then 2 with room again.  0 when they were counted failed and
 * sent. */
static int fill_the_disk_then_free_it(fixture_t *fx, tg_shipper_t *shipper)
{
    struct rlimit saved, room;
    int i;
    signal(SIGXFSZ, SIG_IGN);
    if (getrlimit(RLIMIT_FSIZE, &saved) != 0)
        return 2;
    room = saved;
    room.rlim_cur = 100;
    for (i = 0; i < 3; i++)
        queue_span(fx->queue, fx->spans[i]);
    if (setrlimit(RLIMIT_FSIZE, &room) != 0)
        return 2;
    tg_shipper_poll(shipper, T0);
    if (setrlimit(RLIMIT_FSIZE, &saved) != 0)
        return 2;
    for (i = 3; i < 5; i++)
        queue_span(fx->queue, fx->spans[i]);
    tg_shipper_poll(shipper, T0);
    return load(&EXPORTER(fx, file)->failed) == 3 && load(&EXPORTER(fx, file)->sent) == 2 ? 0 : 1;
}

/* The disk filling in the middle of a batch (RLIMIT_FSIZE stands for it, in
 * a child process so that nothing else is limited): the batch fails, and
 * what of it was written is cut off, so that the file keeps whole lines, one
 * span each, and the next batch comes after them. */
static void test_span_file_keeps_whole_lines_when_the_disk_fills(void)
{
    fixture_t *fx = fixture();
    tg_shipper_t *shipper;
    int i, status = -1;
    pid_t child;
    with_span_file_buffered(fx, 0);
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);
    for (i = 0; i < 5; i++)
        make_span(fx, "GET /v2.1/servers", 2);
    child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0)
        _exit(fill_the_disk_then_free_it(fx, shipper));
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_span_file_holds(fx, fx->spans + 3, 2);
}

static void test_drain_ships_a_partial_batch(void)
{
    fixture_t *fx = fixture();
    tg_shipper_t *shipper;
    with_span_file(fx);
    fx->cfg.batch_interval = apr_time_from_sec(3600);
    shipper = shipper_for(fx);
    push_spans(fx, 2);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 2);
    push_spans(fx, 1);
    assert_span_file_holds(fx, fx->spans, 0);
    drain_for(shipper, apr_time_now(), 5000);
    assert_span_file_holds_all(fx);
}

static void test_drain_past_deadline_leaves_records_queued(void)
{
    fixture_t *fx = fixture();
    tg_shipper_t *shipper;
    tg_queue_stats_t stats;
    with_span_file(fx);
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    drain_for(shipper, apr_time_now(), 0);
    /* Left for the next shipper, which shares the queue. */
    tg_queue_stats(fx->queue, &stats);
    CU_ASSERT_EQUAL(stats.depth, 3);
    assert_span_file_holds(fx, fx->spans, 0);
}

static void test_undecodable_record_is_counted_and_skipped(void)
{
    fixture_t *fx = fixture();
    tg_shipper_t *shipper;
    tg_span_t *cut;
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    const tg_span_t *good[2];
    with_span_file(fx);
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);

    good[0] = push_span(fx, "first", 1);
    CU_ASSERT_EQUAL_FATAL(tg_queue_push(fx->queue, "not a record at all", 19), APR_SUCCESS);
    /* A record cut short, as from a writer that died half-way. */
    cut = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "cut", NULL, T0);
    tg_span_finish(cut, T0 + 5);
    len = tg_record_encode(cut, record, sizeof(record));
    CU_ASSERT_FATAL(len > 1);
    CU_ASSERT_EQUAL_FATAL(tg_queue_push(fx->queue, record, len - 1), APR_SUCCESS);
    good[1] = push_span(fx, "second", 1);

    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 4);
    CU_ASSERT_EQUAL(atomic_load(&fx->counters.undecodable), 2);
    /* Taken off the queue like the others, and failed: each exporter's
     * count of what it took is the queue's of what went out. */
    assert_counts(EXPORTER(fx, file), 4, 2, 2, 0, 0);
    assert_span_file_holds(fx, good, 2);
}

/* Spans the queue drops before the shipper sees them are reported in the
 * error log: one line a minute at most, while drops go on. */
static void test_queue_losses_are_reported_once_a_minute(void)
{
    fixture_t *fx = fixture();
    tg_shipper_t *shipper;
    unsigned char filler[TG_QUEUE_BYTES_PER_RECORD] = {0};
    int i;
    with_span_file(fx);
    shipper = shipper_for(fx);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 0);
    CU_ASSERT_EQUAL(warnings, 0);
    for (i = 0; i < QUEUE_SLOTS + 3; i++)
        tg_queue_push(fx->queue, filler, sizeof(filler));
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0 + apr_time_from_sec(2)), QUEUE_SLOTS);
    CU_ASSERT_EQUAL(warnings, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, "lost 3 spans"));
    /* More drops within the minute: no second line until it has passed. */
    for (i = 0; i < QUEUE_SLOTS + 2; i++)
        tg_queue_push(fx->queue, filler, sizeof(filler));
    tg_shipper_poll(shipper, T0 + apr_time_from_sec(30));
    CU_ASSERT_EQUAL(warnings, 1);
    tg_shipper_poll(shipper, T0 + apr_time_from_sec(63));
    CU_ASSERT_EQUAL(warnings, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, "lost 2 spans"));
    /* Nothing new: nothing said. */
    tg_shipper_poll(shipper, T0 + apr_time_from_sec(200));
    CU_ASSERT_EQUAL(warnings, 2);
    /* A new shipper (after a restart) goes on from the last report. */
    shipper = shipper_for(fx);
    tg_shipper_poll(shipper, T0 + apr_time_from_sec(300));
    CU_ASSERT_EQUAL(warnings, 2);
    for (i = 0; i < QUEUE_SLOTS + 1; i++)
        tg_queue_push(fx->queue, filler, sizeof(filler));
    tg_shipper_poll(shipper, T0 + apr_time_from_sec(302));
    CU_ASSERT_EQUAL(warnings, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, "lost 1 spans"));
}

static void test_invalid_config_is_refused(void)
{
    fixture_t *fx = fixture();
    tg_export_config_t valid = fx->cfg;
    tg_shipper_t *shipper = NULL;
    int i;
    for (i = 0; i < 6; i++) {
        fx->cfg = valid;
        switch (i) {
        case 0: fx->cfg.batch_spans = 0; break;
        case 1: fx->cfg.batch_bytes = 0; break;
        case 2: fx->cfg.buffer_spans = fx->cfg.batch_spans - 1; break;
        case 3: fx->cfg.max_attempts = -1; break;
        case 4: fx->cfg.request_timeout_ms = 0; break;
        default: fx->cfg.batch_interval = -1; break;
        }
        CU_ASSERT_EQUAL(tg_shipper_create(&shipper, fx->queue, &fx->cfg, &fx->counters,
                                          tg_test_pool),
                        APR_EINVAL);
        CU_ASSERT_PTR_NULL(shipper);
    }
    /* The least that is valid: a buffer of one batch. */
    fx->cfg = valid;
    fx->cfg.buffer_spans = fx->cfg.batch_spans;
    CU_ASSERT_EQUAL(tg_shipper_create(&shipper, fx->queue, &fx->cfg, &fx->counters, tg_test_pool),
                    APR_SUCCESS);
}

/* --- the daemon loop --- */

typedef struct {
    fixture_t *fx;
    int queued;
    volatile sig_atomic_t stop;
    volatile sig_atomic_t drain_budget_ms;
} runner_t;

static void *push_then_stop(void *arg)
{
    runner_t *runner = arg;
    int i;
    for (i = 0; i < runner->fx->n_spans; i++) {
        runner->queued += queue_span(runner->fx->queue, runner->fx->spans[i]);
        usleep(5000);
    }
    usleep(50000);
    runner->stop = 1;
    return NULL;
}

static void test_run_ships_until_stopped_then_drains(void)
{
    fixture_t *fx = fixture();
    runner_t runner = {.fx = fx, .drain_budget_ms = 1000};
    tg_shipper_t *shipper;
    pthread_t thread;
    int i;
    with_span_file(fx);
    fx->cfg.batch_interval = apr_time_from_msec(10);
    shipper = shipper_for(fx);
    for (i = 0; i < 6; i++)
        make_span(fx, "GET /", 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, push_then_stop, &runner), 0);
    tg_shipper_run(shipper, &runner.stop, &runner.drain_budget_ms);
    pthread_join(thread, NULL);
    CU_ASSERT_EQUAL(runner.queued, 6);
    assert_span_file_holds_all(fx);
}

static void test_run_drains_when_already_stopped(void)
{
    fixture_t *fx = fixture();
    volatile sig_atomic_t stop = 1, drain_budget_ms = 1000;
    tg_shipper_t *shipper;
    with_span_file(fx);
    fx->cfg.batch_interval = apr_time_from_sec(3600);
    shipper = shipper_for(fx);
    push_spans(fx, 4);
    tg_shipper_run(shipper, &stop, &drain_budget_ms);
    assert_span_file_holds_all(fx);
}

/* --- statsd --- */

typedef struct {
    int n;
    char *text[MAX_DATAGRAMS];
    apr_size_t len[MAX_DATAGRAMS];
} datagrams_t;

/* A UDP socket on the loopback of `family`; NULL when the host has none. */
static apr_socket_t *statsd_receiver(fixture_t *fx, int family, const char *host)
{
    apr_sockaddr_t *addr;
    apr_socket_t *sock;
    if (apr_sockaddr_info_get(&addr, host, family, 0, 0, tg_test_pool) != APR_SUCCESS
        || apr_socket_create(&sock, family, SOCK_DGRAM, APR_PROTO_UDP, tg_test_pool) != APR_SUCCESS
        || apr_socket_bind(sock, addr) != APR_SUCCESS
        || apr_socket_addr_get(&addr, APR_LOCAL, sock) != APR_SUCCESS)
        return NULL;
    apr_socket_timeout_set(sock, apr_time_from_msec(200));
    fx->cfg.statsd_host = host;
    fx->cfg.statsd_port = addr->port;
    return sock;
}

static void receive(apr_socket_t *sock, datagrams_t *got)
{
    char buf[65536];
    apr_size_t len = sizeof(buf);
    got->n = 0;
    while (got->n < MAX_DATAGRAMS && apr_socket_recv(sock, buf, &len) == APR_SUCCESS) {
        got->text[got->n] = apr_pstrmemdup(tg_test_pool, buf, len);
        got->len[got->n] = len;
        got->n++;
        len = sizeof(buf);
    }
}

/* What statsd must receive: every span's lines, in order; with offsets,
 * where each span's lines start in it. */
static char *expected_statsd_lines_at(const fixture_t *fx, apr_size_t *offsets)
{
    tg_buf_t lines;
    tg_statsd_memo_t memo = { NULL, 0, { 0 } };
    char *copy;
    int i;
    tg_buf_init(&lines);
    for (i = 0; i < fx->n_spans; i++) {
        if (offsets)
            offsets[i] = lines.len;
        tg_statsd_append_span(&lines, fx->spans[i], &memo);
    }
    copy = apr_pstrdup(tg_test_pool, lines.data ? lines.data : "");
    tg_buf_free(&lines);
    return copy;
}

static char *expected_statsd_lines(const fixture_t *fx)
{
    return expected_statsd_lines_at(fx, NULL);
}

/* The datagrams, each followed by a newline: compared with the expected
 * lines, this shows no line was lost, reordered or split. */
static char *joined(const datagrams_t *got)
{
    char *text = "";
    int i;
    for (i = 0; i < got->n; i++)
        text = apr_pstrcat(tg_test_pool, text, got->text[i], "\n", NULL);
    return text;
}

static void assert_statsd_line(const char *line, apr_size_t len)
{
    const char *colon = memchr(line, ':', len), *bar = memchr(line, '|', len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(colon);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bar);
    CU_ASSERT(colon < bar);
    CU_ASSERT((len - (size_t)(bar - line) == 3 && strncmp(bar, "|ms", 3) == 0)
              || (len - (size_t)(bar - line) == 2 && strncmp(bar, "|c", 2) == 0));
}

static void assert_datagrams_well_formed(const datagrams_t *got, apr_size_t packet)
{
    int i;
    for (i = 0; i < got->n; i++) {
        const char *line = got->text[i], *end = got->text[i] + got->len[i];
        /* Only a single line too long for any datagram may exceed it. */
        if (memchr(line, '\n', got->len[i]))
            CU_ASSERT(got->len[i] <= packet);
        /* As few datagrams as may be: the next one's first line did not
         * fit in this one. */
        if (i + 1 < got->n) {
            const char *next_newline = memchr(got->text[i + 1], '\n', got->len[i + 1]);
            apr_size_t next_line = next_newline ? (apr_size_t)(next_newline - got->text[i + 1])
                                                : got->len[i + 1];
            CU_ASSERT(got->len[i] + 1 + next_line > packet);
        }
        while (line < end) {
            const char *newline = memchr(line, '\n', (size_t)(end - line));
            const char *stop = newline ? newline : end;
            assert_statsd_line(line, (apr_size_t)(stop - line));
            line = stop + 1;
        }
    }
}

static void test_statsd_gets_timer_and_counter_lines(void)
{
    fixture_t *fx = fixture();
    apr_socket_t *receiver = statsd_receiver(fx, APR_INET, "127.0.0.1");
    tg_shipper_t *shipper;
    datagrams_t got;
    char *text;
    CU_ASSERT_PTR_NOT_NULL_FATAL(receiver);
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);
    push_span(fx, "GET /v2.1/servers", 1);
    push_span(fx, "POST /v2.1/servers", 0);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 2);
    receive(receiver, &got);
    /* Short lines share one datagram. */
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    text = joined(&got);
    CU_ASSERT_STRING_EQUAL(text, expected_statsd_lines(fx));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "|ms\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "db-query-0:1|c\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "start:1|c\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "stop:1|c\n"));
    assert_datagrams_well_formed(&got, fx->cfg.statsd_packet);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, statsd)->sent), 2);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, statsd)->failed), 0);
}

/* A shipper that sends each poll's spans to statsd in datagrams of at most
 * `packet` bytes. */
static tg_shipper_t *statsd_shipper_for(fixture_t *fx, apr_size_t packet)
{
    fx->cfg.batch_interval = 0;
    fx->cfg.statsd_packet = packet;
    return shipper_for(fx);
}

/* A span name of size - 1 'x's. */
static const char *long_name(char *name, size_t size)
{
    memset(name, 'x', size - 1);
    name[size - 1] = '\0';
    return name;
}

static void test_statsd_datagrams_stay_within_packet_size(void)
{
    fixture_t *fx = fixture();
    apr_socket_t *receiver = statsd_receiver(fx, APR_INET, "127.0.0.1");
    tg_shipper_t *shipper;
    datagrams_t got;
    int i;
    CU_ASSERT_PTR_NOT_NULL_FATAL(receiver);
    shipper = statsd_shipper_for(fx, 200);
    for (i = 0; i < 6; i++)
        push_span(fx, "GET /v2.1/servers/detail", 5);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 6);
    receive(receiver, &got);
    CU_ASSERT(got.n > 6);
    for (i = 0; i < got.n; i++)
        CU_ASSERT(got.len[i] <= 200);
    assert_datagrams_well_formed(&got, 200);
    CU_ASSERT_STRING_EQUAL(joined(&got), expected_statsd_lines(fx));
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, statsd)->sent), 6);
}

/* A datagram the kernel refuses (here one over UDP's 65,507 bytes, which
 * TomographStatsdPacket never allows) fails its own spans and no other: the
 * datagram after it still goes, and each span counts once, sent or failed. */
static void test_statsd_refused_datagram_fails_its_spans_alone(void)
{
    fixture_t *fx = fixture();
    apr_socket_t *receiver = statsd_receiver(fx, APR_INET, "127.0.0.1");
    char name[TG_SPAN_MAX_STRING + 1];
    apr_size_t offsets[MAX_SPANS], arrived_from;
    const char *expected, *text;
    tg_shipper_t *shipper;
    datagrams_t got;
    int i, arrived_whole = 0;
    enum { SPANS = 36 }; /* ~2.2 KB of lines each: two datagrams */
    CU_ASSERT_PTR_NOT_NULL_FATAL(receiver);
    shipper = statsd_shipper_for(fx, 70000);
    for (i = 0; i < SPANS; i++)
        push_span(fx, long_name(name, sizeof(name)), 5);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), SPANS);
    receive(receiver, &got);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    /* What arrived is the batch's last lines, whole. */
    expected = expected_statsd_lines_at(fx, offsets);
    text = joined(&got);
    CU_ASSERT_FATAL(strlen(text) < strlen(expected));
    arrived_from = strlen(expected) - strlen(text);
    CU_ASSERT_STRING_EQUAL(expected + arrived_from, text);
    CU_ASSERT_EQUAL(expected[arrived_from - 1], '\n');
    /* Sent: the spans whose lines all arrived; failed: the others. */
    for (i = 0; i < fx->n_spans; i++)
        arrived_whole += offsets[i] >= arrived_from;
    CU_ASSERT(arrived_whole > 0 && arrived_whole < SPANS);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, statsd)->sent), (uint64_t)arrived_whole);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, statsd)->failed), (uint64_t)(SPANS - arrived_whole));
    CU_ASSERT_EQUAL(warnings, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, "cannot send a datagram to statsd"));
}

static void test_statsd_line_longer_than_packet_goes_alone(void)
{
    fixture_t *fx = fixture();
    apr_socket_t *receiver = statsd_receiver(fx, APR_INET, "127.0.0.1");
    char name[201];
    tg_shipper_t *shipper;
    datagrams_t got;
    int i;
    CU_ASSERT_PTR_NOT_NULL_FATAL(receiver);
    shipper = statsd_shipper_for(fx, 100);
    /* A timer and the start, note and stop counters: 4 lines over 100 bytes. */
    push_span(fx, long_name(name, sizeof(name)), 1);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 1);
    receive(receiver, &got);
    CU_ASSERT_EQUAL(got.n, 4);
    for (i = 0; i < got.n; i++) {
        CU_ASSERT(got.len[i] > 100);
        CU_ASSERT_PTR_NULL(memchr(got.text[i], '\n', got.len[i]));
    }
    CU_ASSERT_STRING_EQUAL(joined(&got), expected_statsd_lines(fx));
}

static void test_statsd_over_ipv6(void)
{
    fixture_t *fx = fixture();
    apr_socket_t *receiver = statsd_receiver(fx, APR_INET6, "::1");
    tg_shipper_t *shipper;
    datagrams_t got;
    if (!receiver)
        return; /* no IPv6 loopback on this host */
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 1);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 1);
    receive(receiver, &got);
    CU_ASSERT_STRING_EQUAL(joined(&got), expected_statsd_lines(fx));
}

/* --- the HTTP exporters --- */

/* Polls at `now` (the clock of the backoff) until `condition` holds, at
 * most 3 s of real time, waiting for the POSTs' progress between looks. */
#define POLL_UNTIL(shipper, now, condition)                                                        \
    do {                                                                                           \
        apr_time_t give_up_at_ = apr_time_now() + apr_time_from_sec(10);                           \
        while (tg_shipper_poll((shipper), (now)) >= 0 && !(condition)                              \
               && apr_time_now() < give_up_at_)                                                    \
            tg_shipper_wait((shipper), apr_time_from_msec(5));                                     \
    } while (0)

/* Polls at `now` for a while, long enough for a POST on loopback to reach
 * the server, for the tests that check that none is made. */
static void poll_a_while(tg_shipper_t *shipper, apr_time_t now)
{
    apr_time_t until = apr_time_now() + apr_time_from_msec(100);
    while (apr_time_now() < until) {
        tg_shipper_poll(shipper, now);
        tg_shipper_wait(shipper, apr_time_from_msec(5));
    }
}

static tg_test_http_server_t *collector(tg_test_http_mode_t mode)
{
    tg_test_http_server_t *server = tg_test_http_start(tg_test_pool, mode);
    CU_ASSERT_PTR_NOT_NULL_FATAL(server);
    return server;
}

static const char *closed_url(void)
{
    const char *url = tg_test_http_closed_url(tg_test_pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(url);
    return url;
}

/* A collector in `mode`, set as the exporter whose URL is *url. */
static tg_test_http_server_t *collector_for(const char **url, tg_test_http_mode_t mode)
{
    tg_test_http_server_t *server = collector(mode);
    *url = tg_test_http_url(server);
    return server;
}

/* The collector comes back where the shipper was told to find it. */
static tg_test_http_server_t *collector_back_at(const char *url)
{
    tg_test_http_server_t *server = tg_test_http_start_at(tg_test_pool, TG_TEST_HTTP_ACCEPT, url);
    CU_ASSERT_PTR_NOT_NULL_FATAL(server);
    return server;
}

static void assert_body_lists(const char *body, const tg_span_t *const *spans, int n)
{
    size_t len = strlen(body);
    int i;
    CU_ASSERT_FATAL(len >= 2);
    CU_ASSERT_EQUAL(body[0], '[');
    CU_ASSERT_EQUAL(body[len - 1], ']');
    for (i = 0; i < n; i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(body, apr_psprintf(tg_test_pool, "\"%s\"",
                                                         id_hex(spans[i]->id))));
        CU_ASSERT_PTR_NOT_NULL(strstr(body, apr_psprintf(tg_test_pool, "\"%s\"",
                                                         trace_hex(spans[i]->trace_id))));
    }
}

/* The span ids a Zipkin body lists, in order, as "id,id,...". */
static char *listed_ids(const char *body)
{
    const tg_test_json_t *list = tg_test_json_parse(body, strlen(body), tg_test_pool);
    char *ids = "";
    int i;
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    CU_ASSERT_EQUAL_FATAL(list->type, TG_TEST_JSON_ARRAY);
    for (i = 0; i < list->count; i++)
        ids = apr_pstrcat(tg_test_pool, ids, i ? "," : "",
                          tg_test_json_string_at(list->items[i], "id"), NULL);
    return ids;
}

/* What listed_ids gives for spans[first..first+n) of the fixture. */
static char *ids_of(const fixture_t *fx, int first, int n)
{
    char *ids = "";
    int i;
    for (i = first; i < first + n; i++)
        ids = apr_pstrcat(tg_test_pool, ids, i > first ? "," : "", id_hex(fx->spans[i]->id), NULL);
    return ids;
}

/* Every request's ids, joined by ";" */
static char *received_ids(const tg_test_http_server_t *server)
{
    char *all = "";
    int i;
    for (i = 0; i < tg_test_http_request_count(server); i++)
        all = apr_pstrcat(tg_test_pool, all, i ? ";" : "",
                          listed_ids(tg_test_http_request(server, i)->body), NULL);
    return all;
}

static void test_zipkin_gets_one_post_per_batch(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_ACCEPT);
    tg_shipper_t *shipper;
    const tg_test_http_request_t *request;
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 3);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), 1);
    request = tg_test_http_request(server, 0);
    assert_body_lists(request->body, fx->spans, 3);
    CU_ASSERT_STRING_EQUAL(tg_test_http_header(request, "content-type", tg_test_pool),
                           "application/json");
    CU_ASSERT_STRING_EQUAL(tg_test_http_header(request, "b3", tg_test_pool), "0");
    assert_counts(EXPORTER(fx, zipkin), 3, 3, 0, 0, 0);
    CU_ASSERT_EQUAL(warnings, 0);

    /* The next batch goes over the same connection. */
    push_spans(fx, 2);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), 2);
    assert_body_lists(tg_test_http_request(server, 1)->body, fx->spans + 3, 2);
    CU_ASSERT_EQUAL(tg_test_http_accepts(server), 1);
    assert_counts(EXPORTER(fx, zipkin), 5, 5, 0, 0, 0);
}

static void test_otlp_gets_the_batch_as_one_request(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.otlp_url, TG_TEST_HTTP_ACCEPT);
    tg_shipper_t *shipper;
    const tg_test_http_request_t *request;
    const tg_test_json_t *tree;
    int i;
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, otlp)->in_flight) == 0);
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), 1);
    request = tg_test_http_request(server, 0);
    CU_ASSERT_STRING_EQUAL(tg_test_http_header(request, "content-type", tg_test_pool),
                           "application/json");
    tree = tg_test_json_parse(request->body, request->body_len, tg_test_pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tree);
    CU_ASSERT_STRING_EQUAL(
        tg_test_json_string_at(tree, "resourceSpans/0/resource/attributes/0/value/stringValue"),
        "nova-api");
    CU_ASSERT_EQUAL_FATAL(tg_test_json_count_at(tree, "resourceSpans/0/scopeSpans/0/spans"), 3);
    for (i = 0; i < 3; i++)
        CU_ASSERT_STRING_EQUAL(
            tg_test_json_string_at(tree, apr_psprintf(tg_test_pool,
                                                      "resourceSpans/0/scopeSpans/0/spans/%d/spanId",
                                                      i)),
            id_hex(fx->spans[i]->id));
    assert_counts(EXPORTER(fx, otlp), 3, 3, 0, 0, 0);
    /* Zipkin is off: it takes nothing. */
    assert_counts(EXPORTER(fx, zipkin), 0, 0, 0, 0, 0);
}

static void test_silent_collector_does_not_hold_the_queue(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector(TG_TEST_HTTP_SILENT);
    apr_socket_t *receiver = statsd_receiver(fx, APR_INET, "127.0.0.1");
    tg_shipper_t *shipper;
    apr_time_t start;
    datagrams_t got;
    CU_ASSERT_PTR_NOT_NULL_FATAL(receiver);
    with_span_file(fx);
    fx->cfg.zipkin_url = tg_test_http_url(server);
    fx->cfg.otlp_url = tg_test_http_url(server);
    fx->cfg.batch_interval = 0;
    fx->cfg.request_timeout_ms = 5000;
    shipper = shipper_for(fx);
    start = apr_time_now();
    push_spans(fx, 3);
    POLL_UNTIL(shipper, T0, tg_test_http_request_count(server) >= 1);
    push_spans(fx, 3);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 3);
    /* Well within the request timeout, the file and statsd have every span. */
    CU_ASSERT(apr_time_now() - start < apr_time_from_sec(2));
    assert_span_file_holds_all(fx);
    receive(receiver, &got);
    CU_ASSERT_STRING_EQUAL(joined(&got), expected_statsd_lines(fx));
    assert_counts(EXPORTER(fx, file), 6, 6, 0, 0, 0);
    assert_counts(EXPORTER(fx, statsd), 6, 6, 0, 0, 0);
    assert_counts(EXPORTER(fx, zipkin), 6, 0, 0, 0, 6);
    assert_counts(EXPORTER(fx, otlp), 6, 0, 0, 0, 6);
}

static void test_failed_post_is_retried_with_growing_backoff(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_FAIL);
    tg_shipper_t *shipper;
    apr_time_t second;
    fx->cfg.batch_interval = 0;
    fx->cfg.max_attempts = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 2);

    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->retried) == 2);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 1);
    assert_counts(EXPORTER(fx, zipkin), 2, 0, 0, 0, 2);
    /* The first wait is 50 to 100 ms. */
    poll_a_while(shipper, T0 + apr_time_from_msec(49));
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 1);
    second = T0 + apr_time_from_msec(100);
    POLL_UNTIL(shipper, second, load(&EXPORTER(fx, zipkin)->retried) == 4);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 2);
    /* The second, 100 to 200 ms. */
    poll_a_while(shipper, second + apr_time_from_msec(99));
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 2);
    /* Waits for the shipper to see the third failure, not for the server to
     * see the third try: the switch below must not turn its answer into 202. */
    POLL_UNTIL(shipper, second + apr_time_from_msec(200),
               load(&EXPORTER(fx, zipkin)->retried) == 6);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 3);

    /* The collector recovers: the same batch arrives, once. */
    tg_test_http_set_mode(server, TG_TEST_HTTP_ACCEPT);
    POLL_UNTIL(shipper, T0 + apr_time_from_sec(60), load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), 4);
    CU_ASSERT_STRING_EQUAL(received_ids(server),
                           apr_pstrcat(tg_test_pool, ids_of(fx, 0, 2), ";", ids_of(fx, 0, 2), ";",
                                       ids_of(fx, 0, 2), ";", ids_of(fx, 0, 2), NULL));
    assert_counts(EXPORTER(fx, zipkin), 2, 2, 0, 0, 0);
    /* One line for the whole outage. */
    CU_ASSERT_EQUAL(warnings, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, "500"));

    /* A success starts the backoff over: the next outage waits 50-100 ms
     * again, not 400-800. */
    tg_test_http_set_mode(server, TG_TEST_HTTP_FAIL);
    push_spans(fx, 1);
    second = T0 + apr_time_from_sec(120);
    POLL_UNTIL(shipper, second, load(&EXPORTER(fx, zipkin)->retried) == 7);
    POLL_UNTIL(shipper, second + apr_time_from_msec(100), tg_test_http_request_count(server) == 6);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 6);
}

static void test_backoff_stops_growing_at_ten_seconds(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_FAIL);
    tg_shipper_t *shipper;
    apr_time_t now = T0;
    int failures;
    fx->cfg.batch_interval = 0;
    fx->cfg.max_attempts = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 1);
    /* 100 ms doubled 9 times would be 51 s: past the cap. */
    for (failures = 1; failures <= 10; failures++) {
        POLL_UNTIL(shipper, now, load(&EXPORTER(fx, zipkin)->retried) == (uint64_t)failures);
        CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), failures);
        now += apr_time_from_sec(10);
    }
    now -= apr_time_from_sec(10);
    /* Between 5 and 10 s from here, with jitter. */
    poll_a_while(shipper, now + apr_time_from_msec(4990));
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 10);
    POLL_UNTIL(shipper, now + apr_time_from_sec(10), tg_test_http_request_count(server) == 11);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 11);
}

static void test_collector_back_after_a_while_gets_the_buffered_spans(void)
{
    fixture_t *fx = fixture();
    const char *url = closed_url();
    tg_test_http_server_t *server;
    tg_shipper_t *shipper;
    with_span_file(fx);
    fx->cfg.zipkin_url = url;
    fx->cfg.batch_interval = 0;
    fx->cfg.batch_spans = 2;
    shipper = shipper_for(fx);
    push_spans(fx, 6);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->retried) >= 2);
    poll_a_while(shipper, T0 + apr_time_from_msec(10));
    assert_counts(EXPORTER(fx, zipkin), 6, 0, 0, 0, 6);
    /* The span file does not wait for Zipkin. */
    assert_span_file_holds_all(fx);
    assert_counts(EXPORTER(fx, file), 6, 6, 0, 0, 0);
    CU_ASSERT_EQUAL(warnings, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, url));

    server = collector_back_at(url);
    POLL_UNTIL(shipper, T0 + apr_time_from_sec(20), load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    /* Oldest first, each batch once. */
    CU_ASSERT_STRING_EQUAL(received_ids(server),
                           apr_pstrcat(tg_test_pool, ids_of(fx, 0, 2), ";", ids_of(fx, 2, 2), ";",
                                       ids_of(fx, 4, 2), NULL));
    assert_counts(EXPORTER(fx, zipkin), 6, 6, 0, 0, 0);
}

static void test_refused_batch_is_failed_at_once_and_not_retried(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_REJECT);
    tg_shipper_t *shipper;
    fx->cfg.batch_interval = 0;
    fx->cfg.batch_spans = 1;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    assert_counts(EXPORTER(fx, zipkin), 3, 0, 3, 0, 0);
    CU_ASSERT_EQUAL(load(&EXPORTER(fx, zipkin)->retried), 0);
    poll_a_while(shipper, T0 + apr_time_from_sec(60));
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 3);
    CU_ASSERT_STRING_EQUAL(received_ids(server),
                           apr_pstrcat(tg_test_pool, ids_of(fx, 0, 1), ";", ids_of(fx, 1, 1), ";",
                                       ids_of(fx, 2, 1), NULL));
    CU_ASSERT_EQUAL(warnings, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, "400"));
}

static void test_redirect_is_not_followed_nor_retried(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.otlp_url, TG_TEST_HTTP_REDIRECT);
    tg_shipper_t *shipper;
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 2);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, otlp)->in_flight) == 0);
    poll_a_while(shipper, T0 + apr_time_from_sec(60));
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 1);
    assert_counts(EXPORTER(fx, otlp), 2, 0, 2, 0, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, "301"));
}

static void test_throttled_batch_is_retried(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.otlp_url, TG_TEST_HTTP_THROTTLE);
    tg_shipper_t *shipper;
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 2);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, otlp)->retried) == 2);
    assert_counts(EXPORTER(fx, otlp), 2, 0, 0, 0, 2);
    tg_test_http_set_mode(server, TG_TEST_HTTP_ACCEPT);
    POLL_UNTIL(shipper, T0 + apr_time_from_sec(20), load(&EXPORTER(fx, otlp)->in_flight) == 0);
    assert_counts(EXPORTER(fx, otlp), 2, 2, 0, 0, 0);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 2);
}

static void test_batch_is_given_up_after_max_attempts(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_FAIL);
    tg_shipper_t *shipper;
    fx->cfg.batch_interval = 0;
    fx->cfg.max_attempts = 3;
    shipper = shipper_for(fx);
    push_spans(fx, 2);
    /* Each failure is waited for as the shipper sees it (its backoff counts
     * from then): the first at T0; at T0 + 150 ms the second try is due (50
     * to 100 ms later) and the third not yet (100 to 200 ms after that). */
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->retried) == 2);
    POLL_UNTIL(shipper, T0 + apr_time_from_msec(150), load(&EXPORTER(fx, zipkin)->retried) == 4);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 2);
    assert_counts(EXPORTER(fx, zipkin), 2, 0, 0, 0, 2);
    POLL_UNTIL(shipper, T0 + apr_time_from_sec(40), load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    assert_counts(EXPORTER(fx, zipkin), 2, 0, 2, 0, 0);
    CU_ASSERT_EQUAL(load(&EXPORTER(fx, zipkin)->retried), 4);
    poll_a_while(shipper, T0 + apr_time_from_sec(60));
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, "gave up on 2 spans after 3 attempts"));
}

static void test_full_buffer_drops_the_oldest_and_counts_them(void)
{
    fixture_t *fx = fixture();
    const char *url = closed_url();
    tg_test_http_server_t *server;
    tg_shipper_t *shipper;
    fx->cfg.zipkin_url = url;
    fx->cfg.batch_interval = 0;
    fx->cfg.batch_spans = 2;
    fx->cfg.buffer_spans = 4;
    shipper = shipper_for(fx);
    push_spans(fx, 2);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->retried) == 2);
    push_spans(fx, 2);
    tg_shipper_poll(shipper, T0);
    assert_counts(EXPORTER(fx, zipkin), 4, 0, 0, 0, 4);
    push_spans(fx, 4);
    tg_shipper_poll(shipper, T0);
    assert_counts(EXPORTER(fx, zipkin), 8, 0, 0, 4, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_warning, "full"));

    server = collector_back_at(url);
    POLL_UNTIL(shipper, T0 + apr_time_from_sec(20), load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    /* The newest four arrive; the oldest four were dropped. */
    CU_ASSERT_STRING_EQUAL(received_ids(server),
                           apr_pstrcat(tg_test_pool, ids_of(fx, 4, 2), ";", ids_of(fx, 6, 2), NULL));
    assert_counts(EXPORTER(fx, zipkin), 8, 4, 0, 4, 0);
}

static void test_full_buffer_spares_the_post_on_the_wire(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_SILENT);
    tg_shipper_t *shipper;
    fx->cfg.batch_interval = 0;
    fx->cfg.batch_spans = 2;
    fx->cfg.buffer_spans = 2;
    fx->cfg.request_timeout_ms = 300;
    shipper = shipper_for(fx);
    push_spans(fx, 2);
    POLL_UNTIL(shipper, T0, tg_test_http_request_count(server) == 1);
    push_spans(fx, 4);
    tg_shipper_poll(shipper, T0);
    /* Spans 0-1 are on the wire; 2-3 made room for 4-5. */
    assert_counts(EXPORTER(fx, zipkin), 6, 0, 0, 2, 4);

    /* The POST times out: back in the buffer, the oldest there, it goes. */
    tg_test_http_set_mode(server, TG_TEST_HTTP_ACCEPT);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->retried) == 2);
    assert_counts(EXPORTER(fx, zipkin), 6, 0, 0, 4, 2);
    POLL_UNTIL(shipper, T0 + apr_time_from_sec(20), load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    assert_counts(EXPORTER(fx, zipkin), 6, 2, 0, 4, 0);
    CU_ASSERT_STRING_EQUAL(listed_ids(tg_test_http_request(server, 1)->body), ids_of(fx, 4, 2));
}

/* The length of a Zipkin list of spans[first..first+n). */
static apr_size_t list_length(const fixture_t *fx, int first, int n)
{
    tg_buf_t buf;
    apr_size_t len;
    tg_buf_init(&buf);
    tg_zipkin_append_list(&buf, fx->spans + first, n);
    len = buf.len;
    tg_buf_free(&buf);
    return len;
}

static void test_batch_larger_than_batch_bytes_is_split(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_ACCEPT);
    tg_shipper_t *shipper;
    int i;
    fx->cfg.batch_interval = 0;
    fx->cfg.batch_spans = 8;
    for (i = 0; i < 8; i++)
        make_span(fx, "GET /v2.1/servers", 2);
    /* Room for two of these spans, not three. */
    fx->cfg.batch_bytes = list_length(fx, 0, 2);
    CU_ASSERT_FATAL(list_length(fx, 0, 3) > fx->cfg.batch_bytes);
    shipper = shipper_for(fx);
    for (i = 0; i < 8; i++)
        CU_ASSERT_FATAL(queue_span(fx->queue, fx->spans[i]));
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(server), 4);
    for (i = 0; i < 4; i++)
        CU_ASSERT(tg_test_http_request(server, i)->body_len <= fx->cfg.batch_bytes);
    CU_ASSERT_STRING_EQUAL(received_ids(server),
                           apr_pstrcat(tg_test_pool, ids_of(fx, 0, 2), ";", ids_of(fx, 2, 2), ";",
                                       ids_of(fx, 4, 2), ";", ids_of(fx, 6, 2), NULL));
    assert_counts(EXPORTER(fx, zipkin), 8, 8, 0, 0, 0);
}

static void test_span_larger_than_batch_bytes_goes_alone(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_ACCEPT);
    tg_shipper_t *shipper;
    fx->cfg.batch_interval = 0;
    fx->cfg.batch_spans = 3;
    fx->cfg.batch_bytes = 10;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->in_flight) == 0);
    CU_ASSERT_STRING_EQUAL(received_ids(server),
                           apr_pstrcat(tg_test_pool, ids_of(fx, 0, 1), ";", ids_of(fx, 1, 1), ";",
                                       ids_of(fx, 2, 1), NULL));
    assert_counts(EXPORTER(fx, zipkin), 3, 3, 0, 0, 0);
}

static void test_one_collector_down_does_not_stop_the_other(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *otlp = collector_for(&fx->cfg.otlp_url, TG_TEST_HTTP_ACCEPT);
    tg_shipper_t *shipper;
    fx->cfg.zipkin_url = closed_url();
    fx->cfg.batch_interval = 0;
    fx->cfg.batch_spans = 2;
    shipper = shipper_for(fx);
    push_spans(fx, 4);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, otlp)->in_flight) == 0
                                && load(&EXPORTER(fx, zipkin)->retried) >= 2);
    assert_counts(EXPORTER(fx, otlp), 4, 4, 0, 0, 0);
    assert_counts(EXPORTER(fx, zipkin), 4, 0, 0, 0, 4);
    CU_ASSERT_EQUAL(tg_test_http_request_count(otlp), 2);
}

static void test_drain_gives_up_at_the_deadline(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_SILENT);
    tg_shipper_t *shipper;
    apr_time_t start;
    with_span_file(fx);
    fx->cfg.batch_interval = 0;
    fx->cfg.request_timeout_ms = 5000;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    POLL_UNTIL(shipper, T0, tg_test_http_request_count(server) == 1);
    start = apr_time_now();
    drain_for(shipper, start, 300);
    CU_ASSERT(apr_time_now() - start >= apr_time_from_msec(280));
    CU_ASSERT(apr_time_now() - start < apr_time_from_msec(1000));
    assert_counts(EXPORTER(fx, zipkin), 3, 0, 3, 0, 0);
    assert_counts(EXPORTER(fx, file), 3, 3, 0, 0, 0);
    /* Named by the host, in one line for every exporter: the shipper says nothing. */
    CU_ASSERT_STRING_EQUAL(tg_shipper_undelivered(shipper, tg_test_pool), "Zipkin 3");
    CU_ASSERT_EQUAL(warnings, 0);
}

/* Stops at once, then, 200 ms into its drain of 10 s, is told it has 100 ms. */
static void *stop_then_cut_the_drain(void *arg)
{
    runner_t *runner = arg;
    runner->stop = 1;
    usleep(200000);
    runner->drain_budget_ms = 100;
    return NULL;
}

static void test_a_drain_cut_short_ends_at_once(void)
{
    fixture_t *fx = fixture();
    runner_t runner = {.fx = fx, .drain_budget_ms = 10000};
    tg_shipper_t *shipper;
    pthread_t thread;
    apr_time_t start;
    collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_SILENT);
    collector_for(&fx->cfg.otlp_url, TG_TEST_HTTP_SILENT);
    fx->cfg.request_timeout_ms = 30000;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    start = apr_time_now();
    CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, stop_then_cut_the_drain, &runner), 0);
    tg_shipper_run(shipper, &runner.stop, &runner.drain_budget_ms);
    CU_ASSERT(apr_time_now() - start >= apr_time_from_msec(190));
    CU_ASSERT(apr_time_now() - start < apr_time_from_msec(1000));
    pthread_join(thread, NULL);
    assert_counts(EXPORTER(fx, zipkin), 3, 0, 3, 0, 0);
    assert_counts(EXPORTER(fx, otlp), 3, 0, 3, 0, 0);
    CU_ASSERT_STRING_EQUAL(tg_shipper_undelivered(shipper, tg_test_pool), "Zipkin 3, OTLP 3");
}

static void test_drain_posts_with_the_time_left_only(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector(TG_TEST_HTTP_SILENT);
    tg_shipper_t *shipper;
    apr_time_t start;
    fx->cfg.zipkin_url = tg_test_http_url(server);
    fx->cfg.otlp_url = tg_test_http_url(server);
    fx->cfg.batch_interval = apr_time_from_sec(3600);
    fx->cfg.request_timeout_ms = 5000;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 3);
    CU_ASSERT_EQUAL(tg_test_http_request_count(server), 0);
    start = apr_time_now();
    drain_for(shipper, start, 300);
    CU_ASSERT(apr_time_now() - start < apr_time_from_msec(1000));
    CU_ASSERT(tg_test_http_request_count(server) >= 1);
    assert_counts(EXPORTER(fx, zipkin), 3, 0, 3, 0, 0);
    assert_counts(EXPORTER(fx, otlp), 3, 0, 3, 0, 0);
}

static void test_drain_delivers_what_waited_for_the_collector(void)
{
    fixture_t *fx = fixture();
    const char *url = closed_url();
    tg_test_http_server_t *server;
    tg_shipper_t *shipper;
    fx->cfg.zipkin_url = url;
    fx->cfg.batch_interval = 0;
    fx->cfg.batch_spans = 2;
    shipper = shipper_for(fx);
    push_spans(fx, 4);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->retried) >= 2);
    server = collector_back_at(url);
    push_spans(fx, 1);
    drain_for(shipper, apr_time_now(), 3000);
    assert_counts(EXPORTER(fx, zipkin), 5, 5, 0, 0, 0);
    CU_ASSERT_PTR_NULL(tg_shipper_undelivered(shipper, tg_test_pool));
    CU_ASSERT_STRING_EQUAL(received_ids(server),
                           apr_pstrcat(tg_test_pool, ids_of(fx, 0, 2), ";", ids_of(fx, 2, 2), ";",
                                       ids_of(fx, 4, 1), NULL));
}

static void test_drain_retries_within_its_budget(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *server = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_FAIL);
    tg_shipper_t *shipper;
    apr_time_t start;
    fx->cfg.max_attempts = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 2);
    start = apr_time_now();
    drain_for(shipper, start, 500);
    /* Backing off, not hammering: 50-100, 100-200, 200-400 ms apart. */
    CU_ASSERT(tg_test_http_request_count(server) >= 2);
    CU_ASSERT(tg_test_http_request_count(server) <= 5);
    CU_ASSERT(apr_time_now() - start < apr_time_from_msec(1000));
    assert_counts(EXPORTER(fx, zipkin), 2, 0, 2, 0, 0);
}

static void test_write_off_settles_a_dead_shippers_spans(void)
{
    fixture_t *fx = fixture();
    tg_shipper_t *shipper;
    with_span_file(fx);
    fx->cfg.zipkin_url = closed_url();
    fx->cfg.batch_interval = apr_time_from_sec(3600);
    fx->cfg.batch_spans = 2;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->retried) >= 2);
    assert_counts(EXPORTER(fx, zipkin), 3, 0, 0, 0, 3);
    assert_counts(EXPORTER(fx, file), 3, 2, 0, 0, 1);
    tg_shipper_counters_write_off(&fx->counters);
    assert_counts(EXPORTER(fx, zipkin), 3, 0, 3, 0, 0);
    assert_counts(EXPORTER(fx, file), 3, 2, 1, 0, 0);
}

static void test_run_with_the_collector_down_still_ends_in_time(void)
{
    fixture_t *fx = fixture();
    runner_t runner = {.fx = fx, .drain_budget_ms = 300};
    tg_shipper_t *shipper;
    pthread_t thread;
    apr_time_t stopped;
    int i;
    with_span_file(fx);
    fx->cfg.zipkin_url = closed_url();
    fx->cfg.batch_interval = apr_time_from_msec(10);
    shipper = shipper_for(fx);
    for (i = 0; i < 6; i++)
        make_span(fx, "GET /", 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, push_then_stop, &runner), 0);
    tg_shipper_run(shipper, &runner.stop, &runner.drain_budget_ms);
    stopped = apr_time_now();
    pthread_join(thread, NULL);
    CU_ASSERT(apr_time_now() - stopped < apr_time_from_msec(100));
    CU_ASSERT_EQUAL(runner.queued, 6);
    assert_span_file_holds_all(fx);
    assert_counts(EXPORTER(fx, file), 6, 6, 0, 0, 0);
    assert_counts(EXPORTER(fx, zipkin), 6, 0, 6, 0, 0);
}

/* What mod_status shows as LastSent: when each exporter last delivered, by
 * the shipper's clock; 0 for one that never did. */
static void test_last_sent_is_when_each_exporter_last_delivered(void)
{
    fixture_t *fx = fixture();
    tg_shipper_t *shipper;
    apr_time_t later = T0 + apr_time_from_sec(5);
    collector_for(&fx->cfg.otlp_url, TG_TEST_HTTP_ACCEPT);
    with_span_file(fx);
    fx->cfg.zipkin_url = closed_url();
    fx->cfg.batch_interval = 0;
    shipper = shipper_for(fx);
    push_spans(fx, 2);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, otlp)->sent) == 2
                                && load(&EXPORTER(fx, zipkin)->retried) >= 2);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, otlp)->last_sent), T0);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, file)->last_sent), T0);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, zipkin)->last_sent), 0);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, statsd)->last_sent), 0);
    push_spans(fx, 1);
    POLL_UNTIL(shipper, later, load(&EXPORTER(fx, otlp)->sent) == 3);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, otlp)->last_sent), later);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, file)->last_sent), later);
    CU_ASSERT_EQUAL(atomic_load(&EXPORTER(fx, zipkin)->last_sent), 0);
}

static void test_each_failure_kind_is_reported_once(void)
{
    fixture_t *fx = fixture();
    apr_file_t *read_only;
    tg_shipper_t *shipper;
    with_span_file(fx);
    CU_ASSERT_EQUAL_FATAL(apr_file_open(&read_only, fx->span_path, APR_FOPEN_READ, 0, tg_test_pool),
                          APR_SUCCESS);
    fx->cfg.span_file = read_only;
    fx->cfg.zipkin_url = closed_url();
    fx->cfg.batch_interval = 0;
    fx->cfg.batch_spans = 1;
    fx->cfg.max_attempts = 1;
    shipper = shipper_for(fx);
    push_spans(fx, 3);
    POLL_UNTIL(shipper, T0, load(&EXPORTER(fx, zipkin)->failed) == 1);
    POLL_UNTIL(shipper, T0 + apr_time_from_sec(20), load(&EXPORTER(fx, zipkin)->failed) == 2);
    POLL_UNTIL(shipper, T0 + apr_time_from_sec(40), load(&EXPORTER(fx, zipkin)->failed) == 3);
    assert_counts(EXPORTER(fx, zipkin), 3, 0, 3, 0, 0);
    assert_counts(EXPORTER(fx, file), 3, 0, 3, 0, 0);
    CU_ASSERT_EQUAL(warnings, 2); /* the POSTs given up and the failed write */
}

static void test_every_exporter_gets_every_span(void)
{
    fixture_t *fx = fixture();
    tg_test_http_server_t *zipkin = collector_for(&fx->cfg.zipkin_url, TG_TEST_HTTP_ACCEPT);
    tg_test_http_server_t *otlp = collector_for(&fx->cfg.otlp_url, TG_TEST_HTTP_ACCEPT);
    apr_socket_t *receiver = statsd_receiver(fx, APR_INET, "127.0.0.1");
    tg_shipper_t *shipper;
    datagrams_t got;
    const tg_test_json_t *tree;
    CU_ASSERT_PTR_NOT_NULL_FATAL(receiver);
    with_span_file(fx);
    fx->cfg.batch_interval = apr_time_from_sec(3600);
    shipper = shipper_for(fx);
    push_spans(fx, 7);
    CU_ASSERT_EQUAL(tg_shipper_poll(shipper, T0), 7);
    CU_ASSERT_EQUAL(tg_test_http_request_count(zipkin), 0);
    assert_counts(EXPORTER(fx, zipkin), 7, 0, 0, 0, 7);
    assert_counts(EXPORTER(fx, file), 7, 0, 0, 0, 7);
    drain_for(shipper, apr_time_now(), 5000);
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(zipkin), 1);
    CU_ASSERT_STRING_EQUAL(received_ids(zipkin), ids_of(fx, 0, 7));
    CU_ASSERT_EQUAL_FATAL(tg_test_http_request_count(otlp), 1);
    tree = tg_test_json_parse(tg_test_http_request(otlp, 0)->body,
                              tg_test_http_request(otlp, 0)->body_len, tg_test_pool);
    CU_ASSERT_EQUAL(tg_test_json_count_at(tree, "resourceSpans/0/scopeSpans/0/spans"), 7);
    receive(receiver, &got);
    CU_ASSERT_STRING_EQUAL(joined(&got), expected_statsd_lines(fx));
    assert_span_file_holds_all(fx);
    assert_counts(EXPORTER(fx, zipkin), 7, 7, 0, 0, 0);
    assert_counts(EXPORTER(fx, otlp), 7, 7, 0, 0, 0);
    assert_counts(EXPORTER(fx, statsd), 7, 7, 0, 0, 0);
    assert_counts(EXPORTER(fx, file), 7, 7, 0, 0, 0);
}

void tg_test_add_shipper(void)
{
    CU_pSuite suite = TG_SUITE("shipper");
    TG_TEST(suite, test_poll_writes_one_json_line_per_span);
    TG_TEST(suite, test_queue_losses_are_reported_once_a_minute);
    TG_TEST(suite, test_batch_waits_for_size_or_interval);
    TG_TEST(suite, test_span_file_keeps_whole_lines_when_the_disk_fills);
    TG_TEST(suite, test_drain_ships_a_partial_batch);
    TG_TEST(suite, test_drain_past_deadline_leaves_records_queued);
    TG_TEST(suite, test_undecodable_record_is_counted_and_skipped);
    TG_TEST(suite, test_invalid_config_is_refused);
    TG_TEST(suite, test_run_ships_until_stopped_then_drains);
    TG_TEST(suite, test_run_drains_when_already_stopped);
    TG_TEST(suite, test_statsd_gets_timer_and_counter_lines);
    TG_TEST(suite, test_statsd_datagrams_stay_within_packet_size);
    TG_TEST(suite, test_statsd_line_longer_than_packet_goes_alone);
    TG_TEST(suite, test_statsd_refused_datagram_fails_its_spans_alone);
    TG_TEST(suite, test_statsd_over_ipv6);
    TG_TEST(suite, test_zipkin_gets_one_post_per_batch);
    TG_TEST(suite, test_otlp_gets_the_batch_as_one_request);
    TG_TEST(suite, test_silent_collector_does_not_hold_the_queue);
    TG_TEST(suite, test_failed_post_is_retried_with_growing_backoff);
    TG_TEST(suite, test_backoff_stops_growing_at_ten_seconds);
    TG_TEST(suite, test_collector_back_after_a_while_gets_the_buffered_spans);
    TG_TEST(suite, test_refused_batch_is_failed_at_once_and_not_retried);
    TG_TEST(suite, test_redirect_is_not_followed_nor_retried);
    TG_TEST(suite, test_throttled_batch_is_retried);
    TG_TEST(suite, test_batch_is_given_up_after_max_attempts);
    TG_TEST(suite, test_full_buffer_drops_the_oldest_and_counts_them);
    TG_TEST(suite, test_full_buffer_spares_the_post_on_the_wire);
    TG_TEST(suite, test_batch_larger_than_batch_bytes_is_split);
    TG_TEST(suite, test_span_larger_than_batch_bytes_goes_alone);
    TG_TEST(suite, test_one_collector_down_does_not_stop_the_other);
    TG_TEST(suite, test_drain_gives_up_at_the_deadline);
    TG_TEST(suite, test_a_drain_cut_short_ends_at_once);
    TG_TEST(suite, test_drain_posts_with_the_time_left_only);
    TG_TEST(suite, test_drain_delivers_what_waited_for_the_collector);
    TG_TEST(suite, test_drain_retries_within_its_budget);
    TG_TEST(suite, test_write_off_settles_a_dead_shippers_spans);
    TG_TEST(suite, test_run_with_the_collector_down_still_ends_in_time);
    TG_TEST(suite, test_last_sent_is_when_each_exporter_last_delivered);
    TG_TEST(suite, test_each_failure_kind_is_reported_once);
    TG_TEST(suite, test_every_exporter_gets_every_span);
}
