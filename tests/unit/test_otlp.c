#include "unit.h"

#include <apr_strings.h>
#include <string.h>

#include "json_check.h"
#include "tg_otlp.h"
#include "tg_record.h"

/* The times of the example in opentelemetry-proto's examples/trace.json. */
#define T0 ((apr_time_t)1544712660000000)
#define T0_NANOS "1544712660000000000"
#define T1 (T0 + APR_USEC_PER_SEC)
#define T1_NANOS "1544712661000000000"

#define SPAN_PATH "resourceSpans/0/scopeSpans/0/spans/0"

/* The server span of that example, as the module would make it, failed. */
static tg_span_t *example_span(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "GET /api", NULL, T0);
    span->trace_id.hi = 0x5b8efff798038103ULL;
    span->trace_id.lo = 0xd269b633813fc60cULL;
    span->id = 0xeee19b7ec3c1b174ULL;
    span->parent_id = 0xeee19b7ec3c1b173ULL;
    span->local.service_name = "my.service";
    span->local.ipv4 = "192.168.99.1";
    tg_span_tag(span, "http.method", "GET");
    tg_span_tag(span, "http.status_code", "500");
    span->error = 1;
    tg_span_finish(span, T1);
    return span;
}

#define EXAMPLE_SPAN_JSON                                                                          \
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","         \
    "\"parentSpanId\":\"eee19b7ec3c1b173\",\"name\":\"GET /api\",\"kind\":2,"                     \
    "\"startTimeUnixNano\":\"" T0_NANOS "\",\"endTimeUnixNano\":\"" T1_NANOS "\","                \
    "\"attributes\":[{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}},"              \
    "{\"key\":\"http.status_code\",\"value\":{\"stringValue\":\"500\"}},"                         \
    "{\"key\":\"network.local.address\",\"value\":{\"stringValue\":\"192.168.99.1\"}}],"           \
    "\"events\":[{\"timeUnixNano\":\"" T0_NANOS "\",\"name\":\"start\"},"                         \
    "{\"timeUnixNano\":\"" T1_NANOS "\",\"name\":\"stop\"}],"                                     \
    "\"status\":{\"code\":2}}"

#define RESOURCE_OPEN(service)                                                                     \
    "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\""     \
    service "\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"mod_tomograph\"},\"spans\":["
#define RESOURCE_CLOSE "]}]}"
#define START_EVENT "\"events\":[{\"timeUnixNano\":\"" T0_NANOS "\",\"name\":\"start\"}]"

/* A span with nothing but its ids, service and start (its first note). */
static tg_span_t *bare_span(const char *service, uint64_t id)
{
    tg_span_t *span = apr_pcalloc(tg_test_pool, sizeof(*span));
    span->pool = tg_test_pool;
    span->trace_id.lo = 0xabcd;
    span->id = id;
    span->timestamp = T0;
    span->local.service_name = service;
    return span;
}

/* The request for spans[0..n), checked to be well-formed JSON. */
static const char *request_json(const tg_span_t *const *spans, int n)
{
    tg_buf_t buf;
    const char *json;
    tg_buf_init(&buf);
    tg_otlp_append_request(&buf, spans, n);
    CU_ASSERT_FATAL(!buf.failed);
    CU_ASSERT(tg_test_is_json(buf.data, buf.len));
    json = apr_pstrmemdup(tg_test_pool, buf.data, buf.len);
    tg_buf_free(&buf);
    return json;
}

static const tg_test_json_t *request_tree(const tg_span_t *const *spans, int n)
{
    const char *json = request_json(spans, n);
    const tg_test_json_t *tree = tg_test_json_parse(json, strlen(json), tg_test_pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tree);
    return tree;
}

static const tg_test_json_t *one_span_tree(const tg_span_t *span)
{
    return request_tree(&span, 1);
}

static char *nanos(apr_time_t usec)
{
    return apr_psprintf(tg_test_pool, "%" APR_INT64_T_FMT "000", (apr_int64_t)usec);
}

/* ---- the reader the tests use ---- */

