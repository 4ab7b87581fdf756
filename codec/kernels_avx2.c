/*
 * The AVX2 (+FMA, F16C) kernel table: a copy of the scalar table with the hot paths replaced —
 * decode of nvfp4, mxfp4, int8 and fp8 to F32/BF16/F16 (codec/decode_avx2.c), encode of nvfp4
 * (nvidia recipe) and mxfp4 (codec/encode_avx2.c), the lossless plane joins
 * (codec/lossless_avx2.c), the statistics' sub-block sums (codec/stats_avx2.c), the page
 * checksum (codec/checksum_avx2.c), and the F32/BF16/F16 conversions (here).
 *
 * Invariants
 *   1. ts__kernels_avx2() returns NULL unless the CPU (and OS) support AVX2, FMA and F16C; the
 *      check and the table are resolved once (pthread_once).
 *   2. Every entry computes exactly the scalar reference's bytes (tests/test_kernels.c).
 *   3. Entries not overridden are the scalar reference's own functions.
 */
#include "config.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/elem.h"
#include "codec/kernels_avx2.h"
#include "common/env.h"

/* ---- conversions ----------------------------------------------------------------------------- */

static void convert_tail(int from, int to, const void *src, size_t done, size_t n, void *dst)
{
	static const size_t size[TS_KERNEL_OUTS] = {4, 2, 2};
	if (done < n)
		ts__kernels_scalar()->convert[from][to]((const uint8_t *)src + size[from] * done,
							n - done,
							(uint8_t *)dst + size[to] * done);
}

static void f32_to_bf16(const void *src, size_t n, void *dst)
{
	const float *s = src;
	uint16_t *d = dst;
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm256_storeu_si256((__m256i *)(d + i),
				    avx2_pack16(avx2_bf16_epi32(_mm256_loadu_ps(s + i)),
						avx2_bf16_epi32(_mm256_loadu_ps(s + i + 8))));
	convert_tail(TS_F32, TS_BF16, src, i, n, dst);
}

static void f32_to_f16(const void *src, size_t n, void *dst)
{
	const float *s = src;
	uint16_t *d = dst;
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(d + i), avx2_f16_epi16(_mm256_loadu_ps(s + i)));
	convert_tail(TS_F32, TS_F16, src, i, n, dst);
}

TS_AVX2_INLINE __m256 bf16_8(const uint16_t *p)
{
	__m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
	return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}

TS_AVX2_INLINE __m256 f16_8(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static void bf16_to_f32(const void *src, size_t n, void *dst)
{
	const uint16_t *s = src;
	float *d = dst;
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(d + i, bf16_8(s + i));
	convert_tail(TS_BF16, TS_F32, src, i, n, dst);
}

static void f16_to_f32(const void *src, size_t n, void *dst)
{
	const uint16_t *s = src;
	float *d = dst;
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(d + i, f16_8(s + i));
	convert_tail(TS_F16, TS_F32, src, i, n, dst);
}

/* BF16 -> F16 and F16 -> BF16 go through the exact F32 value, as the reference does. */
static void bf16_to_f16(const void *src, size_t n, void *dst)
{
	const uint16_t *s = src;
	uint16_t *d = dst;
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(d + i), avx2_f16_epi16(bf16_8(s + i)));
	convert_tail(TS_BF16, TS_F16, src, i, n, dst);
}

static void f16_to_bf16(const void *src, size_t n, void *dst)
{
	const uint16_t *s = src;
	uint16_t *d = dst;
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm256_storeu_si256((__m256i *)(d + i),
				    avx2_pack16(avx2_bf16_epi32(f16_8(s + i)),
						avx2_bf16_epi32(f16_8(s + i + 8))));
	convert_tail(TS_F16, TS_BF16, src, i, n, dst);
}

/* ---- the table ------------------------------------------------------------------------------- */

static ts__kernels avx2_table;
static int avx2_usable;
static pthread_once_t avx2_once = PTHREAD_ONCE_INIT;

