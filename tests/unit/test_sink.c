/* lib/sink.c: where libtomograph's spans go, as a process sees it.  The
 * decision is made once per process, so each test runs its scenario in a
 * forked child with an environment of its own, and checks from the parent
 * what a user would: the span file's lines, the module's queue, the time an
 * exit took, what the child wrote on stderr. */
#include <CUnit/Basic.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_server.h"
#include "json_check.h"
#include "sink.h"
#include "tg_record.h"
#include "tg_segment.h"

/* What a child reports through its exit status. */
enum {
    CHILD_OK = 0,
    CHILD_WRONG_KIND = 10,
    CHILD_NOT_FLUSHED,
    CHILD_UNDELIVERED, /* flushed, yet not there */
    CHILD_FLUSHED,
    CHILD_FAILED
};

#define MODULE_RECORDS 64

static apr_pool_t *pool;
static char directory[] = "/tmp/tg_sink_tests.XXXXXX";

static const char *const variables[] = {TG_SEGMENT_ENV,         "TOMOGRAPH_ZIPKIN",
                                        "TOMOGRAPH_OTLP",       "TOMOGRAPH_STATSD",
                                        "TOMOGRAPH_SPAN_FILE",  "TOMOGRAPH_QUEUE_SIZE",
                                        "TOMOGRAPH_EXIT_BUDGET"};

static const char *path_of(const char *name)
{
    return apr_pstrcat(pool, directory, "/", name, NULL);
}

/* A finished span named `name`, as the API hands it over. */
static void ship(const char *name)
{
    apr_pool_t *span_pool;
    tg_span_t *span;
    apr_time_t now = apr_time_now();
    apr_pool_create(&span_pool, NULL);
    span = tg_span_start(span_pool, TG_SPAN_SERVER, name, NULL, now);
    tg_span_finish(span, now + 1000);
    tomograph_sink_ship(span);
    apr_pool_destroy(span_pool);
}

/* Runs scenario in a child whose TOMOGRAPH_* variables are only those of
 * settings ("NAME=value" ..., NULL) and whose stderr goes to stderr_path
 * (NULL: the test's).  The child exits (atexit handlers run) with what the
 * scenario returned; the parent gets that, and how long it all took. */
static int run_child(int (*scenario)(void), const char *const *settings, const char *stderr_path,
                     apr_interval_time_t *took)
{
    apr_time_t started = apr_time_now();
    int status;
    pid_t child = fork();
    if (child == 0) {
        size_t i;
        for (i = 0; i < sizeof(variables) / sizeof(variables[0]); i++)
            unsetenv(variables[i]);
        for (; settings && *settings; settings++)
            putenv((char *)*settings);
        if (stderr_path)
            freopen(stderr_path, "w", stderr);
        exit(scenario());
    }
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status))
        return -1;
    if (took)
        *took = apr_time_now() - started;
    return WEXITSTATUS(status);
}

/* A file read whole into pool, NUL-terminated. */
static apr_status_t read_whole_file(char **text, const char *path)
{
    apr_file_t *file;
    apr_finfo_t info;
    apr_status_t rv = apr_file_open(&file, path, APR_FOPEN_READ, 0, pool);
    if (rv != APR_SUCCESS)
        return rv;
    rv = apr_file_info_get(&info, APR_FINFO_SIZE, file);
    if (rv == APR_SUCCESS) {
        *text = apr_pcalloc(pool, (apr_size_t)info.size + 1);
        rv = apr_file_read_full(file, *text, (apr_size_t)info.size, NULL);
    }
    apr_file_close(file);
    return rv;
}

/* The file's lines, each checked to be one Zipkin JSON span; their names in
 * order in names[] (at most max).  -1 when a line is not a span. */
