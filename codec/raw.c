/*
 * raw: elements stored as they are, little-endian, rows back to back with no padding (lossless,
 * NaN and Inf included). This file also holds the reference F32/BF16/F16 conversion kernels that
 * the raw codec and the source-dtype handling of every encoder use.
 *
 * Invariants
 *   1. Conversions to a narrower type round to nearest even, NaN stays NaN and Inf stays Inf
 *      (codec/elem.h); conversions to a wider type are exact; same-type conversion is a copy.
 */
#include "config.h"

#include <string.h>

#include "codec/codecs.h"

void ts__conv_f32_to_f32_scalar(const void *src, size_t n, void *dst)
{
	memcpy(dst, src, n * 4);
}

void ts__conv_b16_copy_scalar(const void *src, size_t n, void *dst)
{
	memcpy(dst, src, n * 2);
}

void ts__conv_f32_to_bf16_scalar(const void *src, size_t n, void *dst)
{
	const float *s = src;
	uint16_t *d = dst;
	for (size_t i = 0; i < n; i++)
		d[i] = ts__bf16_encode(s[i]);
}

void ts__conv_f32_to_f16_scalar(const void *src, size_t n, void *dst)
{
	const float *s = src;
	uint16_t *d = dst;
	for (size_t i = 0; i < n; i++)
		d[i] = ts__f16_encode(s[i]);
}

void ts__conv_bf16_to_f32_scalar(const void *src, size_t n, void *dst)
{
	const uint16_t *s = src;
	float *d = dst;
	for (size_t i = 0; i < n; i++)
		d[i] = ts__bf16_decode(s[i]);
}

void ts__conv_f16_to_f32_scalar(const void *src, size_t n, void *dst)
{
	const uint16_t *s = src;
	float *d = dst;
	for (size_t i = 0; i < n; i++)
		d[i] = ts__f16_decode(s[i]);
}

/* BF16 <-> F16 go through float32, which holds both exactly: one rounding. */
void ts__conv_bf16_to_f16_scalar(const void *src, size_t n, void *dst)
{
	const uint16_t *s = src;
	uint16_t *d = dst;
	for (size_t i = 0; i < n; i++)
		d[i] = ts__f16_encode(ts__bf16_decode(s[i]));
}

void ts__conv_f16_to_bf16_scalar(const void *src, size_t n, void *dst)
{
	const uint16_t *s = src;
	uint16_t *d = dst;
	for (size_t i = 0; i < n; i++)
		d[i] = ts__bf16_encode(ts__f16_decode(s[i]));
}
