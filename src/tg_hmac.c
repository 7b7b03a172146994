#include "tg_hmac.h"

#include <apr_sha1.h>
#include <limits.h>
#include <string.h>

#define SHA1_BLOCK_LEN 64

/* apr_sha1_update_binary takes an unsigned int length. */
static void sha1_update(apr_sha1_ctx_t *sha, const void *data, size_t len)
{
    const unsigned char *bytes = data;
    while (len > 0) {
        unsigned int chunk = len > UINT_MAX ? UINT_MAX : (unsigned int)len;
        apr_sha1_update_binary(sha, bytes, chunk);
        bytes += chunk;
        len -= chunk;
    }
}

static void sha1_with_pad(const unsigned char block_key[SHA1_BLOCK_LEN], unsigned char pad,
                          const void *data, size_t data_len,
                          unsigned char digest[TG_HMAC_SHA1_LEN])
{
    unsigned char padded_key[SHA1_BLOCK_LEN];
    apr_sha1_ctx_t sha;
    size_t i;
    for (i = 0; i < SHA1_BLOCK_LEN; i++)
        padded_key[i] = block_key[i] ^ pad;
    apr_sha1_init(&sha);
    sha1_update(&sha, padded_key, sizeof(padded_key));
    sha1_update(&sha, data, data_len);
    apr_sha1_final(digest, &sha);
}

void tg_hmac_sha1(const void *key, size_t key_len, const void *data, size_t data_len,
                  unsigned char digest[TG_HMAC_SHA1_LEN])
{
    unsigned char block_key[SHA1_BLOCK_LEN] = {0};
    unsigned char inner[TG_HMAC_SHA1_LEN];
    if (key_len > SHA1_BLOCK_LEN) {
        apr_sha1_ctx_t sha;
        apr_sha1_init(&sha);
        sha1_update(&sha, key, key_len);
        apr_sha1_final(block_key, &sha);
    }
    else if (key_len > 0) {
        memcpy(block_key, key, key_len);
    }
    sha1_with_pad(block_key, 0x36, data, data_len, inner);
    sha1_with_pad(block_key, 0x5c, inner, sizeof(inner), digest);
}

void tg_hmac_sha1_hex(const void *key, size_t key_len, const void *data, size_t data_len,
                      char hex[TG_HMAC_SHA1_HEX_LEN + 1])
{
    static const char hex_digits[] = "0123456789abcdef";
    unsigned char digest[TG_HMAC_SHA1_LEN];
    size_t i;
    tg_hmac_sha1(key, key_len, data, data_len, digest);
    for (i = 0; i < TG_HMAC_SHA1_LEN; i++) {
        hex[2 * i] = hex_digits[digest[i] >> 4];
        hex[2 * i + 1] = hex_digits[digest[i] & 0xf];
    }
    hex[TG_HMAC_SHA1_HEX_LEN] = '\0';
}

int tg_constant_time_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char difference = 0;
    size_t i;
    if (a_len != b_len)
        return 0;
    for (i = 0; i < a_len; i++)
        difference |= x[i] ^ y[i];
    return difference == 0;
}
