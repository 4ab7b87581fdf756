/*
 * The page checksum with AVX2 (the kernel table's checksum_xxh3): xxhash.h's XXH3-64 inlined into
 * this file, which is compiled with -mavx2, so that its accumulate loop takes xxhash's AVX2 path
 * (XXH_VECTOR chosen from __AVX2__). The same function as libxxhash's, hence the same value
 * (tests/test_kernels.c compares the two). XXH_INLINE_ALL gives every xxhash symbol internal
 * linkage, so nothing here clashes with libxxhash.
 */
#include "config.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec/kernels_avx2.h"

uint64_t ts__avx2_checksum_xxh3(const void *a, size_t na, const void *b, size_t nb)
{
	XXH3_state_t state;

	XXH3_64bits_reset(&state);
	XXH3_64bits_update(&state, a, na);
	XXH3_64bits_update(&state, b, nb);
	return XXH3_64bits_digest(&state);
}
