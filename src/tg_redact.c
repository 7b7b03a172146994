#include "tg_redact.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <string.h>

#define MIN_SECRET_LEN 4

static int ends_value(char c)
{
    return c == '\0' || c == '&' || c == ';' || c == '"' || c == '\'' || apr_isspace(c);
}

/* '=' too: a line that quotes a whole query under a name of its own
 * ("QUERY_STRING=token=...", as a careless app logs it) starts it there. */
static int starts_param(const char *text, const char *at)
{
    char before;
    if (at == text)
        return 1;
    before = at[-1];
    return before == '?' || before == '&' || before == ';' || before == '"' || before == '\''
           || before == '=' || apr_isspace(before);
}

/* Length of the secret param name at p ("name=" matched), or 0. */
static size_t secret_param_at(const char *text, const char *p, const apr_array_header_t *names)
{
    int i;
    if (!names || !starts_param(text, p))
        return 0;
    for (i = 0; i < names->nelts; i++) {
        const char *name = APR_ARRAY_IDX(names, i, const char *);
        size_t len = strlen(name);
        if (len && strncasecmp(p, name, len) == 0 && p[len] == '=')
            return len + 1;
    }
    return 0;
}

static size_t secret_at(const char *p, const apr_array_header_t *secrets)
{
    int i;
    if (!secrets)
        return 0;
    for (i = 0; i < secrets->nelts; i++) {
        const char *secret = APR_ARRAY_IDX(secrets, i, const char *);
        size_t len = strlen(secret);
        if (len >= MIN_SECRET_LEN && strncmp(p, secret, len) == 0)
            return len;
    }
    return 0;
}

static void add_piece(apr_array_header_t *pieces, const char *start, size_t len)
{
    struct iovec *piece = apr_array_push(pieces);
    piece->iov_base = (void *)start;
    piece->iov_len = len;
}

const char *tg_redact(apr_pool_t *pool, const char *text, const apr_array_header_t *param_names,
                      const apr_array_header_t *secrets)
{
    apr_array_header_t *pieces = NULL;
    const char *p = text, *copied = text;

    while (*p) {
        size_t name_len = secret_param_at(text, p, param_names);
        size_t secret_len = name_len ? 0 : secret_at(p, secrets);
        const char *value_end;
        if (!name_len && !secret_len) {
            p++;
            continue;
        }
        if (name_len) {
            p += name_len;
            if (*p == '"' || *p == '\'') {
                const char *close = strchr(p + 1, *p);
                p++;
                value_end = close ? close : p + strlen(p);
            }
            else {
                for (value_end = p; !ends_value(*value_end); value_end++)
                    ;
            }
            if (value_end == p)
                continue;
        }
        else {
            value_end = p + secret_len;
        }
        if (!pieces)
            pieces = apr_array_make(pool, 8, sizeof(struct iovec));
        add_piece(pieces, copied, (size_t)(p - copied));
        add_piece(pieces, TG_REDACTED, sizeof(TG_REDACTED) - 1);
        copied = p = value_end;
    }
    if (!pieces)
        return text;
    add_piece(pieces, copied, strlen(copied));
    return apr_pstrcatv(pool, (const struct iovec *)pieces->elts, (apr_size_t)pieces->nelts, NULL);
}

static void add_secret(apr_array_header_t *secrets, apr_pool_t *pool, const char *start,
                       size_t len)
{
    while (len && apr_isspace(*start)) {
        start++;
        len--;
    }
    while (len && apr_isspace(start[len - 1]))
        len--;
    if (len >= MIN_SECRET_LEN)
        APR_ARRAY_PUSH(secrets, const char *) = apr_pstrmemdup(pool, start, len);
}

void tg_redact_add_header_secret(apr_array_header_t *secrets, apr_pool_t *pool,
                                 const char *value)
{
    const char *p, *space;
    if (!value)
        return;
    add_secret(secrets, pool, value, strlen(value));
    space = strchr(value, ' ');
    if (space)
        add_secret(secrets, pool, space + 1, strlen(space + 1));
    for (p = value; *p;) {
        const char *end = strchr(p, ';'), *eq;
        size_t len = end ? (size_t)(end - p) : strlen(p);
        eq = memchr(p, '=', len);
        if (eq)
            add_secret(secrets, pool, eq + 1, len - (size_t)(eq + 1 - p));
        p += len + (end ? 1 : 0);
    }
}