static int span_names(const char *path, const char **names, int max)
{
    char *text, *line, *last;
    size_t length;
    int count = 0;
    if (read_whole_file(&text, path) != APR_SUCCESS)
        return 0;
    length = strlen(text);
    if (length && text[length - 1] != '\n')
        return -1;
    for (line = apr_strtok(text, "\n", &last); line; line = apr_strtok(NULL, "\n", &last)) {
        const tg_test_json_t *span = tg_test_json_parse(line, strlen(line), pool);
        const char *trace_id = span ? tg_test_json_string_at(span, "traceId") : NULL;
        if (!trace_id || strlen(trace_id) != 32 || !tg_test_json_string_at(span, "id"))
            return -1;
        if (count < max)
            names[count] = tg_test_json_string_at(span, "name");
        count++;
    }
    return count;
}

/* --- to a span file --- */

/* The file is read before the exit, which would deliver them anyway. */
static int ship_three_and_flush(void)
{
    const char *names[3];
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_EXPORTERS)
        return CHILD_WRONG_KIND;
    ship("first");
    ship("second");
    ship("third");
    if (!tomograph_sink_flush(5000))
        return CHILD_NOT_FLUSHED;
    return span_names(getenv("TOMOGRAPH_SPAN_FILE"), names, 3) == 3 ? CHILD_OK
                                                                     : CHILD_UNDELIVERED;
}

static void test_a_span_file_gets_a_zipkin_line_per_span_once_flushed(void)
{
    const char *path = path_of("three.json");
    const char *settings[] = {apr_pstrcat(pool, "TOMOGRAPH_SPAN_FILE=", path, NULL), NULL};
    const char *names[3];
    CU_ASSERT_EQUAL(run_child(ship_three_and_flush, settings, NULL, NULL), CHILD_OK);
    CU_ASSERT_EQUAL_FATAL(span_names(path, names, 3), 3);
    CU_ASSERT_STRING_EQUAL(names[0], "first");
    CU_ASSERT_STRING_EQUAL(names[2], "third");
}

static int ship_five_and_return(void)
{
    int i;
    for (i = 0; i < 5; i++)
        ship("unflushed");
    return CHILD_OK;
}

static void test_spans_not_flushed_are_delivered_at_exit(void)
{
    const char *path = path_of("exit.json");
    const char *settings[] = {apr_pstrcat(pool, "TOMOGRAPH_SPAN_FILE=", path, NULL), NULL};
    const char *names[5];
    CU_ASSERT_EQUAL(run_child(ship_five_and_return, settings, NULL, NULL), CHILD_OK);
    CU_ASSERT_EQUAL(span_names(path, names, 5), 5);
}

/* --- the module's segment --- */

/* As httpd makes it where there are no memfds: in an anonymous shared
 * mapping, which a forked child has too, and no descriptor.  (The segment
 * starts where the mapping does: it is page-aligned.) */
static tg_segment_t *map_module_segment(void)
{
    void *memory = mmap(NULL, tg_segment_footprint(MODULE_RECORDS), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(memory != MAP_FAILED);
    return tg_segment_create(memory, MODULE_RECORDS);
}

static tg_queue_stats_t queue_stats(tg_segment_t *segment)
{
    tg_queue_stats_t stats;
    tg_queue_stats(tg_segment_queue(segment), &stats);
    return stats;
}

static void unmap_module_segment(tg_segment_t *segment)
{
    munmap(segment, tg_segment_footprint(MODULE_RECORDS));
}

static int ship_two_to_the_module(void)
{
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_MODULE)
        return CHILD_WRONG_KIND;
    ship("module-1");
    ship("module-2");
    return CHILD_OK;
}

static void test_a_mapped_module_segment_gets_the_spans_before_any_exporter(void)
{
    tg_segment_t *segment;
    const char *path = path_of("not-written.json");
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    tg_span_t *span;
    segment = map_module_segment();
    {
        const char *settings[] = {
            apr_pstrcat(pool, TG_SEGMENT_ENV "=", tg_segment_locator(segment, -1, pool), NULL),
            apr_pstrcat(pool, "TOMOGRAPH_SPAN_FILE=", path, NULL), NULL};
        CU_ASSERT_EQUAL(run_child(ship_two_to_the_module, settings, NULL, NULL), CHILD_OK);
    }
    CU_ASSERT_EQUAL(queue_stats(segment).created, 2);
    CU_ASSERT_EQUAL_FATAL(tg_queue_pop(tg_segment_queue(segment), record, &len), APR_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(tg_record_decode(record, len, pool, &span), APR_SUCCESS);
    CU_ASSERT_STRING_EQUAL(span->name, "module-1");
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    unmap_module_segment(segment);
}

/* Ships spans until killed. */
static int ship_until_killed(void)
{
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_MODULE)
        return CHILD_WRONG_KIND;
    for (;;)
        ship("spin");
}

