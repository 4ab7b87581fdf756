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
 * step in lane j, and the fold of the lanes into the outputs, as the scalar reference forms them.
 * The reference (codec/stats.c) runs every element through the steps; a vector kernel
 * (codec/stats_avx2.c) stores its accumulators into the lanes and runs its tail through them,
 * so that both fold the same lanes the same way.
 */
#define L_ TS_STATS_LANES

typedef struct ts__moment_lanes {
	double sum[L_];
	float lo[L_], hi[L_], am[L_], mz[L_];
	uint32_t zeros[L_];
} ts__moment_lanes;

static inline void ts__moment_lanes_init(ts__moment_lanes *l)
{
	for (int j = 0; j < L_; j++) {
		l->sum[j] = 0;
		l->lo[j] = INFINITY;
		l->hi[j] = -INFINITY;
		l->am[j] = 0;
		l->mz[j] = INFINITY;
		l->zeros[j] = 0;
	}
}

static inline void ts__moment_step(ts__moment_lanes *l, int j, float v)
{
	float a = fabsf(v), nz = a == 0 ? INFINITY : a;
	l->sum[j] += v;
	l->lo[j] = v < l->lo[j] ? v : l->lo[j];
	l->hi[j] = v > l->hi[j] ? v : l->hi[j];
	l->am[j] = a > l->am[j] ? a : l->am[j];
	l->mz[j] = nz < l->mz[j] ? nz : l->mz[j];
	l->zeros[j] += a == 0;
}

static inline void ts__moment_fold(const ts__moment_lanes *l, double *sum, double *mn,
				   double *mx, double *amax, double *minnz, uint64_t *zeros)
{
	*sum = 0;
	for (int j = 0; j < L_; j++) {
		*sum += l->sum[j];
		*mn = l->lo[j] < *mn ? l->lo[j] : *mn;
		*mx = l->hi[j] > *mx ? l->hi[j] : *mx;
		*amax = l->am[j] > *amax ? l->am[j] : *amax;
		*minnz = l->mz[j] < *minnz ? l->mz[j] : *minnz;
		*zeros += l->zeros[j];
	}
}

typedef struct ts__deviation_lanes {
	double q[L_], c[L_];
} ts__deviation_lanes;

static inline void ts__deviation_step(ts__deviation_lanes *l, int j, float x, double m)
{
	double d = (double)x - m;
	l->q[j] += d * d;
	l->c[j] += d;
}

static inline void ts__deviation_fold(const ts__deviation_lanes *l, double *m2, double *c)
{
	*m2 = 0;
	*c = 0;
	for (int j = 0; j < L_; j++) {
		*m2 += l->q[j];
		*c += l->c[j];
	}
}

typedef struct ts__error_lanes {
	double a[L_], e[L_], x[L_], m[L_];
} ts__error_lanes;

static inline void ts__error_step(ts__error_lanes *l, int j, float x, float a)
{
	double v = x, e = fabs(v - (double)a);
	l->a[j] += e;
	l->e[j] += e * e;
	l->x[j] += v * v;
	l->m[j] = e > l->m[j] ? e : l->m[j];
}

static inline void ts__error_fold(const ts__error_lanes *l, double *sa, double *se, double *sx,
				  double *me)
{
	for (int j = 0; j < L_; j++) {
		*sa += l->a[j];
		*se += l->e[j];
		*sx += l->x[j];
		*me = l->m[j] > *me ? l->m[j] : *me;
	}
}

#undef L_

#endif
