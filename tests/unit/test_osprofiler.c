#include "unit.h"

#include <apr_encode.h>
#include <apr_strings.h>
#include <string.h>

#include "tg_hmac.h"
#include "tg_osprofiler.h"

/* Vectors made with Python 3's stdlib exactly as osprofiler's
 * _utils.signed_pack does it:
 *   raw = base64.urlsafe_b64encode(json.dumps(data).encode())
 *   hmac.new(key.encode(), raw, hashlib.sha1).hexdigest()
 * with data = {"base_id": BASE_ID, "parent_id": PARENT_ID}. */
#define KEY "SECRET_KEY"
#define BASE_ID "0af76519-16cd-43dd-8448-eb211c80319c"
#define PARENT_ID "b7ad6b71-6920-3331-8448-eb211c80319c"
#define INFO                                                                              \
    "eyJiYXNlX2lkIjogIjBhZjc2NTE5LTE2Y2QtNDNkZC04NDQ4LWViMjExYzgwMzE5YyIsICJwYXJlbnRfaWQi" \
    "OiAiYjdhZDZiNzEtNjkyMC0zMzMxLTg0NDgtZWIyMTFjODAzMTljIn0="
#define INFO_HMAC "ba4548aaf2295f3801c43e2400d81d997fc207dd"
#define INFO_HMAC_OTHER_KEY "acd24bb43c104436d8d12b70c423975fb0746644" /* key "other key" */

/* {"base_id": "6a4a2c2e-0d5f-4f7b-9a47-3b1e7c2d9f10", "parent_id":
 *  "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "note": "~~~???>>>"}: the note
 * puts '-' and '_' into the base64url text. */
#define INFO_URL_ALPHABET                                                                 \
    "eyJiYXNlX2lkIjogIjZhNGEyYzJlLTBkNWYtNGY3Yi05YTQ3LTNiMWU3YzJkOWYxMCIsICJwYXJlbnRfaWQi" \
    "OiAiYzFkMmUzZjQtYTViNi00YzdkLThlOWYtMGExYjJjM2Q0ZTVmIiwgIm5vdGUiOiAifn5-Pz8_Pj4-In0="
#define INFO_URL_ALPHABET_HMAC "8e963579a43ebf3c4054cafb96ce56aa07921804"

/* {"base_id": "6a4a2c2e-0d5f-4f7b-9a47-3b1e7c2d9f10"}: no parent_id. */
#define INFO_NO_PARENT "eyJiYXNlX2lkIjogIjZhNGEyYzJlLTBkNWYtNGY3Yi05YTQ3LTNiMWU3YzJkOWYxMCJ9"
#define INFO_NO_PARENT_HMAC "bc29374ff5ff9b0516e9c96a07be3d4adaaa5ff8"

/* parent_id "00000000-0000-0000-8e9f-0a1b2c3d4e5f": its span id would be 0. */
#define INFO_ZERO_PARENT                                                                  \
    "eyJiYXNlX2lkIjogIjZhNGEyYzJlLTBkNWYtNGY3Yi05YTQ3LTNiMWU3YzJkOWYxMCIsICJwYXJlbnRfaWQi" \
    "OiAiMDAwMDAwMDAtMDAwMC0wMDAwLThlOWYtMGExYjJjM2Q0ZTVmIn0="
#define INFO_ZERO_PARENT_HMAC "3a20b6c6fd21e3e139fc0c03db4fd11e73218f82"

/* base_id in uppercase, which uuid.UUID reads too. */
#define INFO_UPPER                                                                        \
    "eyJiYXNlX2lkIjogIjZBNEEyQzJFLTBENUYtNEY3Qi05QTQ3LTNCMUU3QzJEOUYxMCIsICJwYXJlbnRfaWQi" \
    "OiAiYzFkMmUzZjQtYTViNi00YzdkLThlOWYtMGExYjJjM2Q0ZTVmIn0="
#define INFO_UPPER_HMAC "6af4a2e7b59f20c30d47fc3e4b9c8422386e8f77"

