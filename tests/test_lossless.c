/*
 * The lossless codec (codec/lossless.c): golden payloads built by the zstd command-line tool
 * (tests/golden/lossless/make.py), bit-exact round trips of BF16, F16 and F32 with every
 * exponent, NaN payloads, signed zeros, subnormals and infinities, constant and incompressible
 * data, decoding to other dtypes and strides, damaged payloads, the AVX2 plane joins against the
 * scalar reference, and a store: slices, export-equal reads and a damaged page.
 */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/kernels.h"
#include "codec/lossless.h"
#include "storetest.h"
#include "tstore.h"

static ts_codec_config cfg_of(ts_dtype dt)
{
	ts_codec_config c = ts_codec_config_default(TS_CODEC_LOSSLESS);
	c.raw_dtype = dt;
	c.bits_per_value = (int)(8 * ts_dtype_size(dt));
	return c;
}

static uint8_t *slurp(const char *name, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/golden/lossless/%s", TS_SRCDIR, name);
	uint8_t *b = st_read_file(path, len);
	cr_assert_not_null(b, "cannot read %s", path);
	return b;
}

/* Encode rows x cols of @p x, check the size rules, decode to the same dtype, compare bits. */
static size_t round_trip(ts_dtype dt, const void *x, uint64_t rows, uint64_t cols)
{
	ts_codec_config c = cfg_of(dt);
	size_t es = ts_dtype_size(dt), n = (size_t)(rows * cols);
	size_t bound = ts_codec_encoded_size(&c, rows, cols), len = 0;
	uint8_t *enc = malloc(bound), *y = malloc(n * es + 1);

	cr_assert_eq(bound, 1 + n * es);
	cr_assert_eq(ts_codec_encode_len(&len, &c, 0, x, dt, cols, rows, cols, enc, bound), 0, "%s",
		     ts_error_last());
	cr_assert(len > 0 && len <= bound, "%zu of %zu", len, bound);
	cr_assert_eq(ts__lossless_payload_size(enc, len, dt, n), len);
	cr_assert_eq(ts_codec_decode(&c, 1.0f, enc, len, rows, cols, dt, y, cols), 0, "%s",
		     ts_error_last());
	cr_assert_eq(memcmp(x, y, n * es), 0, "%s: decoded bits differ", ts_dtype_name(dt));
	free(enc);
	free(y);
	return len;
}

Test(lossless, golden_payloads_from_the_zstd_tool_decode_bit_exact)
{
	static const struct {
		const char *name;
		ts_dtype dt;
	} g[] = {{"bf16", TS_BF16}, {"f16", TS_F16}, {"f32", TS_F32}};
	for (size_t k = 0; k < 3; k++) {
		char a[64], b[64];
		size_t plen, elen;
		snprintf(a, sizeof a, "%s.payload", g[k].name);
		snprintf(b, sizeof b, "%s.elements", g[k].name);
		uint8_t *p = slurp(a, &plen), *e = slurp(b, &elen), *y = malloc(elen);
		ts_codec_config c = cfg_of(g[k].dt);
		cr_assert_eq(elen, 96 * ts_dtype_size(g[k].dt));
		cr_assert_eq(ts_codec_decode(&c, 1.0f, p, plen, 3, 32, g[k].dt, y, 32), 0, "%s: %s",
			     g[k].name, ts_error_last());
		cr_expect_eq(memcmp(y, e, elen), 0, "%s", g[k].name);
		free(p);
		free(e);
		free(y);
	}
}

/* Every exponent with assorted mantissas and both signs, plus NaN payloads, +-0, +-Inf,
 * subnormals: F32 gets 256 exponents x 64, the 16-bit types every one of their 65536 values. */
Test(lossless, every_bit_pattern_class_round_trips_in_bf16_f16_and_f32)
{
	uint16_t *h = malloc(65536 * 2);
	for (uint32_t i = 0; i < 65536; i++)
		h[i] = (uint16_t)(i * 40503u); /* a permutation: every value once, mixed order */
	round_trip(TS_BF16, h, 256, 256);
	round_trip(TS_F16, h, 256, 256);
	round_trip(TS_BF16, h, 1, 65536);
	round_trip(TS_F16, h + 7, 3, 1000); /* odd offset and shape */

	uint64_t s = st_seed("lossless_f32");
	uint32_t *f = malloc(256 * 64 * 4);
	for (uint32_t e = 0; e < 256; e++)
		for (uint32_t j = 0; j < 64; j++) {
			uint32_t m = (uint32_t)st_rand(&s) & 0x7fffff;
			if (j == 0)
				m = 0; /* +-0, +-Inf, powers of two */
			if (j == 1)
				m = 1; /* the smallest subnormal, signalling NaN payload 1 */
			f[e * 64 + j] = (uint32_t)(j & 1) << 31 | e << 23 | m;
		}
	round_trip(TS_F32, f, 128, 128);
	free(f);
	free(h);
}

