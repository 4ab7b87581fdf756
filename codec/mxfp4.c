/*
 * mxfp4 (OCP Microscaling v1.0): 32-value blocks of E2M1 codes (two per byte, element 2k in the
 * low nibble) and one E8M0 scale byte per block; y = e2m1(code) * 2^(byte - 127).
 *
 * Encoding: for a block with amax > 0, e = floor(log2(amax)) - 2 clamped to [-127, 127], the
 * scale byte is e + 127 and q_i = e2m1_rne_satfinite(x_i * 2^-e). A block whose amax is 0 has
 * scale byte 0 and all codes 0.
 *
 * Invariants
 *   1. floor(log2(amax)) is read from the float's exponent field (exact, no libm). A subnormal
 *      amax is below 2^-126, so its e is below -128 and clamps to -127.
 *   2. For finite input e <= 125, so 2^-e is a normal float and x * 2^-e is exact except for
 *      values so small that they code to (signed) zero either way.
 *   3. Decoding is exact: e2m1 * 2^k has at most 2 significant bits, and 2^(byte-127) >= 2^-127
 *      keeps even the products with 0.5 representable.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "codec/codecs.h"

void ts__mxfp4_encode_scalar(const float *x, size_t nblocks, float unused, uint8_t *codes,
			     uint8_t *scales)
{
	(void)unused;
	for (size_t b = 0; b < nblocks; b++, x += 32, codes += 16) {
		uint32_t amax = 0; /* the magnitude bits order like the magnitudes */
		for (int i = 0; i < 32; i++) {
			uint32_t a = ts__f32_bits(x[i]) & 0x7fffffffu;
			amax = a > amax ? a : amax;
		}
		if (amax == 0) {
			scales[b] = 0;
			memset(codes, 0, 16);
			continue;
		}
		int e = (int)(amax >> 23) - 127 - 2;
		if (amax < 0x00800000u || e < -127)
			e = -127;
		scales[b] = (uint8_t)(e + 127);
		float r = ts__bits_f32((uint32_t)(127 - e) << 23); /* 2^-e */
		for (int j = 0; j < 16; j++)
			codes[j] = (uint8_t)(ts__e2m1_encode(x[2 * j] * r) |
					     (ts__e2m1_encode(x[2 * j + 1] * r) << 4));
	}
}

static inline __attribute__((always_inline)) void decode(const uint8_t *codes,
							 const uint8_t *scales, size_t nblocks,
							 void *dst, int out)
{
	for (size_t b = 0; b < nblocks; b++, codes += 16) {
		float s = ts__e8m0_decode(scales[b]);
		float v[16];
		for (int k = 0; k < 16; k++)
			v[k] = ts__e2m1_table[k] * s;
		size_t o = b * 32;
		for (int j = 0; j < 16; j++) {
			ts__store_out(dst, o + 2 * j, v[codes[j] & 15], out);
			ts__store_out(dst, o + 2 * j + 1, v[codes[j] >> 4], out);
		}
	}
}

void ts__mxfp4_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst)
{
	(void)block_size, (void)tensor_scale;
	decode(codes, scales, nblocks, dst, TS_F32);
}

void ts__mxfp4_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				  int block_size, float tensor_scale, void *dst)
{
	(void)block_size, (void)tensor_scale;
	decode(codes, scales, nblocks, dst, TS_BF16);
}

void ts__mxfp4_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst)
{
	(void)block_size, (void)tensor_scale;
	decode(codes, scales, nblocks, dst, TS_F16);
}
