/*
 * The statistics' sub-block sums in AVX2 (codec/kernels.h, ts__kernels.stats): the scalar
 * reference (codec/stats.c) forms every sum in 8 lanes of double, element i in lane i % 8; here
 * lanes 0-3 and 4-7 are the two halves of a pair of __m256d accumulators, so each lane sees the
 * same additions in the same order, and the tail and the fold of the lanes are the reference's
 * own steps (codec/stats.h). Extremes use MINPS/MAXPS, whose rule (a < b ? a : b, b on ties and NaN) is the
 * reference's selection.
 *
 * Invariants
 *   1. Every result equals the scalar reference's bit for bit (tests/test_kernels.c); the file is
 *      compiled with -ffp-contract=off (AM_CFLAGS), so no multiply and add is fused.
 */
#include "config.h"

#include <math.h>

#include "codec/kernels_avx2.h"
#include "codec/stats.h"

#define LANES TS_STATS_LANES

TS_AVX2_INLINE __m256d lo_pd(__m256 v)
{
	return _mm256_cvtps_pd(_mm256_castps256_ps128(v));
}

TS_AVX2_INLINE __m256d hi_pd(__m256 v)
{
	return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}

/*
 * One pass over the block; @p errors is a constant at each call below, so the compiler makes
 * two loops, with and without the error sums.
 */
TS_AVX2_INLINE void stats_pass(const float *x, const float *a, size_t n, double k,
			       ts__stats_sums *s, int errors)
{
	const __m256 fsign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(INFINITY);
	const __m256 zero = _mm256_setzero_ps();
	const __m256d sign = _mm256_set1_pd(-0.0), vk = _mm256_set1_pd(k);
	__m256d a0 = _mm256_setzero_pd(), a1 = a0, e0 = a0, e1 = a0, m0 = a0, m1 = a0, q0 = a0,
		q1 = a0, c0 = a0, c1 = a0;
	__m256 vlo = inf, vhi = _mm256_set1_ps(-INFINITY), vmz = inf;
	__m256i vz = _mm256_setzero_si256();
	ts__stats_lanes l;
	size_t i = 0;

	for (; i + LANES <= n; i += LANES) {
		__m256 v = _mm256_loadu_ps(x + i), av = _mm256_andnot_ps(fsign, v);
		__m256 isz = _mm256_cmp_ps(av, zero, _CMP_EQ_OQ);
		__m256d v0 = lo_pd(v), v1 = hi_pd(v);
		__m256d d0 = _mm256_sub_pd(v0, vk), d1 = _mm256_sub_pd(v1, vk);
		q0 = _mm256_add_pd(q0, _mm256_mul_pd(d0, d0));
		q1 = _mm256_add_pd(q1, _mm256_mul_pd(d1, d1));
		c0 = _mm256_add_pd(c0, d0);
		c1 = _mm256_add_pd(c1, d1);
		vlo = _mm256_min_ps(v, vlo);
		vhi = _mm256_max_ps(v, vhi);
		vmz = _mm256_min_ps(_mm256_blendv_ps(av, inf, isz), vmz);
		vz = _mm256_sub_epi32(vz, _mm256_castps_si256(isz));
		if (errors) {
			__m256 w = _mm256_loadu_ps(a + i);
			__m256d f0 = _mm256_andnot_pd(sign, _mm256_sub_pd(v0, lo_pd(w)));
			__m256d f1 = _mm256_andnot_pd(sign, _mm256_sub_pd(v1, hi_pd(w)));
			a0 = _mm256_add_pd(a0, f0);
			a1 = _mm256_add_pd(a1, f1);
			e0 = _mm256_add_pd(e0, _mm256_mul_pd(f0, f0));
			e1 = _mm256_add_pd(e1, _mm256_mul_pd(f1, f1));
			m0 = _mm256_max_pd(f0, m0);
			m1 = _mm256_max_pd(f1, m1);
		}
	}
	_mm256_storeu_pd(l.q, q0);
	_mm256_storeu_pd(l.q + 4, q1);
	_mm256_storeu_pd(l.c, c0);
	_mm256_storeu_pd(l.c + 4, c1);
	_mm256_storeu_ps(l.lo, vlo);
	_mm256_storeu_ps(l.hi, vhi);
	_mm256_storeu_ps(l.mz, vmz);
	_mm256_storeu_si256((__m256i *)(void *)l.zeros, vz);
	_mm256_storeu_pd(l.a, a0);
	_mm256_storeu_pd(l.a + 4, a1);
	_mm256_storeu_pd(l.e, e0);
	_mm256_storeu_pd(l.e + 4, e1);
	_mm256_storeu_pd(l.m, m0);
	_mm256_storeu_pd(l.m + 4, m1);
	for (int j = 0; i < n; i++, j++) {
		ts__dist_step(&l, j, x[i], k);
		if (errors)
			ts__error_step(&l, j, x[i], a[i]);
	}
	ts__stats_fold(&l, errors, s);
}

void ts__avx2_stats(const float *x, const float *a, size_t n, double k, ts__stats_sums *s)
{
	if (a)
		stats_pass(x, a, n, k, s, 1);
	else
		stats_pass(x, NULL, n, k, s, 0);
}
