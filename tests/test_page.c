/*
 * Tests of page keys and headers (engine/page.c): the documented byte layout, the checksum
 * computed independently, and ts__page_verify() rejecting every inconsistent field without
 * trusting any length.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/error.h"
#include "engine/format.h"
#include "engine/geometry.h"
#include "engine/handle.h"
#include "engine/page.h"
#include "engine/txn.h"
#include "storetest.h"

/* A 100 x 70 raw F32 tensor cut into pages of 16 rows x 32 columns (3 tiles across). */
static ts__tensor_rec small_rec(void)
{
	ts__tensor_rec r;
	memset(&r, 0, sizeof(r));
	r.id = 5;
	r.source_dtype = TS_F32;
	r.ndim = 2;
	r.shape[0] = 100;
	r.shape[1] = 70;
	r.codec = ts_codec_config_default(TS_CODEC_RAW);
	r.codec.raw_dtype = TS_F32;
	r.codec.bits_per_value = 32;
	r.tensor_scale = 1;
	r.rows = 100;
	r.cols = 70;
	r.tile_rows = 16;
	r.tile_cols = 32;
	r.page_count = 7 * 3;
	return r;
}

/* Build page @p index of @p r with payload bytes from @p seed. */
static uint8_t *build(const ts__tensor_rec *r, uint64_t index, size_t *len, uint64_t *seed)
{
	uint64_t r0, nr, c0, nc;
	ts__geometry_page_rect(r, index, &r0, &nr, &c0, &nc);
	size_t plen = nr * nc * 4;
	uint8_t *buf = malloc(TS_PAGE_HEADER_SIZE + plen);
	for (size_t i = 0; i < plen; i++)
		buf[TS_PAGE_HEADER_SIZE + i] = (uint8_t)st_rand(seed);
	ts__page_hdr h = {.codec = TS_CODEC_RAW, .rows = (uint32_t)nr, .cols = (uint32_t)nc,
			  .payload_len = (uint32_t)plen, .tensor_id = r->id, .page_index = index};
	ts__page_seal(buf, &h);
	*len = TS_PAGE_HEADER_SIZE + plen;
	return buf;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the checksum as docs/FORMAT.md defines it: XXH3-64 of bytes [0, 32) followed by
 * the payload, computed here over one contiguous copy. */
static uint64_t doc_checksum(const uint8_t *page, size_t len)
{
	uint8_t *tmp = malloc(len - 8);
	memcpy(tmp, page, 32);
	memcpy(tmp + 32, page + 40, len - 40);
	uint64_t h = XXH3_64bits(tmp, len - 8);
	free(tmp);
	return h;
}

static void reseal(uint8_t *page, size_t len)
{
	uint64_t h = doc_checksum(page, len);
	for (int i = 0; i < 8; i++)
		page[32 + i] = (uint8_t)(h >> (8 * i));
}

Test(page, keys_are_big_endian_and_sort_numerically)
{
	uint8_t k[TS_PAGE_KEY_SIZE], k2[TS_PAGE_KEY_SIZE];
	uint64_t id, idx;
	ts__page_key(k, 0x0102030405060708ull, 0x1112131415161718ull);
	static const uint8_t want[16] = {1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
					 0x17, 0x18};
	cr_expect_eq(memcmp(k, want, 16), 0);
	ts__page_key_parse(k, &id, &idx);
	cr_expect_eq(id, 0x0102030405060708ull);
	cr_expect_eq(idx, 0x1112131415161718ull);
	ts__page_key(k, 1, 255);
	ts__page_key(k2, 1, 256);
	cr_expect_lt(memcmp(k, k2, 16), 0);
	ts__page_key(k2, 2, 0);
	cr_expect_lt(memcmp(k, k2, 16), 0);
}

Test(page, header_layout_and_checksum_match_the_format)
{
	uint64_t seed = st_seed("page.header_layout");
	ts__tensor_rec r = small_rec();
	size_t len;
	uint8_t *p = build(&r, 4, &len, &seed); /* tile row 1, tile column 1: 16 x 32 */
	cr_expect_eq(len, 40 + 16 * 32 * 4);
	cr_expect_eq(p[0], 'P');
	cr_expect_eq(p[1], 1);
	cr_expect_eq(p[2], TS_CODEC_RAW);
	cr_expect_eq(p[3], 0);
	cr_expect_eq(le32(p + 4), 16);
	cr_expect_eq(le32(p + 8), 32);
	cr_expect_eq(le32(p + 12), 16 * 32 * 4);
	cr_expect_eq(le64(p + 16), 5);
	cr_expect_eq(le64(p + 24), 4);
	cr_expect_eq(le64(p + 32), doc_checksum(p, len));
	cr_expect_eq(ts__page_verify(p, len, &r, "w", 4), 0, "%s", ts_error_last());
	free(p);

	/* the last tile of a row of tiles is narrower, the last tile row shorter */
	p = build(&r, 20, &len, &seed);
	cr_expect_eq(le32(p + 4), 100 - 6 * 16);
	cr_expect_eq(le32(p + 8), 70 - 2 * 32);
	cr_expect_eq(ts__page_verify(p, len, &r, "w", 20), 0, "%s", ts_error_last());
	free(p);
}

Test(page, damage_is_a_checksum_problem_naming_tensor_and_page)
{
	uint64_t seed = st_seed("page.damage");
	ts__tensor_rec r = small_rec();
	size_t len;
	uint8_t *p = build(&r, 3, &len, &seed);
	for (int t = 0; t < 200; t++) {
		size_t at = (size_t)(st_rand(&seed) % len);
		uint8_t bit = (uint8_t)(1u << (st_rand(&seed) % 8));
		ts_problem_kind kind = 0;
		p[at] ^= bit;
		int rc = ts__page_verify_kind(p, len, &r, "layer.0.w", 3, &kind);
		cr_expect_eq(rc, TS_ECORRUPT, "flip at %zu", at);
		cr_expect_eq(kind, TS_PROBLEM_CHECKSUM, "flip at %zu: %s", at, ts_error_last());
		cr_expect(strstr(ts_error_last(), "layer.0.w") && strstr(ts_error_last(), "page 3"),
			  "%s", ts_error_last());
		p[at] ^= bit;
	}
	cr_expect_eq(ts__page_verify(p, len, &r, "w", 3), 0);
	free(p);
}

Test(page, lengths_that_lie_are_rejected_before_use)
{
	uint64_t seed = st_seed("page.lengths");
	ts__tensor_rec r = small_rec();
	size_t len;
	uint8_t *p = build(&r, 0, &len, &seed);
	for (size_t l = 0; l < len; l += 97)
		cr_expect_eq(ts__page_verify(p, l, &r, "w", 0), TS_ECORRUPT, "length %zu", l);
	/* header claims a huge payload: must be caught without reading past the buffer */
	uint8_t *copy = malloc(len);
	memcpy(copy, p, len);
	put_le32(copy + 12, 0xFFFFFFF0u);
	cr_expect_eq(ts__page_verify(copy, len, &r, "w", 0), TS_ECORRUPT);
	put_le32(copy + 12, 8);
	reseal(copy, 48);
	cr_expect_eq(ts__page_verify(copy, 48, &r, "w", 0), TS_ECORRUPT);
	free(copy);
	free(p);
}

Test(page, fields_disagreeing_with_the_record_are_geometry_problems)
{
	uint64_t seed = st_seed("page.fields");
	ts__tensor_rec r = small_rec();
	size_t len;
	uint8_t *p = build(&r, 1, &len, &seed);
	ts_problem_kind kind;
	struct {
		int off;
		uint8_t val;
		const char *what;
	} cases[] = {{2, TS_CODEC_NVFP4, "codec"}, {4, 15, "rows"},     {8, 31, "cols"},
		     {16, 6, "tensor id"},        {24, 2, "page index"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *q = malloc(len);
		memcpy(q, p, len);
		q[cases[i].off] = cases[i].val;
		reseal(q, len);
		kind = 0;
		cr_expect_eq(ts__page_verify_kind(q, len, &r, "w", 1, &kind), TS_ECORRUPT, "%s",
			     cases[i].what);
		cr_expect_eq(kind, TS_PROBLEM_GEOMETRY, "%s: %s", cases[i].what, ts_error_last());
		free(q);
	}
	/* the right page under the wrong index */
	cr_expect_eq(ts__page_verify_kind(p, len, &r, "w", 2, &kind), TS_ECORRUPT);
	cr_expect_eq(ts__page_verify(p, len, &r, "w", 21), TS_ECORRUPT); /* beyond page_count */
	free(p);
}

static int put_test_pages(void *ud, MDB_txn *txn)
{
	ts_store *st = ud;
	for (uint64_t id = 1; id <= 3; id++) {
		for (uint64_t i = 0; i < 50; i++) {
			uint8_t kb[16], v[100] = {0};
			MDB_val key = {16, kb}, val = {sizeof(v), v};
			ts__page_key(kb, id, i);
			int rc = mdb_put(txn, st->dbi_pages, &key, &val, 0);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static uint64_t deleted;
static int delete_two(void *ud, MDB_txn *txn)
{
	ts_store *st = ud;
	return ts__pages_delete(st, txn, 2, &deleted);
}

Test(page, deleting_a_tensors_pages_leaves_the_others)
{
	ts_store *st = st_create("p.tst", 1);
	cr_assert_eq(ts__txn_write(st, put_test_pages, st, "test"), 0, "%s", ts_error_last());
	cr_assert_eq(ts__txn_write(st, delete_two, st, "test"), 0, "%s", ts_error_last());
	cr_expect_eq(deleted, 50);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("p.tst"), "pages"), 100);
}