static void avx2_init(void)
{
	__builtin_cpu_init();
	/* F16C through CPUID leaf 1 (ECX bit 29): clang before 15 rejects
	 * __builtin_cpu_supports("f16c"), which broke the clang (fuzzing) build. */
	unsigned eax, ebx, ecx, edx;
	if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
	    !__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 29)))
		return;

	ts__kernels *t = &avx2_table;
	*t = *ts__kernels_scalar();
	t->name = "avx2";

	t->decode[TS_CODEC_NVFP4][TS_F32] = ts__avx2_nvfp4_decode_f32;
	t->decode[TS_CODEC_NVFP4][TS_BF16] = ts__avx2_nvfp4_decode_bf16;
	t->decode[TS_CODEC_NVFP4][TS_F16] = ts__avx2_nvfp4_decode_f16;
	t->decode[TS_CODEC_MXFP4][TS_F32] = ts__avx2_mxfp4_decode_f32;
	t->decode[TS_CODEC_MXFP4][TS_BF16] = ts__avx2_mxfp4_decode_bf16;
	t->decode[TS_CODEC_MXFP4][TS_F16] = ts__avx2_mxfp4_decode_f16;
	t->decode[TS_CODEC_FP8][TS_F32] = ts__avx2_fp8_decode_f32;
	t->decode[TS_CODEC_FP8][TS_BF16] = ts__avx2_fp8_decode_bf16;
	t->decode[TS_CODEC_FP8][TS_F16] = ts__avx2_fp8_decode_f16;
	t->decode[TS_CODEC_INT8][TS_F32] = ts__avx2_int8_decode_f32;
	t->decode[TS_CODEC_INT8][TS_BF16] = ts__avx2_int8_decode_bf16;
	t->decode[TS_CODEC_INT8][TS_F16] = ts__avx2_int8_decode_f16;
	t->decode_rows[TS_CODEC_NVFP4][TS_F32] = ts__avx2_nvfp4_decode_rows_f32;
	t->decode_rows[TS_CODEC_NVFP4][TS_BF16] = ts__avx2_nvfp4_decode_rows_bf16;
	t->decode_rows[TS_CODEC_NVFP4][TS_F16] = ts__avx2_nvfp4_decode_rows_f16;
	t->decode_rows[TS_CODEC_MXFP4][TS_F32] = ts__avx2_mxfp4_decode_rows_f32;
	t->decode_rows[TS_CODEC_MXFP4][TS_BF16] = ts__avx2_mxfp4_decode_rows_bf16;
	t->decode_rows[TS_CODEC_MXFP4][TS_F16] = ts__avx2_mxfp4_decode_rows_f16;
	t->decode_int8_asym[TS_F32] = ts__avx2_int8_asym_decode_f32;
	t->decode_int8_asym[TS_BF16] = ts__avx2_int8_asym_decode_bf16;
	t->decode_int8_asym[TS_F16] = ts__avx2_int8_asym_decode_f16;

	t->convert[TS_F32][TS_BF16] = f32_to_bf16;
	t->convert[TS_F32][TS_F16] = f32_to_f16;
	t->convert[TS_BF16][TS_F32] = bf16_to_f32;
	t->convert[TS_F16][TS_F32] = f16_to_f32;
	t->convert[TS_BF16][TS_F16] = bf16_to_f16;
	t->convert[TS_F16][TS_BF16] = f16_to_bf16;

	t->nvfp4_encode_nvidia = ts__avx2_nvfp4_encode_nvidia;
	t->mxfp4_encode = ts__avx2_mxfp4_encode;
	t->lossless_join16 = ts__avx2_lossless_join16;
	t->lossless_join32 = ts__avx2_lossless_join32;
	t->checksum_xxh3 = ts__avx2_checksum_xxh3;
	t->stats = ts__avx2_stats;

	/* Non-temporal stores for large decodes only on request: on this machine (AMD EPYC, a VM)
	 * ordinary stores wrote 64M-element F32 outputs 10-20% faster (docs/KERNELS.md). */
	const char *nt = ts__env("TSTORE_NT_STORES");
	ts__avx2_nt_bytes = nt && strcmp(nt, "1") == 0 ? TS_AVX2_NT_BYTES : SIZE_MAX;

	avx2_usable = 1;
}

const ts__kernels *ts__kernels_avx2(void)
{
	pthread_once(&avx2_once, avx2_init);
	return avx2_usable ? &avx2_table : NULL;
}
