/* A strict JSON reader for the tests (RFC 8259): it tells whether what an
 * encoder wrote parses, hostile input included, and reads it back into a
 * tree so a test can check each member. */
#ifndef TG_TEST_JSON_CHECK_H
#define TG_TEST_JSON_CHECK_H

#include <apr_pools.h>
#include <stddef.h>

typedef enum {
    TG_TEST_JSON_NULL,
    TG_TEST_JSON_FALSE,
    TG_TEST_JSON_TRUE,
    TG_TEST_JSON_NUMBER,
    TG_TEST_JSON_STRING,
    TG_TEST_JSON_ARRAY,
    TG_TEST_JSON_OBJECT
} tg_test_json_type_t;

typedef struct tg_test_json_t tg_test_json_t;
struct tg_test_json_t {
    tg_test_json_type_t type;
    const char *text;        /* a string unescaped, a number as written; NUL-terminated */
    size_t len;
    int count;               /* elements or members */
    const char **keys;       /* an object's member names, unescaped */
    tg_test_json_t **items;  /* an array's elements, an object's member values */
};

/* 1 when text[0..len) is exactly one JSON value (white space around it aside). */
int tg_test_is_json(const char *text, size_t len);

/* The tree of text[0..len), in pool; NULL when it is not exactly one JSON value. */
const tg_test_json_t *tg_test_json_parse(const char *text, size_t len, apr_pool_t *pool);

/* The value at `path` under `value`: member names and array indexes
 * separated by '/', e.g. "resourceSpans/0/resource".  NULL when absent, and
 * when an object on the way has the member twice. */
const tg_test_json_t *tg_test_json_get(const tg_test_json_t *value, const char *path);

/* The string at path, NULL when absent or not a string. */
const char *tg_test_json_string_at(const tg_test_json_t *value, const char *path);

/* Elements or members of the container at path, -1 when absent or not one. */
int tg_test_json_count_at(const tg_test_json_t *value, const char *path);

/* 1 when some object in the tree has a member name twice. */
int tg_test_json_has_duplicate_keys(const tg_test_json_t *value);

#endif