Test(lossless, weight_like_data_takes_planes_and_compresses)
{
	uint64_t s = st_seed("lossless_weights");
	size_t n = 64 * 1024;
	float *x = malloc(n * 4);
	uint16_t *b = malloc(n * 2);
	st_fill_f32(x, n, &s, 0.02f);
	for (size_t i = 0; i < n; i++)
		b[i] = ts_f32_to_bf16(x[i]);
	size_t len = round_trip(TS_BF16, b, 64, 1024);
	/* exponent of N(0, 0.02): ~2.7 bits of 8, so 16 / (8 + 2.7 + overhead) >= 1.45 */
	cr_expect(len * 145 <= n * 2 * 100, "BF16 ratio %.3f", (double)n * 2 / (double)len);
	len = round_trip(TS_F32, x, 64, 1024);
	cr_expect(len * 115 <= n * 4 * 100, "F32 ratio %.3f", (double)n * 4 / (double)len);
	free(x);
	free(b);
}

Test(lossless, constant_and_incompressible_data)
{
	uint64_t s = st_seed("lossless_random");
	size_t n = 4096;
	uint16_t *c = malloc(n * 2), *r = malloc(n * 2);
	for (size_t i = 0; i < n; i++) {
		c[i] = 0x3f80; /* 1.0 everywhere: the exponent plane is one symbol */
		r[i] = (uint16_t)st_rand(&s);
	}
	size_t len = round_trip(TS_BF16, c, 64, 64);
	cr_expect(len < n + 64, "constant: %zu bytes (the sign+mantissa plane is %zu)", len, n);
	/* random bytes: the exponent plane does not compress, the page is stored, no growth */
	len = round_trip(TS_BF16, r, 64, 64);
	cr_expect_eq(len, 1 + n * 2, "random: %zu bytes", len);
	/* a dtype without planes: stored behind the mode byte */
	ts_codec_config ci = cfg_of(TS_I32);
	uint8_t enc[1 + 40];
	size_t l2 = 0;
	int32_t iv[10] = {1, -2, 3, 4, 5, 6, 7, 8, 9, 10}, out[10];
	cr_assert_eq(ts_codec_encode_len(&l2, &ci, 0, iv, TS_I32, 10, 1, 10, enc, sizeof enc), 0);
	cr_expect_eq(l2, 41);
	cr_expect_eq(enc[0], TS_LOSSLESS_STORED);
	cr_assert_eq(ts_codec_decode(&ci, 1, enc, l2, 1, 10, TS_I32, out, 10), 0);
	cr_expect_eq(memcmp(iv, out, sizeof iv), 0);
	cr_expect_eq(ts_codec_decode(&ci, 1, enc, l2, 1, 10, TS_F32, out, 10), TS_EDTYPE);
	free(c);
	free(r);
}

Test(lossless, decodes_to_other_float_dtypes_and_strided_rows)
{
	uint64_t s = st_seed("lossless_convert");
	uint64_t rows = 5, cols = 777;
	size_t n = rows * cols;
	uint16_t *b = malloc(n * 2);
	float *x = malloc(n * 4);
	st_fill_f32(x, n, &s, 1.0f);
	for (size_t i = 0; i < n; i++)
		b[i] = ts_f32_to_bf16(x[i]);
	ts_codec_config c = cfg_of(TS_BF16);
	size_t bound = ts_codec_encoded_size(&c, rows, cols), len;
	uint8_t *enc = malloc(bound);
	cr_assert_eq(ts_codec_encode_len(&len, &c, 0, b, TS_BF16, cols, rows, cols, enc, bound), 0);
	cr_assert_eq(enc[0], TS_LOSSLESS_PLANES);
	uint64_t stride = cols + 3;
	float *y = calloc(rows * stride + 1, 4);
	cr_assert_eq(ts_codec_decode(&c, 1, enc, len, rows, cols, TS_F32, y + 1, stride), 0);
	for (uint64_t r = 0; r < rows; r++)
		for (uint64_t k = 0; k < cols; k++)
			cr_assert_eq(memcmp(&y[1 + r * stride + k], &(float){ts_bf16_to_f32(b[r * cols + k])},
					    4), 0, "row %llu col %llu", (unsigned long long)r,
				     (unsigned long long)k);
	cr_expect_eq(y[0], 0.0f, "nothing written before the destination");
	free(b);
	free(x);
	free(y);
	free(enc);
}

