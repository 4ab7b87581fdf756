/*
 * Tests of fp8 (E4M3 codes, one per-tensor scale): golden vectors bit for bit with the kernels in
 * effect and the scalar reference, the tensor scale, special values.
 */
#include "golden.h"

#include "codec/kernels.h"

#define COLS 128

static void check_golden(const char *folder, int use_scalar)
{
	size_t nx, nc, ns, nd;
	float *x = golden_load(folder, "input.f32", &nx);
	uint8_t *codes = golden_load(folder, "fp8.codes.e4m3", &nc);
	float *d = golden_load(folder, "fp8.scale.f32", &ns);
	float *dec = golden_load(folder, "fp8.decoded.f32", &nd);
	size_t n = nx / 4, rows = n / COLS;
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_FP8);
	float amax = amax_of(x, n);
	cr_assert_eq(f32_bits(ts_codec_tensor_scale(&cfg, amax)), f32_bits(d[0]), "%s", folder);
	cr_assert_eq(ts_codec_encoded_size(&cfg, rows, COLS), n);
	uint8_t *enc = malloc(n);
	cr_assert_eq(ts_codec_encode(&cfg, amax, x, TS_F32, COLS, rows, COLS, enc, n), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(enc[i], codes[i], "%s: code %zu (x = %a): 0x%02x, golden 0x%02x",
			     folder, i, (double)x[i], enc[i], codes[i]);
	float *y = malloc(n * 4);
	uint16_t *h = malloc(n * 2);
	for (int out = TS_F32; out <= TS_F16; out++) {
		void *dst = out == TS_F32 ? (void *)y : (void *)h;
		if (use_scalar)
			ts__kernels_scalar()->decode[TS_CODEC_FP8][out](codes, NULL, n, 1, d[0], dst);
		else
			cr_assert_eq(ts_codec_decode(&cfg, d[0], codes, n, rows, COLS, (ts_dtype)out,
						     dst, COLS),
				     0);
		for (size_t i = 0; i < n; i++) {
			float want = dec[i];
			cr_assert_eq(f32_bits((float)ref_e4m3(codes[i]) * d[0]), f32_bits(want));
			if (out == TS_F32)
				cr_assert_eq(f32_bits(y[i]), f32_bits(want), "%s: decoded[%zu]",
					     folder, i);
			else
				cr_assert_eq(h[i],
					     out == TS_BF16 ? ts_f32_to_bf16(want)
							    : ts_f32_to_f16(want),
					     "%s: %s decoded[%zu]", folder,
					     ts_dtype_name((ts_dtype)out), i);
		}
	}
	free(x), free(codes), free(d), free(dec), free(enc), free(y), free(h);
}

Test(fp8, matches_golden_vectors)
{
	for (int f = 0; f < GOLDEN_FOLDERS; f++)
		check_golden(golden_folders[f], 0);
}

Test(fp8, scalar_kernels_match_golden_vectors)
{
	for (int f = 0; f < GOLDEN_FOLDERS; f++)
		check_golden(golden_folders[f], 1);
}

Test(fp8, odd_rows_and_special_values)
{
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_FP8);
	float x[3 * 20], y[3 * 20];
	for (int i = 0; i < 60; i++)
		x[i] = (float)(i - 30) * 0.37f;
	x[0] = -0.0f;
	x[1] = 0x1p-140f; /* rounds to zero */
	x[2] = -11.1f;    /* the amax */
	cr_expect_eq(ts_codec_encoded_size(&cfg, 3, 17), 51);
	uint8_t enc[51];
	cr_assert_eq(ts_codec_encode(&cfg, 11.1f, x, TS_F32, 20, 3, 17, enc, sizeof(enc)), 0);
	cr_expect_eq(enc[0], 0x80);
	cr_expect_eq(enc[1], 0x00);
	cr_expect_eq(enc[2], 0xfe, "the amax codes to -448");
	for (int i = 0; i < 60; i++)
		y[i] = 99.0f;
	float d = ts_codec_tensor_scale(&cfg, 11.1f);
	cr_assert_eq(ts_codec_decode(&cfg, d, enc, sizeof(enc), 3, 17, TS_F32, y, 20), 0);
	for (int r = 0; r < 3; r++)
		for (int c = 0; c < 20; c++) {
			if (c >= 17) {
				cr_expect_eq(y[r * 20 + c], 99.0f);
				continue;
			}
			float xv = x[r * 20 + c], yv = y[r * 20 + c];
			cr_expect_leq(fabsf(xv - yv), fabsf(xv) / 16 + 0x1p-9f * d, "r %d c %d", r, c);
		}
	/* an all-zero tensor: scale 1, codes 0 */
	float z[4] = {0, 0, 0, 0};
	cr_expect_eq(ts_codec_tensor_scale(&cfg, 0.0f), 1.0f);
	cr_assert_eq(ts_codec_encode(&cfg, 0.0f, z, TS_F32, 4, 1, 4, enc, 4), 0);
	cr_expect_eq(enc[0] | enc[1] | enc[2] | enc[3], 0);
	/* amax below 448/FLT_MAX: S clamps to FLT_MAX (as nvfp4's does), so zeros never become
	 * NaN (0 * Inf); such values flush to zero */
	float t[2] = {0.0f, 1e-44f};
	cr_assert_eq(ts_codec_encode(&cfg, 1e-44f, t, TS_F32, 2, 1, 2, enc, 2), 0);
	cr_expect_eq(enc[0], 0x00);
	cr_expect_eq(enc[1], 0x00);
	float t2[2] = {0.0f, 1e-30f}; /* S = 448e30 is finite: the amax codes to 448 */
	cr_assert_eq(ts_codec_encode(&cfg, 1e-30f, t2, TS_F32, 2, 1, 2, enc, 2), 0);
	cr_expect_eq(enc[0], 0x00);
	cr_expect_eq(enc[1], 0x7e);
	x[33] = NAN;
	cr_expect_eq(ts_codec_encode(&cfg, 11.1f, x, TS_F32, 20, 3, 17, enc, sizeof(enc)),
		     TS_ENONFINITE);
	cr_expect(strstr(ts_error_last(), "row 1, column 13"), "%s", ts_error_last());
}
