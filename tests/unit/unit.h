/* Shared by the CUnit suites: one suite per src/ unit, each file exporting
 * tg_test_add_<unit>() which test_main.c calls. */
#ifndef TG_UNIT_H
#define TG_UNIT_H

#include <CUnit/CUnit.h>
#include <apr_pools.h>

/* A pool cleared after every test (see test_main.c). */
extern apr_pool_t *tg_test_pool;

#define TG_SUITE(name) tg_test_suite(name)
#define TG_TEST(suite, fn) CU_add_test((suite), #fn, (fn))

CU_pSuite tg_test_suite(const char *name);

void tg_test_add_buf(void);
void tg_test_add_ids(void);
void tg_test_add_span(void);
void tg_test_add_json(void);
void tg_test_add_hmac(void);
void tg_test_add_b3(void);
void tg_test_add_w3c(void);
void tg_test_add_osprofiler(void);
void tg_test_add_headers(void);
void tg_test_add_propagation(void);
void tg_test_add_redact(void);
void tg_test_add_sampling(void);
void tg_test_add_record(void);
void tg_test_add_queue(void);
void tg_test_add_segment(void);
void tg_test_add_zipkin(void);
void tg_test_add_statsd(void);
void tg_test_add_otlp(void);
void tg_test_add_http(void);
void tg_test_add_exporter(void);
void tg_test_add_shipper(void);

#endif
