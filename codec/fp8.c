/*
 * fp8: one E4M3 code per element and one per-tensor float32 decode scale d; y = e4m3(code) * d.
 * Encoding: S = 448 / amax (1 when amax is 0), q_i = e4m3_rne_satfinite(x_i * S); d = amax / 448
 * (1 when amax is 0). There is no scale plane: the tensor scale is kept by the caller.
 *
 * Invariants
 *   1. S is clamped to FLT_MAX, so a subnormal amax never makes x * S a NaN (0 * Inf).
 *   2. Decoding is one float32 multiply per element.
 */
#include "config.h"

#include <float.h>

#include "codec/codecs.h"

float ts__fp8_encode_scale(float amax)
{
	if (!(amax > 0.0f))
		return 1.0f;
	float s = 448.0f / amax;
	return s > FLT_MAX ? FLT_MAX : s;
}

float ts__fp8_tensor_scale(float amax)
{
	return amax > 0.0f ? amax / 448.0f : 1.0f;
}

void ts__fp8_encode_scalar(const float *x, size_t n, float enc_scale, uint8_t *codes)
{
	for (size_t i = 0; i < n; i++)
		codes[i] = ts__e4m3_encode(x[i] * enc_scale);
}

static inline __attribute__((always_inline)) void decode(const uint8_t *codes, size_t n,
							 float d, void *dst, int out)
{
	for (size_t i = 0; i < n; i++)
		ts__store_out(dst, i, ts__e4m3_decode(codes[i]) * d, out);
}

void ts__fp8_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales, size_t n,
			       int block_size, float tensor_scale, void *dst)
{
	(void)scales, (void)block_size;
	decode(codes, n, tensor_scale, dst, TS_F32);
}

void ts__fp8_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales, size_t n,
				int block_size, float tensor_scale, void *dst)
{
	(void)scales, (void)block_size;
	decode(codes, n, tensor_scale, dst, TS_BF16);
}

void ts__fp8_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales, size_t n,
			       int block_size, float tensor_scale, void *dst)
{
	(void)scales, (void)block_size;
	decode(codes, n, tensor_scale, dst, TS_F16);
}
