#include <apr_general.h>
#include <apr_strings.h>
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "lib_tests.h"

apr_pool_t *lib_test_pool;

static void start_test(void)
{
    recording_sink_reset();
}

/* Whatever a test left open would be the next test's parent. */
static void end_test(void)
{
    CU_ASSERT_EQUAL(tomograph_depth(), 0);
    tomograph_clear();
    CU_ASSERT_EQUAL(shipped_broken(), 0);
    apr_pool_clear(lib_test_pool);
}

CU_pSuite lib_test_suite(const char *name)
{
    return CU_add_suite_with_setup_and_teardown(name, NULL, NULL, start_test, end_test);
}

const char *table_get(void *table, const char *name)
{
    return apr_table_get(table, name);
}

void table_set(void *table, const char *name, const char *value)
{
    apr_table_set(table, name, value);
}

void assert_child_of(const tg_span_t *child, const tg_span_t *parent)
{
    CU_ASSERT(tg_trace_id_equal(child->trace_id, parent->trace_id));
    CU_ASSERT_EQUAL(child->parent_id, parent->id);
    CU_ASSERT_NOT_EQUAL(child->id, parent->id);
}

int main(int argc, char **argv)
{
    unsigned failures;
    if (argc == 2 && strcmp(argv[1], SAMPLING_CHILD) == 0)
        return sampling_child();
    setenv("TOMOGRAPH_SERVICE", TEST_SERVICE, 1);
    setenv("TOMOGRAPH_HMAC_KEYS", TEST_HMAC_KEYS, 1);
    unsetenv("TOMOGRAPH_SAMPLE_RATE");
    apr_initialize();
    apr_pool_create(&lib_test_pool, NULL);
    recording_sink_reset();
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    lib_test_add_stack();
    lib_test_add_handles();
    lib_test_add_headers();
    lib_test_add_process();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    apr_pool_destroy(lib_test_pool);
    apr_terminate();
    return failures ? 1 : 0;
}
