/*
 * Helpers shared by the AVX2 kernel files (codec/..._avx2.c). Included only by files compiled with
 * -mavx2 -mfma -mf16c, and only reached after ts__kernels_avx2() has checked the CPU.
 *
 * Invariants
 *   1. Every helper computes, lane by lane, exactly what the scalar element conversions of
 *      codec/elem.h compute (rounding, saturation, NaN bits included).
 *   2. Decoders write through out_store_*(): mode STORE_PLAIN uses unaligned stores; STORE_NT16
 *      non-temporal 128-bit stores (16-byte aligned destination), STORE_NT32 non-temporal
 *      256-bit stores (32-byte aligned destination); the caller issues _mm_sfence() after a
 *      non-temporal run.
 */
#ifndef TS_CODEC_KERNELS_AVX2_H
#define TS_CODEC_KERNELS_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "codec/kernels.h"

#define TS_AVX2_INLINE static inline __attribute__((always_inline))

enum { STORE_PLAIN = 0, STORE_NT16 = 1, STORE_NT32 = 2 };


/* Decoders (codec/decode_avx2.c) and encoders (codec/encode_avx2.c): ts__avx2_<codec>_decode_<out>
 * with the signature of ts__decode_fn. */
#define TS_AVX2_DECODERS(X)                                                                      \
	X(nvfp4_decode_f32) X(nvfp4_decode_bf16) X(nvfp4_decode_f16)                             \
	X(mxfp4_decode_f32) X(mxfp4_decode_bf16) X(mxfp4_decode_f16)                             \
	X(fp8_decode_f32) X(fp8_decode_bf16) X(fp8_decode_f16)                                   \
	X(int8_decode_f32) X(int8_decode_bf16) X(int8_decode_f16)                                \
	X(int8_asym_decode_f32) X(int8_asym_decode_bf16) X(int8_asym_decode_f16)
#define TS_AVX2_DECLARE(name)                                                                    \
	void ts__avx2_##name(const uint8_t *codes, const uint8_t *scales, size_t nblocks,        \
			     int block_size, float tensor_scale, void *dst);
TS_AVX2_DECODERS(TS_AVX2_DECLARE)
#undef TS_AVX2_DECLARE

/* The rows decoders of the 4-bit codecs (signature of ts__decode_rows_fn). */
#define TS_AVX2_ROW_DECODERS(X)                                                                  \
	X(nvfp4_decode_rows_f32) X(nvfp4_decode_rows_bf16) X(nvfp4_decode_rows_f16)              \
	X(mxfp4_decode_rows_f32) X(mxfp4_decode_rows_bf16) X(mxfp4_decode_rows_f16)
#define TS_AVX2_DECLARE_ROWS(name)                                                               \
	void ts__avx2_##name(const uint8_t *codes, size_t code_stride, const uint8_t *scales,    \
			     size_t scale_stride, size_t rows, size_t nblocks, int block_size,   \
			     float tensor_scale, void *dst, size_t dst_stride);
TS_AVX2_ROW_DECODERS(TS_AVX2_DECLARE_ROWS)
#undef TS_AVX2_DECLARE_ROWS

void ts__avx2_nvfp4_encode_nvidia(const float *x, size_t nblocks, float enc_scale,
				  uint8_t *codes, uint8_t *scales);
void ts__avx2_lossless_join16(const uint8_t *e, const uint8_t *sm, size_t n, void *dst);
void ts__avx2_lossless_join32(const uint8_t *e, const uint8_t *sm, size_t n, void *dst);
uint64_t ts__avx2_checksum_xxh3(const void *a, size_t na, const void *b, size_t nb);
void ts__avx2_mxfp4_encode(const float *x, size_t nblocks, float enc_scale, uint8_t *codes,
			   uint8_t *scales);
void ts__avx2_stats(const float *x, const float *a, size_t n, double k, ts__stats_sums *s);

/* ---- F32 -> BF16 / F16, lane by lane --------------------------------------------------------- */

/* BF16 bits of each lane in the low half of a 32-bit lane (upper half zero): RNE; a NaN keeps
 * its top half with the quiet bit set (codec/elem.h ts__bf16_encode). */
TS_AVX2_INLINE __m256i avx2_bf16_epi32(__m256 y)
{
	const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
	__m256i u = _mm256_castps_si256(y);
	__m256i hi = _mm256_srli_epi32(u, 16);
	__m256i r = _mm256_srli_epi32(
		_mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(hi, one)), 16);
	__m256i q = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
	__m256 nan = _mm256_cmp_ps(y, y, _CMP_UNORD_Q);
	return _mm256_castps_si256(
		_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(q), nan));
}

/* F16 bits of 8 lanes: F16C with round to nearest even matches ts__f16_encode, NaN included. */
TS_AVX2_INLINE __m128i avx2_f16_epi16(__m256 y)
{
	return _mm256_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* F16 bits in the low half of 32-bit lanes. */
TS_AVX2_INLINE __m256i avx2_f16_epi32(__m256 y)
{
	return _mm256_cvtepu16_epi32(avx2_f16_epi16(y));
}

/* Two vectors of 16-bit values held in 32-bit lanes -> 16 consecutive 16-bit values. */
TS_AVX2_INLINE __m256i avx2_pack16(__m256i a, __m256i b)
{
	return _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
}

/* ---- stores ---------------------------------------------------------------------------------- */

TS_AVX2_INLINE void out_store_ps(float *p, __m256 v, int mode)
{
	if (mode == STORE_NT32) {
		_mm256_stream_ps(p, v);
	} else if (mode == STORE_NT16) {
		_mm_stream_ps(p, _mm256_castps256_ps128(v));
		_mm_stream_ps(p + 4, _mm256_extractf128_ps(v, 1));
	} else {
		_mm256_storeu_ps(p, v);
	}
}

TS_AVX2_INLINE void out_store_si(void *p, __m256i v, int mode)
{
	if (mode == STORE_NT32) {
		_mm256_stream_si256((__m256i *)p, v);
	} else if (mode == STORE_NT16) {
		_mm_stream_si128((__m128i *)p, _mm256_castsi256_si128(v));
		_mm_stream_si128((__m128i *)p + 1, _mm256_extracti128_si256(v, 1));
	} else {
		_mm256_storeu_si256((__m256i *)p, v);
	}
}

TS_AVX2_INLINE void out_store_si128(void *p, __m128i v, int mode)
{
	if (mode != STORE_PLAIN)
		_mm_stream_si128((__m128i *)p, v);
	else
		_mm_storeu_si128((__m128i *)p, v);
}

/* The store mode for @p out_bytes of output at @p dst. */
static inline int avx2_store_mode(const void *dst, size_t out_bytes)
{
	if (out_bytes < ts__avx2_nt_bytes || ((uintptr_t)dst & 15) != 0)
		return STORE_PLAIN;
	return ((uintptr_t)dst & 31) == 0 ? STORE_NT32 : STORE_NT16;
}

static inline uint32_t avx2_load_u32(const uint8_t *p)
{
	uint32_t u;
	memcpy(&u, p, sizeof(u));
	return u;
}

#endif
