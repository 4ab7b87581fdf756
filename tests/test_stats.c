/*
 * Tests of the statistics accumulators: figures checked against hand-worked arithmetic and an
 * independent long-double two-pass computation, chunking independence, non-finite handling.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/stats.h"
#include "tstore.h"

static void dist_of(const float *x, uint64_t n, ts_distribution_stats *d)
{
	ts_stats_acc acc;
	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_dist(&acc, x, TS_F32, n), 0);
	ts_stats_acc_finish_dist(d, &acc);
}

static int close_rel(double a, double b, double tol)
{
	return fabs(a - b) <= tol * fmax(fabs(a), fabs(b)) || a == b;
}

/* xorshift64*: deterministic data without libc rand() */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1p-53;
}

static double rng_normal(uint64_t *s)
{
	double u = rng_unit(s), v = rng_unit(s);
	return sqrt(-2.0 * log(u + 0x1p-60)) * cos(6.283185307179586 * v);
}

Test(stats, textbook_mean_and_population_std)
{
	/* mean 5, squared deviations 9+1+1+1+0+0+4+16 = 32, population variance 4 */
	const float x[] = {2, 4, 4, 4, 5, 5, 7, 9};
	ts_distribution_stats d;
	dist_of(x, 8, &d);
	cr_expect_eq(d.mean, 5.0);
	cr_expect_eq(d.std, 2.0);
	cr_expect_eq(d.min_val, 2.0);
	cr_expect_eq(d.max_val, 9.0);
	cr_expect_eq(d.sparsity, 0.0);
	cr_expect_eq(d.count, 8);
	cr_expect_eq(d.nonfinite, 0);
	cr_expect(close_rel(d.dynamic_range, log2(9.0 / 2.0), 1e-15));
}

Test(stats, sparsity_and_dynamic_range_count_zeros_and_smallest_nonzero)
{
	const float x[] = {0, -0.0f, 0, 0.125f, -8, 0, 1, 0};
	ts_distribution_stats d;
	dist_of(x, 8, &d);
	cr_expect_eq(d.sparsity, 5.0 / 8.0);
	cr_expect_eq(d.dynamic_range, 6.0); /* log2(8 / 0.125) */
	cr_expect_eq(d.min_val, -8.0);
	cr_expect_eq(d.max_val, 1.0);
	cr_expect_eq(d.mean, (0.125 - 8 + 1) / 8.0);
}

Test(stats, all_zero_and_empty_tensors_give_zero_figures)
{
	float z[100] = {0};
	ts_distribution_stats d;
	dist_of(z, 100, &d);
	cr_expect_eq(d.sparsity, 1.0);
	cr_expect_eq(d.dynamic_range, 0.0);
	cr_expect_eq(d.std, 0.0);
	cr_expect_eq(d.count, 100);
	dist_of(z, 0, &d);
	cr_expect_eq(d.count, 0);
	cr_expect_eq(d.mean, 0.0);
	cr_expect_eq(d.sparsity, 0.0);
}

Test(stats, non_finite_values_are_counted_and_excluded)
{
	const float x[] = {NAN, 1, INFINITY, 3, -INFINITY, -NAN};
	ts_distribution_stats d;
	dist_of(x, 6, &d);
	cr_expect_eq(d.count, 6);
	cr_expect_eq(d.nonfinite, 4);
	cr_expect_eq(d.mean, 2.0);
	cr_expect_eq(d.std, 1.0);
	cr_expect_eq(d.min_val, 1.0);
	cr_expect_eq(d.max_val, 3.0);
}

Test(stats, bf16_and_f16_sources_are_widened_exactly)
{
	/* 1.5, -2, 0.25, 0 */
	const uint16_t bf[] = {0x3FC0, 0xC000, 0x3E80, 0x0000};
	const uint16_t hf[] = {0x3E00, 0xC000, 0x3400, 0x0001 /* 2^-24, subnormal */};
	ts_stats_acc acc;
	ts_distribution_stats d;

	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_dist(&acc, bf, TS_BF16, 4), 0);
	ts_stats_acc_finish_dist(&d, &acc);
	cr_expect_eq(d.mean, (1.5 - 2 + 0.25) / 4);
	cr_expect_eq(d.min_val, -2.0);
	cr_expect_eq(d.sparsity, 0.25);

	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_dist(&acc, hf, TS_F16, 4), 0);
	ts_stats_acc_finish_dist(&d, &acc);
	cr_expect_eq(d.max_val, 1.5);
	cr_expect_eq(d.sparsity, 0.0);
	cr_expect_eq(d.dynamic_range, log2(2.0 / 0x1p-24)); /* 25 bits */

	const uint16_t special[] = {0x7C00 /* F16 +Inf */, 0x7E00 /* NaN */, 0x3C00 /* 1 */};
	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_dist(&acc, special, TS_F16, 3), 0);
	ts_stats_acc_finish_dist(&d, &acc);
	cr_expect_eq(d.nonfinite, 2);
	cr_expect_eq(d.mean, 1.0);
}

