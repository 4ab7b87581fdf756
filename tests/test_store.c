/*
 * Tests of the store itself (engine/store.c): creating, reopening, read-only opens that create
 * nothing, files that are not stores, format versions, the single-writer lock, map growth and
 * the map base the reader relies on, and a map that may not grow.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "engine/handle.h"
#include "engine/txn.h"
#include "storetest.h"

static int exists(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0;
}

static int open_ro(ts_store **st, const char *path)
{
	return ts_store_open(st, path, NULL);
}

/* Open the file with LMDB directly, as an independent reader would. */
static MDB_env *raw_open(const char *path, unsigned flags)
{
	MDB_env *env;
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR | flags, 0644), 0);
	return env;
}

Test(store, opts_init_gives_documented_defaults)
{
	ts_open_opts o;
	memset(&o, 0x5a, sizeof(o));
	ts_open_opts_init(&o);
	cr_expect_eq(o.flags, 0);
	cr_expect_eq(o.io, TS_IO_DEFAULT);
	cr_expect_eq(o.cache_bytes, -1);
	cr_expect_eq(o.map_size, 0);
	cr_expect_eq(o.threads, 0);
	cr_expect_eq(o.map_max, 0);
}

Test(store, create_writes_the_meta_records)
{
	time_t before = time(NULL);
	ts_store *st = st_create("m.tst", 1);
	cr_expect_neq(ts_store_io_backend(st), TS_IO_DEFAULT);
	ts_store_close(st);
	cr_expect(exists(st_path("m.tst")));
	cr_expect(exists(st_path("m.tst-lock")), "MDB_NOSUBDIR: the lock file sits beside it");

	MDB_env *env = raw_open(st_path("m.tst"), MDB_RDONLY);
	MDB_txn *txn;
	MDB_dbi meta, dbi;
	MDB_val k, v;
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	for (const char *const *n = (const char *const[]){"tensors", "pages", "pending", NULL}; *n;
	     n++)
		cr_expect_eq(mdb_dbi_open(txn, *n, 0, &dbi), 0, "database %s", *n);
	k.mv_data = "format";
	k.mv_size = 6;
	cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
	cr_expect_eq(v.mv_size, 8);
	cr_expect_eq(memcmp(v.mv_data, "TSTR\1\0\0\0", 8), 0);
	k.mv_data = "next_id";
	k.mv_size = 7;
	cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
	cr_expect_eq(memcmp(v.mv_data, "\1\0\0\0\0\0\0\0", 8), 0);
	k.mv_data = "creator";
	k.mv_size = 7;
	cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
	cr_expect_eq(memcmp(v.mv_data, "tstore ", 7), 0);
	k.mv_data = "created";
	k.mv_size = 7;
	cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
	uint64_t t = 0;
	for (int i = 7; i >= 0; i--)
		t = t << 8 | ((uint8_t *)v.mv_data)[i];
	cr_expect(t >= (uint64_t)before && t <= (uint64_t)time(NULL) + 1);
	mdb_txn_abort(txn);
	mdb_env_close(env);

	/* reopening, read-only and for writing, finds the same store */
	cr_assert_eq(open_ro(&st, st_path("m.tst")), 0, "%s", ts_error_last());
	ts_store_close(st);
	st = st_create("m.tst", 2);
	ts_store_close(st);
}

Test(store, read_only_open_of_nothing_creates_nothing)
{
	ts_store *st = (ts_store *)1;
	cr_expect_eq(open_ro(&st, st_path("none.tst")), TS_ENOTFOUND);
	cr_expect_null(st);
	cr_expect(strstr(ts_error_last(), "none.tst") != NULL, "%s", ts_error_last());
	cr_expect(!exists(st_path("none.tst")));
	cr_expect(!exists(st_path("none.tst-lock")));
	ts_open_opts o;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_WRITE; /* writing without CREATE does not create either */
	cr_expect_eq(ts_store_open(&st, st_path("none.tst"), &o), TS_ENOTFOUND);
	cr_expect(!exists(st_path("none.tst")));
	cr_expect_eq(ts_store_open(&st, st_path("nodir/x.tst"), &o), TS_ENOTFOUND);
}

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