/* Pops every record ready, each checked whole; how many. */
static uint64_t pop_all(tg_segment_t *segment, uint64_t *broken)
{
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    uint64_t popped = 0;
    apr_size_t len;
    tg_span_t *span;
    while (tg_queue_pop(tg_segment_queue(segment), record, &len) == APR_SUCCESS) {
        *broken += tg_record_decode(record, len, pool, &span) != APR_SUCCESS;
        popped++;
    }
    return popped;
}

/* What a segment's queue counts created and neither popped nor lost. */
static uint64_t unaccounted(tg_segment_t *segment, uint64_t popped)
{
    tg_queue_stats_t stats = queue_stats(segment);
    return stats.created - popped - tg_queue_lost(&stats);
}

/* A writer killed at any point of a span, its enqueue included, costs that
 * span at most: every span counted created is popped whole by the shipper
 * or counted lost by the queue; the one it was writing counts created only
 * once its room, when it had claimed some, is skipped as stale (and lost);
 * and the queue goes on. */
static void test_a_writer_killed_mid_span_costs_that_span_at_most(void)
{
    tg_segment_t *segment;
    uint64_t popped = 0, broken = 0, skipped;
    apr_time_t until;
    pid_t writer;
    int status, round, stuck = 0;
    segment = map_module_segment();
    setenv(TG_SEGMENT_ENV, tg_segment_locator(segment, -1, pool), 1);
    /* Until a kill lands between the claim of a record's room and its
     * publication: the room then stays taken, nothing in it ready. */
    for (round = 0; round < 500 && !stuck; round++) {
        uint64_t before = queue_stats(segment).created;
        writer = fork();
        if (writer == 0)
            _exit(ship_until_killed());
        /* Once it writes (however slowly it starts: under valgrind), a little
         * more each round. */
        while (queue_stats(segment).created == before && waitpid(writer, &status, WNOHANG) == 0)
            popped += pop_all(segment, &broken);
        until = apr_time_now() + (apr_time_t)(round % 50) * 20;
        while (apr_time_now() < until)
            popped += pop_all(segment, &broken);
        kill(writer, SIGKILL);
        CU_ASSERT_EQUAL_FATAL(waitpid(writer, &status, 0), writer);
        CU_ASSERT_FATAL(WIFSIGNALED(status));
        popped += pop_all(segment, &broken);
        CU_ASSERT_EQUAL_FATAL(unaccounted(segment, popped), 0);
        stuck = queue_stats(segment).used_bytes > 0;
    }
    /* Every kill above left nothing unaccounted.  Whether one also landed
     * inside a push is chance: the window is a few instructions, and under
     * valgrind 500 kills can miss it (test_queue's dead writer reaches it
     * with the queue alone).  When one did, its room goes as promised; and
     * either way the next writer's spans come through. */
    if (stuck) {
        skipped = queue_stats(segment).skipped_stale;
        /* Its room is skipped once stale, counted lost. */
        until = apr_time_now() + TG_QUEUE_STALE_USEC + apr_time_from_msec(500);
        while (apr_time_now() < until)
            popped += pop_all(segment, &broken);
        CU_ASSERT_EQUAL(queue_stats(segment).skipped_stale, skipped + 1);
        CU_ASSERT_EQUAL(queue_stats(segment).used_bytes, 0);
        CU_ASSERT_EQUAL(unaccounted(segment, popped), 0);
    }
    {
        const char *settings[] = {
            apr_pstrcat(pool, TG_SEGMENT_ENV "=", getenv(TG_SEGMENT_ENV), NULL), NULL};
        CU_ASSERT_EQUAL(run_child(ship_two_to_the_module, settings, NULL, NULL), CHILD_OK);
    }
    popped += pop_all(segment, &broken);
    CU_ASSERT_EQUAL(unaccounted(segment, popped), 0);
    CU_ASSERT_EQUAL(broken, 0);
    unsetenv(TG_SEGMENT_ENV);
    unmap_module_segment(segment);
}

