/*
 * Tests of write groups (engine/group.c): staged tensors stay invisible until the group is
 * published in one transaction; abort, a killed process, a full disk and a name that appears
 * meanwhile all leave the store exactly as before the group; a kill during the publication
 * shows all old or all new; a name staged twice is superseded; small staged tensors share
 * their transactions (engine/carry.c) and a write outside the group, an abort or a name
 * carried twice handle them as if each had its own;
 * other writers' cleanup leaves staged tensors alone; memory stays bounded however much a
 * group stages; and the errors a caller can act on. Values are raw F32 (exact), compared with
 * the arrays they were written from; page and pending counts are read with LMDB directly.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tstore.h"
#include "storetest.h"

#define ROWS 96
#define COLS 512
#define N (ROWS * COLS)

static const uint64_t shape[2] = {ROWS, COLS};

/* Small pages so that a tensor has several. */
#define PAGE_BYTES 16368

/* Write @p x as tensor @p name, staged in @p g (NULL: published). Returns the commit's code. */
static int put(ts_store *st, ts_group *g, const char *name, const float *x, unsigned flags)
{
	ts_codec_config cfg = st_raw_f32();
	ts_write_opts o;
	ts_writer *w;
	int rc;

	ts_write_opts_init(&o);
	o.flags = flags;
	o.group = g;
	o.page_bytes = PAGE_BYTES;
	rc = ts_writer_begin(&w, st, name, TS_F32, 2, shape, &cfg, &o);
	if (rc < 0)
		return rc;
	/* in three pieces, so that pages go to the store before the commit */
	for (int k = 0; k < 3; k++) {
		rc = ts_writer_append(w, x + k * (N / 3), (N / 3) * sizeof(float));
		if (rc < 0) {
			ts_writer_abort(w);
			return rc;
		}
	}
	return ts_writer_commit(NULL, w);
}

static float *values(float base)
{
	float *x = malloc(N * sizeof(float));
	for (int i = 0; i < N; i++)
		x[i] = base + (float)i * 0.25f;
	return x;
}

/* Tensor @p name reads back exactly as @p x. */
static void expect_tensor(ts_store *st, const char *name, const float *x)
{
	static float got[N];
	uint64_t start[2] = {0, 0};
	int rc = ts_read_slice(st, name, 2, start, shape, TS_F32, got, sizeof(got));
	cr_assert_eq(rc, 0, "reading '%s': %s", name, ts_error_last());
	cr_expect_eq(memcmp(got, x, sizeof(got)), 0, "tensor '%s' holds other values", name);
}

static uint64_t page_count(ts_store *st, const char *name)
{
	ts_tensor_info info;
	cr_assert_eq(ts_tensor_info_get(&info, st, name), 0, "'%s': %s", name, ts_error_last());
	return info.page_count;
}

static int count_cb(void *ud, const char *name, const ts_tensor_info *info)
{
	(void)name;
	(void)info;
	(*(int *)ud)++;
	return 0;
}

static int tensor_count(ts_store *st)
{
	int n = 0;
	cr_assert_eq(ts_tensor_foreach(st, count_cb, &n), 0);
	return n;
}

static uint64_t problems(ts_store *st)
{
	uint64_t n = ~0ull;
	cr_assert_eq(ts_store_check(&n, st, NULL), 0, "%s", ts_error_last());
	return n;
}

static void count_damage(void *ud, const ts_problem *p)
{
	if (p->kind != TS_PROBLEM_UNFINISHED) /* staged leftovers of a killed writer are not damage */
		(*(uint64_t *)ud)++;
}

/* Problems other than interrupted writes. */
static uint64_t damage(ts_store *st)
{
	uint64_t n = 0, all;
	cr_assert_eq(st_check(&all, st, 0, count_damage, &n), 0, "%s", ts_error_last());
	return n;
}

static ts_store *open_rw(const char *name, uint64_t map_max)
{
	ts_open_opts o;
	ts_store *st;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_WRITE | TS_OPEN_CREATE;
	o.threads = 1;
	o.map_max = map_max;
	cr_assert_eq(ts_store_open(&st, st_path(name), &o), 0, "%s", ts_error_last());
	return st;
}

