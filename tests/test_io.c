/*
 * Tests of the I/O backends on a plain file: every backend reads the right bytes, batches larger
 * than the queue depth, concurrent batches from several threads, short reads at the end of the
 * file, backend selection by argument and TSTORE_IO, and the pread fallback when io_uring cannot
 * be set up (simulated with TSTORE_TEST_URING_FAIL).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/io.h"

#define FILE_BYTES (4u << 20)

static char dir[256];
static char path[300];
static void *map;

/* Word i of the file is i * 2654435761 + 17 (independent of the code under test). */
static uint32_t word_at(uint64_t i)
{
	return (uint32_t)(i * 2654435761u + 17u);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/tstore-io-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/data", dir);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	for (uint64_t i = 0; i < FILE_BYTES / 4; i++) {
		uint32_t w = word_at(i);
		fwrite(&w, 4, 1, f);
	}
	fclose(f);
	int fd = open(path, O_RDONLY);
	map = mmap(NULL, FILE_BYTES, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert_neq(map, MAP_FAILED);
}

static void teardown(void)
{
	munmap(map, FILE_BYTES);
	unlink(path);
	rmdir(dir);
}

static int check_run(const ts__io_req *q)
{
	const uint32_t *w = q->buf;
	if (q->res != (ssize_t)q->len)
		return 0;
	for (size_t i = 0; i < q->len / 4; i++)
		if (w[i] != word_at(q->offset / 4 + i))
			return 0;
	return 1;
}

/* Read @p n random runs of 1..4 aligned pages in one batch and check every byte. */
static void read_random(struct ts__io *io, size_t n, unsigned seed)
{
	ts__io_req *reqs = calloc(n, sizeof(*reqs));
	ts__io_batch b;

	memset(&b, 0, sizeof(b));
	for (size_t i = 0; i < n; i++) {
		size_t pages = 1 + (size_t)(rand_r(&seed) % 4);
		uint64_t first = (uint64_t)(rand_r(&seed) % (FILE_BYTES / TS_IO_ALIGN - pages));
		reqs[i].offset = first * TS_IO_ALIGN;
		reqs[i].len = pages * TS_IO_ALIGN;
		reqs[i].buf = aligned_alloc(TS_IO_ALIGN, reqs[i].len);
		reqs[i].map_src = (const char *)map + reqs[i].offset;
	}
	b.reqs = reqs;
	b.n = n;
	cr_assert_eq(ts__io_submit(io, &b), 0);
	cr_assert_eq(ts__io_wait(io, &b), 0);
	for (size_t i = 0; i < n; i++) {
		cr_expect(check_run(&reqs[i]), "run %zu (offset %llu, %zu bytes, res %zd) is wrong", i,
			  (unsigned long long)reqs[i].offset, reqs[i].len, reqs[i].res);
		free(reqs[i].buf);
	}
	free(reqs);
}

static void each_backend_reads_correctly(ts_io_backend want)
{
	struct ts__io *io;
	cr_assert_eq(ts__io_create(&io, path, want), 0, "%s", ts_error_last());
	cr_expect_eq(io->kind, want);
	read_random(io, 1, 1);
	read_random(io, 7, 2);
	read_random(io, 100, 3); /* more than the queue depth */
	cr_expect_geq(atomic_load(&io->reads), 108);
	ts__io_free(io);
}

Test(io, uring_reads_the_right_bytes, .init = setup, .fini = teardown)
{
	each_backend_reads_correctly(TS_IO_URING);
}

Test(io, pread_reads_the_right_bytes, .init = setup, .fini = teardown)
{
	each_backend_reads_correctly(TS_IO_PREAD);
}

Test(io, pread_one_at_a_time_reads_the_right_bytes, .init = setup, .fini = teardown)
{
	setenv("TSTORE_IO_THREADS", "1", 1);
	each_backend_reads_correctly(TS_IO_PREAD);
}

Test(io, mmap_copies_the_right_bytes, .init = setup, .fini = teardown)
{
	each_backend_reads_correctly(TS_IO_MMAP);
}

Test(io, direct_io_is_used_on_this_file_system, .init = setup, .fini = teardown)
{
	struct ts__io *io;
	cr_assert_eq(ts__io_create(&io, path, TS_IO_URING), 0);
	if (!io->direct)
		cr_log_warn("no O_DIRECT here: %s", io->note);
	cr_expect(io->direct || strstr(io->note, "O_DIRECT"));
	ts__io_free(io);
}

