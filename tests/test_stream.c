/*
 * Tests of the streaming encoder: chunked output equals the one-shot ts_codec_encode() byte for
 * byte for every codec, whatever the chunking (1-element chunks, random sizes, odd row lengths,
 * rows longer than the stream's scratch); memory is fixed and rows leave as they are complete;
 * errors are reported with their place.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/stream.h"
#include "tests/gen.h"
#include "tstore.h"

typedef struct collected {
	unsigned char *codes, *scales;
	size_t ncodes, nscales, cap;
	uint64_t next_row;
	uint64_t calls;
	int fail_at_call; /* return -fail_code at this call (1-based); 0 never */
	int fail_code;
} collected;

static int collect(void *ud, const void *codes, size_t codes_size, const void *scales,
		   size_t scales_size, uint64_t first_row, uint64_t row_count)
{
	collected *c = ud;
	c->calls++;
	if (c->fail_at_call && (int)c->calls == c->fail_at_call)
		return c->fail_code;
	cr_assert_eq(first_row, c->next_row, "rows arrive out of order");
	cr_assert_gt(row_count, 0);
	c->next_row += row_count;
	cr_assert_leq(c->ncodes + codes_size, c->cap);
	cr_assert_leq(c->nscales + scales_size, c->cap);
	memcpy(c->codes + c->ncodes, codes, codes_size);
	memcpy(c->scales + c->nscales, scales, scales_size);
	c->ncodes += codes_size;
	c->nscales += scales_size;
	return 0;
}

static int count_rows(void *ud, const void *codes, size_t codes_size, const void *scales,
		      size_t scales_size, uint64_t first_row, uint64_t row_count);

static void collected_init(collected *c, size_t cap)
{
	memset(c, 0, sizeof(*c));
	c->cap = cap;
	c->codes = malloc(cap + 1);
	c->scales = malloc(cap + 1);
	cr_assert(c->codes && c->scales);
}

static void collected_free(collected *c)
{
	free(c->codes);
	free(c->scales);
}

static float amax_f32(const float *x, uint64_t n)
{
	float a = 0;
	for (uint64_t i = 0; i < n; i++)
		a = fabsf(x[i]) > a ? fabsf(x[i]) : a;
	return a;
}

/* Chunk sizes: 0 = one element at a time, 1 = random 1..3*cols, 2 = the whole tensor,
 * 3 = random 1..7 elements, 4 = random up to 100000. */
static void run_stream_case(const ts_codec_config *cfg, ts_dtype dtype, const void *src,
			    uint64_t rows, uint64_t cols, float amax, int mode, uint64_t *seed)
{
	size_t es = ts_dtype_size(dtype), total = rows * cols * es;
	size_t one = ts_codec_encoded_size(cfg, rows, cols);
	unsigned char *ref = malloc(one + 1);
	cr_assert(ref && one > 0);
	cr_assert_eq(ts_codec_encode(cfg, amax, src, dtype, cols, rows, cols, ref, one), 0, "%s",
		     ts_error_last());

	collected c;
	collected_init(&c, one);
	ts_stream *s;
	cr_assert_eq(ts_stream_new(&s, cfg, amax, dtype, rows, cols, collect, &c), 0, "%s",
		     ts_error_last());
	const unsigned char *p = src;
	size_t off = 0;
	while (off < total) {
		uint64_t n;
		switch (mode) {
		case 0: n = 1; break;
		case 1: n = 1 + gen_next(seed) % (3 * cols); break;
		case 2: n = rows * cols; break;
		case 3: n = 1 + gen_next(seed) % 7; break;
		default: n = 1 + gen_next(seed) % 100000; break;
		}
		size_t b = n * es;
		if (b > total - off)
			b = total - off;
		cr_assert_eq(ts_stream_process(s, p + off, b), 0, "%s", ts_error_last());
		off += b;
	}
	ts_compression_stats st;
	cr_assert_eq(ts_stream_finish(&st, s), 0, "%s", ts_error_last());
	ts_stream_free(s);

	cr_assert_eq(c.next_row, rows);
	cr_assert_eq(c.ncodes + c.nscales, one, "%s %llux%llu mode %d: %zu + %zu bytes, want %zu",
		     ts_codec_name(cfg->codec), (unsigned long long)rows, (unsigned long long)cols,
		     mode, c.ncodes, c.nscales, one);
	cr_assert_eq(memcmp(c.codes, ref, c.ncodes), 0, "%s %llux%llu mode %d: codes differ",
		     ts_codec_name(cfg->codec), (unsigned long long)rows, (unsigned long long)cols,
		     mode);
	cr_assert_eq(memcmp(c.scales, ref + c.ncodes, c.nscales), 0,
		     "%s %llux%llu mode %d: scales differ", ts_codec_name(cfg->codec),
		     (unsigned long long)rows, (unsigned long long)cols, mode);
	cr_expect_eq(st.original_bytes, total);
	cr_expect_eq(st.compressed_bytes, one);
	collected_free(&c);
	free(ref);
}

