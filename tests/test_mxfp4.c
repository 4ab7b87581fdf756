/*
 * Tests of mxfp4 (OCP MX v1.0): golden vectors bit for bit with the kernels in effect and with the
 * scalar reference, odd row lengths, zero and subnormal blocks.
 */
#include "golden.h"

#include "codec/kernels.h"

#define COLS 256

static float independent_decode(const uint8_t *codes, const uint8_t *scales, size_t i)
{
	unsigned c = (codes[i / 2] >> (4 * (i & 1))) & 15;
	return (float)ldexp(ref_e2m1(c), (int)scales[i / 32] - 127);
}

static void check_golden(const char *folder, int use_scalar)
{
	size_t nx, nc, ns, nd;
	float *x = golden_load(folder, "input.f32", &nx);
	uint8_t *codes = golden_load(folder, "mxfp4.codes.u8", &nc);
	uint8_t *scales = golden_load(folder, "mxfp4.scales.e8m0", &ns);
	float *dec = golden_load(folder, "mxfp4.decoded.f32", &nd);
	size_t n = nx / 4, rows = n / COLS;
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_MXFP4);
	size_t size = ts_codec_encoded_size(&cfg, rows, COLS);
	cr_assert_eq(size, n / 2 + n / 32);
	cr_assert_eq(nc + ns, size);
	uint8_t *enc = malloc(size);
	if (use_scalar)
		ts__kernels_scalar()->mxfp4_encode(x, n / 32, 0.0f, enc, enc + n / 2);
	else
		cr_assert_eq(ts_codec_encode(&cfg, 0.0f, x, TS_F32, COLS, rows, COLS, enc, size),
			     0, "%s", ts_error_last());
	for (size_t i = 0; i < n / 2; i++)
		cr_assert_eq(enc[i], codes[i], "%s: code byte %zu: 0x%02x, golden 0x%02x", folder,
			     i, enc[i], codes[i]);
	for (size_t b = 0; b < n / 32; b++)
		cr_assert_eq(enc[n / 2 + b], scales[b], "%s: scale %zu: 0x%02x, golden 0x%02x",
			     folder, b, enc[n / 2 + b], scales[b]);
	float *y = malloc(n * 4);
	uint16_t *h = malloc(n * 2);
	memcpy(enc, codes, nc);
	memcpy(enc + nc, scales, ns);
	if (use_scalar)
		ts__kernels_scalar()->decode[TS_CODEC_MXFP4][TS_F32](codes, scales, n / 32, 32,
								     1.0f, y);
	else
		cr_assert_eq(ts_codec_decode(&cfg, 1.0f, enc, size, rows, COLS, TS_F32, y, COLS), 0);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(f32_bits(y[i]), f32_bits(dec[i]), "%s: decoded[%zu] %a, golden %a",
			     folder, i, (double)y[i], (double)dec[i]);
		cr_assert_eq(f32_bits(independent_decode(codes, scales, i)), f32_bits(dec[i]));
	}
	for (int out = TS_BF16; out <= TS_F16; out++) {
		if (use_scalar)
			ts__kernels_scalar()->decode[TS_CODEC_MXFP4][out](codes, scales, n / 32, 32,
									  1.0f, h);
		else
			cr_assert_eq(ts_codec_decode(&cfg, 1.0f, enc, size, rows, COLS,
						     (ts_dtype)out, h, COLS),
				     0);
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(h[i],
				     out == TS_BF16 ? ts_f32_to_bf16(dec[i]) : ts_f32_to_f16(dec[i]),
				     "%s: %s decoded[%zu]", folder, ts_dtype_name((ts_dtype)out), i);
	}
	free(x), free(codes), free(scales), free(dec), free(enc), free(y), free(h);
}

Test(mxfp4, matches_golden_vectors)
{
	for (int f = 0; f < GOLDEN_FOLDERS; f++)
		check_golden(golden_folders[f], 0);
}

Test(mxfp4, scalar_kernels_match_golden_vectors)
{
	for (int f = 0; f < GOLDEN_FOLDERS; f++)
		check_golden(golden_folders[f], 1);
}