Test(store, files_that_are_not_stores_are_corrupt)
{
	uint64_t seed = st_seed("store.not_a_store");
	ts_store *st = NULL;
	static uint8_t junk[65536];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)st_rand(&seed);
	write_file(st_path("junk"), junk, sizeof(junk));
	cr_expect_eq(open_ro(&st, st_path("junk")), TS_ECORRUPT);
	cr_expect(strstr(ts_error_last(), "not a tstore store"), "%s", ts_error_last());
	ts_open_opts o;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_CREATE;
	cr_expect_eq(ts_store_open(&st, st_path("junk"), &o), TS_ECORRUPT, "CREATE keeps junk junk");

	write_file(st_path("empty"), "", 0);
	cr_expect_eq(open_ro(&st, st_path("empty")), TS_ENOTFOUND, "a blank file holds no store");
	write_file(st_path("short"), junk, 100);
	cr_expect_eq(open_ro(&st, st_path("short")), TS_ECORRUPT);
	cr_expect_eq(open_ro(&st, st_tmpdir()), TS_EINVAL, "a directory");

	/* an LMDB file of some other application */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {3, "foo"}, v = {3, "bar"};
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_open(env, st_path("other.mdb"), MDB_NOSUBDIR, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	cr_expect_eq(open_ro(&st, st_path("other.mdb")), TS_ECORRUPT);
	cr_expect_eq(ts_store_open(&st, st_path("other.mdb"), &o), TS_ECORRUPT);
	cr_expect(strstr(ts_error_last(), "not a tstore store"), "%s", ts_error_last());
	cr_expect_eq(st_raw_count(st_path("other.mdb"), NULL), 1, "left untouched");
}

/* What mdb_env_open() alone leaves at @p path: LMDB's two initial meta pages, no commit. */
static void make_blank_lmdb_file(const char *path)
{
	MDB_env *env;
	char lock[4200];
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR, 0644), 0);
	mdb_env_close(env);
	snprintf(lock, sizeof lock, "%s-lock", path);
	unlink(lock);
}

static size_t read_whole(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	cr_assert(fd >= 0, "%s", path);
	ssize_t n = read(fd, buf, cap);
	close(fd);
	cr_assert(n >= 0);
	return (size_t)n;
}

/* Open @p path with TS_OPEN_CREATE, close it, check that it reads back as a store; the inode
 * then at @p path. */
static ino_t create_store_at(const char *path)
{
	ts_store *st = NULL;
	ts_open_opts o;
	struct stat sb;

	ts_open_opts_init(&o);
	o.flags = TS_OPEN_CREATE;
	cr_assert_eq(ts_store_open(&st, path, &o), 0, "%s", ts_error_last());
	ts_store_close(st);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(open_ro(&st, path), 0, "%s", ts_error_last());
	ts_store_close(st);
	return sb.st_ino;
}

/* engine/create.c invariant 2: a blank file (LMDB's initial meta pages, no commit) holds no
 * store: opening it finds none (TS_ENOTFOUND), creating a store replaces it; a file that is not
 * blank is never replaced. */
Test(store, blank_lmdb_files_are_refused_and_replaced_only_by_creation)
{
	static uint8_t before[16384], after[16384];
	char path[4096];
	ts_store *st = NULL;
	ts_open_opts o;
	struct stat sb;

	snprintf(path, sizeof path, "%s", st_path("blank.tst"));
	make_blank_lmdb_file(path);
	size_t n = read_whole(path, before, sizeof before);
	cr_assert_eq(n, 8192, "LMDB's two 4 KiB meta pages");
	cr_assert_eq(stat(path, &sb), 0);

	cr_expect_eq(open_ro(&st, path), TS_ENOTFOUND, "no store, as if there were no file");
	cr_expect(strstr(ts_error_last(), "blank file"), "%s", ts_error_last());
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_WRITE;
	cr_expect_eq(ts_store_open(&st, path, &o), TS_ENOTFOUND);
	cr_expect(strstr(ts_error_last(), "blank file"), "%s", ts_error_last());
	cr_expect_eq(read_whole(path, after, sizeof after), n);
	cr_expect(memcmp(before, after, n) == 0, "a plain open changes nothing");

	cr_expect_neq(create_store_at(path), sb.st_ino,
		      "replaced by a new file, never initialised in place");

	/* the same pages with a transaction id: not blank, so never replaced; LMDB's own commit
	 * (atomic in a valid environment) makes the empty environment a store in place */
	snprintf(path, sizeof path, "%s", st_path("once.tst"));
	make_blank_lmdb_file(path);
	n = read_whole(path, before, sizeof before);
	before[4096 + 144] = 1;
	write_file(path, before, n);
	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_eq(create_store_at(path), sb.st_ino, "a file that is not blank is never replaced");
}

