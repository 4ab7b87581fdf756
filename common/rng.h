/*
 * The engine's pseudo-random numbers: xorshift64*, deterministic from its seed, cheap. For
 * sampling and spreading (eviction samples, calibration's access patterns), never for anything
 * that needs quality or secrecy. The state must not be 0.
 */
#ifndef TS_COMMON_RNG_H
#define TS_COMMON_RNG_H

#include <stdint.h>

static inline uint64_t ts__rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

#endif
