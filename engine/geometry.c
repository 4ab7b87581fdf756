/*
 * Page geometry: how a tensor, viewed as a rows x cols matrix (cols = the last dimension), is cut
 * into pages. A page is a tile of tile_rows rows by tile_cols columns; tiles are numbered
 * row-major (page p is tile row p / across, tile column p % across) and the last tile of a row
 * or column of tiles may be smaller. The rule that chooses the tile (docs/FORMAT.md, "Page
 * geometry"):
 *   1. A tensor whose whole encoding fits one page is one page (unless its source exceeds the
 *      band limit of rule 3 and it has several rows).
 *   2. Otherwise tiles are about TS_GEOMETRY_TILE_COLS (1024) columns wide, the columns split
 *      evenly into whole blocks, so that tensor-parallel column shards read little more than
 *      they need; tile_rows is as many rows as fill the page.
 *   3. A tile-row band (tile_rows x cols source elements) is at most TS_GEOMETRY_BAND_BYTES, so
 *      that the writer's buffer is bounded; when that limit (or the tensor's height) leaves a
 *      page part-empty, tiles widen (in whole blocks, no longer split evenly) until the page
 *      is full again.
 *   4. With the default page size (and not for lossless, whose pages must stay large), when
 *      an eighth of the columns is a whole number of blocks and has a divisor of whole blocks
 *      between TS_GEOMETRY_SHARD_MIN_COLS (512) and 1024 columns, tiles take the widest such
 *      width instead, and the page shrinks to the k * 4096 - 16 bytes whose height (as many
 *      rows as fit) comes nearest the height rules 1-3 gave, or rule 6's if lower. A shard of
 *      1/2, 1/4 or 1/8 of the columns (tensor parallelism) then reads only its own tiles:
 *      4096 columns give 512-wide tiles in 4 KiB pages for nvfp4 instead of 1024-wide tiles
 *      in 16 KiB pages, and an eighth-width shard reads 1x its share instead of 2x.
 *   5. For a tensor read by rows (TS_WRITE_ROWS: a token embedding, gathered one row per token),
 *      tiles span whole rows, as few as fill their page's run to TS_GEOMETRY_MIN_FILL (the page
 *      as large as they need, up to TS_PAGE_BYTES_MAX; the best filled if none reaches it), so a
 *      gathered row reads one page: 7 rows of 4096 nvfp4 columns in 16 KiB, 10 of 4096 BF16 in
 *      84 KiB. With a page size asked for, or for lossless, that page holds as many whole rows
 *      as fit; a row that no page holds falls back to rules 1-4.
 *   6. With the default page size (not for lossless), tiles are about TS_GEOMETRY_SLICE_ROWS
 *      (16) rows tall: where rule 4 did not apply and rules 1-3 gave taller tiles, the page
 *      shrinks to the k * 4096 - 16 bytes whose height at the same width comes nearest 16, so
 *      that a 64-row slice reads ~1.22x its rows instead of ~1.42x with 28-row tiles.
 *
 * Invariants
 *   1. tile_cols is cols or a multiple of the block size; every tile but the last of a row of
 *      tiles therefore holds whole blocks, and a row's padded last block stays in one page.
 *   2. The encoded size of a full tile plus the page header is at most the page size used:
 *      the one asked for, else rule 4's, 5's or 6's, else the codec's default.
 *   3. tile_rows x cols x source element size <= TS_GEOMETRY_BAND_BYTES, or tile_rows is 1.
 */
#include "config.h"

#include <assert.h>
#include <inttypes.h>

#include "common/error.h"
#include "engine/format.h"
#include "engine/geometry.h"

uint64_t ts__geometry_block(const ts_codec_config *cfg)
{
	switch (cfg->codec) {
	case TS_CODEC_NVFP4:
	case TS_CODEC_MXFP4:
	case TS_CODEC_INT8:
		return cfg->block_size > 0 ? (uint64_t)cfg->block_size : 1;
	default:
		return 1;
	}
}

