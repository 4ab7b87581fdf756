/*
 * Tests of int8: symmetric and asymmetric blocks, decoded independently from the documented
 * layout (docs/CODECS.md), error within half a step, odd rows, extreme values.
 */
#include "golden.h"

static float le_f32(const uint8_t *p)
{
	return bits_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			(uint32_t)p[3] << 24);
}

/* Decode element c of row r from the documented layout. */
static float independent_decode(const uint8_t *enc, int sym, int bs, uint64_t rows, uint64_t cols,
				uint64_t r, uint64_t c, float *step)
{
	uint64_t nb = (cols + (uint64_t)bs - 1) / (uint64_t)bs, rec = sym ? 4 : 5;
	const uint8_t *codes = enc + r * nb * (uint64_t)bs;
	const uint8_t *scales = enc + rows * nb * (uint64_t)bs + r * nb * rec + (c / (uint64_t)bs) * rec;
	float s = le_f32(scales);
	*step = s;
	if (sym)
		return (float)(int8_t)codes[c] * s;
	return (float)((int)codes[c] - (int)scales[4]) * s;
}

static void round_trip(int sym, int bs, uint64_t rows, uint64_t cols, float (*gen)(uint64_t))
{
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_INT8);
	cfg.symmetric = sym;
	cfg.block_size = bs;
	uint64_t stride = cols + 2, nb = (cols + (uint64_t)bs - 1) / (uint64_t)bs;
	float *x = malloc(rows * stride * 4), *y = malloc(rows * stride * 4);
	for (uint64_t i = 0; i < rows * stride; i++)
		x[i] = gen(i), y[i] = 77.0f;
	size_t size = ts_codec_encoded_size(&cfg, rows, cols);
	cr_assert_eq(size, rows * nb * ((uint64_t)bs + (sym ? 4 : 5)));
	uint8_t *enc = malloc(size);
	cr_assert_eq(ts_codec_encode(&cfg, 0, x, TS_F32, stride, rows, cols, enc, size), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_codec_decode(&cfg, 1.0f, enc, size, rows, cols, TS_F32, y, stride), 0);
	for (uint64_t r = 0; r < rows; r++) {
		for (uint64_t c = 0; c < nb * (uint64_t)bs; c++) {
			if (c >= cols) {
				cr_assert_eq(enc[r * nb * (uint64_t)bs + c], 0, "padding code");
				continue;
			}
			float step, want = independent_decode(enc, sym, bs, rows, cols, r, c, &step);
			float got = y[r * stride + c], xv = x[r * stride + c];
			cr_assert_eq(f32_bits(got), f32_bits(want), "sym %d bs %d r %llu c %llu", sym,
				     bs, (unsigned long long)r, (unsigned long long)c);
			cr_assert(isfinite(got));
			cr_assert_leq(fabs((double)got - xv), step * 0.5 * (1 + 1e-4) + 1e-30,
				      "sym %d bs %d cols %llu: x %g y %g step %g", sym, bs,
				      (unsigned long long)cols, (double)xv, (double)got,
				      (double)step);
		}
		for (uint64_t c = cols; c < stride; c++)
			cr_assert_eq(y[r * stride + c], 77.0f);
	}
	free(x), free(y), free(enc);
}

static float gen_wave(uint64_t i)
{
	return sinf((float)i * 0.31f) * (float)(1 + i % 13) - 0.25f;
}

static float gen_positive(uint64_t i)
{
	return 3.0f + (float)(i % 17) * 0.125f;
}

Test(int8, symmetric_and_asymmetric_round_trip_within_half_a_step)
{
	static const uint64_t lens[] = {1, 15, 16, 17, 33, 300};
	static const int blocks[] = {16, 32, 64, 4096};
	for (int sym = 0; sym < 2; sym++)
		for (size_t b = 0; b < 4; b++)
			for (size_t l = 0; l < 6; l++) {
				round_trip(sym, blocks[b], 3, lens[l], gen_wave);
				round_trip(sym, blocks[b], 2, lens[l], gen_positive);
			}
}