/* ["6a4a2c2e-0d5f-4f7b-9a47-3b1e7c2d9f10"]: signed, but not an object. */
#define INFO_ARRAY "WyI2YTRhMmMyZS0wZDVmLTRmN2ItOWE0Ny0zYjFlN2MyZDlmMTAiXQ=="
#define INFO_ARRAY_HMAC "14d64ce8c8609b08ca64de9340721d1923b98209"

static apr_array_header_t *keys(const char *first, const char *second)
{
    apr_array_header_t *array = apr_array_make(tg_test_pool, 2, sizeof(const char *));
    if (first)
        APR_ARRAY_PUSH(array, const char *) = first;
    if (second)
        APR_ARRAY_PUSH(array, const char *) = second;
    return array;
}

static tg_context_t sentinel(void)
{
    tg_context_t ctx;
    memset(&ctx, 0x5a, sizeof(ctx));
    return ctx;
}

static void assert_status_untouched(const char *info, const char *hmac,
                                    const apr_array_header_t *key_list, apr_status_t expected)
{
    tg_context_t ctx = sentinel(), before = sentinel();
    CU_ASSERT_EQUAL(tg_osprofiler_parse(info, hmac, key_list, tg_test_pool, &ctx), expected);
    CU_ASSERT_EQUAL(memcmp(&ctx, &before, sizeof(ctx)), 0);
}

static void test_parses_osprofiler_header(void)
{
    tg_context_t ctx = sentinel();
    CU_ASSERT_EQUAL_FATAL(tg_osprofiler_parse(INFO, INFO_HMAC, keys(KEY, NULL), tg_test_pool, &ctx),
                          APR_SUCCESS);
    /* base_id is the trace id; parent_id's first 64 bits the span id. */
    CU_ASSERT_EQUAL(ctx.trace_id.hi, 0x0af7651916cd43ddULL);
    CU_ASSERT_EQUAL(ctx.trace_id.lo, 0x8448eb211c80319cULL);
    CU_ASSERT_EQUAL(ctx.span_id, 0xb7ad6b7169203331ULL);
    CU_ASSERT_EQUAL(ctx.parent_id, 0);
    CU_ASSERT_EQUAL(ctx.sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_FALSE(ctx.debug);
    CU_ASSERT_EQUAL(ctx.w3c_flags, 0);
    CU_ASSERT_EQUAL(ctx.format, TG_FORMAT_X_TRACE_INFO);
}

static void test_formats_what_osprofiler_makes(void)
{
    tg_context_t ctx;
    const char *hmac = "unset";
    const char *info;
    memset(&ctx, 0, sizeof(ctx));
    ctx.trace_id.hi = 0x0af7651916cd43ddULL;
    ctx.trace_id.lo = 0x8448eb211c80319cULL;
    ctx.span_id = 0xb7ad6b7169203331ULL;
    ctx.sampling = TG_SAMPLING_ACCEPT;
    /* Byte for byte, so osprofiler's signed_unpack takes it. */
    info = tg_osprofiler_format(&ctx, KEY, tg_test_pool, &hmac);
    CU_ASSERT_STRING_EQUAL(info, INFO);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hmac);
    CU_ASSERT_STRING_EQUAL(hmac, INFO_HMAC);

    info = tg_osprofiler_format(&ctx, NULL, tg_test_pool, &hmac);
    CU_ASSERT_STRING_EQUAL(info, INFO);
    CU_ASSERT_PTR_NULL(hmac);
}

static void test_round_trip_keeps_ids(void)
{
    tg_context_t ctx, back;
    const char *info, *hmac;
    memset(&ctx, 0, sizeof(ctx));
    ctx.trace_id.hi = 0x1234;
    ctx.trace_id.lo = 0xfedcba9876543210ULL;
    ctx.span_id = 0x0102030405060708ULL;
    ctx.parent_id = 0x99;
    ctx.sampling = TG_SAMPLING_DENY;
    info = tg_osprofiler_format(&ctx, "k", tg_test_pool, &hmac);
    CU_ASSERT_EQUAL_FATAL(tg_osprofiler_parse(info, hmac, keys("k", NULL), tg_test_pool, &back),
                          APR_SUCCESS);
    CU_ASSERT_TRUE(tg_trace_id_equal(back.trace_id, ctx.trace_id));
    CU_ASSERT_EQUAL(back.span_id, ctx.span_id);
    /* osprofiler carries no parent of the parent, and only sends when it
     * profiles. */
    CU_ASSERT_EQUAL(back.parent_id, 0);
    CU_ASSERT_EQUAL(back.sampling, TG_SAMPLING_ACCEPT);
}

