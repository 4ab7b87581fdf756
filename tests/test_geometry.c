/*
 * Tests of page geometry (engine/geometry.c): the documented rule on known shapes (checked by
 * arithmetic done here), the invariants on many shapes and codecs (with and without tiles of
 * whole rows), and the read-amplification property of a 4096 x 4096 tensor computed from the
 * geometry: row slices of at least a quarter of the rows read at most 1.25x the region's
 * stored bytes, 64-row slices at most 1.55x on average over their starts and 2x at worst,
 * quarter- and eighth-width column shards (tensor parallelism) about 1x, and a quarter-width
 * window at any other offset at most 2x plus the rounding of pages to whole LMDB pages.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "engine/format.h"
#include "engine/geometry.h"
#include "storetest.h"

static ts__tensor_rec plan_by(ts_codec codec, ts_dtype src, uint64_t rows, uint64_t cols,
			      uint64_t page_bytes, int by_rows)
{
	ts__tensor_rec r;
	memset(&r, 0, sizeof(r));
	r.source_dtype = src;
	r.codec = ts_codec_config_default(codec);
	if (codec == TS_CODEC_RAW || codec == TS_CODEC_LOSSLESS) {
		r.codec.raw_dtype = src;
		r.codec.bits_per_value = (int)ts_dtype_size(src) * 8;
	}
	r.ndim = 2;
	r.shape[0] = rows;
	r.shape[1] = cols;
	r.rows = rows;
	r.cols = cols;
	cr_assert_eq(ts__geometry_plan(&r, page_bytes, by_rows), 0, "%s", ts_error_last());
	return r;
}

static ts__tensor_rec plan(ts_codec codec, ts_dtype src, uint64_t rows, uint64_t cols,
			   uint64_t page_bytes)
{
	return plan_by(codec, src, rows, cols, page_bytes, 0);
}

static uint64_t cdiv(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

Test(geometry, small_tensors_are_one_page)
{
	ts__tensor_rec r = plan(TS_CODEC_NVFP4, TS_BF16, 10, 64, 0);
	cr_expect_eq(r.page_count, 1);
	cr_expect_eq(r.tile_rows, 10);
	cr_expect_eq(r.tile_cols, 64);
	/* 30 x 900 nvfp4: 30 * (450 + 57) = 15210 bytes < 16368 - 40; 33 rows would not fit */
	r = plan(TS_CODEC_NVFP4, TS_BF16, 30, 900, 0);
	cr_expect_eq(r.page_count, 1);
	r = plan(TS_CODEC_NVFP4, TS_BF16, 33, 900, 0);
	cr_expect_gt(r.page_count, 1);
	/* raw pages are 64 KiB: 16 x 1000 F32 = 64000 bytes */
	r = plan(TS_CODEC_RAW, TS_F32, 16, 1000, 0);
	cr_expect_eq(r.page_count, 1);
}

Test(geometry, square_nvfp4_uses_1024_wide_full_pages_at_16_kib)
{
	ts__tensor_rec r = plan(TS_CODEC_NVFP4, TS_BF16, 4096, 4096, 16368);
	/* a 1024-column row is 512 code bytes + 64 scale bytes; (16368 - 40) / 576 = 28 rows */
	cr_expect_eq(r.tile_cols, 1024);
	cr_expect_eq(r.tile_rows, 28);
	cr_expect_eq(r.page_count, cdiv(4096, 28) * 4);
	cr_expect_geq(40 + 28 * 576, 16368 - 576, "little slack");
}

Test(geometry, square_nvfp4_gets_eighth_width_tiles_14_rows_tall_by_default)
{
	ts__tensor_rec r = plan(TS_CODEC_NVFP4, TS_BF16, 4096, 4096, 0);
	/* 512 columns: 256 code bytes + 32 scale bytes a row; 16 rows (rule 6) need two runs, which
	 * hold 28 rows; one run (4080 - 40 bytes) holds 14, nearer 16 */
	cr_expect_eq(r.tile_cols, 512);
	cr_expect_eq(r.tile_rows, 14);
	cr_expect_eq(r.page_count, cdiv(4096, 14) * 8);
	cr_expect_leq(40 + 14 * 288, 4080);
	cr_expect_gt(40 + 15 * 288, 4080, "as many rows as the 4 KiB page holds");
}

