#include "unit.h"

#include "tg_statsd.h"

#include <apr_strings.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#define T0 ((apr_time_t)1556604172355737)

static const char *span_lines(const tg_span_t *span)
{
    tg_buf_t buf;
    tg_statsd_memo_t memo = { NULL, 0, { 0 } };
    const char *result;
    tg_buf_init(&buf);
    tg_statsd_append_span(&buf, span, &memo);
    CU_ASSERT_FATAL(!buf.failed);
    result = apr_pstrdup(tg_test_pool, buf.data ? buf.data : "");
    tg_buf_free(&buf);
    return result;
}

/* The component a service's name becomes: its lines' text before the
 * first '.', which no component keeps. */
static const char *name_part(const char *part)
{
    tg_span_t *span = apr_pcalloc(tg_test_pool, sizeof(*span));
    const char *lines;
    span->pool = tg_test_pool;
    span->name = "n";
    span->timestamp = T0;
    span->local.service_name = part;
    lines = span_lines(span);
    return apr_pstrndup(tg_test_pool, lines, strcspn(lines, "."));
}

/* A finished span with no notes but its start and stop, lasting `usec`. */
static tg_span_t *timed_span(apr_time_t usec)
{
    tg_span_t *span = apr_pcalloc(tg_test_pool, sizeof(*span));
    span->pool = tg_test_pool;
    span->name = "q";
    span->local.service_name = "s";
    span->finished = 1;
    span->duration = usec;
    return span;
}

/* name:value|ms or name:1|c, the name only [A-Za-z0-9_-] parts joined by '.'
 * (none empty), and nothing else on the line. */
static int is_statsd_line(const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    const char *value, *end = line + len, *p;
    int part_len = 0;
    if (!colon)
        return 0;
    for (p = line; p < colon; p++) {
        if (*p == '.') {
            if (!part_len)
                return 0;
            part_len = 0;
        }
        else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
                 || *p == '_' || *p == '-') {
            part_len++;
        }
        else {
            return 0;
        }
    }
    if (!part_len)
        return 0;
    value = colon + 1;
    if ((size_t)(end - value) == 3 && memcmp(value, "1|c", 3) == 0)
        return 1;
    for (p = value; p < end && ((*p >= '0' && *p <= '9') || *p == '.'); p++)
        ;
    return p > value && (size_t)(end - p) == 3 && memcmp(p, "|ms", 3) == 0;
}

/* Checks every line and returns how many there are. */
static int count_statsd_lines(const char *text)
{
    int lines = 0;
    while (*text) {
        const char *newline = strchr(text, '\n');
        CU_ASSERT_PTR_NOT_NULL_FATAL(newline);
        CU_ASSERT(is_statsd_line(text, (size_t)(newline - text)));
        lines++;
        text = newline + 1;
    }
    return lines;
}

/* ---- name parts ---- */

static void test_plain_names_pass_unchanged(void)
{
    CU_ASSERT_STRING_EQUAL(name_part("keystone"), "keystone");
    CU_ASSERT_STRING_EQUAL(name_part("Nova-API_v2"), "Nova-API_v2");
    CU_ASSERT_STRING_EQUAL(name_part("0"), "0");
}

static void test_statsd_syntax_never_leaks(void)
{
    CU_ASSERT_STRING_EQUAL(name_part("a:b|c@d"), "a_b_c_d");
    CU_ASSERT_STRING_EQUAL(name_part("x:1|c\ny:2|ms"), "x_1_c_y_2_ms");
    CU_ASSERT_STRING_EQUAL(name_part("rate@0.5"), "rate_0_5");
    CU_ASSERT_STRING_EQUAL(name_part("dogstatsd|#tag:v"), "dogstatsd_tag_v");
}

static void test_graphite_separators_are_replaced(void)
{
    CU_ASSERT_STRING_EQUAL(name_part("a.b"), "a_b");
    CU_ASSERT_STRING_EQUAL(name_part("GET /v3/auth/tokens"), "GET_v3_auth_tokens");
    CU_ASSERT_STRING_EQUAL(name_part("C:\\dir\\file"), "C_dir_file");
}

static void test_whitespace_and_control_bytes_are_replaced(void)
{
    CU_ASSERT_STRING_EQUAL(name_part("a b\tc\r\nd\x01" "e\x7f" "f"), "a_b_c_d_e_f");
}

