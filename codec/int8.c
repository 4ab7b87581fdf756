/*
 * int8: per-block 8-bit integer codes with a float32 scale per block (blocks of 16..4096
 * elements, a power of two, along the row).
 *
 *   symmetric   codes are int8 two's complement in [-127, 127]; scale record: FP32 scale s
 *               (4 bytes, little-endian); y = (float)code * s; s = block_amax / 127.
 *   asymmetric  codes are uint8 in [0, 255]; scale record: FP32 scale s (4 bytes, little-endian)
 *               then the zero point z (1 byte, uint8); y = (float)(code - z) * s, the difference
 *               taken in integers. The block's range [min(x, 0), max(x, 0)] is mapped onto 0..255
 *               (the range always contains 0 so that 0 is exact: z = round(-lo / s)).
 *
 * A block whose scale would be 0 (all zeros, or amax so small that amax/127 underflows) stores
 * s = 0, z = 0 and all codes 0.
 *
 * Invariants
 *   1. Codes are the nearest integers to x / s (ties to even), clamped to the code range, and
 *      then moved one step towards the zero point whenever the decoded value would overflow to
 *      Inf (a range near FLT_MAX): decoding never produces a non-finite value.
 *   2. Decoding is one exact integer-to-float conversion and one float32 multiply.
 *   3. The encoder's arithmetic is in double (it has no vector twin); only s is rounded to float.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "codec/codecs.h"
#include "common/byteorder.h"

/* Nearest integer, ties to even, for |v| < 2^51 (default rounding mode; no libm call). */
static inline double rne(double v)
{
	return v >= 0 ? (v + 0x1p52) - 0x1p52 : -((-v + 0x1p52) - 0x1p52);
}

static void encode_symmetric(const float *x, int n, uint8_t *codes, uint8_t *rec)
{
	float amax = 0.0f;
	for (int i = 0; i < n; i++) {
		float a = fabsf(x[i]);
		amax = a > amax ? a : amax;
	}
	float s = amax / 127.0f;
	ts__put_le32(rec, ts__f32_bits(s > 0.0f ? s : 0.0f));
	if (!(s > 0.0f)) {
		memset(codes, 0, (size_t)n);
		return;
	}
	for (int i = 0; i < n; i++) {
		double q = rne((double)x[i] / s);
		int c = q > 127 ? 127 : q < -127 ? -127 : (int)q;
		while (c != 0 && !ts__f32_finite((float)c * s))
			c += c > 0 ? -1 : 1;
		codes[i] = (uint8_t)(int8_t)c;
	}
}

static void encode_asymmetric(const float *x, int n, uint8_t *codes, uint8_t *rec)
{
	float lo = 0.0f, hi = 0.0f;
	for (int i = 0; i < n; i++) {
		lo = x[i] < lo ? x[i] : lo;
		hi = x[i] > hi ? x[i] : hi;
	}
	float s = (float)(((double)hi - (double)lo) / 255.0);
	if (!(s > 0.0f)) {
		ts__put_le32(rec, 0);
		rec[4] = 0;
		memset(codes, 0, (size_t)n);
		return;
	}
	double zd = rne(-(double)lo / s);
	int z = zd > 255 ? 255 : zd < 0 ? 0 : (int)zd;
	ts__put_le32(rec, ts__f32_bits(s));
	rec[4] = (uint8_t)z;
	for (int i = 0; i < n; i++) {
		double q = rne((double)x[i] / s) + z;
		int c = q > 255 ? 255 : q < 0 ? 0 : (int)q;
		while (c != z && !ts__f32_finite((float)(c - z) * s))
			c += c > z ? -1 : 1;
		codes[i] = (uint8_t)c;
	}
}

void ts__int8_encode(const float *x, size_t nblocks, int block_size, int symmetric,
		     uint8_t *codes, uint8_t *scales)
{
	size_t rec = symmetric ? TS_INT8_SYM_SCALE_BYTES : TS_INT8_ASYM_SCALE_BYTES;
	for (size_t b = 0; b < nblocks; b++) {
		const float *xb = x + b * (size_t)block_size;
		uint8_t *cb = codes + b * (size_t)block_size;
		if (symmetric)
			encode_symmetric(xb, block_size, cb, scales + b * rec);
		else
			encode_asymmetric(xb, block_size, cb, scales + b * rec);
	}
}

static inline __attribute__((always_inline)) void decode_sym(const uint8_t *codes,
							     const uint8_t *scales,
							     size_t nblocks, int bs, void *dst,
							     int out)
{
	for (size_t b = 0; b < nblocks; b++) {
		float s = ts__bits_f32(ts__get_le32(scales + b * TS_INT8_SYM_SCALE_BYTES));
		const uint8_t *cb = codes + b * (size_t)bs;
		size_t o = b * (size_t)bs;
		for (int i = 0; i < bs; i++)
			ts__store_out(dst, o + (size_t)i, (float)(int8_t)cb[i] * s, out);
	}
}

static inline __attribute__((always_inline)) void decode_asym(const uint8_t *codes,
							      const uint8_t *scales,
							      size_t nblocks, int bs, void *dst,
							      int out)
{
	for (size_t b = 0; b < nblocks; b++) {
		const uint8_t *rec = scales + b * TS_INT8_ASYM_SCALE_BYTES;
		float s = ts__bits_f32(ts__get_le32(rec));
		int z = rec[4];
		const uint8_t *cb = codes + b * (size_t)bs;
		size_t o = b * (size_t)bs;
		for (int i = 0; i < bs; i++)
			ts__store_out(dst, o + (size_t)i, (float)((int)cb[i] - z) * s, out);
	}
}

void ts__int8_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				int block_size, float tensor_scale, void *dst)
{
	(void)tensor_scale;
	decode_sym(codes, scales, nblocks, block_size, dst, TS_F32);
}

void ts__int8_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst)
{
	(void)tensor_scale;
	decode_sym(codes, scales, nblocks, block_size, dst, TS_BF16);
}

void ts__int8_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				int block_size, float tensor_scale, void *dst)
{
	(void)tensor_scale;
	decode_sym(codes, scales, nblocks, block_size, dst, TS_F16);
}

void ts__int8_asym_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales,
				     size_t nblocks, int block_size, float tensor_scale,
				     void *dst)
{
	(void)tensor_scale;
	decode_asym(codes, scales, nblocks, block_size, dst, TS_F32);
}

void ts__int8_asym_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales,
				      size_t nblocks, int block_size, float tensor_scale,
				      void *dst)
{
	(void)tensor_scale;
	decode_asym(codes, scales, nblocks, block_size, dst, TS_BF16);
}

void ts__int8_asym_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales,
				     size_t nblocks, int block_size, float tensor_scale,
				     void *dst)
{
	(void)tensor_scale;
	decode_asym(codes, scales, nblocks, block_size, dst, TS_F16);
}
