/*
 * Statistics' private interface (codec/stats.c): what the streaming writer uses beyond the public
 * ts_stats_acc_* functions.
 */
#ifndef TS_CODEC_STATS_H
#define TS_CODEC_STATS_H

#include <stdint.h>

#include "tstore.h"

/**
 * ts_stats_acc_add_error(acc, src, dtype, approx, count) followed by ts_stats_acc_add_dist(acc,
 * src, dtype, count), with the same bits in @p acc, widening each sub-block of @p src once.
 * @p approx NULL: @p src is known to be reproduced exactly (a raw page of its own dtype, a
 * lossless page): every error term is then 0, and only the elements are counted, so the error
 * figures that ts_stats_acc_finish_error() gives are those of an exact reconstruction (its sum of
 * x^2, which they do not use, stays out).
 * @return 0; TS_EDTYPE; TS_EINVAL for a NULL accumulator or source.
 * Threads: one accumulator per thread.
 */
int ts__stats_acc_add_both(ts_stats_acc *acc, const void *src, ts_dtype dtype,
			   const float *approx, uint64_t count);

#endif
