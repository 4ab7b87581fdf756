/*
 * Concurrency: 8 threads read random slices while a writer creates, replaces and
 * deletes tensors, and a monitor checks that the decoded-page cache never exceeds its budget.
 * Readers must always see a complete tensor of one version: every element of a raw tensor
 * encodes (version, flat index) exactly, so a torn or mixed read shows as elements of different
 * versions or wrong indices. An NVFP4 tensor, never replaced, must always read back as the
 * one-shot codec's decode of its source. The thread sanitizer build (make check-tsan) runs this
 * same test with more iterations (TSTORE_TEST_CONC_ITERS).
 */
#ifdef TS_CONC_STANDALONE
#include "tests/robust/crshim.h"
#else
#include <criterion/criterion.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tstore.h"

#define NNAMES 6
#define NREADERS 8
#define COLS 96
#define BUDGET (192u * 1024u)

static char dir[] = "/tmp/tstore-conc.XXXXXX";
static char path[256];
static ts_store *st;
static atomic_int done;
static atomic_int failures;
static atomic_ulong reads_ok, reads_absent, reads_busy;
static char first_failure[512];
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static float *nv_src, *nv_expect;
#define NV_ROWS 64
#define NV_COLS 256

static uint64_t rows_of(int k)
{
	return 40 + 17 * (uint64_t)k;
}

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
	pthread_mutex_lock(&fail_lock);
	if (!atomic_fetch_add(&failures, 1)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof first_failure, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&fail_lock);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int write_version(int k, int version, unsigned flags)
{
	char name[32];
	snprintf(name, sizeof name, "t%d", k);
	uint64_t shape[2] = {rows_of(k), COLS}, n = shape[0] * shape[1];
	float *v = malloc(n * sizeof *v);
	for (uint64_t i = 0; i < n; i++)
		v[i] = (float)((uint64_t)version * 4096 + i % 4096);
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
	cfg.raw_dtype = TS_F32;
	cfg.bits_per_value = 32;
	ts_write_opts wo;
	ts_write_opts_init(&wo);
	wo.flags = flags;
	wo.page_bytes = 4080;
	ts_writer *w;
	int rc = ts_writer_begin(&w, st, name, TS_F32, 2, shape, &cfg, &wo);
	if (!rc) {
		/* in three uneven chunks, so that the writer is mid-tensor for a while */
		size_t b = n * sizeof *v, a1 = (b / 3) & ~(size_t)3, a2 = (2 * b / 3) & ~(size_t)3;
		rc = ts_writer_append(w, v, a1);
		if (!rc)
			rc = ts_writer_append(w, (uint8_t *)v + a1, a2 - a1);
		if (!rc)
			rc = ts_writer_append(w, (uint8_t *)v + a2, b - a2);
		if (!rc)
			rc = ts_writer_commit(NULL, w);
		else
			ts_writer_abort(w);
	}
	free(v);
	return rc;
}

static void *writer(void *arg)
{
	int iters = *(int *)arg;
	uint64_t s = 42;
	int version[NNAMES] = {0}, present[NNAMES];
	for (int k = 0; k < NNAMES; k++)
		present[k] = 1;
	for (int it = 0; it < iters && !atomic_load(&failures); it++) {
		int k = (int)(rnd(&s) % NNAMES);
		int rc;
		if (present[k] && rnd(&s) % 4 == 0) {
			char name[32];
			snprintf(name, sizeof name, "t%d", k);
			rc = ts_tensor_delete(st, name);
			present[k] = 0;
		} else {
			rc = write_version(k, ++version[k], present[k] ? TS_WRITE_REPLACE : 0);
			present[k] = 1;
		}
		if (rc)
			failf("writer: tensor t%d: %s (%s)", k, ts_errname(rc), ts_error_last());
	}
	atomic_store(&done, 1);
	return NULL;
}

