#include "unit.h"

#include <apr_general.h>
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

apr_pool_t *tg_test_pool;
static apr_pool_t *root_pool;

static int create_pool(void)
{
    return apr_pool_create(&tg_test_pool, root_pool) == APR_SUCCESS ? 0 : 1;
}

static int destroy_pool(void)
{
    apr_pool_destroy(tg_test_pool);
    tg_test_pool = NULL;
    return 0;
}

static void clear_pool(void)
{
    apr_pool_clear(tg_test_pool);
}

CU_pSuite tg_test_suite(const char *name)
{
    return CU_add_suite_with_setup_and_teardown(name, create_pool, destroy_pool, NULL, clear_pool);
}

int main(int argc, char **argv)
{
    unsigned failures;
    apr_initialize();
    apr_pool_create(&root_pool, NULL);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    tg_test_add_buf();
    tg_test_add_ids();
    tg_test_add_span();
    tg_test_add_json();
    tg_test_add_hmac();
    tg_test_add_b3();
    tg_test_add_w3c();
    tg_test_add_osprofiler();
    tg_test_add_headers();
    tg_test_add_propagation();
    tg_test_add_redact();
    tg_test_add_sampling();
    tg_test_add_record();
    tg_test_add_queue();
    tg_test_add_segment();
    tg_test_add_zipkin();
    tg_test_add_statsd();
    tg_test_add_otlp();
    tg_test_add_http();
    tg_test_add_exporter();
    tg_test_add_shipper();
    /* tg_unit_tests [-v] [suite ...]: all suites unless some are named. */
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        argc--, argv++;
    }
    else {
        CU_basic_set_mode(CU_BRM_NORMAL);
    }
    if (argc == 1)
        CU_basic_run_tests();
    for (int i = 1; i < argc; i++) {
        CU_pSuite suite = CU_get_suite(argv[i]);
        if (!suite) {
            fprintf(stderr, "no suite %s\n", argv[i]);
            return 2;
        }
        CU_basic_run_suite(suite);
    }
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    apr_pool_destroy(root_pool);
    apr_terminate();
    return failures ? 1 : 0;
}
