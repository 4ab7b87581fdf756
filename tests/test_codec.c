/*
 * Tests of the codec API: configurations, names, encoded sizes, argument errors, raw (lossless,
 * NaN and Inf included), source dtypes BF16/F16, strides and unaligned buffers, the kernel name,
 * decoding a rectangle of a page.
 */
#include "golden.h"

#include "codec/codec.h"

Test(codec, defaults_are_the_documented_ones)
{
	ts_codec_config c = ts_codec_config_default(TS_CODEC_NVFP4);
	cr_expect_eq(c.block_size, 16);
	cr_expect_eq(c.bits_per_value, 4);
	cr_expect_eq(c.symmetric, 1);
	cr_expect_eq(c.recipe, TS_RECIPE_NVIDIA);
	cr_expect_eq(c.max_error_pct, 10.0);
	for (int k = 0; k < TS_CODEC_COUNT; k++) {
		ts_codec_config d = ts_codec_config_default((ts_codec)k);
		cr_expect_eq(ts_codec_config_check(&d), 0, "%s: %s", ts_codec_name((ts_codec)k),
			     ts_error_last());
	}
	cr_expect_eq(ts_codec_config_default(TS_CODEC_MXFP4).block_size, 32);
	cr_expect_eq(ts_codec_config_default(TS_CODEC_FP8).bits_per_value, 8);
}

Test(codec, names_parse_back)
{
	for (int k = 0; k < TS_CODEC_COUNT; k++) {
		ts_codec c;
		cr_assert_eq(ts_codec_parse(&c, ts_codec_name((ts_codec)k)), 0);
		cr_expect_eq((int)c, k);
	}
	ts_codec c;
	cr_expect_eq(ts_codec_parse(&c, "NVFP4"), 0);
	cr_expect_eq(c, TS_CODEC_NVFP4);
	cr_expect_eq(ts_codec_parse(&c, "fp4"), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "fp4"));
	cr_expect_str_eq(ts_codec_name((ts_codec)99), "?");
}

Test(codec, bad_configurations_are_rejected_with_a_reason)
{
	ts_codec_config c = ts_codec_config_default(TS_CODEC_NVFP4);
	c.block_size = 32;
	cr_expect_eq(ts_codec_config_check(&c), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "block_size"), "%s", ts_error_last());
	cr_expect_eq(ts_codec_encoded_size(&c, 4, 4), 0);
	c = ts_codec_config_default(TS_CODEC_NVFP4);
	c.recipe = (ts_recipe)7;
	cr_expect_eq(ts_codec_config_check(&c), TS_EINVAL);
	c = ts_codec_config_default(TS_CODEC_RAW);
	c.raw_dtype = TS_BF16;
	cr_expect_eq(ts_codec_config_check(&c), TS_EINVAL, "bits_per_value must follow raw_dtype");
	c.bits_per_value = 16;
	cr_expect_eq(ts_codec_config_check(&c), 0);
	c.codec = (ts_codec)42;
	cr_expect_eq(ts_codec_config_check(&c), TS_EINVAL);
	cr_expect_eq(ts_codec_config_check(NULL), TS_EINVAL);
	c = ts_codec_config_default(TS_CODEC_FP8);
	c.max_error_pct = -1;
	cr_expect_eq(ts_codec_config_check(&c), TS_EINVAL);
}

Test(codec, encoded_sizes)
{
	ts_codec_config nv = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_codec_config mx = ts_codec_config_default(TS_CODEC_MXFP4);
	ts_codec_config i8 = ts_codec_config_default(TS_CODEC_INT8);
	ts_codec_config f8 = ts_codec_config_default(TS_CODEC_FP8);
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	cr_expect_eq(ts_codec_encoded_size(&nv, 4096, 4096), 4096u * 2048 + 4096u * 256);
	cr_expect_eq(ts_codec_encoded_size(&nv, 3, 17), 3 * 16 + 3 * 2);
	cr_expect_eq(ts_codec_encoded_size(&mx, 3, 33), 3 * 32 + 3 * 2);
	cr_expect_eq(ts_codec_encoded_size(&i8, 2, 33), 2 * 64 + 2 * 2 * 4);
	i8.symmetric = 0;
	cr_expect_eq(ts_codec_encoded_size(&i8, 2, 33), 2 * 64 + 2 * 2 * 5);
	cr_expect_eq(ts_codec_encoded_size(&f8, 5, 7), 35);
	cr_expect_eq(ts_codec_encoded_size(&raw, 5, 7), 140);
	cr_expect_eq(ts_codec_encoded_size(&raw, 0, 7), 0);
	cr_expect_eq(ts_codec_encoded_size(&raw, UINT64_MAX / 2, UINT64_MAX / 2), 0, "overflow");
}