static void test_reader_reads_back_values_and_paths(void)
{
    static const char text[] = "{\"a\":[1,{\"b\":\"x\\u00e9\\ud83d\\ude00\\n\"}],\"c\":-2.5e3,\"d\":null}";
    const tg_test_json_t *tree = tg_test_json_parse(text, sizeof(text) - 1, tg_test_pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tree);
    CU_ASSERT_EQUAL(tree->type, TG_TEST_JSON_OBJECT);
    CU_ASSERT_EQUAL(tg_test_json_count_at(tree, ""), 3);
    CU_ASSERT_EQUAL(tg_test_json_count_at(tree, "a"), 2);
    CU_ASSERT_STRING_EQUAL(tg_test_json_get(tree, "a/0")->text, "1");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(tree, "a/1/b"), "x\xc3\xa9\xf0\x9f\x98\x80\n");
    CU_ASSERT_STRING_EQUAL(tg_test_json_get(tree, "c")->text, "-2.5e3");
    CU_ASSERT_EQUAL(tg_test_json_get(tree, "d")->type, TG_TEST_JSON_NULL);
    CU_ASSERT_PTR_NULL(tg_test_json_get(tree, "a/2"));
    CU_ASSERT_PTR_NULL(tg_test_json_get(tree, "a/x"));
    CU_ASSERT_PTR_NULL(tg_test_json_get(tree, "e"));
    CU_ASSERT_PTR_NULL(tg_test_json_string_at(tree, "c"));
    CU_ASSERT_EQUAL(tg_test_json_count_at(tree, "c"), -1);
    CU_ASSERT_FALSE(tg_test_json_has_duplicate_keys(tree));
}

static void test_reader_refuses_what_is_not_one_value(void)
{
    static const char *const bad[] = {"", "{", "{\"a\":1,}", "[1]x", "\"\\ud83d", "{\"a\" 1}"};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_PTR_NULL(tg_test_json_parse(bad[i], strlen(bad[i]), tg_test_pool));
}

static void test_reader_finds_duplicate_keys(void)
{
    static const char text[] = "[{\"a\":{\"k\":1,\"k\":2}}]";
    const tg_test_json_t *tree = tg_test_json_parse(text, sizeof(text) - 1, tg_test_pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tree);
    CU_ASSERT_TRUE(tg_test_json_has_duplicate_keys(tree));
    /* Which of the two a reader takes is not defined: neither is read. */
    CU_ASSERT_PTR_NULL(tg_test_json_get(tree, "0/a/k"));
}

/* ---- the request ---- */

static void test_example_span_is_exact(void)
{
    const tg_span_t *span = example_span();
    CU_ASSERT_STRING_EQUAL(request_json(&span, 1),
                           "{\"resourceSpans\":[" RESOURCE_OPEN("my.service") EXAMPLE_SPAN_JSON
                               RESOURCE_CLOSE "]}");
}

static void test_example_span_reads_back(void)
{
    const tg_span_t *span = example_span();
    const tg_test_json_t *tree = one_span_tree(span);
    const tg_test_json_t *got = tg_test_json_get(tree, SPAN_PATH);
    CU_ASSERT_FALSE(tg_test_json_has_duplicate_keys(tree));
    CU_ASSERT_EQUAL(tg_test_json_count_at(tree, "resourceSpans"), 1);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(tree, "resourceSpans/0/resource/attributes/0/key"),
                           "service.name");
    CU_ASSERT_STRING_EQUAL(
        tg_test_json_string_at(tree, "resourceSpans/0/resource/attributes/0/value/stringValue"),
        "my.service");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(tree, "resourceSpans/0/scopeSpans/0/scope/name"),
                           TG_OTLP_SCOPE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "traceId"), "5b8efff798038103d269b633813fc60c");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "spanId"), "eee19b7ec3c1b174");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "parentSpanId"), "eee19b7ec3c1b173");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "name"), "GET /api");
    /* Enums are integers, 64-bit times decimal strings. */
    CU_ASSERT_EQUAL(tg_test_json_get(got, "kind")->type, TG_TEST_JSON_NUMBER);
    CU_ASSERT_STRING_EQUAL(tg_test_json_get(got, "kind")->text, "2");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "startTimeUnixNano"), T0_NANOS);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "endTimeUnixNano"), T1_NANOS);
    CU_ASSERT_EQUAL(tg_test_json_count_at(got, "attributes"), 3);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "attributes/1/key"), "http.status_code");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "attributes/1/value/stringValue"), "500");
    CU_ASSERT_EQUAL(tg_test_json_count_at(got, "events"), 2);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "events/0/name"), "start");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "events/1/timeUnixNano"), T1_NANOS);
    CU_ASSERT_STRING_EQUAL(tg_test_json_get(got, "status/code")->text, "2");
}

