#include "unit.h"

#include <apr_strings.h>
#include <stdio.h>
#include <string.h>

#include "tg_json.h"

/* ---- Writer ------------------------------------------------------------ */

/* The JSON text the writer makes of len bytes, in the test pool. */
static const char *written(const char *str, size_t len)
{
    tg_buf_t buf;
    char *copy;
    tg_buf_init(&buf);
    tg_json_append_string(&buf, str, len);
    CU_ASSERT_FATAL(!buf.failed);
    copy = apr_pstrmemdup(tg_test_pool, buf.data, buf.len);
    tg_buf_free(&buf);
    return copy;
}

#define ASSERT_WRITES(input, expected) \
    CU_ASSERT_STRING_EQUAL(written((input), sizeof(input) - 1), (expected))

/* The member "s" of a one-member object holding the writer's output,
 * read back with the reader. */
static const char *read_back(const char *str, size_t len)
{
    const char *json = apr_pstrcat(tg_test_pool, "{\"s\":", written(str, len), "}", NULL);
    const char *value = NULL;
    CU_ASSERT_FATAL(tg_json_object_get_string(json, strlen(json), "s", tg_test_pool, &value));
    return value;
}

static void test_writes_plain_text_quoted(void)
{
    ASSERT_WRITES("", "\"\"");
    ASSERT_WRITES("GET /v2/servers", "\"GET /v2/servers\"");
    ASSERT_WRITES("a'b<>&/", "\"a'b<>&/\"");
}

static void test_escapes_quote_and_backslash(void)
{
    ASSERT_WRITES("say \"hi\"", "\"say \\\"hi\\\"\"");
    ASSERT_WRITES("C:\\temp\\", "\"C:\\\\temp\\\\\"");
}

static void test_escapes_control_bytes(void)
{
    ASSERT_WRITES("a\nb\rc\td\be\ff", "\"a\\nb\\rc\\td\\be\\ff\"");
    ASSERT_WRITES("\x01\x1f", "\"\\u0001\\u001f\"");
    CU_ASSERT_STRING_EQUAL(written("a\0b", 3), "\"a\\u0000b\"");
    ASSERT_WRITES("~\x7f", "\"~\\u007f\""); /* DEL, a control byte to a terminal */
}

