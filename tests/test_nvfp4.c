/*
 * Tests of nvfp4: the nvidia recipe bit for bit against the golden vectors (codes, scales, tensor
 * scale, decoded values) with the kernels in effect and with the scalar reference; the `best`
 * recipe's SQNR gain measured here from its decoded output; odd row lengths and special values.
 */
#include "golden.h"

#include "codec/kernels.h"

#define COLS 256

static ts_codec_config nv(ts_recipe recipe)
{
	ts_codec_config c = ts_codec_config_default(TS_CODEC_NVFP4);
	c.recipe = recipe;
	return c;
}

/* y = (e2m1(code) * e4m3(scale)) * g, computed from the definitions. */
static float independent_decode(const uint8_t *codes, const uint8_t *scales, size_t i, float g)
{
	unsigned c = (codes[i / 2] >> (4 * (i & 1))) & 15;
	float prod = (float)(ref_e2m1(c) * ref_e4m3(scales[i / 16])); /* exact */
	return prod * g;
}

static void check_golden(const char *folder, int use_scalar_kernels)
{
	size_t nx, nc, ns, ng, nd;
	float *x = golden_load(folder, "input.f32", &nx);
	uint8_t *codes = golden_load(folder, "nvfp4.codes.u8", &nc);
	uint8_t *scales = golden_load(folder, "nvfp4.scales.e4m3", &ns);
	float *gf = golden_load(folder, "nvfp4.global.f32", &ng);
	float *dec = golden_load(folder, "nvfp4.decoded.f32", &nd);
	size_t n = nx / 4, rows = n / COLS;
	ts_codec_config cfg = nv(TS_RECIPE_NVIDIA);
	float amax = amax_of(x, n);
	float g = ts_codec_tensor_scale(&cfg, amax);

	cr_assert_eq(f32_bits(g), f32_bits(gf[0]), "%s: tensor scale %a, golden %a", folder,
		     (double)g, (double)gf[0]);
	size_t size = ts_codec_encoded_size(&cfg, rows, COLS);
	cr_assert_eq(size, n / 2 + n / 16);
	uint8_t *enc = malloc(size);
	if (use_scalar_kernels) {
		const ts__kernels *k = ts__kernels_scalar();
		k->nvfp4_encode_nvidia(x, n / 16, 2688.0f / amax, enc, enc + n / 2);
	} else {
		cr_assert_eq(ts_codec_encode(&cfg, amax, x, TS_F32, COLS, rows, COLS, enc, size), 0,
			     "%s", ts_error_last());
	}
	for (size_t i = 0; i < n / 2; i++)
		cr_assert_eq(enc[i], codes[i], "%s: code byte %zu: 0x%02x, golden 0x%02x", folder,
			     i, enc[i], codes[i]);
	for (size_t b = 0; b < n / 16; b++)
		cr_assert_eq(enc[n / 2 + b], scales[b], "%s: scale %zu: 0x%02x, golden 0x%02x",
			     folder, b, enc[n / 2 + b], scales[b]);

	float *y = malloc(n * 4);
	uint16_t *h = malloc(n * 2);
	memcpy(enc, codes, nc); /* decode the golden bytes themselves */
	memcpy(enc + nc, scales, ns);
	if (use_scalar_kernels)
		ts__kernels_scalar()->decode[TS_CODEC_NVFP4][TS_F32](codes, scales, n / 16, 16,
								     gf[0], y);
	else
		cr_assert_eq(ts_codec_decode(&cfg, gf[0], enc, nc + ns, rows, COLS, TS_F32, y,
					     COLS),
			     0);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(f32_bits(y[i]), f32_bits(dec[i]), "%s: decoded[%zu] %a, golden %a",
			     folder, i, (double)y[i], (double)dec[i]);
		cr_assert_eq(f32_bits(independent_decode(codes, scales, i, gf[0])),
			     f32_bits(dec[i]));
	}
	for (int out = TS_BF16; out <= TS_F16; out++) {
		if (use_scalar_kernels)
			ts__kernels_scalar()->decode[TS_CODEC_NVFP4][out](codes, scales, n / 16,
									  16, gf[0], h);
		else
			cr_assert_eq(ts_codec_decode(&cfg, gf[0], enc, nc + ns, rows, COLS,
						     (ts_dtype)out, h, COLS),
				     0);
		for (size_t i = 0; i < n; i++) {
			uint16_t want = out == TS_BF16 ? ts_f32_to_bf16(dec[i])
						       : ts_f32_to_f16(dec[i]);
			cr_assert_eq(h[i], want, "%s: %s decoded[%zu]", folder,
				     ts_dtype_name((ts_dtype)out), i);
		}
	}
	free(x), free(codes), free(scales), free(gf), free(dec), free(enc), free(y), free(h);
}