Test(codec, short_buffers_and_wrong_dtypes)
{
	float x[32] = {1, 2, 3};
	uint8_t enc[64];
	float y[32];
	ts_codec_config nv = ts_codec_config_default(TS_CODEC_NVFP4);
	cr_expect_eq(ts_codec_encode(&nv, 3, x, TS_F32, 32, 1, 32, enc, 17), TS_ESHORTBUF);
	cr_expect(strstr(ts_error_last(), "18"), "%s", ts_error_last());
	cr_expect_eq(ts_codec_encode(&nv, 3, x, TS_I32, 32, 1, 32, enc, 18), TS_EDTYPE);
	cr_expect_eq(ts_codec_encode(&nv, 3, x, TS_F32, 16, 2, 32, enc, 64), TS_EINVAL,
		     "stride shorter than a row");
	cr_assert_eq(ts_codec_encode(&nv, 3, x, TS_F32, 32, 1, 32, enc, 18), 0);
	cr_expect_eq(ts_codec_decode(&nv, 1, enc, 17, 1, 32, TS_F32, y, 32), TS_ESHORTBUF);
	cr_expect_eq(ts_codec_decode(&nv, 1, enc, 18, 1, 32, TS_I8, y, 32), TS_EDTYPE);
	cr_expect_eq(ts_codec_decode(&nv, INFINITY, enc, 18, 1, 32, TS_F32, y, 32), TS_EINVAL);
	cr_expect_eq(ts_codec_decode(&nv, 1, enc, 18, 0, 32, TS_F32, NULL, 32), 0, "empty");
}

Test(codec, raw_is_lossless_even_for_nan_and_inf)
{
	float x[3 * 9];
	for (int i = 0; i < 27; i++)
		x[i] = (float)i * 1.5f - 7.0f;
	x[1] = NAN;
	x[2] = bits_f32(0x7fa00001u); /* a signalling NaN with a payload */
	x[3] = INFINITY;
	x[4] = -INFINITY;
	x[5] = -0.0f;
	x[6] = 0x1p-149f;
	x[7] = FLT_MAX;
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	uint8_t enc[3 * 9 * 4];
	float y[3 * 9];
	cr_assert_eq(ts_codec_encode(&raw, 0, x, TS_F32, 9, 3, 9, enc, sizeof(enc)), 0);
	cr_assert_eq(memcmp(enc, x, sizeof(x)), 0);
	cr_assert_eq(ts_codec_decode(&raw, 1, enc, sizeof(enc), 3, 9, TS_F32, y, 9), 0);
	cr_assert_eq(memcmp(y, x, sizeof(x)), 0);

	/* BF16 and F16 raw stores keep every bit pattern, NaN included */
	uint16_t h[16], hy[16];
	for (int i = 0; i < 16; i++)
		h[i] = (uint16_t)(0x1234 * i + 0x7c01 * (i == 3) + 0x7f80 * (i == 4));
	for (int d = TS_BF16; d <= TS_F16; d++) {
		raw.raw_dtype = (ts_dtype)d;
		raw.bits_per_value = 16;
		cr_assert_eq(ts_codec_encode(&raw, 0, h, (ts_dtype)d, 16, 1, 16, enc, 32), 0);
		cr_assert_eq(ts_codec_decode(&raw, 1, enc, 32, 1, 16, (ts_dtype)d, hy, 16), 0);
		cr_assert_eq(memcmp(h, hy, sizeof(h)), 0);
	}
	/* integer tensors are stored raw as they are */
	int32_t iv[5] = {1, -2, 3, INT32_MIN, INT32_MAX}, io[5];
	raw.raw_dtype = TS_I32;
	raw.bits_per_value = 32;
	cr_assert_eq(ts_codec_encode(&raw, 0, iv, TS_I32, 5, 1, 5, enc, 20), 0);
	cr_assert_eq(ts_codec_decode(&raw, 1, enc, 20, 1, 5, TS_I32, io, 5), 0);
	cr_assert_eq(memcmp(iv, io, sizeof(iv)), 0);
	cr_expect_eq(ts_codec_decode(&raw, 1, enc, 20, 1, 5, TS_F32, y, 5), TS_EDTYPE);
}