/* The member names trace.proto and common.proto give each message, in
 * lowerCamelCase: a receiver ignores the others, so a misspelt one would
 * lose its data without a word. */
static const char *const request_fields[] = {"resourceSpans", NULL};
static const char *const resource_spans_fields[] = {"resource", "scopeSpans", "schemaUrl", NULL};
static const char *const resource_fields[] = {"attributes", "droppedAttributesCount", NULL};
static const char *const scope_spans_fields[] = {"scope", "spans", "schemaUrl", NULL};
static const char *const scope_fields[] = {"name", "version", "attributes",
                                           "droppedAttributesCount", NULL};
static const char *const span_fields[] = {
    "traceId", "spanId", "traceState", "parentSpanId", "flags", "name", "kind",
    "startTimeUnixNano", "endTimeUnixNano", "attributes", "droppedAttributesCount", "events",
    "droppedEventsCount", "links", "droppedLinksCount", "status", NULL};
static const char *const key_value_fields[] = {"key", "value", NULL};
static const char *const any_value_fields[] = {"stringValue", NULL};
static const char *const event_fields[] = {"timeUnixNano", "name", "attributes",
                                           "droppedAttributesCount", NULL};
static const char *const status_fields[] = {"message", "code", NULL};

static void assert_fields_among(const tg_test_json_t *object, const char *const *allowed)
{
    int i;
    CU_ASSERT_PTR_NOT_NULL_FATAL(object);
    CU_ASSERT_EQUAL_FATAL(object->type, TG_TEST_JSON_OBJECT);
    for (i = 0; i < object->count; i++) {
        const char *const *name = allowed;
        while (*name && strcmp(*name, object->keys[i]) != 0)
            name++;
        if (!*name)
            CU_FAIL(apr_psprintf(tg_test_pool, "unknown member %s", object->keys[i]));
    }
}

static void assert_key_values(const tg_test_json_t *array)
{
    int i;
    CU_ASSERT_PTR_NOT_NULL_FATAL(array);
    CU_ASSERT_EQUAL_FATAL(array->type, TG_TEST_JSON_ARRAY);
    for (i = 0; i < array->count; i++) {
        assert_fields_among(array->items[i], key_value_fields);
        assert_fields_among(tg_test_json_get(array->items[i], "value"), any_value_fields);
    }
}

static void assert_span_fields(const tg_test_json_t *span)
{
    const tg_test_json_t *events = tg_test_json_get(span, "events");
    int i;
    assert_fields_among(span, span_fields);
    if (tg_test_json_get(span, "attributes"))
        assert_key_values(tg_test_json_get(span, "attributes"));
    for (i = 0; events && i < events->count; i++)
        assert_fields_among(events->items[i], event_fields);
    if (tg_test_json_get(span, "status"))
        assert_fields_among(tg_test_json_get(span, "status"), status_fields);
}

static void test_every_member_is_an_otlp_field(void)
{
    const tg_span_t *spans[] = {example_span(), bare_span("other", 7)};
    const tg_test_json_t *tree = request_tree(spans, 2);
    const tg_test_json_t *resources = tg_test_json_get(tree, "resourceSpans");
    int r, s;
    assert_fields_among(tree, request_fields);
    CU_ASSERT_EQUAL_FATAL(resources->count, 2);
    for (r = 0; r < resources->count; r++) {
        const tg_test_json_t *resource = resources->items[r];
        const tg_test_json_t *spans_of = tg_test_json_get(resource, "scopeSpans/0/spans");
        assert_fields_among(resource, resource_spans_fields);
        assert_fields_among(tg_test_json_get(resource, "resource"), resource_fields);
        assert_key_values(tg_test_json_get(resource, "resource/attributes"));
        CU_ASSERT_EQUAL(tg_test_json_count_at(resource, "scopeSpans"), 1);
        assert_fields_among(tg_test_json_get(resource, "scopeSpans/0"), scope_spans_fields);
        assert_fields_among(tg_test_json_get(resource, "scopeSpans/0/scope"), scope_fields);
        CU_ASSERT_PTR_NOT_NULL_FATAL(spans_of);
        for (s = 0; s < spans_of->count; s++)
            assert_span_fields(spans_of->items[s]);
    }
}

