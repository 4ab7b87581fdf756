/*
 * The page checksum (codec/checksum.h): the reference is libxxhash's streaming XXH3-64; the kernel
 * table in effect may give the same function compiled for a wider ISA.
 */
#include "config.h"

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "codec/checksum.h"
#include "codec/kernels.h"

uint64_t ts__checksum_xxh3_scalar(const void *a, size_t na, const void *b, size_t nb)
{
	XXH3_state_t state;

	XXH3_64bits_reset(&state);
	XXH3_64bits_update(&state, a, na);
	XXH3_64bits_update(&state, b, nb);
	return XXH3_64bits_digest(&state);
}

uint64_t ts__checksum_xxh3(const void *a, size_t na, const void *b, size_t nb)
{
	ts__checksum_fn f = ts__kernels_get()->checksum_xxh3;

	return (f ? f : ts__checksum_xxh3_scalar)(a, na, b, nb);
}