Test(codec, raw_converts_between_float_types_like_the_golden_vectors)
{
	for (int f = 0; f < GOLDEN_FOLDERS; f++) {
		size_t nx, nb, nh;
		float *x = golden_load(golden_folders[f], "input.f32", &nx);
		uint16_t *bf = golden_load(golden_folders[f], "bf16.u16", &nb);
		uint16_t *hf = golden_load(golden_folders[f], "f16.u16", &nh);
		size_t n = nx / 4;
		uint16_t *out = malloc(n * 2);
		ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
		/* decode an F32 raw payload as BF16 and F16 */
		cr_assert_eq(ts_codec_decode(&raw, 1, x, nx, 1, n, TS_BF16, out, n), 0);
		cr_assert_eq(memcmp(out, bf, nb), 0, "%s: bf16", golden_folders[f]);
		cr_assert_eq(ts_codec_decode(&raw, 1, x, nx, 1, n, TS_F16, out, n), 0);
		cr_assert_eq(memcmp(out, hf, nh), 0, "%s: f16", golden_folders[f]);
		/* store F32 as raw BF16 */
		raw.raw_dtype = TS_BF16;
		raw.bits_per_value = 16;
		cr_assert_eq(ts_codec_encode(&raw, 0, x, TS_F32, n, 1, n, out, n * 2), 0);
		cr_assert_eq(memcmp(out, bf, nb), 0, "%s: stored bf16", golden_folders[f]);
		free(x), free(bf), free(hf), free(out);
	}
}

/* A BF16 source encodes exactly like the F32 tensor holding the same values. */
Test(codec, bf16_and_f16_sources_encode_like_their_f32_values)
{
	size_t nx, nb;
	float *x = golden_load("laplace", "input.f32", &nx);
	uint16_t *bf = golden_load("laplace", "bf16.u16", &nb);
	size_t n = nx / 4;
	float *xb = malloc(n * 4);
	uint16_t *hf = malloc(n * 2);
	for (size_t i = 0; i < n; i++) {
		xb[i] = bits_f32((uint32_t)bf[i] << 16);
		hf[i] = ts_f32_to_f16(x[i]);
	}
	static const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_MXFP4, TS_CODEC_INT8,
					  TS_CODEC_FP8};
	for (int k = 0; k < 4; k++) {
		ts_codec_config cfg = ts_codec_config_default(codecs[k]);
		size_t size = ts_codec_encoded_size(&cfg, 1, n);
		uint8_t *a = malloc(size), *b = malloc(size);
		float amax = amax_of(xb, n);
		cr_assert_eq(ts_codec_encode(&cfg, amax, xb, TS_F32, n, 1, n, a, size), 0);
		cr_assert_eq(ts_codec_encode(&cfg, amax, bf, TS_BF16, n, 1, n, b, size), 0);
		cr_assert_eq(memcmp(a, b, size), 0, "%s from bf16", ts_codec_name(codecs[k]));
		for (size_t i = 0; i < n; i++)
			xb[i] = ts_f16_to_f32(hf[i]);
		amax = amax_of(xb, n);
		cr_assert_eq(ts_codec_encode(&cfg, amax, xb, TS_F32, n, 1, n, a, size), 0);
		cr_assert_eq(ts_codec_encode(&cfg, amax, hf, TS_F16, n, 1, n, b, size), 0);
		cr_assert_eq(memcmp(a, b, size), 0, "%s from f16", ts_codec_name(codecs[k]));
		for (size_t i = 0; i < n; i++)
			xb[i] = bits_f32((uint32_t)bf[i] << 16);
		free(a), free(b);
	}
	free(x), free(bf), free(xb), free(hf);
}

