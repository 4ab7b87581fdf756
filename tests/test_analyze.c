/*
 * Tests of the analyzer: the error bound holds on varied data (checked by re-encoding the choice
 * and measuring the error with the test's own long-double arithmetic), the choice is the
 * cheapest that qualifies (against a brute force over the same candidates), non-finite tensors
 * and a zero bound are lossless, and loose bounds pick cheaper codecs.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/gen.h"
#include "tstore.h"

static float amax_of(const float *x, uint64_t n)
{
	float a = 0;
	for (uint64_t i = 0; i < n; i++)
		if (isfinite(x[i]) && fabsf(x[i]) > a)
			a = fabsf(x[i]);
	return a;
}

static float widen(const void *src, ts_dtype dtype, uint64_t i)
{
	if (dtype == TS_F32)
		return ((const float *)src)[i];
	uint16_t h = ((const uint16_t *)src)[i];
	return dtype == TS_BF16 ? ts_bf16_to_f32(h) : ts_f16_to_f32(h);
}

/*
 * The relative RMS error (percent) of storing @p src under @p cfg, computed here: encode with the
 * codec, decode to F32, and sum in long double. Raw in the source dtype must round-trip bit for
 * bit (returns 0), raw narrowings are the RNE conversion.
 */
static double independent_error(const ts_codec_config *cfg, const void *src, ts_dtype dtype,
				uint64_t rows, uint64_t cols)
{
	uint64_t n = rows * cols;
	float *y = malloc(n * sizeof(float) + 1);
	float *xf = malloc(n * sizeof(float) + 1);
	cr_assert(y && xf);
	for (uint64_t i = 0; i < n; i++)
		xf[i] = widen(src, dtype, i);

	if (cfg->codec == TS_CODEC_RAW && cfg->raw_dtype == dtype) {
		size_t bytes = n * ts_dtype_size(dtype);
		size_t es = ts_codec_encoded_size(cfg, rows, cols);
		cr_assert_geq(es, bytes);
		unsigned char *enc = malloc(es + 1), *dec = malloc(bytes + 1);
		cr_assert_eq(ts_codec_encode(cfg, 0, src, dtype, cols, rows, cols, enc, es), 0);
		cr_assert_eq(ts_codec_decode(cfg, 1, enc, es, rows, cols, dtype, dec, cols), 0);
		cr_assert_eq(memcmp(dec, src, bytes), 0, "raw in the source dtype is not lossless");
		free(enc);
		free(dec);
		free(y);
		free(xf);
		return 0;
	}
	if (cfg->codec == TS_CODEC_RAW) {
		cr_assert_eq(dtype, TS_F32, "a narrowing raw choice for a %s source",
			     ts_dtype_name(dtype));
		for (uint64_t i = 0; i < n; i++)
			y[i] = cfg->raw_dtype == TS_BF16 ? ts_bf16_to_f32(ts_f32_to_bf16(xf[i]))
							 : ts_f16_to_f32(ts_f32_to_f16(xf[i]));
	} else {
		float amax = amax_of(xf, n);
		size_t es = ts_codec_encoded_size(cfg, rows, cols);
		cr_assert_gt(es, 0);
		unsigned char *enc = malloc(es);
		cr_assert(enc);
		cr_assert_eq(ts_codec_encode(cfg, amax, src, dtype, cols, rows, cols, enc, es), 0,
			     "%s", ts_error_last());
		cr_assert_eq(ts_codec_decode(cfg, ts_codec_tensor_scale(cfg, amax), enc, es, rows,
					     cols, TS_F32, y, cols),
			     0, "%s", ts_error_last());
		free(enc);
	}
	long double e2 = 0, x2 = 0;
	for (uint64_t i = 0; i < n; i++) {
		long double e = (long double)xf[i] - y[i];
		e2 += e * e;
		x2 += (long double)xf[i] * xf[i];
	}
	free(y);
	free(xf);
	if (e2 == 0)
		return 0;
	return x2 == 0 ? INFINITY : (double)(100.0L * sqrtl(e2 / x2));
}

