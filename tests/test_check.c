/*
 * Tests of ts_store_check and ts_store_copy_compact (engine/check.c): a clean store, a flipped
 * byte in a page (found by searching the file, not through our own offsets), orphan pages,
 * missing pages, unfinished writes, damaged records, repair that never touches good data,
 * compacted copies, and the progress callback of ts_store_check2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "engine/handle.h"
#include "engine/page.h"
#include "engine/record.h"
#include "engine/txn.h"
#include "storetest.h"

typedef struct seen {
	int n;
	ts_problem_kind kind[64];
	char tensor[64][64];
	int64_t page[64];
	char detail[64][256];
} seen;

static void on_problem(void *ud, const ts_problem *p)
{
	seen *s = ud;
	if (s->n >= 64)
		return;
	s->kind[s->n] = p->kind;
	snprintf(s->tensor[s->n], 64, "%s", p->tensor ? p->tensor : "");
	s->page[s->n] = p->page;
	snprintf(s->detail[s->n], 256, "%s", p->detail);
	fprintf(stderr, "  problem %d: tensor '%s' page %lld: %s\n", (int)p->kind,
		p->tensor ? p->tensor : "", (long long)p->page, p->detail);
	s->n++;
}

/* Index of the problem of @p kind on @p tensor and @p page, or -1. */
static int find(const seen *s, ts_problem_kind kind, const char *tensor, int64_t page)
{
	for (int i = 0; i < s->n; i++)
		if (s->kind[i] == kind && !strcmp(s->tensor[i], tensor) && s->page[i] == page)
			return i;
	return -1;
}

static uint64_t check(ts_store *st, unsigned flags, seen *s)
{
	uint64_t problems = 12345;
	memset(s, 0, sizeof(*s));
	cr_assert_eq(st_check(&problems, st, flags, on_problem, s), 0, "%s", ts_error_last());
	if (s->n < 64)
		cr_expect_eq(problems, (uint64_t)s->n);
	return problems;
}

static float *data;
static ts_codec_config raw;

/* Three tensors: "a" (many pages), "b" (nvfp4), "c" (one page). */
static ts_store *populated(const char *name)
{
	uint64_t seed = st_seed(name);
	ts_store *st = st_create(name, 2);
	raw = st_raw_f32();
	data = malloc(200000 * 4);
	st_fill_f32(data, 200000, &seed, 1.0f);
	uint64_t sa[2] = {200, 1000}, sc[1] = {100};
	st_write_f32(st, "a", 2, sa, &raw, data, 0);
	ts_codec_config nv = ts_codec_config_default(TS_CODEC_NVFP4);
	st_write_f32(st, "b", 2, sa, &nv, data, 0);
	st_write_f32(st, "c", 1, sc, &raw, data, 0);
	return st;
}

Test(check, a_clean_store_has_no_problems)
{
	seen s;
	ts_store *st = populated("clean.tst");
	cr_expect_eq(check(st, 0, &s), 0);
	cr_expect_eq(check(st, TS_CHECK_REPAIR, &s), 0);
	cr_expect_eq(st_check(NULL, st, 0x8, NULL, NULL), TS_EINVAL);
	ts_store_close(st);
	free(data);
}