Test(nvfp4, nvidia_recipe_matches_golden_vectors)
{
	for (int f = 0; f < GOLDEN_FOLDERS; f++)
		check_golden(golden_folders[f], 0);
}

Test(nvfp4, scalar_kernels_match_golden_vectors)
{
	for (int f = 0; f < GOLDEN_FOLDERS; f++)
		check_golden(golden_folders[f], 1);
}

/* SQNR of a recipe on x, decoded with the test's own arithmetic from the encoded bytes. */
static double recipe_sqnr(ts_recipe recipe, const float *x, size_t n)
{
	ts_codec_config cfg = nv(recipe);
	size_t rows = n / COLS, size = ts_codec_encoded_size(&cfg, rows, COLS);
	uint8_t *enc = malloc(size);
	float *y = malloc(n * 4), *y2 = malloc(n * 4);
	float amax = amax_of(x, n);
	float g = ts_codec_tensor_scale(&cfg, amax);
	cr_assert_eq(ts_codec_encode(&cfg, amax, x, TS_F32, COLS, rows, COLS, enc, size), 0);
	for (size_t i = 0; i < n; i++)
		y[i] = independent_decode(enc, enc + n / 2, i, g);
	/* the library's decoder agrees with the definition */
	cr_assert_eq(ts_codec_decode(&cfg, g, enc, size, rows, COLS, TS_F32, y2, COLS), 0);
	cr_assert_eq(memcmp(y, y2, n * 4), 0);
	double s = sqnr_db(x, y, n);
	free(enc), free(y), free(y2);
	return s;
}

Test(nvfp4, best_recipe_beats_nvidia_by_0_8_db)
{
	static const char *const dists[] = {"normal", "laplace", "student3"};
	for (int f = 0; f < 3; f++) {
		size_t nx;
		float *x = golden_load(dists[f], "input.f32", &nx);
		double a = recipe_sqnr(TS_RECIPE_NVIDIA, x, nx / 4);
		double b = recipe_sqnr(TS_RECIPE_BEST, x, nx / 4);
		cr_log_info("%s: nvidia %.3f dB, best %.3f dB, gain %.3f dB", dists[f], a, b, b - a);
		cr_expect_geq(b - a, 0.8, "%s: nvidia %.3f dB, best %.3f dB", dists[f], a, b);
		free(x);
	}
}

/*
 * Invariant 3 of codec/nvfp4.c: per block, `best` is never worse than the nvidia-style scale
 * e4m3(block_amax / (6 g)) at the same g, and never worse than any E4M3 scale at a ratio
 * between 0.9 and 1.7 of block_amax / 6 (inside the recipe's window), by brute force in double
 * (up to the float32 rounding of the recipe's own error sums: 1e-4 relative).
 */