Test(stats, variance_is_stable_far_from_zero)
{
	/* 1e6 + k/16 is exact in float; the variance of k = 0..1023 is (1024^2 - 1) / 12.
	 * A naive sum-of-squares in double loses about six digits here. */
	enum { N = 64 * 1024 };
	static float x[N];
	for (int i = 0; i < N; i++)
		x[i] = 1e6f + (float)(i % 1024) / 16.0f;
	ts_distribution_stats d;
	dist_of(x, N, &d);
	double var = (1024.0 * 1024.0 - 1.0) / 12.0 / 256.0;
	cr_expect(close_rel(d.mean, 1e6 + 1023.0 / 32.0, 1e-15), "mean %.17g", d.mean);
	cr_expect(close_rel(d.std, sqrt(var), 1e-10), "std %.17g want %.17g", d.std, sqrt(var));
}

Test(stats, chunking_changes_results_only_by_rounding)
{
	enum { N = 100003 };
	float *x = malloc(N * sizeof(float));
	float *y = malloc(N * sizeof(float));
	uint64_t seed = 0x5eed1234ULL;
	cr_assert(x && y);
	for (int i = 0; i < N; i++) {
		x[i] = (float)(3.0 + 2.0 * rng_normal(&seed));
		y[i] = x[i] + (float)(0.01 * rng_normal(&seed));
	}

	/* independent reference: long double two-pass */
	long double sum = 0, m2 = 0, e2 = 0, x2 = 0, ea = 0;
	for (int i = 0; i < N; i++)
		sum += x[i];
	long double mean = sum / N;
	for (int i = 0; i < N; i++) {
		long double d = x[i] - mean, e = (long double)x[i] - y[i];
		m2 += d * d;
		e2 += e * e;
		x2 += (long double)x[i] * x[i];
		ea += fabsl(e);
	}

	for (int trial = 0; trial < 4; trial++) {
		ts_stats_acc acc;
		ts_stats_acc_init(&acc);
		uint64_t i = 0;
		while (i < N) {
			uint64_t c = trial == 0 ? N : 1 + rng_next(&seed) % (trial == 1 ? 7 : 5000);
			if (c > N - i)
				c = N - i;
			cr_assert_eq(ts_stats_acc_add_dist(&acc, x + i, TS_F32, c), 0);
			cr_assert_eq(ts_stats_acc_add_error(&acc, x + i, TS_F32, y + i, c), 0);
			i += c;
		}
		ts_distribution_stats d;
		ts_compression_stats c;
		ts_stats_acc_finish_dist(&d, &acc);
		ts_stats_acc_finish_error(&c, &acc, N * 4, N, 7);
		cr_expect(close_rel(d.mean, (double)mean, 1e-13), "trial %d mean %.17g", trial,
			  d.mean);
		cr_expect(close_rel(d.std, sqrt((double)(m2 / N)), 1e-13), "trial %d std", trial);
		cr_expect(close_rel(c.rel_rms_pct, 100.0 * sqrt((double)(e2 / x2)), 1e-13),
			  "trial %d rel rms %.17g", trial, c.rel_rms_pct);
		cr_expect(close_rel(c.sqnr_db, 10.0 * log10((double)(x2 / e2)), 1e-13));
		cr_expect(close_rel(c.mean_error, (double)(ea / N), 1e-13));
		cr_expect_eq(d.count, N);
		cr_expect_eq(c.blocks_processed, 7);
		cr_expect_eq(c.compression_ratio, 4.0);
	}
	free(x);
	free(y);
}