static void check_raw(int k, const uint64_t *start, const uint64_t *count, const float *got)
{
	long ver = -1;
	for (uint64_t r = 0; r < count[0]; r++)
		for (uint64_t c = 0; c < count[1]; c++) {
			float x = got[r * count[1] + c];
			uint64_t flat = (start[0] + r) * COLS + start[1] + c;
			if (!(x >= 0) || x != floorf(x)) {
				failf("reader: t%d: element (%llu,%llu) is %g", k,
				      (unsigned long long)(start[0] + r), (unsigned long long)(start[1] + c),
				      (double)x);
				return;
			}
			uint64_t v = (uint64_t)x;
			if (v % 4096 != flat % 4096) {
				failf("reader: t%d: element %llu holds index %llu", k,
				      (unsigned long long)flat, (unsigned long long)(v % 4096));
				return;
			}
			if (ver < 0)
				ver = (long)(v / 4096);
			else if ((long)(v / 4096) != ver) {
				failf("reader: t%d: one read mixes versions %ld and %llu", k, ver,
				      (unsigned long long)(v / 4096));
				return;
			}
		}
}

static void *reader(void *arg)
{
	uint64_t s = 1000 + (uint64_t)(uintptr_t)arg;
	float *buf = malloc(rows_of(NNAMES) * COLS * sizeof *buf + NV_ROWS * NV_COLS * sizeof *buf);
	while (!atomic_load(&done) && !atomic_load(&failures)) {
		int k = (int)(rnd(&s) % (NNAMES + 1));
		uint64_t start[2], count[2];
		if (k == NNAMES) {
			/* the NVFP4 tensor: a random row band, whole rows */
			start[0] = rnd(&s) % NV_ROWS;
			count[0] = 1 + rnd(&s) % (NV_ROWS - start[0]);
			start[1] = 0;
			count[1] = NV_COLS;
			int rc = ts_read_slice(st, "nv", 2, start, count, TS_F32, buf,
					       count[0] * count[1] * sizeof *buf);
			if (rc)
				failf("reader: nv: %s (%s)", ts_errname(rc), ts_error_last());
			else if (memcmp(buf, nv_expect + start[0] * NV_COLS,
					count[0] * NV_COLS * sizeof *buf))
				failf("reader: nv rows %llu+%llu differ from the codec's decode",
				      (unsigned long long)start[0], (unsigned long long)count[0]);
			atomic_fetch_add(&reads_ok, 1);
			continue;
		}
		char name[32];
		snprintf(name, sizeof name, "t%d", k);
		uint64_t shape[2] = {rows_of(k), COLS};
		for (int d = 0; d < 2; d++) {
			start[d] = rnd(&s) % shape[d];
			count[d] = 1 + rnd(&s) % (shape[d] - start[d]);
		}
		if (rnd(&s) % 8 == 0) { /* sometimes the whole tensor */
			start[0] = start[1] = 0;
			count[0] = shape[0];
			count[1] = shape[1];
		}
		int rc = ts_read_slice(st, name, 2, start, count, TS_F32, buf,
				       count[0] * count[1] * sizeof *buf);
		if (rc == TS_ENOTFOUND) {
			atomic_fetch_add(&reads_absent, 1);
			continue;
		}
		if (rc == TS_EBUSY && strstr(ts_error_last(), "kept changing")) {
			/* documented: replaced over and over while the read retried (bounded below) */
			atomic_fetch_add(&reads_busy, 1);
			continue;
		}
		if (rc) {
			failf("reader: %s: %s (%s)", name, ts_errname(rc), ts_error_last());
			continue;
		}
		check_raw(k, start, count, buf);
		atomic_fetch_add(&reads_ok, 1);
	}
	free(buf);
	return NULL;
}