/* Rule 6: tiles about 16 rows tall, in the page of whole runs whose height comes nearest 16
 * (the expected values worked out by hand from the row sizes). */
Test(geometry, tiles_are_about_16_rows_tall)
{
	static const struct {
		ts_codec codec;
		ts_dtype src;
		uint64_t cols, tile_cols, tile_rows, page;
	} cases[] = {
		/* 640 columns: 360 bytes a row; 16 rows need 8176 (22 rows), 4080 holds 11 */
		{TS_CODEC_NVFP4, TS_BF16, 5120, 640, 11, 4080},
		/* no shard width (an eighth is 256): rules 1-3's 1024 columns, 576 bytes a row; 16
		 * rows need 12272 (21 rows), 8176 holds 14 */
		{TS_CODEC_NVFP4, TS_BF16, 2048, 1024, 14, 8176},
		/* raw BF16, 512 columns: 1024 bytes a row; 16 rows need 20464 (19), 16368 holds 15 */
		{TS_CODEC_RAW, TS_BF16, 4096, 512, 15, 16368},
		/* raw BF16, 1024 columns: 2048 bytes a row; 16 rows need 36848 (17), 32752 holds 15:
		 * both 1 row away, the page that holds 16 rows' worth stays */
		{TS_CODEC_RAW, TS_BF16, 2048, 1024, 17, 36848},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ts__tensor_rec r = plan(cases[i].codec, cases[i].src, 4096, cases[i].cols, 0);
		uint64_t full = 40 + ts_codec_encoded_size(&r.codec, r.tile_rows, r.tile_cols);
		cr_expect_eq(r.tile_cols, cases[i].tile_cols, "case %zu: %llu columns", i,
			     (unsigned long long)r.tile_cols);
		cr_expect_eq(r.tile_rows, cases[i].tile_rows, "case %zu: %llu rows", i,
			     (unsigned long long)r.tile_rows);
		cr_expect_eq(cdiv(full + 16, 4096) * 4096 - 16, cases[i].page, "case %zu", i);
	}
	/* an asked-for page size keeps the height of rules 1-3 */
	cr_expect_eq(plan(TS_CODEC_NVFP4, TS_BF16, 4096, 2048, 16368).tile_rows, 28);
}

/* Rule 4 on the widths of common models: the widest divisor of cols / 8 in whole blocks
 * between 512 and 1024 columns, else rules 1-3 alone. */
Test(geometry, tiles_align_with_eighth_width_shards_where_the_width_allows)
{
	static const struct {
		uint64_t cols, tile_cols;
	} cases[] = {
		{4096, 512},   /* 7B-8B hidden */
		{5120, 640},   /* 13B hidden */
		{11008, 688},  /* 7B MLP: 1376 = 86 blocks, 43 blocks */
		{14336, 896},  /* 8B MLP: 1792 = 112 blocks, 56 blocks */
		{8192, 1024},  /* an eighth is 1024 already */
		{28672, 896},  /* 70B MLP */
		{2816, 944},   /* an eighth (352) is too narrow: rule 2's even split of 1024 */
		{1024, 1024},  /* too narrow */
		{4100, 832},   /* not whole blocks per eighth (4100 / 8): rule 2, 5 tiles */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ts__tensor_rec r = plan(TS_CODEC_NVFP4, TS_BF16, 4096, cases[i].cols, 0);
		cr_expect_eq(r.tile_cols, cases[i].tile_cols, "%llu columns: tiles of %llu",
			     (unsigned long long)cases[i].cols, (unsigned long long)r.tile_cols);
		cr_expect(r.tile_rows >= 11 && r.tile_rows <= 22,
			  "%llu columns: about 16 rows (rule 6), not %llu",
			  (unsigned long long)cases[i].cols, (unsigned long long)r.tile_rows);
	}
	/* an asked-for page size and lossless keep rules 1-3 */
	cr_expect_eq(plan(TS_CODEC_NVFP4, TS_BF16, 4096, 4096, 16368).tile_cols, 1024);
	cr_expect_eq(plan(TS_CODEC_LOSSLESS, TS_BF16, 4096, 4096, 0).tile_cols, 1024);
	/* a short tensor whose tiles rule 3 widened keeps them */
	cr_expect_gt(plan(TS_CODEC_NVFP4, TS_BF16, 8, 4096, 0).tile_cols, 512);
}

