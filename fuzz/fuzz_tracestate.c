/* tg_w3c_parse_tracestate on any header value (the whole input, several
 * tracestate headers being joined with ", " by httpd), against the W3C
 * specification's text, written here apart from the parser:
 *
 * - a list is taken exactly when it has at most 32 members (empty ones not
 *   counted) and each is `key=value`, the key 1 to 256 of a-z 0-9 _ - * / @
 *   starting with a letter or a digit, the value 1 to 256 of 0x20-0x7e but
 *   ',' and '=', not ending in a space;
 * - what is sent on is the list with each key once, the first member of a
 *   key kept: whole when that fits 512 characters; otherwise cut by whole
 *   members, those over 128 characters first (the last of them first), then
 *   from the end, no more than needed;
 * - and it parses again unchanged. */
#include "fuzz.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <string.h>

#include "tg_w3c.h"

#define KEY_MAX 256
#define VALUE_MAX 256
#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define DIGITS "0123456789"

/* The members of a list: split at commas, blanks around each trimmed,
 * empty ones skipped. */
static apr_array_header_t *members_of(const char *list, apr_pool_t *pool)
{
    apr_array_header_t *members = apr_array_make(pool, 8, sizeof(const char *));
    char *copy = apr_pstrdup(pool, list), *state = NULL, *member;
    for (member = apr_strtok(copy, ",", &state); member; member = apr_strtok(NULL, ",", &state)) {
        size_t len;
        member += strspn(member, " \t");
        len = strlen(member);
        while (len > 0 && (member[len - 1] == ' ' || member[len - 1] == '\t'))
            member[--len] = '\0';
        if (len > 0)
            APR_ARRAY_PUSH(members, const char *) = member;
    }
    return members;
}

static const char *member_at(const apr_array_header_t *members, int i)
{
    return APR_ARRAY_IDX(members, i, const char *);
}

static size_t key_length(const char *member)
{
    return strcspn(member, "=");
}

static int same_key(const char *a, const char *b)
{
    return key_length(a) == key_length(b) && strncmp(a, b, key_length(a)) == 0;
}

static int spec_valid_member(const char *member)
{
    size_t key = key_length(member), value_len, i;
    const char *value = member + key + 1;
    if (member[key] != '=' || key == 0 || key > KEY_MAX || !strchr(LOWER DIGITS, member[0])
        || strspn(member, LOWER DIGITS "_-*/@") != key)
        return 0;
    value_len = strlen(value);
    if (value_len == 0 || value_len > VALUE_MAX || value[value_len - 1] == ' ')
        return 0;
    for (i = 0; i < value_len; i++)
        if (value[i] < 0x20 || value[i] > 0x7e || value[i] == ',' || value[i] == '=')
            return 0;
    return 1;
}

static int spec_valid_list(const apr_array_header_t *members)
{
    int i;
    if (members->nelts > TG_TRACESTATE_MAX_MEMBERS)
        return 0;
    for (i = 0; i < members->nelts; i++)
        if (!spec_valid_member(member_at(members, i)))
            return 0;
    return 1;
}

/* The members, the first of each key only. */
static apr_array_header_t *first_of_each_key(const apr_array_header_t *members, apr_pool_t *pool)
{
    apr_array_header_t *firsts = apr_array_make(pool, members->nelts + 1, sizeof(const char *));
    int i, j;
    for (i = 0; i < members->nelts; i++) {
        for (j = 0; j < firsts->nelts && !same_key(member_at(firsts, j), member_at(members, i)); j++)
            ;
        if (j == firsts->nelts)
            APR_ARRAY_PUSH(firsts, const char *) = member_at(members, i);
    }
    return firsts;
}

static int is_long(const char *member)
{
    return strlen(member) > TG_TRACESTATE_LONG_MEMBER;
}

static int contains(const apr_array_header_t *members, const char *member)
{
    int i;
    for (i = 0; i < members->nelts; i++)
        if (member_at(members, i) == member)
            return 1;
    return 0;
}

static size_t joined_len(const apr_array_header_t *members, const char *extra)
{
    size_t len = extra ? strlen(extra) + 1 : 0;
    int i;
    for (i = 0; i < members->nelts; i++)
        len += strlen(member_at(members, i)) + (i > 0);
    return len;
}

/* sent, a cut of whole: among the long members and among the others, those
 * kept come first (the rest removed from the end); a long one is kept only
 * when every other is; and the member removed last would not have fit. */
static void check_cut(const apr_array_header_t *whole, const apr_array_header_t *kept)
{
    int lost_long = 0, lost_short = 0, i;
    const char *first_lost_long = NULL, *first_lost_short = NULL;
    for (i = 0; i < whole->nelts; i++) {
        const char *member = member_at(whole, i);
        int is_kept = contains(kept, member);
        if (is_long(member)) {
            FUZZ_CHECK(!is_kept || !lost_long);
            if (!is_kept && !lost_long++)
                first_lost_long = member;
        }
        else {
            FUZZ_CHECK(!is_kept || !lost_short);
            if (!is_kept && !lost_short++)
                first_lost_short = member;
        }
    }
    FUZZ_CHECK(lost_long + lost_short > 0);
    if (lost_short) {
        for (i = 0; i < kept->nelts; i++)
            FUZZ_CHECK(!is_long(member_at(kept, i)));
    }
    FUZZ_CHECK(joined_len(kept, lost_short ? first_lost_short : first_lost_long) > TG_TRACESTATE_MAX_LEN);
}

void fuzz_one(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    static const char untouched[] = "untouched";
    const char *value = fuzz_string(data, size, pool), *out = untouched, *again = NULL, *at;
    apr_array_header_t *received, *firsts, *sent;
    int i;
    apr_status_t rv = tg_w3c_parse_tracestate(value, pool, &out);

    received = members_of(value, pool);
    FUZZ_CHECK(rv == (spec_valid_list(received) ? APR_SUCCESS : APR_EINVAL));
    if (rv != APR_SUCCESS) {
        FUZZ_CHECK(out == untouched);
        return;
    }
    firsts = first_of_each_key(received, pool);
    if (joined_len(firsts, NULL) <= TG_TRACESTATE_MAX_LEN) {
        FUZZ_CHECK(firsts->nelts == 0 ? out == NULL
                                      : out && strcmp(out, apr_array_pstrcat(pool, firsts, ',')) == 0);
        if (!out)
            return;
    }
    else if (out) {
        FUZZ_CHECK(strlen(out) <= TG_TRACESTATE_MAX_LEN);
    }
    /* The members sent, as the very pointers of firsts, in their order. */
    sent = apr_array_make(pool, firsts->nelts + 1, sizeof(const char *));
    for (i = 0, at = out; at && i < firsts->nelts; i++) {
        const char *member = member_at(firsts, i);
        size_t len = strlen(member);
        if (strncmp(at, member, len) == 0 && (at[len] == ',' || at[len] == '\0')) {
            APR_ARRAY_PUSH(sent, const char *) = member;
            at = at[len] ? at + len + 1 : NULL;
        }
    }
    FUZZ_CHECK(out ? strcmp(apr_array_pstrcat(pool, sent, ','), out) == 0 : sent->nelts == 0);
    if (joined_len(firsts, NULL) > TG_TRACESTATE_MAX_LEN)
        check_cut(firsts, sent);
    if (out) {
        FUZZ_CHECK(tg_w3c_parse_tracestate(out, pool, &again) == APR_SUCCESS);
        FUZZ_CHECK(again && strcmp(again, out) == 0);
    }
}