static void test_any_configured_key_verifies(void)
{
    tg_context_t ctx;
    CU_ASSERT_EQUAL(tg_osprofiler_parse(INFO, INFO_HMAC, keys("first", KEY), tg_test_pool, &ctx),
                    APR_SUCCESS);
    CU_ASSERT_EQUAL(tg_osprofiler_parse(INFO, INFO_HMAC, keys(KEY, "second"), tg_test_pool, &ctx),
                    APR_SUCCESS);
    CU_ASSERT_EQUAL(tg_osprofiler_parse(INFO, INFO_HMAC_OTHER_KEY, keys(KEY, "other key"),
                                        tg_test_pool, &ctx),
                    APR_SUCCESS);
}

static void test_rejects_unsigned_and_wrongly_signed(void)
{
    const apr_array_header_t *configured = keys(KEY, NULL);
    assert_status_untouched(INFO, NULL, configured, APR_EACCES);
    assert_status_untouched(INFO, "", configured, APR_EACCES);
    assert_status_untouched(INFO, INFO_HMAC_OTHER_KEY, configured, APR_EACCES);
    assert_status_untouched(INFO, "ba4548aaf2295f3801c43e2400d81d997fc207de", configured, APR_EACCES);
    assert_status_untouched(INFO, "ba4548aaf2295f3801c43e2400d81d997fc207d", configured, APR_EACCES);
    assert_status_untouched(INFO, INFO_HMAC "00", configured, APR_EACCES);
    /* hexdigest() is lowercase, and osprofiler compares the text. */
    assert_status_untouched(INFO, "BA4548AAF2295F3801C43E2400D81D997FC207DD", configured, APR_EACCES);
    /* The signature covers the header text: change one character of it. */
    {
        char *tampered = apr_pstrdup(tg_test_pool, INFO);
        tampered[40] = tampered[40] == 'A' ? 'B' : 'A';
        assert_status_untouched(tampered, INFO_HMAC, configured, APR_EACCES);
    }
}

static void test_signature_whitespace_is_stripped(void)
{
    tg_context_t ctx;
    CU_ASSERT_EQUAL(tg_osprofiler_parse(INFO, "  " INFO_HMAC "\t", keys(KEY, NULL), tg_test_pool, &ctx),
                    APR_SUCCESS);
}

static void test_without_keys_signature_is_not_checked(void)
{
    tg_context_t ctx;
    CU_ASSERT_EQUAL(tg_osprofiler_parse(INFO, NULL, keys(NULL, NULL), tg_test_pool, &ctx), APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.span_id, 0xb7ad6b7169203331ULL);
    CU_ASSERT_EQUAL(tg_osprofiler_parse(INFO, "junk", NULL, tg_test_pool, &ctx), APR_SUCCESS);
}

static void test_absent(void)
{
    assert_status_untouched(NULL, INFO_HMAC, keys(KEY, NULL), APR_NOTFOUND);
}

static void test_reads_url_alphabet_and_ignores_other_members(void)
{
    tg_context_t ctx;
    CU_ASSERT_EQUAL_FATAL(tg_osprofiler_parse(INFO_URL_ALPHABET, INFO_URL_ALPHABET_HMAC,
                                              keys(KEY, NULL), tg_test_pool, &ctx),
                          APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.trace_id.hi, 0x6a4a2c2e0d5f4f7bULL);
    CU_ASSERT_EQUAL(ctx.trace_id.lo, 0x9a473b1e7c2d9f10ULL);
    CU_ASSERT_EQUAL(ctx.span_id, 0xc1d2e3f4a5b64c7dULL);
}

/* INFO_URL_ALPHABET with a base64url digit swapped for its standard base64
 * twin, which would decode to the same document. */