static void test_never_writes_raw_control_bytes(void)
{
    unsigned byte;
    for (byte = 0; byte < 256; byte++) {
        char c = (char)byte;
        const char *out = written(&c, 1);
        const char *p;
        for (p = out; *p; p++)
            CU_ASSERT((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f);
        /* And the reader accepts it (NUL aside, which it cannot hand back). */
        if (byte != 0)
            CU_ASSERT_PTR_NOT_NULL(read_back(&c, 1));
    }
}

static void test_keeps_valid_utf8(void)
{
    ASSERT_WRITES("caf\xc3\xa9", "\"caf\xc3\xa9\"");
    ASSERT_WRITES("\xe2\x82\xac 5", "\"\xe2\x82\xac 5\"");
    ASSERT_WRITES("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");
    ASSERT_WRITES("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
}

#define FFFD "\xef\xbf\xbd"

static void test_replaces_invalid_utf8(void)
{
    ASSERT_WRITES("a\x80z", "\"a" FFFD "z\"");             /* stray continuation */
    ASSERT_WRITES("\xff\xfe", "\"" FFFD FFFD "\"");         /* never valid */
    ASSERT_WRITES("\xc0\xaf", "\"" FFFD FFFD "\"");         /* overlong '/' */
    ASSERT_WRITES("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\""); /* overlong, 3 bytes */
    ASSERT_WRITES("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\""); /* surrogate D800 */
    ASSERT_WRITES("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""); /* past U+10FFFF */
    ASSERT_WRITES("ok\xe2\x82", "\"ok" FFFD FFFD "\"");     /* truncated at the end */
    ASSERT_WRITES("\xc3(", "\"" FFFD "(\"");                /* lead without continuation */
}

/* Every byte value at every place in a long plain string comes out as it
 * does alone (escaped, replaced or as it is), between the plain bytes
 * around it unchanged. */
static void test_every_byte_anywhere_in_long_text_as_alone(void)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyz0123~ /";
    const size_t len = sizeof(plain) - 1;
    char text[sizeof(plain)];
    size_t at;
    int byte;
    for (byte = 0; byte < 256; byte++) {
        char alone_byte = (char)byte;
        const char *alone = written(&alone_byte, 1);
        size_t alone_len = strlen(alone) - 2; /* without its quotes */
        for (at = 0; at < len; at++) {
            const char *got;
            memcpy(text, plain, len);
            text[at] = (char)byte;
            got = written(text, len);
            CU_ASSERT_EQUAL_FATAL(strlen(got), len - 1 + alone_len + 2);
            CU_ASSERT_EQUAL(memcmp(got + 1, plain, at), 0);
            CU_ASSERT_EQUAL(memcmp(got + 1 + at, alone + 1, alone_len), 0);
            CU_ASSERT_EQUAL(memcmp(got + 1 + at + alone_len, plain + at + 1, len - at - 1), 0);
        }
    }
}

/* The writer takes sixteen bytes at once, then the rest in overlapping
 * pieces: at every length up to past three of those steps, a character
 * needing more than a copy (or a letter, for the lowercase writer) at any
 * place comes out as it does alone, the plain bytes around it unchanged. */
static void test_every_length_and_place_as_alone(void)
{
    static const char *const specials[] = { "\"", "\n", "\x7f", "\xff", "\xc3\xa9", "\xe2\x82",
                                            "Q" };
    static const char plain[] = "abcdefghijklmnopqrstuvwxyz0123456789~ /.ABCDEFGHIJ";
    char text[64], got[TG_JSON_STRING_MAX(64)], want[TG_JSON_STRING_MAX(64)];
    size_t len, at, i;
    for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
        size_t special_len = strlen(specials[i]);
        const char *alone = written(specials[i], special_len);
        size_t alone_len = strlen(alone) - 2;
        for (len = special_len; len <= 50; len++) {
            for (at = 0; at + special_len <= len; at++) {
                size_t got_len;
                memcpy(text, plain, len);
                memcpy(text + at, specials[i], special_len);
                got_len = (size_t)(tg_json_put_string(got, text, len) - got);
                /* "text before" alone "text after", quoted */
                want[0] = '"';
                memcpy(want + 1, plain, at);
                memcpy(want + 1 + at, alone + 1, alone_len);
                memcpy(want + 1 + at + alone_len, plain + at + special_len, len - at - special_len);
                want[1 + len - special_len + alone_len] = '"';
                CU_ASSERT_EQUAL_FATAL(got_len, len - special_len + alone_len + 2);
                CU_ASSERT_EQUAL_FATAL(memcmp(got, want, got_len), 0);
                /* Lowercase: the same text, its ASCII letters in lowercase
                 * (an escape's letters being lowercase already). */
                for (got_len = 0; got_len < len - special_len + alone_len + 2; got_len++)
                    if (want[got_len] >= 'A' && want[got_len] <= 'Z')
                        want[got_len] = (char)(want[got_len] - 'A' + 'a');
                CU_ASSERT_EQUAL_FATAL((size_t)(tg_json_put_lowercase_string(got, text, len) - got),
                                      got_len);
                CU_ASSERT_EQUAL_FATAL(memcmp(got, want, got_len), 0);
            }
        }
    }
}

/* The text writer leaves the quotes out, for a string of several pieces. */
static void test_text_is_a_string_without_quotes(void)
{
    char got[64], *end;
    end = tg_json_put_lowercase_text(got, "GET", 3);
    *end++ = ' ';
    end = tg_json_put_lowercase_text(end, "/A\"b", 4);
    CU_ASSERT_EQUAL(end - got, 9);
    CU_ASSERT_EQUAL(memcmp(got, "get /a\\\"b", 9), 0);
    CU_ASSERT_PTR_EQUAL(tg_json_put_lowercase_text(got, "", 0), got);
    CU_ASSERT_EQUAL(tg_json_put_string(got, "", 0) - got, 2);
    CU_ASSERT_EQUAL(memcmp(got, "\"\"", 2), 0);
}

static void test_appends_after_existing_content(void)
{
    tg_buf_t buf;
    tg_buf_init(&buf);
    tg_buf_puts(&buf, "{\"name\":");
    tg_json_append_string(&buf, "x\"y", 3);
    tg_buf_putc(&buf, '}');
    CU_ASSERT_STRING_EQUAL(buf.data, "{\"name\":\"x\\\"y\"}");
    tg_buf_free(&buf);
}

static void test_written_text_reads_back_unchanged(void)
{
    static const char sample[] = "line1\r\nline2\t\"q\" \\ \x01 caf\xc3\xa9 \xf0\x9f\x98\x80";
    const char *value = read_back(sample, sizeof(sample) - 1);
    CU_ASSERT_STRING_EQUAL(value, sample);
    CU_ASSERT_STRING_EQUAL(read_back("bad\xffutf8", 8), "bad" FFFD "utf8");
}

/* ---- Reader ------------------------------------------------------------ */

/* The value of `key` in the NUL-terminated json, or NULL when the reader
 * says no. */
static const char *get(const char *json, const char *key)
{
    const char *value = NULL;
    if (!tg_json_object_get_string(json, strlen(json), key, tg_test_pool, &value))
        return NULL;
    CU_ASSERT_PTR_NOT_NULL(value);
    return value;
}

#define ASSERT_GETS(json, key, expected) do {                    \
        const char *value_ = get((json), (key));                 \
        CU_ASSERT_PTR_NOT_NULL(value_);                          \
        if (value_)                                              \
            CU_ASSERT_STRING_EQUAL(value_, (expected));          \
    } while (0)