/* Long rows cross the internal chunk size; unaligned sources and destinations still work. */
Test(codec, long_rows_strides_and_unaligned_buffers)
{
	const uint64_t rows = 3, cols = 10000, stride = 10007;
	float *x = malloc(rows * stride * 4);
	for (uint64_t i = 0; i < rows * stride; i++)
		x[i] = sinf((float)i * 0.01f) * 3.0f;
	static const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_MXFP4, TS_CODEC_INT8,
					  TS_CODEC_FP8, TS_CODEC_RAW};
	for (int k = 0; k < 5; k++) {
		ts_codec_config cfg = ts_codec_config_default(codecs[k]);
		size_t size = ts_codec_encoded_size(&cfg, rows, cols);
		uint8_t *a = malloc(size), *b = malloc(size + 1);
		float amax = 3.0f, g = ts_codec_tensor_scale(&cfg, amax);
		cr_assert_eq(ts_codec_encode(&cfg, amax, x, TS_F32, stride, rows, cols, a, size), 0);
		/* the same rows one at a time give the same bytes (rows are independent) */
		uint8_t *one = malloc(size);
		size_t per_row = size / rows;
		for (uint64_t r = 0; r < rows; r++) {
			cr_assert_eq(ts_codec_encode(&cfg, amax, x + r * stride, TS_F32, cols, 1,
						     cols, one, per_row),
				     0);
			size_t code_row = ts_codec_encoded_size(&cfg, 1, cols) -
					  (codecs[k] == TS_CODEC_NVFP4 ? (cols + 15) / 16
					   : codecs[k] == TS_CODEC_MXFP4 ? (cols + 31) / 32
					   : codecs[k] == TS_CODEC_INT8 ? (cols + 31) / 32 * 4
									 : 0);
			cr_assert_eq(memcmp(a + r * code_row, one, code_row), 0, "%s row %llu",
				     ts_codec_name(codecs[k]), (unsigned long long)r);
		}
		free(one);
		/* an unaligned source (a copy at an odd address) encodes identically */
		uint8_t *u = malloc(rows * stride * 4 + 1);
		memcpy(u + 1, x, rows * stride * 4);
		cr_assert_eq(ts_codec_encode(&cfg, amax, u + 1, TS_F32, stride, rows, cols, b, size), 0);
		cr_assert_eq(memcmp(a, b, size), 0, "%s unaligned source", ts_codec_name(codecs[k]));
		/* decode to aligned and unaligned destinations, with a stride */
		float *y = malloc(rows * stride * 4);
		uint8_t *yu = malloc(rows * stride * 4 + 1);
		cr_assert_eq(ts_codec_decode(&cfg, g, a, size, rows, cols, TS_F32, y, stride), 0);
		cr_assert_eq(ts_codec_decode(&cfg, g, a, size, rows, cols, TS_F32, yu + 1, stride), 0);
		for (uint64_t r = 0; r < rows; r++) {
			cr_assert_eq(memcmp(y + r * stride, yu + 1 + r * stride * 4, cols * 4), 0);
			for (uint64_t c = 0; c < cols; c += 997)
				cr_assert_leq(fabsf(y[r * stride + c] - x[r * stride + c]), 0.5f,
					      "%s", ts_codec_name(codecs[k]));
		}
		memcpy(b + 1, a, size); /* an unaligned payload decodes the same */
		cr_assert_eq(ts_codec_decode(&cfg, g, b + 1, size, rows, cols, TS_F32, yu + 1, stride), 0);
		for (uint64_t r = 0; r < rows; r++)
			cr_assert_eq(memcmp(y + r * stride, yu + 1 + r * stride * 4, cols * 4), 0);
		free(a), free(b), free(u), free(y), free(yu);
	}
	free(x);
}

/* A rectangle of a page decodes to exactly the bytes of the whole page's decode there, for every
 * codec and output type, with block edges cut anywhere, and writes nothing outside it. */
