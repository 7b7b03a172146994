#include "unit.h"

#include "json_check.h"
#include "tg_json.h"
#include "tg_record.h"
#include "tg_zipkin.h"

#include <apr_strings.h>
#include <limits.h>
#include <string.h>

#define T0 ((apr_time_t)1556604172355737)

/* ---- helpers ---- */

/* The example span of zipkin2-api.yaml, as the module would make it. */
static tg_span_t *example_span(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "GET /api", NULL, T0);
    span->trace_id.hi = 0x4e441824ec2b6a44ULL;
    span->trace_id.lo = 0xffdc9bb9a6453df3ULL;
    span->parent_id = 0x6b221d5bc9e6496cULL;
    span->id = 0x352bff9a74ca9ad2ULL;
    span->shared = 1;
    span->local.service_name = "Backend";
    span->local.ipv4 = "192.168.99.1";
    span->local.port = 3306;
    span->remote.ipv4 = "172.19.0.2";
    span->remote.port = 58648;
    tg_span_tag(span, "http.method", "GET");
    tg_span_tag(span, "http.path", "/api");
    tg_span_finish(span, T0 + 1431);
    return span;
}

#define EXAMPLE_JSON                                                                               \
    "{\"traceId\":\"4e441824ec2b6a44ffdc9bb9a6453df3\",\"parentId\":\"6b221d5bc9e6496c\","       \
    "\"id\":\"352bff9a74ca9ad2\",\"kind\":\"SERVER\",\"name\":\"get /api\","                     \
    "\"timestamp\":1556604172355737,\"duration\":1431,"                                            \
    "\"localEndpoint\":{\"serviceName\":\"backend\",\"ipv4\":\"192.168.99.1\",\"port\":3306},"   \
    "\"remoteEndpoint\":{\"ipv4\":\"172.19.0.2\",\"port\":58648},"                                \
    "\"annotations\":[{\"timestamp\":1556604172355737,\"value\":\"start\"},"                      \
    "{\"timestamp\":1556604172357168,\"value\":\"stop\"}],"                                       \
    "\"tags\":{\"http.method\":\"GET\",\"http.path\":\"/api\"},\"shared\":true}"

/* A span with nothing but its ids and its start (kind 0 is SERVER), which
 * is its first note. */
static tg_span_t *bare_span(void)
{
    tg_span_t *span = apr_pcalloc(tg_test_pool, sizeof(*span));
    span->pool = tg_test_pool;
    span->trace_id.lo = 0xabcd;
    span->id = 0xef;
    span->timestamp = T0;
    return span;
}

#define T0_TEXT "1556604172355737"
#define BARE_IDS "{\"traceId\":\"0000000000000000000000000000abcd\",\"id\":\"00000000000000ef\""
#define BARE_START "\"timestamp\":" T0_TEXT
#define START_NOTE "{\"timestamp\":" T0_TEXT ",\"value\":\"start\"}"
#define BARE_NOTES "\"annotations\":[" START_NOTE "]"
#define BARE_JSON BARE_IDS ",\"kind\":\"SERVER\"," BARE_START "," BARE_NOTES "}"

/* The JSON of one span, checked to parse and to fit on one line. */
static const char *span_json(const tg_span_t *span)
{
    tg_buf_t buf;
    const char *json;
    tg_buf_init(&buf);
    tg_zipkin_append_span(&buf, span);
    CU_ASSERT_FATAL(!buf.failed);
    CU_ASSERT(tg_test_is_json(buf.data, buf.len));
    CU_ASSERT_PTR_NULL(memchr(buf.data, '\n', buf.len));
    CU_ASSERT_PTR_NULL(memchr(buf.data, '\r', buf.len));
    json = apr_pstrmemdup(tg_test_pool, buf.data, buf.len);
    tg_buf_free(&buf);
    return json;
}

/* ---- the checker itself ---- */