static void test_bytes_past_ascii_are_replaced(void)
{
    CU_ASSERT_STRING_EQUAL(name_part("na\xc3\xafve"), "na_ve");
    CU_ASSERT_STRING_EQUAL(name_part("\xff\xfe" "x"), "x");
}

static void test_runs_collapse_and_ends_are_trimmed(void)
{
    CU_ASSERT_STRING_EQUAL(name_part("  lead and trail  "), "lead_and_trail");
    CU_ASSERT_STRING_EQUAL(name_part("__x__y__"), "x_y");
    CU_ASSERT_STRING_EQUAL(name_part("a_:_b"), "a_b");
    CU_ASSERT_STRING_EQUAL(name_part("a-_-b"), "a-_-b");
}

static void test_nothing_left_is_one_underscore(void)
{
    CU_ASSERT_STRING_EQUAL(name_part("_"), "_");
    CU_ASSERT_STRING_EQUAL(name_part(":|@. \n"), "_");
}

/* The rule, one byte at a time: the runs of [A-Za-z0-9-] joined by '_',
 * "_" when there are none. */
static const char *reference_name_part(const char *part, int lowercase)
{
    char *out = apr_palloc(tg_test_pool, strlen(part) + 2), *p = out;
    int gap = 0;
    for (; *part; part++) {
        char c = *part;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) {
            gap = 1;
            continue;
        }
        if (gap && p != out)
            *p++ = '_';
        gap = 0;
        *p++ = lowercase && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    if (p == out)
        *p++ = '_';
    *p = '\0';
    return out;
}

/* Whether a run is an id, by the rule read another way: four or more
 * decimal digits and nothing else, or somewhere sixteen hex digits, each
 * but the first coming after dashes or nothing. */
static int reference_is_id(const char *run, size_t len)
{
    size_t start, at;
    int hex;
    if (len >= 4 && strspn(run, "0123456789") >= len)
        return 1;
    for (start = 0; start < len; start++) {
        for (at = start, hex = 0; at < len && hex < 16; at++) {
            if (strchr("0123456789abcdefABCDEF", run[at]))
                hex++;
            else if (run[at] != '-' || hex == 0)
                break;
        }
        if (hex == 16)
            return 1;
    }
    return 0;
}

/* A sanitized span name with the runs that are ids replaced by "id". */
static const char *reference_collapsed(const char *name)
{
    char *out = apr_palloc(tg_test_pool, strlen(name) + 1), *p = out;
    const char *run = name;
    for (;;) {
        size_t len = strcspn(run, "_");
        char *copy = apr_pstrndup(tg_test_pool, run, len);
        p = stpcpy(p, reference_is_id(copy, len) ? "id" : copy);
        if (!run[len])
            break;
        *p++ = '_';
        run += len + 1;
    }
    *p = '\0';
    return out;
}

/* What a span name goes out as in statsd. */
static const char *reference_span_name(const char *name, int lowercase)
{
    return reference_collapsed(reference_name_part(name, lowercase));
}

/* The alphabet the shapes below are drawn from: kept bytes, separators
 * (alone or in runs), bytes past ASCII, uppercase. */
static const char shape_alphabet[] = "aZ9-_./ :\xc3\xa9" "Bq";

/* len bytes from the alphabet, mostly kept ones, as names are (only kept
 * ones in odd rounds), and the NUL. */
static void random_shape(char *part, size_t len, int round, uint64_t *mixed)
{
    size_t i;
    for (i = 0; i < len; i++) {
        *mixed = *mixed * 6364136223846793005ULL + 1442695040888963407ULL;
        part[i] = shape_alphabet[(*mixed >> 33) % (round % 2 ? 4 : sizeof(shape_alphabet) - 1)];
    }
    part[len] = '\0';
}

/* Parts of every length up to past three steps of the sixteen bytes taken
 * at once, made of kept bytes and separators (alone, in runs, leading,
 * trailing), follow the rule; no name at all is the unknown service. */
static void test_name_parts_of_every_shape_follow_the_rule(void)
{
    uint64_t mixed = 0x853c49e6748fea9bULL;
    char part[60];
    int round;
    size_t len;
    for (round = 0; round < 200; round++) {
        for (len = 1; len < sizeof(part); len++) {
            random_shape(part, len, round, &mixed);
            CU_ASSERT_STRING_EQUAL_FATAL(name_part(part), reference_name_part(part, 0));
        }
    }
}

/* ---- span lines ---- */

