/*
 * Tests of engine/lmdbcheck.c: damage inside LMDB's branch, leaf and meta pages — which LMDB
 * follows unchecked — gives TS_ECORRUPT naming the tensor (reads, info, listing) or a structure
 * problem (the store check), never a crash, through every I/O backend: the reader reads the
 * leaves of the pages database itself (O_DIRECT with uring and pread, copies from the map with
 * mmap, the one that faults) and checks those copies (engine/reader.c, window_leaves).
 * The pages to damage are found by parsing the file here (LMDB 0.9 layout, 4 KiB pages), not
 * through the code under test; every expected value is independent arithmetic.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "engine/io.h"
#include "engine/lmdbcheck.h"
#include "storetest.h"

#define PG 4096u
#define BIG_ROWS 500u
#define BIG_COLS 1000u
#define NSMALL 6

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void p16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint64_t g64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void p64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The meta page LMDB uses (0 or 1): the one with the higher txnid (byte 144 of each). */
static int meta_in_use(const uint8_t *img)
{
	return g64(img + PG + 144) > g64(img + 144);
}

/* A store with "big" (raw F32, value i at flat index i, ~500 pages of 4 KiB so that the pages
 * database has a branch page) and a few small tensors; returns its image. */
static uint8_t *make_store(size_t *len)
{
	ts_store *st = st_create("orig.tst", 1);
	ts_codec_config cfg = st_raw_f32();
	uint64_t shape[2] = {BIG_ROWS, BIG_COLS};
	size_t n = (size_t)BIG_ROWS * BIG_COLS;
	float *x = malloc(n * sizeof *x);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)i;
	ts_write_opts wo;
	ts_write_opts_init(&wo);
	wo.page_bytes = 4080;
	wo.amax = (float)(n - 1);
	ts_writer *w;
	cr_assert_eq(ts_writer_begin(&w, st, "big", TS_F32, 2, shape, &cfg, &wo), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_writer_append(w, x, n * sizeof *x), 0, "%s", ts_error_last());
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
	for (int k = 0; k < NSMALL; k++) {
		char name[32];
		uint64_t s1[1] = {8};
		snprintf(name, sizeof name, "small.%d", k);
		st_write_f32(st, name, 1, s1, &cfg, x, 0);
	}
	free(x);
	ts_store_close(st);
	return st_read_file(st_path("orig.tst"), len);
}

static const char *write_damaged(const uint8_t *img, size_t len)
{
	const char *p = st_path("damaged.tst");
	char lock[4200];
	snprintf(lock, sizeof lock, "%s-lock", p);
	unlink(lock);
	FILE *f = fopen(p, "wb");
	cr_assert(f);
	cr_assert_eq(fwrite(img, 1, len, f), len);
	fclose(f);
	return p;
}

enum { K_PAGES_BRANCH, K_PAGES_LEAF, K_TENSORS_LEAF };

/* The root page of database @p db in the snapshot LMDB uses, by parsing the file: the meta with
 * the higher txnid (byte 144), its main tree record (bytes 88..136, root at +40), the main root
 * leaf's node named @p db and its 48-byte record (depth at +6, root at +40). The file holds older
 * copies of branch and leaf pages too (copy-on-write), so the live ones are found from the root. */
static uint8_t *db_root(uint8_t *img, size_t len, const char *db, unsigned *depth)
{
	int cur = meta_in_use(img);
	uint64_t mroot = g64(img + (size_t)cur * PG + 128);
	cr_assert_lt(mroot, len / PG);
	uint8_t *m = img + mroot * PG;
	cr_assert_eq(g16(m + 10) & 2, 2, "the main root is a leaf");
	for (unsigned i = 0; i < (g16(m + 12) - 16u) / 2; i++) {
		const uint8_t *n = m + g16(m + 16 + 2 * i);
		if (g16(n + 6) == strlen(db) && !memcmp(n + 8, db, strlen(db))) {
			const uint8_t *rec = n + 8 + g16(n + 6);
			uint64_t root = g64(rec + 40);
			*depth = g16(rec + 6);
			cr_assert_lt(root, len / PG);
			return img + root * PG;
		}
	}
	cr_assert_fail("no '%s' database", db);
	return NULL;
}