static void test_checker_tells_json_from_not(void)
{
    static const char *const good[] = {
        "{}", "[]", "{\"a\":[1,-2.5e+3,true,false,null,\"\\u00e9\\n\"]}", "\"\xc3\xa9\"", " [ ] ",
    };
    static const char *const bad[] = {
        "", "{", "{\"a\"}", "{\"a\":1,}", "[1,]", "\"a\nb\"", "\"\\x\"", "\"\\u12\"", "01",
        "{}{}", "\"\xff\"", "\"\xc3\"", "tru", "{a:1}", "[1 2]",
    };
    size_t i;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CU_ASSERT_TRUE(tg_test_is_json(good[i], strlen(good[i])));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_FALSE(tg_test_is_json(bad[i], strlen(bad[i])));
}

/* ---- spans ---- */

static void test_example_span_is_exact(void)
{
    CU_ASSERT_STRING_EQUAL(span_json(example_span()), EXAMPLE_JSON);
}

/* The status as a string of its decimal digits, whatever their number. */
static void test_status_code_as_its_digits(void)
{
    static const int statuses[] = { 1, 9, 10, 99, 100, 101, 200, 204, 404, 500, 599, 909, 999,
                                    1000, 12345, INT_MAX };
    size_t i;
    for (i = 0; i < sizeof(statuses) / sizeof(*statuses); i++) {
        tg_span_t *span = bare_span();
        span->status_code = statuses[i];
        CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span),
                                      apr_psprintf(tg_test_pool, ",\"tags\":{\"http.status_code\":\"%d\"}}",
                                                   statuses[i])));
    }
}

/* The bodies' lengths, as the module keeps them (transfer fields), are
 * tags after the HTTP ones, in digits whatever their size; a length not
 * known is no tag. */
static void test_lengths_are_tags_after_the_http_ones(void)
{
    tg_span_t *span = bare_span();
    span->status_code = 200;
    span->transfer = TG_TRANSFER_REQUEST_BYTES | TG_TRANSFER_RESPONSE_BYTES;
    span->request_bytes = 0;
    span->response_bytes = UINT64_MAX;
    tg_span_tag(span, "component", "glance");
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span),
                                  ",\"tags\":{\"http.status_code\":\"200\","
                                  "\"http.request_content_length\":\"0\","
                                  "\"http.response_content_length\":\"18446744073709551615\","
                                  "\"component\":\"glance\"}}"));
    span->transfer = TG_TRANSFER_RESPONSE_BYTES;
    span->response_bytes = 1024;
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span),
                                  ",\"tags\":{\"http.status_code\":\"200\","
                                  "\"http.response_content_length\":\"1024\","
                                  "\"component\":\"glance\"}}"));
}

/* Without a name of its own a span is named after its request, and its
 * HTTP fields are tags: the same JSON as when the module tagged and named
 * it so. */
static void test_span_named_after_its_request_writes_the_same_json(void)
{
    tg_span_t *span = example_span();
    span->name = NULL;
    CU_ASSERT_STRING_EQUAL(span_json(span), EXAMPLE_JSON);
    tg_span_tag(span, "http.status_code", "404");
    tg_span_tag(span, "http.route", "/api");
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span), "\"tags\":{\"http.method\":\"GET\",\"http.path\":\"/api\","
                                                   "\"http.status_code\":\"404\",\"http.route\":\"/api\"}"));
    /* the method alone, when the path is unknown */
    span->path = NULL;
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span), ",\"name\":\"get\","));
    /* neither: no name */
    span->method = NULL;
    CU_ASSERT_PTR_NULL(strstr(span_json(span), "\"name\""));
}

static void test_bare_span_writes_only_what_it_knows(void)
{
    /* a 64-bit trace id widened to 32 digits, no parentId on a root, no
     * name, duration, endpoints, tags or notes but the start */
    CU_ASSERT_STRING_EQUAL(span_json(bare_span()), BARE_JSON);
}

/* Integers at the ends of their ranges, as decimal, signed where they are:
 * a note set by hand may carry a time before 1970. */
