/*
 * lossless: the AVX2 plane joins (the kernel table's lossless_join16/join32). Same bits as the
 * scalar reference in codec/lossless.c, which also serves the tail of each call.
 *
 * Invariants
 *   1. Loads never pass the end of either plane: vector steps run while a whole step of input
 *      remains (for join32 the 16-byte loads of 12 sign+mantissa bytes need 4 bytes of slack,
 *      so the last step before the tail is left to the scalar code).
 */
#include "config.h"

#include "codec/kernels_avx2.h"
#include "codec/lossless.h"

void ts__avx2_lossless_join16(const uint8_t *e, const uint8_t *sm, size_t n, void *dst)
{
	uint16_t *d = dst;
	const __m256i m80 = _mm256_set1_epi16(0x80), m7f = _mm256_set1_epi16(0x7f);
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(e + i)));
		__m256i s = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(sm + i)));
		__m256i w = _mm256_or_si256(_mm256_slli_epi16(x, 7),
					    _mm256_slli_epi16(_mm256_and_si256(s, m80), 8));
		w = _mm256_or_si256(w, _mm256_and_si256(s, m7f));
		_mm256_storeu_si256((__m256i *)(d + i), w);
	}
	ts__lossless_join16_scalar(e + i, sm + i, n - i, d + i);
}

void ts__avx2_lossless_join32(const uint8_t *e, const uint8_t *sm, size_t n, void *dst)
{
	uint32_t *d = dst;
	/* bytes 3i, 3i+1, 3i+2 of 12 to dword i (the fourth byte zero) */
	const __m128i shuf = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
	const __m256i sign = _mm256_set1_epi32(0x800000), mant = _mm256_set1_epi32(0x7fffff);
	size_t i = 0;

	for (; i + 8 <= n && 3 * i + 28 <= 3 * n; i += 8) {
		__m128i lo = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(sm + 3 * i)), shuf);
		__m128i hi = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(sm + 3 * i + 12)),
					      shuf);
		__m256i s = _mm256_set_m128i(hi, lo);
		__m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(e + i)));
		__m256i w = _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(s, sign), 8),
					    _mm256_slli_epi32(x, 23));
		w = _mm256_or_si256(w, _mm256_and_si256(s, mant));
		_mm256_storeu_si256((__m256i *)(d + i), w);
	}
	ts__lossless_join32_scalar(e + i, sm + 3 * i, n - i, d + i);
}
