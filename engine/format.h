/*
 * The layout of what tstore stores (docs/FORMAT.md): the tensor record as the engine holds it in
 * memory (its description, 2-D view and page geometry) and the constants of the record, the
 * page key and the page header. Types and constants only: engine/record.h encodes and decodes
 * records, engine/page.h seals and verifies pages, engine/geometry.h plans them.
 */
#ifndef TS_ENGINE_FORMAT_H
#define TS_ENGINE_FORMAT_H

#include <stdint.h>

#include "tstore.h"

#define TS_RECORD_MAGIC 0x54u /* 'T' */
#define TS_RECORD_VERSION 1u

typedef struct ts__tensor_rec {
	uint64_t id;
	ts_dtype source_dtype;
	int ndim;
	uint64_t shape[TS_MAX_DIMS];
	ts_codec_config codec;
	float amax;
	float tensor_scale;
	uint64_t rows; /* the 2-D view: product of the leading dims (1 for a scalar or 1-D) */
	uint64_t cols; /* the last dim (1 for a scalar) */
	uint64_t tile_rows;
	uint64_t tile_cols; /* a multiple of the codec's block size, or cols */
	uint64_t page_count;
	uint64_t stored_bytes;
	ts_compression_stats error;
	ts_distribution_stats dist;
} ts__tensor_rec;

/** The largest tensor, in elements, a record may describe (2^56). */
#define TS_MAX_ELEMENTS (1ull << 56)

/** First byte of the keys of the tensors database that are not tensor names (docs/FORMAT.md,
 *  section 3.1): never the first byte of valid UTF-8, so no tensor name can take it. Keys with
 *  it sort after every tensor name. Attachments (engine/attach.c) live there. */
#define TS_RESERVED_KEY_BYTE 0xFFu

/* Key: tensor id (8 bytes big-endian) then page index (8 bytes big-endian). */
#define TS_PAGE_KEY_SIZE 16

/* Page header, little-endian, 40 bytes, followed by the codec payload:
 *   0  u8   type  TS_PAGE_TYPE ('P')
 *   1  u8   format version TS_PAGE_VERSION
 *   2  u8   codec (ts_codec)
 *   3  u8   reserved, 0
 *   4  u32  rows in this page
 *   8  u32  cols in this page
 *   12 u32  payload length in bytes
 *   16 u64  tensor id
 *   24 u64  page index
 *   32 u64  XXH3-64 of bytes [0, 32) followed by the payload
 */
#define TS_PAGE_TYPE 0x50u
#define TS_PAGE_VERSION 1u
#define TS_PAGE_HEADER_SIZE 40

#endif
