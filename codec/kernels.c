/*
 * Kernel selection: the table in effect is resolved once per process (pthread_once) from the
 * CPU's features and the TSTORE_KERNEL environment variable ("scalar" forces the portable
 * reference), then never changes.
 *
 * Invariants
 *   1. ts__kernels_get() returns the same table for the life of the process, on every thread.
 *   2. A table is chosen only if the CPU supports it (ts__kernels_avx2() checks the CPU and
 *      returns NULL otherwise); the scalar table is always available.
 *   3. The choice is visible: ts_kernel_name() reports it (tstore bench and inspect print it).
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/kernels.h"
#include "common/env.h"

#if !defined(TS_HAVE_AVX2) || !defined(TS_AVX2_KERNELS)
/*
 * No vector kernels built. The simd part defines the real ts__kernels_avx2() in
 * codec/kernels_avx2.c and adds -DTS_AVX2_KERNELS to libtstore_internal_la_CFLAGS in the
 * Makefile.am AVX2 section, which removes this definition.
 */
const ts__kernels *ts__kernels_avx2(void)
{
	return NULL;
}
#endif

size_t ts__avx2_nt_bytes = SIZE_MAX;

static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;
static const ts__kernels *kernels_in_effect;

static void kernels_resolve(void)
{
	const char *env = ts__env("TSTORE_KERNEL");
	const ts__kernels *k = NULL;

	if (!env || strcmp(env, "scalar") != 0)
		k = ts__kernels_avx2();
	kernels_in_effect = k ? k : ts__kernels_scalar();
}

const ts__kernels *ts__kernels_get(void)
{
	pthread_once(&kernels_once, kernels_resolve);
	return kernels_in_effect;
}

TS_API const char *ts_kernel_name(void)
{
	return ts__kernels_get()->name;
}
