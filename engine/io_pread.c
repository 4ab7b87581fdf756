/*
 * The pread backend: O_DIRECT pread(2) of each run, the runs of a batch spread over a worker
 * pool of I/O threads of its own (engine/pool.c; TSTORE_IO_THREADS, default 8, at most 64,
 * counting the thread that waits for the batch). Submitting a batch starts its pool job, so the
 * runs are read while the caller decodes the previous window; waiting finishes the job, the
 * waiting thread reading runs too. With TSTORE_IO_THREADS=1 there are no I/O threads and the
 * caller reads the runs one at a time (the baseline of `tstore bench read`).
 *
 * The pool is not the store's decode pool: a thread blocked in pread(2) would hold back decoding.
 *
 * Invariants
 *   1. Each request of a batch is read exactly once, by whoever claims it from the pool job.
 *   2. ts__io_wait returns only when every request of the batch has completed (res set).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/env.h"
#include "common/error.h"
#include "engine/io.h"
#include "engine/pool.h"

#define DEFAULT_THREADS 8
#define MAX_THREADS 64

/* Read request @p i of the batch @p ud into its buffer; the outcome is in its res (never fails
 * the job: per-request failures are the reader's to report). */
static int read_one(void *ud, uint64_t i)
{
	ts__io_batch *b = ud;
	ts__io_req *q = &b->reqs[i];
	int fd = b->io->fd;
	size_t got = 0;

	while (got < q->len) {
		ssize_t n = pread(fd, (char *)q->buf + got, q->len - got, (off_t)(q->offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			q->res = -errno;
			return 0;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	q->res = (ssize_t)got;
	return 0;
}

static int pread_submit(struct ts__io *io, ts__io_batch *b)
{
	return ts__pool_start(io->priv, &b->job, b->n, read_one, b);
}

static int pread_wait(struct ts__io *io, ts__io_batch *b)
{
	(void)io;
	return ts__pool_finish(io->priv, &b->job);
}

static void pread_destroy(struct ts__io *io)
{
	ts__pool_free(io->priv);
	io->priv = NULL;
}

static const struct ts__io_ops pread_ops = {
	.submit = pread_submit,
	.wait = pread_wait,
	.destroy = pread_destroy,
};

int ts__io_pread_init(struct ts__io *io)
{
	struct ts__pool *pool;
	long want = DEFAULT_THREADS;
	int rc = ts__env_int(&want, "TSTORE_IO_THREADS", 1, MAX_THREADS);

	if (rc < 0)
		return rc;
	if ((rc = ts__pool_create(&pool, (int)want)) < 0)
		return rc;
	io->priv = pool;
	io->ops = &pread_ops;
	io->depth = (int)want;
	return 0;
}