static const char *standard_alphabet(char url_digit, char standard_digit)
{
    char *info = apr_pstrdup(tg_test_pool, INFO_URL_ALPHABET);
    char *p;
    for (p = info; *p; p++)
        if (*p == url_digit)
            *p = standard_digit;
    return info;
}

static void test_rejects_standard_base64_alphabet(void)
{
    tg_context_t ctx;
    CU_ASSERT_EQUAL_FATAL(tg_osprofiler_parse(INFO_URL_ALPHABET, NULL, NULL, tg_test_pool, &ctx),
                          APR_SUCCESS);
    assert_status_untouched(standard_alphabet('-', '+'), NULL, NULL, APR_EINVAL);
    assert_status_untouched(standard_alphabet('_', '/'), NULL, NULL, APR_EINVAL);
}

static void test_missing_parent_means_base_id(void)
{
    tg_context_t ctx;
    CU_ASSERT_EQUAL_FATAL(tg_osprofiler_parse(INFO_NO_PARENT, INFO_NO_PARENT_HMAC, keys(KEY, NULL),
                                              tg_test_pool, &ctx),
                          APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.trace_id.hi, 0x6a4a2c2e0d5f4f7bULL);
    CU_ASSERT_EQUAL(ctx.span_id, 0x6a4a2c2e0d5f4f7bULL);
}

static void test_reads_uppercase_uuid(void)
{
    tg_context_t ctx;
    CU_ASSERT_EQUAL_FATAL(tg_osprofiler_parse(INFO_UPPER, INFO_UPPER_HMAC, keys(KEY, NULL),
                                              tg_test_pool, &ctx),
                          APR_SUCCESS);
    CU_ASSERT_EQUAL(ctx.trace_id.hi, 0x6a4a2c2e0d5f4f7bULL);
}

static void test_rejects_signed_but_unusable_content(void)
{
    assert_status_untouched(INFO_ZERO_PARENT, INFO_ZERO_PARENT_HMAC, keys(KEY, NULL), APR_EINVAL);
    assert_status_untouched(INFO_ARRAY, INFO_ARRAY_HMAC, keys(KEY, NULL), APR_EINVAL);
}

/* Base64url of a JSON text, made here: what matters below is the decoding,
 * and with no keys configured nothing is signed. */
static const char *encoded(const char *json)
{
    return apr_pencode_base64(tg_test_pool, json, APR_ENCODE_STRING, APR_ENCODE_URL, NULL);
}

static void test_rejects_malformed_content(void)
{
    static const char *const documents[] = {
        "", "{}", "null", "\"" BASE_ID "\"",
        "{\"base_id\": \"" BASE_ID "\", \"parent_id\": \"" PARENT_ID "\"",
        "{\"base_id\": \"" BASE_ID "\", \"parent_id\": \"" PARENT_ID "\"} trailing",
        "{\"base_id\": 1, \"parent_id\": \"" PARENT_ID "\"}",
        "{\"parent_id\": \"" PARENT_ID "\"}",
        "{\"base_id\": \"" BASE_ID "\", \"base_id\": \"" BASE_ID "\"}",
        "{\"base_id\": \"00000000-0000-0000-0000-000000000000\", \"parent_id\": \"" PARENT_ID "\"}",
        "{\"base_id\": \"0af7651916cd43dd8448eb211c80319c\", \"parent_id\": \"" PARENT_ID "\"}",
        "{\"base_id\": \"{0af76519-16cd-43dd-8448-eb211c80319c}\", \"parent_id\": \"" PARENT_ID "\"}",
        "{\"base_id\": \"0af76519-16cd-43dd-8448-eb211c80319\", \"parent_id\": \"" PARENT_ID "\"}",
        "{\"base_id\": \"0af76519-16cd-43dd-8448-eb211c80319cc\", \"parent_id\": \"" PARENT_ID "\"}",
        "{\"base_id\": \"0af76519-16cd-43dd-8448_eb211c80319c\", \"parent_id\": \"" PARENT_ID "\"}",
        "{\"base_id\": \"0af76519-16cd-43dd-8448-eb211c80319g\", \"parent_id\": \"" PARENT_ID "\"}",
        "{\"base_id\": \"" BASE_ID "\", \"parent_id\": \"not a uuid\"}",
        "(dp0\nS'base_id'\np1\n.", /* what the Python tomograph pickled */
    };
    size_t i;
    for (i = 0; i < sizeof(documents) / sizeof(documents[0]); i++)
        assert_status_untouched(encoded(documents[i]), NULL, NULL, APR_EINVAL);
    /* The well-formed one they are all variations of is read. */
    {
        tg_context_t ctx;
        CU_ASSERT_EQUAL(tg_osprofiler_parse(encoded("{\"base_id\": \"" BASE_ID "\", \"parent_id\": \""
                                                    PARENT_ID "\"}"),
                                            NULL, NULL, tg_test_pool, &ctx),
                        APR_SUCCESS);
    }
}