static void test_integers_at_their_edges(void)
{
    tg_span_t *span = bare_span();
    span->timestamp = APR_INT64_C(9223372036854775807);
    span->duration = APR_INT64_C(9223372036854775807);
    span->local.port = 65535;
    span->annotations = apr_array_make(tg_test_pool, 2, sizeof(tg_annotation_t));
    APR_ARRAY_PUSH(span->annotations, tg_annotation_t) = (tg_annotation_t){ -1, "a" };
    APR_ARRAY_PUSH(span->annotations, tg_annotation_t) = (tg_annotation_t){ INT64_MIN, "b" };
    CU_ASSERT_STRING_EQUAL(span_json(span),
                           "{\"traceId\":\"0000000000000000000000000000abcd\",\"id\":\"00000000000000ef\","
                           "\"kind\":\"SERVER\",\"timestamp\":9223372036854775807,"
                           "\"duration\":9223372036854775807,\"localEndpoint\":{\"port\":65535},"
                           "\"annotations\":[{\"timestamp\":9223372036854775807,\"value\":\"start\"},"
                           "{\"timestamp\":-1,\"value\":\"a\"},"
                           "{\"timestamp\":-9223372036854775808,\"value\":\"b\"}]}");
}

static void test_every_kind_by_name(void)
{
    static const char *const names[] = { "SERVER", "CLIENT", "PRODUCER", "CONSUMER" };
    tg_span_t *span = bare_span();
    int kind;
    for (kind = TG_SPAN_SERVER; kind <= TG_SPAN_CONSUMER; kind++) {
        span->kind = (tg_span_kind_t)kind;
        CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span),
                                      apr_psprintf(tg_test_pool, ",\"kind\":\"%s\",", names[kind])));
    }
}

/* Zipkin v2 has no internal kind: a span without one is local. */
static void test_internal_kind_is_left_out(void)
{
    tg_span_t *span = bare_span();
    span->kind = TG_SPAN_INTERNAL;
    CU_ASSERT_STRING_EQUAL(span_json(span), BARE_IDS "," BARE_START "," BARE_NOTES "}");
}

static void test_unknown_kind_is_left_out(void)
{
    tg_span_t *span = bare_span();
    span->kind = (tg_span_kind_t)7;
    CU_ASSERT_STRING_EQUAL(span_json(span), BARE_IDS "," BARE_START "," BARE_NOTES "}");
}

static void test_flags_debug_shared_error(void)
{
    tg_span_t *span = bare_span();
    span->debug = 1;
    span->shared = 1;
    span->error = 1;
    CU_ASSERT_STRING_EQUAL(span_json(span), BARE_IDS ",\"kind\":\"SERVER\"," BARE_START "," BARE_NOTES
                                            ",\"tags\":{\"error\":\"true\"},\"debug\":true,\"shared\":true}");
}

static void test_error_keeps_an_error_tag_already_there(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    const char *json;
    span->error = 1;
    tg_span_tag(span, "error", "500");
    json = span_json(span);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, ",\"tags\":{\"error\":\"500\"}}"));
    CU_ASSERT_PTR_NULL(strstr(json, "\"true\""));
}

static void test_duration_is_at_least_one(void)
{
    tg_span_t *span = bare_span();
    span->finished = 1; /* a span that took no measurable time */
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span), "," BARE_START ",\"duration\":1,"));
    span->duration = 7;
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span), "," BARE_START ",\"duration\":7,"));
}

static void test_unfinished_span_has_no_duration(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, T0);
    const char *json = span_json(span);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"timestamp\":1556604172355737,\"annotations\""));
    CU_ASSERT_PTR_NULL(strstr(json, "duration"));
}

static void test_endpoint_leaves_out_unknowns(void)
{
    tg_span_t *span = bare_span();
    span->local.service_name = "";
    span->local.ipv6 = "2001:db8::c001";
    span->local.port = 0;
    span->remote.service_name = "";
    span->remote.ipv4 = "";
    CU_ASSERT_STRING_EQUAL(span_json(span), BARE_IDS ",\"kind\":\"SERVER\"," BARE_START
                                            ",\"localEndpoint\":{\"ipv6\":\"2001:db8::c001\"},"
                                            BARE_NOTES "}");
}

