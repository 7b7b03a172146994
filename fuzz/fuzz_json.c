/* The JSON writer and reader.
 *
 * The input, written as a string by tg_json_append_string inside an
 * object, must read back with tg_json_object_get_string: the very same
 * bytes when they are valid UTF-8 without NUL, and valid UTF-8 in any case
 * (a NUL, which a C string cannot hold, makes the member unreadable).
 * Then the input is read as JSON itself: a string member found must be
 * valid UTF-8, and written and read again it must not change. */
#include "fuzz.h"

#include <string.h>

#include "tg_buf.h"
#include "tg_json.h"

/* RFC 3629, one code point at a time; independent of tg_json.c. */
static int is_valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned long cp;
        size_t more, k;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((s[i] & 0xE0) == 0xC0) {
            cp = s[i] & 0x1F;
            more = 1;
        }
        else if ((s[i] & 0xF0) == 0xE0) {
            cp = s[i] & 0x0F;
            more = 2;
        }
        else if ((s[i] & 0xF8) == 0xF0) {
            cp = s[i] & 0x07;
            more = 3;
        }
        else {
            return 0;
        }
        if (len - i <= more)
            return 0;
        for (k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000)
            || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += more + 1;
    }
    return 1;
}

/* Writes bytes as member "k" of an object and reads that member back. */
static int write_and_read(const char *bytes, size_t len, apr_pool_t *pool, const char **value)
{
    tg_buf_t json;
    int found;
    size_t i;
    tg_buf_init(&json);
    tg_buf_puts(&json, "{\"k\":");
    tg_json_append_string(&json, bytes, len);
    tg_buf_putc(&json, '}');
    FUZZ_CHECK(!json.failed);
    for (i = 0; i < json.len; i++)
        FUZZ_CHECK((unsigned char)json.data[i] >= 0x20);
    found = tg_json_object_get_string(json.data, json.len, "k", pool, value);
    tg_buf_free(&json);
    return found;
}

static void check_written(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    const char *value;
    int found = write_and_read((const char *)data, size, pool, &value);
    if (memchr(data, '\0', size)) {
        FUZZ_CHECK(!found);
        return;
    }
    FUZZ_CHECK(found);
    FUZZ_CHECK(is_valid_utf8((const unsigned char *)value, strlen(value)));
    if (is_valid_utf8(data, size))
        FUZZ_CHECK(strlen(value) == size && memcmp(value, data, size) == 0);
}

static void check_read(const uint8_t *data, size_t size, const char *key, apr_pool_t *pool)
{
    const char *value, *again;
    if (!tg_json_object_get_string((const char *)data, size, key, pool, &value))
        return;
    FUZZ_CHECK(value != NULL);
    FUZZ_CHECK(is_valid_utf8((const unsigned char *)value, strlen(value)));
    FUZZ_CHECK(write_and_read(value, strlen(value), pool, &again));
    FUZZ_CHECK(strcmp(again, value) == 0);
}

void fuzz_one(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    check_written(data, size, pool);
    check_read(data, size, "k", pool);
    check_read(data, size, "base_id", pool);
    check_read(data, size, "", pool);
}
