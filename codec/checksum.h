/*
 * The page checksum's kernel: XXH3-64 of two buffers joined (a page's header bytes and its
 * payload: engine/page.c, docs/FORMAT.md "Pages"). XXH3 is specified bit for bit, so every
 * kernel table's entry returns the same value; the scalar table's is libxxhash's own (the
 * reference), the AVX2 table's the same algorithm from xxhash.h compiled with AVX2
 * (codec/checksum_avx2.c): libxxhash as packaged is built for the x86-64 baseline (SSE2) and hashed
 * the 170 KB pages of a lossless load at half the rate (docs/READ.md, "Measured figures").
 */
#ifndef TS_CODEC_CHECKSUM_H
#define TS_CODEC_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/** XXH3-64 (seed 0) of a[0..na) followed by b[0..nb), with libxxhash. */
uint64_t ts__checksum_xxh3_scalar(const void *a, size_t na, const void *b, size_t nb);

/** The same through the kernel table in effect (codec/kernels.h). Threads: any. */
uint64_t ts__checksum_xxh3(const void *a, size_t na, const void *b, size_t nb);

#endif