Test(stats, error_figures_for_a_known_error)
{
	/* ||x|| = 5, ||x - x^|| = 0.5: relative RMS 10 %, SQNR 10 log10(25 / 0.25) = 20 dB */
	const float x[] = {3, 4, 0, 0};
	const float y[] = {3, 4, 0.5f, 0};
	ts_stats_acc acc;
	ts_compression_stats c;
	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_error(&acc, x, TS_F32, y, 4), 0);
	ts_stats_acc_finish_error(&c, &acc, 1000, 250, 3);
	cr_expect_eq(c.original_bytes, 1000);
	cr_expect_eq(c.compressed_bytes, 250);
	cr_expect_eq(c.compression_ratio, 4.0);
	cr_expect_eq(c.blocks_processed, 3);
	cr_expect_eq(c.mean_error, 0.125);
	cr_expect_eq(c.max_error, 0.5);
	cr_expect(close_rel(c.rel_rms_pct, 10.0, 1e-15), "%.17g", c.rel_rms_pct);
	cr_expect(close_rel(c.sqnr_db, 20.0, 1e-15), "%.17g", c.sqnr_db);
}

Test(stats, exact_reconstruction_has_infinite_sqnr)
{
	const float x[] = {1, -2, 0, 1e-30f, 3e38f};
	ts_stats_acc acc;
	ts_compression_stats c;
	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_error(&acc, x, TS_F32, x, 5), 0);
	ts_stats_acc_finish_error(&c, &acc, 20, 20, 0);
	cr_expect_eq(c.rel_rms_pct, 0.0);
	cr_expect(isinf(c.sqnr_db) && c.sqnr_db > 0);
	cr_expect_eq(c.max_error, 0.0);
	cr_expect_eq(c.mean_error, 0.0);
}

Test(stats, error_on_all_zero_source_is_infinite_relative_error)
{
	const float x[] = {0, 0};
	const float y[] = {0, 1};
	ts_stats_acc acc;
	ts_compression_stats c;
	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_error(&acc, x, TS_F32, y, 2), 0);
	ts_stats_acc_finish_error(&c, &acc, 8, 2, 1);
	cr_expect(isinf(c.rel_rms_pct));
	cr_expect(isinf(c.sqnr_db) && c.sqnr_db < 0);
}

Test(stats, non_finite_originals_are_exact_only_when_reproduced)
{
	const float x[] = {NAN, INFINITY, 2};
	const float same[] = {NAN, INFINITY, 2};
	const float lost[] = {0, INFINITY, 2};
	ts_stats_acc acc;
	ts_compression_stats c;

	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_error(&acc, x, TS_F32, same, 3), 0);
	ts_stats_acc_finish_error(&c, &acc, 12, 12, 0);
	cr_expect_eq(c.rel_rms_pct, 0.0);
	cr_expect_eq(c.max_error, 0.0);

	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_error(&acc, x, TS_F32, lost, 3), 0);
	ts_stats_acc_finish_error(&c, &acc, 12, 3, 0);
	cr_expect(isinf(c.rel_rms_pct));
	cr_expect(isinf(c.max_error));
	cr_expect(isinf(c.mean_error));
}

Test(stats, one_accumulator_takes_both_kinds_in_one_pass)
{
	const float x[] = {2, 4, 4, 4, 5, 5, 7, 9};
	float y[8];
	for (int i = 0; i < 8; i++)
		y[i] = x[i] + (i % 2 ? 0.25f : -0.25f);
	ts_stats_acc acc;
	ts_distribution_stats d;
	ts_compression_stats c;
	ts_stats_acc_init(&acc);
	for (int i = 0; i < 8; i += 3) {
		int n = i + 3 > 8 ? 8 - i : 3;
		cr_assert_eq(ts_stats_acc_add_dist(&acc, x + i, TS_F32, n), 0);
		cr_assert_eq(ts_stats_acc_add_error(&acc, x + i, TS_F32, y + i, n), 0);
	}
	ts_stats_acc_finish_dist(&d, &acc);
	ts_stats_acc_finish_error(&c, &acc, 32, 8, 1);
	cr_expect_eq(d.mean, 5.0);
	cr_expect_eq(d.std, 2.0);
	cr_expect_eq(c.max_error, 0.25);
	cr_expect_eq(c.mean_error, 0.25);
	/* sum x^2 = 232, sum e^2 = 8/16 = 0.5 */
	cr_expect(close_rel(c.rel_rms_pct, 100.0 * sqrt(0.5 / 232.0), 1e-15));
}