static void test_endpoint_with_only_a_port(void)
{
    tg_span_t *span = bare_span();
    span->remote.port = 443;
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span), ",\"remoteEndpoint\":{\"port\":443},"));
}

static void test_names_are_lowercased_values_are_not(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "POST /V3/Auth", NULL, T0);
    const char *json;
    span->local.service_name = "Nova-API";
    span->remote.service_name = "MySQL";
    tg_span_tag(span, "Http.Method", "POST");
    tg_span_annotate(span, T0 + 1, "Retry");
    json = span_json(span);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"name\":\"post /v3/auth\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "{\"serviceName\":\"nova-api\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "{\"serviceName\":\"mysql\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"tags\":{\"Http.Method\":\"POST\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"value\":\"Retry\""));
}

static const char *repeated(char c, size_t n)
{
    char *text = apr_palloc(tg_test_pool, n + 1);
    memset(text, c, n);
    text[n] = '\0';
    return text;
}

/* A request's method and path go into its name (lowercase) and, as they
 * are, into its tags: each tag as the JSON string writer writes it, whatever
 * the name needed (escapes, replacements, a cut) or did not. */
static void test_http_fields_as_tags_whatever_the_name_needed(void)
{
    const char *texts[] = {
        "", "/", "GET", "/V2.1/Servers/Detail", "/a\"b\\c", "/\x01\x7f", "/\xff", "/\xc3\x89t\xc3\xa9",
        "/\xc3", apr_psprintf(tg_test_pool, "/%0*d", TG_SPAN_MAX_STRING, 7),
        apr_psprintf(tg_test_pool, "/%0*d\"", TG_SPAN_MAX_STRING - 2, 7),
        /* cut for the name where its escapes make up for what is cut */
        apr_pstrcat(tg_test_pool, repeated('"', 44), repeated('a', TG_SPAN_MAX_STRING - 44),
                    repeated('b', 44), NULL),
    };
    size_t i, j;
    for (i = 0; i < sizeof(texts) / sizeof(*texts); i++)
        for (j = 0; j < sizeof(texts) / sizeof(*texts); j++) {
            tg_span_t *span = bare_span();
            tg_buf_t tags;
            span->method = texts[i];
            span->path = texts[j];
            tg_buf_init(&tags);
            tg_buf_puts(&tags, ",\"tags\":{\"http.method\":");
            tg_json_append_string(&tags, texts[i], strlen(texts[i]));
            tg_buf_puts(&tags, ",\"http.path\":");
            tg_json_append_string(&tags, texts[j], strlen(texts[j]));
            tg_buf_puts(&tags, "}}");
            CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span), tags.data));
            tg_buf_free(&tags);
        }
}

static void test_hostile_name_is_escaped(void)
{
    /* quote, backslash, a control byte, CR LF, a stray byte, then a valid
     * "É" whose bytes lowercasing must not touch */
    tg_span_t *span = bare_span();
    span->name = "A\"B\\C\x01\r\nD\xff\xc3\x89";
    CU_ASSERT_STRING_EQUAL(span_json(span), BARE_IDS ",\"kind\":\"SERVER\","
                                            "\"name\":\"a\\\"b\\\\c\\u0001\\r\\nd\xef\xbf\xbd\xc3\x89\","
                                            BARE_START "," BARE_NOTES "}");
}

static void test_hostile_tags_and_notes_are_escaped(void)
{
    tg_span_t *span = bare_span();
    span->tags = apr_array_make(tg_test_pool, 2, sizeof(tg_tag_t));
    span->annotations = apr_array_make(tg_test_pool, 2, sizeof(tg_annotation_t));
    tg_span_tag(span, "sql.query", "SELECT \"a\" FROM t\r\nWHERE b = '\\'\t");
    tg_span_tag(span, "k\"\x1f", "\xc3\x28\x7f");
    tg_span_annotate(span, 5, "line1\nline2\x08\x0c");
    CU_ASSERT_STRING_EQUAL(span_json(span),
                           BARE_IDS ",\"kind\":\"SERVER\"," BARE_START ","
                           "\"annotations\":[" START_NOTE ",{\"timestamp\":5,\"value\":\"line1\\nline2\\b\\f\"}],"
                           "\"tags\":{\"sql.query\":\"SELECT \\\"a\\\" FROM t\\r\\nWHERE b = '\\\\'\\t\","
                           "\"k\\\"\\u001f\":\"\xef\xbf\xbd(\\u007f\"}}");
}