static void analyze_ok(ts_codec_config *out, ts_compression_stats *st, const void *src,
		       ts_dtype dtype, uint64_t rows, uint64_t cols, double bound)
{
	ts_codec_config in = ts_codec_config_default(TS_CODEC_NVFP4);
	in.max_error_pct = bound;
	int rc = ts_analyze(out, st, &in, src, dtype, rows, cols);
	cr_assert_eq(rc, 0, "ts_analyze: %s", ts_error_last());
	cr_assert_eq(out->max_error_pct, bound);
	cr_assert_eq(ts_codec_config_check(out), 0, "%s", ts_error_last());
}

static void check_bound(const void *src, ts_dtype dtype, uint64_t rows, uint64_t cols,
			double bound, const char *what)
{
	ts_codec_config out;
	ts_compression_stats st;
	analyze_ok(&out, &st, src, dtype, rows, cols, bound);
	double e = independent_error(&out, src, dtype, rows, cols);
	cr_expect_leq(e, bound * (1 + 1e-9), "%s %llux%llu %s bound %g: chose %s/%d (bs %d) with "
					      "error %g",
		      what, (unsigned long long)rows, (unsigned long long)cols, ts_dtype_name(dtype),
		      bound, ts_codec_name(out.codec), (int)out.recipe, out.block_size, e);
	cr_expect(fabs(st.rel_rms_pct - e) <= 1e-9 * fmax(e, 1e-300) || st.rel_rms_pct == e,
		  "%s: reported %g, measured %g", what, st.rel_rms_pct, e);
	cr_expect_eq(st.compressed_bytes, ts_codec_encoded_size(&out, rows, cols));
	cr_expect_eq(st.original_bytes, rows * cols * ts_dtype_size(dtype));
}

Test(analyze, bound_is_honoured_on_varied_data)
{
	static const uint64_t shapes[][2] = {{64, 256}, {33, 17}, {1, 1}, {1, 15}, {3, 5}, {2, 4097}};
	static const double bounds[] = {0.3, 1, 2, 5, 9, 12, 25};
	for (int k = 0; k < GEN_KINDS; k++) {
		for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
			uint64_t rows = shapes[s][0], cols = shapes[s][1];
			float *x = malloc(rows * cols * sizeof(float));
			uint16_t *b = malloc(rows * cols * sizeof(uint16_t));
			cr_assert(x && b);
			gen_fill(x, rows, cols, (gen_kind)k, 100 + s);
			for (uint64_t i = 0; i < rows * cols; i++)
				b[i] = ts_f32_to_bf16(x[i]);
			for (size_t j = 0; j < sizeof(bounds) / sizeof(bounds[0]); j++) {
				check_bound(x, TS_F32, rows, cols, bounds[j], gen_name((gen_kind)k));
				check_bound(b, TS_BF16, rows, cols, bounds[j], gen_name((gen_kind)k));
			}
			free(x);
			free(b);
		}
	}
}

/* The candidates the analyzer documents, enumerated here independently. */
static int all_candidates(ts_codec_config *c, ts_dtype dtype)
{
	int n = 0;
	c[n] = ts_codec_config_default(TS_CODEC_NVFP4);
	c[n++].recipe = TS_RECIPE_BEST;
	c[n] = ts_codec_config_default(TS_CODEC_NVFP4);
	c[n++].recipe = TS_RECIPE_NVIDIA;
	c[n++] = ts_codec_config_default(TS_CODEC_MXFP4);
	for (int sym = 0; sym < 2; sym++) {
		for (int bs = 16; bs <= 4096; bs *= 2) {
			c[n] = ts_codec_config_default(TS_CODEC_INT8);
			c[n].block_size = bs;
			c[n++].symmetric = sym;
		}
	}
	c[n++] = ts_codec_config_default(TS_CODEC_FP8);
	if (dtype == TS_F32) {
		for (int d = 0; d < 2; d++) {
			c[n] = ts_codec_config_default(TS_CODEC_RAW);
			c[n].raw_dtype = d ? TS_F16 : TS_BF16;
			c[n++].bits_per_value = 16;
		}
	}
	return n;
}