Test(codec, a_rectangle_decodes_to_the_whole_pages_bytes)
{
	const uint64_t rows = 9, cols = 100; /* 100: a padded last block for every block codec */
	static const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_MXFP4, TS_CODEC_INT8,
					  TS_CODEC_INT8, TS_CODEC_FP8, TS_CODEC_RAW};
	static const ts_dtype outs[] = {TS_F32, TS_BF16, TS_F16};
	static const uint64_t rects[][4] = {{0, 9, 0, 100}, {0, 1, 0, 16}, {2, 3, 5, 20},
					     {8, 1, 99, 1}, {1, 7, 16, 64}, {0, 9, 33, 67},
					     {4, 2, 3, 4},  {3, 6, 0, 97},  {0, 9, 96, 4}};
	float x[9 * 100];
	for (size_t i = 0; i < rows * cols; i++)
		x[i] = sinf((float)i * 0.37f) * (float)(i % 13 + 1);
	for (int k = 0; k < 6; k++) {
		ts_codec_config cfg = ts_codec_config_default(codecs[k]);
		if (k == 3)
			cfg.symmetric = 0;
		size_t size = ts_codec_encoded_size(&cfg, rows, cols);
		uint8_t *enc = malloc(size);
		float g = ts_codec_tensor_scale(&cfg, 13.0f);
		cr_assert_eq(ts_codec_encode(&cfg, 13.0f, x, TS_F32, cols, rows, cols, enc, size), 0);
		for (int o = 0; o < 3; o++) {
			size_t es = ts_dtype_size(outs[o]);
			uint8_t whole[9 * 100 * 4], part[9 * 110 * 4 + 8];
			cr_assert_eq(ts_codec_decode(&cfg, g, enc, size, rows, cols, outs[o], whole,
						     cols), 0);
			for (size_t q = 0; q < sizeof(rects) / sizeof(rects[0]); q++) {
				const uint64_t *rc = rects[q];
				uint64_t stride = rc[3] + 3;
				for (int mis = 0; mis < 2; mis++) { /* aligned and unaligned */
					uint8_t *d = part + mis * es;
					memset(part, 0xa5, sizeof(part));
					cr_assert_eq(ts__codec_decode_rect(&cfg, g, enc, size, rows,
									   cols, rc[0], rc[1], rc[2],
									   rc[3], outs[o], d, stride),
						     0, "%s: %s", ts_codec_name(codecs[k]),
						     ts_error_last());
					for (uint64_t r = 0; r < rc[1]; r++) {
						cr_assert_eq(memcmp(d + r * stride * es,
								    whole + ((rc[0] + r) * cols +
									     rc[2]) * es,
								    rc[3] * es),
							     0, "%s to %s, rows %llu+%llu cols %llu+%llu",
							     ts_codec_name(codecs[k]),
							     ts_dtype_name(outs[o]),
							     (unsigned long long)rc[0],
							     (unsigned long long)rc[1],
							     (unsigned long long)rc[2],
							     (unsigned long long)rc[3]);
						/* the gap between rows stays untouched */
						for (uint64_t b = rc[3] * es; b < stride * es &&
									      r + 1 < rc[1]; b++)
							cr_assert_eq(d[r * stride * es + b], 0xa5);
					}
					for (size_t b = ((rc[1] - 1) * stride + rc[3]) * es;
					     b < sizeof(part) - mis * es; b++)
						cr_assert_eq(d[b], 0xa5, "%s: written past the end",
							     ts_codec_name(codecs[k]));
				}
			}
		}
		/* a rectangle that leaves the page is refused */
		uint8_t out[64];
		cr_assert_eq(ts__codec_decode_rect(&cfg, g, enc, size, rows, cols, 8, 2, 0, 4, TS_F32,
						   out, 4),
			     TS_EINVAL);
		free(enc);
	}
}

Test(codec, kernel_name_is_reported)
{
	const char *k = ts_kernel_name();
	cr_expect(strcmp(k, "scalar") == 0 || strcmp(k, "avx2") == 0, "%s", k);
	const char *env = getenv("TSTORE_KERNEL");
	if (env && strcmp(env, "scalar") == 0)
		cr_expect_str_eq(k, "scalar");
}

Test(codec, tensor_scales)
{
	ts_codec_config nv = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_codec_config f8 = ts_codec_config_default(TS_CODEC_FP8);
	ts_codec_config mx = ts_codec_config_default(TS_CODEC_MXFP4);
	cr_expect_eq(ts_codec_tensor_scale(&nv, 2688.0f), 1.0f);
	cr_expect_eq(ts_codec_tensor_scale(&f8, 448.0f), 1.0f);
	cr_expect_eq(ts_codec_tensor_scale(&f8, 0.0f), 1.0f);
	cr_expect_eq(ts_codec_tensor_scale(&mx, 5.0f), 1.0f);
}