static int configs(ts_codec_config *c)
{
	int n = 0;
	c[n] = ts_codec_config_default(TS_CODEC_NVFP4);
	c[n++].recipe = TS_RECIPE_NVIDIA;
	c[n] = ts_codec_config_default(TS_CODEC_NVFP4);
	c[n++].recipe = TS_RECIPE_BEST;
	c[n++] = ts_codec_config_default(TS_CODEC_MXFP4);
	static const int bs[] = {16, 32, 64, 4096};
	for (int sym = 0; sym < 2; sym++) {
		for (int i = 0; i < 4; i++) {
			c[n] = ts_codec_config_default(TS_CODEC_INT8);
			c[n].block_size = bs[i];
			c[n++].symmetric = sym;
		}
	}
	c[n++] = ts_codec_config_default(TS_CODEC_FP8);
	return n;
}

Test(stream, chunked_output_equals_one_shot_for_every_codec)
{
	static const uint64_t shapes[][2] = {{1, 1}, {3, 15}, {5, 17}, {4, 33}, {7, 100},
					     {2, 4099}, {300, 16}, {1, 70001}};
	ts_codec_config cfg[16];
	int nc = configs(cfg);
	uint64_t seed = 0x57AE;
	printf("stream test seed %llu\n", (unsigned long long)seed);

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		uint64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
		float *x = malloc(n * sizeof(float));
		uint16_t *b = malloc(n * sizeof(uint16_t));
		cr_assert(x && b);
		gen_fill(x, rows, cols, s % 2 ? GEN_ROWSCALED : GEN_STUDENT3, s);
		for (uint64_t i = 0; i < n; i++)
			b[i] = ts_f32_to_bf16(x[i]);
		float amax = amax_f32(x, n);
		float bamax = 0;
		for (uint64_t i = 0; i < n; i++)
			bamax = fmaxf(bamax, fabsf(ts_bf16_to_f32(b[i])));
		for (int i = 0; i < nc; i++) {
			int modes[] = {n <= 5000 ? 0 : 3, 1, 2, 4};
			for (int m = 0; m < 4; m++)
				run_stream_case(&cfg[i], TS_F32, x, rows, cols, amax, modes[m], &seed);
			run_stream_case(&cfg[i], TS_BF16, b, rows, cols, bamax, 1, &seed);
		}
		free(x);
		free(b);
	}
}

Test(stream, raw_streams_are_the_source_bytes)
{
	static const ts_dtype dts[] = {TS_F32, TS_BF16, TS_F16, TS_I8, TS_I64};
	uint64_t seed = 99;
	for (size_t d = 0; d < sizeof(dts) / sizeof(dts[0]); d++) {
		uint64_t rows = 9, cols = 37;
		size_t es = ts_dtype_size(dts[d]);
		unsigned char *src = malloc(rows * cols * es);
		for (size_t i = 0; i < rows * cols * es; i++)
			src[i] = (unsigned char)gen_next(&seed);
		if (dts[d] == TS_F32) /* keep the F32 data finite */
			for (size_t i = 0; i < rows * cols; i++)
				((float *)(void *)src)[i] = (float)i - 100.5f;
		ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
		cfg.raw_dtype = dts[d];
		cfg.bits_per_value = (int)(es * 8);
		if (ts_codec_config_check(&cfg) != 0)
			cr_assert_fail("raw %s rejected: %s", ts_dtype_name(dts[d]), ts_error_last());
		run_stream_case(&cfg, dts[d], src, rows, cols, 0, 3, &seed);
		run_stream_case(&cfg, dts[d], src, rows, cols, 0, 1, &seed);
		free(src);
	}
}

