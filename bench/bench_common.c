#include "bench_common.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "tg_record.h"

tg_span_t *bench_typical_span(apr_pool_t *pool)
{
    /* Times as a real request: 1.8 ms served, now. */
    apr_time_t start = apr_time_now();
    tg_context_t caller = {
        .span_id = tg_random_span_id(),
        .sampling = TG_SAMPLING_ACCEPT,
        .format = TG_FORMAT_TRACECONTEXT,
    };
    tg_random_root_ids(&caller.trace_id, NULL);
    /* Named after its request, as the module leaves it. */
    tg_span_t *span = tg_span_start(pool, TG_SPAN_SERVER, NULL, &caller, start);
    span->method = "GET";
    span->path = "/v2.1/servers/detail";
    span->status_code = 200;
    span->local.service_name = "nova-api";
    span->local.ipv4 = "10.0.0.12";
    span->local.port = 8774;
    span->remote.ipv4 = "10.0.0.31";
    span->remote.port = 53422;
    tg_span_finish(span, start + 1800);
    return span;
}

apr_size_t bench_typical_record(apr_pool_t *pool, unsigned char record[TG_QUEUE_SLOT_BYTES])
{
    apr_size_t len = tg_record_encode(bench_typical_span(pool), record, TG_QUEUE_SLOT_BYTES);
    if (len == 0) {
        fprintf(stderr, "tg_record_encode refused the typical span\n");
        exit(1);
    }
    return len;
}

static size_t mapping_size(uint32_t records)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (tg_queue_footprint(records) + page - 1) / page * page;
}

tg_queue_t *bench_shared_queue(uint32_t records)
{
    size_t size = mapping_size(records);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    /* Touched now, so that no benchmark pays for first-touch page faults. */
    memset(mem, 0, size);
    return tg_queue_create(mem, records);
}

void bench_unmap_queue(tg_queue_t *queue, uint32_t records)
{
    munmap(queue, mapping_size(records));
}

void bench_touch_queue(const tg_queue_t *queue, uint32_t records)
{
    const volatile unsigned char *bytes = (const volatile unsigned char *)queue;
    size_t size = mapping_size(records), page = (size_t)sysconf(_SC_PAGESIZE), at;
    for (at = 0; at < size; at += page)
        (void)bytes[at];
}

apr_port_t bench_statsd_sink(apr_pool_t *pool)
{
    apr_sockaddr_t *addr;
    apr_socket_t *sock;
    apr_status_t rv = apr_sockaddr_info_get(&addr, "127.0.0.1", APR_INET, 0, 0, pool);
    if (rv == APR_SUCCESS)
        rv = apr_socket_create(&sock, APR_INET, SOCK_DGRAM, APR_PROTO_UDP, pool);
    if (rv == APR_SUCCESS)
        rv = apr_socket_bind(sock, addr);
    if (rv == APR_SUCCESS)
        rv = apr_socket_addr_get(&addr, APR_LOCAL, sock);
    if (rv != APR_SUCCESS)
        bench_fail("statsd socket", rv);
    return addr->port;
}

void bench_fail(const char *what, apr_status_t rv)
{
    char message[256];
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
            apr_strerror(rv, message, sizeof(message)));
    exit(1);
}

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t bench_cpu_ns(void)
{
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static void print_cpu_model(void)
{
    char line[512];
    FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
    const char *model = "unknown";
    while (cpuinfo && fgets(line, sizeof(line), cpuinfo)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            model = colon + 2;
            line[strcspn(line, "\n")] = '\0';
            break;
        }
    }
    printf("machine: nproc %ld, CPU %s\n", sysconf(_SC_NPROCESSORS_ONLN), model);
    if (cpuinfo)
        fclose(cpuinfo);
}

static void print_load_average(void)
{
    double load[3];
    if (getloadavg(load, 3) == 3)
        printf("load average at start: %.2f %.2f %.2f (other work on the machine skews "
               "timings)\n", load[0], load[1], load[2]);
}

void bench_print_header(const char *title, int argc, char **argv)
{
    char program[PATH_MAX], build[PATH_MAX];
    int i;
    if (!realpath("/proc/self/exe", program))
        snprintf(program, sizeof(program), "%s", argv[0]);
    /* The program sits in <build>/bench/: the build it belongs to is two up. */
    snprintf(build, sizeof(build), "%s", program);
    printf("== %s\n", title);
    print_cpu_model();
    print_load_average();
    printf("command: make -C %s/bench BUILD=%s && %s", BENCH_SOURCE_DIR,
           dirname(dirname(build)), program);
    for (i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *values, int n)
{
    qsort(values, (size_t)n, sizeof(*values), compare_doubles);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

/* The Ir total of a callgrind output file; exits when it has none. */
static unsigned long long callgrind_total(const char *path)
{
    char line[256];
    unsigned long long total = 0;
    int found = 0;
    FILE *file = fopen(path, "r");
    while (file && !found && fgets(line, sizeof(line), file))
        found = sscanf(line, "totals: %llu", &total) == 1 || sscanf(line, "summary: %llu", &total) == 1;
    if (file)
        fclose(file);
    if (!found) {
        fprintf(stderr, "%s: no total in %s\n", program_invocation_short_name, path);
        exit(1);
    }
    return total;
}

unsigned long long bench_callgrind_self(char *const *args, const char *const *toggles,
                                        const char *out, apr_pool_t *pool)
{
    apr_array_header_t *argv = apr_array_make(pool, 16, sizeof(char *));
    char self[PATH_MAX];
    int status;
    pid_t child;
    /* Under valgrind, /proc/self/exe would be valgrind. */
    if (!realpath("/proc/self/exe", self))
        bench_fail("/proc/self/exe", APR_FROM_OS_ERROR(errno));
    APR_ARRAY_PUSH(argv, char *) = "valgrind";
    APR_ARRAY_PUSH(argv, char *) = "--tool=callgrind";
    APR_ARRAY_PUSH(argv, char *) = "--quiet";
    for (; *toggles; toggles++)
        APR_ARRAY_PUSH(argv, char *) = apr_pstrcat(pool, "--toggle-collect=", *toggles, NULL);
    APR_ARRAY_PUSH(argv, char *) = apr_pstrcat(pool, "--callgrind-out-file=", out, NULL);
    APR_ARRAY_PUSH(argv, char *) = self;
    for (; *args; args++)
        APR_ARRAY_PUSH(argv, char *) = *args;
    APR_ARRAY_PUSH(argv, char *) = NULL;
    fflush(stdout);
    child = fork();
    if (child == 0) {
        execvp("valgrind", (char **)argv->elts);
        perror("valgrind");
        _exit(127);
    }
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: the run under callgrind failed\n", program_invocation_short_name);
        exit(1);
    }
    return callgrind_total(out);
}