static int ship_one_and_flush(void)
{
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_EXPORTERS)
        return CHILD_WRONG_KIND;
    ship("one");
    return tomograph_sink_flush(5000) ? CHILD_OK : CHILD_NOT_FLUSHED;
}

/* A program an application runs inherits the variable, not the mapping. */
static void test_a_locator_to_a_segment_not_mapped_here_falls_through_to_the_exporters(void)
{
    const char *locator, *path = path_of("stale.json");
    const char *names[1];
    tg_segment_t *segment = map_module_segment();
    locator = tg_segment_locator(segment, -1, pool);
    unmap_module_segment(segment);
    {
        const char *settings[] = {apr_pstrcat(pool, TG_SEGMENT_ENV "=", locator, NULL),
                                  apr_pstrcat(pool, "TOMOGRAPH_SPAN_FILE=", path, NULL), NULL};
        CU_ASSERT_EQUAL(run_child(ship_one_and_flush, settings, NULL, NULL), CHILD_OK);
    }
    CU_ASSERT_EQUAL(span_names(path, names, 1), 1);
}

/* What a program httpd exec'd holds (a CGI): the descriptor, not the
 * mapping; the child unmaps it to be one. */
static tg_segment_t *shared_segment;

static int forget_the_mapping_and_ship_two(void)
{
    munmap(shared_segment, tg_segment_footprint(MODULE_RECORDS));
    return ship_two_to_the_module();
}

static void test_a_program_with_the_descriptor_alone_ships_to_the_module(void)
{
    const char *path = path_of("not-written-exec.json");
    unsigned char record[TG_QUEUE_SLOT_BYTES];
    apr_size_t len;
    tg_span_t *span;
    int fd;
    CU_ASSERT_EQUAL_FATAL(tg_segment_share(MODULE_RECORDS, &shared_segment, &fd), APR_SUCCESS);
    {
        const char *settings[] = {
            apr_pstrcat(pool, TG_SEGMENT_ENV "=", tg_segment_locator(shared_segment, fd, pool),
                        NULL),
            apr_pstrcat(pool, "TOMOGRAPH_SPAN_FILE=", path, NULL), NULL};
        CU_ASSERT_EQUAL(run_child(forget_the_mapping_and_ship_two, settings, NULL, NULL),
                        CHILD_OK);
    }
    CU_ASSERT_EQUAL(queue_stats(shared_segment).created, 2);
    CU_ASSERT_EQUAL_FATAL(tg_queue_pop(tg_segment_queue(shared_segment), record, &len),
                          APR_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(tg_record_decode(record, len, pool, &span), APR_SUCCESS);
    CU_ASSERT_STRING_EQUAL(span->name, "module-1");
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    tg_segment_unshare(shared_segment, fd);
}

/* A CGI under suexec: the descriptor, neither the mapping nor the locator
 * (suexec keeps only the CGI variables), nor any exporter's variable. */
static void test_a_program_with_the_descriptor_and_no_locator_ships_to_the_module(void)
{
    int fd;
    CU_ASSERT_EQUAL_FATAL(tg_segment_share(MODULE_RECORDS, &shared_segment, &fd), APR_SUCCESS);
    CU_ASSERT_EQUAL(run_child(forget_the_mapping_and_ship_two, NULL, NULL, NULL), CHILD_OK);
    CU_ASSERT_EQUAL(queue_stats(shared_segment).created, 2);
    tg_segment_unshare(shared_segment, fd);
}

/* --- nothing configured --- */

static int ship_nowhere(void)
{
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_NONE)
        return CHILD_WRONG_KIND;
    ship("nowhere");
    return tomograph_sink_flush(0) ? CHILD_OK : CHILD_NOT_FLUSHED;
}