static uint8_t *find_page(uint8_t *img, size_t len, int kind)
{
	unsigned depth;
	uint8_t *r = db_root(img, len, kind == K_TENSORS_LEAF ? "tensors" : "pages", &depth);
	if (kind == K_TENSORS_LEAF) {
		cr_assert_eq(depth, 1, "the tensors database is one leaf");
		return r;
	}
	cr_assert_eq(depth, 2, "the pages database is a branch over leaves (depth %u)", depth);
	cr_assert_eq(g16(r + 10) & 1, 1);
	if (kind == K_PAGES_BRANCH)
		return r;
	const uint8_t *n0 = r + g16(r + 16);
	uint64_t child = (uint64_t)g16(n0) | (uint64_t)g16(n0 + 2) << 16 | (uint64_t)g16(n0 + 4) << 32;
	cr_assert_lt(child, len / PG);
	return img + child * PG;
}

static const ts_io_backend backends[] = {TS_IO_MMAP, TS_IO_URING, TS_IO_PREAD};
#define NBACKENDS (sizeof backends / sizeof backends[0])

static ts_store *open_io(const char *path, ts_io_backend io)
{
	ts_open_opts o;
	ts_open_opts_init(&o);
	o.io = io;
	o.cache_bytes = 0;
	o.threads = 1;
	ts_store *st;
	int rc = ts_store_open(&st, path, &o);
	cr_assert_eq(rc, 0, "open: %s", ts_error_last());
	return st;
}

static ts_store *open_mmap(const char *path)
{
	return open_io(path, TS_IO_MMAP);
}

/* Read "big" whole: 0 with every value i at index i, or the error code. */
static int read_big(ts_store *st)
{
	size_t n = (size_t)BIG_ROWS * BIG_COLS;
	float *x = malloc(n * sizeof *x);
	uint64_t start[2] = {0, 0}, count[2] = {BIG_ROWS, BIG_COLS};
	int rc = ts_read_slice(st, "big", 2, start, count, TS_F32, x, n * sizeof *x);
	for (size_t i = 0; rc == 0 && i < n; i++)
		cr_assert_eq(x[i], (float)i, "big[%zu] = %g", i, (double)x[i]);
	free(x);
	return rc;
}

static int count_cb(void *ud, const char *name, const ts_tensor_info *info)
{
	(void)name;
	(void)info;
	(*(int *)ud)++;
	return 0;
}

static void on_problem(void *ud, const ts_problem *p)
{
	if (p->kind == TS_PROBLEM_STRUCTURE)
		(*(int *)ud)++;
	fprintf(stderr, "  problem: %s\n", p->detail);
}

/* The store check's structure problems (the check itself must succeed). */
static int structure_problems(ts_store *st)
{
	int n = 0;
	uint64_t problems = 0;
	cr_assert_eq(st_check(&problems, st, 0, on_problem, &n), 0, "%s", ts_error_last());
	return n;
}

/* Rows 0, 250 and 499 of "big", gathered in that order: 0 with row r holding r * BIG_COLS + c, or
 * the error code. */
static int gather_big(ts_store *st)
{
	const uint64_t rows[3] = {499, 0, 250};
	float *x = malloc(3 * BIG_COLS * sizeof *x);
	int rc = ts_read_rows(st, "big", 3, rows, TS_F32, x, 3 * BIG_COLS * sizeof *x);
	for (size_t i = 0; rc == 0 && i < 3 * BIG_COLS; i++)
		cr_assert_eq(x[i], (float)(rows[i / BIG_COLS] * BIG_COLS + i % BIG_COLS),
			     "gathered [%zu] = %g", i, (double)x[i]);
	free(x);
	return rc;
}

/* Reading "big" whole and gathering rows of it fail with TS_ECORRUPT naming it, through every
 * backend; the check reports structure damage. */
static void expect_big_corrupt(const uint8_t *img, size_t len)
{
	const char *path = write_damaged(img, len);
	for (size_t b = 0; b < NBACKENDS; b++) {
		ts_store *st = open_io(path, backends[b]);
		int rc = read_big(st);
		cr_expect_eq(rc, TS_ECORRUPT, "read (%s): %d %s", ts_io_backend_name(backends[b]),
			     rc, ts_error_last());
		cr_expect(strstr(ts_error_last(), "'big'") != NULL, "error names the tensor: %s",
			  ts_error_last());
		rc = gather_big(st);
		cr_expect_eq(rc, TS_ECORRUPT, "gather (%s): %d %s", ts_io_backend_name(backends[b]),
			     rc, ts_error_last());
		cr_expect(strstr(ts_error_last(), "'big'") != NULL, "error names the tensor: %s",
			  ts_error_last());
		if (backends[b] == TS_IO_MMAP)
			cr_expect_gt(structure_problems(st), 0);
		ts_store_close(st);
	}
}

