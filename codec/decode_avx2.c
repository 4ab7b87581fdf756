/*
 * AVX2 decoders: nvfp4, mxfp4, int8 (both variants) and fp8 to F32, BF16 and F16.
 *
 * 4-bit codecs. A block's 16 possible outputs depend only on its scale byte (and the tensor scale
 * g, fixed for a call), so a call builds, lazily for each scale byte it meets, the 16 outputs
 * exactly as the reference computes them — v[k] = e2m1(k) * s, then v[k] * g for nvfp4 — and then
 * decodes every element by table lookup:
 *   - F32: two 8-lane tables (codes 0..7 and 8..15). The eight nibbles of a 32-bit code word are
 *     spread over the lanes by one variable shift (vpermps reads only the low 3 bits of an
 *     index) and a second variable shift puts each nibble's sign bit at bit 31 for vblendvps.
 *   - BF16/F16: the 16 outputs are converted once per table entry and split into a low-byte and
 *     a high-byte table, so that vpshufb looks up 32 codes (two nvfp4 blocks, one mxfp4 block)
 *     at a time; no per-element conversion is left.
 * fp8: a byte's magnitude bits shifted into place form the F16 of e4m3(b) * 2^-8 (subnormals
 * included), which F16C widens exactly; one multiply by 2^8 * g finishes (two when 2^8 * g would
 * overflow). This avoids float denormal operands, which cost a microcode assist per instruction.
 * int8: widen, convert, multiply by the block scale.
 *
 * Invariants
 *   1. Every output equals the scalar reference's bit for bit: the same float operations in the
 *      same order on the same values (products of exact factors are single roundings of the same
 *      real number); negative codes use their own table entries, never a sign flip, because the
 *      reference keeps the sign of a NaN scale.
 *   2. Outputs of at least TS_AVX2_NT_BYTES to a 16-byte aligned destination go out with
 *      non-temporal stores (256-bit ones when 32-byte aligned), followed by one sfence.
 *   3. The tables belong to the calling thread (thread-local, no allocation, nothing shared
 *      between threads) and are kept from call to call while the format, the tensor scale (bit
 *      for bit) and the output type stay the same; any change of those empties them. A rows
 *      call (ts__decode_rows_fn: a page's rows at their strides) therefore builds a scale
 *      byte's table at most once, and the pages of one tensor share them.
 */
#include "config.h"

#include "codec/codecs.h"
#include "codec/elem.h"
#include "codec/kernels_avx2.h"

enum { OUT_F32 = TS_F32, OUT_BF16 = TS_BF16, OUT_F16 = TS_F16 };

#define MAG_POS _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f)
#define MAG_NEG _mm256_setr_ps(-0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f)

/* The negative magnitudes, hidden from the optimiser: given MAG_NEG as a constant, GCC rewrites
 * (-m * s) * g as -((m * s) * g), which flips the sign of a NaN that the reference keeps. */
TS_AVX2_INLINE __m256 mag_neg(void)
{
	__m256 m = MAG_NEG;
	__asm__("" : "+x"(m));
	return m;
}

typedef struct {
	__m256 pos, neg; /* F32 outputs of codes 0..7 and 8..15 */
} tab32;

typedef struct {
	uint8_t lo[16], hi[16]; /* low and high bytes of the 16-bit outputs of codes 0..15 */
} tab16;

/* The outputs of codes 0..7 (*pos) and 8..15 (*neg) for scale byte @p sb, in F32. */
TS_AVX2_INLINE void fp4_outputs(uint8_t sb, int nvfp4, __m256 vg, __m256 *pos, __m256 *neg)
{
	__m256 s = nvfp4 ? _mm256_broadcast_ss(&ts__e4m3_table[sb])
			 : _mm256_set1_ps(ts__e8m0_decode(sb));
	*pos = _mm256_mul_ps(MAG_POS, s);
	*neg = _mm256_mul_ps(mag_neg(), s);
	if (nvfp4) {
		*pos = _mm256_mul_ps(*pos, vg);
		*neg = _mm256_mul_ps(*neg, vg);
	}
}

static void build32(tab32 *t, uint8_t sb, int nvfp4, __m256 vg)
{
	fp4_outputs(sb, nvfp4, vg, &t->pos, &t->neg);
}