#define ASSERT_REJECTS(json, key) CU_ASSERT_PTR_NULL(get((json), (key)))

static void test_reads_flat_object(void)
{
    static const char json[] = "{\"base_id\": \"abc\", \"parent_id\": \"def\"}";
    ASSERT_GETS(json, "base_id", "abc");
    ASSERT_GETS(json, "parent_id", "def");
    ASSERT_GETS("{\"a\":\"\"}", "a", "");
}

static void test_reads_around_whitespace(void)
{
    ASSERT_GETS(" \t\r\n{ \n\"a\"\t:\r\n\"1\" ,\n \"b\" : \"2\" \n} \r\n\t", "b", "2");
}

static void test_leaves_value_untouched_when_not_found(void)
{
    const char *value = "unchanged";
    CU_ASSERT_FALSE(tg_json_object_get_string("{\"a\":\"b\"}", 9, "c", tg_test_pool, &value));
    CU_ASSERT_STRING_EQUAL(value, "unchanged");
}

static void test_reports_absent_key_and_non_string_value(void)
{
    ASSERT_REJECTS("{\"a\":\"b\"}", "b");
    ASSERT_REJECTS("{\"a\":\"b\"}", "A");
    ASSERT_REJECTS("{}", "a");
    ASSERT_REJECTS("{\"a\":1}", "a");
    ASSERT_REJECTS("{\"a\":null}", "a");
    ASSERT_REJECTS("{\"a\":true}", "a");
    ASSERT_REJECTS("{\"a\":{\"a\":\"x\"}}", "a");
    ASSERT_REJECTS("{\"a\":[\"x\"]}", "a");
    /* A member of a nested object is not a member of the top one. */
    ASSERT_REJECTS("{\"n\":{\"a\":\"x\"}}", "a");
}

static void test_decodes_escapes(void)
{
    ASSERT_GETS("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "a", "\"\\/\b\f\n\r\t");
    ASSERT_GETS("{\"a\":\"\\u0041\\u00e9\\u00C9\\u20ac\"}", "a", "A\xc3\xa9\xc3\x89\xe2\x82\xac");
    ASSERT_GETS("{\"a\":\"\\ud83d\\ude00!\"}", "a", "\xf0\x9f\x98\x80!");
    ASSERT_GETS("{\"a\":\"\\uDBFF\\uDFFF\"}", "a", "\xf4\x8f\xbf\xbf");
}

static void test_matches_escaped_key(void)
{
    ASSERT_GETS("{\"base\\u005fid\":\"x\"}", "base_id", "x");
}