static void test_with_nothing_set_spans_go_nowhere(void)
{
    CU_ASSERT_EQUAL(run_child(ship_nowhere, NULL, NULL, NULL), CHILD_OK);
}

/* --- bad values --- */

static void test_a_bad_value_is_said_once_and_the_others_still_ship(void)
{
    const char *path = path_of("bad.json"), *log = path_of("bad.log");
    const char *settings[] = {"TOMOGRAPH_ZIPKIN=ftp://127.0.0.1/spans",
                              "TOMOGRAPH_QUEUE_SIZE=lots",
                              apr_pstrcat(pool, "TOMOGRAPH_SPAN_FILE=", path, NULL), NULL};
    const char *names[1];
    char *said;
    CU_ASSERT_EQUAL(run_child(ship_one_and_flush, settings, log, NULL), CHILD_OK);
    CU_ASSERT_EQUAL(span_names(path, names, 1), 1);
    CU_ASSERT_EQUAL_FATAL(read_whole_file(&said, log), APR_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL(strstr(said, "tomograph: TG04001: TOMOGRAPH_ZIPKIN: 'ftp://"));
    CU_ASSERT_PTR_NOT_NULL(strstr(said, "tomograph: TG04001: TOMOGRAPH_QUEUE_SIZE: 'lots'"));
    CU_ASSERT_PTR_NULL(strstr(strstr(said, "ZIPKIN") + 1, "ZIPKIN"));
}

static void test_a_span_file_that_cannot_be_opened_is_said_and_spans_go_nowhere(void)
{
    const char *log = path_of("unopenable.log");
    const char *settings[] = {"TOMOGRAPH_SPAN_FILE=/nonexistent/dir/spans.json", NULL};
    char *said;
    CU_ASSERT_EQUAL(run_child(ship_nowhere, settings, log, NULL), CHILD_OK);
    CU_ASSERT_EQUAL_FATAL(read_whole_file(&said, log), APR_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL(strstr(said, "TG04002: cannot open TOMOGRAPH_SPAN_FILE /nonexistent"));
}

/* --- fork --- */

/* What the forked child is told to ship to: set after the parent decided. */
static const char *child_variable, *child_value;

static int ship_around_a_fork(void)
{
    pid_t grandchild;
    int status;
    ship("before-fork");
    if (!tomograph_sink_flush(5000))
        return CHILD_NOT_FLUSHED;
    setenv(child_variable, child_value, 1);
    grandchild = fork();
    /* _exit: the child has flushed; and LeakSanitizer's check at exit, in a
     * process forked from one with threads, cannot scan those threads' stacks
     * (it says so: "False leaks are possible") and reports what they held. */
    if (grandchild == 0)
        _exit(ship_one_and_flush());
    if (waitpid(grandchild, &status, 0) != grandchild || !WIFEXITED(status)
        || WEXITSTATUS(status) != CHILD_OK)
        return CHILD_FAILED;
    ship("after-fork");
    return tomograph_sink_flush(5000) ? CHILD_OK : CHILD_NOT_FLUSHED;
}

static void test_a_forked_child_ships_to_its_own_exporters_and_the_parent_goes_on(void)
{
    const char *path = path_of("parent.json");
    const char *settings[] = {apr_pstrcat(pool, "TOMOGRAPH_SPAN_FILE=", path, NULL), NULL};
    const char *names[3];
    child_variable = "TOMOGRAPH_SPAN_FILE";
    child_value = path_of("child.json");
    CU_ASSERT_EQUAL(run_child(ship_around_a_fork, settings, NULL, NULL), CHILD_OK);
    CU_ASSERT_EQUAL_FATAL(span_names(path, names, 3), 2);
    CU_ASSERT_STRING_EQUAL(names[0], "before-fork");
    CU_ASSERT_STRING_EQUAL(names[1], "after-fork");
    CU_ASSERT_EQUAL_FATAL(span_names(child_value, names, 3), 1);
    CU_ASSERT_STRING_EQUAL(names[0], "one");
}

/* The spans of every request the collector got, as one string. */
static const char *bodies_of(const tg_test_http_server_t *zipkin)
{
    const char *bodies = "";
    int i;
    for (i = 0; i < tg_test_http_request_count(zipkin) && i < TG_TEST_HTTP_MAX_REQUESTS; i++) {
        const char *body = tg_test_http_request(zipkin, i)->body;
        CU_ASSERT(tg_test_is_json(body, strlen(body)));
        bodies = apr_pstrcat(pool, bodies, body, NULL);
    }
    return bodies;
}

/* The parent's connection to its collector is a socket the child shares:
 * the child makes its own HTTP client, and both go on delivering. */
static void test_a_forked_child_and_its_parent_both_deliver_to_zipkin(void)
{
    tg_test_http_server_t *parents = tg_test_http_start(pool, TG_TEST_HTTP_ACCEPT);
    tg_test_http_server_t *childs = tg_test_http_start(pool, TG_TEST_HTTP_ACCEPT);
    const char *settings[] = {
        apr_pstrcat(pool, "TOMOGRAPH_ZIPKIN=", tg_test_http_url(parents), NULL), NULL};
    const char *bodies;
    CU_ASSERT_PTR_NOT_NULL_FATAL(parents);
    CU_ASSERT_PTR_NOT_NULL_FATAL(childs);
    child_variable = "TOMOGRAPH_ZIPKIN";
    child_value = tg_test_http_url(childs);
    CU_ASSERT_EQUAL(run_child(ship_around_a_fork, settings, NULL, NULL), CHILD_OK);
    bodies = bodies_of(parents);
    CU_ASSERT_PTR_NOT_NULL(strstr(bodies, "\"before-fork\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(bodies, "\"after-fork\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(bodies_of(childs), "\"one\""));
}

/* --- a hung collector --- */

static int ship_to_a_hung_collector(void)
{
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_EXPORTERS)
        return CHILD_WRONG_KIND;
    ship("held");
    /* The file has it; Zipkin never answers. */
    return tomograph_sink_flush(300) ? CHILD_FLUSHED : CHILD_OK;
}

/* A collector that accepts connections (the kernel does, into the backlog)
 * and never answers. */
static int listen_and_never_answer(const char **url)
{
    struct sockaddr_in address = {.sin_family = AF_INET};
    socklen_t length = sizeof(address);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0
        || listen(fd, 16) != 0 || getsockname(fd, (struct sockaddr *)&address, &length) != 0)
        return -1;
    *url = apr_psprintf(pool, "TOMOGRAPH_ZIPKIN=http://127.0.0.1:%d/api/v2/spans",
                        ntohs(address.sin_port));
    return fd;
}