Test(check, a_flipped_byte_in_a_page_names_tensor_and_page)
{
	seen s;
	ts_store *st = populated("flip.tst");
	ts_tensor_info info;
	cr_assert_eq(ts_tensor_info_get(&info, st, "a"), 0);
	cr_assert_gt(info.page_count, 3);
	ts_store_close(st);

	/* Find page 2 of "a" in the file by its contents: the page's first row starts with
	 * element (2 / across) * tile_rows * 1000 + (2 % across) * tile_cols of the data. */
	uint64_t across = (1000 + info.tile_cols - 1) / info.tile_cols;
	uint64_t first = (2 / across) * info.tile_rows * 1000 + (2 % across) * info.tile_cols;
	size_t len;
	uint8_t *file = st_read_file(st_path("flip.tst"), &len);
	uint8_t *at = memmem(file, len, data + first, 64);
	cr_assert(at != NULL, "page payload not found in the file");
	off_t off = (off_t)(at - file) + 100;
	free(file);
	int fd = open(st_path("flip.tst"), O_RDWR);
	uint8_t byte;
	cr_assert_eq(pread(fd, &byte, 1, off), 1);
	byte ^= 0x10;
	cr_assert_eq(pwrite(fd, &byte, 1, off), 1);
	close(fd);

	cr_assert_eq(ts_store_open(&st, st_path("flip.tst"), NULL), 0);
	cr_expect_eq(check(st, 0, &s), 1);
	cr_expect_eq(s.kind[0], TS_PROBLEM_CHECKSUM);
	cr_expect_str_eq(s.tensor[0], "a");
	cr_expect_eq(s.page[0], 2);
	cr_expect(strstr(s.detail[0], "checksum"), "%s", s.detail[0]);
	ts_store_close(st);
	free(data);
}

static uint64_t orphan_id = 1000;
static int put_orphans(void *ud, MDB_txn *txn)
{
	ts_store *st = ud;
	for (uint64_t i = 0; i < 3; i++) {
		uint8_t kb[16], v[5000] = {1};
		MDB_val k = {16, kb}, val = {sizeof(v), v};
		ts__page_key(kb, orphan_id, i);
		int rc = mdb_put(txn, st->dbi_pages, &k, &val, 0);
		if (rc)
			return rc;
	}
	return 0;
}

Test(check, orphan_pages_are_found_and_repaired)
{
	seen s;
	ts_store *st = populated("orphan.tst");
	uint64_t before = st_raw_count(st_path("orphan.tst"), "pages");
	cr_assert_eq(ts__txn_write(st, put_orphans, st, "test"), 0);
	cr_expect_eq(check(st, 0, &s), 1);
	cr_expect_eq(s.kind[0], TS_PROBLEM_ORPHAN);
	cr_expect(strstr(s.detail[0], "3 pages of tensor id 1000"), "%s", s.detail[0]);
	cr_expect_eq(check(st, TS_CHECK_REPAIR, &s), 1, "repair reports what it found");
	cr_expect_eq(check(st, 0, &s), 0);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("orphan.tst"), "pages"), before, "good pages untouched");
	free(data);
}

static uint64_t victim_id, victim_page;
static int del_page(void *ud, MDB_txn *txn)
{
	ts_store *st = ud;
	uint8_t kb[16];
	MDB_val k = {16, kb};
	ts__page_key(kb, victim_id, victim_page);
	return mdb_del(txn, st->dbi_pages, &k, NULL);
}

static int put_extra_page(void *ud, MDB_txn *txn)
{
	ts_store *st = ud;
	uint8_t kb[16], v[100] = {0};
	MDB_val k = {16, kb}, val = {sizeof(v), v};
	ts__page_key(kb, victim_id, victim_page);
	return mdb_put(txn, st->dbi_pages, &k, &val, 0);
}

Test(check, missing_and_extra_pages)
{
	seen s;
	ts_store *st = populated("missing.tst");
	ts_tensor_info info;
	cr_assert_eq(ts_tensor_info_get(&info, st, "a"), 0);
	victim_id = info.id;
	victim_page = 1;
	cr_assert_eq(ts__txn_write(st, del_page, st, "test"), 0);
	victim_page = info.page_count - 1;
	cr_assert_eq(ts__txn_write(st, del_page, st, "test"), 0);
	cr_expect_eq(check(st, 0, &s), 2);
	cr_expect_geq(find(&s, TS_PROBLEM_MISSING, "a", 1), 0);
	cr_expect_geq(find(&s, TS_PROBLEM_MISSING, "a", (int64_t)info.page_count - 1), 0);
	cr_expect_eq(check(st, TS_CHECK_REPAIR, &s), 2);
	cr_expect_eq(check(st, 0, &s), 2, "repair cannot invent missing data");

	cr_assert_eq(ts_tensor_info_get(&info, st, "c"), 0);
	victim_id = info.id;
	victim_page = 5;
	cr_assert_eq(ts__txn_write(st, put_extra_page, st, "test"), 0);
	cr_expect_eq(check(st, 0, &s), 3);
	cr_expect_geq(find(&s, TS_PROBLEM_ORPHAN, "c", 5), 0);
	check(st, TS_CHECK_REPAIR, &s);
	cr_expect_eq(check(st, 0, &s), 2, "the extra page is gone");
	ts_store_close(st);
	free(data);
}