Test(lmdbcheck, undamaged_store_reads_lists_and_checks_clean)
{
	size_t len;
	uint8_t *img = make_store(&len);
	ts_store *st = open_mmap(write_damaged(img, len));
	int n = 0;
	cr_expect_eq(read_big(st), 0, "%s", ts_error_last());
	cr_expect_eq(ts_tensor_foreach(st, count_cb, &n), 0, "%s", ts_error_last());
	cr_expect_eq(n, 1 + NSMALL);
	cr_expect_eq(structure_problems(st), 0);
	ts_store_close(st);
	free(img);
}

/* The reader looks page keys up in copies of the leaves it reads itself (one batch per window),
 * not through LMDB's map: on every backend the values are those written, the leaves were read
 * (counted apart from the pages' runs), and values small enough to live inside a leaf come
 * out of its copy intact. */
Test(lmdbcheck, page_keys_are_found_in_leaves_read_by_the_reader_on_every_backend)
{
	size_t len;
	uint8_t *img = make_store(&len);
	const char *path = write_damaged(img, len);
	for (size_t b = 0; b < NBACKENDS; b++) {
		ts_store *st = open_io(path, backends[b]);
		uint64_t before = atomic_load(&st->io_ctx->tree_reads);
		cr_expect_eq(read_big(st), 0, "%s", ts_error_last());
		cr_expect_gt(atomic_load(&st->io_ctx->tree_reads), before, "leaves read (%s)",
			     ts_io_backend_name(backends[b]));
		cr_expect_eq(gather_big(st), 0, "%s", ts_error_last());
		for (int k = 0; k < NSMALL; k++) {
			char name[32];
			float x[8];
			uint64_t start[1] = {0}, count[1] = {8};
			snprintf(name, sizeof name, "small.%d", k);
			cr_assert_eq(ts_read_slice(st, name, 1, start, count, TS_F32, x, sizeof x), 0,
				     "%s", ts_error_last());
			for (int i = 0; i < 8; i++)
				cr_expect_eq(x[i], (float)i, "%s[%d] = %g", name, i, (double)x[i]);
		}
		ts_store_close(st);
	}
	free(img);
}

Test(lmdbcheck, branch_child_outside_the_file_is_corrupt_not_a_crash)
{
	size_t len;
	uint8_t *img = make_store(&len);
	uint8_t *b = find_page(img, len, K_PAGES_BRANCH);
	uint8_t *node = b + g16(b + 16 + 2); /* node 1 */
	uint64_t child = len / PG + 1000;    /* far past the end of the file */
	p16(node, (unsigned)(child & 0xffff));
	p16(node + 2, (unsigned)(child >> 16 & 0xffff));
	p16(node + 4, 0);
	expect_big_corrupt(img, len);
	free(img);
}

Test(lmdbcheck, leaf_node_offset_outside_the_page_is_corrupt)
{
	size_t len;
	uint8_t *img = make_store(&len);
	uint8_t *l = find_page(img, len, K_PAGES_LEAF);
	p16(l + 16, PG - 2); /* node 0 starts 2 bytes before the end of the page */
	expect_big_corrupt(img, len);
	free(img);
}

Test(lmdbcheck, big_value_longer_than_its_overflow_run_is_corrupt)
{
	size_t len;
	uint8_t *img = make_store(&len);
	uint8_t *l = find_page(img, len, K_PAGES_LEAF);
	uint8_t *node = l + g16(l + 16);
	p16(node + 2, 0x7fff); /* data size += 0x7fff << 16: ~2 GB */
	expect_big_corrupt(img, len);
	free(img);
}