Test(analyze, choice_is_the_cheapest_candidate_within_the_bound)
{
	static const gen_kind kinds[] = {GEN_NORMAL, GEN_LAPLACE, GEN_STUDENT3, GEN_ROWSCALED,
					 GEN_OUTLIERS, GEN_SPARSE};
	static const double bounds[] = {0.5, 1.5, 4, 8, 11, 30};
	enum { R = 48, C = 200 };
	static float x[R * C];
	ts_codec_config cand[64];
	int nc = all_candidates(cand, TS_F32);

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		gen_fill(x, R, C, kinds[k], 7 + k);
		double err[64];
		for (int i = 0; i < nc; i++)
			err[i] = independent_error(&cand[i], x, TS_F32, R, C);
		for (size_t j = 0; j < sizeof(bounds) / sizeof(bounds[0]); j++) {
			size_t best = (size_t)R * C * 4;
			for (int i = 0; i < nc; i++) {
				size_t b = ts_codec_encoded_size(&cand[i], R, C);
				if (err[i] <= bounds[j] && b < best)
					best = b;
			}
			ts_codec_config out;
			ts_compression_stats st;
			analyze_ok(&out, &st, x, TS_F32, R, C, bounds[j]);
			cr_expect_eq(ts_codec_encoded_size(&out, R, C), best,
				     "%s bound %g: chose %s (%zu bytes), cheapest qualifying %zu",
				     gen_name(kinds[k]), bounds[j], ts_codec_name(out.codec),
				     ts_codec_encoded_size(&out, R, C), best);
		}
	}
}

Test(analyze, non_finite_tensors_are_stored_losslessly)
{
	enum { R = 16, C = 64 };
	static float x[R * C];
	static uint16_t h[R * C];
	const float bad[] = {NAN, INFINITY, -INFINITY};
	for (int b = 0; b < 3; b++) {
		gen_fill(x, R, C, GEN_NORMAL, 3);
		x[5 * C + 7] = bad[b];
		ts_codec_config out;
		ts_compression_stats st;
		analyze_ok(&out, &st, x, TS_F32, R, C, 50);
		cr_expect_eq(out.codec, TS_CODEC_RAW);
		cr_expect_eq(out.raw_dtype, TS_F32);
		cr_expect_eq(st.rel_rms_pct, 0.0);
		cr_expect_eq(independent_error(&out, x, TS_F32, R, C), 0.0);

		for (int i = 0; i < R * C; i++)
			h[i] = ts_f32_to_f16(x[i]);
		analyze_ok(&out, &st, h, TS_F16, R, C, 50);
		cr_expect_eq(out.codec, TS_CODEC_RAW);
		cr_expect_eq(out.raw_dtype, TS_F16);
	}
}

Test(analyze, zero_bound_is_lossless)
{
	enum { R = 32, C = 96 };
	static float x[R * C];
	ts_codec_config out;
	ts_compression_stats st;

	gen_fill(x, R, C, GEN_LAPLACE, 11);
	analyze_ok(&out, &st, x, TS_F32, R, C, 0);
	cr_expect_eq(out.codec, TS_CODEC_RAW);
	cr_expect_eq(out.raw_dtype, TS_F32);
	cr_expect(isinf(st.sqnr_db));

	/* an F32 tensor holding BF16 values (an upcast checkpoint) is stored as BF16, exactly */
	for (int i = 0; i < R * C; i++)
		x[i] = ts_bf16_to_f32(ts_f32_to_bf16(x[i]));
	x[3] = -0.0f;
	analyze_ok(&out, &st, x, TS_F32, R, C, 0);
	cr_expect_eq(out.codec, TS_CODEC_RAW);
	cr_expect_eq(out.raw_dtype, TS_BF16);
	for (int i = 0; i < R * C; i++) {
		float y = ts_bf16_to_f32(ts_f32_to_bf16(x[i]));
		cr_assert_eq(memcmp(&y, &x[i], 4), 0, "element %d is not kept bit for bit", i);
	}

	/* BF16 source: nothing narrower is lossless */
	static uint16_t b[R * C];
	for (int i = 0; i < R * C; i++)
		b[i] = ts_f32_to_bf16(x[i]);
	analyze_ok(&out, &st, b, TS_BF16, R, C, 0);
	cr_expect_eq(out.codec, TS_CODEC_RAW);
	cr_expect_eq(out.raw_dtype, TS_BF16);
}