static int pend_id = 777;
static int put_pending(void *ud, MDB_txn *txn)
{
	ts_store *st = ud;
	uint8_t kb[8] = {0, 0, 0, 0, 0, 0, 0x03, 0x09}; /* 777 big-endian */
	MDB_val k = {8, kb}, v = {7, "halfway"};
	uint8_t next[8] = {0x0a, 0x03}; /* next_id 778: past the pending id, as a writer leaves it */
	MDB_val nk = {7, "next_id"}, nv = {8, next};
	int rc = mdb_put(txn, st->dbi_pending, &k, &v, 0);
	if (rc == 0)
		rc = mdb_put(txn, st->dbi_meta, &nk, &nv, 0);
	if (rc)
		return rc;
	orphan_id = (uint64_t)pend_id;
	return put_orphans(ud, txn);
}

Test(check, unfinished_writes_are_found_and_repaired)
{
	seen s;
	ts_store *st = populated("unfinished.tst");
	cr_assert_eq(ts__txn_write(st, put_pending, st, "test"), 0);
	cr_expect_eq(check(st, 0, &s), 1);
	cr_expect_eq(s.kind[0], TS_PROBLEM_UNFINISHED);
	cr_expect_str_eq(s.tensor[0], "halfway");
	cr_expect(strstr(s.detail[0], "3 pages"), "%s", s.detail[0]);
	ts_store_close(st);

	/* a read-only handle sees it and cannot repair it */
	cr_assert_eq(ts_store_open(&st, st_path("unfinished.tst"), NULL), 0);
	cr_expect_eq(check(st, 0, &s), 1);
	cr_expect_eq(st_check(NULL, st, TS_CHECK_REPAIR, NULL, NULL), TS_EREADONLY);
	ts_store_close(st);

	st = st_create("unfinished.tst", 1);
	cr_assert_eq(ts__txn_write(st, put_pending, st, "test"), 0); /* again, after the open */
	cr_expect_eq(check(st, TS_CHECK_REPAIR, &s), 1);
	cr_expect_eq(check(st, 0, &s), 0);
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "a"), 0);
	ts_store_close(st);
	free(data);
}

static int damage_record(void *ud, MDB_txn *txn)
{
	ts_store *st = ud;
	MDB_val k = {1, "c"}, v;
	int rc = mdb_get(txn, st->dbi_tensors, &k, &v);
	if (rc)
		return rc;
	uint8_t copy[TS_RECORD_MAX];
	memcpy(copy, v.mv_data, v.mv_size);
	copy[40] ^= 1;
	MDB_val nv = {v.mv_size, copy};
	return mdb_put(txn, st->dbi_tensors, &k, &nv, 0);
}

Test(check, a_damaged_record_blocks_orphan_removal)
{
	seen s;
	ts_store *st = populated("record.tst");
	uint64_t pages = st_raw_count(st_path("record.tst"), "pages");
	cr_assert_eq(ts__txn_write(st, damage_record, st, "test"), 0);
	cr_expect_eq(check(st, 0, &s), 2);
	cr_expect_eq(s.kind[0], TS_PROBLEM_RECORD);
	cr_expect_str_eq(s.tensor[0], "c");
	cr_expect_eq(s.kind[1], TS_PROBLEM_ORPHAN, "its page has no record now");
	check(st, TS_CHECK_REPAIR, &s);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("record.tst"), "pages"), pages, "nothing was removed");
	cr_assert_eq(ts_store_open(&st, st_path("record.tst"), NULL), 0);
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "c"), TS_ECORRUPT);
	cr_expect(strstr(ts_error_last(), "'c'"), "%s", ts_error_last());
	ts_store_close(st);
	free(data);
}

