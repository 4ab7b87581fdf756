/*
 * Tests of the kernel tables: every entry of the AVX2 table against the scalar reference, byte for
 * byte, on the golden vectors (where the golden files also give the expected bytes independently)
 * and on random data full of special values; and the TSTORE_KERNEL=scalar override.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "codec/checksum.h"
#include "codec/kernels.h"

#ifndef TS_SRCDIR
#define TS_SRCDIR "."
#endif

static const char *const golden_sets[] = {"normal", "laplace", "student3", "outliers", "edges"};
static const char *const out_names[TS_KERNEL_OUTS] = {"f32", "bf16", "f16"};
static const size_t out_size[TS_KERNEL_OUTS] = {4, 2, 2};

/* ---- helpers --------------------------------------------------------------------------------- */

static const ts__kernels *avx2_or_skip(void)
{
	const ts__kernels *k = ts__kernels_avx2();
	if (!k)
		cr_skip_test("no AVX2/FMA/F16C on this CPU (or not compiled in)");
	return k;
}

static uint64_t rng_state;

static void rng_seed(const char *test)
{
	const char *env = getenv("TSTORE_TEST_SEED");
	rng_state = env ? strtoull(env, NULL, 0) : 0x9e3779b97f4a7c15ull;
	fprintf(stderr, "%s: seed 0x%llx (TSTORE_TEST_SEED overrides)\n", test,
		(unsigned long long)rng_state);
}

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static void *load_golden(const char *set, const char *file, size_t *size)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/tests/golden/%s/%s", TS_SRCDIR, set, file);
	FILE *f = fopen(path, "rb");
	cr_assert(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *buf = malloc((size_t)n + 64);
	cr_assert(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read of %s", path);
	fclose(f);
	*size = (size_t)n;
	return buf;
}

/* Index of the first differing byte, or -1. */
static long first_diff(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

/* The int8 asymmetric decoders sit in their own slots; codec -1 names them. */
#define INT8_ASYM (-1)

static ts__decode_fn decode_entry(const ts__kernels *k, int codec, int out)
{
	return codec == INT8_ASYM ? k->decode_int8_asym[out] : k->decode[codec][out];
}

/* Run decode entry [codec][out] of both tables on the same input into buffers (with an offset of
 * @p misalign bytes) and compare every byte, plus guard bytes past the end. */
static void check_decode(const ts__kernels *k, int codec, int out, const uint8_t *codes,
			 const uint8_t *scales, size_t nblocks, int block_size, float g,
			 size_t misalign, const char *what)
{
	const ts__kernels *ref = ts__kernels_scalar();
	misalign -= misalign % out_size[out]; /* kernels require element-aligned destinations */
	size_t bytes = nblocks * (size_t)block_size * out_size[out];
	size_t cap = (bytes + misalign + 64 + 63) / 64 * 64; /* aligned_alloc wants a multiple */
	uint8_t *a = aligned_alloc(64, cap);
	uint8_t *b = aligned_alloc(64, cap);
	cr_assert(a && b);
	memset(a, 0xa5, bytes + misalign + 64);
	memset(b, 0xa5, bytes + misalign + 64);
	decode_entry(ref, codec, out)(codes, scales, nblocks, block_size, g, b + misalign);
	decode_entry(k, codec, out)(codes, scales, nblocks, block_size, g, a + misalign);
	long d = first_diff(a, b, bytes + misalign + 64);
	cr_assert_eq(d, -1,
		     "%s decode[%s][%s] %s: %zu blocks, g %a, misalign %zu: byte %ld differs "
		     "(avx2 0x%02x, scalar 0x%02x)",
		     k->name, codec == INT8_ASYM ? "int8 asym" : ts_codec_name((ts_codec)codec),
		     out_names[out], what, nblocks, g,
		     misalign, d, d >= 0 ? a[d] : 0, d >= 0 ? b[d] : 0);
	free(a);
	free(b);
}

static void check_encode(const ts__kernels *k, int codec, const float *x, size_t nblocks,
			 float enc_scale, const char *what)
{
	const ts__kernels *ref = ts__kernels_scalar();
	int bs = codec == TS_CODEC_NVFP4 ? 16 : 32;
	size_t cbytes = nblocks * (size_t)bs / 2;
	uint8_t *ca = malloc(cbytes + 16), *cb = malloc(cbytes + 16);
	uint8_t *sa = malloc(nblocks + 16), *sb = malloc(nblocks + 16);
	cr_assert(ca && cb && sa && sb);
	memset(ca, 0x5a, cbytes + 16);
	memset(cb, 0x5a, cbytes + 16);
	memset(sa, 0x5a, nblocks + 16);
	memset(sb, 0x5a, nblocks + 16);
	ts__encode_fn fa = codec == TS_CODEC_NVFP4 ? k->nvfp4_encode_nvidia : k->mxfp4_encode;
	ts__encode_fn fb = codec == TS_CODEC_NVFP4 ? ref->nvfp4_encode_nvidia : ref->mxfp4_encode;
	fb(x, nblocks, enc_scale, cb, sb);
	fa(x, nblocks, enc_scale, ca, sa);
	long d = first_diff(sa, sb, nblocks + 16);
	cr_assert_eq(d, -1, "%s %s encode %s: %zu blocks, S %a: scale of block %ld differs (0x%02x, "
			    "scalar 0x%02x)",
		     k->name, ts_codec_name((ts_codec)codec), what, nblocks, enc_scale, d,
		     d >= 0 ? sa[d] : 0, d >= 0 ? sb[d] : 0);
	d = first_diff(ca, cb, cbytes + 16);
	cr_assert_eq(d, -1, "%s %s encode %s: %zu blocks, S %a: code byte %ld differs (0x%02x, "
			    "scalar 0x%02x; inputs %a %a)",
		     k->name, ts_codec_name((ts_codec)codec), what, nblocks, enc_scale, d,
		     d >= 0 ? ca[d] : 0, d >= 0 ? cb[d] : 0, d >= 0 ? x[2 * d] : 0.0f,
		     d >= 0 ? x[2 * d + 1] : 0.0f);
	free(ca);
	free(cb);
	free(sa);
	free(sb);
}

static float nvfp4_enc_scale(float amax)
{
	if (amax == 0.0f)
		return 1.0f;
	float s = 2688.0f / amax;
	return s > 3.40282347e38f ? 3.40282347e38f : s;
}

static float amax_of(const float *x, size_t n)
{
	float m = 0.0f;
	for (size_t i = 0; i < n; i++)
		m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
	return m;
}

/* A float that exercises the edges: zeros of both signs, subnormals, tiny and huge normals,
 * the largest finite, values near the E2M1/E4M3 rounding thresholds, ordinary values. */
static float special_float(void)
{
	uint64_t r = rng_next();
	uint32_t sign = (uint32_t)(r >> 63) << 31;
	switch ((r >> 32) % 10) {
	case 0:
		return bits_f32(sign);
	case 1:
		return bits_f32(sign | ((uint32_t)r & 0x007fffffu)); /* subnormal */
	case 2:
		return bits_f32(sign | 0x7f7fffffu);                 /* max finite */
	case 3: {
		static const float edge[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f,
					     448.0f, 464.0f, 0x1p-6f, 0x1p-9f, 0x1p-10f};
		float e = edge[(r >> 8) % (sizeof(edge) / sizeof(edge[0]))];
		uint32_t u;
		memcpy(&u, &e, sizeof(u));
		return bits_f32(sign | (u + (uint32_t)(r & 3) - 1)); /* the edge and its neighbours */
	}
	case 4: /* any finite bit pattern */
		for (;;) {
			uint32_t u = (uint32_t)rng_next();
			if ((u & 0x7f800000u) != 0x7f800000u)
				return bits_f32(u);
		}
	default: /* ordinary values around 1 */
		return bits_f32(sign | (0x3f000000u + ((uint32_t)r & 0x00ffffffu)));
	}
}

/* ---- dispatch -------------------------------------------------------------------------------- */

Test(kernels, ts_kernel_scalar_forces_the_reference)
{
	setenv("TSTORE_KERNEL", "scalar", 1);
	cr_assert_str_eq(ts_kernel_name(), "scalar");
	cr_assert_eq(ts__kernels_get(), ts__kernels_scalar());
}

Test(kernels, avx2_is_chosen_when_the_cpu_has_it)
{
	unsetenv("TSTORE_KERNEL");
	const ts__kernels *k = avx2_or_skip();
	cr_assert_eq(ts__kernels_get(), k);
	cr_assert_str_eq(ts_kernel_name(), "avx2");
	cr_assert_eq(ts__kernels_avx2(), k, "resolved once: the same table every time");
}

/* ---- golden vectors -------------------------------------------------------------------------- */

Test(kernels, avx2_decodes_golden_vectors_bit_for_bit)
{
	const ts__kernels *k = avx2_or_skip();
	for (size_t s = 0; s < sizeof(golden_sets) / sizeof(golden_sets[0]); s++) {
		const char *set = golden_sets[s];
		size_t nin, ncodes, nscales, ng, ndec, nmx, nmxs, nmxd, nf8, nf8s, nf8d;
		float *in = load_golden(set, "input.f32", &nin);
		size_t n = nin / 4;
		uint8_t *codes = load_golden(set, "nvfp4.codes.u8", &ncodes);
		uint8_t *scales = load_golden(set, "nvfp4.scales.e4m3", &nscales);
		float *g = load_golden(set, "nvfp4.global.f32", &ng);
		float *dec = load_golden(set, "nvfp4.decoded.f32", &ndec);
		uint8_t *mcodes = load_golden(set, "mxfp4.codes.u8", &nmx);
		uint8_t *mscales = load_golden(set, "mxfp4.scales.e8m0", &nmxs);
		float *mdec = load_golden(set, "mxfp4.decoded.f32", &nmxd);
		uint8_t *f8 = load_golden(set, "fp8.codes.e4m3", &nf8);
		float *f8s = load_golden(set, "fp8.scale.f32", &nf8s);
		float *f8d = load_golden(set, "fp8.decoded.f32", &nf8d);
		cr_assert(n % 32 == 0 && ncodes == n / 2 && nscales == n / 16 && ndec == 4 * n);
		cr_assert(nmx == n / 2 && nmxs == n / 32 && nmxd == 4 * n && nf8 == n);

		float *y = malloc(4 * n);
		k->decode[TS_CODEC_NVFP4][TS_F32](codes, scales, n / 16, 16, g[0], y);
		cr_assert_eq(first_diff(y, dec, 4 * n), -1, "%s: nvfp4 decode differs from golden",
			     set);
		k->decode[TS_CODEC_MXFP4][TS_F32](mcodes, mscales, n / 32, 32, 1.0f, y);
		cr_assert_eq(first_diff(y, mdec, 4 * n), -1, "%s: mxfp4 decode differs from golden",
			     set);
		k->decode[TS_CODEC_FP8][TS_F32](f8, NULL, n, 1, f8s[0], y);
		cr_assert_eq(first_diff(y, f8d, 4 * n), -1, "%s: fp8 decode differs from golden", set);
		for (int out = 0; out < TS_KERNEL_OUTS; out++) {
			check_decode(k, TS_CODEC_NVFP4, out, codes, scales, n / 16, 16, g[0], 0, set);
			check_decode(k, TS_CODEC_MXFP4, out, mcodes, mscales, n / 32, 32, 1.0f, 0,
				     set);
			check_decode(k, TS_CODEC_FP8, out, f8, NULL, n, 1, f8s[0], 0, set);
		}
		free(y);
		free(in);
		free(codes);
		free(scales);
		free(g);
		free(dec);
		free(mcodes);
		free(mscales);
		free(mdec);
		free(f8);
		free(f8s);
		free(f8d);
	}
}

Test(kernels, avx2_encodes_golden_vectors_bit_for_bit)
{
	const ts__kernels *k = avx2_or_skip();
	for (size_t s = 0; s < sizeof(golden_sets) / sizeof(golden_sets[0]); s++) {
		const char *set = golden_sets[s];
		size_t nin, ncodes, nscales, nmx, nmxs;
		float *in = load_golden(set, "input.f32", &nin);
		size_t n = nin / 4;
		uint8_t *codes = load_golden(set, "nvfp4.codes.u8", &ncodes);
		uint8_t *scales = load_golden(set, "nvfp4.scales.e4m3", &nscales);
		uint8_t *mcodes = load_golden(set, "mxfp4.codes.u8", &nmx);
		uint8_t *mscales = load_golden(set, "mxfp4.scales.e8m0", &nmxs);
		uint8_t *c = malloc(n / 2), *sc = malloc(n / 16);

		k->nvfp4_encode_nvidia(in, n / 16, nvfp4_enc_scale(amax_of(in, n)), c, sc);
		cr_assert_eq(first_diff(sc, scales, n / 16), -1, "%s: nvfp4 scales differ", set);
		cr_assert_eq(first_diff(c, codes, n / 2), -1, "%s: nvfp4 codes differ", set);
		k->mxfp4_encode(in, n / 32, 1.0f, c, sc);
		cr_assert_eq(first_diff(sc, mscales, n / 32), -1, "%s: mxfp4 scales differ", set);
		cr_assert_eq(first_diff(c, mcodes, n / 2), -1, "%s: mxfp4 codes differ", set);
		check_encode(k, TS_CODEC_NVFP4, in, n / 16, nvfp4_enc_scale(amax_of(in, n)), set);
		check_encode(k, TS_CODEC_MXFP4, in, n / 32, 1.0f, set);
		free(in);
		free(codes);
		free(scales);
		free(mcodes);
		free(mscales);
		free(c);
		free(sc);
	}
}

Test(kernels, avx2_converts_golden_vectors_bit_for_bit)
{
	const ts__kernels *k = avx2_or_skip();
	for (size_t s = 0; s < sizeof(golden_sets) / sizeof(golden_sets[0]); s++) {
		const char *set = golden_sets[s];
		size_t nin, nb, nh;
		float *in = load_golden(set, "input.f32", &nin);
		uint16_t *bf = load_golden(set, "bf16.u16", &nb);
		uint16_t *hf = load_golden(set, "f16.u16", &nh);
		size_t n = nin / 4;
		uint16_t *o = malloc(2 * n);
		cr_assert(nb == 2 * n && nh == 2 * n);
		k->convert[TS_F32][TS_BF16](in, n, o);
		cr_assert_eq(first_diff(o, bf, 2 * n), -1, "%s: F32 -> BF16 differs from golden", set);
		k->convert[TS_F32][TS_F16](in, n, o);
		cr_assert_eq(first_diff(o, hf, 2 * n), -1, "%s: F32 -> F16 differs from golden", set);
		free(o);
		free(in);
		free(bf);
		free(hf);
	}
}

/* ---- random data and special values ---------------------------------------------------------- */

static const size_t block_counts[] = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 257};

Test(kernels, avx2_4bit_decoders_match_scalar_on_every_code_and_scale)
{
	const ts__kernels *k = avx2_or_skip();
	rng_seed("4bit decode");
	/* 4096 blocks: every scale byte appears 16 times, codes are random bytes */
	const size_t nb = 4096;
	uint8_t *codes = malloc(nb * 16), *scales = malloc(nb);
	for (size_t i = 0; i < nb * 16; i++)
		codes[i] = (uint8_t)rng_next();
	for (size_t i = 0; i < nb; i++)
		scales[i] = (uint8_t)i;
	static const float gs[] = {1.0f, 0x1.5p-3f, 3.7e-5f, 0x1p-140f, 1e30f, 0x1.fffffep127f,
				   -2.0f};
	for (int out = 0; out < TS_KERNEL_OUTS; out++) {
		for (size_t gi = 0; gi < sizeof(gs) / sizeof(gs[0]); gi++)
			check_decode(k, TS_CODEC_NVFP4, out, codes, scales, nb, 16, gs[gi], 0,
				     "all scales");
		check_decode(k, TS_CODEC_MXFP4, out, codes, scales, nb / 2, 32, 1.0f, 0,
			     "all scales");
		for (size_t c = 0; c < sizeof(block_counts) / sizeof(block_counts[0]); c++) {
			for (size_t mis = 0; mis < 8; mis += 2) {
				size_t off = rng_next() % 256;
				check_decode(k, TS_CODEC_NVFP4, out, codes + 8 * off, scales + off,
					     block_counts[c], 16, 0x1.3p-7f, mis, "odd length");
				check_decode(k, TS_CODEC_MXFP4, out, codes + 16 * off,
					     scales + off, block_counts[c], 32, 1.0f, mis,
					     "odd length");
			}
		}
	}
	free(codes);
	free(scales);
}

/* A rows call (one set of tables for all rows, kept for the thread's next call) writes what one
 * scalar call per row writes, and nothing between the rows. */
Test(kernels, avx2_4bit_rows_decoders_match_scalar_row_by_row)
{
	const ts__kernels *k = avx2_or_skip();
	const ts__kernels *ref = ts__kernels_scalar();
	static const int codecs[] = {TS_CODEC_NVFP4, TS_CODEC_MXFP4};
	static const size_t rows_list[] = {1, 2, 5, 28};
	static const size_t nb_list[] = {1, 2, 3, 17, 64};
	rng_seed("4bit rows decode");
	const size_t cap_codes = 28 * 80 * 16, cap_scales = 28 * 80;
	uint8_t *codes = malloc(cap_codes), *scales = malloc(cap_scales);
	cr_assert(codes && scales);
	for (size_t i = 0; i < cap_codes; i++)
		codes[i] = (uint8_t)rng_next();
	for (size_t i = 0; i < cap_scales; i++) /* few distinct scales, some of them special */
		scales[i] = (uint8_t)(i % 7 == 0 ? 0x7f + (rng_next() & 0x80) : rng_next() % 40 + 60);
	for (int ci = 0; ci < 2; ci++) {
		int codec = codecs[ci], bs = codec == TS_CODEC_NVFP4 ? 16 : 32;
		size_t cb = (size_t)bs / 2;
		cr_assert(k->decode_rows[codec][0], "%s: no rows decoder", ts_codec_name(codec));
		for (int out = 0; out < TS_KERNEL_OUTS; out++)
			for (size_t ri = 0; ri < 4; ri++)
				for (size_t ni = 0; ni < 5; ni++) {
					size_t rows = rows_list[ri], nb = nb_list[ni];
					size_t cstride = 80 * cb, sstride = 80; /* rows of 80 blocks */
					size_t row_bytes = nb * (size_t)bs * out_size[out];
					size_t dstride = row_bytes + 2 * out_size[out] + 32;
					size_t total = rows * dstride + 64;
					uint8_t *a = malloc(total), *b = malloc(total);
					/* the tensor scale alternates between calls: tables kept
					 * from the previous call must not be reused for another */
					float g = codec == TS_CODEC_NVFP4 ? (ni % 2 ? 0x1.3p-7f : 3.5f)
									  : 1.0f;
					cr_assert(a && b);
					memset(a, 0xa5, total);
					memset(b, 0xa5, total);
					k->decode_rows[codec][out](codes, cstride, scales, sstride, rows, nb,
								   bs, g, a, dstride);
					for (size_t r = 0; r < rows; r++)
						ref->decode[codec][out](codes + r * cstride,
									scales + r * sstride, nb, bs,
									g, b + r * dstride);
					long d = first_diff(a, b, total);
					cr_assert_eq(d, -1,
						     "%s rows decoder to %s, %zu rows of %zu blocks: "
						     "byte %ld differs",
						     ts_codec_name(codec), out_names[out], rows, nb, d);
					free(a);
					free(b);
				}
	}
	free(codes);
	free(scales);
}

Test(kernels, avx2_fp8_decoder_matches_scalar_on_every_byte)
{
	const ts__kernels *k = avx2_or_skip();
	rng_seed("fp8 decode");
	const size_t n = 4096 + 13;
	uint8_t *codes = malloc(n);
	for (size_t i = 0; i < n; i++)
		codes[i] = i < 4096 ? (uint8_t)i : (uint8_t)rng_next();
	static const float gs[] = {1.0f, 0x1.5p-3f, 3.7e-5f, 0x1p-140f, 1e36f, -0.75f};
	for (int out = 0; out < TS_KERNEL_OUTS; out++) {
		for (size_t gi = 0; gi < sizeof(gs) / sizeof(gs[0]); gi++)
			check_decode(k, TS_CODEC_FP8, out, codes, NULL, n, 1, gs[gi], 0, "all");
		for (size_t len = 0; len < 70; len++)
			check_decode(k, TS_CODEC_FP8, out, codes + rng_next() % 1024, NULL, len, 1,
				     0x1.3p-7f, len & 6, "odd length");
	}
	free(codes);
}

Test(kernels, avx2_int8_decoders_match_scalar_on_every_code_and_special_scales)
{
	const ts__kernels *k = avx2_or_skip();
	rng_seed("int8 decode");
	const size_t nb = 512, maxbs = 4096;
	uint8_t *codes = malloc(maxbs * 8 + nb * 64), *sym = malloc(nb * 4), *asym = malloc(nb * 5);
	for (size_t i = 0; i < maxbs * 8 + nb * 64; i++)
		codes[i] = (uint8_t)(i < 256 ? i : rng_next());
	for (size_t b = 0; b < nb; b++) {
		/* scales: ordinary, tiny (subnormal products), huge (overflowing products), zero,
		 * and now and then NaN or Inf */
		float s = special_float();
		if (b % 37 == 0)
			s = b % 2 ? NAN : -INFINITY;
		memcpy(sym + 4 * b, &s, 4);
		memcpy(asym + 5 * b, &s, 4);
		asym[5 * b + 4] = (uint8_t)(b < 256 ? b : rng_next());
	}
	static const int sizes[] = {16, 32, 64, 128, 4096};
	for (int out = 0; out < TS_KERNEL_OUTS; out++) {
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			size_t nblk = sizes[si] == 4096 ? 8 : nb * 16 / (size_t)sizes[si];
			check_decode(k, TS_CODEC_INT8, out, codes, sym, nblk, sizes[si], 1.0f, 0,
				     "symmetric");
			check_decode(k, INT8_ASYM, out, codes, asym, nblk, sizes[si], 1.0f, 0,
				     "asymmetric");
		}
		for (size_t c = 0; c < sizeof(block_counts) / sizeof(block_counts[0]); c++) {
			check_decode(k, TS_CODEC_INT8, out, codes + 7, sym + 4, block_counts[c], 16,
				     1.0f, 6, "odd length");
			check_decode(k, INT8_ASYM, out, codes + 5, asym + 5, block_counts[c], 32,
				     1.0f, 2, "odd length");
		}
	}
	free(codes);
	free(sym);
	free(asym);
}

