/*
 * How a tensor is cut into pages (engine/geometry.c).
 */
#ifndef TS_ENGINE_GEOMETRY_H
#define TS_ENGINE_GEOMETRY_H

#include <stdint.h>

#include "engine/format.h"

/* Page sizes: k * 4096 - 16 bytes (header + payload), LMDB's overflow-page run minus its header.
 * The default depends on the codec (ts__geometry_default_page_bytes): the denser the encoding,
 * the smaller the page, so that rules 1-3 give tiles a few dozen rows tall (rules 4 and 6 then
 * shrink the page to tiles of about 16 rows: docs/FORMAT.md, "How the writer chooses the
 * geometry"): TS_PAGE_BYTES_4BIT (k = 4) for nvfp4 and mxfp4, TS_PAGE_BYTES_8BIT (k = 8) for
 * int8 and fp8, TS_PAGE_BYTES_DEFAULT (k = 16) for raw, TS_PAGE_BYTES_LOSSLESS (k = 64) for
 * lossless, whose pages are shorter than that bound by a length the data decides: LMDB rounds each
 * up to whole 4 KiB pages, about 2 KiB lost per page, which must stay small beside the page
 * (docs/FORMAT.md). */
#define TS_PAGE_BYTES_DEFAULT 65520u
#define TS_PAGE_BYTES_LOSSLESS 262128u
#define TS_PAGE_BYTES_8BIT 32752u
#define TS_PAGE_BYTES_4BIT 16368u
#define TS_PAGE_BYTES_MIN 4080u
#define TS_PAGE_BYTES_MAX (16u * 1024 * 1024 - 16)
/* Target tile width in columns for wide tensors, and the most source bytes of one tile-row band
 * the writer buffers (part of the geometry rule: see docs/FORMAT.md). */
#define TS_GEOMETRY_TILE_COLS 1024u
/* Rule 4: tiles align with shards of 1/TS_GEOMETRY_SHARDS of the columns when that keeps them at
 * least TS_GEOMETRY_SHARD_MIN_COLS wide. */
#define TS_GEOMETRY_SHARDS 8u
#define TS_GEOMETRY_SHARD_MIN_COLS 512u
#define TS_GEOMETRY_BAND_BYTES (4u * 1024 * 1024)
/* Rule 6: tiles about this many rows tall at most, so that a slice of a few dozen rows reads
 * little more than it needs (64 rows: (63 + h) / 64 on average over its starts). */
#define TS_GEOMETRY_SLICE_ROWS 16u
/* Rule 5: whole-row tiles of as few rows as fill at least this share of their LMDB run. */
#define TS_GEOMETRY_MIN_FILL 0.95

/** The page size a tensor of codec configuration @p cfg gets when none is asked for. */
uint64_t ts__geometry_default_page_bytes(const ts_codec_config *cfg);

/** Elements per block along a row for the geometry of @p cfg (1 for raw and fp8). */
uint64_t ts__geometry_block(const ts_codec_config *cfg);

/** Choose tile_rows/tile_cols/page_count for @p rec (rows, cols and codec set) so that a full
 *  page (header + payload) is at most @p page_bytes (0: the codec's default, or smaller by
 *  rule 4) and as close to it as the geometry allows; @p by_rows (TS_WRITE_ROWS): tiles of
 *  whole rows (rule 5, whose default page may be larger than the codec's). */
int ts__geometry_plan(ts__tensor_rec *rec, uint64_t page_bytes, int by_rows);

/** The rectangle of page @p page: rows [*r0, *r0 + *nr), cols [*c0, *c0 + *nc). */
void ts__geometry_page_rect(const ts__tensor_rec *rec, uint64_t page, uint64_t *r0,
			    uint64_t *nr, uint64_t *c0, uint64_t *nc);

/** Number of tile columns (pages per tile row). */
uint64_t ts__geometry_tiles_across(const ts__tensor_rec *rec);

#endif
