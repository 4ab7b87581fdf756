/*
 * Statistics' private interface (codec/stats.c): what the streaming writer uses beyond the public
 * ts_stats_acc_* functions.
 */
#ifndef TS_CODEC_STATS_H
#define TS_CODEC_STATS_H

#include <math.h>
#include <stdint.h>

#include "codec/kernels.h"
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

/*
 * The lanes of the statistics' sub-block sums (codec/kernels.h, TS_STATS_LANES): one element's
 * steps in lane j, and the fold of the lanes into the outputs, as the scalar reference forms them.
 * The reference (codec/stats.c) runs every element through the steps; a vector kernel
 * (codec/stats_avx2.c) stores its accumulators into the lanes and runs its tail through them,
 * so that both fold the same lanes the same way.
 */
#define L_ TS_STATS_LANES

typedef struct ts__stats_lanes {
	double a[L_], e[L_], m[L_]; /* errors: |x - a|, (x - a)^2, max |x - a| */
	double q[L_], c[L_];        /* deviations from the shift k: (x - k)^2, x - k */
	float lo[L_], hi[L_], mz[L_];
	uint32_t zeros[L_];
} ts__stats_lanes;

static inline void ts__stats_lanes_init(ts__stats_lanes *l)
{
	for (int j = 0; j < L_; j++) {
		l->a[j] = l->e[j] = l->m[j] = 0;
		l->q[j] = l->c[j] = 0;
		l->lo[j] = INFINITY;
		l->hi[j] = -INFINITY;
		l->mz[j] = INFINITY;
		l->zeros[j] = 0;
	}
}

static inline void ts__dist_step(ts__stats_lanes *l, int j, float v, double k)
{
	float a = fabsf(v), nz = a == 0 ? INFINITY : a;
	double d = (double)v - k;
	l->q[j] += d * d;
	l->c[j] += d;
	l->lo[j] = v < l->lo[j] ? v : l->lo[j];
	l->hi[j] = v > l->hi[j] ? v : l->hi[j];
	l->mz[j] = nz < l->mz[j] ? nz : l->mz[j];
	l->zeros[j] += a == 0;
}

static inline void ts__error_step(ts__stats_lanes *l, int j, float x, float a)
{
	double e = fabs((double)x - (double)a);
	l->a[j] += e;
	l->e[j] += e * e;
	l->m[j] = e > l->m[j] ? e : l->m[j];
}

/* The lanes into @p s (codec/kernels.h: sums added in lane order to the values given, extremes
 * folded, zeros counted); the error lanes only if @p errors. A lane's max |x| is the larger of
 * |min| and |max| (0 for a lane that saw nothing). */
static inline void ts__stats_fold(const ts__stats_lanes *l, int errors, ts__stats_sums *s)
{
	for (int j = 0; j < L_; j++) {
		float am = l->lo[j] <= l->hi[j] ? fmaxf(fabsf(l->lo[j]), fabsf(l->hi[j])) : 0;
		if (errors) {
			s->sa += l->a[j];
			s->se += l->e[j];
			s->me = l->m[j] > s->me ? l->m[j] : s->me;
		}
		s->q += l->q[j];
		s->c += l->c[j];
		s->mn = l->lo[j] < s->mn ? l->lo[j] : s->mn;
		s->mx = l->hi[j] > s->mx ? l->hi[j] : s->mx;
		s->amax = am > s->amax ? am : s->amax;
		s->minnz = l->mz[j] < s->minnz ? l->mz[j] : s->minnz;
		s->zeros += l->zeros[j];
	}
}

#undef L_

#endif