uint64_t ts__geometry_default_page_bytes(const ts_codec_config *cfg)
{
	switch (cfg->codec) {
	case TS_CODEC_NVFP4:
	case TS_CODEC_MXFP4:
		return TS_PAGE_BYTES_4BIT;
	case TS_CODEC_INT8:
	case TS_CODEC_FP8:
		return TS_PAGE_BYTES_8BIT;
	case TS_CODEC_LOSSLESS:
		return TS_PAGE_BYTES_LOSSLESS;
	default:
		return TS_PAGE_BYTES_DEFAULT;
	}
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static uint64_t enc(const ts__tensor_rec *rec, uint64_t r, uint64_t c)
{
	return ts_codec_encoded_size(&rec->codec, r, c);
}

/* The page size of the fewest 4096-byte LMDB runs that hold a page of @p page bytes (header
 * included): k * 4096 - 16, LMDB's overflow header taking the rest (docs/FORMAT.md). */
static uint64_t run_page_bytes(uint64_t page)
{
	return ceil_div(page + 16, 4096) * 4096 - 16;
}

/* The widest tile (a multiple of bs, or cols) whose @p r rows encode to at most @p cap bytes;
 * 0 if not even one block fits. */
static uint64_t widest(const ts__tensor_rec *rec, uint64_t r, uint64_t cap, uint64_t bs)
{
	uint64_t lo = 0, hi = ceil_div(rec->cols, bs); /* in blocks */

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;
		uint64_t c = mid * bs > rec->cols ? rec->cols : mid * bs;
		uint64_t e = enc(rec, r, c);
		if (e != 0 && e <= cap)
			lo = mid;
		else
			hi = mid - 1;
	}
	if (lo == 0)
		return 0;
	return lo * bs > rec->cols ? rec->cols : lo * bs;
}

/* Split cols evenly into tiles of at most @p tc columns, in whole blocks. */
static uint64_t even_split(uint64_t cols, uint64_t tc, uint64_t bs)
{
	uint64_t n = ceil_div(cols, tc);
	uint64_t w = ceil_div(ceil_div(cols, n), bs) * bs;
	assert(w <= tc || tc == cols);
	return w >= cols ? cols : w;
}

/* The rule for a page size already chosen and a target tile width @p want (columns). */
static int plan_with(ts__tensor_rec *rec, uint64_t page_bytes, uint64_t want)
{
	uint64_t cap, bs, esz, tc, t, band_rows, fit_rows, down, across, total;

	if (page_bytes < TS_PAGE_BYTES_MIN || page_bytes > TS_PAGE_BYTES_MAX ||
	    (page_bytes + 16) % 4096 != 0)
		return ts__err(TS_EINVAL,
			       "page size %" PRIu64 " is not k * 4096 - 16 bytes between %u and %u",
			       page_bytes, TS_PAGE_BYTES_MIN, TS_PAGE_BYTES_MAX);
	rec->tile_rows = rec->tile_cols = rec->page_count = 0;
	if (rec->rows == 0 || rec->cols == 0)
		return 0;
	cap = page_bytes - TS_PAGE_HEADER_SIZE;
	bs = ts__geometry_block(&rec->codec);
	esz = ts_dtype_size(rec->source_dtype);
	if (esz == 0)
		esz = 4;

	total = enc(rec, rec->rows, rec->cols);
	if (total == 0)
		return ts__err(TS_EINVAL, "codec configuration cannot encode %" PRIu64 " x %" PRIu64,
			       rec->rows, rec->cols);
	if (total <= cap && (rec->rows == 1 || rec->rows * rec->cols * esz <= TS_GEOMETRY_BAND_BYTES)) {
		rec->tile_rows = rec->rows;
		rec->tile_cols = rec->cols;
		rec->page_count = 1;
		return 0;
	}

	/* Rule 2: about 1024 columns, split evenly, never wider than one row can be. */
	tc = widest(rec, 1, cap, bs);
	if (tc == 0)
		return ts__err(TS_EINVAL, "a page of %" PRIu64 " bytes cannot hold one block of %" PRIu64
			       " values", page_bytes, bs);
	{
		uint64_t target = ceil_div(want, bs) * bs;
		if (tc > target)
			tc = target;
	}
	if (tc >= rec->cols)
		tc = rec->cols;
	else
		tc = even_split(rec->cols, tc, bs);
	fit_rows = cap / enc(rec, 1, tc);
	assert(fit_rows >= 1);

	/* Rule 3: bound the band, then widen the tiles if the page is not full. */
	band_rows = TS_GEOMETRY_BAND_BYTES / (rec->cols * esz > 0 ? rec->cols * esz : 1);
	if (band_rows < 1)
		band_rows = 1;
	t = fit_rows;
	if (t > band_rows)
		t = band_rows;
	if (t > rec->rows)
		t = rec->rows;
	if (t < fit_rows) {
		/* Full pages matter more than equal tiles here: take the widest tile. */
		uint64_t w = widest(rec, t, cap, bs);
		if (w > tc)
			tc = w;
	}
	while (enc(rec, t, tc) > cap && t > 1) /* encoded size need not be exactly linear */
		t--;
	assert(enc(rec, t, tc) <= cap);

	down = ceil_div(rec->rows, t);
	across = ceil_div(rec->cols, tc);
	if (__builtin_mul_overflow(down, across, &rec->page_count))
		return ts__err(TS_EINVAL, "tensor of %" PRIu64 " x %" PRIu64 " needs too many pages",
			       rec->rows, rec->cols);
	rec->tile_rows = t;
	rec->tile_cols = tc;
	return 0;
}

