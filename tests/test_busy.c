/*
 * Waiting writers: an open for writing of a store another handle or process holds
 * for writing waits up to ts_open_opts.busy_timeout_ms (0: fails at once; < 0: for ever), and
 * proceeds when the holder closes or is killed; a killed holder's interrupted tensor is then
 * recovered (removed) and the store checks clean. Times are measured here with the monotonic
 * clock, independently of the library.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/storetest.h"

static int open_w(ts_store **st, const char *name, int64_t timeout_ms)
{
	ts_open_opts o;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_CREATE | TS_OPEN_WRITE;
	o.threads = 1;
	o.io = TS_IO_MMAP;
	o.busy_timeout_ms = timeout_ms;
	return ts_store_open(st, st_path(name), &o);
}

static void put(ts_store *st, const char *name, float v)
{
	ts_codec_config raw = st_raw_f32();
	float x[16];
	for (int i = 0; i < 16; i++)
		x[i] = v + (float)i;
	uint64_t shape[1] = {16};
	st_write_f32(st, name, 1, shape, &raw, x, 0);
}

static void expect_tensor(ts_store *st, const char *name, float v)
{
	float x[16];
	uint64_t z[1] = {0}, c[1] = {16};
	cr_assert_eq(ts_read_slice(st, name, 1, z, c, TS_F32, x, sizeof x), 0, "%s: %s", name,
		     ts_error_last());
	for (int i = 0; i < 16; i++)
		cr_expect_eq(x[i], v + (float)i, "%s[%d]", name, i);
}

static void expect_clean(const char *name)
{
	ts_store *st;
	uint64_t problems = 99;
	cr_assert_eq(ts_store_open(&st, st_path(name), NULL), 0);
	cr_expect_eq(st_check(&problems, st, 0, NULL, NULL), 0);
	cr_expect_eq(problems, 0, "fsck of %s finds %llu problems", name,
		     (unsigned long long)problems);
	ts_store_close(st);
}

Test(busy, default_fails_at_once)
{
	ts_open_opts o;
	ts_open_opts_init(&o);
	cr_expect_eq(o.busy_timeout_ms, 0);
	ts_store *a, *b = (ts_store *)1;
	cr_assert_eq(open_w(&a, "d.tst", 0), 0);
	double t0 = ts__clock_s();
	cr_expect_eq(open_w(&b, "d.tst", 0), TS_EBUSY);
	cr_expect_null(b);
	cr_expect_lt(ts__clock_s() - t0, 0.5);
	ts_store_close(a);
}

Test(busy, bounded_wait_times_out)
{
	ts_store *a, *b;
	cr_assert_eq(open_w(&a, "t.tst", 0), 0);
	double t0 = ts__clock_s();
	cr_expect_eq(open_w(&b, "t.tst", 300), TS_EBUSY);
	double dt = ts__clock_s() - t0;
	cr_expect_geq(dt, 0.29, "waited %.3f s of 0.3", dt);
	cr_expect_lt(dt, 2.0, "waited %.3f s of 0.3", dt);
	cr_expect_not_null(strstr(ts_error_last(), "open for writing elsewhere"), "%s",
			   ts_error_last());
	ts_store_close(a);
}

struct waiter {
	int64_t timeout_ms;
	int rc;
	double done_at;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	ts_store *st = NULL;
	w->rc = open_w(&st, "th.tst", w->timeout_ms);
	w->done_at = ts__clock_s();
	if (w->rc == 0) {
		put(st, "second", 200.0f);
		ts_store_close(st);
	}
	return NULL;
}

Test(busy, thread_waits_then_succeeds)
{
	ts_store *a;
	cr_assert_eq(open_w(&a, "th.tst", 0), 0);
	struct waiter w = {-1, 1, 0};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, wait_thread, &w), 0);
	usleep(300000);
	put(a, "first", 100.0f);
	double closed_at = ts__clock_s();
	ts_store_close(a);
	pthread_join(t, NULL);
	cr_expect_eq(w.rc, 0, "%s", ts_error_last());
	cr_expect_geq(w.done_at, closed_at, "the waiter got in before the holder closed");
	cr_expect_lt(w.done_at - closed_at, 0.5);
	cr_assert_eq(ts_store_open(&a, st_path("th.tst"), NULL), 0);
	expect_tensor(a, "first", 100.0f);
	expect_tensor(a, "second", 200.0f);
	ts_store_close(a);
	expect_clean("th.tst");
}

/* A child process opens the store for writing and writes "first" (@p reader: opens it for
 * reading only, so holding its lock file open), tells us through a pipe, then either holds it
 * for @p hold_us and closes, or (hold_us < 0, a writer) starts a second tensor and waits to be
 * killed. */
