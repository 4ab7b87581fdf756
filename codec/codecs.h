/*
 * The block codecs' private interface: the portable reference kernels of each codec (collected
 * into the scalar kernel table by codec/kernels_scalar.c) and the encoders that have no vector
 * version (nvfp4 `best`, int8). codec/codec.c drives them over rows; docs/CODECS.md gives the
 * byte layouts they produce.
 *
 * Invariants
 *   1. Every function here works on whole blocks of finite float32 input (the caller checks
 *      finiteness and pads the last block of a row with +0).
 *   2. Decoders compute in float32 in the order docs/CODECS.md states, one rounding per
 *      operation (the build uses -ffp-contract=off: no fused multiply-add), so that a vector
 *      kernel can reproduce them bit for bit; BF16/F16 outputs are the RNE conversion of that
 *      float32 result.
 */
#ifndef TS_CODEC_CODECS_H
#define TS_CODEC_CODECS_H

#include <stddef.h>
#include <stdint.h>

#include "codec/elem.h"
#include "codec/kernels.h"

#define TS_NVFP4_BLOCK 16
#define TS_MXFP4_BLOCK 32
#define TS_INT8_BLOCK_MIN 16
#define TS_INT8_BLOCK_MAX 4096
#define TS_INT8_BLOCK_DEFAULT 32

/* Bytes of the scale record of one int8 block. */
#define TS_INT8_SYM_SCALE_BYTES 4  /* FP32 scale */
#define TS_INT8_ASYM_SCALE_BYTES 5 /* FP32 scale, then the uint8 zero point */

/* Store one decoded float32 as output element i of type @p out (a compile-time constant). */
static inline __attribute__((always_inline)) void ts__store_out(void *dst, size_t i, float y,
								 int out)
{
	if (out == TS_F32)
		((float *)dst)[i] = y;
	else if (out == TS_BF16)
		((uint16_t *)dst)[i] = ts__bf16_encode(y);
	else
		((uint16_t *)dst)[i] = ts__f16_encode(y);
}

/* ---- nvfp4 (codec/nvfp4.c) ----------------------------------------------------------------- */

/* The tensor decode scale g for @p amax: nvidia amax/2688, best amax/1152; 1 when amax is 0. */
float ts__nvfp4_tensor_scale(ts_recipe recipe, float amax);
/* The nvidia recipe's encode scale S = 2688/amax (clamped to FLT_MAX; 1 when amax is 0). */
float ts__nvfp4_encode_scale(float amax);

void ts__nvfp4_encode_nvidia_scalar(const float *x, size_t nblocks, float enc_scale,
				    uint8_t *codes, uint8_t *scales);
/* The `best` recipe: @p g is ts__nvfp4_tensor_scale(TS_RECIPE_BEST, amax). */
void ts__nvfp4_encode_best(const float *x, size_t nblocks, float g, uint8_t *codes,
			   uint8_t *scales);
void ts__nvfp4_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst);
void ts__nvfp4_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				  int block_size, float tensor_scale, void *dst);
void ts__nvfp4_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst);

/* ---- mxfp4 (codec/mxfp4.c) ----------------------------------------------------------------- */

void ts__mxfp4_encode_scalar(const float *x, size_t nblocks, float unused, uint8_t *codes,
			     uint8_t *scales);
void ts__mxfp4_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst);
void ts__mxfp4_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				  int block_size, float tensor_scale, void *dst);
void ts__mxfp4_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst);

/* ---- fp8 (codec/fp8.c) --------------------------------------------------------------------- */

/* S = 448/amax (clamped to FLT_MAX; 1 when amax is 0) and d = amax/448 (1 when amax is 0). */
float ts__fp8_encode_scale(float amax);
float ts__fp8_tensor_scale(float amax);
void ts__fp8_encode_scalar(const float *x, size_t n, float enc_scale, uint8_t *codes);
void ts__fp8_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales, size_t n,
			       int block_size, float tensor_scale, void *dst);
void ts__fp8_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales, size_t n,
				int block_size, float tensor_scale, void *dst);
void ts__fp8_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales, size_t n,
			       int block_size, float tensor_scale, void *dst);

/* ---- int8 (codec/int8.c) ------------------------------------------------------------------- */

void ts__int8_encode(const float *x, size_t nblocks, int block_size, int symmetric,
		     uint8_t *codes, uint8_t *scales);
void ts__int8_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				int block_size, float tensor_scale, void *dst);
void ts__int8_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst);
void ts__int8_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				int block_size, float tensor_scale, void *dst);
void ts__int8_asym_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales,
				     size_t nblocks, int block_size, float tensor_scale,
				     void *dst);
void ts__int8_asym_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales,
				      size_t nblocks, int block_size, float tensor_scale,
				      void *dst);
void ts__int8_asym_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales,
				     size_t nblocks, int block_size, float tensor_scale,
				     void *dst);

/* ---- F32/BF16/F16 conversions (codec/raw.c) ------------------------------------------------ */

/* The convert kernels (ts__convert_fn); b16_copy serves BF16->BF16 and F16->F16. */
void ts__conv_f32_to_f32_scalar(const void *src, size_t n, void *dst);
void ts__conv_b16_copy_scalar(const void *src, size_t n, void *dst);
void ts__conv_f32_to_bf16_scalar(const void *src, size_t n, void *dst);
void ts__conv_f32_to_f16_scalar(const void *src, size_t n, void *dst);
void ts__conv_bf16_to_f32_scalar(const void *src, size_t n, void *dst);
void ts__conv_f16_to_f32_scalar(const void *src, size_t n, void *dst);
void ts__conv_bf16_to_f16_scalar(const void *src, size_t n, void *dst);
void ts__conv_f16_to_bf16_scalar(const void *src, size_t n, void *dst);

/* ---- statistics' sub-block sums (codec/stats.c; ts__kernels.stats) ------------------------- */

void ts__stats_scalar(const float *x, const float *a, size_t n, double k, ts__stats_sums *s);

#endif