/* Rule 5 (TS_WRITE_ROWS): tiles of whole rows, the fewest rows whose page fills 95% of its run. */
Test(geometry, row_access_tiles_span_whole_rows_in_pages_that_fill_their_runs)
{
	static const struct {
		ts_codec codec;
		ts_dtype src;
		uint64_t cols, tile_rows, runs;
	} cases[] = {
		/* 2304-byte nvfp4 rows: 1 row 57% of a run, 3 rows 85% of 2, 5 rows 94.2% of 3,
		 * 7 rows 16168 bytes, 98.8% of 4 */
		{TS_CODEC_NVFP4, TS_BF16, 4096, 7, 4},
		/* 8192-byte BF16 rows: h rows need 2h + 1 runs, 2h / (2h + 1) >= 0.95 from h = 10 */
		{TS_CODEC_RAW, TS_BF16, 4096, 10, 21},
		/* 16384-byte F32 rows: 4h + 1 runs, from h = 5 (20480 of 21 runs: 95.3%) */
		{TS_CODEC_RAW, TS_F32, 4096, 5, 21},
		/* 7168-byte BF16 rows of 3584 (Qwen2-7B): 5 rows 35880 bytes, 97.4% of 9 runs */
		{TS_CODEC_RAW, TS_BF16, 3584, 5, 9},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ts__tensor_rec r = plan_by(cases[i].codec, cases[i].src, 32000, cases[i].cols, 0, 1);
		uint64_t full = 40 + ts_codec_encoded_size(&r.codec, r.tile_rows, r.tile_cols);
		cr_expect_eq(r.tile_cols, cases[i].cols, "case %zu: whole rows", i);
		cr_expect_eq(r.tile_rows, cases[i].tile_rows, "case %zu: %llu rows", i,
			     (unsigned long long)r.tile_rows);
		cr_expect_eq(cdiv(full + 16, 4096), cases[i].runs, "case %zu: %llu bytes", i,
			     (unsigned long long)full);
		cr_expect_eq(r.page_count, cdiv(32000, cases[i].tile_rows));
	}
	/* lossless keeps its large pages (its ratio needs them: docs/FORMAT.md), of whole rows:
	 * (262128 - 40 - 1) / 8192 = 31 rows of 4096 BF16 */
	ts__tensor_rec r = plan_by(TS_CODEC_LOSSLESS, TS_BF16, 32000, 4096, 0, 1);
	cr_expect_eq(r.tile_cols, 4096);
	cr_expect_eq(r.tile_rows, 31);
	/* an asked-for page size: whole rows as many as fit it */
	r = plan_by(TS_CODEC_NVFP4, TS_BF16, 32000, 4096, 8176, 1);
	cr_expect_eq(r.tile_cols, 4096);
	cr_expect_eq(r.tile_rows, 3);
	/* a row larger than the largest page: rules 1-4 */
	r = plan_by(TS_CODEC_RAW, TS_F32, 4, 5u << 20, 0, 1);
	cr_expect_lt(r.tile_cols, 5u << 20);
	/* a small tensor is one page */
	r = plan_by(TS_CODEC_NVFP4, TS_BF16, 3, 4096, 0, 1);
	cr_expect_eq(r.page_count, 1);
}