static void test_spans_are_grouped_by_service_in_first_seen_order(void)
{
    const tg_span_t *spans[] = {bare_span("nova-api", 1), bare_span("glance-api", 2),
                                bare_span("nova-api", 3), bare_span("keystone", 4),
                                bare_span("glance-api", 5)};
    const tg_test_json_t *tree = request_tree(spans, 5);
    static const char *const services[] = {"nova-api", "glance-api", "keystone"};
    static const char *const ids[][2] = {{"0000000000000001", "0000000000000003"},
                                         {"0000000000000002", "0000000000000005"},
                                         {"0000000000000004", NULL}};
    int r, s;
    CU_ASSERT_EQUAL_FATAL(tg_test_json_count_at(tree, "resourceSpans"), 3);
    for (r = 0; r < 3; r++) {
        const char *resource = apr_psprintf(tg_test_pool, "resourceSpans/%d", r);
        const char *spans_at = apr_pstrcat(tg_test_pool, resource, "/scopeSpans/0/spans", NULL);
        int expected = ids[r][1] ? 2 : 1;
        CU_ASSERT_STRING_EQUAL(
            tg_test_json_string_at(tree, apr_pstrcat(tg_test_pool, resource,
                                                     "/resource/attributes/0/value/stringValue",
                                                     NULL)),
            services[r]);
        CU_ASSERT_EQUAL_FATAL(tg_test_json_count_at(tree, spans_at), expected);
        for (s = 0; s < expected; s++)
            CU_ASSERT_STRING_EQUAL(
                tg_test_json_string_at(tree, apr_psprintf(tg_test_pool, "%s/%d/spanId",
                                                          spans_at, s)),
                ids[r][s]);
    }
}

static void test_one_service_makes_one_resource(void)
{
    const tg_span_t *spans[] = {bare_span("nova-api", 1), bare_span("nova-api", 2)};
    CU_ASSERT_STRING_EQUAL(
        request_json(spans, 2),
        "{\"resourceSpans\":[" RESOURCE_OPEN("nova-api")
        "{\"traceId\":\"0000000000000000000000000000abcd\",\"spanId\":\"0000000000000001\","
        "\"name\":\"\",\"kind\":2,\"startTimeUnixNano\":\"" T0_NANOS "\"," START_EVENT "},"
        "{\"traceId\":\"0000000000000000000000000000abcd\",\"spanId\":\"0000000000000002\","
        "\"name\":\"\",\"kind\":2,\"startTimeUnixNano\":\"" T0_NANOS "\"," START_EVENT "}"
        RESOURCE_CLOSE "]}");
}

static void test_unknown_service_is_named_as_opentelemetry_does(void)
{
    const tg_span_t *spans[] = {bare_span(NULL, 1), bare_span("", 2)};
    const tg_test_json_t *tree = request_tree(spans, 2);
    /* NULL and "" are both unknown: one resource. */
    CU_ASSERT_EQUAL(tg_test_json_count_at(tree, "resourceSpans"), 1);
    CU_ASSERT_STRING_EQUAL(
        tg_test_json_string_at(tree, "resourceSpans/0/resource/attributes/0/value/stringValue"),
        "unknown_service");
    CU_ASSERT_EQUAL(tg_test_json_count_at(tree, "resourceSpans/0/scopeSpans/0/spans"), 2);
}

static void test_empty_request(void)
{
    CU_ASSERT_STRING_EQUAL(request_json(NULL, 0), "{\"resourceSpans\":[]}");
}

static void test_request_appends_to_what_is_there(void)
{
    const tg_span_t *span = example_span();
    tg_buf_t buf;
    tg_buf_init(&buf);
    tg_buf_puts(&buf, "x");
    tg_otlp_append_request(&buf, &span, 1);
    CU_ASSERT_EQUAL(buf.data[0], 'x');
    CU_ASSERT(tg_test_is_json(buf.data + 1, buf.len - 1));
    tg_buf_free(&buf);
}

static void test_every_kind_as_its_number(void)
{
    static const struct {
        tg_span_kind_t kind;
        const char *number;
    } kinds[] = {{TG_SPAN_SERVER, "2"}, {TG_SPAN_CLIENT, "3"}, {TG_SPAN_PRODUCER, "4"},
                 {TG_SPAN_CONSUMER, "5"}, {TG_SPAN_INTERNAL, "1"}};
    size_t i;
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        tg_span_t *span = bare_span("s", 1);
        const tg_test_json_t *kind;
        span->kind = kinds[i].kind;
        kind = tg_test_json_get(one_span_tree(span), SPAN_PATH "/kind");
        CU_ASSERT_PTR_NOT_NULL_FATAL(kind);
        CU_ASSERT_EQUAL(kind->type, TG_TEST_JSON_NUMBER);
        CU_ASSERT_STRING_EQUAL(kind->text, kinds[i].number);
    }
}