Test(group, staged_tensors_are_invisible_until_the_group_is_published)
{
	float *a = values(1), *b = values(-7), *c = values(100);
	ts_store *st = open_rw("pub.tst", 0);
	ts_group *g;
	uint64_t published = 0;

	cr_assert_eq(put(st, NULL, "old", a, 0), 0, "%s", ts_error_last());
	uint64_t old_pages = page_count(st, "old");
	cr_assert_gt(old_pages, 2);
	cr_assert_eq(ts_group_begin(&g, st), 0, "%s", ts_error_last());
	cr_assert_eq(put(st, g, "old", b, TS_WRITE_REPLACE), 0, "%s", ts_error_last());
	cr_assert_eq(put(st, g, "new", c, 0), 0, "%s", ts_error_last());
	cr_expect_eq(ts_group_count(g), 2);

	/* staged: readers see the store as before */
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "new"), TS_ENOTFOUND);
	expect_tensor(st, "old", a);
	cr_expect_eq(tensor_count(st), 1);

	cr_assert_eq(ts_group_commit(&published, g), 0, "%s", ts_error_last());
	cr_expect_eq(published, 2);
	expect_tensor(st, "old", b);
	expect_tensor(st, "new", c);
	cr_expect_eq(tensor_count(st), 2);
	cr_expect_eq(problems(st), 0);
	uint64_t want = page_count(st, "old") + page_count(st, "new");
	ts_store_close(st);
	/* the replaced version's pages are gone, nothing is pending */
	cr_expect_eq(st_raw_count(st_path("pub.tst"), "pages"), want);
	cr_expect_eq(st_raw_count(st_path("pub.tst"), "pending"), 0);
	free(a);
	free(b);
	free(c);
}

Test(group, abort_leaves_the_store_exactly_as_before)
{
	float *a = values(1), *b = values(-7), *c = values(100);
	ts_store *st = open_rw("abort.tst", 0);
	ts_group *g;

	cr_assert_eq(put(st, NULL, "old", a, 0), 0, "%s", ts_error_last());
	uint64_t old_pages = page_count(st, "old");
	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(put(st, g, "old", b, TS_WRITE_REPLACE), 0, "%s", ts_error_last());
	cr_assert_eq(put(st, g, "new", c, 0), 0, "%s", ts_error_last());
	ts_group_abort(g);
	expect_tensor(st, "old", a);
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "new"), TS_ENOTFOUND);
	cr_expect_eq(problems(st), 0);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("abort.tst"), "pages"), old_pages);
	cr_expect_eq(st_raw_count(st_path("abort.tst"), "pending"), 0);
	free(a);
	free(b);
	free(c);
}

/* A child stages a replacement of "p" and "q" and a new "r"; then publishes (@p publish 1), or
 * writes "s" without the group (2), which commits the group's carried stages first (their last
 * pages wait in memory for later ones: engine/carry.c), or does nothing (0); and is killed. */
static void killed_child(int publish, const float *b)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		ts_store *st;
		ts_open_opts o;
		ts_group *g;
		ts_open_opts_init(&o);
		o.flags = TS_OPEN_WRITE;
		o.threads = 1;
		if (ts_store_open(&st, st_path("kill.tst"), &o) || ts_group_begin(&g, st) ||
		    put(st, g, "p", b, TS_WRITE_REPLACE) || put(st, g, "q", b, TS_WRITE_REPLACE) ||
		    put(st, g, "r", b, 0))
			_exit(3);
		if (publish == 1 && ts_group_commit(NULL, g))
			_exit(4);
		if (publish == 2 && put(st, NULL, "s", b, 0))
			_exit(5);
		kill(getpid(), SIGKILL);
	}
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFSIGNALED(status), "child exited %d", WEXITSTATUS(status));
}

