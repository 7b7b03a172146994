#include "unit.h"

#include <apr_file_info.h>
#include <apr_strings.h>
#include <string.h>

#include "tg_export_set.h"
#include "tg_exporter.h"

static tg_export_config_t config(void)
{
    tg_export_config_t cfg;
    tg_export_config_defaults(&cfg);
    return cfg;
}

/* TG00005, the start-up line: every exporter, "off" or where it sends. */
static void test_describe_names_each_exporter_and_its_target(void)
{
    tg_export_config_t cfg = config();
    apr_file_t *file;
    CU_ASSERT_STRING_EQUAL(tg_export_describe(&cfg, tg_test_pool),
                           "Zipkin off, OTLP off, Statsd off, File off");
    cfg.zipkin_url = "http://127.0.0.1:9411/api/v2/spans";
    cfg.statsd_host = "127.0.0.1";
    CU_ASSERT_STRING_EQUAL(tg_export_describe(&cfg, tg_test_pool),
                           "Zipkin http://127.0.0.1:9411/api/v2/spans, OTLP off, "
                           "Statsd 127.0.0.1:8125, File off");
    /* The file is on once it is open, not because it is named. */
    cfg.span_path = "/var/log/apache2/tomograph-spans.log";
    CU_ASSERT_PTR_NULL(tg_exporter_file.target(&cfg, tg_test_pool));
    CU_ASSERT_EQUAL_FATAL(apr_file_open(&file, "/dev/null", APR_FOPEN_WRITE, 0, tg_test_pool),
                          APR_SUCCESS);
    cfg.span_file = file;
    cfg.otlp_url = "http://127.0.0.1:4318/v1/traces";
    cfg.statsd_port = 9125;
    CU_ASSERT_STRING_EQUAL(tg_export_describe(&cfg, tg_test_pool),
                           "Zipkin http://127.0.0.1:9411/api/v2/spans, "
                           "OTLP http://127.0.0.1:4318/v1/traces, Statsd 127.0.0.1:9125, "
                           "File /var/log/apache2/tomograph-spans.log");
}

static void test_count_on_counts_the_exporters_configured(void)
{
    tg_export_config_t cfg = config();
    CU_ASSERT_EQUAL(tg_export_count_on(&cfg, tg_test_pool), 0);
    cfg.statsd_host = "localhost";
    CU_ASSERT_EQUAL(tg_export_count_on(&cfg, tg_test_pool), 1);
    cfg.otlp_url = "http://127.0.0.1:4318/v1/traces";
    CU_ASSERT_EQUAL(tg_export_count_on(&cfg, tg_test_pool), 2);
}

/* The names are mod_status's keys (TomographZipkinSent...): tests and
 * dashboards read them. */
static void test_table_keeps_the_status_names(void)
{
    static const char *const names[] = {"Zipkin", "OTLP", "Statsd", "File"};
    int i;
    CU_ASSERT_EQUAL_FATAL(TG_EXPORTER_COUNT, 4);
    for (i = 0; i < TG_EXPORTER_COUNT; i++)
        CU_ASSERT_STRING_EQUAL(tg_exporters[i]->name, names[i]);
}

/* The seam of an application that makes spans itself: no queue, no shipper;
 * spans handed to the exporters, delivered once drained. */