Test(stats, bad_arguments_are_rejected)
{
	ts_stats_acc acc;
	float x = 1;
	ts_stats_acc_init(&acc);
	cr_expect_eq(ts_stats_acc_add_dist(&acc, &x, TS_I32, 1), TS_EDTYPE);
	cr_expect(strstr(ts_error_last(), "I32") != NULL);
	cr_expect_eq(ts_stats_acc_add_dist(&acc, NULL, TS_F32, 1), TS_EINVAL);
	cr_expect_eq(ts_stats_acc_add_error(&acc, &x, TS_F32, NULL, 1), TS_EINVAL);
	cr_expect_eq(ts_stats_acc_add_dist(&acc, NULL, TS_F32, 0), 0);
}

Test(stats, unaligned_sources_are_read_correctly)
{
	/* 1.5, -2, 0.25 as BF16 and as F32, one byte off alignment */
	const uint16_t bf[] = {0x3FC0, 0xC000, 0x3E80};
	const float f[] = {1.5f, -2.0f, 0.25f};
	unsigned char raw[1 + sizeof(f)];
	ts_stats_acc acc;
	ts_distribution_stats d;

	memcpy(raw + 1, bf, sizeof(bf));
	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_dist(&acc, raw + 1, TS_BF16, 3), 0);
	ts_stats_acc_finish_dist(&d, &acc);
	cr_expect(close_rel(d.mean, -0.25 / 3, 1e-15));
	cr_expect_eq(d.min_val, -2.0);

	memcpy(raw + 1, f, sizeof(f));
	ts_stats_acc_init(&acc);
	cr_assert_eq(ts_stats_acc_add_dist(&acc, raw + 1, TS_F32, 3), 0);
	ts_stats_acc_finish_dist(&d, &acc);
	cr_expect_eq(d.max_val, 1.5);
	cr_expect(close_rel(d.mean, -0.25 / 3, 1e-15));
}

Test(stats, merged_accumulators_equal_one_pass)
{
	enum { N = 30011 };
	float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
	uint64_t seed = 77;
	cr_assert(x && y);
	for (int i = 0; i < N; i++) {
		x[i] = (float)(100.0 + rng_normal(&seed));
		y[i] = x[i] + (float)(0.1 * rng_normal(&seed));
	}
	x[17] = NAN; /* counted apart, in whichever part it falls */
	y[17] = NAN;
	x[20000] = 0;
	ts_stats_acc whole, parts[3], merged;
	ts_stats_acc_init(&whole);
	ts_stats_acc_add_dist(&whole, x, TS_F32, N);
	ts_stats_acc_add_error(&whole, x, TS_F32, y, N);
	const int cut[] = {0, 5000, 5001, N};
	for (int p = 0; p < 3; p++) {
		ts_stats_acc_init(&parts[p]);
		ts_stats_acc_add_dist(&parts[p], x + cut[p], TS_F32, cut[p + 1] - cut[p]);
		ts_stats_acc_add_error(&parts[p], x + cut[p], TS_F32, y + cut[p],
				       cut[p + 1] - cut[p]);
	}
	ts_stats_acc_init(&merged);
	ts_stats_acc_merge(&merged, &parts[2]);
	ts_stats_acc_merge(&merged, &parts[0]);
	ts_stats_acc_merge(&merged, &parts[1]);

	ts_distribution_stats dw, dm;
	ts_compression_stats cw, cm;
	ts_stats_acc_finish_dist(&dw, &whole);
	ts_stats_acc_finish_dist(&dm, &merged);
	ts_stats_acc_finish_error(&cw, &whole, 1, 1, 1);
	ts_stats_acc_finish_error(&cm, &merged, 1, 1, 1);
	cr_expect(close_rel(dw.mean, dm.mean, 1e-14));
	cr_expect(close_rel(dw.std, dm.std, 1e-12), "%.17g %.17g", dw.std, dm.std);
	cr_expect_eq(dw.min_val, dm.min_val);
	cr_expect_eq(dw.max_val, dm.max_val);
	cr_expect_eq(dw.sparsity, dm.sparsity);
	cr_expect_eq(dw.dynamic_range, dm.dynamic_range);
	cr_expect_eq(dm.count, N);
	cr_expect_eq(dm.nonfinite, 1);
	cr_expect(close_rel(cw.rel_rms_pct, cm.rel_rms_pct, 1e-13));
	cr_expect(close_rel(cw.mean_error, cm.mean_error, 1e-13));
	cr_expect_eq(cw.max_error, cm.max_error);
	free(x);
	free(y);
}