Test(group, a_killed_process_leaves_the_old_group_or_the_new_never_a_mix)
{
	float *a = values(1), *b = values(-7);
	ts_store *st = open_rw("kill.tst", 0);
	ts_tensor_info info;

	cr_assert_eq(put(st, NULL, "p", a, 0), 0);
	cr_assert_eq(put(st, NULL, "q", a, 0), 0);
	uint64_t old_pages = page_count(st, "p") + page_count(st, "q");
	ts_store_close(st);

	/* killed with its staged tensors still carried in memory: nothing of them on disk */
	killed_child(0, b);
	cr_expect_eq(st_raw_count(st_path("kill.tst"), "pending"), 0, "nothing staged on disk");
	cr_expect_eq(st_raw_count(st_path("kill.tst"), "pages"), old_pages);
	ts_store *ro;
	cr_assert_eq(ts_store_open(&ro, st_path("kill.tst"), NULL), 0);
	expect_tensor(ro, "p", a);
	expect_tensor(ro, "q", a);
	cr_expect_eq(ts_tensor_info_get(&info, ro, "r"), TS_ENOTFOUND);
	ts_store_close(ro);

	/* killed with its staged tensors committed (a write outside the group committed them) */
	killed_child(2, b);
	cr_expect_eq(st_raw_count(st_path("kill.tst"), "pending"), 3, "three staged writes left");
	cr_assert_eq(ts_store_open(&ro, st_path("kill.tst"), NULL), 0);
	uint64_t s_pages = page_count(ro, "s");
	cr_expect_gt(st_raw_count(st_path("kill.tst"), "pages"), old_pages + s_pages);
	expect_tensor(ro, "p", a);
	expect_tensor(ro, "q", a);
	expect_tensor(ro, "s", b);
	cr_expect_eq(ts_tensor_info_get(&info, ro, "r"), TS_ENOTFOUND);
	ts_store_close(ro);
	/* the next writer removes what the killed one staged */
	st = open_rw("kill.tst", 0);
	expect_tensor(st, "p", a);
	cr_expect_eq(problems(st), 0);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("kill.tst"), "pending"), 0);
	cr_expect_eq(st_raw_count(st_path("kill.tst"), "pages"), old_pages + s_pages);

	killed_child(1, b);
	cr_assert_eq(ts_store_open(&ro, st_path("kill.tst"), NULL), 0);
	expect_tensor(ro, "p", b);
	expect_tensor(ro, "q", b);
	expect_tensor(ro, "r", b);
	cr_expect_eq(problems(ro), 0);
	ts_store_close(ro);
	cr_expect_eq(st_raw_count(st_path("kill.tst"), "pending"), 0);
	free(a);
	free(b);
}

/* Kill a child at a random moment of ts_group_commit() (which frees 12 replaced tensors' pages
 * and writes 12 records in one transaction, then syncs): every tensor is old, or every one new. */