static void test_null_strings_in_a_hand_made_span(void)
{
    tg_span_t *span = bare_span();
    tg_tag_t *tag;
    tg_annotation_t *note;
    span->tags = apr_array_make(tg_test_pool, 1, sizeof(tg_tag_t));
    span->annotations = apr_array_make(tg_test_pool, 1, sizeof(tg_annotation_t));
    tag = apr_array_push(span->tags);
    tag->key = NULL;
    tag->value = NULL;
    note = apr_array_push(span->annotations);
    note->timestamp = 1;
    note->value = NULL;
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span),
                                  "\"annotations\":[" START_NOTE ",{\"timestamp\":1,\"value\":\"\"}],\"tags\":{\"\":\"\"}}"));
}

static void test_full_span_parses(void)
{
    tg_span_t *span = example_span();
    int i;
    span->debug = 1;
    span->error = 1;
    span->local.ipv6 = "::1";
    span->remote.service_name = "Client \"\\\x01";
    span->transfer = TG_TRANSFER_REQUEST_BYTES | TG_TRANSFER_RESPONSE_BYTES;
    span->request_bytes = span->response_bytes = UINT64_MAX;
    for (i = 0; i < TG_SPAN_MAX_TAGS + 2; i++)
        tg_span_tag(span, apr_psprintf(tg_test_pool, "k%d\x02\xe2\x82", i), "\xed\xa0\x80 surrogate");
    for (i = 0; i < TG_SPAN_MAX_ANNOTATIONS + 2; i++)
        tg_span_annotate(span, T0 + i, "\xf4\x90\x80\x80 past U+10FFFF");
    (void)span_json(span);
}

static void test_decoded_record_writes_the_same_json(void)
{
    unsigned char record[8192];
    tg_span_t *span = example_span(), *back = NULL;
    apr_size_t len = tg_record_encode(span, record, sizeof(record));
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(tg_record_decode(record, len, tg_test_pool, &back), APR_SUCCESS);
    CU_ASSERT_STRING_EQUAL(span_json(back), EXAMPLE_JSON);
}

static void test_dropped_shows_as_a_tag(void)
{
    tg_span_t *span = bare_span();
    span->dropped = 7;
    CU_ASSERT_STRING_EQUAL(span_json(span), BARE_IDS ",\"kind\":\"SERVER\"," BARE_START "," BARE_NOTES
                                            ",\"tags\":{\"tomograph.dropped\":\"7\"}}");
    span->error = 1;
    span->dropped = 4294967295U;
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span),
                                  ",\"tags\":{\"error\":\"true\",\"tomograph.dropped\":\"4294967295\"}}"));
}

static void test_dropped_follows_the_span_tags_once(void)
{
    tg_span_t *span = example_span();
    const char *json;
    span->dropped = 2;
    json = span_json(span);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"tags\":{\"http.method\":\"GET\",\"http.path\":\"/api\","
                                        "\"tomograph.dropped\":\"2\"}"));
    tg_span_tag(span, "tomograph.dropped", "set by hand");
    json = span_json(span);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"tomograph.dropped\":\"set by hand\"}"));
    CU_ASSERT_PTR_NULL(strstr(json, "\"tomograph.dropped\":\"2\""));
}

/* A span too large for its record: what the record left out is counted,
 * and the count reaches Zipkin. */