static void test_rejects_bad_escapes(void)
{
    ASSERT_REJECTS("{\"a\":\"\\x41\"}", "a");
    ASSERT_REJECTS("{\"a\":\"\\u12\"}", "a");
    ASSERT_REJECTS("{\"a\":\"\\u12G4\"}", "a");
    ASSERT_REJECTS("{\"a\":\"\\ud83d\"}", "a");          /* lone high surrogate */
    ASSERT_REJECTS("{\"a\":\"\\ud83dx\"}", "a");
    ASSERT_REJECTS("{\"a\":\"\\ud83d\\u0041\"}", "a");   /* high then not low */
    ASSERT_REJECTS("{\"a\":\"\\ude00\"}", "a");          /* lone low surrogate */
    ASSERT_REJECTS("{\"a\":\"\\\"}", "a");               /* escape eats the quote */
    /* A NUL cannot be handed back in a C string. */
    ASSERT_REJECTS("{\"a\":\"x\\u0000y\"}", "a");
}

static void test_rejects_raw_control_and_invalid_utf8_in_strings(void)
{
    ASSERT_REJECTS("{\"a\":\"line\nbreak\"}", "a");
    ASSERT_REJECTS("{\"a\":\"tab\there\"}", "a");
    ASSERT_REJECTS("{\"a\":\"\xff\"}", "a");
    ASSERT_REJECTS("{\"a\":\"\xc0\xaf\"}", "a");
    ASSERT_REJECTS("{\"b\":\"\xed\xa0\x80\",\"a\":\"x\"}", "a");
    ASSERT_GETS("{\"a\":\"caf\xc3\xa9\"}", "a", "caf\xc3\xa9");
}

static void test_skips_every_kind_of_value(void)
{
    static const char json[] =
        "{\"n1\":0,\"n2\":-12,\"n3\":3.25,\"n4\":1e10,\"n5\":-0.5E-3,\"n6\":6e+2,"
        "\"t\":true,\"f\":false,\"z\":null,\"s\":\"x\\\"}\","
        "\"o\":{\"p\":[1,{\"q\":[]},\"]\"],\"r\":{}},\"e\":[],"
        "\"want\":\"found\"}";
    ASSERT_GETS(json, "want", "found");
}

static void test_rejects_malformed_values(void)
{
    static const char *const bad_values[] = {
        "01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "- 1", "1.e3",
        "tru", "nul", "True", "NULL", "falsey", "'x'", "undefined", "NaN",
        "[1,]", "[,1]", "[1 2]", "{\"k\"}", "{\"k\":}", "{k:1}", "{\"k\":1,}", "[",
        "\"open", "",
    };
    size_t i;
    for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        const char *json = apr_pstrcat(tg_test_pool, "{\"x\":", bad_values[i], ",\"a\":\"ok\"}", NULL);
        CU_ASSERT_PTR_NULL(get(json, "a"));
    }
}

static void test_rejects_malformed_objects(void)
{
    ASSERT_REJECTS("{\"a\":\"b\",}", "a");
    ASSERT_REJECTS("{,\"a\":\"b\"}", "a");
    ASSERT_REJECTS("{\"a\" \"b\"}", "a");
    ASSERT_REJECTS("{\"a\":\"b\" \"c\":\"d\"}", "a");
    ASSERT_REJECTS("{a:\"b\"}", "a");
    ASSERT_REJECTS("{'a':'b'}", "a");
    ASSERT_REJECTS("{\"a\":\"b\"", "a");
    ASSERT_REJECTS("\"a\"", "a");
    ASSERT_REJECTS("[{\"a\":\"b\"}]", "a");
    ASSERT_REJECTS("", "a");
    ASSERT_REJECTS("   ", "a");
}

static void test_rejects_trailing_garbage(void)
{
    ASSERT_REJECTS("{\"a\":\"b\"} x", "a");
    ASSERT_REJECTS("{\"a\":\"b\"}{}", "a");
    ASSERT_REJECTS("{\"a\":\"b\"},", "a");
    CU_ASSERT_FALSE(tg_json_object_get_string("{\"a\":\"b\"}\0", 10, "a", tg_test_pool,
                                              &(const char *){NULL}));
}