Test(group, a_kill_during_publication_shows_all_old_or_all_new, .timeout = 120)
{
	float *a = values(1), *b = values(-7);
	char name[16];
	uint64_t seed = st_seed("group.kill_publish");
	int saw_old = 0, saw_new = 0;

	ts_store *st = open_rw("killpub.tst", 0);
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof name, "t%02d", i);
		cr_assert_eq(put(st, NULL, name, a, 0), 0);
	}
	ts_store_close(st);
	for (int round = 0; round < 12; round++) {
		int fds[2];
		char c;
		cr_assert_eq(pipe(fds), 0);
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			ts_open_opts o;
			ts_group *g;
			close(fds[0]);
			ts_open_opts_init(&o);
			o.flags = TS_OPEN_WRITE;
			o.threads = 1;
			if (ts_store_open(&st, st_path("killpub.tst"), &o) || ts_group_begin(&g, st))
				_exit(3);
			for (int i = 0; i < 12; i++) {
				snprintf(name, sizeof name, "t%02d", i);
				if (put(st, g, name, b, TS_WRITE_REPLACE))
					_exit(3);
			}
			if (write(fds[1], "x", 1) != 1)
				_exit(3);
			if (ts_group_commit(NULL, g))
				_exit(4);
			pause(); /* published: wait for the kill */
			_exit(5);
		}
		close(fds[1]);
		cr_assert_eq(read(fds[0], &c, 1), 1, "the child failed before publishing");
		close(fds[0]);
		usleep((useconds_t)(st_rand(&seed) % 4000)); /* 0..4 ms into the publication */
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		cr_assert(WIFSIGNALED(status), "child exited %d", WEXITSTATUS(status));

		/* every tensor holds the values of the same state: before, or after, the group */
		ts_store *ro;
		static float got[N];
		uint64_t start[2] = {0, 0};
		int old = 0, new_ = 0;
		cr_assert_eq(ts_store_open(&ro, st_path("killpub.tst"), NULL), 0);
		for (int i = 0; i < 12; i++) {
			snprintf(name, sizeof name, "t%02d", i);
			cr_assert_eq(ts_read_slice(ro, name, 2, start, shape, TS_F32, got, sizeof(got)),
				     0, "%s", ts_error_last());
			new_ += memcmp(got, b, sizeof(got)) == 0;
			old += memcmp(got, a, sizeof(got)) == 0;
		}
		cr_expect_eq(damage(ro), 0);
		ts_store_close(ro);
		cr_assert(old == 12 || new_ == 12, "round %d: %d tensors new, %d old: a mix", round,
			  new_, old);
		saw_old += old == 12;
		saw_new += new_ == 12;
		/* the next writer cleans up; bring the store back to all-"a" for the next round */
		st = open_rw("killpub.tst", 0);
		for (int i = 0; i < 12; i++) {
			snprintf(name, sizeof name, "t%02d", i);
			cr_assert_eq(put(st, NULL, name, a, TS_WRITE_REPLACE), 0);
		}
		ts_store_close(st);
	}
	fprintf(stderr, "group.kill_publish: 12 kills: %d left the old group, %d the new one\n",
		saw_old, saw_new);
	free(a);
	free(b);
}

Test(group, a_name_staged_twice_is_superseded)
{
	float *a = values(1), *b = values(-7);
	ts_store *st = open_rw("twice.tst", 0);
	ts_group *g;

	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(put(st, g, "t", a, 0), 0, "%s", ts_error_last());
	cr_assert_eq(put(st, g, "t", b, 0), 0, "%s", ts_error_last());
	cr_expect_eq(ts_group_count(g), 1);
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	expect_tensor(st, "t", b);
	uint64_t pages = page_count(st, "t");
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("twice.tst"), "pages"), pages, "first version's pages");
	cr_expect_eq(st_raw_count(st_path("twice.tst"), "pending"), 0);
	free(a);
	free(b);
}

Test(group, other_writers_leave_staged_tensors_alone)
{
	float *a = values(1), *b = values(-7);
	ts_store *st = open_rw("other.tst", 0);
	ts_group *g;

	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(put(st, g, "staged", a, 0), 0, "%s", ts_error_last());
	/* a writer outside the group: its begin cleans up interrupted writes, not staged ones */
	cr_assert_eq(put(st, NULL, "plain", b, 0), 0, "%s", ts_error_last());
	expect_tensor(st, "plain", b);
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	expect_tensor(st, "staged", a);
	cr_expect_eq(problems(st), 0);
	ts_store_close(st);
	free(a);
	free(b);
}

Test(group, a_name_published_meanwhile_fails_the_whole_group)
{
	float *a = values(1), *b = values(-7);
	ts_store *st = open_rw("race.tst", 0);
	ts_group *g;
	ts_tensor_info info;

	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(put(st, g, "y", a, 0), 0);
	cr_assert_eq(put(st, g, "x", a, 0), 0);
	cr_assert_eq(put(st, NULL, "x", b, 0), 0, "%s", ts_error_last());
	cr_expect_eq(ts_group_commit(NULL, g), TS_EEXIST);
	cr_expect(strstr(ts_error_last(), "'x'") != NULL, "%s", ts_error_last());
	expect_tensor(st, "x", b);
	cr_expect_eq(ts_tensor_info_get(&info, st, "y"), TS_ENOTFOUND);
	uint64_t pages = page_count(st, "x");
	cr_expect_eq(problems(st), 0);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("race.tst"), "pages"), pages);
	cr_expect_eq(st_raw_count(st_path("race.tst"), "pending"), 0);
	free(a);
	free(b);
}