Test(kernels, avx2_decoders_match_scalar_on_large_outputs)
{
	/* past TS_AVX2_NT_BYTES with non-temporal stores on (as TSTORE_NT_STORES=1 sets them), aligned
	 * and 16-byte aligned, and then with them off (the default): both store paths */
	const ts__kernels *k = avx2_or_skip();
	const size_t nt_default = ts__avx2_nt_bytes;
	rng_seed("large decode");
	const size_t n = (size_t)3 << 20; /* elements: 12 MiB of F32, 6 MiB of BF16/F16 */
	uint8_t *codes = malloc(n), *scales = malloc(n / 16);
	for (size_t i = 0; i < n; i++)
		codes[i] = (uint8_t)rng_next();
	for (size_t i = 0; i < n / 16; i++)
		scales[i] = (uint8_t)(rng_next() % 0x7f);
	for (int pass = 0; pass < 2; pass++)
	for (int out = 0; out < TS_KERNEL_OUTS; out++) {
		ts__avx2_nt_bytes = pass == 0 ? TS_AVX2_NT_BYTES : SIZE_MAX;
		check_decode(k, TS_CODEC_NVFP4, out, codes, scales, n / 16, 16, 0x1.3p-7f, 0,
			     "large");
		check_decode(k, TS_CODEC_NVFP4, out, codes, scales, n / 16, 16, 0x1.3p-7f, 16,
			     "large");
		check_decode(k, TS_CODEC_MXFP4, out, codes, scales, n / 32, 32, 1.0f, 32,
			     "large");
		check_decode(k, TS_CODEC_FP8, out, codes, NULL, n, 1, 0.5f, 16, "large");
		check_decode(k, TS_CODEC_INT8, out, codes, scales, n / 64, 64, 1.0f, 0, "large");
		check_decode(k, TS_CODEC_FP8, out, codes, NULL, n, 1, 0.5f, 4, "large unaligned");
	}
	ts__avx2_nt_bytes = nt_default;
	free(codes);
	free(scales);
}