static void test_unknown_kind_is_left_out(void)
{
    tg_span_t *span = bare_span("s", 1);
    const tg_test_json_t *got;
    span->kind = (tg_span_kind_t)9;
    got = tg_test_json_get(one_span_tree(span), SPAN_PATH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_PTR_NULL(tg_test_json_get(got, "kind"));
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "spanId"), "0000000000000001");
}

static void test_root_span_has_no_parent_and_short_trace_id_widens(void)
{
    tg_span_t *span = bare_span("s", 0x1122334455667788ULL);
    const tg_test_json_t *got = tg_test_json_get(one_span_tree(span), SPAN_PATH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_PTR_NULL(tg_test_json_get(got, "parentSpanId"));
    /* 16 bytes, as OTLP requires: a 64-bit B3 trace id gets leading zeros. */
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "traceId"), "0000000000000000000000000000abcd");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "spanId"), "1122334455667788");
}

static void test_success_has_no_status(void)
{
    tg_span_t *span = example_span();
    span->error = 0;
    CU_ASSERT_PTR_NULL(tg_test_json_get(one_span_tree(span), SPAN_PATH "/status"));
}

static void test_end_time_is_at_least_one_microsecond_after_start(void)
{
    tg_span_t *span = bare_span("s", 1);
    const tg_test_json_t *got;
    span->finished = 1;
    got = tg_test_json_get(one_span_tree(span), SPAN_PATH);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "endTimeUnixNano"), nanos(T0 + 1));
    span->duration = 1234567;
    got = tg_test_json_get(one_span_tree(span), SPAN_PATH);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "endTimeUnixNano"), nanos(T0 + 1234567));
}

static void test_unfinished_span_has_no_end_time(void)
{
    const tg_test_json_t *got = tg_test_json_get(one_span_tree(bare_span("s", 1)), SPAN_PATH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_PTR_NULL(tg_test_json_get(got, "endTimeUnixNano"));
    CU_ASSERT_PTR_NULL(tg_test_json_get(got, "attributes"));
    CU_ASSERT_EQUAL(tg_test_json_count_at(got, "events"), 1);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "events/0/name"), "start");
}

/* The value of the span's attribute `key`, as {type, text}, or NULL. */
static const tg_test_json_t *attribute_value(const tg_test_json_t *span, const char *key)
{
    int n = tg_test_json_count_at(span, "attributes"), i;
    for (i = 0; i < n; i++) {
        const char *at = apr_psprintf(tg_test_pool, "attributes/%d", i);
        if (strcmp(tg_test_json_string_at(span, apr_pstrcat(tg_test_pool, at, "/key", NULL)), key) == 0)
            return tg_test_json_get(span, apr_pstrcat(tg_test_pool, at, "/value", NULL));
    }
    return NULL;
}

static void assert_attribute(const tg_test_json_t *span, const char *key, const char *kind,
                             const char *value)
{
    const tg_test_json_t *got = attribute_value(span, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, kind), value);
}

/* The endpoints as OpenTelemetry's network attributes, a port as an int64:
 * what its Zipkin mapping reads localEndpoint and remoteEndpoint from. */