Test(geometry, default_page_sizes_are_k_pages_minus_lmdb_header_by_codec)
{
	/* 4-bit codecs 16 KiB runs, 8-bit codecs 32 KiB, raw 64 KiB */
	static const uint64_t k[5] = {[TS_CODEC_RAW] = 16, [TS_CODEC_NVFP4] = 4,
				      [TS_CODEC_MXFP4] = 4, [TS_CODEC_INT8] = 8, [TS_CODEC_FP8] = 8};
	for (int c = 0; c < 5; c++) {
		ts_codec_config cfg = ts_codec_config_default((ts_codec)c);
		cr_expect_eq(ts__geometry_default_page_bytes(&cfg), k[c] * 4096 - 16, "%s",
			     ts_codec_name(cfg.codec));
	}
	ts__tensor_rec r;
	memset(&r, 0, sizeof(r));
	r.codec = ts_codec_config_default(TS_CODEC_FP8);
	r.source_dtype = TS_F32;
	r.rows = r.cols = 100;
	cr_expect_eq(ts__geometry_plan(&r, 65536, 0), TS_EINVAL, "not k * 4096 - 16");
	cr_expect_eq(ts__geometry_plan(&r, 0, 0), TS_OK, "0 is the default");
	cr_expect_eq(ts__geometry_plan(&r, 2 * 4096 - 16, 0), 0);
	cr_expect_eq(ts__geometry_plan(&r, 17u << 20, 0), TS_EINVAL, "too large");
}

/* The invariants of engine/geometry.c on a grid of shapes, codecs and page sizes. */
Test(geometry, invariants_hold_for_many_shapes)
{
	static const uint64_t dims[] = {1, 2, 15, 16, 17, 33, 100, 1000, 1023, 1024, 1025, 4096,
					11008, 70000, 1000003};
	static const struct {
		ts_codec codec;
		ts_dtype src;
	} cs[] = {{TS_CODEC_NVFP4, TS_BF16}, {TS_CODEC_MXFP4, TS_F32}, {TS_CODEC_INT8, TS_F16},
		  {TS_CODEC_FP8, TS_BF16},   {TS_CODEC_RAW, TS_F32},   {TS_CODEC_RAW, TS_U8},
		  {TS_CODEC_RAW, TS_I64}};
	static const uint64_t pages[] = {0, 4080, 3 * 4096 - 16, 1024 * 4096 - 16};
	for (int by_rows = 0; by_rows < 2; by_rows++)
	for (size_t a = 0; a < sizeof(dims) / 8; a++)
		for (size_t b = 0; b < sizeof(dims) / 8; b++)
			for (size_t c = 0; c < sizeof(cs) / sizeof(cs[0]); c++)
				for (size_t p = 0; p < sizeof(pages) / 8; p++) {
		uint64_t rows = dims[a], cols = dims[b];
		if (rows * cols > 50000000)
			continue;
		ts__tensor_rec r = plan_by(cs[c].codec, cs[c].src, rows, cols, pages[p], by_rows);
		uint64_t pb = pages[p] ? pages[p] : ts__geometry_default_page_bytes(&r.codec);
		if (by_rows && pages[p] == 0) /* rule 5's page is as large as whole rows need */
			pb = TS_PAGE_BYTES_MAX;
		uint64_t bs = ts__geometry_block(&r.codec);
		uint64_t esz = ts_dtype_size(cs[c].src);
		cr_assert(r.tile_cols == cols || r.tile_cols % bs == 0, "%llux%llu codec %d",
			  (unsigned long long)rows, (unsigned long long)cols, cs[c].codec);
		cr_assert_leq(40 + ts_codec_encoded_size(&r.codec, r.tile_rows, r.tile_cols), pb);
		cr_assert(r.tile_rows == 1 || r.tile_rows * cols * esz <= TS_GEOMETRY_BAND_BYTES);
		cr_assert_eq(r.page_count, cdiv(rows, r.tile_rows) * cdiv(cols, r.tile_cols));
		/* the pages tile the matrix: areas add up and every rectangle is inside */
		uint64_t area = 0;
		for (uint64_t i = 0; i < r.page_count; i++) {
			uint64_t r0, nr, c0, nc;
			ts__geometry_page_rect(&r, i, &r0, &nr, &c0, &nc);
			cr_assert(nr >= 1 && nc >= 1 && r0 + nr <= rows && c0 + nc <= cols);
			cr_assert(r0 % r.tile_rows == 0 && c0 % r.tile_cols == 0);
			area += nr * nc;
		}
		cr_assert_eq(area, rows * cols);
		/* pages of large tensors nearly fill their LMDB runs (little slack); a default
		 * page may be smaller than the codec's (rule 4), never larger, but for rule 5 */
		if (r.page_count > 1 && rows >= 1000 && cols >= 1000 && pages[p] == 0) {
			uint64_t full = 40 + ts_codec_encoded_size(&r.codec, r.tile_rows, r.tile_cols);
			uint64_t run = cdiv(full + 16, 4096) * 4096 - 16;
			double fill = (double)full / (double)run;
			cr_assert_leq(run, pb);
			/* rule 6's smaller pages leave up to a row's bytes of a few KiB unused */
			double min_fill = cs[c].codec == TS_CODEC_RAW && !by_rows ? 0.85
					  : by_rows ? 0.95 : 0.92;
			cr_expect_geq(fill, min_fill, "%llux%llu codec %d page %llu rows %d: fill %.3f",
				      (unsigned long long)rows, (unsigned long long)cols, cs[c].codec,
				      (unsigned long long)pb, by_rows, fill);
			if (by_rows)
				cr_expect(r.tile_cols == cols || 40 + ts_codec_encoded_size(
						&r.codec, 1, cols) > TS_PAGE_BYTES_MAX,
					  "%llux%llu codec %d: whole rows", (unsigned long long)rows,
					  (unsigned long long)cols, cs[c].codec);
		}
	}
}