Test(lossless, damaged_payloads_are_corrupt_never_a_crash)
{
	uint64_t s = st_seed("lossless_damage");
	size_t n = 2048;
	float *x = malloc(n * 4);
	uint16_t *b = malloc(n * 2), *y = malloc(n * 2);
	st_fill_f32(x, n, &s, 0.05f);
	for (size_t i = 0; i < n; i++)
		b[i] = ts_f32_to_bf16(x[i]);
	ts_codec_config c = cfg_of(TS_BF16);
	size_t bound = ts_codec_encoded_size(&c, 32, 64), len;
	uint8_t *enc = malloc(bound), *bad = malloc(bound);
	cr_assert_eq(ts_codec_encode_len(&len, &c, 0, b, TS_BF16, 64, 32, 64, enc, bound), 0);
	cr_assert_eq(enc[0], TS_LOSSLESS_PLANES);
	size_t frame = TS_LOSSLESS_PLANES_HDR + n;

	/* a shorter or longer payload than the header says */
	cr_expect_eq(ts_codec_decode(&c, 1, enc, len - 1, 32, 64, TS_BF16, y, 64), TS_ECORRUPT);
	cr_expect_eq(ts_codec_decode(&c, 1, enc, 3, 32, 64, TS_BF16, y, 64), TS_ECORRUPT);
	memcpy(bad, enc, len);
	bad[0] = 7;
	cr_expect_eq(ts_codec_decode(&c, 1, bad, len, 32, 64, TS_BF16, y, 64), TS_ECORRUPT);
	cr_expect(strstr(ts_error_last(), "mode") != NULL, "%s", ts_error_last());
	/* the same payload read as another shape: the frame's content size disagrees */
	cr_expect_eq(ts_codec_decode(&c, 1, enc, len, 16, 64, TS_BF16, y, 64), TS_ECORRUPT);
	/* every byte of the frame flipped in turn: an error or (a flip zstd cannot see, e.g. in a
	 * Huffman code's payload) other values, never a crash or a read outside the payload */
	for (size_t i = frame; i < len; i++) {
		memcpy(bad, enc, len);
		bad[i] ^= 0x5a;
		int rc = ts_codec_decode(&c, 1, bad, len, 32, 64, TS_BF16, y, 64);
		cr_expect(rc == 0 || rc == TS_ECORRUPT, "byte %zu: rc %d", i, rc);
	}
	/* a truncated frame with a mended length field */
	memcpy(bad, enc, len);
	uint32_t cl = (uint32_t)(len - frame - 3);
	memcpy(bad + 1, &cl, 4);
	cr_expect_eq(ts_codec_decode(&c, 1, bad, len - 3, 32, 64, TS_BF16, y, 64), TS_ECORRUPT);
	free(x);
	free(b);
	free(y);
	free(enc);
	free(bad);
}

Test(lossless, avx2_plane_joins_equal_the_scalar_reference)
{
	const ts__kernels *k = ts__kernels_avx2(), *ks = ts__kernels_scalar();
	if (!k)
		cr_skip_test("no AVX2/FMA/F16C on this CPU (or not compiled in)");
	uint64_t s = st_seed("lossless_avx2");
	uint8_t e[1100], sm[3 * 1100];
	uint32_t a[1100], b[1100];
	for (size_t i = 0; i < sizeof e; i++)
		e[i] = (uint8_t)st_rand(&s);
	for (size_t i = 0; i < sizeof sm; i++)
		sm[i] = (uint8_t)st_rand(&s);
	for (size_t n = 0; n < 1030; n += (n < 70 ? 1 : 37)) {
		for (size_t off = 0; off < 3; off++) {
			memset(a, 0xcc, sizeof a);
			memset(b, 0xcc, sizeof b);
			k->lossless_join16(e + off, sm + off, n, a);
			ks->lossless_join16(e + off, sm + off, n, b);
			cr_assert_eq(memcmp(a, b, sizeof a), 0, "join16 n %zu off %zu", n, off);
			k->lossless_join32(e + off, sm + off, n, a);
			ks->lossless_join32(e + off, sm + off, n, b);
			cr_assert_eq(memcmp(a, b, sizeof a), 0, "join32 n %zu off %zu", n, off);
		}
	}
}

/* -- in a store ----------------------------------------------------------------------------- */