/* Variations of INFO that a lenient decoder would read as INFO. */
static void test_rejects_what_is_not_padded_base64url(void)
{
    const size_t len = strlen(INFO);
    char *stray_bits = apr_pstrdup(tg_test_pool, INFO);
    const char *values[11];
    size_t i, n = 0;
    tg_context_t ctx;
    CU_ASSERT_EQUAL_FATAL(tg_osprofiler_parse(INFO, NULL, NULL, tg_test_pool, &ctx), APR_SUCCESS);
    /* "In0=" ends it: '0' (110100) has two bits to spare, '1' sets one. */
    CU_ASSERT_EQUAL_FATAL(stray_bits[len - 2], '0');
    stray_bits[len - 2] = '1';
    values[n++] = stray_bits;
    values[n++] = apr_pstrndup(tg_test_pool, INFO, len - 1); /* padding dropped */
    values[n++] = INFO "=";
    values[n++] = INFO "====";
    values[n++] = " " INFO;
    values[n++] = INFO " ";
    values[n++] = INFO "\n";
    values[n++] = apr_pstrcat(tg_test_pool, apr_pstrndup(tg_test_pool, INFO, 20), " ", INFO + 20, NULL);
    values[n++] = "";
    values[n++] = "=";
    values[n++] = "====";
    for (i = 0; i < n; i++)
        assert_status_untouched(values[i], NULL, NULL, APR_EINVAL);
}

/* A valid document of exactly `size` bytes (spaces before the closing
 * brace), base64url-encoded. */
static const char *padded_document(size_t size)
{
    static const char members[] = "{\"base_id\": \"" BASE_ID "\", \"parent_id\": \"" PARENT_ID "\"";
    char *json = apr_palloc(tg_test_pool, size + 1);
    memset(json, ' ', size);
    memcpy(json, members, sizeof(members) - 1);
    json[size - 1] = '}';
    json[size] = '\0';
    return encoded(json);
}

static void test_bounds_header_size(void)
{
    char signature[TG_HMAC_SHA1_HEX_LEN + 1];
    tg_context_t ctx;
    /* 3072 bytes encode to 4096 characters, the most we read... */
    const char *at_limit = padded_document(3072);
    const char *over_limit = padded_document(3073);
    CU_ASSERT_EQUAL(strlen(at_limit), 4096);
    CU_ASSERT_EQUAL(tg_osprofiler_parse(at_limit, NULL, NULL, tg_test_pool, &ctx), APR_SUCCESS);
    /* ...one more byte is too long, signed or not. */
    CU_ASSERT(strlen(over_limit) > 4096);
    assert_status_untouched(over_limit, NULL, NULL, APR_EINVAL);
    tg_hmac_sha1_hex(KEY, strlen(KEY), over_limit, strlen(over_limit), signature);
    assert_status_untouched(over_limit, signature, keys(KEY, NULL), APR_EINVAL);
    assert_status_untouched(padded_document(100000), NULL, NULL, APR_EINVAL);
}

/* A span of the service's osprofiler and the X-Trace-Info that led to it
 * name the same parent: what the module hands on, the span's notifications
 * take for parent_id. */
