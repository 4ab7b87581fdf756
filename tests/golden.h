/*
 * Test helpers: loading the golden vectors (tests/golden, see its README.md) and small
 * independent reference arithmetic shared by the codec tests.
 */
#ifndef TS_TESTS_GOLDEN_H
#define TS_TESTS_GOLDEN_H

#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tstore.h"

static const char *const golden_folders[] = {"normal", "laplace", "student3", "outliers", "edges"};
#define GOLDEN_FOLDERS 5

/* Read tests/golden/<folder>/<file> into a malloc'ed buffer (freed by the caller). */
static inline void *golden_load(const char *folder, const char *file, size_t *size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/tests/golden/%s/%s", TS_SRCDIR, folder, file);
	FILE *f = fopen(path, "rb");
	cr_assert(f, "cannot open golden file %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *buf = malloc(n > 0 ? (size_t)n : 1);
	cr_assert(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read of %s", path);
	fclose(f);
	*size = (size_t)n;
	return buf;
}

static inline uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static inline float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline float amax_of(const float *x, size_t n)
{
	float a = 0.0f;
	for (size_t i = 0; i < n; i++)
		if (fabsf(x[i]) > a)
			a = fabsf(x[i]);
	return a;
}

/* Independent definitions of the small formats, from their specifications (double precision). */
static inline double ref_e2m1(unsigned code)
{
	static const double mag[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
	return (code & 8 ? -1.0 : 1.0) * mag[code & 7];
}

static inline double ref_e4m3(unsigned b)
{
	unsigned e = (b >> 3) & 15, m = b & 7;
	double v;
	if (e == 15 && m == 7)
		return NAN;
	v = e == 0 ? ldexp(m, -9) : ldexp(8 + m, (int)e - 10);
	return b & 0x80 ? -v : v;
}

/* SQNR in dB of y against x, in double. */
static inline double sqnr_db(const float *x, const float *y, size_t n)
{
	double s = 0, e = 0;
	for (size_t i = 0; i < n; i++) {
		s += (double)x[i] * x[i];
		e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
	}
	return 10.0 * log10(s / e);
}

#endif
