#include "tg_headers.h"

#include <string.h>

/* Whether name starts with prefix (lowercase letters, digits and '-'),
 * whatever the case of its letters.  Folding sets bit 5 of every byte, so a
 * byte that is none of those may match too: that costs a lookup, never a
 * missed header. */
static inline int starts_folded(const char *name, const char *prefix)
{
    for (; *prefix; name++, prefix++)
        if ((*name | 0x20) != *prefix)
            return 0;
    return 1;
}

/* Whether name is word (lowercase), whatever the case of its letters. */
static inline int is_folded(const char *name, const char *word, size_t word_len)
{
    return starts_folded(name, word) && name[word_len] == '\0';
}

#define IS_FOLDED(name, word) is_folded(name, word, sizeof(word) - 1)

/* The bits one header tells.  Its first letter settles most names, the
 * third the X- ones (OpenStack's clients send X-Auth-Token and
 * X-OpenStack-Request-ID with every request); a name that passes is then
 * looked at as a whole. */
static unsigned survey_one(const char *name, const char *value)
{
    switch (name[0] | 0x20) {
    case 't':
        if (starts_folded(name + 1, "race"))
            return TG_HEADERS_MAY_CARRY_CONTEXT;
        return IS_FOLDED(name + 1, "ransfer-encoding") ? TG_HEADERS_ANNOUNCE_BODY : 0;
    case 'c':
        return IS_FOLDED(name + 1, "ontent-length") && value && strcmp(value, "0") != 0
                   ? TG_HEADERS_ANNOUNCE_BODY
                   : 0;
    case 'b':
        return name[1] == '3' ? TG_HEADERS_MAY_CARRY_CONTEXT : 0;
    case 'x':
        if (name[1] != '-')
            return 0;
        switch (name[2] | 0x20) {
        case 'b':
            return name[3] == '3' && name[4] == '-' ? TG_HEADERS_MAY_CARRY_CONTEXT : 0;
        case 't':
            return starts_folded(name + 3, "race-") ? TG_HEADERS_MAY_CARRY_CONTEXT : 0;
        }
    }
    return 0;
}

unsigned tg_headers_survey(const apr_table_t *table)
{
    const apr_array_header_t *headers = apr_table_elts(table);
    const apr_table_entry_t *entry = (const apr_table_entry_t *)headers->elts;
    unsigned found = 0;
    int i;
    for (i = 0; i < headers->nelts; i++)
        if (entry[i].key)
            found |= survey_one(entry[i].key, entry[i].val);
    return found;
}