static void test_span_cut_down_to_its_record_says_so(void)
{
    unsigned char record[TG_RECORD_MIN_CAP];
    tg_span_t *span = example_span(), *back = NULL;
    apr_size_t len;
    int i;
    for (i = 0; i < TG_SPAN_MAX_TAGS; i++)
        tg_span_tag(span, apr_psprintf(tg_test_pool, "k%d", i), "a value long enough to fill the record");
    len = tg_record_encode(span, record, sizeof(record));
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(tg_record_decode(record, len, tg_test_pool, &back), APR_SUCCESS);
    CU_ASSERT_FATAL(back->dropped > 2); /* two tags over the bound, some by the record */
    CU_ASSERT_PTR_NOT_NULL(strstr(span_json(back), apr_psprintf(tg_test_pool, ",\"tomograph.dropped\":\"%u\"}",
                                                               back->dropped)));
}

/* The stop's time, start plus duration, also where the sum carries into
 * the start's higher digits or past them. */
static void test_stop_time_is_start_plus_duration(void)
{
    static const apr_time_t starts[] = { T0, 1556604199999999, 1556604199999990, 99999999, 100000000,
                                         9999999999999999, 10000000000000000, 1 };
    static const apr_time_t durations[] = { 1, 9, 10, 1431, 99999999, 100000000, 100000001,
                                            8000000000000000 };
    size_t s, d;
    for (s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
        for (d = 0; d < sizeof(durations) / sizeof(durations[0]); d++) {
            tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, starts[s]);
            tg_span_finish(span, starts[s] + durations[d]);
            CU_ASSERT_PTR_NOT_NULL(strstr(span_json(span),
                                          apr_psprintf(tg_test_pool,
                                                       "{\"timestamp\":%" APR_INT64_T_FMT ",\"value\":\"stop\"}",
                                                       (apr_int64_t)(starts[s] + durations[d]))));
        }
    }
}

/* The last eight digits of the start and of the stop, written together:
 * each digit in each place, in either time, as printf writes it. */
static void test_start_and_stop_digits_in_every_place(void)
{
    const apr_time_t base = 1556604100000000;
    apr_time_t place = 1;
    int i, digit;
    for (i = 0; i < 8; i++, place *= 10) {
        for (digit = 0; digit <= 9; digit++) {
            /* the start's digit in place i, the stop's 9 - digit in place 7 - i */
            apr_time_t start = base + digit * place;
            apr_time_t duration = (9 - digit) * (10000000 / place) + 1;
            tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x", NULL, start);
            const char *json;
            tg_span_finish(span, start + duration);
            json = span_json(span);
            CU_ASSERT_PTR_NOT_NULL(strstr(json, apr_psprintf(tg_test_pool,
                                                             "\"timestamp\":%" APR_INT64_T_FMT ",",
                                                             (apr_int64_t)start)));
            CU_ASSERT_PTR_NOT_NULL(
                strstr(json, apr_psprintf(tg_test_pool,
                                          "{\"timestamp\":%" APR_INT64_T_FMT ",\"value\":\"start\"}",
                                          (apr_int64_t)start)));
            CU_ASSERT_PTR_NOT_NULL(
                strstr(json, apr_psprintf(tg_test_pool,
                                          "{\"timestamp\":%" APR_INT64_T_FMT ",\"value\":\"stop\"}",
                                          (apr_int64_t)(start + duration))));
        }
    }
}

/* ---- lists ---- */

static void test_list_of_none(void)
{
    tg_buf_t buf;
    tg_buf_init(&buf);
    tg_zipkin_append_list(&buf, NULL, 0);
    CU_ASSERT_STRING_EQUAL(buf.data, "[]");
    tg_buf_free(&buf);
}

/* Spans written in a list are the same as each alone, whatever the local
 * endpoint the one before had. */
