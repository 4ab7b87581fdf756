/*
 * nvfp4: 16-value micro-blocks of E2M1 codes (two per byte, element 2k in the low nibble), one
 * E4M3 scale byte per block, one float32 tensor decode scale g. Decoding is
 * y = (e2m1(code) * e4m3(scale)) * g. Two encoders produce this format:
 *
 *   nvidia  TransformerEngine's recipe, bit for bit (docs/CODECS.md): S = 2688/amax,
 *           sf = e4m3(block_amax * (S * (1/6))), q = e2m1(x * (S / sf)), g = amax/2688.
 *   best    g = amax/1152 = amax/(6 * 192): the block holding the tensor's amax can map it to 6
 *           (scale 192) or to 4 (scale 288), both exact E4M3 values, and every block has room
 *           to map its amax to anything down to 2.6 (the "4 over 6" choice, generalised). Each
 *           block then tries every E4M3 scale between block_amax/7.2 and block_amax/3.3 (in
 *           units of g) and keeps the one with the least squared error; codes are nearest for
 *           the chosen scale. For a given g this is the exact optimum of the block's squared
 *           error (widening the range finds nothing better on the golden data). Any nvfp4
 *           decoder decodes the output.
 *
 * Invariants
 *   1. Decoding computes e2m1(code) * e4m3(scale) exactly (both have few significant bits), then
 *      one float32 multiply by g; nothing else rounds.
 *   2. A block whose scale decodes to 0 has every code 0 (+0), in both recipes.
 *   3. `best` never does worse on a block than the nvidia scale would with the same g: the
 *      candidate list always contains the nvidia-style choice e4m3(block_amax / (6 g)).
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "codec/codecs.h"

float ts__nvfp4_tensor_scale(ts_recipe recipe, float amax)
{
	if (!(amax > 0.0f))
		return 1.0f;
	return recipe == TS_RECIPE_BEST ? amax / 1152.0f : amax / 2688.0f;
}

float ts__nvfp4_encode_scale(float amax)
{
	if (!(amax > 0.0f))
		return 1.0f;
	float s = 2688.0f / amax;
	return s > FLT_MAX ? FLT_MAX : s;
}

/* ---- nvidia recipe ------------------------------------------------------------------------- */

void ts__nvfp4_encode_nvidia_scalar(const float *x, size_t nblocks, float enc_scale,
				    uint8_t *codes, uint8_t *scales)
{
	const float s6 = enc_scale * (1.0f / 6.0f);

	for (size_t b = 0; b < nblocks; b++, x += 16, codes += 8) {
		float amax = 0.0f;
		for (int i = 0; i < 16; i++) {
			float a = fabsf(x[i]);
			amax = a > amax ? a : amax;
		}
		uint8_t sf = ts__e4m3_encode(amax * s6);
		float sff = ts__e4m3_decode(sf);
		scales[b] = sf;
		if (sff == 0.0f) {
			memset(codes, 0, 8);
			continue;
		}
		float r = enc_scale / sff;
		for (int j = 0; j < 8; j++)
			codes[j] = (uint8_t)(ts__e2m1_encode(x[2 * j] * r) |
					     (ts__e2m1_encode(x[2 * j + 1] * r) << 4));
	}
}

/* ---- best recipe --------------------------------------------------------------------------- */

/*
 * Squared error of coding the magnitudes t[0..15] with the E4M3 scale s (> 0), all in units of
 * g: sum (t_i - q_i s)^2 where q_i is the nearest-even E2M1 magnitude of t_i / s. Written with
 * the decision thresholds scaled by s and selects instead of a table lookup so that the compiler
 * can vectorise it (this is the `best` recipe's inner loop). q_i s is exact: s has 4 significant
 * bits and the partial sums of q_i at most 4.
 */