static void test_exit_with_a_hung_collector_takes_the_exit_budget_and_no_more(void)
{
    const char *log = path_of("hung.log"), *path = path_of("hung.json"), *zipkin = NULL;
    int fd = listen_and_never_answer(&zipkin);
    const char *settings[] = {zipkin, "TOMOGRAPH_EXIT_BUDGET=200",
                              apr_pstrcat(pool, "TOMOGRAPH_SPAN_FILE=", path, NULL), NULL};
    apr_interval_time_t took = 0;
    const char *names[1];
    char *said;
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(run_child(ship_to_a_hung_collector, settings, log, &took), CHILD_OK);
    /* The flush's 300 ms, the budget's 200, and room for a loaded machine;
     * the request timeout (5 s) would be far past it. */
    CU_ASSERT(took >= apr_time_from_msec(500));
    CU_ASSERT(took < apr_time_from_msec(1500));
    CU_ASSERT_EQUAL(span_names(path, names, 1), 1);
    CU_ASSERT_EQUAL_FATAL(read_whole_file(&said, log), APR_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL(strstr(said, "TG04004: spans not delivered within TOMOGRAPH_EXIT_BUDGET "
                                        "(200 ms) at exit, lost: Zipkin 1"));
    close(fd);
}

/* --- signals --- */

static volatile sig_atomic_t handled;

static void count_signal(int signo)
{
    handled++;
}

/* The application blocks SIGUSR1 on its thread: a SIGUSR1 sent to the
 * process must then stay pending, not run its handler on our thread. */
static int signal_while_blocked(void)
{
    sigset_t usr1, pending;
    if (tomograph_sink_kind() != TOMOGRAPH_SINK_EXPORTERS)
        return CHILD_WRONG_KIND;
    signal(SIGUSR1, count_signal);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    kill(getpid(), SIGUSR1);
    apr_sleep(apr_time_from_msec(100));
    sigpending(&pending);
    return !handled && sigismember(&pending, SIGUSR1) ? CHILD_OK : CHILD_FAILED;
}

static void test_the_shipper_thread_takes_none_of_the_applications_signals(void)
{
    const char *settings[] = {
        apr_pstrcat(pool, "TOMOGRAPH_SPAN_FILE=", path_of("signals.json"), NULL), NULL};
    CU_ASSERT_EQUAL(run_child(signal_while_blocked, settings, NULL, NULL), CHILD_OK);
}

/* The files the tests wrote, and their directory. */
static void remove_directory(void)
{
    apr_dir_t *dir;
    apr_finfo_t entry;
    if (apr_dir_open(&dir, directory, pool) != APR_SUCCESS)
        return;
    while (apr_dir_read(&entry, APR_FINFO_NAME | APR_FINFO_TYPE, dir) == APR_SUCCESS)
        if (entry.filetype == APR_REG)
            apr_file_remove(path_of(entry.name), pool);
    apr_dir_close(dir);
    apr_dir_remove(directory, pool);
}

int main(void)
{
    CU_pSuite suite;
    unsigned failures;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (!mkdtemp(directory) || CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("sink", NULL, NULL);
    CU_add_test(suite, "a span file gets a Zipkin line per span once flushed",
                test_a_span_file_gets_a_zipkin_line_per_span_once_flushed);
    CU_add_test(suite, "spans not flushed are delivered at exit",
                test_spans_not_flushed_are_delivered_at_exit);
    CU_add_test(suite, "a mapped module segment gets the spans before any exporter",
                test_a_mapped_module_segment_gets_the_spans_before_any_exporter);
    CU_add_test(suite, "a locator to a segment not mapped here falls through to the exporters",
                test_a_locator_to_a_segment_not_mapped_here_falls_through_to_the_exporters);
    CU_add_test(suite, "a program with the descriptor alone ships to the module",
                test_a_program_with_the_descriptor_alone_ships_to_the_module);
    CU_add_test(suite, "a program with the descriptor and no locator ships to the module",
                test_a_program_with_the_descriptor_and_no_locator_ships_to_the_module);
    CU_add_test(suite, "a writer killed mid-span costs that span at most",
                test_a_writer_killed_mid_span_costs_that_span_at_most);
    CU_add_test(suite, "with nothing set spans go nowhere", test_with_nothing_set_spans_go_nowhere);
    CU_add_test(suite, "a bad value is said once and the others still ship",
                test_a_bad_value_is_said_once_and_the_others_still_ship);
    CU_add_test(suite, "a span file that cannot be opened is said and spans go nowhere",
                test_a_span_file_that_cannot_be_opened_is_said_and_spans_go_nowhere);
    CU_add_test(suite, "a forked child ships to its own exporters and the parent goes on",
                test_a_forked_child_ships_to_its_own_exporters_and_the_parent_goes_on);
    CU_add_test(suite, "a forked child and its parent both deliver to Zipkin",
                test_a_forked_child_and_its_parent_both_deliver_to_zipkin);
    CU_add_test(suite, "exit with a hung collector takes the exit budget and no more",
                test_exit_with_a_hung_collector_takes_the_exit_budget_and_no_more);
    CU_add_test(suite, "the shipper thread takes none of the application's signals",
                test_the_shipper_thread_takes_none_of_the_applications_signals);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    remove_directory();
    apr_pool_destroy(pool);
    apr_terminate();
    return failures ? 1 : 0;
}