Test(group, a_full_disk_leaves_the_store_as_before)
{
	float *a = values(1), *b = values(-7);
	ts_store *st = open_rw("full.tst", 0);
	char name[32];
	int rc = 0, staged = 0;

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "t%d", i);
		cr_assert_eq(put(st, NULL, name, a, 0), 0);
	}
	ts_store_close(st);
	struct stat sb;
	cr_assert_eq(stat(st_path("full.tst"), &sb), 0);
	/* room for about two more tensors: replacing four of them cannot fit */
	st = open_rw("full.tst", (uint64_t)sb.st_size + 2 * N * sizeof(float) + 65536);
	ts_group *g;
	cr_assert_eq(ts_group_begin(&g, st), 0);
	for (int i = 0; i < 40 && rc == 0; i++) {
		snprintf(name, sizeof name, "t%d", i % 4);
		rc = put(st, g, name, b, TS_WRITE_REPLACE);
		if (rc == 0)
			staged++;
		snprintf(name, sizeof name, "n%d", i);
		if (rc == 0)
			rc = put(st, g, name, b, 0);
	}
	cr_expect_eq(rc, TS_ENOSPC, "got %s: %s", ts_errname(rc), ts_error_last());
	cr_expect_gt(staged, 0, "some replacements were staged before the disk filled");
	ts_group_abort(g);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "t%d", i);
		expect_tensor(st, name, a);
	}
	cr_expect_eq(tensor_count(st), 4);
	ts_store_close(st);
	/* whatever the abort could not remove on the full disk, the next writer does */
	st = open_rw("full.tst", 0);
	cr_expect_eq(problems(st), 0);
	cr_expect_eq(tensor_count(st), 4);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("full.tst"), "pending"), 0);
	free(a);
	free(b);
}

Test(group, caller_mistakes_get_clear_errors)
{
	float *a = values(1);
	ts_store *st = open_rw("err.tst", 0), *other = open_rw("err2.tst", 0), *ro;
	ts_group *g, *g2;
	ts_codec_config cfg = st_raw_f32();
	ts_write_opts o;
	ts_writer *w;

	cr_assert_eq(put(st, NULL, "there", a, 0), 0);
	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_expect_eq(ts_group_begin(&g2, st), TS_EBUSY);
	cr_expect_null(g2);
	/* a published name without TS_WRITE_REPLACE */
	cr_expect_eq(put(st, g, "there", a, 0), TS_EEXIST);
	/* a group of another store */
	ts_write_opts_init(&o);
	o.group = g;
	cr_expect_eq(ts_writer_begin(&w, other, "x", TS_F32, 2, shape, &cfg, &o), TS_EINVAL);
	/* publishing while a writer of the group is open: refused, the group stays usable */
	cr_assert_eq(ts_writer_begin(&w, st, "x", TS_F32, 2, shape, &cfg, &o), 0);
	cr_expect_eq(ts_group_commit(NULL, g), TS_EBUSY);
	cr_assert_eq(ts_writer_append(w, a, N * sizeof(float)), 0);
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
	/* repair cannot run while a group is open (it would take staged tensors for debris) */
	uint64_t n;
	cr_expect_eq(st_check(&n, st, TS_CHECK_REPAIR, NULL, NULL), TS_EBUSY);
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	expect_tensor(st, "x", a);
	cr_expect_eq(ts_group_commit(NULL, NULL), TS_EINVAL);
	ts_group_abort(NULL);
	cr_expect_eq(ts_group_count(NULL), 0);
	ts_store_close(st);
	ts_store_close(other);
	cr_assert_eq(ts_store_open(&ro, st_path("err.tst"), NULL), 0);
	cr_expect_eq(ts_group_begin(&g, ro), TS_EREADONLY);
	ts_store_close(ro);
	free(a);
}