static void test_rejects_duplicate_of_asked_key(void)
{
    ASSERT_REJECTS("{\"a\":\"1\",\"a\":\"2\"}", "a");
    ASSERT_REJECTS("{\"a\":\"1\",\"a\":2}", "a");
    ASSERT_REJECTS("{\"a\":1,\"a\":\"2\"}", "a");
    ASSERT_REJECTS("{\"a\":\"1\",\"\\u0061\":\"2\"}", "a");
    /* Duplicates of other members do not matter to this one. */
    ASSERT_GETS("{\"b\":\"1\",\"b\":\"2\",\"a\":\"3\"}", "a", "3");
}

static void test_rejects_every_truncation(void)
{
    static const char json[] = "{\"a\": [1, {\"b\": null}], \"key\": \"v\\u00e9\"}";
    size_t len;
    for (len = 0; len < sizeof(json) - 1; len++) {
        const char *value;
        CU_ASSERT_FALSE(tg_json_object_get_string(json, len, "key", tg_test_pool, &value));
    }
    ASSERT_GETS(json, "key", "v\xc3\xa9");
}

static void test_reads_only_len_bytes(void)
{
    static const char json[] = "{\"a\":\"b\"}trailing bytes past len";
    const char *value = NULL;
    CU_ASSERT_TRUE(tg_json_object_get_string(json, 9, "a", tg_test_pool, &value));
    CU_ASSERT_STRING_EQUAL(value, "b");
}

/* {"x": [[...[]...]], "a": "ok"} with `levels` brackets. */
static const char *nested(int levels)
{
    char *json = apr_palloc(tg_test_pool, (apr_size_t)levels * 2 + 32);
    char *p = json;
    int i;
    p += sprintf(p, "{\"x\":");
    for (i = 0; i < levels; i++)
        *p++ = '[';
    for (i = 0; i < levels; i++)
        *p++ = ']';
    sprintf(p, ",\"a\":\"ok\"}");
    return json;
}

static void test_bounds_nesting_depth(void)
{
    /* 32 levels with the top object are read; one more is refused. */
    ASSERT_GETS(nested(31), "a", "ok");
    ASSERT_REJECTS(nested(32), "a");
    /* Far deeper input is refused without exhausting the stack. */
    ASSERT_REJECTS(nested(200000), "a");
}

void tg_test_add_json(void)
{
    CU_pSuite suite = TG_SUITE("json");
    TG_TEST(suite, test_writes_plain_text_quoted);
    TG_TEST(suite, test_every_length_and_place_as_alone);
    TG_TEST(suite, test_text_is_a_string_without_quotes);
    TG_TEST(suite, test_escapes_quote_and_backslash);
    TG_TEST(suite, test_escapes_control_bytes);
    TG_TEST(suite, test_never_writes_raw_control_bytes);
    TG_TEST(suite, test_keeps_valid_utf8);
    TG_TEST(suite, test_replaces_invalid_utf8);
    TG_TEST(suite, test_every_byte_anywhere_in_long_text_as_alone);
    TG_TEST(suite, test_appends_after_existing_content);
    TG_TEST(suite, test_written_text_reads_back_unchanged);
    TG_TEST(suite, test_reads_flat_object);
    TG_TEST(suite, test_reads_around_whitespace);
    TG_TEST(suite, test_leaves_value_untouched_when_not_found);
    TG_TEST(suite, test_reports_absent_key_and_non_string_value);
    TG_TEST(suite, test_decodes_escapes);
    TG_TEST(suite, test_matches_escaped_key);
    TG_TEST(suite, test_rejects_bad_escapes);
    TG_TEST(suite, test_rejects_raw_control_and_invalid_utf8_in_strings);
    TG_TEST(suite, test_skips_every_kind_of_value);
    TG_TEST(suite, test_rejects_malformed_values);
    TG_TEST(suite, test_rejects_malformed_objects);
    TG_TEST(suite, test_rejects_trailing_garbage);
    TG_TEST(suite, test_rejects_duplicate_of_asked_key);
    TG_TEST(suite, test_rejects_every_truncation);
    TG_TEST(suite, test_reads_only_len_bytes);
    TG_TEST(suite, test_bounds_nesting_depth);
}