static void build16(tab16 *t, uint8_t sb, int nvfp4, __m256 vg, int out)
{
	__m256 pos, neg;
	fp4_outputs(sb, nvfp4, vg, &pos, &neg);
	__m256i p = out == OUT_BF16 ? avx2_bf16_epi32(pos) : avx2_f16_epi32(pos);
	__m256i n = out == OUT_BF16 ? avx2_bf16_epi32(neg) : avx2_f16_epi32(neg);
	__m256i v = avx2_pack16(p, n); /* the 16 outputs in code order */
	const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
					       0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
	v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, split), 0xd8);
	_mm256_storeu_si256((__m256i *)t, v);
}

/* Eight consecutive 4-bit codes (little-endian word @p w, element 2k in the low nibble of byte
 * k) looked up in the 16-entry table (pos, neg). */
TS_AVX2_INLINE __m256 lut16(__m256 pos, __m256 neg, uint32_t w)
{
	const __m256i shr = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
	const __m256i shl = _mm256_setr_epi32(28, 24, 20, 16, 12, 8, 4, 0);
	__m256i c = _mm256_set1_epi32((int)w);
	__m256i idx = _mm256_srlv_epi32(c, shr);
	__m256 sign = _mm256_castsi256_ps(_mm256_sllv_epi32(c, shl));
	return _mm256_blendv_ps(_mm256_permutevar8x32_ps(pos, idx),
				_mm256_permutevar8x32_ps(neg, idx), sign);
}

/* 32 codes (16 bytes at @p p) -> 32 16-bit outputs at @p o: codes 0..15 through the tables in
 * lane 0 of (lo, hi), codes 16..31 through lane 1. */
TS_AVX2_INLINE void emit32_16(const uint8_t *p, __m256i lo, __m256i hi, uint8_t *o, int mode)
{
	/* word k = code byte k; make its low byte the low nibble and its high byte the high one */
	__m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
	__m256i idx = _mm256_and_si256(_mm256_or_si256(w, _mm256_slli_epi16(w, 4)),
				       _mm256_set1_epi16(0x0f0f));
	__m256i rl = _mm256_shuffle_epi8(lo, idx), rh = _mm256_shuffle_epi8(hi, idx);
	__m256i a = _mm256_unpacklo_epi8(rl, rh), b = _mm256_unpackhi_epi8(rl, rh);
	out_store_si(o, _mm256_permute2x128_si256(a, b, 0x20), mode);
	out_store_si(o + 32, _mm256_permute2x128_si256(a, b, 0x31), mode);
}

TS_AVX2_INLINE __m256i tab_lane2(const uint8_t *a, const uint8_t *b)
{
	return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
				       _mm_loadu_si128((const __m128i *)b), 1);
}

/* The lazily built tables of one call: valid[sb] says whether entry sb is built. */
struct fp4_tabs {
	uint8_t valid[256];
	union {
		tab32 t32[256];
		tab16 t16[256];
	} u;
};

TS_AVX2_INLINE void fp4_body(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
			     int nvfp4, float g, void *dst, int out, int mode, struct fp4_tabs *T)
{
	const __m256 vg = _mm256_set1_ps(g);
	const size_t bs = nvfp4 ? 16 : 32, cb = bs / 2; /* elements and code bytes per block */
	uint8_t *d = dst;
	uint8_t *valid = T->valid;

	if (out == OUT_F32) {
		tab32 *tab = T->u.t32;
		for (size_t b = 0; b < nblocks; b++) {
			uint8_t sb = scales[b];
			if (__builtin_expect(!valid[sb], 0)) {
				build32(&tab[sb], sb, nvfp4, vg);
				valid[sb] = 1;
			}
			const __m256 pos = tab[sb].pos, neg = tab[sb].neg;
			const uint8_t *c = codes + cb * b;
			float *o = (float *)(d + 4 * bs * b);
			out_store_ps(o, lut16(pos, neg, avx2_load_u32(c)), mode);
			out_store_ps(o + 8, lut16(pos, neg, avx2_load_u32(c + 4)), mode);
			if (!nvfp4) {
				out_store_ps(o + 16, lut16(pos, neg, avx2_load_u32(c + 8)), mode);
				out_store_ps(o + 24, lut16(pos, neg, avx2_load_u32(c + 12)), mode);
			}
		}
	} else {
		tab16 *tab = T->u.t16;
		const size_t step = nvfp4 ? 2 : 1; /* blocks per 32 codes */
		size_t b = 0;
		for (; b + step <= nblocks; b += step) {
			uint8_t sa = scales[b], sz = scales[b + step - 1];
			if (__builtin_expect(!valid[sa], 0)) {
				build16(&tab[sa], sa, nvfp4, vg, out);
				valid[sa] = 1;
			}
			if (__builtin_expect(!valid[sz], 0)) {
				build16(&tab[sz], sz, nvfp4, vg, out);
				valid[sz] = 1;
			}
			emit32_16(codes + cb * b, tab_lane2(tab[sa].lo, tab[sz].lo),
				  tab_lane2(tab[sa].hi, tab[sz].hi), d + 2 * bs * b, mode);
		}
		if (b < nblocks) /* an odd last nvfp4 block */
			ts__kernels_scalar()->decode[TS_CODEC_NVFP4][out](codes + cb * b, scales + b,
									  nblocks - b, 16, g,
									  d + 2 * bs * b);
	}
	if (mode != STORE_PLAIN)
		_mm_sfence();
}