static void test_span_gives_a_timer_and_a_counter_per_note(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "GET /v3/auth/tokens", NULL, T0);
    span->local.service_name = "keystone";
    tg_span_annotate(span, T0 + 10, "db query");
    tg_span_finish(span, T0 + 12345);
    CU_ASSERT_STRING_EQUAL(span_lines(span), "keystone.GET_v3_auth_tokens:12.345|ms\n"
                                             "keystone.GET_v3_auth_tokens.start:1|c\n"
                                             "keystone.GET_v3_auth_tokens.db_query:1|c\n"
                                             "keystone.GET_v3_auth_tokens.stop:1|c\n");
}

/* The moments of the transfer are timed from the span's start: time to
 * first byte is what a dashboard plots, not how many requests had one. */
static void test_transfer_moments_are_timers(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "upload", NULL, T0);
    span->local.service_name = "glance";
    tg_span_annotate(span, T0 + 1500, TG_NOTE_BODY_READ);
    tg_span_annotate(span, T0 + 12345, TG_NOTE_FIRST_BYTE);
    tg_span_annotate(span, T0 + 20000, "first byteish");
    tg_span_finish(span, T0 + 40000);
    CU_ASSERT_STRING_EQUAL(span_lines(span), "glance.upload:40|ms\n"
                                             "glance.upload.start:1|c\n"
                                             "glance.upload.body_read:1.5|ms\n"
                                             "glance.upload.first_byte:12.345|ms\n"
                                             "glance.upload.first_byteish:1|c\n"
                                             "glance.upload.stop:1|c\n");
}

static void test_unknown_service(void)
{
    tg_span_t *span = timed_span(2000);
    span->local.service_name = NULL;
    CU_ASSERT_STRING_EQUAL(span_lines(span), "unknown.q:2|ms\nunknown.q.start:1|c\nunknown.q.stop:1|c\n");
    span->local.service_name = "";
    CU_ASSERT_STRING_EQUAL(span_lines(span), "unknown.q:2|ms\nunknown.q.start:1|c\nunknown.q.stop:1|c\n");
}

static void test_missing_span_name(void)
{
    tg_span_t *span = timed_span(2000);
    span->name = NULL;
    CU_ASSERT_STRING_EQUAL(span_lines(span), "s._:2|ms\ns._.start:1|c\ns._.stop:1|c\n");
}

/* Spans written one after the other with one memo give the lines each
 * gives alone: services the same as the last (at another address), others,
 * one the memo cannot hold (longer than TG_STATSD_MEMO_TEXT written), one
 * sanitized, none. */
static void test_memo_changes_no_line(void)
{
    static const char *const services[] = {
        "bench", "bench", "bench2", "bench", "My Service!", "My Service!", "my_service",
        "a-service-name-of-more-than-32-bytes", "a-service-name-of-more-than-32-bytes",
        "a-service-name-of-exactly-32-byt", "a-service-name-of-exactly-32-byt", "a-service-name",
        NULL, "", "unknown", "bench",
    };
    const int n = (int)(sizeof(services) / sizeof(services[0]));
    tg_statsd_memo_t memo = { NULL, 0, { 0 } };
    tg_buf_t together, alone;
    int i;
    tg_buf_init(&together);
    tg_buf_init(&alone);
    for (i = 0; i < n; i++) {
        tg_span_t *span = timed_span(2000 + i);
        span->local.service_name = services[i] ? apr_pstrdup(tg_test_pool, services[i]) : NULL;
        tg_statsd_append_span(&together, span, &memo);
        tg_buf_puts(&alone, span_lines(span));
    }
    CU_ASSERT_FATAL(!together.failed && !alone.failed);
    CU_ASSERT_STRING_EQUAL(together.data, alone.data);
    tg_buf_free(&together);
    tg_buf_free(&alone);
}

/* Without a name of its own a span is named after its request, in
 * lowercase: the same lines as when the module named it so itself. */
