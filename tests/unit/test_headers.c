#include "unit.h"

#include "tg_headers.h"

/* The survey of a request's headers: Host, then name: value. */
static unsigned survey_with(const char *name, const char *value)
{
    apr_table_t *headers = apr_table_make(tg_test_pool, 4);
    apr_table_set(headers, "Host", "example.org");
    apr_table_set(headers, name, value);
    return tg_headers_survey(headers);
}

/* A body comes with a length other than 0 or with chunks, whatever the
 * case of the header's name; the module counts it only then. */
static void test_a_body_is_announced_by_its_length_or_its_chunks(void)
{
    CU_ASSERT_EQUAL(survey_with("Content-Length", "1024"), TG_HEADERS_ANNOUNCE_BODY);
    CU_ASSERT_EQUAL(survey_with("content-length", "1"), TG_HEADERS_ANNOUNCE_BODY);
    CU_ASSERT_EQUAL(survey_with("CONTENT-LENGTH", "17"), TG_HEADERS_ANNOUNCE_BODY);
    CU_ASSERT_EQUAL(survey_with("Transfer-Encoding", "chunked"), TG_HEADERS_ANNOUNCE_BODY);
    CU_ASSERT_EQUAL(survey_with("transfer-encoding", "gzip, chunked"), TG_HEADERS_ANNOUNCE_BODY);
}

/* No body: a length of 0, no length, or names that only begin like the
 * body's headers. */
static void test_no_body_without_a_length_or_chunks(void)
{
    static const char *const plain[] = { "Content-Type", "Content-Lengths", "Content-Len",
                                         "Connection", "Cookie", "Cache-Control", "Transfer",
                                         "Transfer-Encodings", "TE", "Trailer" };
    apr_table_t *headers = apr_table_make(tg_test_pool, 16);
    size_t i;
    CU_ASSERT_EQUAL(survey_with("Content-Length", "0"), 0);
    for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        apr_table_set(headers, plain[i], "12");
    CU_ASSERT_EQUAL(tg_headers_survey(headers), 0);
    CU_ASSERT_EQUAL(tg_headers_survey(apr_table_make(tg_test_pool, 1)), 0);
}

/* Both bits from one pass, whichever header comes first. */
static void test_a_trace_header_and_a_body_are_both_told(void)
{
    apr_table_t *headers = apr_table_make(tg_test_pool, 4);
    apr_table_set(headers, "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    apr_table_set(headers, "Content-Length", "5");
    CU_ASSERT_EQUAL(tg_headers_survey(headers),
                    TG_HEADERS_MAY_CARRY_CONTEXT | TG_HEADERS_ANNOUNCE_BODY);
    headers = apr_table_make(tg_test_pool, 4);
    apr_table_set(headers, "Transfer-Encoding", "chunked");
    apr_table_set(headers, "X-B3-TraceId", "0af7651916cd43dd8448eb211c80319c");
    CU_ASSERT_EQUAL(tg_headers_survey(headers),
                    TG_HEADERS_MAY_CARRY_CONTEXT | TG_HEADERS_ANNOUNCE_BODY);
}

void tg_test_add_headers(void)
{
    CU_pSuite suite = TG_SUITE("headers");
    TG_TEST(suite, test_a_body_is_announced_by_its_length_or_its_chunks);
    TG_TEST(suite, test_no_body_without_a_length_or_chunks);
    TG_TEST(suite, test_a_trace_header_and_a_body_are_both_told);
}
