/* tg_w3c_parse_tracestate on any header value (the whole input, several
 * tracestate headers being joined with ", " by httpd).
 *
 * A list it takes is what we send on, so it must be one we take again
 * unchanged; its members are members of the input, in their order, with
 * keys once each; it keeps to the bounds, and only a list over them loses
 * members. */
#include "fuzz.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <string.h>

#include "tg_w3c.h"

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

void fuzz_one(const uint8_t *data, size_t size, apr_pool_t *pool)
{
    static const char untouched[] = "untouched";
    const char *value = fuzz_string(data, size, pool), *out = untouched, *again = NULL;
    apr_array_header_t *sent, *received;
    int i, j, from = 0;
    apr_status_t rv = tg_w3c_parse_tracestate(value, pool, &out);

    FUZZ_CHECK(rv == APR_SUCCESS || rv == APR_EINVAL);
    if (rv != APR_SUCCESS) {
        FUZZ_CHECK(out == untouched);
        return;
    }
    received = members_of(value, pool);
    if (!out) {
        FUZZ_CHECK(received->nelts == 0);
        return;
    }
    FUZZ_CHECK(strlen(out) > 0 && strlen(out) <= TG_TRACESTATE_MAX_LEN);
    FUZZ_CHECK(tg_w3c_parse_tracestate(out, pool, &again) == APR_SUCCESS);
    FUZZ_CHECK(again && strcmp(again, out) == 0);

    sent = members_of(out, pool);
    FUZZ_CHECK(sent->nelts <= TG_TRACESTATE_MAX_MEMBERS && received->nelts <= TG_TRACESTATE_MAX_MEMBERS);
    FUZZ_CHECK(strcmp(apr_array_pstrcat(pool, sent, ','), out) == 0); /* nothing trimmed away */
    for (i = 0; i < sent->nelts; i++) {
        for (j = 0; j < i; j++)
            FUZZ_CHECK(!same_key(member_at(sent, i), member_at(sent, j)));
        while (from < received->nelts && strcmp(member_at(received, from), member_at(sent, i)) != 0)
            from++;
        FUZZ_CHECK(from < received->nelts); /* a member received, in its order */
        from++;
    }
    if (strlen(apr_array_pstrcat(pool, received, ',')) <= TG_TRACESTATE_MAX_LEN)
        FUZZ_CHECK(sent->nelts == received->nelts);
}