static void test_span_named_after_its_request(void)
{
    tg_span_t *named = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "get /v3/auth/tokens", NULL, T0);
    tg_span_t *unnamed = tg_span_start(tg_test_pool, TG_SPAN_SERVER, NULL, NULL, T0);
    named->local.service_name = unnamed->local.service_name = "keystone";
    tg_span_tag(named, TG_TAG_HTTP_METHOD, "GET");
    tg_span_tag(unnamed, TG_TAG_HTTP_METHOD, "GET");
    tg_span_tag(named, TG_TAG_HTTP_PATH, "/v3/auth/tokens");
    tg_span_tag(unnamed, TG_TAG_HTTP_PATH, "/v3/auth/tokens");
    tg_span_finish(named, T0 + 2000);
    tg_span_finish(unnamed, T0 + 2000);
    CU_ASSERT_STRING_EQUAL(span_lines(unnamed), "keystone.get_v3_auth_tokens:2|ms\n"
                                                "keystone.get_v3_auth_tokens.start:1|c\n"
                                                "keystone.get_v3_auth_tokens.stop:1|c\n");
    CU_ASSERT_STRING_EQUAL(span_lines(unnamed), span_lines(named));
}

/* The name made of the request is sanitized as a whole: its method's runs
 * and its path's, one separator between, none when either has none. */
static void test_name_made_of_the_request_follows_the_rule(void)
{
    static const char *const methods[] = { "GET", "", ":", "M-SEARCH", "Get.Thing" };
    static const char *const paths[] = { "/v2.1/servers/detail", "", "/", "//A//b//",
                                         "/a-very-long-path/with/Many/Parts/index.html", NULL };
    size_t m, p;
    for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        for (p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
            tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, NULL, NULL, T0);
            char name[TG_SPAN_NAME_MAX + 1];
            const char *expected;
            span->local.service_name = "s";
            span->method = methods[m];
            span->path = paths[p];
            expected = apr_pstrcat(tg_test_pool, "s.",
                                   reference_span_name(tg_span_name(span, name), 1),
                                   ".start:1|c\n", NULL);
            CU_ASSERT_STRING_EQUAL(span_lines(span), expected);
        }
    }
}

/* The timer of a request's span, named after method and path. */
static const char *timer_of_request(const char *method, const char *path)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, NULL, NULL, T0);
    const char *lines;
    span->local.service_name = "nova";
    span->method = method;
    span->path = path;
    tg_span_finish(span, T0 + 1000);
    lines = span_lines(span);
    return apr_pstrndup(tg_test_pool, lines, strcspn(lines, ":"));
}

/* Each value of an id would be a metric of its own (a file of its own in
 * Graphite): ids in a span's name go out as "id", whatever else is kept. */
static void test_ids_in_names_are_collapsed(void)
{
    static const struct {
        const char *path, *timer;
    } cases[] = {
        { "/v2/images/6f1c8c1e-0b4e-4b0a-9d8e-2f6b3c1a9e7d", "nova.get_v2_images_id" },
        { "/v2/images/6F1C8C1E-0B4E-4B0A-9D8E-2F6B3C1A9E7D/file", "nova.get_v2_images_id_file" },
        { "/v3/projects/0123456789abcdef0123456789abcdef/users", "nova.get_v3_projects_id_users" },
        { "/v1/AUTH_0123456789abcdef0123456789abcdef/photos", "nova.get_v1_auth_id_photos" },
        { "/v2.1/os-instance-actions/req-6f1c8c1e-0b4e-4b0a-9d8e-2f6b3c1a9e7d",
          "nova.get_v2_1_os-instance-actions_id" },
        { "/v2.1/flavors/1234/os-extra_specs", "nova.get_v2_1_flavors_id_os-extra_specs" },
        /* Not ids: a version, a small number, short hex, words. */
        { "/v2.1/flavors/42", "nova.get_v2_1_flavors_42" },
        { "/v2.1/servers/detail", "nova.get_v2_1_servers_detail" },
        { "/cache/deadbeefcafe", "nova.get_cache_deadbeefcafe" },
        { "/v2/images/6f1c8c1e-0b4e", "nova.get_v2_images_6f1c8c1e-0b4e" },
        { "/a/0123456789abcde", "nova.get_a_0123456789abcde" },
        { "/id/123", "nova.get_id_123" },
    };
    static const char named_by_maker[] = "Delete image 6f1c8c1e-0b4e-4b0a-9d8e-2f6b3c1a9e7d now";
    tg_span_t *named = tg_span_start(tg_test_pool, TG_SPAN_SERVER, named_by_maker, NULL, T0);
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CU_ASSERT_STRING_EQUAL(timer_of_request("GET", cases[i].path), cases[i].timer);
    /* A span named by its maker too, its case kept. */
    named->local.service_name = "glance";
    CU_ASSERT_STRING_EQUAL(span_lines(named), "glance.Delete_image_id_now.start:1|c\n");
}

