/*
 * Deterministic test data shared by the statistics, analyzer and stream tests: a xorshift64*
 * generator and the distributions LLM weights resemble. Header-only; every test prints its seed.
 */
#ifndef TS_TESTS_GEN_H
#define TS_TESTS_GEN_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static inline uint64_t gen_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* uniform in (0, 1) */
static inline double gen_unit(uint64_t *s)
{
	return ((double)(gen_next(s) >> 11) + 0.5) * 0x1p-53;
}

static inline double gen_normal(uint64_t *s)
{
	double u = gen_unit(s), v = gen_unit(s);
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static inline double gen_laplace(uint64_t *s)
{
	double u = gen_unit(s) - 0.5;
	return u < 0 ? log(1 + 2 * u) : -log(1 - 2 * u);
}

/* Student-t with 3 degrees of freedom: heavy tails */
static inline double gen_student3(uint64_t *s)
{
	double z = gen_normal(s), c = 0;
	for (int i = 0; i < 3; i++) {
		double g = gen_normal(s);
		c += g * g;
	}
	return z / sqrt(c / 3.0);
}

typedef enum gen_kind {
	GEN_NORMAL,
	GEN_LAPLACE,
	GEN_STUDENT3,
	GEN_SPARSE,   /* 90 % exact zeros, the rest N(0,1) */
	GEN_OUTLIERS, /* N(0, 0.02) with one value in 1000 at +-50 */
	GEN_CONSTANT, /* every value 0.37 */
	GEN_ZERO,
	GEN_ROWSCALED, /* N(0,1) times a per-row scale spanning 2^-8 .. 2^8 */
	GEN_KINDS
} gen_kind;

static inline const char *gen_name(gen_kind k)
{
	static const char *names[] = {"normal", "laplace", "student3", "sparse",
				      "outliers", "constant", "zero", "rowscaled"};
	return names[k];
}

static inline void gen_fill(float *x, uint64_t rows, uint64_t cols, gen_kind k, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
	for (uint64_t r = 0; r < rows; r++) {
		double rs = ldexp(1.0, (int)(gen_next(&s) % 17) - 8);
		for (uint64_t c = 0; c < cols; c++) {
			double v;
			switch (k) {
			case GEN_NORMAL: v = gen_normal(&s); break;
			case GEN_LAPLACE: v = gen_laplace(&s); break;
			case GEN_STUDENT3: v = gen_student3(&s); break;
			case GEN_SPARSE: v = gen_unit(&s) < 0.9 ? 0 : gen_normal(&s); break;
			case GEN_OUTLIERS:
				v = gen_unit(&s) < 0.001 ? (gen_unit(&s) < 0.5 ? -50 : 50)
							 : 0.02 * gen_normal(&s);
				break;
			case GEN_CONSTANT: v = 0.37; break;
			case GEN_ZERO: v = 0; break;
			default: v = rs * gen_normal(&s); break;
			}
			x[r * cols + c] = (float)v;
		}
	}
}

#endif