Test(group, memory_stays_bounded_however_much_is_staged, .timeout = 120)
{
#if defined(__SANITIZE_ADDRESS__)
	cr_skip_test("peak RSS says nothing under AddressSanitizer (its quarantine keeps freed memory)");
#endif
	ts_store *st = open_rw("mem.tst", 0);
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
	uint64_t big[2] = {4096, 4096}; /* 16M BF16 elements: 32 MiB of source per tensor */
	size_t chunk = 1 << 19;
	uint16_t *buf = malloc(chunk * 2);
	ts_group *g;
	ts_write_opts o;
	char name[32];

	cfg.raw_dtype = TS_BF16;
	cfg.bits_per_value = 16;
	for (size_t i = 0; i < chunk; i++)
		buf[i] = ts_f32_to_bf16((float)(i % 1000) * 0.001f);
	st_peak_rss_reset();
	long before = st_peak_rss_kib();
	cr_assert_eq(ts_group_begin(&g, st), 0);
	ts_write_opts_init(&o);
	o.group = g;
	for (int t = 0; t < 4; t++) {
		ts_writer *w;
		snprintf(name, sizeof name, "big%d", t);
		cr_assert_eq(ts_writer_begin(&w, st, name, TS_BF16, 2, big, &cfg, &o), 0);
		for (uint64_t done = 0; done < big[0] * big[1]; done += chunk)
			cr_assert_eq(ts_writer_append(w, buf, chunk * 2), 0, "%s", ts_error_last());
		cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
	}
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	long after = st_peak_rss_kib();
	fprintf(stderr, "group.memory: peak RSS grew by %ld KiB staging 128 MiB in one group\n",
		after - before);
	cr_expect_lt(after - before, 48 * 1024, "peak grew by %ld KiB", after - before);
	cr_expect_eq(tensor_count(st), 4);
	free(buf);
	ts_store_close(st);
}

/* The store's metadata text, read with a buffer of exactly its size. */
static char *metadata(ts_store *st)
{
	size_t len = 99;
	int rc = ts_store_metadata_get(NULL, 0, &len, st);
	cr_assert(rc == 0 || rc == TS_ESHORTBUF, "%s", ts_error_last());
	char *buf = malloc(len + 1);
	cr_assert_eq(ts_store_metadata_get(buf, len + 1, &len, st), 0, "%s", ts_error_last());
	cr_assert_eq(strlen(buf), len);
	return buf;
}

Test(group, metadata_is_published_with_the_group_and_discarded_with_it)
{
	static const char v1[] = "{\"format\":\"pt\",\"k\":\"\xc3\xa9\"}", v2[] = "{\"a\":\"b\"}";
	float *a = values(1);
	ts_store *st = open_rw("meta.tst", 0);
	ts_group *g;
	char *m, small[4];
	size_t len = 0;

	m = metadata(st);
	cr_expect_str_eq(m, "", "a new store has no metadata");
	free(m);
	/* staged with a tensor: invisible until the commit, then both at once */
	cr_assert_eq(ts_group_begin(&g, st), 0, "%s", ts_error_last());
	cr_assert_eq(put(st, g, "t", a, 0), 0, "%s", ts_error_last());
	cr_assert_eq(ts_group_metadata_set(g, v2, strlen(v2)), 0);
	cr_assert_eq(ts_group_metadata_set(g, v1, strlen(v1)), 0, "the second call replaces");
	m = metadata(st);
	cr_expect_str_eq(m, "");
	free(m);
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	m = metadata(st);
	cr_expect_str_eq(m, v1);
	free(m);
	cr_expect_eq(ts_store_metadata_get(small, sizeof small, &len, st), TS_ESHORTBUF);
	cr_expect_eq(len, strlen(v1), "the length is given with TS_ESHORTBUF");
	/* aborted: the metadata stays as it was */
	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(ts_group_metadata_set(g, v2, strlen(v2)), 0);
	ts_group_abort(g);
	m = metadata(st);
	cr_expect_str_eq(m, v1);
	free(m);
	/* a group of metadata alone publishes it; length 0 removes it */
	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(ts_group_metadata_set(g, v2, strlen(v2)), 0);
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	m = metadata(st);
	cr_expect_str_eq(m, v2);
	free(m);
	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(ts_group_metadata_set(g, NULL, 0), 0);
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	m = metadata(st);
	cr_expect_str_eq(m, "");
	free(m);
	cr_expect_eq(problems(st), 0);
	/* survives reopening, read-only */
	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(ts_group_metadata_set(g, v1, strlen(v1)), 0);
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	ts_store_close(st);
	cr_assert_eq(ts_store_open(&st, st_path("meta.tst"), NULL), 0, "%s", ts_error_last());
	m = metadata(st);
	cr_expect_str_eq(m, v1);
	free(m);
	ts_store_close(st);
	free(a);
}