/* Patch @p n bytes at @p off of a copy of @p from, written to @p to. */
static void patched_copy(const char *from, const char *to, off_t off, const void *bytes, size_t n,
			 off_t truncate_to)
{
	struct stat sb;
	cr_assert_eq(stat(from, &sb), 0);
	uint8_t *buf = malloc((size_t)sb.st_size);
	int fd = open(from, O_RDONLY);
	cr_assert_eq(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	close(fd);
	if (bytes)
		memcpy(buf + off, bytes, n);
	write_file(to, buf, truncate_to ? (size_t)truncate_to : (size_t)sb.st_size);
	free(buf);
}

Test(store, damaged_lmdb_meta_pages_are_refused_before_lmdb_trusts_them)
{
	/* LMDB checksums none of its pages; found by fuzz/fuzz_store: a meta page whose last page
	 * or tree root lies past the end of the file made mdb_dbi_open() die of SIGBUS. */
	ts_store *st = st_create("meta.tst", 1);
	ts_store_close(st);
	char good[4096]; /* st_path() returns a static buffer */
	snprintf(good, sizeof(good), "%s", st_path("meta.tst"));
	cr_assert_eq(open_ro(&st, good), 0, "%s", ts_error_last());
	ts_store_close(st);

	/* which meta is current: the one with the higher txnid (u64 at byte 144 of the page) */
	uint8_t m[2][152];
	int fd = open(good, O_RDONLY);
	cr_assert_eq(pread(fd, m[0], sizeof(m[0]), 0), (ssize_t)sizeof(m[0]));
	cr_assert_eq(pread(fd, m[1], sizeof(m[1]), 4096), (ssize_t)sizeof(m[1]));
	close(fd);
	uint64_t t[2] = {0, 0};
	for (int i = 0; i < 2; i++)
		for (int b = 7; b >= 0; b--)
			t[i] = t[i] << 8 | m[i][144 + b];
	int cur = t[0] < t[1];
	off_t base = cur ? 4096 : 0, older = cur ? 0 : 4096;
	uint8_t huge[8] = {0xff, 0xff, 0xff, 0x00, 0, 0, 0, 0};

	patched_copy(good, st_path("last.tst"), base + 136, huge, 8, 0); /* last page */
	cr_expect_eq(open_ro(&st, st_path("last.tst")), TS_ECORRUPT);
	cr_expect(strstr(ts_error_last(), "last page"), "%s", ts_error_last());
	patched_copy(good, st_path("root.tst"), base + 40 + 48 + 40, huge, 8, 0); /* main root */
	cr_expect_eq(open_ro(&st, st_path("root.tst")), TS_ECORRUPT);
	/* the older meta made to look newer would roll the store back to an older snapshot */
	uint8_t newer[8];
	uint64_t tn = t[cur] + 2;
	for (int b = 0; b < 8; b++)
		newer[b] = (uint8_t)(tn >> (8 * b));
	patched_copy(good, st_path("rollback.tst"), older + 144, newer, 8, 0);
	cr_expect_eq(open_ro(&st, st_path("rollback.tst")), TS_ECORRUPT);
	cr_expect(strstr(ts_error_last(), "consecutive"), "%s", ts_error_last());
	patched_copy(good, st_path("magic.tst"), base + 16, "\0\0\0\0", 4, 0);
	cr_expect_eq(open_ro(&st, st_path("magic.tst")), TS_ECORRUPT);
	/* a file cut short after its meta pages */
	patched_copy(good, st_path("cut.tst"), 0, NULL, 0, 2 * 4096 + 100);
	cr_expect_eq(open_ro(&st, st_path("cut.tst")), TS_ECORRUPT);
	/* and the undamaged file still opens */
	int rc = open_ro(&st, good);
	cr_expect_eq(rc, 0, "%s: %s", ts_errname(rc), ts_error_last());
	ts_store_close(st);
}

static void set_format(const char *path, const void *val, size_t n)
{
	MDB_env *env = raw_open(path, 0);
	MDB_txn *txn;
	MDB_dbi meta;
	MDB_val k = {6, "format"}, v = {n, (void *)val};
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

Test(store, format_versions_are_checked)
{
	ts_store *st = st_create("v.tst", 1);
	ts_store_close(st);
	set_format(st_path("v.tst"), "TSTR\2\0\0\0", 8);
	cr_expect_eq(open_ro(&st, st_path("v.tst")), TS_EVERSION);
	cr_expect(strstr(ts_error_last(), "version 2"), "%s", ts_error_last());
	set_format(st_path("v.tst"), "TSTR\0\0\0\0", 8);
	cr_expect_eq(open_ro(&st, st_path("v.tst")), TS_ECORRUPT);
	set_format(st_path("v.tst"), "XXXX\1\0\0\0", 8);
	cr_expect_eq(open_ro(&st, st_path("v.tst")), TS_ECORRUPT);
	set_format(st_path("v.tst"), "TSTR\1\0\0", 7);
	cr_expect_eq(open_ro(&st, st_path("v.tst")), TS_ECORRUPT);
	set_format(st_path("v.tst"), "TSTR\1\0\0\0", 8);
	cr_expect_eq(open_ro(&st, st_path("v.tst")), 0, "%s", ts_error_last());
	ts_store_close(st);
}

Test(store, one_writer_process_and_read_only_handles)
{
	ts_store *w = st_create("w.tst", 1), *w2 = NULL, *r = NULL;
	ts_open_opts o;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_WRITE;
	cr_expect_eq(ts_store_open(&w2, st_path("w.tst"), &o), TS_EBUSY);
	ts_store_close(w);
	cr_assert_eq(ts_store_open(&w2, st_path("w.tst"), &o), 0, "the lock went with the close");
	ts_store_close(w2);

	cr_assert_eq(open_ro(&r, st_path("w.tst")), 0);
	ts_writer *wr;
	uint64_t shape[1] = {4};
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
	cfg.raw_dtype = TS_F32;
	cr_expect_eq(ts_writer_begin(&wr, r, "x", TS_F32, 1, shape, &cfg, NULL), TS_EREADONLY);
	cr_expect_eq(ts_tensor_delete(r, "x"), TS_EREADONLY);
	cr_expect_eq(st_check(NULL, r, TS_CHECK_REPAIR, NULL, NULL), TS_EREADONLY);
	ts_store_close(r);
	ts_store_close(NULL);
}

Test(store, bad_arguments_are_invalid)
{
	ts_store *st;
	ts_open_opts o;
	ts_open_opts_init(&o);
	cr_expect_eq(ts_store_open(NULL, "x", NULL), TS_EINVAL);
	cr_expect_eq(ts_store_open(&st, NULL, NULL), TS_EINVAL);
	cr_expect_eq(ts_store_open(&st, "", NULL), TS_EINVAL);
	o.flags = 0x80;
	cr_expect_eq(ts_store_open(&st, st_path("a"), &o), TS_EINVAL);
	o.flags = TS_OPEN_CREATE;
	o.io = (ts_io_backend)9;
	cr_expect_eq(ts_store_open(&st, st_path("a"), &o), TS_EINVAL);
	cr_expect(!exists(st_path("a")));
}

/* The map base must be where the data file's byte 0 is mapped: check it against the file. */
static void check_map_base(ts_store *st, const char *path)
{
	MDB_txn *txn;
	MDB_val k = {6, "format"}, v;
	cr_assert_eq(ts__txn_begin_read(st, &txn), 0);
	cr_assert_eq(mdb_get(txn, st->dbi_meta, &k, &v), 0);
	uintptr_t off = (uintptr_t)v.mv_data - st->map_base;
	size_t len;
	uint8_t *file = st_read_file(path, &len);
	cr_assert_leq(off + 8, len);
	cr_expect_eq(memcmp(file + off, v.mv_data, 8), 0, "map_base is off");
	free(file);
	ts__txn_abort(st, txn);
}

Test(store, the_map_grows_transparently_and_its_base_is_found)
{
	uint64_t seed = st_seed("store.map_growth");
	ts_open_opts o;
	ts_store *st;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_CREATE;
	o.map_size = 1 << 20;
	o.threads = 2;
	cr_assert_eq(ts_store_open(&st, st_path("g.tst"), &o), 0, "%s", ts_error_last());
	check_map_base(st, st_path("g.tst"));
	size_t first = st->map_size;
	cr_expect_eq(first, 1 << 20);

	size_t n = 1 << 20; /* 4 MiB of F32 per tensor */
	float *x = malloc(n * 4);
	st_fill_f32(x, n, &seed, 1.0f);
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	raw.raw_dtype = TS_F32;
	uint64_t shape[2] = {1024, 1024};
	st_write_f32(st, "a", 2, shape, &raw, x, 0);
	st_write_f32(st, "b", 2, shape, &raw, x, 0);
	cr_expect_geq(st->map_size, 8u << 20, "grew from %zu to %zu", first, st->map_size);
	check_map_base(st, st_path("g.tst"));
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "b"), 0);
	ts_store_close(st);
	free(x);

	/* a read-only handle adopts the larger map recorded in the file */
	cr_assert_eq(open_ro(&st, st_path("g.tst")), 0);
	check_map_base(st, st_path("g.tst"));
	cr_expect_eq(ts_tensor_info_get(&info, st, "a"), 0);
	ts_store_close(st);
}