/* 16 F32 values -> 16 outputs at @p o. */
TS_AVX2_INLINE void emit16(__m256 y0, __m256 y1, uint8_t *o, int out, int mode)
{
	if (out == OUT_F32) {
		out_store_ps((float *)o, y0, mode);
		out_store_ps((float *)o + 8, y1, mode);
	} else if (out == OUT_BF16) {
		out_store_si(o, avx2_pack16(avx2_bf16_epi32(y0), avx2_bf16_epi32(y1)), mode);
	} else {
		out_store_si(o, _mm256_inserti128_si256(_mm256_castsi128_si256(avx2_f16_epi16(y0)),
							 avx2_f16_epi16(y1), 1),
			     mode);
	}
}

/* The NaN bytes (0x7F, 0xFF) among 8 codes: the reference's table NaN times g. */
TS_AVX2_INLINE __m256 fp8_nan_fix(__m256 y, __m128i nanbytes, __m128i c, __m256 vg)
{
	__m256 mask = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(nanbytes));
	__m256 neg = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(c));
	__m256 nan = _mm256_blendv_ps(_mm256_set1_ps(ts__e4m3_table[0x7f]),
				      _mm256_set1_ps(ts__e4m3_table[0xff]), neg);
	return _mm256_blendv_ps(y, _mm256_mul_ps(nan, vg), mask);
}

TS_AVX2_INLINE void fp8_body(const uint8_t *codes, size_t n, float g, void *dst, int out,
			     int mode)
{
	const __m256 vg = _mm256_set1_ps(g);
	const float g8 = g * 256.0f;
	/* e4m3(b) * g = (e4m3(b) * 2^-8) * (2^8 * g) when 2^8 * g is exact, i.e. did not overflow */
	const int one_mul = !(__builtin_isinf(g8) && !__builtin_isinf(g));
	const __m256 m1 = one_mul ? _mm256_set1_ps(g8) : _mm256_set1_ps(256.0f);
	const size_t osize = out == OUT_F32 ? 4 : 2;
	uint8_t *d = dst;
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m128i c = _mm_loadu_si128((const __m128i *)(codes + i));
		__m256i w = _mm256_cvtepu8_epi16(c);
		__m256i h = _mm256_or_si256(
			_mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x7f)), 7),
			_mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x80)), 8));
		__m256 y0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), m1);
		__m256 y1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), m1);
		if (!one_mul) {
			y0 = _mm256_mul_ps(y0, vg);
			y1 = _mm256_mul_ps(y1, vg);
		}
		const __m128i m7 = _mm_set1_epi8(0x7f);
		__m128i nan = _mm_cmpeq_epi8(_mm_and_si128(c, m7), m7);
		if (__builtin_expect(_mm_movemask_epi8(nan) != 0, 0)) {
			y0 = fp8_nan_fix(y0, nan, c, vg);
			y1 = fp8_nan_fix(y1, _mm_srli_si128(nan, 8), _mm_srli_si128(c, 8), vg);
		}
		emit16(y0, y1, d + osize * i, out, mode);
	}
	if (mode != STORE_PLAIN)
		_mm_sfence();
	if (i < n)
		ts__kernels_scalar()->decode[TS_CODEC_FP8][out](codes + i, NULL, n - i, 1, g,
								d + osize * i);
}