Test(kernels, avx2_converters_match_scalar_on_every_16bit_value_and_special_floats)
{
	const ts__kernels *k = avx2_or_skip();
	const ts__kernels *ref = ts__kernels_scalar();
	rng_seed("convert");
	const size_t n = 65536 + 7;
	uint16_t *h = malloc(2 * n);
	float *f = malloc(4 * n);
	uint8_t *a = malloc(4 * n + 64), *b = malloc(4 * n + 64);
	for (size_t i = 0; i < n; i++)
		h[i] = (uint16_t)i;
	for (size_t i = 0; i < n; i++) {
		uint32_t u = (uint32_t)rng_next();
		switch (i % 8) {
		case 0: /* ties for BF16 */
			u = (u & 0xffff0000u) | 0x8000u;
			break;
		case 1: /* ties for F16 (normal range) */
			u = (((u % 30u) + 113u) << 23) | (u & 0x807fe000u) | 0x1000u;
			break;
		case 2: /* F16 subnormal range and its ties */
			u = (((u % 12u) + 100u) << 23) | (u & 0x807fffffu);
			break;
		case 3: /* NaN, signalling NaN, Inf */
			u = 0x7f800000u | (u & 0x807fffffu);
			break;
		default:
			break;
		}
		memcpy(&f[i], &u, 4);
	}
	for (int from = 0; from < TS_KERNEL_OUTS; from++) {
		for (int to = 0; to < TS_KERNEL_OUTS; to++) {
			const void *src = from == TS_F32 ? (const void *)f : (const void *)h;
			for (size_t len = 0; len < 40; len++) {
				memset(a, 0xa5, 4 * n + 64);
				memset(b, 0xa5, 4 * n + 64);
				size_t off = rng_next() % 64;
				const uint8_t *s = (const uint8_t *)src + off * out_size[from];
				ref->convert[from][to](s, len, b);
				k->convert[from][to](s, len, a);
				cr_assert_eq(first_diff(a, b, len * out_size[to] + 64), -1,
					     "convert %s -> %s, %zu elements", out_names[from],
					     out_names[to], len);
			}
			memset(a, 0xa5, 4 * n + 64);
			memset(b, 0xa5, 4 * n + 64);
			ref->convert[from][to](src, n, b);
			k->convert[from][to](src, n, a);
			long d = first_diff(a, b, n * out_size[to] + 64);
			cr_assert_eq(d, -1, "convert %s -> %s: byte %ld differs", out_names[from],
				     out_names[to], d);
		}
	}
	free(h);
	free(f);
	free(a);
	free(b);
}