Test(lmdbcheck, overflow_page_number_outside_the_file_is_corrupt)
{
	size_t len;
	uint8_t *img = make_store(&len);
	uint8_t *l = find_page(img, len, K_PAGES_LEAF);
	uint8_t *node = l + g16(l + 16);
	uint8_t *data = node + 8 + g16(node + 6); /* the overflow page number, u64 */
	data[5] ^= 0x40;                          /* + 2^46 pages */
	expect_big_corrupt(img, len);
	free(img);
}

/* A read checks each page of the pages database once per transaction and remembers it
 * (engine/lmdbcheck.c, invariant 5): damage to the last value of a leaf, whose lookup comes
 * after many others on the same, already checked leaf, is still found. */
Test(lmdbcheck, damage_to_a_leafs_last_value_is_found_after_its_leaf_was_checked)
{
	size_t len;
	uint8_t *img = make_store(&len);
	uint8_t *l = find_page(img, len, K_PAGES_LEAF);
	unsigned nkeys = (g16(l + 12) - 16) / 2;
	cr_assert_geq(nkeys, 3, "the leaf has %u nodes", nkeys);
	uint8_t *node = l + g16(l + 16 + 2 * (nkeys - 1));
	uint8_t *data = node + 8 + g16(node + 6); /* the overflow page number, u64 */
	data[5] ^= 0x40;                          /* + 2^46 pages */
	expect_big_corrupt(img, len);
	free(img);
}

Test(lmdbcheck, branch_keys_out_of_order_are_corrupt)
{
	size_t len;
	uint8_t *img = make_store(&len);
	uint8_t *b = find_page(img, len, K_PAGES_BRANCH);
	unsigned nkeys = (g16(b + 12) - 16) / 2;
	cr_assert_geq(nkeys, 3, "the branch page has %u nodes", nkeys);
	unsigned p1 = g16(b + 18), p2 = g16(b + 20);
	p16(b + 18, p2); /* swap the index entries of nodes 1 and 2 */
	p16(b + 20, p1);
	expect_big_corrupt(img, len);
	free(img);
}

Test(lmdbcheck, two_branch_nodes_naming_one_child_are_corrupt)
{
	size_t len;
	uint8_t *img = make_store(&len);
	uint8_t *b = find_page(img, len, K_PAGES_BRANCH);
	uint8_t *n1 = b + g16(b + 18), *n2 = b + g16(b + 20);
	memcpy(n2, n1, 6); /* node 2's child page := node 1's */
	expect_big_corrupt(img, len);
	free(img);
}

Test(lmdbcheck, tensors_leaf_damage_fails_info_and_listing)
{
	size_t len;
	uint8_t *img = make_store(&len);
	uint8_t *l = find_page(img, len, K_TENSORS_LEAF);
	p16(l + 14, PG + 8); /* upper past the end of the page */
	ts_store *st = open_mmap(write_damaged(img, len));
	ts_tensor_info info;
	int n = 0;
	int rc = ts_tensor_info_get(&info, st, "big");
	cr_expect_eq(rc, TS_ECORRUPT, "info: %d %s", rc, ts_error_last());
	cr_expect(strstr(ts_error_last(), "'big'") != NULL, "%s", ts_error_last());
	cr_expect_eq(ts_tensor_foreach(st, count_cb, &n), TS_ECORRUPT, "%s", ts_error_last());
	cr_expect_eq(n, 0);
	cr_expect_gt(structure_problems(st), 0);
	ts_store_close(st);
	free(img);
}

Test(lmdbcheck, main_tree_damage_is_refused_at_open)
{
	size_t len;
	uint8_t *img = make_store(&len);
	int cur = meta_in_use(img);
	uint64_t root = g64(img + (size_t)cur * PG + 128); /* main tree record, root at +40 */
	cr_assert_lt(root, len / PG);
	uint8_t *r = img + root * PG;
	p16(r + 16, PG - 4); /* its node 0 runs off the page */
	ts_store *st = NULL;
	int rc = ts_store_open(&st, write_damaged(img, len), NULL);
	cr_expect_eq(rc, TS_ECORRUPT, "open: %d %s", rc, ts_error_last());
	cr_expect_null(st);
	free(img);
}

/* Invariant 6: the meta page LMDB uses names as main root the previous commit's root (as one
 * damaged byte of its page number can): that page was freed by the last commit and still holds
 * the older tree, whole and well formed. The open refuses it instead of opening the older
 * snapshot (the corruption suite once read a replaced tensor's old values so). */