static void test_list_writes_each_span_as_alone(void)
{
    /* each the one before, or not in its digits above the last eight */
    static const apr_time_t times[10] = {
        T0, T0, T0 + 100000000, T0 + 100000000, 99999999, T0 - 100000000, T0,
        APR_INT64_C(10000000000000000), T0 + 99999999, T0,
    };
    const tg_span_t *spans[10];
    const char *expected = "[";
    tg_buf_t buf;
    int i;
    for (i = 0; i < 10; i++) {
        tg_span_t *span = example_span();
        spans[i] = span;
        /* Each differs from the one before in one thing, or in none. */
        span->timestamp = times[i];
        if (i >= 2 && i <= 4)
            span->local.service_name = "other";
        if (i >= 3 && i <= 4)
            span->local.port = 3307;
        if (i == 4)
            span->local.ipv4 = "192.168.99.10";
        if (i == 5)
            span->local = (tg_endpoint_t){ 0 };
        if (i >= 6 && i <= 7)
            span->local.ipv6 = "::1";
        /* the same text elsewhere; then an empty string, which says what
         * none does */
        if (i == 7)
            span->local.service_name = apr_pstrdup(tg_test_pool, "Backend");
        if (i == 8)
            span->local.ipv6 = "";
        expected = apr_pstrcat(tg_test_pool, expected, i ? "," : "", span_json(span), NULL);
    }
    expected = apr_pstrcat(tg_test_pool, expected, "]", NULL);
    tg_buf_init(&buf);
    tg_zipkin_append_list(&buf, spans, 10);
    CU_ASSERT_STRING_EQUAL(buf.data, expected);
    tg_buf_free(&buf);
}

static void test_list_of_several_appends_an_array(void)
{
    const tg_span_t *spans[3];
    tg_buf_t buf;
    spans[0] = example_span();
    spans[1] = bare_span();
    spans[2] = example_span();
    tg_buf_init(&buf);
    tg_buf_puts(&buf, "before:");
    tg_zipkin_append_list(&buf, spans, 3);
    CU_ASSERT_STRING_EQUAL(buf.data, "before:[" EXAMPLE_JSON "," BARE_JSON "," EXAMPLE_JSON "]");
    CU_ASSERT_TRUE(tg_test_is_json(buf.data + 7, buf.len - 7));
    tg_buf_free(&buf);
}

void tg_test_add_zipkin(void)
{
    CU_pSuite suite = TG_SUITE("zipkin");
    TG_TEST(suite, test_checker_tells_json_from_not);
    TG_TEST(suite, test_example_span_is_exact);
    TG_TEST(suite, test_span_named_after_its_request_writes_the_same_json);
    TG_TEST(suite, test_bare_span_writes_only_what_it_knows);
    TG_TEST(suite, test_every_kind_by_name);
    TG_TEST(suite, test_internal_kind_is_left_out);
    TG_TEST(suite, test_unknown_kind_is_left_out);
    TG_TEST(suite, test_flags_debug_shared_error);
    TG_TEST(suite, test_error_keeps_an_error_tag_already_there);
    TG_TEST(suite, test_duration_is_at_least_one);
    TG_TEST(suite, test_unfinished_span_has_no_duration);
    TG_TEST(suite, test_endpoint_leaves_out_unknowns);
    TG_TEST(suite, test_endpoint_with_only_a_port);
    TG_TEST(suite, test_names_are_lowercased_values_are_not);
    TG_TEST(suite, test_http_fields_as_tags_whatever_the_name_needed);
    TG_TEST(suite, test_hostile_name_is_escaped);
    TG_TEST(suite, test_hostile_tags_and_notes_are_escaped);
    TG_TEST(suite, test_null_strings_in_a_hand_made_span);
    TG_TEST(suite, test_full_span_parses);
    TG_TEST(suite, test_decoded_record_writes_the_same_json);
    TG_TEST(suite, test_dropped_shows_as_a_tag);
    TG_TEST(suite, test_dropped_follows_the_span_tags_once);
    TG_TEST(suite, test_span_cut_down_to_its_record_says_so);
    TG_TEST(suite, test_integers_at_their_edges);
    TG_TEST(suite, test_status_code_as_its_digits);
    TG_TEST(suite, test_lengths_are_tags_after_the_http_ones);
    TG_TEST(suite, test_stop_time_is_start_plus_duration);
    TG_TEST(suite, test_start_and_stop_digits_in_every_place);
    TG_TEST(suite, test_list_of_none);
    TG_TEST(suite, test_list_writes_each_span_as_alone);
    TG_TEST(suite, test_list_of_several_appends_an_array);
}