/* The same, lowercase, for methods and paths of every shape. */
static void test_names_made_of_requests_of_every_shape(void)
{
    uint64_t mixed = 0x2545f4914f6cdd1dULL;
    char method[12], path[40];
    int round;
    size_t len;
    for (round = 0; round < 100; round++) {
        for (len = 0; len < sizeof(path); len++) {
            tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, NULL, NULL, T0);
            char name[TG_SPAN_NAME_MAX + 1];
            random_shape(method, len % sizeof(method), round, &mixed);
            random_shape(path, len, round, &mixed);
            span->local.service_name = "s";
            span->method = method;
            span->path = path;
            CU_ASSERT_STRING_EQUAL_FATAL(
                span_lines(span), apr_pstrcat(tg_test_pool, "s.",
                                              reference_span_name(tg_span_name(span, name), 1),
                                              ".start:1|c\n", NULL));
        }
    }
}

static void test_milliseconds_are_exact(void)
{
    static const struct {
        apr_time_t usec;
        const char *line;
    } cases[] = {
        { 12000, "s.q:12|ms\n" },      { 12300, "s.q:12.3|ms\n" },     { 12050, "s.q:12.05|ms\n" },
        { 12001, "s.q:12.001|ms\n" },  { 999, "s.q:0.999|ms\n" },      { 1000, "s.q:1|ms\n" },
        { 1, "s.q:0.001|ms\n" },       { 0, "s.q:0.001|ms\n" }, /* finished: at least 1 µs */
        { APR_INT64_C(86400000000), "s.q:86400000|ms\n" },
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *lines = span_lines(timed_span(cases[i].usec));
        CU_ASSERT_NSTRING_EQUAL(lines, cases[i].line, strlen(cases[i].line));
        CU_ASSERT_STRING_EQUAL(lines + strlen(cases[i].line), "s.q.start:1|c\ns.q.stop:1|c\n");
    }
}

/* The timer line of a span lasting usec, by the rule written with printf. */
static const char *timer_line(uint64_t usec)
{
    unsigned fraction = (unsigned)(usec % 1000);
    char *line = apr_psprintf(tg_test_pool, "s.q:%" PRIu64 ".%03u", usec / 1000, fraction);
    size_t len = strlen(line);
    while (line[len - 1] == '0')
        len--;
    if (line[len - 1] == '.')
        len--;
    return apr_pstrcat(tg_test_pool, apr_pstrndup(tg_test_pool, line, len), "|ms\n", NULL);
}

/* Every duration to 0.1 s, and a spread beyond. */
static void test_milliseconds_follow_the_rule(void)
{
    uint64_t usec, mixed = 0x9e3779b97f4a7c15ULL;
    int i;
    for (usec = 1; usec <= 100000; usec++) {
        const char *want = timer_line(usec);
        CU_ASSERT_NSTRING_EQUAL_FATAL(span_lines(timed_span((apr_time_t)usec)), want, strlen(want));
    }
    for (i = 0; i < 10000; i++) {
        const char *want;
        mixed = mixed * 6364136223846793005ULL + 1442695040888963407ULL;
        usec = (mixed >> 20) % (i % 2 ? 100000000 : 1000000000000ULL) + 1;
        want = timer_line(usec);
        CU_ASSERT_NSTRING_EQUAL_FATAL(span_lines(timed_span((apr_time_t)usec)), want, strlen(want));
    }
}

static void test_unfinished_span_has_no_timer(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "q", NULL, T0);
    span->local.service_name = "s";
    CU_ASSERT_STRING_EQUAL(span_lines(span), "s.q.start:1|c\n");
}

static void test_hostile_names_stay_on_their_lines(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "x:1|c\nevil.metric:99|ms", NULL, T0);
    const char *text;
    span->local.service_name = "svc|@0.1\r\n";
    tg_span_annotate(span, T0 + 1, "note:5|g\n#tag");
    tg_span_annotate(span, T0 + 2, "\n");
    tg_span_finish(span, T0 + 5);
    text = span_lines(span);
    CU_ASSERT_EQUAL(count_statsd_lines(text), 1 + 4);
    CU_ASSERT_STRING_EQUAL(text, "svc_0_1.x_1_c_evil_metric_99_ms:0.005|ms\n"
                                 "svc_0_1.x_1_c_evil_metric_99_ms.start:1|c\n"
                                 "svc_0_1.x_1_c_evil_metric_99_ms.note:1|c\n"
                                 "svc_0_1.x_1_c_evil_metric_99_ms._:1|c\n"
                                 "svc_0_1.x_1_c_evil_metric_99_ms.stop:1|c\n");
}