Test(kernels, avx2_encoders_match_scalar_on_special_values)
{
	const ts__kernels *k = avx2_or_skip();
	rng_seed("encode");
	const size_t nb = 2048; /* nvfp4 blocks; mxfp4 uses half as many */
	float *x = malloc(sizeof(float) * nb * 16);
	for (int trial = 0; trial < 6; trial++) {
		for (size_t b = 0; b < nb; b++) {
			float *blk = x + 16 * b;
			/* each block has its own flavour: special values, a scaled ordinary block,
			 * all zeros (both signs), or one large value among small ones */
			uint64_t r = rng_next();
			float scale = ldexpf(1.0f, (int)(r % 280) - 150);
			for (int j = 0; j < 16; j++) {
				switch ((r >> 16) % 5) {
				case 0:
					blk[j] = special_float();
					break;
				case 1:
					blk[j] = ((float)(rng_next() % 2001) - 1000.0f) / 97.0f *
						 scale;
					break;
				case 2:
					blk[j] = (rng_next() & 1) ? -0.0f : 0.0f;
					break;
				case 3:
					blk[j] = (float)(int)(rng_next() % 25 - 12) * 0.25f;
					break;
				default:
					blk[j] = j == 5 ? scale * 1e3f : scale * special_float() * 0x1p-128f;
					break;
				}
				if (!isfinite(blk[j]))
					blk[j] = 1.0f;
			}
		}
		float amax = amax_of(x, nb * 16);
		/* the tensor's own scale, a scale that saturates, and a clamped (huge) one */
		float scales[] = {nvfp4_enc_scale(amax), nvfp4_enc_scale(amax) * 1000.0f,
				  nvfp4_enc_scale(amax * 1e-3f), 3.40282347e38f, 1.0f};
		for (size_t si = 0; si < sizeof(scales) / sizeof(scales[0]); si++) {
			float S = isfinite(scales[si]) ? scales[si] : 3.40282347e38f;
			check_encode(k, TS_CODEC_NVFP4, x, nb, S, "special values");
			for (size_t c = 0; c < sizeof(block_counts) / sizeof(block_counts[0]); c++)
				check_encode(k, TS_CODEC_NVFP4, x + 16 * (rng_next() % 64),
					     block_counts[c], S, "odd length");
		}
		check_encode(k, TS_CODEC_MXFP4, x, nb / 2, 1.0f, "special values");
		for (size_t c = 0; c < sizeof(block_counts) / sizeof(block_counts[0]); c++)
			check_encode(k, TS_CODEC_MXFP4, x + 32 * (rng_next() % 32),
				     block_counts[c], 1.0f, "odd length");
	}
	free(x);
}

