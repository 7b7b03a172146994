/* HMAC-SHA1 (RFC 2104), as osprofiler signs X-Trace-Info. */
#ifndef TG_HMAC_H
#define TG_HMAC_H

#include <stddef.h>

#define TG_HMAC_SHA1_LEN 20
#define TG_HMAC_SHA1_HEX_LEN 40

void tg_hmac_sha1(const void *key, size_t key_len, const void *data, size_t data_len,
                  unsigned char digest[TG_HMAC_SHA1_LEN]);

/* Lowercase hex of the digest, NUL-terminated. */
void tg_hmac_sha1_hex(const void *key, size_t key_len, const void *data, size_t data_len,
                      char hex[TG_HMAC_SHA1_HEX_LEN + 1]);

/* Compares two byte strings in time that depends only on their lengths. */
int tg_constant_time_equal(const void *a, size_t a_len, const void *b, size_t b_len);

#endif
