/*
 * The io_uring backend: a batch goes out as one submission of up to TS_IO_QD reads (O_DIRECT at
 * each run's offset); a larger batch is refilled as completions arrive.
 *
 * Rings are kept on a free list: a thread takes one for the life of a batch and puts it back, so
 * concurrent readers never share a ring (no lock is held during I/O) and no ring is set up per
 * request (io_uring_queue_init costs tens of microseconds). The list grows to the number of
 * batches ever in flight at once.
 *
 * Invariants
 *   1. A ring is used by at most one batch at a time; every ring on the free list has no
 *      submission or completion pending.
 */
#include "config.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/env.h"
#include "common/error.h"
#include "engine/io.h"

struct ring {
	struct io_uring ring;
	struct ring *next;
};

struct uring_state {
	pthread_mutex_t lock;
	struct ring *free; /* invariant 1 */
};

static int ring_new(struct ring **out)
{
	struct ring *r = calloc(1, sizeof(*r));
	/* Test-only hook: TSTORE_TEST_URING_FAIL=<errno> makes every ring fail to set up. */
	const char *sim = ts__env("TSTORE_TEST_URING_FAIL");
	int rc;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	if (sim)
		rc = -atoi(sim);
	else
		rc = io_uring_queue_init(TS_IO_QD, &r->ring, 0);
	if (rc < 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static void ring_free(struct ring *r)
{
	io_uring_queue_exit(&r->ring);
	free(r);
}

static int ring_take(struct uring_state *u, struct ring **out)
{
	pthread_mutex_lock(&u->lock);
	*out = u->free;
	if (*out)
		u->free = (*out)->next;
	pthread_mutex_unlock(&u->lock);
	if (*out)
		return 0;
	return ring_new(out);
}

static void ring_put(struct uring_state *u, struct ring *r)
{
	pthread_mutex_lock(&u->lock);
	r->next = u->free;
	u->free = r;
	pthread_mutex_unlock(&u->lock);
}

/* Queue as many unsubmitted requests as the ring has room for, then submit them. */
static int refill(struct ts__io *io, ts__io_batch *b, struct ring *r)
{
	unsigned queued = 0;

	while (b->next < b->n && b->inflight < TS_IO_QD) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
		ts__io_req *q = &b->reqs[b->next];
		if (!sqe)
			break;
		io_uring_prep_read(sqe, io->fd, q->buf, (unsigned)q->len, q->offset);
		io_uring_sqe_set_data64(sqe, b->next);
		b->next++;
		b->inflight++;
		queued++;
	}
	for (int tries = 0; queued; tries++) {
		int rc = io_uring_submit(&r->ring);
		if (rc < 0 && tries < 100 && (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY))
			continue;
		if (rc < 0)
			return rc;
		queued -= (unsigned)rc < queued ? (unsigned)rc : queued;
	}
	return 0;
}

static int uring_submit(struct ts__io *io, ts__io_batch *b)
{
	struct ring *r;
	int rc = ring_take(io->priv, &r);

	if (rc < 0) {
		b->sync_err = rc;
		return ts__err_errno(-rc, "io_uring: setting up a ring");
	}
	b->ring = r;
	rc = refill(io, b, r);
	if (rc < 0)
		b->sync_err = rc;
	return 0;
}

/* A read the ring could not do (EAGAIN, EINTR, a submit error): do it with pread. */
static ssize_t read_sync(struct ts__io *io, ts__io_req *q)
{
	ssize_t n;

	do
		n = pread(io->fd, q->buf, q->len, (off_t)q->offset);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int uring_wait(struct ts__io *io, ts__io_batch *b)
{
	struct ring *r = b->ring;

	if (!r) {
		for (size_t i = 0; i < b->n; i++)
			b->reqs[i].res = read_sync(io, &b->reqs[i]);
		return 0;
	}
	while (b->inflight) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = {.tv_sec = 5};
		int rc = io_uring_wait_cqe_timeout(&r->ring, &cqe, b->sync_err ? &ts : NULL);
		if (rc == -EINTR)
			continue;
		if (rc < 0) {
			/* A submission failed and nothing more completes: finish with pread. The ring
			 * is abandoned, never reused (invariant 1). */
			for (size_t i = 0; i < b->n; i++)
				if (b->reqs[i].res == -EINPROGRESS)
					b->reqs[i].res = read_sync(io, &b->reqs[i]);
			b->ring = NULL;
			return 0;
		}
		ts__io_req *q = &b->reqs[io_uring_cqe_get_data64(cqe)];
		q->res = cqe->res;
		io_uring_cqe_seen(&r->ring, cqe);
		b->inflight--;
		if (q->res == -EAGAIN || q->res == -EINTR)
			q->res = read_sync(io, q);
		if (b->next < b->n && !b->sync_err) {
			rc = refill(io, b, r);
			if (rc < 0)
				b->sync_err = rc;
		}
	}
	for (size_t i = b->next; i < b->n; i++)
		b->reqs[i].res = read_sync(io, &b->reqs[i]);
	ring_put(io->priv, r);
	b->ring = NULL;
	return 0;
}

static void uring_destroy(struct ts__io *io)
{
	struct uring_state *u = io->priv;

	if (!u)
		return;
	while (u->free) {
		struct ring *r = u->free;
		u->free = r->next;
		ring_free(r);
	}
	pthread_mutex_destroy(&u->lock);
	free(u);
	io->priv = NULL;
}

static const struct ts__io_ops uring_ops = {
	.submit = uring_submit,
	.wait = uring_wait,
	.destroy = uring_destroy,
};

int ts__io_uring_init(struct ts__io *io)
{
	struct uring_state *u = calloc(1, sizeof(*u));
	struct ring *r;
	int rc;

	if (!u)
		return -ENOMEM;
	rc = ring_new(&r); /* probe now, so that a missing io_uring is known at open */
	if (rc < 0) {
		free(u);
		return rc;
	}
	pthread_mutex_init(&u->lock, NULL);
	u->free = r;
	io->priv = u;
	io->depth = TS_IO_QD;
	io->ops = &uring_ops;
	return 0;
}