Test(geometry, very_wide_rows_become_single_row_tiles)
{
	/* 8 rows of 2^20 F32 values: a band of 8 rows would be 32 MiB */
	ts__tensor_rec r = plan(TS_CODEC_NVFP4, TS_F32, 8, 1 << 20, 0);
	cr_expect_eq(r.tile_rows, 1);
	cr_expect_gt(r.tile_cols, 1024, "tiles widen to fill the page");
	cr_expect_leq(40 + ts_codec_encoded_size(&r.codec, 1, r.tile_cols), 16368);
	cr_expect_geq(40 + ts_codec_encoded_size(&r.codec, 1, r.tile_cols), 16368 - 600);
	/* a 1-D tensor: one row */
	r = plan(TS_CODEC_RAW, TS_F32, 1, 10000000, 0);
	cr_expect_eq(r.tile_rows, 1);
	cr_expect_geq(r.tile_cols * 4 + 40, 65520 - 400);
}

/* Bytes read from storage for a page: its LMDB overflow run, whole 4096-byte pages. */
static uint64_t run_bytes(const ts__tensor_rec *r, uint64_t nr, uint64_t nc)
{
	uint64_t len = 16 + 40 + ts_codec_encoded_size(&r->codec, nr, nc);
	return cdiv(len, 4096) * 4096;
}

/* Read amplification of the region rows [a, a+h) x cols [b, b+w): bytes of every page it
 * touches, over the region's share of the tensor's stored bytes. */
static double amplification(const ts__tensor_rec *r, uint64_t a, uint64_t h, uint64_t b,
			    uint64_t w)
{
	uint64_t across = cdiv(r->cols, r->tile_cols), stored = 0, read = 0;
	for (uint64_t i = 0; i < r->page_count; i++) {
		uint64_t r0, nr, c0, nc;
		ts__geometry_page_rect(r, i, &r0, &nr, &c0, &nc);
		stored += ts_codec_encoded_size(&r->codec, nr, nc);
		if (r0 < a + h && a < r0 + nr && c0 < b + w && b < c0 + nc)
			read += run_bytes(r, nr, nc);
	}
	(void)across;
	double region = (double)stored * (double)(h * w) / (double)(r->rows * r->cols);
	return (double)read / region;
}

