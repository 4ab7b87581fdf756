/*
 * Element formats: inline conversions between float32 and E2M1, E4M3, E8M0, BF16 and F16, for
 * the codecs' inner loops. The public ts_f32_to_* functions (codec/elem.c) are these.
 *
 * Invariants
 *   1. Every float -> narrow conversion rounds to nearest, ties to even, computed on the exact
 *      float32 input (never through an intermediate rounding).
 *   2. E4M3 and E2M1 saturate (satfinite): overflow gives the largest finite magnitude with the
 *      input's sign. BF16 and F16 overflow to Inf; Inf stays Inf.
 *   3. NaN handling matches x86 hardware (F16C) so that vector kernels can match the reference bit
 *      for bit: F32 -> F16 NaN is sign | 0x7E00 | top 10 mantissa bits; F16 -> F32 NaN is quieted;
 *      F32 -> BF16 NaN is the top half with the quiet bit set; BF16 -> F32 is a plain shift.
 *   4. Narrow -> float32 conversions are exact (every value of those formats is a float32).
 *   5. No libm calls, no tables beyond the two constant ones below: these run per element.
 *   6. The functions marked TS_ELEM_FN compile for the GPU too (gpu/decode.cu includes this
 *      file): the GPU decoders round with these very bodies, not with copies of them.
 */
#ifndef TS_CODEC_ELEM_H
#define TS_CODEC_ELEM_H

#include <stdint.h>
#include <string.h>

#include "tstore.h"

#ifdef __CUDACC__
#define TS_ELEM_FN static inline __host__ __device__
#else
#define TS_ELEM_FN static inline
#endif

#ifdef __FAST_MATH__
#error "codec/elem.h relies on IEEE float semantics (ts__rne_int); do not build with -ffast-math"
#endif

/* E2M1 code -> value: codes 0..7 are 0, 0.5, 1, 1.5, 2, 3, 4, 6; bit 3 is the sign. */
extern const float ts__e2m1_table[16];
/* E4M3 byte -> value (0x7F and 0xFF are NaN). */
extern const float ts__e4m3_table[256];

TS_ELEM_FN uint32_t ts__f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

TS_ELEM_FN float ts__bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* Round a float in [0, 2^22] to the nearest integer, ties to even (default rounding mode). */
TS_ELEM_FN float ts__rne_int(float f)
{
	return (f + 0x1p23f) - 0x1p23f; /* not folded: without -ffast-math this is not x */
}

TS_ELEM_FN int ts__f32_finite(float x)
{
	return (ts__f32_bits(x) & 0x7f800000u) != 0x7f800000u;
}

/* ---- E2M1 ---------------------------------------------------------------------------------- */

static inline float ts__e2m1_decode(uint8_t code)
{
	return ts__e2m1_table[code & 15];
}

/*
 * The magnitude code of |x| (0..7): the thresholds are the midpoints between neighbouring
 * values, and ties go to the even code (0.25 -> 0, 0.75 -> 1.0, 1.25 -> 1.0, 1.75 -> 2.0,
 * 2.5 -> 2.0, 3.5 -> 4.0, 5 -> 4.0). Anything above 5 saturates to 6.
 */
TS_ELEM_FN uint8_t ts__e2m1_mag(float a)
{
	return (uint8_t)((a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) +
			 (a >= 3.5f) + (a > 5.0f));
}

TS_ELEM_FN uint8_t ts__e2m1_encode(float x)
{
	uint32_t u = ts__f32_bits(x);
	return (uint8_t)(((u >> 28) & 0x8u) | ts__e2m1_mag(ts__bits_f32(u & 0x7fffffffu)));
}

/* ---- E4M3 ---------------------------------------------------------------------------------- */

static inline float ts__e4m3_decode(uint8_t b)
{
	return ts__e4m3_table[b];
}

TS_ELEM_FN uint8_t ts__e4m3_encode(float x)
{
	uint32_t u = ts__f32_bits(x);
	uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
	uint32_t a = u & 0x7fffffffu;

	if (a > 0x7f800000u)
		return sign | 0x7f;
	if (a >= 0x43e80000u) /* 464 = 448 + half an ulp: rounds past the largest finite */
		return sign | 0x7e;
	if (a < 0x3c800000u) { /* below 2^-6: subnormal steps of 2^-9; 8 steps is 0x08 */
		float steps = ts__rne_int(ts__bits_f32(a) * 512.0f);
		return sign | (uint8_t)steps;
	}
	a += 0x7ffffu + ((a >> 20) & 1u); /* round the mantissa to 3 bits, ties to even */
	return sign | (uint8_t)((a >> 20) - (120u << 3));
}

/* ---- E8M0 ---------------------------------------------------------------------------------- */

TS_ELEM_FN float ts__e8m0_decode(uint8_t b)
{
	if (b == 0xff)
		return ts__bits_f32(0x7fc00000u);
	if (b == 0)
		return ts__bits_f32(0x00400000u); /* 2^-127, a float32 subnormal */
	return ts__bits_f32((uint32_t)b << 23);
}

/* ---- BF16 ---------------------------------------------------------------------------------- */

TS_ELEM_FN uint16_t ts__bf16_encode(float x)
{
	uint32_t u = ts__f32_bits(x);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40u);
	return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

TS_ELEM_FN float ts__bf16_decode(uint16_t h)
{
	return ts__bits_f32((uint32_t)h << 16);
}

/* ---- F16 ----------------------------------------------------------------------------------- */

TS_ELEM_FN uint16_t ts__f16_encode(float x)
{
	uint32_t u = ts__f32_bits(x);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
	uint32_t a = u & 0x7fffffffu;

	if (a > 0x7f800000u)
		return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ffu);
	if (a >= 0x477ff000u) /* 65520 = 65504 + half an ulp, a tie to the odd side: Inf */
		return sign | 0x7c00;
	if (a < 0x38800000u) { /* below 2^-14: subnormal steps of 2^-24; 1024 steps is 0x0400 */
		float steps = ts__rne_int(ts__bits_f32(a) * 0x1p24f);
		return sign | (uint16_t)steps;
	}
	a += 0xfffu + ((a >> 13) & 1u);
	return sign | (uint16_t)((a >> 13) - (112u << 10));
}

TS_ELEM_FN float ts__f16_decode(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;

	if (e == 0)
		return ts__bits_f32(sign | ts__f32_bits((float)m * 0x1p-24f));
	if (e == 31)
		return ts__bits_f32(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
	return ts__bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

#endif
