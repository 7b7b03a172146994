/* Collectors that cost the machine next to nothing, for benchmarks that load
 * httpd: a Zipkin receiver answering 202 at once (the unit tests' server, in
 * a thread) and a statsd UDP port that is never read.  Prints
 *   zipkin <url>
 *   statsd <port>
 * and serves until its standard input closes. */
#include <apr_general.h>
#include <stdio.h>
#include <unistd.h>

#include "bench_common.h"
#include "http_server.h"

int main(void)
{
    apr_pool_t *pool;
    tg_test_http_server_t *zipkin;
    apr_port_t statsd_port;
    char ignored[256];

    apr_initialize();
    apr_pool_create(&pool, NULL);
    zipkin = tg_test_http_start(pool, TG_TEST_HTTP_ACCEPT);
    if (!zipkin)
        bench_fail("cannot start the Zipkin receiver", APR_EGENERAL);
    statsd_port = bench_statsd_sink(pool);
    printf("zipkin %s\nstatsd %u\n", tg_test_http_url(zipkin), (unsigned)statsd_port);
    fflush(stdout);
    while (read(STDIN_FILENO, ignored, sizeof(ignored)) > 0)
        ;
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
