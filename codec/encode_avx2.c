/*
 * AVX2 encoders: nvfp4 (nvidia recipe) and mxfp4, eight blocks at a time.
 *
 * The eight block maxima of a group are reduced into one vector (lane k = block k), so that the
 * block-scale arithmetic (E4M3 rounding, the division S / sf, the E8M0 exponent) runs once per
 * eight blocks; the element codes are then 7 compares against the E2M1 rounding thresholds.
 *
 * Invariants
 *   1. The codes and scales equal the scalar reference's bit for bit (codec/elem.h for the element
 *      roundings, the recipes of docs/FORMAT.md and tests/golden/README.md): same float
 *      operations in the same order; the E4M3 and E2M1 roundings are the same threshold and
 *      bit-carry computations done lane by lane.
 *   2. A group of fewer than eight blocks (the end of a call) goes to the scalar reference.
 *   3. Inputs are finite (the caller checks); no allocation.
 */
#include "config.h"

#include "codec/elem.h"
#include "codec/kernels_avx2.h"

/* Lane k of the result = max over the 8 lanes of m[k]. */
TS_AVX2_INLINE __m256 hmax8(const __m256 m[8])
{
	__m256 u01 = _mm256_max_ps(_mm256_unpacklo_ps(m[0], m[1]), _mm256_unpackhi_ps(m[0], m[1]));
	__m256 u23 = _mm256_max_ps(_mm256_unpacklo_ps(m[2], m[3]), _mm256_unpackhi_ps(m[2], m[3]));
	__m256 u45 = _mm256_max_ps(_mm256_unpacklo_ps(m[4], m[5]), _mm256_unpackhi_ps(m[4], m[5]));
	__m256 u67 = _mm256_max_ps(_mm256_unpacklo_ps(m[6], m[7]), _mm256_unpackhi_ps(m[6], m[7]));
	__m256 v03 = _mm256_max_ps(_mm256_shuffle_ps(u01, u23, _MM_SHUFFLE(1, 0, 1, 0)),
				   _mm256_shuffle_ps(u01, u23, _MM_SHUFFLE(3, 2, 3, 2)));
	__m256 v47 = _mm256_max_ps(_mm256_shuffle_ps(u45, u67, _MM_SHUFFLE(1, 0, 1, 0)),
				   _mm256_shuffle_ps(u45, u67, _MM_SHUFFLE(3, 2, 3, 2)));
	return _mm256_max_ps(_mm256_permute2f128_ps(v03, v47, 0x20),
			     _mm256_permute2f128_ps(v03, v47, 0x31));
}

TS_AVX2_INLINE __m256 abs_ps(__m256 v)
{
	return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

/* E4M3 code of non-negative lanes (finite or +Inf), satfinite, round to nearest even
 * (ts__e4m3_encode for a clear sign bit). */
TS_AVX2_INLINE __m256i e4m3_pos(__m256 v)
{
	__m256i a = _mm256_castps_si256(v);
	__m256i sat = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x43e80000 - 1));
	__m256i sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), a);
	__m256i subcode = _mm256_cvtps_epi32(_mm256_mul_ps(v, _mm256_set1_ps(512.0f)));
	__m256i r = _mm256_add_epi32(
		_mm256_add_epi32(a, _mm256_set1_epi32(0x7ffff)),
		_mm256_and_si256(_mm256_srli_epi32(a, 20), _mm256_set1_epi32(1)));
	__m256i norm = _mm256_sub_epi32(_mm256_srli_epi32(r, 20), _mm256_set1_epi32(120 << 3));
	__m256i code = _mm256_blendv_epi8(norm, subcode, sub);
	return _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7e), sat);
}

/* The value of E4M3 codes 0..0x7e (exact). */
TS_AVX2_INLINE __m256 e4m3_value(__m256i code)
{
	return _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(code, 20)),
			     _mm256_set1_ps(0x1p120f));
}

/* E2M1 codes (0..15 in 32-bit lanes) of x * m (ts__e2m1_encode of the product). */
TS_AVX2_INLINE __m256i e2m1_8(__m256 x, __m256 m)
{
	__m256 y = _mm256_mul_ps(x, m);
	__m256 a = abs_ps(y);
	__m256i n = _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(0.25f), _CMP_GT_OQ));
	n = _mm256_add_epi32(n, _mm256_castps_si256(
					_mm256_cmp_ps(a, _mm256_set1_ps(0.75f), _CMP_GE_OQ)));
	n = _mm256_add_epi32(n, _mm256_castps_si256(
					_mm256_cmp_ps(a, _mm256_set1_ps(1.25f), _CMP_GT_OQ)));
	n = _mm256_add_epi32(n, _mm256_castps_si256(
					_mm256_cmp_ps(a, _mm256_set1_ps(1.75f), _CMP_GE_OQ)));
	n = _mm256_add_epi32(n, _mm256_castps_si256(
					_mm256_cmp_ps(a, _mm256_set1_ps(2.5f), _CMP_GT_OQ)));
	n = _mm256_add_epi32(n, _mm256_castps_si256(
					_mm256_cmp_ps(a, _mm256_set1_ps(3.5f), _CMP_GE_OQ)));
	n = _mm256_add_epi32(n, _mm256_castps_si256(
					_mm256_cmp_ps(a, _mm256_set1_ps(5.0f), _CMP_GT_OQ)));
	/* each true compare is -1 */
	__m256i mag = _mm256_sub_epi32(_mm256_setzero_si256(), n);
	__m256i sign = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(y), 28),
					_mm256_set1_epi32(8));
	return _mm256_or_si256(mag, sign);
}

