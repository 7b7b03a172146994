#include "unit.h"

#include <apr_strings.h>

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

void tg_test_add_exporter(void)
{
    CU_pSuite suite = TG_SUITE("exporter");
    TG_TEST(suite, test_describe_names_each_exporter_and_its_target);
    TG_TEST(suite, test_count_on_counts_the_exporters_configured);
    TG_TEST(suite, test_table_keeps_the_status_names);
}