Test(lmdbcheck, meta_naming_an_older_trees_root_is_refused_at_open)
{
	size_t len;
	uint8_t *img = make_store(&len);
	int cur = meta_in_use(img);
	uint64_t now = g64(img + (size_t)cur * PG + 128), before = g64(img + (size_t)!cur * PG + 128);
	cr_assert_neq(now, before, "each commit copies the main root");
	cr_assert_lt(before, len / PG);
	ts_store *st = NULL;
	cr_assert_eq(ts_store_open(&st, write_damaged(img, len), NULL), 0, "%s", ts_error_last());
	ts_store_close(st);
	p64(img + (size_t)cur * PG + 128, before);
	st = NULL;
	int rc = ts_store_open(&st, write_damaged(img, len), NULL);
	cr_expect_eq(rc, TS_ECORRUPT, "open: %d %s", rc, ts_error_last());
	cr_expect(strstr(ts_error_last(), "listed free") != NULL, "%s", ts_error_last());
	cr_expect_null(st);
	ts_store_close(st);
	free(img);
}

/* Invariant 7: the older meta page's transaction id damaged to the newer one's + 1 (its slot
 * and the two being consecutive still hold, as a flipped bit can leave them) would make LMDB
 * open the older snapshot as current: the open refuses it. */
Test(lmdbcheck, meta_whose_transaction_id_looks_newer_than_it_is_is_refused_at_open)
{
	size_t len;
	uint8_t *img = make_store(&len);
	int cur = meta_in_use(img);
	uint64_t now = g64(img + (size_t)cur * PG + 144);
	ts_store *st = NULL;
	cr_assert_eq(g64(img + (size_t)!cur * PG + 144), now - 1, "consecutive transactions");
	p64(img + (size_t)!cur * PG + 144, now + 1);
	int rc = ts_store_open(&st, write_damaged(img, len), NULL);
	cr_expect_eq(rc, TS_ECORRUPT, "open: %d %s", rc, ts_error_last());
	cr_expect(strstr(ts_error_last(), "meta pages are damaged") != NULL, "%s",
		  ts_error_last());
	cr_expect_null(st);
	ts_store_close(st);
	free(img);
}

/* Invariant 6 on healthy stores whose free list is long: deleting large tensors frees thousands
 * of pages, whose records LMDB keeps in overflow runs and rewrites in place with smaller sizes
 * (reserved records); every later open must still accept the store and read it whole. */
Test(lmdbcheck, stores_with_long_free_lists_open_and_read)
{
	ts_store *st = st_create("churn.tst", 1);
	ts_codec_config cfg = st_raw_f32();
	uint64_t big[2] = {2048, 1024}, small[1] = {1000};
	size_t n = 2048 * 1024;
	float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
	cr_assert(x && y);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(i % 1000);
	for (int round = 0; round < 6; round++) {
		char name[32];
		snprintf(name, sizeof name, "big.%d", round);
		st_write_f32(st, name, 2, big, &cfg, x, 0);
		if (round % 2)
			cr_assert_eq(ts_tensor_delete(st, name), 0, "%s", ts_error_last());
		snprintf(name, sizeof name, "small.%d", round);
		st_write_f32(st, name, 1, small, &cfg, x, 0);
		ts_store_close(st);
		st = NULL;
		cr_assert_eq(ts_store_open(&st, st_path("churn.tst"), NULL), 0, "round %d: %s",
			     round, ts_error_last());
		ts_store_close(st);
		ts_open_opts o;
		ts_open_opts_init(&o);
		o.flags = TS_OPEN_WRITE;
		cr_assert_eq(ts_store_open(&st, st_path("churn.tst"), &o), 0, "round %d: %s", round,
			     ts_error_last());
	}
	for (int round = 0; round < 6; round += 2) {
		char name[32];
		uint64_t start[2] = {0, 0};
		snprintf(name, sizeof name, "big.%d", round);
		cr_assert_eq(ts_read_slice(st, name, 2, start, big, TS_F32, y, n * sizeof *y), 0,
			     "%s", ts_error_last());
		cr_expect_eq(memcmp(x, y, n * sizeof *x), 0, "%s", name);
	}
	ts_store_close(st);
	free(x);
	free(y);
}