Test(geometry, read_amplification_of_a_4096_square)
{
	static const struct {
		ts_codec codec;
		ts_dtype src;
	} cs[] = {{TS_CODEC_NVFP4, TS_BF16}, {TS_CODEC_MXFP4, TS_BF16}, {TS_CODEC_INT8, TS_BF16},
		  {TS_CODEC_FP8, TS_BF16},   {TS_CODEC_RAW, TS_BF16},   {TS_CODEC_RAW, TS_F32}};
	for (size_t c = 0; c < sizeof(cs) / sizeof(cs[0]); c++) {
		ts__tensor_rec r = plan(cs[c].codec, cs[c].src, 4096, 4096, 0);
		double worst_row = 0, worst_col = 0, worst_aligned = 0, sum64 = 0, worst64 = 0;
		for (uint64_t h = 256; h <= 4096; h *= 2)
			for (uint64_t a = 0; a + h <= 4096; a += 7) {
				double x = amplification(&r, a, h, 0, 4096);
				if (x > worst_row)
					worst_row = x;
			}
		/* 64-row slices at every start: a slice's start is not chosen by the tiles, so the
		 * mean over starts is what a reader of random slices sees */
		for (uint64_t a = 0; a + 64 <= 4096; a++) {
			double x = amplification(&r, a, 64, 0, 4096);
			sum64 += x;
			if (x > worst64)
				worst64 = x;
		}
		for (uint64_t b = 0; b + 1024 <= 4096; b += 16) {
			double x = amplification(&r, 0, 4096, b, 1024);
			if (x > worst_col)
				worst_col = x;
			if (b % 1024 == 0 && x > worst_aligned)
				worst_aligned = x;
		}
		double mean64 = sum64 / (4096 - 64 + 1);
		fprintf(stderr, "%s/%s 4096x4096: tile %llu x %llu, row slices of 256+ <= %.3fx, 64-row "
			"slices %.3fx mean, %.3fx worst, column shards <= %.3fx (aligned %.3fx)\n",
			ts_codec_name(cs[c].codec), ts_dtype_name(cs[c].src),
			(unsigned long long)r.tile_rows, (unsigned long long)r.tile_cols, worst_row,
			mean64, worst64, worst_col, worst_aligned);
		cr_expect_leq(worst_row, 1.25, "%s row slices", ts_codec_name(cs[c].codec));
		cr_expect_leq(worst_aligned, 1.1, "%s column shards", ts_codec_name(cs[c].codec));
		for (uint64_t b = 0; b < 4096; b += 512) {
			double x = amplification(&r, 0, 4096, b, 512);
			cr_expect_leq(x, 1.1, "%s eighth-width shard at column %llu: %.3fx",
				      ts_codec_name(cs[c].codec), (unsigned long long)b, x);
		}
		cr_expect_leq(worst_col, 2.0 * 1.07, "%s unaligned quarter-width windows",
			      ts_codec_name(cs[c].codec));
		/* 14- or 15-row tiles (rule 6): 77-78 rows read for 64 on average, 84-90 at worst,
		 * times the run's slack; nvfp4 fills its 4 KiB runs best: 1.22x (issue 12: <= 1.25) */
		cr_expect_leq(mean64, cs[c].codec == TS_CODEC_NVFP4 ? 1.25 : 1.31,
			      "%s 64-row slices, mean", ts_codec_name(cs[c].codec));
		cr_expect_leq(worst64, 1.5, "%s 64-row slices, worst", ts_codec_name(cs[c].codec));
	}
}

/* A gathered row of a tensor written by rows reads one page of a few rows; with the tiles of a
 * weight matrix it reads every tile of its tile row. */
Test(geometry, a_gathered_row_reads_one_page_of_a_row_access_tensor)
{
	ts__tensor_rec rows = plan_by(TS_CODEC_NVFP4, TS_BF16, 32000, 4096, 0, 1);
	ts__tensor_rec tiles = plan(TS_CODEC_NVFP4, TS_BF16, 32000, 4096, 0);
	ts__tensor_rec raw = plan_by(TS_CODEC_RAW, TS_BF16, 32000, 4096, 0, 1);
	ts__tensor_rec raw_tiles = plan(TS_CODEC_RAW, TS_BF16, 32000, 4096, 0);

	cr_expect_eq(run_bytes(&rows, rows.tile_rows, 4096), 16384, "one 16 KiB page");
	cr_expect_eq(run_bytes(&tiles, tiles.tile_rows, tiles.tile_cols) *
			     cdiv(4096, tiles.tile_cols),
		     8 * 4096, "eight 4 KiB pages");
	cr_expect_eq(run_bytes(&raw, raw.tile_rows, 4096), 21 * 4096, "one 84 KiB page");
	cr_expect_eq(run_bytes(&raw_tiles, raw_tiles.tile_rows, raw_tiles.tile_cols) *
			     cdiv(4096, raw_tiles.tile_cols),
		     8 * 16384, "eight 16 KiB pages");
}