/* One sub-block of every length up to 1030 (all tails), of ordinary and special finite values
 * (signed zeros, subnormals, max finite), with running extremes that the block does or does not
 * beat: every statistics sum and extreme equal to the reference's, bit for bit. */
Test(kernels, avx2_statistics_sums_match_scalar_bit_for_bit)
{
	const ts__kernels *k = avx2_or_skip(), *s = ts__kernels_scalar();
	float x[1030], a[1030];
	rng_seed("statistics");
	for (size_t n = 0; n <= 1030; n += n < 40 ? 1 : 97) {
		for (int trial = 0; trial < 4; trial++) {
			for (size_t i = 0; i < n; i++) {
				x[i] = trial == 0 ? special_float()
				       : trial == 1 ? (float)((int)(rng_next() % 9) - 4) * 0.5f
						    : ((float)(rng_next() % 20001) - 1e4f) * 1e-5f;
				a[i] = trial == 3 ? x[i] : x[i] + ((float)(rng_next() % 7) - 3) * 1e-3f;
			}
			/* the running values start inside the data's range; with and without
			 * the approximation; the shift one of the values, or not */
			for (int with_a = 0; with_a < 2; with_a++) {
				ts__stats_sums r[2];
				double shift = n && trial % 2 ? x[n / 2] : 0.01;
				for (int t = 0; t < 2; t++) {
					r[t] = (ts__stats_sums){.sa = 1.0, .se = 2.0,
								.me = 1e-4, .q = 0.5, .c = -0.5,
								.mn = 0.5, .mx = -0.5, .amax = 0.25,
								.minnz = 1e-3, .zeros = 3};
					(t ? k : s)->stats(x, with_a ? a : NULL, n, shift, &r[t]);
				}
				cr_assert(memcmp(&r[0], &r[1], sizeof(r[0])) == 0,
					  "sums differ: n %zu trial %d, %s the approximation", n,
					  trial, with_a ? "with" : "without");
			}
		}
	}
}