/* int8: symmetric y = (float)(int8)code * s; asymmetric y = (float)(code - z) * s. */
TS_AVX2_INLINE void int8_body(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
			      size_t bs, int asym, void *dst, int out, int mode)
{
	const size_t osize = out == OUT_F32 ? 4 : 2;
	const size_t rec = asym ? TS_INT8_ASYM_SCALE_BYTES : TS_INT8_SYM_SCALE_BYTES;
	uint8_t *d = dst;

	if (bs % 16 != 0) { /* not a valid int8 block size: leave it to the reference */
		const ts__kernels *ref = ts__kernels_scalar();
		(asym ? ref->decode_int8_asym : ref->decode[TS_CODEC_INT8])[out](
			codes, scales, nblocks, (int)bs, 1.0f, dst);
		return;
	}

	for (size_t b = 0; b < nblocks; b++) {
		const uint8_t *r = scales + rec * b;
		__m256 s = _mm256_castsi256_ps(_mm256_set1_epi32((int)avx2_load_u32(r)));
		__m256i z = _mm256_set1_epi32(asym ? r[4] : 0);
		const uint8_t *c = codes + bs * b;
		uint8_t *o = d + osize * bs * b;
		for (size_t i = 0; i < bs; i += 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(c + i));
			__m256i a, e;
			if (asym) {
				a = _mm256_sub_epi32(_mm256_cvtepu8_epi32(v), z);
				e = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)), z);
			} else {
				a = _mm256_cvtepi8_epi32(v);
				e = _mm256_cvtepi8_epi32(_mm_srli_si128(v, 8));
			}
			emit16(_mm256_mul_ps(_mm256_cvtepi32_ps(a), s),
			       _mm256_mul_ps(_mm256_cvtepi32_ps(e), s), o + osize * i, out, mode);
		}
	}
	if (mode != STORE_PLAIN)
		_mm_sfence();
}

/*
 * The tables of the calling thread's last call, kept for its next: a table is a pure function
 * of (scale byte, format, tensor scale, output type), so calls that agree on the last three
 * reuse the tables built so far. A page of a few thousand blocks sees a few dozen scale bytes;
 * rebuilding them for every page cost as much as decoding a small page.
 */
struct fp4_tabs_kept {
	struct fp4_tabs T;
	uint32_t g_bits;
	int nvfp4, out, used;
};
static _Thread_local struct fp4_tabs_kept kept_tabs;

static struct fp4_tabs *fp4_tabs_for(int nvfp4, float g, int out)
{
	struct fp4_tabs_kept *k = &kept_tabs;
	uint32_t gb;

	memcpy(&gb, &g, sizeof(gb));
	if (!k->used || k->g_bits != gb || k->nvfp4 != nvfp4 || k->out != out) {
		memset(k->T.valid, 0, sizeof(k->T.valid));
		k->g_bits = gb;
		k->nvfp4 = nvfp4;
		k->out = out;
		k->used = 1;
	}
	return &k->T;
}

TS_AVX2_INLINE void fp4_call(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
			     int nvfp4, float g, void *dst, int out, int mode)
{
	fp4_body(codes, scales, nblocks, nvfp4, g, dst, out, mode, fp4_tabs_for(nvfp4, g, out));
}

/* One exported function per (codec, output), each choosing its store mode once. */
#define DEFINE_DECODE(name, out, body)                                                           \
	void ts__avx2_##name(const uint8_t *codes, const uint8_t *scales, size_t nblocks,        \
			     int block_size, float tensor_scale, void *dst)                      \
	{                                                                                        \
		size_t n = nblocks * (size_t)block_size;                                         \
		(void)scales;                                                                    \
		(void)tensor_scale;                                                              \
		switch (avx2_store_mode(dst, n * (out == OUT_F32 ? 4 : 2))) {                    \
		case STORE_NT32:                                                                 \
			body(out, STORE_NT32);                                                   \
			break;                                                                   \
		case STORE_NT16:                                                                 \
			body(out, STORE_NT16);                                                   \
			break;                                                                   \
		default:                                                                         \
			body(out, STORE_PLAIN);                                                  \
		}                                                                                \
	}

#define NVFP4_BODY(out, mode) fp4_call(codes, scales, nblocks, 1, tensor_scale, dst, out, mode)
#define MXFP4_BODY(out, mode) fp4_call(codes, scales, nblocks, 0, 1.0f, dst, out, mode)
#define FP8_BODY(out, mode) fp8_body(codes, n, tensor_scale, dst, out, mode)
#define INT8_BODY(out, mode)                                                                     \
	int8_body(codes, scales, nblocks, (size_t)block_size, 0, dst, out, mode)