/* Rule 4: the widest tile of whole blocks, at most TS_GEOMETRY_TILE_COLS and at least
 * TS_GEOMETRY_SHARD_MIN_COLS columns, that divides an eighth of the columns; 0 if there is none.
 * Tiles of that width start wherever a shard of 1/2, 1/4 or 1/8 of the columns starts. */
static uint64_t shard_width(uint64_t cols, uint64_t bs)
{
	uint64_t part, blocks, d;

	if (cols % (TS_GEOMETRY_SHARDS * bs) != 0)
		return 0;
	part = cols / TS_GEOMETRY_SHARDS;
	blocks = part / bs;
	for (d = TS_GEOMETRY_TILE_COLS / bs < blocks ? TS_GEOMETRY_TILE_COLS / bs : blocks; d > 0;
	     d--)
		if (blocks % d == 0)
			break;
	return d * bs >= TS_GEOMETRY_SHARD_MIN_COLS ? d * bs : 0;
}

/* Rule 5: tiles of whole rows, as few rows as fill their run; 1 if no page holds a row. */
static int plan_rows(ts__tensor_rec *rec, uint64_t page_bytes)
{
	uint64_t esz = ts_dtype_size(rec->source_dtype), band_rows, row, best_h = 0, h;
	double best_fill = 0;

	if (page_bytes != 0 || rec->codec.codec == TS_CODEC_LOSSLESS)
		return plan_with(rec, page_bytes ? page_bytes
						 : ts__geometry_default_page_bytes(&rec->codec),
				 rec->cols);
	row = enc(rec, 1, rec->cols);
	if (rec->rows == 0 || rec->cols == 0 || row == 0 ||
	    TS_PAGE_HEADER_SIZE + row > TS_PAGE_BYTES_MAX)
		return 1; /* no page holds a whole row: rules 1-4 decide */
	band_rows = TS_GEOMETRY_BAND_BYTES / (rec->cols * (esz ? esz : 4));
	for (h = 1; h <= rec->rows && (h == 1 || h <= band_rows); h++) {
		uint64_t full = TS_PAGE_HEADER_SIZE + enc(rec, h, rec->cols);
		uint64_t pb = run_page_bytes(full);
		double fill = (double)full / (double)pb;
		if (pb > TS_PAGE_BYTES_MAX)
			break;
		if (fill > best_fill) {
			best_fill = fill;
			best_h = h;
		}
		if (fill >= TS_GEOMETRY_MIN_FILL)
			break;
	}
	if (best_h == 0)
		return 1;
	return plan_with(rec, run_page_bytes(TS_PAGE_HEADER_SIZE + enc(rec, best_h, rec->cols)),
			 rec->cols);
}