Test(analyze, looser_bounds_never_cost_more_bytes)
{
	enum { R = 64, C = 256 };
	static float x[R * C];
	static const double bounds[] = {0, 0.1, 0.3, 1, 2, 4, 8, 12, 20, 50, 100};
	size_t prev = SIZE_MAX;
	ts_codec_config out;
	ts_compression_stats st;

	gen_fill(x, R, C, GEN_NORMAL, 5);
	for (size_t j = 0; j < sizeof(bounds) / sizeof(bounds[0]); j++) {
		analyze_ok(&out, &st, x, TS_F32, R, C, bounds[j]);
		size_t b = ts_codec_encoded_size(&out, R, C);
		cr_expect_leq(b, prev, "bound %g costs %zu bytes, a tighter one %zu", bounds[j], b,
			      prev);
		prev = b;
	}
	/* the loosest bound takes the cheapest format: mxfp4, 17 bytes per 32 values */
	cr_expect_eq(out.codec, TS_CODEC_MXFP4);
	cr_expect_lt(prev, (size_t)R * C * 4 / 7);

	/* a 10 % bound on Gaussian data is met by a 4-bit format, 1 % needs 8 bits */
	analyze_ok(&out, &st, x, TS_F32, R, C, 10);
	cr_expect(out.codec == TS_CODEC_NVFP4 || out.codec == TS_CODEC_MXFP4, "chose %s",
		  ts_codec_name(out.codec));
	analyze_ok(&out, &st, x, TS_F32, R, C, 1);
	cr_expect(out.codec == TS_CODEC_INT8 || out.codec == TS_CODEC_FP8, "chose %s",
		  ts_codec_name(out.codec));
	cr_expect_geq(ts_codec_encoded_size(&out, R, C), (size_t)R * C);
}

Test(analyze, sampled_large_tensor_is_verified_on_the_whole)
{
	/* 1100 x 1024: above the sampling threshold; rows differ in scale by up to 2^16 */
	enum { R = 1100, C = 1024 };
	float *x = malloc((size_t)R * C * sizeof(float));
	cr_assert(x);
	gen_fill(x, R, C, GEN_ROWSCALED, 21);
	/* a few rows of heavy outliers that a row sample is likely to miss */
	for (int r = 0; r < R; r += 97)
		for (int c = 0; c < C; c += 3)
			x[(size_t)r * C + c] *= 40.0f;
	check_bound(x, TS_F32, R, C, 3, "rowscaled large");
	check_bound(x, TS_F32, R, C, 10, "rowscaled large");
	free(x);
}

Test(analyze, constant_and_zero_tensors_take_the_cheapest_format)
{
	enum { R = 8, C = 64 };
	static float x[R * C];
	ts_codec_config out;
	ts_compression_stats st;
	gen_fill(x, R, C, GEN_ZERO, 1);
	analyze_ok(&out, &st, x, TS_F32, R, C, 1);
	cr_expect_eq(out.codec, TS_CODEC_MXFP4, "all-zero chose %s", ts_codec_name(out.codec));
	cr_expect_eq(independent_error(&out, x, TS_F32, R, C), 0.0);
	gen_fill(x, R, C, GEN_CONSTANT, 1);
	analyze_ok(&out, &st, x, TS_F32, R, C, 1);
	cr_expect_leq(independent_error(&out, x, TS_F32, R, C), 1.0);
	cr_expect_leq(ts_codec_encoded_size(&out, R, C), (size_t)R * C);
}