#define INT8A_BODY(out, mode)                                                                    \
	int8_body(codes, scales, nblocks, (size_t)block_size, 1, dst, out, mode)

DEFINE_DECODE(nvfp4_decode_f32, OUT_F32, NVFP4_BODY)
DEFINE_DECODE(nvfp4_decode_bf16, OUT_BF16, NVFP4_BODY)
DEFINE_DECODE(nvfp4_decode_f16, OUT_F16, NVFP4_BODY)
DEFINE_DECODE(mxfp4_decode_f32, OUT_F32, MXFP4_BODY)
DEFINE_DECODE(mxfp4_decode_bf16, OUT_BF16, MXFP4_BODY)
DEFINE_DECODE(mxfp4_decode_f16, OUT_F16, MXFP4_BODY)
DEFINE_DECODE(fp8_decode_f32, OUT_F32, FP8_BODY)
DEFINE_DECODE(fp8_decode_bf16, OUT_BF16, FP8_BODY)
DEFINE_DECODE(fp8_decode_f16, OUT_F16, FP8_BODY)
DEFINE_DECODE(int8_decode_f32, OUT_F32, INT8_BODY)
DEFINE_DECODE(int8_decode_bf16, OUT_BF16, INT8_BODY)
DEFINE_DECODE(int8_decode_f16, OUT_F16, INT8_BODY)
DEFINE_DECODE(int8_asym_decode_f32, OUT_F32, INT8A_BODY)
DEFINE_DECODE(int8_asym_decode_bf16, OUT_BF16, INT8A_BODY)
DEFINE_DECODE(int8_asym_decode_f16, OUT_F16, INT8A_BODY)

/* The rows variants of the 4-bit decoders: one set of tables for every row of the call; the
 * store mode is chosen per row exactly as a one-row call would choose it. */
TS_AVX2_INLINE void fp4_rows(const uint8_t *codes, size_t code_stride, const uint8_t *scales,
			     size_t scale_stride, size_t rows, size_t nblocks, int nvfp4, float g,
			     void *dst, size_t dst_stride, int out)
{
	const size_t row_bytes = nblocks * (nvfp4 ? 16 : 32) * (out == OUT_F32 ? 4 : 2);
	struct fp4_tabs *T = fp4_tabs_for(nvfp4, g, out);

	for (size_t r = 0; r < rows; r++) {
		const uint8_t *c = codes + r * code_stride, *s = scales + r * scale_stride;
		uint8_t *d = (uint8_t *)dst + r * dst_stride;
		switch (avx2_store_mode(d, row_bytes)) {
		case STORE_NT32:
			fp4_body(c, s, nblocks, nvfp4, g, d, out, STORE_NT32, T);
			break;
		case STORE_NT16:
			fp4_body(c, s, nblocks, nvfp4, g, d, out, STORE_NT16, T);
			break;
		default:
			fp4_body(c, s, nblocks, nvfp4, g, d, out, STORE_PLAIN, T);
		}
	}
}

#define DEFINE_FP4_ROWS(name, out, nvfp4)                                                       \
	void ts__avx2_##name(const uint8_t *codes, size_t code_stride, const uint8_t *scales,    \
			     size_t scale_stride, size_t rows, size_t nblocks, int block_size,   \
			     float tensor_scale, void *dst, size_t dst_stride)                   \
	{                                                                                        \
		(void)block_size;                                                                \
		fp4_rows(codes, code_stride, scales, scale_stride, rows, nblocks, nvfp4,         \
			 nvfp4 ? tensor_scale : 1.0f, dst, dst_stride, out);                     \
	}

DEFINE_FP4_ROWS(nvfp4_decode_rows_f32, OUT_F32, 1)
DEFINE_FP4_ROWS(nvfp4_decode_rows_bf16, OUT_BF16, 1)
DEFINE_FP4_ROWS(nvfp4_decode_rows_f16, OUT_F16, 1)
DEFINE_FP4_ROWS(mxfp4_decode_rows_f32, OUT_F32, 0)
DEFINE_FP4_ROWS(mxfp4_decode_rows_bf16, OUT_BF16, 0)
DEFINE_FP4_ROWS(mxfp4_decode_rows_f16, OUT_F16, 0)