Test(lossless, store_slices_equal_the_source_region)
{
	uint64_t s = st_seed("lossless_store");
	uint64_t shape[2] = {300, 700};
	size_t n = 300 * 700;
	float *x = malloc(n * 4);
	uint16_t *b = malloc(n * 2), *y = malloc(n * 2);
	st_fill_f32(x, n, &s, 0.03f);
	for (size_t i = 0; i < n; i++)
		b[i] = ts_f32_to_bf16(x[i]);
	b[5] = 0x7fc3; /* a NaN payload */
	b[6] = 0x8000;
	b[7] = 0xff80;
	ts_store *st = st_create("lossless.tst", 2);
	ts_codec_config c = cfg_of(TS_BF16);
	ts_write_opts o;
	ts_write_opts_init(&o);
	o.page_bytes = 65520; /* several pages */
	ts_writer *w;
	cr_assert_eq(ts_writer_begin(&w, st, "m.w", TS_BF16, 2, shape, &c, &o), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_writer_append(w, b, n * 2), 0, "%s", ts_error_last());
	ts_tensor_info info;
	cr_assert_eq(ts_writer_commit(&info, w), 0, "%s", ts_error_last());
	cr_expect(info.page_count > 1);
	cr_expect(info.stored_bytes * 14 < n * 2 * 10, "stored %llu of %zu",
		  (unsigned long long)info.stored_bytes, n * 2);
	uint64_t start[2] = {0, 0};
	cr_assert_eq(ts_read_slice(st, "m.w", 2, start, shape, TS_BF16, y, n * 2), 0, "%s",
		     ts_error_last());
	cr_expect_eq(memcmp(y, b, n * 2), 0, "whole tensor");
	uint64_t s2[2] = {17, 333}, c2[2] = {201, 299};
	cr_assert_eq(ts_read_slice(st, "m.w", 2, s2, c2, TS_BF16, y, 201 * 299 * 2), 0);
	for (uint64_t r = 0; r < 201; r++)
		cr_assert_eq(memcmp(y + r * 299, b + (r + 17) * 700 + 333, 299 * 2), 0, "row %llu",
			     (unsigned long long)r);
	ts_store_close(st);
	free(x);
	free(b);
	free(y);
}

Test(lossless, a_damaged_page_is_corruption_naming_the_tensor)
{
	uint64_t s = st_seed("lossless_corrupt");
	uint64_t shape[2] = {64, 512};
	size_t n = 64 * 512;
	float *x = malloc(n * 4);
	uint16_t *b = malloc(n * 2), *y = malloc(n * 2);
	uint8_t *sm = malloc(n);
	st_fill_f32(x, n, &s, 0.03f);
	for (size_t i = 0; i < n; i++) {
		b[i] = ts_f32_to_bf16(x[i]);
		sm[i] = (uint8_t)((b[i] >> 8 & 0x80) | (b[i] & 0x7f)); /* docs/CODECS.md */
	}
	ts_store *st = st_create("damaged.tst", 1);
	ts_codec_config c = cfg_of(TS_BF16);
	ts_writer *w;
	cr_assert_eq(ts_writer_begin(&w, st, "layers.3.mlp.weight", TS_BF16, 2, shape, &c, NULL), 0);
	cr_assert_eq(ts_writer_append(w, b, n * 2), 0);
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
	ts_store_close(st);

	/* flip a bit inside the sign+mantissa plane, found in the file by its bytes */
	size_t flen;
	uint8_t *f = st_read_file(st_path("damaged.tst"), &flen);
	uint8_t *hit = memmem(f, flen, sm + 1000, 64);
	cr_assert_not_null(hit, "the sign+mantissa plane is not in the file");
	FILE *fp = fopen(st_path("damaged.tst"), "r+b");
	cr_assert_not_null(fp);
	fseek(fp, (long)(hit - f) + 9, SEEK_SET);
	fputc(hit[9] ^ 0x04, fp);
	fclose(fp);
	free(f);

	cr_assert_eq(ts_store_open(&st, st_path("damaged.tst"), NULL), 0, "%s", ts_error_last());
	uint64_t start[2] = {0, 0};
	int rc = ts_read_slice(st, "layers.3.mlp.weight", 2, start, shape, TS_BF16, y, n * 2);
	cr_expect_eq(rc, TS_ECORRUPT, "rc %d", rc);
	cr_expect(strstr(ts_error_last(), "layers.3.mlp.weight") != NULL, "%s", ts_error_last());
	ts_store_close(st);
	free(x);
	free(b);
	free(y);
	free(sm);
}

static int no_sink(void *ud, const void *codes, size_t codes_size, const void *scales,
		   size_t scales_size, uint64_t first_row, uint64_t row_count)
{
	(void)ud, (void)codes, (void)codes_size, (void)scales, (void)scales_size, (void)first_row;
	(void)row_count;
	return 0;
}

Test(lossless, has_no_streaming_form)
{
	ts_codec_config c = cfg_of(TS_BF16);
	ts_stream *s = NULL;
	cr_expect_eq(ts_stream_new(&s, &c, 0, TS_BF16, 4, 4, no_sink, NULL), TS_ENOTSUP);
	cr_expect_null(s);
}