Test(io, short_read_at_end_of_file, .init = setup, .fini = teardown)
{
	ts_io_backend all[] = {TS_IO_URING, TS_IO_PREAD};
	for (int k = 0; k < 2; k++) {
		struct ts__io *io;
		ts__io_req q = {.offset = FILE_BYTES - TS_IO_ALIGN, .len = 2 * TS_IO_ALIGN};
		ts__io_batch b;
		memset(&b, 0, sizeof(b));
		q.buf = aligned_alloc(TS_IO_ALIGN, q.len);
		b.reqs = &q;
		b.n = 1;
		cr_assert_eq(ts__io_create(&io, path, all[k]), 0);
		cr_assert_eq(ts__io_submit(io, &b), 0);
		cr_assert_eq(ts__io_wait(io, &b), 0);
		cr_expect_eq(q.res, (ssize_t)TS_IO_ALIGN, "%s: res %zd", ts_io_backend_name(all[k]),
			     q.res);
		free(q.buf);
		ts__io_free(io);
	}
}

struct conc {
	struct ts__io *io;
	unsigned seed;
};

static void *conc_thread(void *arg)
{
	struct conc *c = arg;
	for (int i = 0; i < 20; i++)
		read_random(c->io, 40, c->seed + (unsigned)i * 31u);
	return NULL;
}

static void concurrent(ts_io_backend want)
{
	struct ts__io *io;
	pthread_t t[4];
	struct conc c[4];
	cr_assert_eq(ts__io_create(&io, path, want), 0);
	for (int i = 0; i < 4; i++) {
		c[i] = (struct conc){io, 100u * (unsigned)i};
		pthread_create(&t[i], NULL, conc_thread, &c[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_expect_eq(atomic_load(&io->reads), 4 * 20 * 40);
	ts__io_free(io);
}

Test(io, uring_serves_concurrent_threads, .init = setup, .fini = teardown)
{
	concurrent(TS_IO_URING);
}

Test(io, pread_serves_concurrent_threads, .init = setup, .fini = teardown)
{
	concurrent(TS_IO_PREAD);
}

Test(io, backend_from_environment, .init = setup, .fini = teardown)
{
	struct ts__io *io;
	setenv("TSTORE_IO", "pread", 1);
	cr_assert_eq(ts__io_create(&io, path, TS_IO_DEFAULT), 0);
	cr_expect_eq(io->kind, TS_IO_PREAD);
	ts__io_free(io);
	setenv("TSTORE_IO", "MMAP", 1);
	cr_assert_eq(ts__io_create(&io, path, TS_IO_DEFAULT), 0);
	cr_expect_eq(io->kind, TS_IO_MMAP);
	ts__io_free(io);
	/* an explicit choice wins over the environment */
	cr_assert_eq(ts__io_create(&io, path, TS_IO_URING), 0);
	cr_expect_eq(io->kind, TS_IO_URING);
	ts__io_free(io);
	setenv("TSTORE_IO", "floppy", 1);
	cr_expect_eq(ts__io_create(&io, path, TS_IO_DEFAULT), TS_EINVAL);
	cr_expect_null(io);
	cr_expect(strstr(ts_error_last(), "floppy") != NULL, "%s", ts_error_last());
	unsetenv("TSTORE_IO");
	cr_assert_eq(ts__io_create(&io, path, TS_IO_DEFAULT), 0);
	cr_expect_eq(io->kind, TS_IO_URING);
	ts__io_free(io);
}

Test(io, uring_falls_back_to_pread_and_says_so, .init = setup, .fini = teardown)
{
	const int fallbacks[] = {ENOSYS, EPERM, ENOMEM};
	for (int i = 0; i < 3; i++) {
		struct ts__io *io;
		char v[16];
		snprintf(v, sizeof(v), "%d", fallbacks[i]);
		setenv("TSTORE_TEST_URING_FAIL", v, 1);
		cr_assert_eq(ts__io_create(&io, path, TS_IO_URING), 0);
		cr_expect_eq(io->kind, TS_IO_PREAD);
		cr_expect(strstr(io->note, "io_uring unavailable") != NULL, "note: '%s'", io->note);
		read_random(io, 10, 5);
		ts__io_free(io);
	}
	/* any other failure is an error, not a silent fallback */
	setenv("TSTORE_TEST_URING_FAIL", "22", 1);
	struct ts__io *io;
	cr_expect_lt(ts__io_create(&io, path, TS_IO_URING), 0);
	unsetenv("TSTORE_TEST_URING_FAIL");
}

Test(io, backend_names)
{
	ts_io_backend b;
	cr_expect_str_eq(ts_io_backend_name(TS_IO_URING), "uring");
	cr_expect_str_eq(ts_io_backend_name(TS_IO_PREAD), "pread");
	cr_expect_str_eq(ts_io_backend_name(TS_IO_MMAP), "mmap");
	cr_expect_eq(ts__io_parse(&b, "Uring"), 0);
	cr_expect_eq(b, TS_IO_URING);
	cr_expect_eq(ts__io_parse(&b, "nope"), TS_EINVAL);
}