Test(nvfp4, best_recipe_is_optimal_per_block)
{
	size_t nx;
	float *x = golden_load("student3", "input.f32", &nx);
	size_t n = nx / 4;
	ts_codec_config cfg = nv(TS_RECIPE_BEST);
	float amax = amax_of(x, n), g = ts_codec_tensor_scale(&cfg, amax);
	uint8_t *enc = malloc(n / 2 + n / 16);
	cr_assert_eq(ts_codec_encode(&cfg, amax, x, TS_F32, n, 1, n, enc, n / 2 + n / 16), 0);
	for (size_t b = 0; b < n / 16; b++) {
		double got = 0, bam = 0;
		for (int i = 0; i < 16; i++) {
			double d = x[b * 16 + i] - (double)independent_decode(enc, enc + n / 2, b * 16 + i, g);
			got += d * d;
			bam = fmax(bam, fabs(x[b * 16 + i]));
		}
		/* every E4M3 scale, codes nearest (brute force over the 8 magnitudes) */
		double best_any = INFINITY, nv_style = INFINITY;
		unsigned nv_byte = ts_f32_to_e4m3((float)(bam / g / 6.0));
		for (unsigned sb = 1; sb < 0x7f; sb++) {
			double s = ref_e4m3(sb) * g, err = 0;
			for (int i = 0; i < 16; i++) {
				double a = fabs(x[b * 16 + i]), e = INFINITY;
				for (unsigned c = 0; c < 8; c++)
					e = fmin(e, fabs(a - ref_e2m1(c) * s));
				err += e * e;
			}
			if (sb == nv_byte)
				nv_style = err;
			double ratio = ref_e4m3(sb) * g * 6.0 / bam;
			if (ratio >= 0.9 && ratio <= 1.7) /* inside the window the recipe searches */
				best_any = fmin(best_any, err);
		}
		cr_assert_leq(got, nv_style * (1 + 1e-4) + 1e-30, "block %zu: %g > nvidia-style %g", b,
			      got, nv_style);
		cr_assert_leq(got, best_any * (1 + 1e-4) + 1e-30,
			      "block %zu: %g > best in window %g (scale 0x%02x)", b, got, best_any,
			      enc[n / 2 + b]);
	}
	free(x), free(enc);
}

Test(nvfp4, best_recipe_handles_outliers_and_edges)
{
	static const char *const dists[] = {"outliers", "edges"};
	for (int f = 0; f < 2; f++) {
		size_t nx;
		float *x = golden_load(dists[f], "input.f32", &nx);
		double a = recipe_sqnr(TS_RECIPE_NVIDIA, x, nx / 4);
		double b = recipe_sqnr(TS_RECIPE_BEST, x, nx / 4);
		cr_expect_geq(b, a - 0.1, "%s: nvidia %.3f dB, best %.3f dB", dists[f], a, b);
		free(x);
	}
}

/* Odd row lengths: padded last blocks, codes of padding 0, nothing written past the row. */
Test(nvfp4, odd_row_lengths_round_trip)
{
	static const uint64_t lens[] = {1, 15, 16, 17, 33, 100};
	for (int rcp = 0; rcp < 2; rcp++) {
		ts_codec_config cfg = nv((ts_recipe)rcp);
		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			uint64_t cols = lens[l], rows = 3, stride = cols + 5;
			float x[3 * 105], y[3 * 105];
			for (uint64_t i = 0; i < rows * stride; i++)
				x[i] = sinf((float)i * 0.7f) * (float)(1 + i % 7);
			float amax = 0;
			for (uint64_t r = 0; r < rows; r++)
				for (uint64_t c = 0; c < cols; c++)
					amax = fmaxf(amax, fabsf(x[r * stride + c]));
			uint64_t nb = (cols + 15) / 16;
			size_t size = ts_codec_encoded_size(&cfg, rows, cols);
			cr_assert_eq(size, rows * nb * 8 + rows * nb);
			uint8_t enc[3 * 7 * 9];
			cr_assert_eq(ts_codec_encode(&cfg, amax, x, TS_F32, stride, rows, cols, enc,
						     size),
				     0);
			float g = ts_codec_tensor_scale(&cfg, amax);
			for (size_t i = 0; i < 3 * 105; i++)
				y[i] = 12345.0f;
			cr_assert_eq(ts_codec_decode(&cfg, g, enc, size, rows, cols, TS_F32, y,
						     stride),
				     0);
			for (uint64_t r = 0; r < rows; r++) {
				const uint8_t *cr = enc + r * nb * 8, *sr = enc + rows * nb * 8 + r * nb;
				for (uint64_t c = 0; c < nb * 16; c++) {
					unsigned code = (cr[c / 2] >> (4 * (c & 1))) & 15;
					if (c >= cols) {
						cr_assert_eq(code, 0, "padding code, len %llu",
							     (unsigned long long)cols);
						continue;
					}
					float want = independent_decode(cr, sr, c, g);
					float got = y[r * stride + c];
					cr_assert_eq(f32_bits(got), f32_bits(want));
					/* within half a step of the block's grid (step <= scale * 2) */
					float sc = (float)ref_e4m3(sr[c / 16]) * g;
					cr_assert_leq(fabsf(got - x[r * stride + c]), sc * 1.0f + 1e-6f,
						      "len %llu r %llu c %llu",
						      (unsigned long long)cols, (unsigned long long)r,
						      (unsigned long long)c);
				}
				for (uint64_t c = cols; c < stride; c++)
					cr_assert_eq(y[r * stride + c], 12345.0f, "wrote past the row");
			}
		}
	}
}