static float block_sse(const float *t, float s)
{
	const float h1 = 0.25f * s, h2 = 0.75f * s, h3 = 1.25f * s, h4 = 1.75f * s;
	const float h5 = 2.5f * s, h6 = 3.5f * s, h7 = 5.0f * s;
	const float half = 0.5f * s, two = 2.0f * s;
	float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f}; /* four lanes: a vector's worth */

	for (int j = 0; j < 16; j += 4) {
		for (int l = 0; l < 4; l++) {
			float ti = t[j + l];
			float v = (ti > h1 ? half : 0.0f) + (ti >= h2 ? half : 0.0f) +
				  (ti > h3 ? half : 0.0f) + (ti >= h4 ? half : 0.0f) +
				  (ti > h5 ? s : 0.0f) + (ti >= h6 ? s : 0.0f) + (ti > h7 ? two : 0.0f);
			float d = ti - v;
			acc[l] += d * d;
		}
	}
	return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

void ts__nvfp4_encode_best(const float *x, size_t nblocks, float g, uint8_t *codes,
			   uint8_t *scales)
{
	float inv_g = 1.0f / g;
	/* decoded magnitudes are at most 6 * s * g: scales above s_max could decode to Inf */
	float s_max = FLT_MAX / g / 6.0f;
	if (inv_g > FLT_MAX)
		inv_g = FLT_MAX;

	for (size_t b = 0; b < nblocks; b++, x += 16, codes += 8) {
		float a[16], amax = 0.0f;
		for (int i = 0; i < 16; i++) {
			a[i] = fabsf(x[i]);
			amax = a[i] > amax ? a[i] : amax;
		}
		/* Work in units of g: t = |x| / g, so the block scale is an E4M3 value. */
		float t[16];
		for (int i = 0; i < 16; i++)
			t[i] = a[i] * inv_g;
		float tmax = amax * inv_g;
		uint8_t lo = ts__e4m3_encode(tmax * (1.0f / 7.2f));
		uint8_t hi = ts__e4m3_encode(tmax * (1.0f / 3.3f));
		uint8_t best = ts__e4m3_encode(tmax * (1.0f / 6.0f));
		float best_sse = INFINITY;
		if (lo == 0)
			lo = 1;
		for (unsigned c = lo; c <= hi && c <= 0x7e; c++) {
			float s = ts__e4m3_decode((uint8_t)c);
			if (s > s_max)
				break;
			float sse = block_sse(t, s);
			if (sse < best_sse) {
				best_sse = sse;
				best = (uint8_t)c;
			}
		}
		float sf = ts__e4m3_decode(best);
		scales[b] = best;
		if (!(sf > 0.0f)) {
			memset(codes, 0, 8);
			continue;
		}
		float r = 1.0f / sf;
		for (int j = 0; j < 8; j++) {
			uint32_t s0 = (ts__f32_bits(x[2 * j]) >> 28) & 0x8u;
			uint32_t s1 = (ts__f32_bits(x[2 * j + 1]) >> 28) & 0x8u;
			codes[j] = (uint8_t)((s0 | ts__e2m1_mag(t[2 * j] * r)) |
					     ((s1 | ts__e2m1_mag(t[2 * j + 1] * r)) << 4));
		}
	}
}

/* ---- decode -------------------------------------------------------------------------------- */

static inline __attribute__((always_inline)) void decode(const uint8_t *codes,
							 const uint8_t *scales, size_t nblocks,
							 float g, void *dst, int out)
{
	for (size_t b = 0; b < nblocks; b++, codes += 8) {
		float s = ts__e4m3_decode(scales[b]);
		float v[16];
		for (int k = 0; k < 16; k++)
			v[k] = ts__e2m1_table[k] * s;
		size_t o = b * 16;
		for (int j = 0; j < 8; j++) {
			ts__store_out(dst, o + 2 * j, v[codes[j] & 15] * g, out);
			ts__store_out(dst, o + 2 * j + 1, v[codes[j] >> 4] * g, out);
		}
	}
}

void ts__nvfp4_decode_f32_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst)
{
	(void)block_size;
	decode(codes, scales, nblocks, tensor_scale, dst, TS_F32);
}

void ts__nvfp4_decode_bf16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				  int block_size, float tensor_scale, void *dst)
{
	(void)block_size;
	decode(codes, scales, nblocks, tensor_scale, dst, TS_BF16);
}

void ts__nvfp4_decode_f16_scalar(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
				 int block_size, float tensor_scale, void *dst)
{
	(void)block_size;
	decode(codes, scales, nblocks, tensor_scale, dst, TS_F16);
}
