/* Whether a trace is recorded: decided once, where it starts, and honoured
 * downstream through the sampled flag of the context handed on. */
#ifndef TG_SAMPLING_H
#define TG_SAMPLING_H

#include <apr_time.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tg_context.h"

/* A cap on new sampled traces per second, shared by every process that
 * maps it (it lives in the module's shared memory). */
typedef struct {
    _Atomic int64_t second;
    _Atomic uint64_t admitted;
} tg_rate_limit_t;

/* Admits at most `per_second` calls in each second of `now`; 0 admits all. */
int tg_rate_limit_admit(tg_rate_limit_t *limit, uint64_t per_second, apr_time_t now);

typedef struct {
    double rate;              /* share of new traces recorded, 0 to 1 */
    tg_rate_limit_t *limit;   /* may be NULL */
    uint64_t limit_per_second;
} tg_sampler_t;

/* Whether a draw of `random` (uniform over 64 bits) falls in a share of
 * `rate` (0 to 1): the same coin for the sampling rate and any other share
 * of requests (TomographDeepTraceRate). */
int tg_sampling_draw(double rate, uint64_t random);

/* A trusted caller's decision wins (debug always samples); otherwise the
 * rate, drawn with `random` (uniform over 64 bits), then the limit. */
int tg_sampling_decide(const tg_sampler_t *sampler, const tg_context_t *caller, int trusted,
                       uint64_t random, apr_time_t now);

#endif
