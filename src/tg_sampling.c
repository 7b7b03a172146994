#include "tg_sampling.h"

int tg_rate_limit_admit(tg_rate_limit_t *limit, uint64_t per_second, apr_time_t now)
{
    int64_t second = apr_time_sec(now);
    int64_t window = atomic_load(&limit->second);
    if (per_second == 0)
        return 1;
    /* The one that moves the window resets its count; a call racing it may
     * count in either second, which a cap of this kind can afford. */
    if (window != second && atomic_compare_exchange_strong(&limit->second, &window, second))
        atomic_store(&limit->admitted, 0);
    return atomic_fetch_add(&limit->admitted, 1) < per_second;
}

int tg_sampling_draw(double rate, uint64_t random)
{
    /* 53 random bits make a double in [0, 1) exactly. */
    return rate >= 1.0 || (double)(random >> 11) * 0x1.0p-53 < rate;
}

int tg_sampling_decide(const tg_sampler_t *sampler, const tg_context_t *caller, int trusted,
                       uint64_t random, apr_time_t now)
{
    if (trusted && caller && caller->debug)
        return 1;
    if (trusted && caller && caller->sampling != TG_SAMPLING_DEFER)
        return caller->sampling == TG_SAMPLING_ACCEPT;
    if (!tg_sampling_draw(sampler->rate, random))
        return 0;
    return !sampler->limit || tg_rate_limit_admit(sampler->limit, sampler->limit_per_second, now);
}