/* Tiles @p w columns wide in the page of k 4096-byte runs (at most @p max_page bytes) whose
 * height comes nearest @p height: the smallest that holds that height, or one run less if that
 * comes nearer. 1 (and *rec unchanged) where no such page keeps the width @p w. */
static int plan_height(ts__tensor_rec *rec, uint64_t w, uint64_t height, uint64_t max_page)
{
	ts__tensor_rec t = *rec;
	uint64_t pb = run_page_bytes(TS_PAGE_HEADER_SIZE + enc(rec, height, w));

	if (pb < TS_PAGE_BYTES_MIN)
		pb = TS_PAGE_BYTES_MIN;
	if (pb > max_page || plan_with(&t, pb, w) != 0)
		return 1;
	if (pb > TS_PAGE_BYTES_MIN) {
		ts__tensor_rec less = t;
		if (plan_with(&less, pb - 4096, w) == 0 && less.tile_cols == w &&
		    (t.tile_cols != w || height - less.tile_rows < t.tile_rows - height))
			t = less;
	}
	if (t.tile_cols != w) /* the band or height rule widened it */
		return 1;
	*rec = t;
	return 0;
}

int ts__geometry_plan(ts__tensor_rec *rec, uint64_t page_bytes, int by_rows)
{
	uint64_t w, height;
	int rc;

	if (by_rows) {
		rc = plan_rows(rec, page_bytes);
		if (rc <= 0)
			return rc;
	}
	if (page_bytes != 0 || rec->codec.codec == TS_CODEC_LOSSLESS)
		return plan_with(rec, page_bytes ? page_bytes
						 : ts__geometry_default_page_bytes(&rec->codec),
				 TS_GEOMETRY_TILE_COLS);
	/* Rules 1-3 at the codec's page size, then rule 4: the shard width, no taller than rule 6
	 * allows, in the page nearest that height; else rule 6 at the width of rules 1-3. */
	page_bytes = ts__geometry_default_page_bytes(&rec->codec);
	rc = plan_with(rec, page_bytes, TS_GEOMETRY_TILE_COLS);
	if (rc || rec->page_count <= 1 || rec->tile_cols > TS_GEOMETRY_TILE_COLS)
		return rc; /* one page, or rule 3 widened the tiles (a short or very wide tensor) */
	height = rec->tile_rows > TS_GEOMETRY_SLICE_ROWS ? TS_GEOMETRY_SLICE_ROWS : rec->tile_rows;
	w = shard_width(rec->cols, ts__geometry_block(&rec->codec));
	if (w != 0 && w < rec->tile_cols && plan_height(rec, w, height, page_bytes) == 0)
		return 0;
	if (height < rec->tile_rows)
		(void)plan_height(rec, rec->tile_cols, height, page_bytes);
	return 0;
}

uint64_t ts__geometry_tiles_across(const ts__tensor_rec *rec)
{
	return rec->tile_cols ? ceil_div(rec->cols, rec->tile_cols) : 0;
}

void ts__geometry_page_rect(const ts__tensor_rec *rec, uint64_t page, uint64_t *r0,
			    uint64_t *nr, uint64_t *c0, uint64_t *nc)
{
	uint64_t across = ts__geometry_tiles_across(rec);

	assert(across > 0 && page < rec->page_count);
	*r0 = page / across * rec->tile_rows;
	*c0 = page % across * rec->tile_cols;
	*nr = rec->rows - *r0 < rec->tile_rows ? rec->rows - *r0 : rec->tile_rows;
	*nc = rec->cols - *c0 < rec->tile_cols ? rec->cols - *c0 : rec->tile_cols;
}