/* Every lossy codec refuses NaN and Inf from every source dtype, naming row and column. */
Test(codec, lossy_codecs_reject_nonfinite_sources)
{
	static const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_MXFP4, TS_CODEC_INT8,
					  TS_CODEC_FP8};
	static const float bad[] = {NAN, INFINITY, -INFINITY};
	const uint64_t rows = 3, cols = 37;
	float x[3 * 37];
	uint16_t h[3 * 37];
	uint8_t enc[4096];
	for (int k = 0; k < 4; k++) {
		for (int v = 0; v < 3; v++) {
			for (int d = TS_F32; d <= TS_F16; d++) {
				for (uint64_t i = 0; i < rows * cols; i++)
					x[i] = (float)i * 0.25f - 3.0f;
				x[2 * cols + 35] = bad[v];
				for (uint64_t i = 0; i < rows * cols; i++)
					h[i] = d == TS_BF16 ? ts_f32_to_bf16(x[i]) : ts_f32_to_f16(x[i]);
				ts_codec_config cfg = ts_codec_config_default(codecs[k]);
				int rc = ts_codec_encode(&cfg, 30.0f, d == TS_F32 ? (void *)x : (void *)h,
							 (ts_dtype)d, cols, rows, cols, enc, sizeof(enc));
				cr_expect_eq(rc, TS_ENONFINITE, "%s from %s", ts_codec_name(codecs[k]),
					     ts_dtype_name((ts_dtype)d));
				cr_expect(strstr(ts_error_last(), "row 2, column 35"), "%s",
					  ts_error_last());
				cr_expect(strstr(ts_error_last(), isnan(bad[v]) ? "NaN" : "Inf"), "%s",
					  ts_error_last());
			}
		}
	}
}

/* Decoding writes nothing outside the cols real elements of each row, for every output type. */
Test(codec, decode_writes_only_the_real_elements)
{
	static const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_MXFP4, TS_CODEC_INT8,
					  TS_CODEC_FP8, TS_CODEC_RAW};
	static const uint64_t lens[] = {1, 15, 17, 33};
	for (int k = 0; k < 5; k++) {
		for (int l = 0; l < 4; l++) {
			uint64_t rows = 4, cols = lens[l], stride = cols + 3;
			float x[4 * 36];
			for (uint64_t i = 0; i < rows * stride; i++)
				x[i] = cosf((float)i * 1.3f);
			ts_codec_config cfg = ts_codec_config_default(codecs[k]);
			uint8_t enc[1024];
			size_t size = ts_codec_encoded_size(&cfg, rows, cols);
			cr_assert_eq(ts_codec_encode(&cfg, 1.0f, x, TS_F32, stride, rows, cols, enc,
						     size),
				     0);
			float g = ts_codec_tensor_scale(&cfg, 1.0f);
			for (int d = TS_F32; d <= TS_F16; d++) {
				uint8_t out[4 * 36 * 4 + 64];
				memset(out, 0xA5, sizeof(out));
				size_t es = ts_dtype_size((ts_dtype)d);
				cr_assert_eq(ts_codec_decode(&cfg, g, enc, size, rows, cols, (ts_dtype)d,
							     out, stride),
					     0, "%s", ts_error_last());
				for (uint64_t r = 0; r < rows; r++)
					for (uint64_t b = cols * es; b < stride * es; b++)
						cr_assert_eq(out[r * stride * es + b], 0xA5,
							     "%s to %s, cols %llu: byte past row %llu",
							     ts_codec_name(codecs[k]),
							     ts_dtype_name((ts_dtype)d),
							     (unsigned long long)cols,
							     (unsigned long long)r);
				for (size_t b = rows * stride * es; b < sizeof(out); b++)
					cr_assert_eq(out[b], 0xA5);
			}
		}
	}
}

static uint32_t rng_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* The definition of each codec's decode (docs/CODECS.md), element c of row r, in the test's
 * own arithmetic. */