/* The writer's fused pass (codec/stats.h) leaves the accumulator bit for bit as
 * ts_stats_acc_add_error() then ts_stats_acc_add_dist() leave it, for every source dtype, with
 * non-finite values and in rows of odd lengths; without an approximation it gives the error
 * figures of an exact reconstruction. */
Test(stats, fused_pass_equals_error_then_distribution)
{
	enum { N = 5000 };
	uint64_t seed = 0x5eed;
	static float x[N], a[N];
	static uint16_t h[N];
	const ts_dtype dts[] = {TS_F32, TS_BF16, TS_F16};
	for (int i = 0; i < N; i++) {
		x[i] = (float)(rng_normal(&seed) * 0.02);
		if (i % 1777 == 5)
			x[i] = i % 2 ? NAN : -INFINITY;
		if (i % 300 == 7)
			x[i] = 0;
	}
	for (size_t d = 0; d < 3; d++) {
		const void *src = x;
		if (dts[d] != TS_F32) {
			/* representable values of the narrower type, widened again for a[] */
			for (int i = 0; i < N; i++) {
				uint32_t u;
				memcpy(&u, &x[i], 4);
				h[i] = dts[d] == TS_BF16 ? (uint16_t)(u >> 16) : 0;
			}
			if (dts[d] == TS_F16)
				for (int i = 0; i < N; i++)
					h[i] = isnan(x[i]) ? 0x7e00 : isinf(x[i]) ? 0xfc00
					       : (uint16_t)(0x2000 + (i % 4000)) ^ (i % 2 ? 0x8000 : 0);
			src = h;
		}
		ts_stats_acc ref, got, exact_ref, exact_got;
		ts_stats_acc_init(&ref);
		ts_stats_acc_init(&got);
		ts_stats_acc_init(&exact_ref);
		ts_stats_acc_init(&exact_got);
		size_t es = dts[d] == TS_F32 ? 4 : 2;
		for (int i = 0; i < N; i++)
			a[i] = x[i] + 1e-3f;
		for (uint64_t off = 0, row = 1; off < N; off += row, row = row * 3 + 1) {
			uint64_t n = N - off < row ? N - off : row;
			const uint8_t *p = (const uint8_t *)src + off * es;
			cr_assert_eq(ts_stats_acc_add_error(&ref, p, dts[d], a + off, n), 0);
			cr_assert_eq(ts_stats_acc_add_dist(&ref, p, dts[d], n), 0);
			cr_assert_eq(ts__stats_acc_add_both(&got, p, dts[d], a + off, n), 0);
			cr_assert_eq(ts__stats_acc_add_both(&exact_got, p, dts[d], NULL, n), 0);
		}
		cr_assert(memcmp(&ref, &got, sizeof(ref)) == 0, "dtype %d: accumulators differ",
			  (int)dts[d]);
		/* exact: the reference measures the source's own widened values as approximation */
		static float wide[N];
		for (uint64_t off = 0, row = 1; off < N; off += row, row = row * 3 + 1) {
			uint64_t n = N - off < row ? N - off : row;
			const uint8_t *p = (const uint8_t *)src + off * es;
			if (dts[d] == TS_F32)
				memcpy(wide + off, p, n * 4);
			else
				for (uint64_t i = 0; i < n; i++) {
					uint16_t v;
					memcpy(&v, p + 2 * i, 2);
					wide[off + i] = dts[d] == TS_BF16 ? ts_bf16_to_f32(v)
									  : ts_f16_to_f32(v);
				}
			cr_assert_eq(ts_stats_acc_add_error(&exact_ref, p, dts[d], wide + off, n), 0);
			cr_assert_eq(ts_stats_acc_add_dist(&exact_ref, p, dts[d], n), 0);
		}
		ts_compression_stats ce, cg;
		ts_distribution_stats de, dg;
		ts_stats_acc_finish_error(&ce, &exact_ref, 8, 4, 2);
		ts_stats_acc_finish_error(&cg, &exact_got, 8, 4, 2);
		ts_stats_acc_finish_dist(&de, &exact_ref);
		ts_stats_acc_finish_dist(&dg, &exact_got);
		cr_assert(memcmp(&ce, &cg, sizeof(ce)) == 0, "dtype %d: exact error figures differ",
			  (int)dts[d]);
		cr_assert(memcmp(&de, &dg, sizeof(de)) == 0, "dtype %d: distributions differ",
			  (int)dts[d]);
		cr_assert_eq(cg.rel_rms_pct, 0);
		cr_assert_eq(cg.max_error, 0);
	}
}