Test(group, metadata_mistakes_get_clear_errors)
{
	ts_store *st = open_rw("metaerr.tst", 0);
	ts_group *g;
	size_t len;

	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_expect_eq(ts_group_metadata_set(NULL, "{}", 2), TS_EINVAL);
	cr_expect_eq(ts_group_metadata_set(g, NULL, 2), TS_EINVAL);
	cr_expect_eq(ts_group_metadata_set(g, "{\"a\0\":1}", 8), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "NUL byte at offset 3") != NULL, "%s", ts_error_last());
	cr_expect_eq(ts_group_metadata_set(g, "x", (size_t)TS_METADATA_MAX + 1), TS_EINVAL);
	ts_group_abort(g);
	cr_expect_eq(ts_store_metadata_get(NULL, 0, &len, NULL), TS_EINVAL);
	cr_expect_eq(ts_store_metadata_get(NULL, 4, &len, st), TS_EINVAL);
	ts_store_close(st);
}

/* Write @p rows x COLS of @p x (published, or staged in @p g), appended in one piece. */
static int put_rows(ts_store *st, ts_group *g, const char *name, const float *x, uint64_t rows)
{
	ts_codec_config cfg = st_raw_f32();
	uint64_t shp[2] = {rows, COLS};
	ts_write_opts o;
	ts_writer *w;
	int rc;

	ts_write_opts_init(&o);
	o.group = g;
	rc = ts_writer_begin(&w, st, name, TS_F32, 2, shp, &cfg, &o);
	if (rc < 0)
		return rc;
	rc = ts_writer_append(w, x, rows * COLS * sizeof(float));
	if (rc < 0) {
		ts_writer_abort(w);
		return rc;
	}
	return ts_writer_commit(NULL, w);
}

Test(group, small_staged_tensors_share_their_transactions)
{
	float *a = values(3);
	char name[16];
	ts_store *st = open_rw("share.tst", 0);
	ts_group *g;
	uint64_t published = 0;

	ts_store_close(st);
	uint64_t before = st_raw_txnid(st_path("share.tst"));
	st = open_rw("share.tst", 0);
	cr_assert_eq(ts_group_begin(&g, st), 0);
	for (int i = 0; i < 16; i++) {
		snprintf(name, sizeof name, "t%02d", i);
		cr_assert_eq(put(st, g, name, a, 0), 0, "%s", ts_error_last());
	}
	cr_expect_eq(ts_group_count(g), 16);
	cr_assert_eq(ts_group_commit(&published, g), 0, "%s", ts_error_last());
	cr_expect_eq(published, 16);
	ts_store_close(st);
	/* 16 tensors of 192 KiB: 3 MiB, less than a batch, all in the publishing transaction */
	uint64_t txns = st_raw_txnid(st_path("share.tst")) - before;
	cr_expect_leq(txns, 2, "%" PRIu64 " transactions for 16 staged tensors", txns);
	st = open_rw("share.tst", 0);
	for (int i = 0; i < 16; i++) {
		snprintf(name, sizeof name, "t%02d", i);
		expect_tensor(st, name, a);
	}
	cr_expect_eq(problems(st), 0);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("share.tst"), "pending"), 0);
	free(a);
}

