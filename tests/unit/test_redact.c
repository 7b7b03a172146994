#include "unit.h"

#include "tg_redact.h"

#include <string.h>

static apr_array_header_t *default_params(void)
{
    static const char *const names[] = {TG_REDACT_DEFAULT_PARAMS};
    apr_array_header_t *params = apr_array_make(tg_test_pool, 6, sizeof(const char *));
    size_t i;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        APR_ARRAY_PUSH(params, const char *) = names[i];
    return params;
}

static void test_query_values_named_secret_are_replaced(void)
{
    const char *out = tg_redact(tg_test_pool,
                                "GET /v3/x?user=bob&Token=s3cr3t&password=hunter2;passwd=p w "
                                "key=abcd signature=\"xyz\"",
                                default_params(), NULL);
    CU_ASSERT_STRING_EQUAL(out, "GET /v3/x?user=bob&Token=[redacted]&password=[redacted];"
                                "passwd=[redacted] w key=[redacted] signature=\"[redacted]\"");
}

static void test_a_query_quoted_under_a_name_is_redacted(void)
{
    const char *out = tg_redact(tg_test_pool, "app error: QUERY_STRING=token=s3cr3t&user=bob",
                                default_params(), NULL);
    CU_ASSERT_STRING_EQUAL(out, "app error: QUERY_STRING=token=[redacted]&user=bob");
}

static void test_names_inside_other_words_are_left_alone(void)
{
    const char *text = "/a?monkey=1&tokens=2&xsecret=3&password= next";
    CU_ASSERT_PTR_EQUAL(tg_redact(tg_test_pool, text, default_params(), NULL), text);
}

static void test_every_occurrence_of_a_secret_value_is_replaced(void)
{
    apr_array_header_t *secrets = apr_array_make(tg_test_pool, 4, sizeof(const char *));
    tg_redact_add_header_secret(secrets, tg_test_pool, "gAAAAABtoken123");
    tg_redact_add_header_secret(secrets, tg_test_pool, "abc"); /* too short to hunt for */
    CU_ASSERT_STRING_EQUAL(tg_redact(tg_test_pool, "token gAAAAABtoken123 bad; was gAAAAABtoken123",
                                     NULL, secrets),
                           "token [redacted] bad; was [redacted]");
    CU_ASSERT_STRING_EQUAL(tg_redact(tg_test_pool, "abc stays", NULL, secrets), "abc stays");
}

static void test_authorization_and_cookie_parts_are_secrets(void)
{
    apr_array_header_t *secrets = apr_array_make(tg_test_pool, 4, sizeof(const char *));
    tg_redact_add_header_secret(secrets, tg_test_pool, "Basic dXNlcjpwYXNz");
    tg_redact_add_header_secret(secrets, tg_test_pool, "session=abcdef123; theme=dark");
    CU_ASSERT_STRING_EQUAL(tg_redact(tg_test_pool, "creds dXNlcjpwYXNz and abcdef123, dark",
                                     NULL, secrets),
                           "creds [redacted] and [redacted], [redacted]");
}

static void test_many_secrets_in_one_line(void)
{
    char line[4096] = "";
    const char *out;
    int i;
    for (i = 0; i < 200; i++)
        strcat(line, "&token=zz");
    out = tg_redact(tg_test_pool, line, default_params(), NULL);
    CU_ASSERT_PTR_NULL(strstr(out, "zz"));
    CU_ASSERT_EQUAL(strlen(out), 200 * strlen("&token=[redacted]"));
}

void tg_test_add_redact(void)
{
    CU_pSuite suite = TG_SUITE("redact");
    TG_TEST(suite, test_query_values_named_secret_are_replaced);
    TG_TEST(suite, test_a_query_quoted_under_a_name_is_redacted);
    TG_TEST(suite, test_names_inside_other_words_are_left_alone);
    TG_TEST(suite, test_every_occurrence_of_a_secret_value_is_replaced);
    TG_TEST(suite, test_authorization_and_cookie_parts_are_secrets);
    TG_TEST(suite, test_many_secrets_in_one_line);
}