Test(check, compacted_copies)
{
	seen s;
	ts_store *st = populated("big.tst");
	cr_expect_eq(ts_tensor_delete(st, "a"), 0);
	cr_assert_eq(ts_store_copy_compact(st, st_path("small.tst")), 0, "%s", ts_error_last());
	struct stat sa, sb;
	cr_assert_eq(stat(st_path("big.tst"), &sa), 0);
	cr_assert_eq(stat(st_path("small.tst"), &sb), 0);
	cr_expect_lt(sb.st_size, sa.st_size);
	/* an existing path is never overwritten */
	cr_expect_eq(ts_store_copy_compact(st, st_path("small.tst")), TS_EEXIST);
	int fd = open(st_path("other"), O_CREAT | O_WRONLY, 0644);
	cr_assert_eq(write(fd, "keep", 4), 4);
	close(fd);
	cr_expect_eq(ts_store_copy_compact(st, st_path("other")), TS_EEXIST);
	cr_assert_eq(stat(st_path("other"), &sb), 0);
	cr_expect_eq(sb.st_size, 4);
	ts_store_close(st);

	cr_assert_eq(ts_store_open(&st, st_path("small.tst"), NULL), 0, "%s", ts_error_last());
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "b"), 0);
	cr_expect_eq(ts_tensor_info_get(&info, st, "c"), 0);
	cr_expect_eq(ts_tensor_info_get(&info, st, "a"), TS_ENOTFOUND);
	cr_expect_eq(check(st, 0, &s), 0);
	ts_store_close(st);
	free(data);
}

typedef struct prog {
	int calls, monotonic;
	uint64_t first_done, last_done, last_total, total_changes;
} prog;

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
	prog *p = ud;
	if (p->calls == 0)
		p->first_done = done;
	else if (done < p->last_done)
		p->monotonic = 0;
	if (p->calls && total != p->last_total)
		p->total_changes++;
	p->last_done = done;
	p->last_total = total;
	p->calls++;
}

Test(check, progress_runs_from_zero_to_the_bytes_of_every_page)
{
	ts_store *st = populated("progress.tst");
	ts_check_opts o;
	prog p = {0, 1, 0, 0, 0, 0};
	uint64_t problems = 1, want = 0, pages = 0;
	const char *names[3] = {"a", "b", "c"};

	/* every page is its 40-byte header and its payload (docs/FORMAT.md) */
	for (int i = 0; i < 3; i++) {
		ts_tensor_info info;
		cr_assert_eq(ts_tensor_info_get(&info, st, names[i]), 0);
		want += info.page_count * 40 + info.stored_bytes;
		pages += info.page_count;
	}
	ts_check_opts_init(&o);
	o.progress = on_progress;
	o.ud = &p;
	cr_assert_eq(ts_store_check(&problems, st, &o), 0, "%s", ts_error_last());
	cr_expect_eq(problems, 0);
	cr_expect_eq(p.calls, (int)pages + 1, "one call before the walk, one per page");
	cr_expect_eq(p.first_done, 0);
	cr_expect(p.monotonic);
	cr_expect_eq(p.total_changes, 0);
	cr_expect_eq(p.last_total, want);
	cr_expect_eq(p.last_done, want);
	/* no options: a plain check; flags are checked */
	problems = 1;
	cr_expect_eq(ts_store_check(&problems, st, NULL), 0);
	cr_expect_eq(problems, 0);
	cr_expect_eq(ts_store_check(&problems, NULL, &o), TS_EINVAL);
	o.flags = 0x8;
	cr_expect_eq(ts_store_check(&problems, st, &o), TS_EINVAL);
	ts_store_close(st);
	free(data);
}
