/*
 * lossless: the private interface of codec/lossless.c (the payload layout is in docs/CODECS.md,
 * "lossless"). codec/codec.c dispatches ts_codec_encode_len() and ts_codec_decode() here; the
 * engine asks ts__lossless_payload_size() whether a page's length agrees with its own header.
 */
#ifndef TS_CODEC_LOSSLESS_H
#define TS_CODEC_LOSSLESS_H

#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

/* Payload modes (byte 0). */
#define TS_LOSSLESS_STORED 0 /* the elements as they are */
#define TS_LOSSLESS_PLANES 1 /* u32 frame length, sign+mantissa plane, zstd exponent frame */
#define TS_LOSSLESS_PLANES_HDR 5

/* 1 if @p dtype is split into planes (F32, BF16, F16); other dtypes are always stored. */
int ts__lossless_splits(ts_dtype dtype);

/*
 * Encode @p rows x @p cols elements of @p dtype (row r at element r * stride of @p src) into
 * @p dst, whose capacity @p cap is at least 1 + rows * cols * size(dtype) (the caller checked).
 * Planes when that is smaller, else stored. 0 and *written, or TS_ENOMEM.
 */
int ts__lossless_encode(size_t *written, ts_dtype dtype, const void *src, uint64_t stride,
			uint64_t rows, uint64_t cols, void *dst, size_t cap);

/*
 * Decode a payload of exactly @p size bytes holding rows x cols elements of @p stored into @p dst
 * as @p out (equal to @p stored, or both of F32, BF16, F16), row r at element r * dst_stride.
 * 0; TS_ECORRUPT if the payload is not a valid encoding (ts_error_last() says what is wrong);
 * TS_EDTYPE; TS_ENOMEM.
 */
int ts__lossless_decode(const void *src, size_t size, ts_dtype stored, uint64_t rows,
			uint64_t cols, ts_dtype out, void *dst, uint64_t dst_stride);

/*
 * The unpacked form of a payload of exactly @p size bytes holding @p n elements of @p stored (what
 * ts_read_pages() gives, docs/GPU.md): a stored payload as it is; a planes payload with its
 * exponent frame replaced by the decoded plane and the u32 at byte 1 set to n, so that the planes
 * can be joined without zstd: 5 + n * size bytes. Written to @p dst (capacity @p cap), the length
 * in *@p written. 0; TS_ECORRUPT as ts__lossless_decode(); TS_ESHORTBUF; TS_ENOMEM.
 */
int ts__lossless_unpack(size_t *written, const void *src, size_t size, ts_dtype stored,
			uint64_t n, void *dst, size_t cap);

/*
 * The length the payload at @p p (of which @p avail bytes exist) says it has, for @p n elements
 * of @p stored: 1 + n * size when stored, 5 + n * (size - 1) + the frame length with planes;
 * 0 if the mode byte is unknown or the header does not fit @p avail.
 */
uint64_t ts__lossless_payload_size(const void *p, size_t avail, ts_dtype stored, uint64_t n);

/* The plane kernels (the kernel table's join16/join32; AVX2 versions in codec/lossless_avx2.c).
 * join16: x = (sm & 0x80) << 8 | e << 7 | (sm & 0x7f) for BF16 and F16;
 * join32: x = (sm[2] & 0x80) << 24 | e << 23 | (sm[2] & 0x7f) << 16 | sm[1] << 8 | sm[0]. */
void ts__lossless_join16_scalar(const uint8_t *e, const uint8_t *sm, size_t n, void *dst);
void ts__lossless_join32_scalar(const uint8_t *e, const uint8_t *sm, size_t n, void *dst);

#endif