Test(stream, raw_narrowing_streams_equal_one_shot_and_measure_rounding)
{
	enum { R = 13, C = 29 };
	static float x[R * C];
	uint64_t seed = 4;
	gen_fill(x, R, C, GEN_NORMAL, 12);
	for (int d = 0; d < 2; d++) {
		ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
		cfg.raw_dtype = d ? TS_F16 : TS_BF16;
		cfg.bits_per_value = 16;
		run_stream_case(&cfg, TS_F32, x, R, C, 0, 3, &seed);
		run_stream_case(&cfg, TS_F32, x, R, C, 0, 2, &seed);

		/* the reported error is the rounding's, computed here independently */
		long double e2 = 0, x2 = 0;
		for (int i = 0; i < R * C; i++) {
			float y = d ? ts_f16_to_f32(ts_f32_to_f16(x[i]))
				    : ts_bf16_to_f32(ts_f32_to_bf16(x[i]));
			e2 += ((long double)x[i] - y) * ((long double)x[i] - y);
			x2 += (long double)x[i] * x[i];
		}
		uint64_t got = 0;
		ts_stream *s;
		ts_compression_stats st;
		cr_assert_eq(ts_stream_new(&s, &cfg, 0, TS_F32, R, C, count_rows, &got), 0);
		cr_assert_eq(ts_stream_process(s, x, sizeof(x)), 0);
		cr_assert_eq(ts_stream_finish(&st, s), 0);
		double want = (double)(100.0L * sqrtl(e2 / x2));
		cr_expect(want > 0 && fabs(st.rel_rms_pct - want) <= 1e-9 * want, "%g vs %g",
			  st.rel_rms_pct, want);
		ts_stream_free(s);
	}
}

static int count_rows(void *ud, const void *codes, size_t codes_size, const void *scales,
		      size_t scales_size, uint64_t first_row, uint64_t row_count)
{
	(void)codes, (void)codes_size, (void)scales, (void)scales_size, (void)first_row;
	*(uint64_t *)ud += row_count;
	return 0;
}

Test(stream, memory_is_fixed_and_rows_leave_as_they_complete)
{
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_stream *small, *big;
	uint64_t got = 0, dummy = 0;
	enum { C = 256 };
	const uint64_t R = 8192;

	cr_assert_eq(ts_stream_new(&small, &cfg, 4.0f, TS_F32, 10, C, count_rows, &dummy), 0);
	cr_assert_eq(ts_stream_new(&big, &cfg, 4.0f, TS_F32, 1ull << 40, C, count_rows, &dummy),
		     0, "%s", ts_error_last());
	size_t fp_small = ts__stream_footprint(small), fp_big = ts__stream_footprint(big);
	cr_expect_leq(fp_big, 1u << 20, "a 2^40-row stream takes %zu bytes", fp_big);
	cr_expect_leq(fp_small, fp_big);
	ts_stream_free(small);
	ts_stream_free(big);

	/* rows leave while the tensor is still being fed */
	static float row[C];
	uint64_t seed = 3;
	for (int i = 0; i < C; i++)
		row[i] = (float)(2.0 * gen_unit(&seed) - 1.0);
	ts_stream *s;
	cr_assert_eq(ts_stream_new(&s, &cfg, 1.0f, TS_F32, R, C, count_rows, &got), 0);
	for (uint64_t r = 0; r < R; r++) {
		cr_assert_eq(ts_stream_process(s, row, sizeof(row)), 0, "%s", ts_error_last());
		/* at most one batch (64K elements) is held back */
		cr_assert_geq(got + 65536 / C, r + 1, "row %llu: only %llu rows delivered",
			      (unsigned long long)r, (unsigned long long)got);
	}
	cr_assert_eq(ts_stream_finish(NULL, s), 0);
	cr_expect_eq(got, R);
	ts_stream_free(s);
}

Test(stream, statistics_match_the_one_shot_error)
{
	enum { R = 40, C = 96 };
	static float x[R * C], y[R * C];
	gen_fill(x, R, C, GEN_LAPLACE, 8);
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	float amax = amax_f32(x, R * C);
	size_t es = ts_codec_encoded_size(&cfg, R, C);
	unsigned char *enc = malloc(es);
	cr_assert_eq(ts_codec_encode(&cfg, amax, x, TS_F32, C, R, C, enc, es), 0);
	cr_assert_eq(ts_codec_decode(&cfg, ts_codec_tensor_scale(&cfg, amax), enc, es, R, C, TS_F32,
				     y, C),
		     0);
	long double e2 = 0, x2 = 0, sum = 0;
	double emax = 0;
	for (int i = 0; i < R * C; i++) {
		long double e = (long double)x[i] - y[i];
		e2 += e * e;
		x2 += (long double)x[i] * x[i];
		sum += x[i];
		emax = fmax(emax, fabs((double)e));
	}
	collected c;
	collected_init(&c, es);
	ts_stream *s;
	cr_assert_eq(ts_stream_new(&s, &cfg, amax, TS_F32, R, C, collect, &c), 0);
	for (int i = 0; i < R * C; i += 50)
		cr_assert_eq(ts_stream_process(s, x + i, (R * C - i < 50 ? R * C - i : 50) * 4), 0);
	ts_compression_stats st;
	ts_distribution_stats d;
	cr_assert_eq(ts_stream_finish(&st, s), 0);
	ts_stream_dist(&d, s);
	double want = (double)(100.0L * sqrtl(e2 / x2));
	cr_expect(fabs(st.rel_rms_pct - want) <= 1e-9 * want, "%g vs %g", st.rel_rms_pct, want);
	cr_expect_eq(st.max_error, emax);
	cr_expect_eq(st.blocks_processed, R * ((C + 15) / 16));
	cr_expect_eq(d.count, R * C);
	cr_expect(fabs(d.mean - (double)(sum / (R * C))) <= 1e-12);
	ts_stream_free(s);
	collected_free(&c);
	free(enc);
}