static void test_endpoints_are_network_attributes(void)
{
    tg_span_t *span = bare_span("s", 1);
    const tg_test_json_t *got;
    tg_endpoint_set_address(&span->local, "::ffff:127.0.0.1", 80, tg_test_pool);
    tg_endpoint_set_address(&span->remote, "::1", 41234, tg_test_pool);
    got = tg_test_json_get(one_span_tree(span), SPAN_PATH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(tg_test_json_count_at(got, "attributes"), 4);
    assert_attribute(got, "network.local.address", "stringValue", "127.0.0.1");
    assert_attribute(got, "network.local.port", "intValue", "80");
    assert_attribute(got, "network.peer.address", "stringValue", "::1");
    assert_attribute(got, "network.peer.port", "intValue", "41234");
    /* What is unknown is left out. */
    tg_endpoint_set_address(&span->local, NULL, 0, tg_test_pool);
    tg_endpoint_set_address(&span->remote, "203.0.113.7", 0, tg_test_pool);
    got = tg_test_json_get(one_span_tree(span), SPAN_PATH);
    CU_ASSERT_EQUAL(tg_test_json_count_at(got, "attributes"), 1);
    assert_attribute(got, "network.peer.address", "stringValue", "203.0.113.7");
}

/* The bodies' lengths the transfer fields hold are attributes, in digits. */
static void test_lengths_are_attributes(void)
{
    tg_span_t *span = bare_span("s", 1);
    const tg_test_json_t *got;
    span->transfer = TG_TRANSFER_REQUEST_BYTES | TG_TRANSFER_RESPONSE_BYTES;
    span->request_bytes = 150000;
    span->response_bytes = 5000000000ULL;
    got = tg_test_json_get(one_span_tree(span), SPAN_PATH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(tg_test_json_count_at(got, "attributes"), 2);
    assert_attribute(got, "http.request_content_length", "stringValue", "150000");
    assert_attribute(got, "http.response_content_length", "stringValue", "5000000000");
}

static void test_times_before_the_epoch_read_as_zero(void)
{
    tg_span_t *span = bare_span("s", 1);
    span->timestamp = -5;
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(one_span_tree(span), SPAN_PATH "/startTimeUnixNano"),
                           "0");
}

static void test_names_keep_their_case(void)
{
    tg_span_t *span = example_span();
    const tg_test_json_t *tree;
    span->local.service_name = "Nova-API";
    tree = one_span_tree(span);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(tree, SPAN_PATH "/name"), "GET /api");
    CU_ASSERT_STRING_EQUAL(
        tg_test_json_string_at(tree, "resourceSpans/0/resource/attributes/0/value/stringValue"),
        "Nova-API");
}

static void test_hostile_strings_are_escaped_and_read_back(void)
{
    static const char hostile[] = "a\"b\\c\r\nd\te\x01/\xc3\xa9";
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_CLIENT, hostile, NULL, T0);
    const tg_test_json_t *tree, *got;
    span->local.service_name = hostile;
    tg_span_tag(span, hostile, hostile);
    tg_span_annotate(span, T0 + 1, hostile);
    tg_span_finish(span, T1);
    tree = one_span_tree(span);
    got = tg_test_json_get(tree, SPAN_PATH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "name"), hostile);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "attributes/0/key"), hostile);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "attributes/0/value/stringValue"), hostile);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "events/1/name"), hostile);
    CU_ASSERT_STRING_EQUAL(
        tg_test_json_string_at(tree, "resourceSpans/0/resource/attributes/0/value/stringValue"),
        hostile);
}

static void test_invalid_utf8_still_parses(void)
{
    tg_span_t *span = example_span();
    span->name = "bad \xff\xfe utf-8 \xc3";
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(one_span_tree(span), SPAN_PATH "/name"),
                           "bad \xef\xbf\xbd\xef\xbf\xbd utf-8 \xef\xbf\xbd");
}

static void test_null_strings_in_a_hand_made_span(void)
{
    tg_span_t *span = bare_span("s", 1);
    tg_tag_t *tag;
    tg_annotation_t *note;
    const tg_test_json_t *got;
    span->tags = apr_array_make(tg_test_pool, 1, sizeof(tg_tag_t));
    span->annotations = apr_array_make(tg_test_pool, 1, sizeof(tg_annotation_t));
    tag = apr_array_push(span->tags);
    tag->key = NULL;
    tag->value = NULL;
    note = apr_array_push(span->annotations);
    note->timestamp = T0;
    note->value = NULL;
    got = tg_test_json_get(one_span_tree(span), SPAN_PATH);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "name"), "");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "attributes/0/key"), "");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "attributes/0/value/stringValue"), "");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "events/0/name"), "start");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "events/1/name"), "");
}

/* Every bound of the span model reached at once: the largest span the
 * shipper can meet still makes a request that parses, each value whole. */