static pid_t holder(const char *name, long hold_us, int reader)
{
	int fds[2];
	(void)st_path(name); /* the directory, made before the fork: one for both processes */
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		ts_store *st;
		if (reader ? ts_store_open(&st, st_path(name), NULL) : open_w(&st, name, 0))
			_exit(3);
		if (!reader)
			put(st, "first", 100.0f);
		ts_writer *w = NULL;
		if (hold_us < 0 && !reader) {
			ts_codec_config raw = st_raw_f32();
			uint64_t shape[2] = {1024, 1024};
			size_t n = 512 * 1024;
			float *x = calloc(n, 4);
			if (!x || ts_writer_begin(&w, st, "lost", TS_F32, 2, shape, &raw, NULL) ||
			    ts_writer_append(w, x, n * 4))
				_exit(4);
		}
		if (write(fds[1], "x", 1) != 1)
			_exit(5);
		if (hold_us < 0)
			for (;;)
				pause();
		usleep((useconds_t)hold_us);
		ts_store_close(st);
		_exit(0);
	}
	close(fds[1]);
	char c;
	cr_assert_eq(read(fds[0], &c, 1), 1, "the holder failed to start");
	close(fds[0]);
	return pid;
}

Test(busy, process_waits_then_succeeds)
{
	pid_t pid = holder("p.tst", 400000, 0);
	double t0 = ts__clock_s();
	ts_store *st;
	cr_assert_eq(open_w(&st, "p.tst", 10000), 0, "%s", ts_error_last());
	double dt = ts__clock_s() - t0;
	cr_expect_geq(dt, 0.2, "got in after %.3f s, while the holder held it", dt);
	cr_expect_lt(dt, 5.0);
	int status;
	waitpid(pid, &status, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "holder status %d", status);
	put(st, "second", 200.0f);
	expect_tensor(st, "first", 100.0f);
	ts_store_close(st);
	expect_clean("p.tst");
}

struct killer {
	pid_t pid;
	double killed_at;
};

static void *kill_thread(void *arg)
{
	struct killer *k = arg;
	usleep(300000);
	k->killed_at = ts__clock_s();
	kill(k->pid, SIGKILL);
	return NULL;
}

Test(busy, killed_holder_is_recovered)
{
	struct killer k = {holder("k.tst", -1, 0), 0};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, kill_thread, &k), 0);
	ts_store *st;
	int rc = open_w(&st, "k.tst", -1);
	double got_at = ts__clock_s();
	pthread_join(t, NULL);
	int status;
	waitpid(k.pid, &status, 0);
	cr_assert_eq(rc, 0, "%s", ts_error_last());
	cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "holder status %d", status);
	cr_expect_geq(got_at, k.killed_at, "the waiter got in before the holder died");
	cr_expect_lt(got_at - k.killed_at, 1.0);
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "lost"), TS_ENOTFOUND);
	expect_tensor(st, "first", 100.0f);
	put(st, "second", 200.0f);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("k.tst"), "pending"), 0, "the interrupted write is gone");
	expect_clean("k.tst");
}

/* A store removed (its data file first) while another process still has it open, and a new
 * one created at its path before the old lock file is gone: the new store's open must not
 * pair the new data file with the old lock file, whose last transaction id (several commits
 * on) names the wrong meta page (engine/store.c invariant 4); it waits until the old lock
 * file is let go, and the new store then checks clean and holds what was written to it. */
Test(busy, old_lock_file_of_a_removed_store_is_waited_out)
{
	ts_store *st;
	cr_assert_eq(open_w(&st, "r.tst", 0), 0, "%s", ts_error_last());
	put(st, "old1", 1.0f);
	put(st, "old2", 2.0f);
	put(st, "old3", 3.0f);
	ts_store_close(st);
	pid_t pid = holder("r.tst", 400000, 1);
	cr_assert_eq(unlink(st_path("r.tst")), 0); /* the data file only, as a remover's first step */
	double t0 = ts__clock_s();
	cr_assert_eq(open_w(&st, "r.tst", 10000), 0, "%s", ts_error_last());
	double dt = ts__clock_s() - t0;
	cr_expect_geq(dt, 0.2, "opened after %.3f s, while the old lock file was held", dt);
	put(st, "new", 10.0f);
	ts_store_close(st);
	int status;
	waitpid(pid, &status, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader status %d", status);
	expect_clean("r.tst");
	cr_assert_eq(ts_store_open(&st, st_path("r.tst"), NULL), 0, "%s", ts_error_last());
	expect_tensor(st, "new", 10.0f);
	ts_tensor_info ti;
	cr_expect_eq(ts_tensor_info_get(&ti, st, "old1"), TS_ENOTFOUND);
	ts_store_close(st);
}