Test(analyze, other_dtypes_and_empty_tensors_are_raw)
{
	int32_t v[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	ts_codec_config out;
	ts_compression_stats st;
	analyze_ok(&out, &st, v, TS_I32, 3, 4, 10);
	cr_expect_eq(out.codec, TS_CODEC_RAW);
	cr_expect_eq(out.raw_dtype, TS_I32);
	cr_expect_eq(st.original_bytes, 48);
	analyze_ok(&out, &st, NULL, TS_F32, 0, 16, 10);
	cr_expect_eq(out.codec, TS_CODEC_RAW);
}

Test(analyze, bad_arguments_are_rejected)
{
	float x[4] = {1, 2, 3, 4};
	ts_codec_config in = ts_codec_config_default(TS_CODEC_NVFP4), out;
	in.max_error_pct = NAN;
	cr_expect_eq(ts_analyze(&out, NULL, &in, x, TS_F32, 1, 4), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "max_error_pct") != NULL);
	in.max_error_pct = -1;
	cr_expect_eq(ts_analyze(&out, NULL, &in, x, TS_F32, 1, 4), TS_EINVAL);
	in.max_error_pct = 5;
	cr_expect_eq(ts_analyze(&out, NULL, &in, NULL, TS_F32, 1, 4), TS_EINVAL);
	cr_expect_eq(ts_analyze(NULL, NULL, &in, x, TS_F32, 1, 4), TS_EINVAL);
	cr_expect_eq(ts_analyze(&out, NULL, &in, x, TS_DTYPE_COUNT, 1, 4), TS_EINVAL);
	cr_expect_eq(ts_analyze(&out, NULL, &in, x, TS_F32, UINT64_MAX / 2, 4), TS_EINVAL);
}

Test(analyze, long_rows_are_measured_in_segments)
{
	/* rows longer than the analyzer's 64K-element pieces, with and without row sampling */
	static const uint64_t shapes[][2] = {{1, 200003}, {3, 300007}};
	for (int s = 0; s < 2; s++) {
		uint64_t rows = shapes[s][0], cols = shapes[s][1];
		float *x = malloc(rows * cols * sizeof(float));
		cr_assert(x);
		gen_fill(x, rows, cols, GEN_STUDENT3, 40 + s);
		check_bound(x, TS_F32, rows, cols, 1, "long rows");
		check_bound(x, TS_F32, rows, cols, 9, "long rows");
		free(x);
	}
}

Test(analyze, the_callers_nvfp4_recipe_is_preferred_when_it_meets_the_bound)
{
	enum { R = 64, C = 256 };
	static float x[R * C];
	gen_fill(x, R, C, GEN_NORMAL, 31);
	ts_codec_config nv = ts_codec_config_default(TS_CODEC_NVFP4), best = nv;
	best.recipe = TS_RECIPE_BEST;
	double e_nv = independent_error(&nv, x, TS_F32, R, C);
	double e_best = independent_error(&best, x, TS_F32, R, C);
	ts_codec_config mx = ts_codec_config_default(TS_CODEC_MXFP4);
	double e_m = independent_error(&mx, x, TS_F32, R, C);
	cr_assert(e_best < e_nv && e_nv < e_m, "best %g nvidia %g mxfp4 %g", e_best, e_nv, e_m);

	ts_codec_config in = nv, out;
	ts_compression_stats st;
	/* both recipes meet the bound, mxfp4 does not: the caller's recipe wins */
	in.max_error_pct = (e_nv + e_m) / 2;
	in.recipe = TS_RECIPE_NVIDIA;
	cr_assert_eq(ts_analyze(&out, &st, &in, x, TS_F32, R, C), 0);
	cr_expect_eq(out.codec, TS_CODEC_NVFP4);
	cr_expect_eq(out.recipe, TS_RECIPE_NVIDIA);
	in.recipe = TS_RECIPE_BEST;
	cr_assert_eq(ts_analyze(&out, &st, &in, x, TS_F32, R, C), 0);
	cr_expect_eq(out.recipe, TS_RECIPE_BEST);
	/* only best meets it: best, whatever the preference */
	in.max_error_pct = (e_best + e_nv) / 2;
	in.recipe = TS_RECIPE_NVIDIA;
	cr_assert_eq(ts_analyze(&out, &st, &in, x, TS_F32, R, C), 0);
	cr_expect_eq(out.codec, TS_CODEC_NVFP4);
	cr_expect_eq(out.recipe, TS_RECIPE_BEST);
}
