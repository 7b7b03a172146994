#include "unit.h"

#include "tg_sampling.h"

#include <string.h>

static tg_context_t caller_with(tg_sampling_t sampling, int debug)
{
    tg_context_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.sampling = sampling;
    ctx.debug = debug;
    return ctx;
}

static const apr_time_t now = APR_USEC_PER_SEC * 1700000000LL;

static void test_trusted_caller_decision_wins(void)
{
    tg_sampler_t never = {0.0, NULL, 0}, always = {1.0, NULL, 0};
    tg_context_t yes = caller_with(TG_SAMPLING_ACCEPT, 0), no = caller_with(TG_SAMPLING_DENY, 0);
    CU_ASSERT_TRUE(tg_sampling_decide(&never, &yes, 1, 0, now));
    CU_ASSERT_FALSE(tg_sampling_decide(&always, &no, 1, 0, now));
}

static void test_debug_always_samples_when_trusted(void)
{
    tg_sampler_t never = {0.0, NULL, 0};
    tg_context_t debug = caller_with(TG_SAMPLING_DENY, 1);
    CU_ASSERT_TRUE(tg_sampling_decide(&never, &debug, 1, UINT64_MAX, now));
    /* From a caller not trusted, neither debug nor its decision counts. */
    CU_ASSERT_FALSE(tg_sampling_decide(&never, &debug, 0, UINT64_MAX, now));
}

static void test_untrusted_or_deferred_callers_get_the_rate(void)
{
    tg_sampler_t half = {0.5, NULL, 0};
    tg_context_t defer = caller_with(TG_SAMPLING_DEFER, 0), no = caller_with(TG_SAMPLING_DENY, 0);
    CU_ASSERT_TRUE(tg_sampling_decide(&half, &defer, 1, 0, now));
    CU_ASSERT_TRUE(tg_sampling_decide(&half, &no, 0, UINT64_MAX / 2 - 4096, now));
    CU_ASSERT_FALSE(tg_sampling_decide(&half, &defer, 1, UINT64_MAX / 2 + 4096, now));
    CU_ASSERT_FALSE(tg_sampling_decide(&half, NULL, 0, UINT64_MAX, now));
}

static void test_rate_bounds(void)
{
    tg_sampler_t never = {0.0, NULL, 0}, always = {1.0, NULL, 0};
    CU_ASSERT_FALSE(tg_sampling_decide(&never, NULL, 0, 0, now));
    CU_ASSERT_TRUE(tg_sampling_decide(&always, NULL, 0, UINT64_MAX, now));
}

/* The share draws that TomographDeepTraceRate makes: none at 0, all at 1,
 * and in between the draws below the rate's fraction of 2^64. */
static void test_draw_falls_in_its_share(void)
{
    CU_ASSERT_FALSE(tg_sampling_draw(0.0, 0));
    CU_ASSERT_TRUE(tg_sampling_draw(1.0, UINT64_MAX));
    CU_ASSERT_TRUE(tg_sampling_draw(0.01, UINT64_MAX / 100 - 4096));
    CU_ASSERT_FALSE(tg_sampling_draw(0.01, UINT64_MAX / 100 + 4096));
    CU_ASSERT_FALSE(tg_sampling_draw(0.5, UINT64_MAX));
}

static void test_limit_caps_new_traces_per_second(void)
{
    tg_rate_limit_t limit = {0};
    tg_sampler_t capped = {1.0, &limit, 3};
    tg_context_t yes = caller_with(TG_SAMPLING_ACCEPT, 0);
    int i, admitted = 0;
    for (i = 0; i < 10; i++)
        admitted += tg_sampling_decide(&capped, NULL, 0, 0, now);
    CU_ASSERT_EQUAL(admitted, 3);
    /* A trusted sampled caller is not a new trace: the cap does not apply. */
    CU_ASSERT_TRUE(tg_sampling_decide(&capped, &yes, 1, 0, now));
    /* The next second opens a new window. */
    CU_ASSERT_TRUE(tg_sampling_decide(&capped, NULL, 0, 0, now + APR_USEC_PER_SEC));
    CU_ASSERT_TRUE(tg_rate_limit_admit(&limit, 0, now));
}

void tg_test_add_sampling(void)
{
    CU_pSuite suite = TG_SUITE("sampling");
    TG_TEST(suite, test_trusted_caller_decision_wins);
    TG_TEST(suite, test_debug_always_samples_when_trusted);
    TG_TEST(suite, test_untrusted_or_deferred_callers_get_the_rate);
    TG_TEST(suite, test_rate_bounds);
    TG_TEST(suite, test_draw_falls_in_its_share);
    TG_TEST(suite, test_limit_caps_new_traces_per_second);
}