static void test_span_ids_map_as_the_header_does(void)
{
    const char *span_uuid = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f";
    tg_context_t from_header, parent;
    uint64_t span_id = 0;
    CU_ASSERT_EQUAL(tg_osprofiler_parse(INFO, INFO_HMAC, keys(KEY, NULL), tg_test_pool, &from_header),
                    APR_SUCCESS);
    CU_ASSERT_EQUAL(tg_osprofiler_span_ids(BASE_ID, span_uuid, PARENT_ID, &parent, &span_id),
                    APR_SUCCESS);
    CU_ASSERT_TRUE(tg_trace_id_equal(parent.trace_id, from_header.trace_id));
    CU_ASSERT_EQUAL(parent.span_id, from_header.span_id);
    CU_ASSERT_EQUAL(parent.sampling, TG_SAMPLING_ACCEPT);
    CU_ASSERT_EQUAL(span_id, 0xc1d2e3f4a5b64c7dULL);
}

/* osprofiler's root span names base_id as its parent, which is no span. */
static void test_span_ids_of_a_root(void)
{
    tg_context_t parent;
    uint64_t span_id = 0;
    CU_ASSERT_EQUAL(tg_osprofiler_span_ids(BASE_ID, PARENT_ID, BASE_ID, &parent, &span_id),
                    APR_SUCCESS);
    CU_ASSERT_EQUAL(parent.span_id, 0);
    CU_ASSERT_EQUAL(parent.trace_id.hi, 0x0af7651916cd43ddULL);
    CU_ASSERT_EQUAL(span_id, 0xb7ad6b7169203331ULL);
}

static void test_span_ids_reject_what_is_no_uuid(void)
{
    const char *bad[] = {"", "not-a-uuid", "0af76519-16cd-43dd-8448-eb211c80319", /* one short */
                         "0af76519x16cd-43dd-8448-eb211c80319c",
                         "00000000-0000-0000-8448-eb211c80319c" /* a zero span id */};
    tg_context_t parent = {.span_id = 7};
    uint64_t span_id = 7;
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(tg_osprofiler_span_ids(BASE_ID, bad[i], PARENT_ID, &parent, &span_id),
                        APR_EINVAL);
        CU_ASSERT_EQUAL(tg_osprofiler_span_ids(BASE_ID, PARENT_ID, bad[i], &parent, &span_id),
                        APR_EINVAL);
    }
    CU_ASSERT_EQUAL(tg_osprofiler_span_ids(NULL, PARENT_ID, BASE_ID, &parent, &span_id), APR_EINVAL);
    CU_ASSERT_EQUAL(tg_osprofiler_span_ids("00000000-0000-0000-0000-000000000000", PARENT_ID,
                                           BASE_ID, &parent, &span_id),
                    APR_EINVAL);
    CU_ASSERT_EQUAL(parent.span_id, 7);
    CU_ASSERT_EQUAL(span_id, 7);
}

void tg_test_add_osprofiler(void)
{
    CU_pSuite suite = TG_SUITE("osprofiler");
    TG_TEST(suite, test_parses_osprofiler_header);
    TG_TEST(suite, test_formats_what_osprofiler_makes);
    TG_TEST(suite, test_round_trip_keeps_ids);
    TG_TEST(suite, test_any_configured_key_verifies);
    TG_TEST(suite, test_rejects_unsigned_and_wrongly_signed);
    TG_TEST(suite, test_signature_whitespace_is_stripped);
    TG_TEST(suite, test_without_keys_signature_is_not_checked);
    TG_TEST(suite, test_absent);
    TG_TEST(suite, test_reads_url_alphabet_and_ignores_other_members);
    TG_TEST(suite, test_rejects_standard_base64_alphabet);
    TG_TEST(suite, test_missing_parent_means_base_id);
    TG_TEST(suite, test_reads_uppercase_uuid);
    TG_TEST(suite, test_rejects_signed_but_unusable_content);
    TG_TEST(suite, test_rejects_malformed_content);
    TG_TEST(suite, test_rejects_what_is_not_padded_base64url);
    TG_TEST(suite, test_bounds_header_size);
    TG_TEST(suite, test_span_ids_map_as_the_header_does);
    TG_TEST(suite, test_span_ids_of_a_root);
    TG_TEST(suite, test_span_ids_reject_what_is_no_uuid);
}