static void test_fullest_span_reads_back_whole(void)
{
    char long_text[TG_SPAN_MAX_STRING + 40];
    tg_span_t *span;
    const tg_test_json_t *got;
    int i;
    memset(long_text, '"', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, long_text, NULL, T0);
    span->local.service_name = "s";
    for (i = 0; i < TG_SPAN_MAX_TAGS + 3; i++)
        tg_span_tag(span, apr_psprintf(tg_test_pool, "k%d", i), long_text);
    for (i = 0; i < TG_SPAN_MAX_ANNOTATIONS + 3; i++)
        tg_span_annotate(span, T0 + i, long_text);
    tg_span_finish(span, T1);
    got = tg_test_json_get(one_span_tree(span), SPAN_PATH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(tg_test_json_count_at(got, "attributes"), TG_SPAN_MAX_TAGS);
    CU_ASSERT_EQUAL(tg_test_json_count_at(got, "events"), TG_SPAN_MAX_ANNOTATIONS);
    CU_ASSERT_EQUAL(strlen(tg_test_json_string_at(got, "name")), TG_SPAN_MAX_STRING);
    CU_ASSERT_EQUAL(strlen(tg_test_json_string_at(got, "events/15/name")), strlen("stop"));
}

/* Without a name of its own a span is named after its request, in
 * lowercase, and its HTTP fields are attributes: the same request as when
 * the module tagged it and named it so itself. */
static void test_span_named_after_its_request_writes_the_same_request(void)
{
    tg_span_t *named = example_span(), *unnamed = example_span();
    const tg_test_json_t *got;
    tg_span_tag(named, "http.path", "/api");
    tg_span_tag(unnamed, "http.path", "/api");
    named->name = "get /api";
    unnamed->name = NULL;
    got = tg_test_json_get(one_span_tree(unnamed), SPAN_PATH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "name"), "get /api");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "attributes/1/key"), "http.path");
    CU_ASSERT_STRING_EQUAL(tg_test_json_string_at(got, "attributes/2/value/stringValue"), "500");
    CU_ASSERT_STRING_EQUAL(request_json((const tg_span_t *const *)&unnamed, 1),
                           request_json((const tg_span_t *const *)&named, 1));
}

static void test_decoded_record_writes_the_same_request(void)
{
    const tg_span_t *span = example_span();
    const tg_span_t *decoded_spans[1];
    unsigned char record[4096];
    apr_size_t len = tg_record_encode(span, record, sizeof(record));
    tg_span_t *decoded;
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(tg_record_decode(record, len, tg_test_pool, &decoded), APR_SUCCESS);
    decoded_spans[0] = decoded;
    CU_ASSERT_STRING_EQUAL(request_json(decoded_spans, 1), request_json(&span, 1));
}

void tg_test_add_otlp(void)
{
    CU_pSuite suite = TG_SUITE("otlp");
    TG_TEST(suite, test_reader_reads_back_values_and_paths);
    TG_TEST(suite, test_reader_refuses_what_is_not_one_value);
    TG_TEST(suite, test_reader_finds_duplicate_keys);
    TG_TEST(suite, test_example_span_is_exact);
    TG_TEST(suite, test_span_named_after_its_request_writes_the_same_request);
    TG_TEST(suite, test_example_span_reads_back);
    TG_TEST(suite, test_every_member_is_an_otlp_field);
    TG_TEST(suite, test_spans_are_grouped_by_service_in_first_seen_order);
    TG_TEST(suite, test_one_service_makes_one_resource);
    TG_TEST(suite, test_unknown_service_is_named_as_opentelemetry_does);
    TG_TEST(suite, test_empty_request);
    TG_TEST(suite, test_request_appends_to_what_is_there);
    TG_TEST(suite, test_every_kind_as_its_number);
    TG_TEST(suite, test_unknown_kind_is_left_out);
    TG_TEST(suite, test_root_span_has_no_parent_and_short_trace_id_widens);
    TG_TEST(suite, test_success_has_no_status);
    TG_TEST(suite, test_end_time_is_at_least_one_microsecond_after_start);
    TG_TEST(suite, test_unfinished_span_has_no_end_time);
    TG_TEST(suite, test_times_before_the_epoch_read_as_zero);
    TG_TEST(suite, test_names_keep_their_case);
    TG_TEST(suite, test_hostile_strings_are_escaped_and_read_back);
    TG_TEST(suite, test_invalid_utf8_still_parses);
    TG_TEST(suite, test_null_strings_in_a_hand_made_span);
    TG_TEST(suite, test_endpoints_are_network_attributes);
    TG_TEST(suite, test_lengths_are_attributes);
    TG_TEST(suite, test_fullest_span_reads_back_whole);
    TG_TEST(suite, test_decoded_record_writes_the_same_request);
}