Test(stream, non_finite_input_is_reported_with_its_place)
{
	enum { R = 6, C = 40 };
	static float x[R * C];
	gen_fill(x, R, C, GEN_NORMAL, 2);
	x[4 * C + 21] = NAN;
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_MXFP4);
	uint64_t got = 0;
	ts_stream *s;
	cr_assert_eq(ts_stream_new(&s, &cfg, 0, TS_F32, R, C, count_rows, &got), 0);
	cr_expect_eq(ts_stream_process(s, x, sizeof(x)), TS_ENONFINITE);
	cr_expect(strstr(ts_error_last(), "row 4 column 21") != NULL, "%s", ts_error_last());
	/* poisoned */
	cr_expect_eq(ts_stream_process(s, x, 4), TS_ENONFINITE);
	cr_expect_eq(ts_stream_finish(NULL, s), TS_ENONFINITE);
	ts_stream_free(s);
}

Test(stream, misuse_is_rejected_with_a_clear_code)
{
	ts_codec_config nv = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	uint64_t got = 0;
	float x[64] = {0};
	ts_stream *s;

	cr_expect_eq(ts_stream_new(&s, &nv, NAN, TS_F32, 2, 32, count_rows, &got), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "amax") != NULL);
	cr_expect_eq(ts_stream_new(&s, &nv, 1, TS_I32, 2, 32, count_rows, &got), TS_EDTYPE);
	raw.raw_dtype = TS_I32;
	raw.bits_per_value = 32;
	cr_expect_eq(ts_stream_new(&s, &raw, 0, TS_F32, 2, 32, count_rows, &got), TS_EDTYPE);
	cr_expect_eq(ts_stream_new(&s, &nv, 1, TS_F32, 0, 32, count_rows, &got), TS_EINVAL);
	cr_expect_eq(ts_stream_new(&s, &nv, 1, TS_F32, 2, 32, NULL, &got), TS_EINVAL);

	cr_assert_eq(ts_stream_new(&s, &nv, 1, TS_F32, 2, 32, count_rows, &got), 0);
	cr_expect_eq(ts_stream_process(s, x, 6), TS_EINVAL); /* 1.5 elements */
	cr_expect_eq(ts_stream_process(s, x, 40 * 4), 0);
	cr_expect_eq(ts_stream_process(s, x, 40 * 4), TS_ERANGE); /* 80 > 64 */
	cr_expect_eq(ts_stream_finish(NULL, s), TS_EINVAL);         /* 40 of 64 */
	cr_expect(strstr(ts_error_last(), "40 of 64") != NULL, "%s", ts_error_last());
	ts_stream_free(s);

	/* data above the given amax */
	x[10] = 3;
	cr_assert_eq(ts_stream_new(&s, &nv, 1, TS_F32, 2, 32, count_rows, &got), 0);
	cr_expect_eq(ts_stream_process(s, x, sizeof(x)), 0);
	cr_expect_eq(ts_stream_finish(NULL, s), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "amax") != NULL, "%s", ts_error_last());
	ts_stream_free(s);
	ts_stream_free(NULL);
}

Test(stream, a_failing_sink_stops_the_stream)
{
	enum { R = 5000, C = 32 };
	static float x[R * C];
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_MXFP4);
	collected c;
	collected_init(&c, ts_codec_encoded_size(&cfg, R, C));
	c.fail_at_call = 2;
	c.fail_code = TS_ENOSPC;
	ts_stream *s;
	cr_assert_eq(ts_stream_new(&s, &cfg, 0, TS_F32, R, C, collect, &c), 0);
	cr_expect_eq(ts_stream_process(s, x, sizeof(x)), TS_ENOSPC);
	cr_expect(strstr(ts_error_last(), "sink") != NULL, "%s", ts_error_last());
	cr_expect_eq(ts_stream_finish(NULL, s), TS_ENOSPC);
	ts_stream_free(s);
	collected_free(&c);
}