static atomic_ulong max_used;
static void *monitor(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		ts_cache_stats cs;
		ts_cache_stats_get(&cs, st);
		if (cs.used_bytes > atomic_load(&max_used))
			atomic_store(&max_used, cs.used_bytes);
		if (cs.budget_bytes != BUDGET)
			failf("cache: budget reads %llu, opened with %u",
			      (unsigned long long)cs.budget_bytes, BUDGET);
		if (cs.used_bytes > cs.budget_bytes)
			failf("cache: %llu bytes used over a budget of %llu",
			      (unsigned long long)cs.used_bytes, (unsigned long long)cs.budget_bytes);
		usleep(200);
	}
	return NULL;
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/conc.tst", dir);
	ts_open_opts o;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_CREATE | TS_OPEN_WRITE;
	o.cache_bytes = BUDGET;
	o.threads = 2;
	int rc = ts_store_open(&st, path, &o);
	cr_assert_eq(rc, 0, "open: %s", ts_error_last());
	for (int k = 0; k < NNAMES; k++)
		cr_assert_eq(write_version(k, 0, 0), 0, "%s", ts_error_last());
	/* the NVFP4 tensor and its expected decode, from the codec alone */
	nv_src = malloc(NV_ROWS * NV_COLS * sizeof *nv_src);
	nv_expect = malloc(NV_ROWS * NV_COLS * sizeof *nv_expect);
	float amax = 0;
	for (int i = 0; i < NV_ROWS * NV_COLS; i++) {
		nv_src[i] = sinf((float)i * 0.37f) * (1.0f + (float)(i % 29));
		amax = fmaxf(amax, fabsf(nv_src[i]));
	}
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	size_t esz = ts_codec_encoded_size(&cfg, NV_ROWS, NV_COLS);
	void *enc = malloc(esz);
	cr_assert_eq(ts_codec_encode(&cfg, amax, nv_src, TS_F32, NV_COLS, NV_ROWS, NV_COLS, enc, esz), 0);
	cr_assert_eq(ts_codec_decode(&cfg, ts_codec_tensor_scale(&cfg, amax), enc, esz, NV_ROWS,
				     NV_COLS, TS_F32, nv_expect, NV_COLS), 0);
	free(enc);
	ts_write_opts wo;
	ts_write_opts_init(&wo);
	wo.amax = amax;
	wo.page_bytes = 4080;
	ts_writer *w;
	uint64_t shape[2] = {NV_ROWS, NV_COLS};
	cr_assert_eq(ts_writer_begin(&w, st, "nv", TS_F32, 2, shape, &cfg, &wo), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_writer_append(w, nv_src, NV_ROWS * NV_COLS * sizeof *nv_src), 0);
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
}

static void teardown(void)
{
	ts_store_close(st);
	st = NULL;
	char p[300];
	unlink(path);
	snprintf(p, sizeof p, "%s-lock", path);
	unlink(p);
	rmdir(dir);
	free(nv_src);
	free(nv_expect);
}

Test(concurrency, readers_see_whole_tensors_while_a_writer_replaces_and_deletes,
     .init = setup, .fini = teardown, .timeout = 600)
{
	int iters = 120;
	const char *e = getenv("TSTORE_TEST_CONC_ITERS");
	if (e && atoi(e) > 0)
		iters = atoi(e);
	pthread_t w, m, r[NREADERS];
	cr_assert_eq(pthread_create(&m, NULL, monitor, NULL), 0);
	for (int i = 0; i < NREADERS; i++)
		cr_assert_eq(pthread_create(&r[i], NULL, reader, (void *)(uintptr_t)i), 0);
	cr_assert_eq(pthread_create(&w, NULL, writer, &iters), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(r[i], NULL);
	pthread_join(m, NULL);
	cr_log_info("%d writer operations, %lu reads, %lu of deleted tensors, cache peak %lu of %u "
		    "bytes",
		    iters, (unsigned long)reads_ok, (unsigned long)reads_absent,
		    (unsigned long)max_used, BUDGET);
	cr_assert_eq(atomic_load(&failures), 0, "%d failures; first: %s", atomic_load(&failures),
		     first_failure);
	/* a reader may lose to the writer now and then, never most of the time */
	cr_assert_leq(atomic_load(&reads_busy) * 50, atomic_load(&reads_ok),
		      "%lu reads gave up (tensor kept changing) against %lu whole ones",
		      (unsigned long)reads_busy, (unsigned long)reads_ok);
	cr_assert_gt(atomic_load(&reads_ok), 0);
	/* after the storm: the store is consistent */
	uint64_t problems = 99;
	cr_assert_eq(ts_store_check(&problems, st, NULL), 0, "%s", ts_error_last());
	cr_assert_eq(problems, 0, "fsck found %llu problems", (unsigned long long)problems);
}

#ifdef TS_CONC_STANDALONE
int main(void)
{
	setup();
	crs_test();
	teardown();
	printf("concurrency: passed\n");
	return 0;
}
#endif
