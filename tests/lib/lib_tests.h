/* libtomograph's tests: the calls of include/tomograph.h as an application
 * makes them, over a sink of the tests' own (recording_sink.c) that keeps
 * every span shipped, as the real sink's queue would carry it. */
#ifndef LIB_TESTS_H
#define LIB_TESTS_H

#include <CUnit/CUnit.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "tg_span.h"
#include "tomograph.h"

/* The environment main() sets before the library's first call, which reads
 * it once for the process. */
#define TEST_SERVICE "Tests-Service"
#define TEST_SERVICE_LOWERCASE "tests-service"
#define TEST_HMAC_KEYS " secret , older,"
#define TEST_SIGNING_KEY "secret"

/* Cleared after every test. */
extern apr_pool_t *lib_test_pool;

/* A suite whose tests each start with nothing shipped and must leave this
 * thread's stack empty. */
CU_pSuite lib_test_suite(const char *name);
#define LIB_TEST(suite, fn) CU_add_test((suite), #fn, (fn))

/* --- the recording sink --- */

/* Forgets what was shipped (each test starts so). */
void recording_sink_reset(void);
/* The spans shipped, in order, as decoded from their queue records. */
int shipped_count(void);
const tg_span_t *shipped(int i);
/* Spans whose record did not decode (none, ever). */
int shipped_broken(void);
/* What tomograph_sink_flush answers. */
void recording_sink_set_flushed(int flushed);

/* --- headers in an apr_table_t, as an HTTP library holds them --- */

const char *table_get(void *table, const char *name);
/* Copies: name and value are only valid during the call. */
void table_set(void *table, const char *name, const char *value);

/* --- checks --- */

/* The shipped span's parent is parent (same trace, its id as parent id). */
void assert_child_of(const tg_span_t *child, const tg_span_t *parent);

/* main's argument that makes it sampling_child() (test_process.c). */
#define SAMPLING_CHILD "--sampling-child"
int sampling_child(void);

void lib_test_add_stack(void);
void lib_test_add_handles(void);
void lib_test_add_headers(void);
void lib_test_add_process(void);

#endif
