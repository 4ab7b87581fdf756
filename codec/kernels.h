/*
 * The kernel table: the hot loops of every codec, one table per instruction set, resolved once
 * per process (pthread_once) from a CPU check; TSTORE_KERNEL=scalar in the environment forces the
 * portable reference.
 *
 * Invariants
 *   1. Every table computes exactly the bytes the scalar reference computes, for every input
 *      (tests/test_kernels.c checks each entry of each table against the reference).
 *   2. Kernels work on whole blocks inside one row; the caller (codec/codec.c) handles row
 *      strides and the padded last block of a row.
 *   3. Kernels neither allocate nor fail on finite input.
 */
#ifndef TS_CODEC_KERNELS_H
#define TS_CODEC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

/* Output element types a decode kernel writes: indices equal TS_F32, TS_BF16, TS_F16. */
#define TS_KERNEL_OUTS 3

/*
 * Decode @p nblocks whole blocks of @p block_size elements to dst (F32, BF16 or F16 according to
 * the table slot).
 *   nvfp4: codes 8 bytes/block (element 2k low nibble), scales 1 E4M3 byte/block,
 *          y = (e2m1(code) * e4m3(scale)) * tensor_scale.
 *   mxfp4: codes 16 bytes/block, scales 1 E8M0 byte/block, y = e2m1(code) * 2^(scale-127).
 *   int8:  codes block_size bytes/block; scales as codec/int8.c documents. decode[TS_CODEC_INT8]
 *          is the symmetric variant (int8 codes, a 4-byte FP32 scale per block,
 *          y = (float)code * scale); decode_int8_asym the asymmetric one (uint8 codes, 5 bytes per
 *          block: FP32 scale then uint8 zero point z, y = (float)(code - z) * scale).
 *   fp8:   block_size is 1, nblocks is the element count, scales NULL,
 *          y = e4m3(code) * tensor_scale.
 */
typedef void (*ts__decode_fn)(const uint8_t *codes, const uint8_t *scales, size_t nblocks,
			      int block_size, float tensor_scale, void *dst);

/*
 * Decode @p rows rows of @p nblocks whole blocks each, row r's codes at codes + r * code_stride,
 * its scales at scales + r * scale_stride and its output at dst + r * dst_stride bytes: the same
 * bytes as one ts__decode_fn call per row, with whatever the kernel derives from scale bytes
 * (the 4-bit codecs' lookup tables) built once for the call instead of once per row. A table
 * may leave these slots NULL; codec/codec.c then calls the ts__decode_fn row by row.
 */
typedef void (*ts__decode_rows_fn)(const uint8_t *codes, size_t code_stride,
				   const uint8_t *scales, size_t scale_stride, size_t rows,
				   size_t nblocks, int block_size, float tensor_scale, void *dst,
				   size_t dst_stride);

/* Convert n elements between F32, BF16, F16 (indices as above). RNE; NaN stays NaN. */
typedef void (*ts__convert_fn)(const void *src, size_t n, void *dst);

/*
 * Encode @p nblocks whole blocks of finite F32 values (the caller checks finiteness).
 *   nvfp4 (nvidia recipe): @p enc_scale is S = 2688 / amax (see docs/FORMAT.md).
 *   mxfp4: @p enc_scale unused.
 */
typedef void (*ts__encode_fn)(const float *x, size_t nblocks, float enc_scale, uint8_t *codes,
			      uint8_t *scales);

/* lossless: join an exponent plane and a sign+mantissa plane into n elements (codec/lossless.h
 * gives the bit layouts; 16: BF16/F16, 1 sm byte per element; 32: F32, 3 sm bytes). */
typedef void (*ts__join_fn)(const uint8_t *e, const uint8_t *sm, size_t n, void *dst);
/* The page checksum: XXH3-64 (seed 0) of a[0..na) followed by b[0..nb) (codec/checksum.h). */
typedef uint64_t (*ts__checksum_fn)(const void *a, size_t na, const void *b, size_t nb);

/*
 * Statistics of one sub-block x[0..n) (codec/stats.c), in one pass: its distribution, and its
 * errors against the approximation a[0..n) unless @p a is NULL. Every sum is formed in
 * TS_STATS_LANES lanes in double, element i going to lane i % TS_STATS_LANES in index order, and
 * the lanes are then added in lane order to the value given in @p s; extremes are per-lane float
 * selections (v < lo ? v : lo), folded into the running extremes in lane order. A vector kernel
 * keeps this order exactly, so every table gives the same bits. The sums are finite when every
 * x (and a) is: a caller redoes a block whose sums are not (codec/stats.c).
 *   distribution: q += sum (x - k)^2, c += sum (x - k) (x and k in double: k is a shift that
 *                 keeps the sums' cancellation small, e.g. one of the x); min, max, max |x|,
 *                 min nonzero |x| folded into mn, mx, amax, minnz; zeros += the count of zeros.
 *   errors:       sa += sum |x - a|, se += sum (x - a)^2 (x, a widened to double);
 *                 me = max(me, max |x - a|). Untouched when a is NULL. (The sum of x^2 that the
 *                 error figures need is q + 2 k c + n k^2.)
 */
#define TS_STATS_LANES 8
typedef struct ts__stats_sums {
	double sa, se, me;
	double q, c;
	double mn, mx, amax, minnz;
	uint64_t zeros;
} ts__stats_sums;
typedef void (*ts__stats_fn)(const float *x, const float *a, size_t n, double k,
			     ts__stats_sums *s);

typedef struct ts__kernels {
	const char *name; /* "scalar", "avx2" */
	ts__decode_fn decode[TS_CODEC_COUNT][TS_KERNEL_OUTS]; /* [TS_CODEC_RAW] unused */
	ts__convert_fn convert[TS_KERNEL_OUTS][TS_KERNEL_OUTS];
	ts__encode_fn nvfp4_encode_nvidia;
	ts__encode_fn mxfp4_encode;
	ts__decode_fn decode_int8_asym[TS_KERNEL_OUTS];
	ts__decode_rows_fn decode_rows[TS_CODEC_COUNT][TS_KERNEL_OUTS]; /* NULL: row by row */
	ts__join_fn lossless_join16;
	ts__join_fn lossless_join32;
	ts__checksum_fn checksum_xxh3;
	ts__stats_fn stats;
} ts__kernels;

/*
 * codec/codec.c uses the scalar entry for any slot a table leaves NULL, so a vector table may
 * fill only the slots it accelerates.
 */

/** The table in effect (resolved once, thread-safe). */
const ts__kernels *ts__kernels_get(void);

/** The portable reference. */
const ts__kernels *ts__kernels_scalar(void);

/** The AVX2/FMA/F16C table, or NULL when not compiled in or the CPU lacks those features.
 *  Defined in codec/kernels_avx2.c when that file is built (the Makefile then adds
 *  -DTS_AVX2_KERNELS to libtstore_internal's flags); otherwise codec/kernels.c defines it to
 *  return NULL. */
const ts__kernels *ts__kernels_avx2(void);

/* Output bytes from which decoders switch to non-temporal stores when they are enabled: well past
 * the L2 of one core, so that the output would evict the input if it went through the cache. */
#define TS_AVX2_NT_BYTES ((size_t)4 << 20)

/* The threshold in effect: TS_AVX2_NT_BYTES when non-temporal stores are on, SIZE_MAX when off.
 * Set once by the kernel resolution (TSTORE_NT_STORES=0|1, default off; see docs/KERNELS.md); the
 * tests set it directly to exercise both store paths. */
extern size_t ts__avx2_nt_bytes;

#endif