Test(int8, symmetric_codes_and_scale_follow_the_layout)
{
	float x[16];
	for (int i = 0; i < 16; i++)
		x[i] = (float)(i - 8) * 0.5f; /* amax 4 at i = 0 */
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_INT8);
	cfg.block_size = 16;
	uint8_t enc[20];
	cr_assert_eq(ts_codec_encode(&cfg, 0, x, TS_F32, 16, 1, 16, enc, sizeof(enc)), 0);
	cr_expect_eq(f32_bits(le_f32(enc + 16)), f32_bits(4.0f / 127.0f));
	cr_expect_eq((int8_t)enc[0], -127);
	cr_expect_eq((int8_t)enc[8], 0);
	cr_expect_eq((int8_t)enc[12], 64); /* 2 / (4/127) = 63.5 -> 64 (tie to even) */
}

Test(int8, asymmetric_keeps_zero_exact)
{
	float x[16];
	for (int i = 0; i < 16; i++)
		x[i] = i == 5 ? 0.0f : -1.0f + (float)i * 0.6f;
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_INT8);
	cfg.block_size = 16;
	cfg.symmetric = 0;
	uint8_t enc[21];
	float y[16];
	cr_assert_eq(ts_codec_encode(&cfg, 0, x, TS_F32, 16, 1, 16, enc, sizeof(enc)), 0);
	cr_assert_eq(ts_codec_decode(&cfg, 1.0f, enc, sizeof(enc), 1, 16, TS_F32, y, 16), 0);
	cr_expect_eq(y[5], 0.0f);
	cr_expect_eq(enc[0], 0, "the minimum maps to code 0");
	cr_expect_eq(enc[15], 255, "the maximum maps to code 255");
}

Test(int8, zero_blocks_and_extreme_values)
{
	float x[64] = {0};
	for (int i = 32; i < 64; i++)
		x[i] = (i & 1) ? -FLT_MAX : FLT_MAX;
	for (int sym = 0; sym < 2; sym++) {
		ts_codec_config cfg = ts_codec_config_default(TS_CODEC_INT8);
		cfg.symmetric = sym;
		size_t size = ts_codec_encoded_size(&cfg, 1, 64);
		uint8_t enc[80];
		float y[64];
		cr_assert_eq(ts_codec_encode(&cfg, 0, x, TS_F32, 64, 1, 64, enc, size), 0);
		cr_assert_eq(ts_codec_decode(&cfg, 1.0f, enc, size, 1, 64, TS_F32, y, 64), 0);
		for (int i = 0; i < 32; i++) {
			cr_expect_eq(y[i], 0.0f);
			cr_expect_eq(enc[i], 0);
		}
		for (int i = 32; i < 64; i++) {
			cr_assert(isfinite(y[i]), "sym %d y[%d] = %g", sym, i, (double)y[i]);
			cr_expect_leq(fabsf(y[i] - x[i]) / FLT_MAX, 0.01f);
		}
	}
}

Test(int8, configuration_is_checked)
{
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_INT8);
	cr_expect_eq(ts_codec_config_check(&cfg), 0);
	cfg.block_size = 48;
	cr_expect_eq(ts_codec_config_check(&cfg), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "power of two"));
	cfg.block_size = 8192;
	cr_expect_eq(ts_codec_config_check(&cfg), TS_EINVAL);
	cfg.block_size = 64;
	cfg.symmetric = 2;
	cr_expect_eq(ts_codec_config_check(&cfg), TS_EINVAL);
	cfg.symmetric = 0;
	cfg.bits_per_value = 4;
	cr_expect_eq(ts_codec_config_check(&cfg), TS_EINVAL);
}

Test(int8, golden_inputs_have_small_error)
{
	for (int f = 0; f < 3; f++) {
		size_t nx;
		float *x = golden_load(golden_folders[f], "input.f32", &nx);
		size_t n = nx / 4;
		ts_codec_config cfg = ts_codec_config_default(TS_CODEC_INT8);
		size_t size = ts_codec_encoded_size(&cfg, 1, n);
		uint8_t *enc = malloc(size);
		float *y = malloc(n * 4);
		cr_assert_eq(ts_codec_encode(&cfg, 0, x, TS_F32, n, 1, n, enc, size), 0);
		cr_assert_eq(ts_codec_decode(&cfg, 1, enc, size, 1, n, TS_F32, y, n), 0);
		cr_expect_geq(sqnr_db(x, y, n), 35.0, "%s", golden_folders[f]);
		free(x), free(enc), free(y);
	}
}
