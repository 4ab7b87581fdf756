/*
 * Helpers shared by the store tests (see storetest.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "storetest.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[4096];
static pid_t tmpdir_owner;

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void rm_tmpdir(void)
{
	if (tmpdir[0] && getpid() == tmpdir_owner && !getenv("TSTORE_TEST_KEEP"))
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *st_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/tstore-test-XXXXXX", base && *base ? base : "/tmp");
		cr_assert(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
		tmpdir_owner = getpid();
		atexit(rm_tmpdir);
	}
	return tmpdir;
}

const char *st_path(const char *name)
{
	static char bufs[8][4200];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", st_tmpdir(), name);
	return b;
}

uint64_t st_seed(const char *test)
{
	const char *s = getenv("TSTORE_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	fprintf(stderr, "%s: seed %llu (set TSTORE_TEST_SEED to repeat)\n", test,
		(unsigned long long)seed);
	return seed;
}

uint64_t st_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double st_uniform(uint64_t *s)
{
	return (double)(st_rand(s) >> 11) * 0x1p-53;
}

double st_normal(uint64_t *s)
{
	double u1 = st_uniform(s), u2 = st_uniform(s);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void st_fill_f32(float *x, size_t n, uint64_t *s, float scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)st_normal(s) * scale;
}

ts_store *st_create(const char *name, int threads)
{
	ts_open_opts o;
	ts_store *st = NULL;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_CREATE | TS_OPEN_WRITE;
	o.threads = threads;
	o.io = TS_IO_MMAP;
	int rc = ts_store_open(&st, st_path(name), &o);
	cr_assert_eq(rc, 0, "creating %s: %s", name, ts_error_last());
	return st;
}

uint64_t st_raw_count(const char *path, const char *db)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat ms;
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOTLS, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), 0, "no database %s", db);
	cr_assert_eq(mdb_stat(txn, dbi, &ms), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return ms.ms_entries;
}

uint64_t st_raw_txnid(const char *path)
{
	MDB_env *env;
	MDB_envinfo info;
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOTLS, 0644), 0);
	cr_assert_eq(mdb_env_info(env, &info), 0);
	mdb_env_close(env);
	return (uint64_t)info.me_last_txnid;
}

uint8_t *st_read_file(const char *path, size_t *len)
{
	struct stat sb;
	int fd = open(path, O_RDONLY);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &sb), 0);
	uint8_t *buf = malloc((size_t)sb.st_size + 1);
	cr_assert(buf);
	size_t got = 0;
	while (got < (size_t)sb.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);
		cr_assert(n > 0);
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

int st_check(uint64_t *problems, ts_store *st, unsigned flags,
	     void (*cb)(void *ud, const ts_problem *p), void *ud)
{
	ts_check_opts o;

	ts_check_opts_init(&o);
	o.flags = flags;
	o.problem = cb;
	o.ud = ud;
	return ts_store_check(problems, st, &o);
}

float st_amax(const float *x, size_t n)
{
	float a = 0;
	for (size_t i = 0; i < n; i++)
		if (fabsf(x[i]) > a)
			a = fabsf(x[i]);
	return a;
}

ts_codec_config st_raw_f32(void)
{
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
	cfg.raw_dtype = TS_F32;
	cfg.bits_per_value = 32;
	return cfg;
}

void st_write_f32(ts_store *st, const char *name, int ndim, const uint64_t *shape,
		  const ts_codec_config *cfg, const float *x, unsigned flags)
{
	ts_write_opts o;
	ts_writer *w;
	uint64_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= shape[i];
	ts_write_opts_init(&o);
	o.flags = flags;
	o.amax = st_amax(x, n);
	cr_assert_eq(ts_writer_begin(&w, st, name, TS_F32, ndim, shape, cfg, &o), 0, "begin %s: %s",
		     name, ts_error_last());
	cr_assert_eq(ts_writer_append(w, x, n * sizeof(float)), 0, "append %s: %s", name,
		     ts_error_last());
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "commit %s: %s", name, ts_error_last());
}

void st_peak_rss_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (f) {
		fputs("5", f);
		fclose(f);
	}
}

long st_peak_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}