Test(mxfp4, odd_row_lengths_round_trip)
{
	static const uint64_t lens[] = {1, 15, 17, 31, 33, 65};
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_MXFP4);
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		uint64_t cols = lens[l], rows = 2, stride = cols + 3;
		float x[2 * 68], y[2 * 68];
		for (uint64_t i = 0; i < rows * stride; i++)
			x[i] = cosf((float)i) * (float)(i % 5 + 1);
		uint64_t nb = (cols + 31) / 32;
		size_t size = ts_codec_encoded_size(&cfg, rows, cols);
		cr_assert_eq(size, rows * nb * 17);
		uint8_t enc[2 * 3 * 17];
		cr_assert_eq(ts_codec_encode(&cfg, 0, x, TS_F32, stride, rows, cols, enc, size), 0);
		for (size_t i = 0; i < 2 * 68; i++)
			y[i] = -7.0f;
		cr_assert_eq(ts_codec_decode(&cfg, 1.0f, enc, size, rows, cols, TS_F32, y, stride),
			     0);
		for (uint64_t r = 0; r < rows; r++) {
			const uint8_t *cr = enc + r * nb * 16, *sr = enc + rows * nb * 16 + r * nb;
			for (uint64_t c = 0; c < nb * 32; c++) {
				unsigned code = (cr[c / 2] >> (4 * (c & 1))) & 15;
				if (c >= cols) {
					cr_assert_eq(code, 0);
					continue;
				}
				cr_assert_eq(f32_bits(y[r * stride + c]),
					     f32_bits(independent_decode(cr, sr, c)));
				/* e = floor(log2 amax) - 2 keeps every value within one step 2^e */
				cr_assert_leq(fabs((double)y[r * stride + c] - x[r * stride + c]),
					      ldexp(1.0, (int)sr[c / 32] - 127) * 2.0);
			}
			for (uint64_t c = cols; c < stride; c++)
				cr_assert_eq(y[r * stride + c], -7.0f);
		}
	}
}

Test(mxfp4, zero_and_subnormal_blocks)
{
	float x[64] = {0};
	x[1] = -0.0f;
	x[32] = 1e-42f; /* float subnormal: e clamps to -127 */
	x[33] = -3e-39f;
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_MXFP4);
	uint8_t enc[34];
	cr_assert_eq(ts_codec_encode(&cfg, 0, x, TS_F32, 64, 1, 64, enc, sizeof(enc)), 0);
	cr_expect_eq(enc[32], 0, "zero block: scale byte 0");
	for (int i = 0; i < 16; i++)
		cr_expect_eq(enc[i], 0, "zero block: codes 0");
	cr_expect_eq(enc[33], 0, "subnormal amax: e = -127");
	/* 1e-42 * 2^127 = 0.17 -> 0; -3e-39 * 2^127 = -0.51 -> -0.5 */
	cr_expect_eq(enc[16], 0x90);
	x[40] = INFINITY;
	cr_expect_eq(ts_codec_encode(&cfg, 0, x, TS_F32, 64, 1, 64, enc, sizeof(enc)),
		     TS_ENONFINITE);
	cr_expect(strstr(ts_error_last(), "row 0, column 40"), "%s", ts_error_last());
}

Test(mxfp4, largest_floats_saturate_without_overflow)
{
	float x[32], y[32];
	for (int i = 0; i < 32; i++)
		x[i] = (i & 1) ? -FLT_MAX : FLT_MAX / (float)(i + 1);
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_MXFP4);
	uint8_t enc[17];
	cr_assert_eq(ts_codec_encode(&cfg, 0, x, TS_F32, 32, 1, 32, enc, sizeof(enc)), 0);
	cr_expect_eq(enc[16], 127 + 125);
	cr_assert_eq(ts_codec_decode(&cfg, 1.0f, enc, 17, 1, 32, TS_F32, y, 32), 0);
	for (int i = 0; i < 32; i++)
		cr_expect(isfinite(y[i]));
	cr_expect_eq((double)y[1], -6.0 * ldexp(1.0, 125));
}
