#include "json_check.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <stdlib.h>
#include <string.h>

/* Deeper than any encoder of ours nests; each level costs a stack frame. */
#define MAX_DEPTH 64

typedef struct {
    const unsigned char *pos;
    const unsigned char *end;
    apr_pool_t *pool;
} cursor_t;

static tg_test_json_t *parse_value(cursor_t *c, int depth);

static void skip_space(cursor_t *c)
{
    while (c->pos < c->end && (*c->pos == ' ' || *c->pos == '\t' || *c->pos == '\n' || *c->pos == '\r'))
        c->pos++;
}

static int take_char(cursor_t *c, unsigned char ch)
{
    skip_space(c);
    if (c->pos < c->end && *c->pos == ch) {
        c->pos++;
        return 1;
    }
    return 0;
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static tg_test_json_t *new_value(cursor_t *c, tg_test_json_type_t type)
{
    tg_test_json_t *value = apr_pcalloc(c->pool, sizeof(*value));
    value->type = type;
    return value;
}

/* Copies one well-formed UTF-8 sequence. */
static int take_utf8(cursor_t *c, apr_array_header_t *out)
{
    unsigned char lead = *c->pos;
    int more = lead >= 0xc2 && lead <= 0xdf ? 1 : lead >= 0xe0 && lead <= 0xef ? 2
               : lead >= 0xf0 && lead <= 0xf4 ? 3 : -1;
    if (more < 0 || c->end - c->pos <= more)
        return 0;
    *(unsigned char *)apr_array_push(out) = *c->pos++;
    for (; more; more--) {
        if ((*c->pos & 0xc0) != 0x80)
            return 0;
        *(unsigned char *)apr_array_push(out) = *c->pos++;
    }
    return 1;
}

static void put_utf8(apr_array_header_t *out, unsigned long code)
{
    unsigned char bytes[4];
    int n, i;
    if (code < 0x80) {
        bytes[0] = (unsigned char)code;
        n = 1;
    }
    else if (code < 0x800) {
        bytes[0] = (unsigned char)(0xc0 | (code >> 6));
        bytes[1] = (unsigned char)(0x80 | (code & 0x3f));
        n = 2;
    }
    else if (code < 0x10000) {
        bytes[0] = (unsigned char)(0xe0 | (code >> 12));
        bytes[1] = (unsigned char)(0x80 | ((code >> 6) & 0x3f));
        bytes[2] = (unsigned char)(0x80 | (code & 0x3f));
        n = 3;
    }
    else {
        bytes[0] = (unsigned char)(0xf0 | (code >> 18));
        bytes[1] = (unsigned char)(0x80 | ((code >> 12) & 0x3f));
        bytes[2] = (unsigned char)(0x80 | ((code >> 6) & 0x3f));
        bytes[3] = (unsigned char)(0x80 | (code & 0x3f));
        n = 4;
    }
    for (i = 0; i < n; i++)
        *(unsigned char *)apr_array_push(out) = bytes[i];
}

/* The four hex digits of a \u escape; -1 when they are not. */
static long take_hex4(cursor_t *c)
{
    long code = 0;
    int i;
    if (c->end - c->pos < 4)
        return -1;
    for (i = 0; i < 4; i++) {
        int digit = hex_value(*c->pos++);
        if (digit < 0)
            return -1;
        code = code * 16 + digit;
    }
    return code;
}

/* After "\u": one escaped code point, a surrogate pair joined.  A lone
 * surrogate is allowed by the grammar and kept as its own code. */
static int take_unicode_escape(cursor_t *c, apr_array_header_t *out)
{
    long code = take_hex4(c);
    if (code < 0)
        return 0;
    if (code >= 0xd800 && code <= 0xdbff && c->end - c->pos >= 6 && c->pos[0] == '\\'
        && c->pos[1] == 'u') {
        cursor_t ahead = *c;
        long low;
        ahead.pos += 2;
        low = take_hex4(&ahead);
        if (low >= 0xdc00 && low <= 0xdfff) {
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
            *c = ahead;
        }
    }
    put_utf8(out, (unsigned long)code);
    return 1;
}

static int take_escape(cursor_t *c, apr_array_header_t *out)
{
    static const char escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    unsigned char ch;
    const char *found;
    if (c->end - c->pos < 2)
        return 0;
    ch = c->pos[1];
    c->pos += 2;
    if (ch == 'u')
        return take_unicode_escape(c, out);
    for (found = escapes; *found; found += 2)
        if ((unsigned char)found[0] == ch) {
            *(char *)apr_array_push(out) = found[1];
            return 1;
        }
    return 0;
}

/* A string, unescaped into *text (NUL-terminated, in the pool). */
static int take_string(cursor_t *c, const char **text, size_t *len)
{
    apr_array_header_t *out = apr_array_make(c->pool, 16, 1);
    if (!take_char(c, '"'))
        return 0;
    while (c->pos < c->end) {
        unsigned char ch = *c->pos;
        if (ch == '"') {
            c->pos++;
            *len = (size_t)out->nelts;
            *(char *)apr_array_push(out) = '\0';
            *text = out->elts;
            return 1;
        }
        if (ch < 0x20)
            return 0;
        if (ch == '\\') {
            if (!take_escape(c, out))
                return 0;
        }
        else if (ch >= 0x80) {
            if (!take_utf8(c, out))
                return 0;
        }
        else {
            *(unsigned char *)apr_array_push(out) = ch;
            c->pos++;
        }
    }
    return 0;
}

static int digits(cursor_t *c)
{
    const unsigned char *start = c->pos;
    while (c->pos < c->end && *c->pos >= '0' && *c->pos <= '9')
        c->pos++;
    return c->pos > start;
}

static tg_test_json_t *parse_number(cursor_t *c)
{
    const unsigned char *start = c->pos;
    tg_test_json_t *value;
    if (c->pos < c->end && *c->pos == '-')
        c->pos++;
    if (c->pos < c->end && *c->pos == '0')
        c->pos++;
    else if (!digits(c))
        return NULL;
    if (c->pos < c->end && *c->pos == '.') {
        c->pos++;
        if (!digits(c))
            return NULL;
    }
    if (c->pos < c->end && (*c->pos == 'e' || *c->pos == 'E')) {
        c->pos++;
        if (c->pos < c->end && (*c->pos == '+' || *c->pos == '-'))
            c->pos++;
        if (!digits(c))
            return NULL;
    }
    value = new_value(c, TG_TEST_JSON_NUMBER);
    value->len = (size_t)(c->pos - start);
    value->text = apr_pstrmemdup(c->pool, (const char *)start, value->len);
    return value;
}

static tg_test_json_t *parse_literal(cursor_t *c, const char *word, tg_test_json_type_t type)
{
    size_t len = strlen(word);
    if ((size_t)(c->end - c->pos) < len || memcmp(c->pos, word, len) != 0)
        return NULL;
    c->pos += len;
    return new_value(c, type);
}

static tg_test_json_t *parse_container(cursor_t *c, int depth, tg_test_json_type_t type)
{
    int is_object = type == TG_TEST_JSON_OBJECT;
    unsigned char close = is_object ? '}' : ']';
    apr_array_header_t *keys = apr_array_make(c->pool, 4, sizeof(const char *));
    apr_array_header_t *items = apr_array_make(c->pool, 4, sizeof(tg_test_json_t *));
    tg_test_json_t *value = new_value(c, type);
    if (!take_char(c, close)) {
        do {
            const char *key = NULL;
            size_t key_len;
            tg_test_json_t *item;
            if (is_object && (!take_string(c, &key, &key_len) || !take_char(c, ':')))
                return NULL;
            item = parse_value(c, depth + 1);
            if (!item)
                return NULL;
            *(const char **)apr_array_push(keys) = key;
            *(tg_test_json_t **)apr_array_push(items) = item;
        } while (take_char(c, ','));
        if (!take_char(c, close))
            return NULL;
    }
    value->count = items->nelts;
    value->keys = is_object ? (const char **)keys->elts : NULL;
    value->items = (tg_test_json_t **)items->elts;
    return value;
}

static tg_test_json_t *parse_value(cursor_t *c, int depth)
{
    tg_test_json_t *value;
    if (depth > MAX_DEPTH)
        return NULL;
    skip_space(c);
    if (c->pos >= c->end)
        return NULL;
    switch (*c->pos) {
    case '{':
        c->pos++;
        return parse_container(c, depth, TG_TEST_JSON_OBJECT);
    case '[':
        c->pos++;
        return parse_container(c, depth, TG_TEST_JSON_ARRAY);
    case '"':
        value = new_value(c, TG_TEST_JSON_STRING);
        return take_string(c, &value->text, &value->len) ? value : NULL;
    case 't':
        return parse_literal(c, "true", TG_TEST_JSON_TRUE);
    case 'f':
        return parse_literal(c, "false", TG_TEST_JSON_FALSE);
    case 'n':
        return parse_literal(c, "null", TG_TEST_JSON_NULL);
    default:
        return parse_number(c);
    }
}

const tg_test_json_t *tg_test_json_parse(const char *text, size_t len, apr_pool_t *pool)
{
    cursor_t c = {(const unsigned char *)text, (const unsigned char *)text + len, pool};
    const tg_test_json_t *value = parse_value(&c, 0);
    if (!value)
        return NULL;
    skip_space(&c);
    return c.pos == c.end ? value : NULL;
}

int tg_test_is_json(const char *text, size_t len)
{
    apr_pool_t *pool;
    int valid;
    if (apr_pool_create(&pool, NULL) != APR_SUCCESS)
        abort();
    valid = tg_test_json_parse(text, len, pool) != NULL;
    apr_pool_destroy(pool);
    return valid;
}

/* The member called name[0..len); NULL when absent or there twice. */
static const tg_test_json_t *member(const tg_test_json_t *object, const char *name, size_t len)
{
    const tg_test_json_t *found = NULL;
    int i;
    for (i = 0; i < object->count; i++) {
        if (strlen(object->keys[i]) != len || memcmp(object->keys[i], name, len) != 0)
            continue;
        if (found)
            return NULL;
        found = object->items[i];
    }
    return found;
}

/* The element at the index written in step[0..len); NULL when that is not
 * a plain decimal index within the array. */
static const tg_test_json_t *element(const tg_test_json_t *array, const char *step, size_t len)
{
    int index = 0;
    size_t i;
    if (len == 0 || len > 9)
        return NULL;
    for (i = 0; i < len; i++) {
        if (step[i] < '0' || step[i] > '9')
            return NULL;
        index = index * 10 + (step[i] - '0');
    }
    return index < array->count ? array->items[index] : NULL;
}

const tg_test_json_t *tg_test_json_get(const tg_test_json_t *value, const char *path)
{
    while (value && *path) {
        const char *slash = strchr(path, '/');
        size_t len = slash ? (size_t)(slash - path) : strlen(path);
        if (value->type == TG_TEST_JSON_OBJECT)
            value = member(value, path, len);
        else if (value->type == TG_TEST_JSON_ARRAY)
            value = element(value, path, len);
        else
            value = NULL;
        path += len + (slash ? 1 : 0);
    }
    return value;
}

const char *tg_test_json_string_at(const tg_test_json_t *value, const char *path)
{
    value = tg_test_json_get(value, path);
    return value && value->type == TG_TEST_JSON_STRING ? value->text : NULL;
}

int tg_test_json_count_at(const tg_test_json_t *value, const char *path)
{
    value = tg_test_json_get(value, path);
    return value && (value->type == TG_TEST_JSON_ARRAY || value->type == TG_TEST_JSON_OBJECT)
               ? value->count
               : -1;
}

int tg_test_json_has_duplicate_keys(const tg_test_json_t *value)
{
    int i, j;
    for (i = 0; i < value->count; i++) {
        if (tg_test_json_has_duplicate_keys(value->items[i]))
            return 1;
        if (value->type != TG_TEST_JSON_OBJECT)
            continue;
        for (j = 0; j < i; j++)
            if (strcmp(value->keys[i], value->keys[j]) == 0)
                return 1;
    }
    return 0;
}