/* ---- the page checksum ------------------------------------------------------------------------ */

/* XXH3-64 of two joined buffers, against libxxhash's one-shot XXH3_64bits of the joined bytes (a
 * separate code path of the reference library), over every length class of XXH3 (0-16, 17-128,
 * 129-240, longer: stripes, 1 KiB blocks, the last partial stripe) and split points, on
 * unaligned addresses. */
Test(kernels, checksums_equal_libxxhash_for_every_table)
{
	const size_t lens[] = {0,   1,   3,    4,    8,    9,    16,   17,   64,    128,    129,
			       200, 240, 241,  255,  256,  257,  1023, 1024, 1025,  4096,   65536,
			       170001, 262145};
	const ts__kernels *tables[2] = {ts__kernels_scalar(), ts__kernels_avx2()};
	size_t cap = 262145 + 64;
	uint8_t *buf = malloc(cap);

	rng_seed("checksums");
	for (size_t i = 0; i < cap; i++)
		buf[i] = (uint8_t)rng_next();
	cr_assert_eq(ts__checksum_xxh3_scalar("", 0, "", 0), 0x2D06800538D394C2ull,
		     "XXH3-64 of nothing (the xxHash specification's value)");
	for (int t = 0; t < 2; t++) {
		if (!tables[t])
			continue;
		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			size_t n = lens[l], off = 1 + (size_t)(rng_next() % 31);
			size_t cuts[4] = {0, n < 32 ? n / 2 : 32, n / 2, n};
			uint64_t want = XXH3_64bits(buf + off, n);
			for (int c = 0; c < 4; c++)
				cr_assert_eq(tables[t]->checksum_xxh3(buf + off, cuts[c], buf + off + cuts[c],
								      n - cuts[c]),
					     want, "%s: %zu bytes cut at %zu", tables[t]->name, n,
					     cuts[c]);
		}
	}
	free(buf);
}
