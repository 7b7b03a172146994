#include "unit.h"

#include <string.h>

#include "tg_hmac.h"

static void assert_hmac_hex(const void *key, size_t key_len, const void *data, size_t data_len,
                            const char *expected)
{
    char hex[TG_HMAC_SHA1_HEX_LEN + 1];
    memset(hex, 'x', sizeof(hex));
    tg_hmac_sha1_hex(key, key_len, data, data_len, hex);
    CU_ASSERT_STRING_EQUAL(hex, expected);
}

/* RFC 2202 section 3, test cases 1 to 7. */
static void test_rfc2202_short_keys(void)
{
    unsigned char key[25];
    unsigned char data[50];
    size_t i;

    memset(key, 0x0b, 20);
    assert_hmac_hex(key, 20, "Hi There", 8, "b617318655057264e28bc0b6fb378c8ef146be00");

    assert_hmac_hex("Jefe", 4, "what do ya want for nothing?", 28,
                    "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");

    memset(key, 0xaa, 20);
    memset(data, 0xdd, 50);
    assert_hmac_hex(key, 20, data, 50, "125d7342b9ac11cd91a39af48aa17b4f63f175d3");

    for (i = 0; i < 25; i++)
        key[i] = (unsigned char)(i + 1);
    memset(data, 0xcd, 50);
    assert_hmac_hex(key, 25, data, 50, "4c9007f4026250c6bc8414f9bf50c86c2d7235da");

    memset(key, 0x0c, 20);
    assert_hmac_hex(key, 20, "Test With Truncation", 20, "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04");
}

static void test_rfc2202_keys_longer_than_a_block_are_hashed(void)
{
    static const char first[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    static const char second[] =
        "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data";
    unsigned char key[80];
    memset(key, 0xaa, sizeof(key));
    assert_hmac_hex(key, 80, first, sizeof(first) - 1, "aa4ae5e15272d00e95705637ce8a3b55ed402112");
    assert_hmac_hex(key, 80, second, sizeof(second) - 1, "e8e99d0f45237d786d6bbaa7965c7808bbff1a91");
}

/* A 64-byte key fills the block as it is; one more byte and it is hashed
 * (values from Python's hmac module). */
static void test_block_size_boundary(void)
{
    char key[65];
    memset(key, 'k', sizeof(key));
    assert_hmac_hex(key, 64, "data", 4, "fd6ac0544a139c8a65af3b45cd347d1f8d6fc5c2");
    assert_hmac_hex(key, 65, "data", 4, "ce69e0604a581a20b9758fafea17888f2fbf15ec");
}

static void test_empty_key_and_data(void)
{
    assert_hmac_hex("", 0, "", 0, "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
}

static void test_binary_digest_matches_hex(void)
{
    static const unsigned char expected[TG_HMAC_SHA1_LEN] = {
        0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74,
        0x16, 0xd5, 0xf1, 0x84, 0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79,
    };
    unsigned char digest[TG_HMAC_SHA1_LEN];
    tg_hmac_sha1("Jefe", 4, "what do ya want for nothing?", 28, digest);
    CU_ASSERT_EQUAL(memcmp(digest, expected, sizeof(expected)), 0);
}

static void test_constant_time_equal(void)
{
    CU_ASSERT_TRUE(tg_constant_time_equal("abcdef", 6, "abcdef", 6));
    CU_ASSERT_TRUE(tg_constant_time_equal("", 0, "", 0));
    CU_ASSERT_FALSE(tg_constant_time_equal("abcdef", 6, "abcdeg", 6));
    CU_ASSERT_FALSE(tg_constant_time_equal("abcdef", 6, "bbcdef", 6));
    CU_ASSERT_FALSE(tg_constant_time_equal("abcdef", 6, "abcde", 5));
    CU_ASSERT_FALSE(tg_constant_time_equal("abc", 3, "abcdef", 6));
    CU_ASSERT_FALSE(tg_constant_time_equal("a\0b", 3, "a\0c", 3));
    CU_ASSERT_FALSE(tg_constant_time_equal("\x80", 1, "\x00", 1));
}

void tg_test_add_hmac(void)
{
    CU_pSuite suite = TG_SUITE("hmac");
    TG_TEST(suite, test_rfc2202_short_keys);
    TG_TEST(suite, test_rfc2202_keys_longer_than_a_block_are_hashed);
    TG_TEST(suite, test_block_size_boundary);
    TG_TEST(suite, test_empty_key_and_data);
    TG_TEST(suite, test_binary_digest_matches_hex);
    TG_TEST(suite, test_constant_time_equal);
}