/* 16 codes (c0: elements 0..7, c1: 8..15) -> 8 bytes, element 2k in the low nibble of byte k. */
TS_AVX2_INLINE void pack_nibbles16(__m256i c0, __m256i c1, uint8_t *out)
{
	/* words e0..e15 in order, then dword k = e(2k) | e(2k+1) << 16 */
	__m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(c0, c1), 0xd8);
	__m256i t = _mm256_or_si256(w, _mm256_srli_epi32(w, 12));
	const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
					      -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1,
					      -1, -1, -1, -1);
	t = _mm256_shuffle_epi8(t, pick);
	t = _mm256_permutevar8x32_epi32(t, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
	_mm_storel_epi64((__m128i *)out, _mm256_castsi256_si128(t));
}

/* The low bytes of 8 lanes -> 8 bytes at @p out. */
TS_AVX2_INLINE void store_bytes8(__m256i v, uint8_t *out)
{
	const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
					      -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1,
					      -1, -1, -1, -1);
	__m256i t = _mm256_shuffle_epi8(v, pick);
	t = _mm256_permutevar8x32_epi32(t, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
	_mm_storel_epi64((__m128i *)out, _mm256_castsi256_si128(t));
}

void ts__avx2_nvfp4_encode_nvidia(const float *x, size_t nblocks, float enc_scale,
				  uint8_t *codes, uint8_t *scales)
{
	const __m256 s6 = _mm256_set1_ps(enc_scale * (1.0f / 6.0f));
	const __m256 vs = _mm256_set1_ps(enc_scale);
	size_t b = 0;

	for (; b + 8 <= nblocks; b += 8) {
		const float *p = x + 16 * b;
		__m256 m[8];
		for (int k = 0; k < 8; k++)
			m[k] = _mm256_max_ps(abs_ps(_mm256_loadu_ps(p + 16 * k)),
					     abs_ps(_mm256_loadu_ps(p + 16 * k + 8)));
		__m256i sf = e4m3_pos(_mm256_mul_ps(hmax8(m), s6));
		store_bytes8(sf, scales + b);
		float inv[8];
		_mm256_storeu_ps(inv, _mm256_div_ps(vs, e4m3_value(sf)));
		int zero = _mm256_movemask_ps(
			_mm256_castsi256_ps(_mm256_cmpeq_epi32(sf, _mm256_setzero_si256())));
		for (int k = 0; k < 8; k++) {
			uint8_t *c = codes + 8 * (b + k);
			if (zero >> k & 1) {
				memset(c, 0, 8);
				continue;
			}
			__m256 mk = _mm256_set1_ps(inv[k]);
			pack_nibbles16(e2m1_8(_mm256_loadu_ps(p + 16 * k), mk),
				       e2m1_8(_mm256_loadu_ps(p + 16 * k + 8), mk), c);
		}
	}
	if (b < nblocks)
		ts__kernels_scalar()->nvfp4_encode_nvidia(x + 16 * b, nblocks - b, enc_scale,
							    codes + 8 * b, scales + b);
}

void ts__avx2_mxfp4_encode(const float *x, size_t nblocks, float enc_scale, uint8_t *codes,
			   uint8_t *scales)
{
	size_t b = 0;

	for (; b + 8 <= nblocks; b += 8) {
		const float *p = x + 32 * b;
		__m256 m[8];
		for (int k = 0; k < 8; k++) {
			const float *q = p + 32 * k;
			m[k] = _mm256_max_ps(_mm256_max_ps(abs_ps(_mm256_loadu_ps(q)),
							   abs_ps(_mm256_loadu_ps(q + 8))),
					     _mm256_max_ps(abs_ps(_mm256_loadu_ps(q + 16)),
							   abs_ps(_mm256_loadu_ps(q + 24))));
		}
		__m256i amax = _mm256_castps_si256(hmax8(m));
		/* scale byte = floor(log2(amax)) - 2 + 127, clamped at 0: the exponent field minus 2
		 * (a subnormal amax has field 0 and lands on the clamp, as it should) */
		__m256i byte = _mm256_max_epi32(
			_mm256_sub_epi32(_mm256_srli_epi32(amax, 23), _mm256_set1_epi32(2)),
			_mm256_setzero_si256());
		store_bytes8(byte, scales + b);
		/* 2^-e = 2^(127 - byte): float bits (254 - byte) << 23, always a normal float */
		float mul[8];
		_mm256_storeu_ps(mul, _mm256_castsi256_ps(_mm256_slli_epi32(
					      _mm256_sub_epi32(_mm256_set1_epi32(254), byte), 23)));
		int zero = _mm256_movemask_ps(
			_mm256_castsi256_ps(_mm256_cmpeq_epi32(amax, _mm256_setzero_si256())));
		for (int k = 0; k < 8; k++) {
			uint8_t *c = codes + 16 * (b + k);
			const float *q = p + 32 * k;
			if (zero >> k & 1) {
				memset(c, 0, 16);
				continue;
			}
			__m256 mk = _mm256_set1_ps(mul[k]);
			pack_nibbles16(e2m1_8(_mm256_loadu_ps(q), mk),
				       e2m1_8(_mm256_loadu_ps(q + 8), mk), c);
			pack_nibbles16(e2m1_8(_mm256_loadu_ps(q + 16), mk),
				       e2m1_8(_mm256_loadu_ps(q + 24), mk), c + 8);
		}
	}
	if (b < nblocks)
		ts__kernels_scalar()->mxfp4_encode(x + 32 * b, nblocks - b, enc_scale,
						     codes + 16 * b, scales + b);
}