Test(store, a_map_that_may_not_grow_is_a_clean_enospc)
{
	uint64_t seed = st_seed("store.map_full");
	ts_open_opts o;
	ts_store *st;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_CREATE;
	o.map_size = 2 << 20;
	o.map_max = 4 << 20;
	cr_assert_eq(ts_store_open(&st, st_path("f.tst"), &o), 0, "%s", ts_error_last());
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	raw.raw_dtype = TS_F32;
	float small[256];
	st_fill_f32(small, 256, &seed, 1.0f);
	uint64_t s1[1] = {256};
	st_write_f32(st, "small", 1, s1, &raw, small, 0);

	size_t n = 3 << 20; /* 12 MiB: cannot fit a 4 MiB map */
	float *x = malloc(n * 4);
	st_fill_f32(x, n, &seed, 1.0f);
	uint64_t shape[2] = {3072, 1024};
	ts_write_opts wo;
	ts_writer *w;
	ts_write_opts_init(&wo);
	cr_assert_eq(ts_writer_begin(&w, st, "big", TS_F32, 2, shape, &raw, &wo), 0);
	int rc = ts_writer_append(w, x, n * 4);
	if (rc == 0)
		rc = ts_writer_commit(NULL, w);
	else
		ts_writer_abort(w);
	cr_expect_eq(rc, TS_ENOSPC, "got %d: %s", rc, ts_error_last());
	cr_expect_leq(st->map_size, 4u << 20);
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "big"), TS_ENOTFOUND);
	cr_expect_eq(ts_tensor_info_get(&info, st, "small"), 0);
	uint64_t problems = 99;
	cr_expect_eq(ts_store_check(&problems, st, NULL), 0);
	ts_store_close(st);
	free(x);

	/* the store is intact: it opens, reads and checks clean (left-over pages of the failed
	 * write are cleaned by the next writer) */
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_WRITE;
	cr_assert_eq(ts_store_open(&st, st_path("f.tst"), &o), 0, "%s", ts_error_last());
	cr_expect_eq(ts_tensor_info_get(&info, st, "small"), 0);
	cr_expect_eq(ts_store_check(&problems, st, NULL), 0);
	cr_expect_eq(problems, 0);
	ts_store_close(st);
}

/* TS_OPEN_NOSYNC: a scratch store writes and reads as any other, and opens again afterwards
 * (only its durability across a crash is given up). */
Test(store, nosync_store_writes_and_reads_like_any_other)
{
	const char *path = st_path("nosync.tst");
	ts_open_opts o;
	ts_store *st;
	float x[256], y[256];
	uint64_t shape[1] = {256}, start[1] = {0};
	ts_codec_config cfg = st_raw_f32();
	for (int i = 0; i < 256; i++)
		x[i] = (float)i * 0.5f;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_CREATE | TS_OPEN_NOSYNC;
	cr_assert_eq(ts_store_open(&st, path, &o), 0, "%s", ts_error_last());
	st_write_f32(st, "x", 1, shape, &cfg, x, 0);
	ts_store_close(st);
	o.flags = 0;
	cr_assert_eq(ts_store_open(&st, path, &o), 0, "%s", ts_error_last());
	cr_assert_eq(ts_read_slice(st, "x", 1, start, shape, TS_F32, y, sizeof(y)), 0);
	cr_assert(memcmp(x, y, sizeof(x)) == 0);
	ts_store_close(st);
}