/* Notes made from log lines and paths would make metric names without bound. */
static void test_note_counters_are_named_by_their_kind(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, "q", NULL, T0);
    char long_note[200];
    memset(long_note, 'n', sizeof(long_note) - 1);
    long_note[sizeof(long_note) - 1] = '\0';
    span->local.service_name = "s";
    tg_span_annotate(span, T0 + 1, "error: AH01114: HTTP: failed to make connection to backend");
    tg_span_annotate(span, T0 + 2, "internal redirect to /index.html");
    tg_span_annotate(span, T0 + 3, "subrequest /app/x");
    tg_span_annotate(span, T0 + 4, long_note);
    CU_ASSERT_STRING_EQUAL(span_lines(span),
                           apr_pstrcat(tg_test_pool, "s.q.start:1|c\n"
                                                     "s.q.error:1|c\n"
                                                     "s.q.internal_redirect_to:1|c\n"
                                                     "s.q.subrequest:1|c\n"
                                                     "s.q.", apr_pstrndup(tg_test_pool, long_note, 64),
                                       ":1|c\n", NULL));
}

static void test_line_checker_can_fail(void)
{
    CU_ASSERT_TRUE(is_statsd_line("a.b:1|c", 7));
    CU_ASSERT_TRUE(is_statsd_line("a.b:1.5|ms", 10));
    CU_ASSERT_FALSE(is_statsd_line("a..b:1|c", 8));
    CU_ASSERT_FALSE(is_statsd_line("a b:1|c", 7));
    CU_ASSERT_FALSE(is_statsd_line("a:1|c|@0.5", 10));
    CU_ASSERT_FALSE(is_statsd_line(":1|c", 4));
}

static void test_every_bound_reached_still_parses(void)
{
    tg_span_t *span = tg_span_start(tg_test_pool, TG_SPAN_SERVER, NULL, NULL, T0);
    int i;
    for (i = 0; i < TG_SPAN_MAX_ANNOTATIONS; i++)
        tg_span_annotate(span, T0 + i, apr_psprintf(tg_test_pool, "n%d:|@\x01", i));
    tg_span_finish(span, T0 + 1000);
    CU_ASSERT_EQUAL(count_statsd_lines(span_lines(span)), 1 + TG_SPAN_MAX_ANNOTATIONS);
}

void tg_test_add_statsd(void)
{
    CU_pSuite suite = TG_SUITE("statsd");
    TG_TEST(suite, test_plain_names_pass_unchanged);
    TG_TEST(suite, test_statsd_syntax_never_leaks);
    TG_TEST(suite, test_graphite_separators_are_replaced);
    TG_TEST(suite, test_whitespace_and_control_bytes_are_replaced);
    TG_TEST(suite, test_bytes_past_ascii_are_replaced);
    TG_TEST(suite, test_runs_collapse_and_ends_are_trimmed);
    TG_TEST(suite, test_nothing_left_is_one_underscore);
    TG_TEST(suite, test_name_parts_of_every_shape_follow_the_rule);
    TG_TEST(suite, test_span_gives_a_timer_and_a_counter_per_note);
    TG_TEST(suite, test_note_counters_are_named_by_their_kind);
    TG_TEST(suite, test_transfer_moments_are_timers);
    TG_TEST(suite, test_unknown_service);
    TG_TEST(suite, test_memo_changes_no_line);
    TG_TEST(suite, test_missing_span_name);
    TG_TEST(suite, test_span_named_after_its_request);
    TG_TEST(suite, test_name_made_of_the_request_follows_the_rule);
    TG_TEST(suite, test_names_made_of_requests_of_every_shape);
    TG_TEST(suite, test_ids_in_names_are_collapsed);
    TG_TEST(suite, test_milliseconds_are_exact);
    TG_TEST(suite, test_milliseconds_follow_the_rule);
    TG_TEST(suite, test_unfinished_span_has_no_timer);
    TG_TEST(suite, test_hostile_names_stay_on_their_lines);
    TG_TEST(suite, test_line_checker_can_fail);
    TG_TEST(suite, test_every_bound_reached_still_parses);
}