Test(nvfp4, zeros_and_signed_zeros)
{
	float x[32] = {0};
	x[3] = -0.0f;
	x[20] = 1.0f;
	x[21] = -1e-6f; /* rounds to zero: code 0x8 */
	ts_codec_config cfg = nv(TS_RECIPE_NVIDIA);
	uint8_t enc[18];
	cr_assert_eq(ts_codec_encode(&cfg, 1.0f, x, TS_F32, 32, 1, 32, enc, sizeof(enc)), 0);
	cr_expect_eq(enc[16], 0x00, "all-zero block: scale 0");
	for (int i = 0; i < 8; i++)
		cr_expect_eq(enc[i], 0x00, "all-zero block: codes 0 (byte %d)", i);
	cr_expect_eq(enc[17], ts_f32_to_e4m3(1.0f * (2688.0f / 1.0f) * (1.0f / 6.0f)));
	cr_expect_eq(enc[8 + 2], 0x87, "1.0 -> 6 (low), -1e-6 -> -0 (high)");

	/* an all-zero tensor: amax 0, tensor scale 1, decodes to zeros */
	float z[16] = {0}, y[16];
	cr_assert_eq(ts_codec_encode(&cfg, 0.0f, z, TS_F32, 16, 1, 16, enc, 9), 0);
	cr_expect_eq(ts_codec_tensor_scale(&cfg, 0.0f), 1.0f);
	cr_assert_eq(ts_codec_decode(&cfg, 1.0f, enc, 9, 1, 16, TS_F32, y, 16), 0);
	for (int i = 0; i < 16; i++)
		cr_expect_eq(y[i], 0.0f);
}

Test(nvfp4, nonfinite_input_is_reported_with_row_and_column)
{
	float x[2 * 40];
	for (int i = 0; i < 80; i++)
		x[i] = (float)i;
	x[40 + 17] = NAN;
	uint8_t enc[512];
	ts_codec_config cfg = nv(TS_RECIPE_NVIDIA);
	cr_assert_eq(ts_codec_encode(&cfg, 79.0f, x, TS_F32, 40, 2, 40, enc, sizeof(enc)),
		     TS_ENONFINITE);
	cr_expect(strstr(ts_error_last(), "row 1, column 17"), "%s", ts_error_last());
	x[40 + 17] = 1.0f;
	x[5] = -INFINITY;
	cfg.recipe = TS_RECIPE_BEST;
	cr_assert_eq(ts_codec_encode(&cfg, 79.0f, x, TS_F32, 40, 2, 40, enc, sizeof(enc)),
		     TS_ENONFINITE);
	cr_expect(strstr(ts_error_last(), "row 0, column 5"), "%s", ts_error_last());
	cr_assert_eq(ts_codec_encode(&cfg, NAN, x, TS_F32, 40, 2, 40, enc, sizeof(enc)),
		     TS_EINVAL);
}

/* Huge and tiny magnitudes: the edges folder covers them for nvidia; here `best` at extremes. */
Test(nvfp4, best_recipe_extreme_magnitudes_stay_finite)
{
	float x[32];
	for (int i = 0; i < 32; i++)
		x[i] = (i & 1 ? -1.0f : 1.0f) * (i < 16 ? FLT_MAX / (float)(i + 1) : 1e-40f * (float)i);
	ts_codec_config cfg = nv(TS_RECIPE_BEST);
	uint8_t enc[18];
	float y[32];
	float amax = amax_of(x, 32), g = ts_codec_tensor_scale(&cfg, amax);
	cr_assert_eq(ts_codec_encode(&cfg, amax, x, TS_F32, 32, 1, 32, enc, sizeof(enc)), 0);
	cr_assert_eq(ts_codec_decode(&cfg, g, enc, sizeof(enc), 1, 32, TS_F32, y, 32), 0);
	for (int i = 0; i < 32; i++)
		cr_assert(isfinite(y[i]), "y[%d] = %g", i, (double)y[i]);
	cr_expect_leq(fabsf(y[0] - x[0]) / x[0], 0.25f);
}