static float reference_decode(const ts_codec_config *cfg, float ts, const uint8_t *p,
			      uint64_t rows, uint64_t cols, uint64_t r, uint64_t c)
{
	uint64_t bs = (uint64_t)cfg->block_size, nb = (cols + bs - 1) / bs;
	switch (cfg->codec) {
	case TS_CODEC_NVFP4: {
		const uint8_t *code = p + r * nb * 8, *sc = p + rows * nb * 8 + r * nb;
		unsigned q = (code[c / 2] >> (4 * (c & 1))) & 15;
		return (float)(ref_e2m1(q) * ref_e4m3(sc[c / 16])) * ts;
	}
	case TS_CODEC_MXFP4: {
		const uint8_t *code = p + r * nb * 16, *sc = p + rows * nb * 16 + r * nb;
		unsigned q = (code[c / 2] >> (4 * (c & 1))) & 15;
		return sc[c / 32] == 255 ? NAN : (float)ldexp(ref_e2m1(q), (int)sc[c / 32] - 127);
	}
	case TS_CODEC_FP8:
		return (float)ref_e4m3(p[r * cols + c]) * ts;
	case TS_CODEC_INT8: {
		uint64_t rec = cfg->symmetric ? 4 : 5;
		const uint8_t *code = p + r * nb * bs;
		const uint8_t *sc = p + rows * nb * bs + r * nb * rec + c / bs * rec;
		float s = bits_f32((uint32_t)sc[0] | (uint32_t)sc[1] << 8 | (uint32_t)sc[2] << 16 |
				   (uint32_t)sc[3] << 24);
		if (cfg->symmetric)
			return (float)(int8_t)code[c] * s;
		return (float)((int)code[c] - (int)sc[4]) * s;
	}
	default:
		return 0;
	}
}

/* Arbitrary payload bytes (what a damaged page could hold) decode exactly as defined, to every
 * output type, and never crash: the decoders have no data-dependent control flow to exploit. */
Test(codec, random_payloads_decode_as_defined)
{
	uint32_t seed = 0x2545f491u;
	cr_log_info("seed 0x%08x", seed);
	static const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_MXFP4, TS_CODEC_INT8,
					  TS_CODEC_INT8, TS_CODEC_FP8};
	for (int k = 0; k < 5; k++) {
		ts_codec_config cfg = ts_codec_config_default(codecs[k]);
		if (k == 3)
			cfg.symmetric = 0;
		const uint64_t rows = 5, cols = 77;
		size_t size = ts_codec_encoded_size(&cfg, rows, cols);
		uint8_t *p = malloc(size);
		for (int trial = 0; trial < 20; trial++) {
			for (size_t i = 0; i < size; i++)
				p[i] = (uint8_t)rng_next(&seed);
			if (codecs[k] == TS_CODEC_INT8) /* keep scales finite; NaN scales are tested by nvfp4 */
				for (uint64_t r = 0; r < rows * 3; r++)
					p[rows * 3 * 32 + r * (k == 3 ? 5 : 4) + 3] &= 0x3f;
			float ts = 0.37f * (float)(trial + 1);
			float y[5 * 77];
			uint16_t h[5 * 77];
			cr_assert_eq(ts_codec_decode(&cfg, ts, p, size, rows, cols, TS_F32, y, cols), 0);
			for (uint64_t r = 0; r < rows; r++)
				for (uint64_t c = 0; c < cols; c++) {
					float want = reference_decode(&cfg, ts, p, rows, cols, r, c);
					float got = y[r * cols + c];
					if (isnan(want))
						cr_assert(isnan(got));
					else
						cr_assert_eq(f32_bits(got), f32_bits(want),
							     "%s r %llu c %llu: %a vs %a",
							     ts_codec_name(cfg.codec), (unsigned long long)r,
							     (unsigned long long)c, (double)got, (double)want);
				}
			for (int d = TS_BF16; d <= TS_F16; d++) {
				cr_assert_eq(ts_codec_decode(&cfg, ts, p, size, rows, cols, (ts_dtype)d,
							     h, cols),
					     0);
				for (uint64_t i = 0; i < rows * cols; i++) {
					if (isnan(y[i]))
						continue;
					uint16_t want = d == TS_BF16 ? ts_f32_to_bf16(y[i])
								     : ts_f32_to_f16(y[i]);
					cr_assert_eq(h[i], want, "%s to %s element %llu",
						     ts_codec_name(cfg.codec), ts_dtype_name((ts_dtype)d),
						     (unsigned long long)i);
				}
			}
		}
		free(p);
	}
}