static void test_set_delivers_spans_it_is_handed(void)
{
    tg_export_config_t cfg = config();
    tg_export_counters_t counters[TG_EXPORTER_COUNT];
    tg_export_set_t *set;
    const tg_span_t *spans[2];
    char path[] = "/tmp/tg-export-set-XXXXXX";
    apr_finfo_t info;
    volatile sig_atomic_t drain_budget_ms = 1000;
    int i;
    memset(counters, 0, sizeof(counters));
    CU_ASSERT_EQUAL_FATAL(apr_file_mktemp(&cfg.span_file, path,
                                          APR_FOPEN_CREATE | APR_FOPEN_WRITE | APR_FOPEN_APPEND
                                              | APR_FOPEN_EXCL | APR_FOPEN_DELONCLOSE,
                                          tg_test_pool),
                          APR_SUCCESS);
    for (i = 0; i < 2; i++) {
        tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "GET /", NULL, 1000 + i);
        tg_span_finish(span, 2000 + i);
        spans[i] = span;
    }
    CU_ASSERT_EQUAL_FATAL(tg_export_set_open(&set, &cfg, counters, tg_test_pool), APR_SUCCESS);
    tg_export_set_count_taken(set, 2);
    tg_export_set_take(set, spans, 2, 5000, 0);
    tg_export_set_drain(set, apr_time_now(), &drain_budget_ms);
    CU_ASSERT_EQUAL(atomic_load(&counters[TG_EXPORTER_file].taken), 2);
    CU_ASSERT_EQUAL(atomic_load(&counters[TG_EXPORTER_file].sent), 2);
    CU_ASSERT_EQUAL(atomic_load(&counters[TG_EXPORTER_file].in_flight), 0);
    CU_ASSERT_EQUAL(atomic_load(&counters[TG_EXPORTER_file].last_sent), 5000);
    CU_ASSERT_EQUAL(atomic_load(&counters[TG_EXPORTER_zipkin].taken), 0);
    CU_ASSERT_EQUAL_FATAL(apr_stat(&info, path, APR_FINFO_SIZE, tg_test_pool), APR_SUCCESS);
    CU_ASSERT(info.size > 0);
}

/* What TomographZipkin/TomographOTLP and TOMOGRAPH_ZIPKIN/TOMOGRAPH_OTLP accept. */
static void test_a_collector_url_is_http_or_https_with_a_host(void)
{
    CU_ASSERT(tg_export_url_is_valid("http://127.0.0.1:9411/api/v2/spans", tg_test_pool));
    CU_ASSERT(tg_export_url_is_valid("HTTPS://zipkin.example/api/v2/spans", tg_test_pool));
    CU_ASSERT(!tg_export_url_is_valid("ftp://127.0.0.1/spans", tg_test_pool));
    CU_ASSERT(!tg_export_url_is_valid("127.0.0.1:9411/api/v2/spans", tg_test_pool));
    CU_ASSERT(!tg_export_url_is_valid("http:///api/v2/spans", tg_test_pool));
    CU_ASSERT(!tg_export_url_is_valid("http://zipkin/\r\nX-Injected: 1", tg_test_pool));
}

static void test_a_statsd_address_names_a_host_and_a_port(void)
{
    const char *host = NULL;
    apr_port_t port = 0;
    CU_ASSERT_EQUAL(tg_export_parse_statsd("127.0.0.1:8125", &host, &port, tg_test_pool),
                    APR_SUCCESS);
    CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
    CU_ASSERT_EQUAL(port, 8125);
    CU_ASSERT_EQUAL(tg_export_parse_statsd("[::1]:8125", &host, &port, tg_test_pool),
                    APR_SUCCESS);
    CU_ASSERT_STRING_EQUAL(host, "::1");
    CU_ASSERT_EQUAL(tg_export_parse_statsd("statsd", &host, &port, tg_test_pool), APR_EINVAL);
    CU_ASSERT_EQUAL(tg_export_parse_statsd("statsd:0", &host, &port, tg_test_pool), APR_EINVAL);
    CU_ASSERT_EQUAL(tg_export_parse_statsd("statsd:65536", &host, &port, tg_test_pool),
                    APR_EINVAL);
    CU_ASSERT_EQUAL(tg_export_parse_statsd("[fe80::1%eth0]:8125", &host, &port, tg_test_pool),
                    APR_EINVAL);
}

void tg_test_add_exporter(void)
{
    CU_pSuite suite = TG_SUITE("exporter");
    TG_TEST(suite, test_describe_names_each_exporter_and_its_target);
    TG_TEST(suite, test_count_on_counts_the_exporters_configured);
    TG_TEST(suite, test_table_keeps_the_status_names);
    TG_TEST(suite, test_set_delivers_spans_it_is_handed);
    TG_TEST(suite, test_a_collector_url_is_http_or_https_with_a_host);
    TG_TEST(suite, test_a_statsd_address_names_a_host_and_a_port);
}