Test(group, an_abort_removes_carried_and_committed_stages_alike)
{
	/* "big" is larger than a writer's batch (4 MiB): its pending entry and first pages are
	 * committed, its last pages carried; "small" is carried whole */
	const uint64_t big_rows = 2560; /* x 512 F32: 5 MiB */
	float *big = malloc(big_rows * COLS * sizeof(float)), *a = values(5);
	ts_store *st = open_rw("abortc.tst", 0);
	ts_group *g;

	cr_assert(big);
	for (uint64_t i = 0; i < big_rows * COLS; i++)
		big[i] = (float)(i % 1000) * 0.5f;
	cr_assert_eq(put(st, NULL, "old", a, 0), 0);
	ts_store_close(st);
	uint64_t pages = st_raw_count(st_path("abortc.tst"), "pages");
	st = open_rw("abortc.tst", 0);
	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(put_rows(st, g, "big", big, big_rows), 0, "%s", ts_error_last());
	cr_assert_eq(put(st, g, "small", a, 0), 0, "%s", ts_error_last());
	ts_group_abort(g);
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "big"), TS_ENOTFOUND);
	cr_expect_eq(problems(st), 0);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("abortc.tst"), "pending"), 0);
	cr_expect_eq(st_raw_count(st_path("abortc.tst"), "pages"), pages);

	/* the same group published: every value back, nothing pending */
	st = open_rw("abortc.tst", 0);
	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(put_rows(st, g, "big", big, big_rows), 0, "%s", ts_error_last());
	cr_assert_eq(put(st, g, "small", a, 0), 0, "%s", ts_error_last());
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	float *back = malloc(big_rows * COLS * sizeof(float));
	uint64_t start[2] = {0, 0}, count[2] = {big_rows, COLS};
	cr_assert(back);
	cr_assert_eq(ts_read_slice(st, "big", 2, start, count, TS_F32, back,
				   big_rows * COLS * sizeof(float)), 0, "%s", ts_error_last());
	cr_expect(memcmp(back, big, big_rows * COLS * sizeof(float)) == 0, "big: values differ");
	expect_tensor(st, "small", a);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("abortc.tst"), "pending"), 0);
	free(back);
	free(big);
	free(a);
}

Test(group, writes_between_staged_tensors_get_their_own_ids)
{
	float *a = values(2), *b = values(-3), *c = values(9);
	ts_store *st = open_rw("between.tst", 0);
	ts_group *g;

	cr_assert_eq(ts_group_begin(&g, st), 0);
	cr_assert_eq(put(st, g, "x", a, 0), 0, "%s", ts_error_last());
	/* outside the group, while "x" is carried: published now, an id of its own */
	cr_assert_eq(put(st, NULL, "y", b, 0), 0, "%s", ts_error_last());
	cr_assert_eq(put(st, g, "z", c, 0), 0, "%s", ts_error_last());
	/* a tensor of no elements: a stage without pages */
	cr_assert_eq(put_rows(st, g, "e", a, 0), 0, "%s", ts_error_last());
	/* a name carried twice: the second supersedes the first */
	cr_assert_eq(put(st, g, "z", a, TS_WRITE_REPLACE), 0, "%s", ts_error_last());
	cr_expect_eq(ts_group_count(g), 3);
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "x"), TS_ENOTFOUND);
	expect_tensor(st, "y", b);
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	expect_tensor(st, "x", a);
	expect_tensor(st, "y", b);
	expect_tensor(st, "z", a);
	cr_assert_eq(ts_tensor_info_get(&info, st, "e"), 0, "%s", ts_error_last());
	cr_expect_eq(info.page_count, 0);
	cr_expect_eq(problems(st), 0);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("between.tst"), "pending"), 0);
	free(a);
	free(b);
	free(c);
}
