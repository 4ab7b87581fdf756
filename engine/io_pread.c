/*
 * The pread backend: O_DIRECT pread(2) of each run, spread over a small pool of I/O threads
 * (TSTORE_IO_THREADS, default 8, at most 64). The thread waiting for a batch reads runs of its
 * own batch too; with TSTORE_IO_THREADS=1 there are no I/O threads and the caller reads the runs
 * one at a time (the baseline of `tstore bench read`).
 *
 * Invariants
 *   1. A batch is on the queue only while it has unclaimed requests; each request is claimed
 *      exactly once (under the lock) and completed by whoever claimed it.
 *   2. ts__io_wait returns only when every request of the batch has completed.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/env.h"
#include "common/error.h"
#include "engine/io.h"

#define DEFAULT_THREADS 8
#define MAX_THREADS 64

struct pread_state {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a batch was queued, or stop */
	pthread_cond_t done; /* a request completed */
	ts__io_batch *head, *tail;
	int stop;
	int nthreads;
	pthread_t threads[MAX_THREADS];
	struct ts__io *io;
};

static void read_one(struct ts__io *io, ts__io_req *q)
{
	size_t got = 0;

	while (got < q->len) {
		ssize_t n = pread(io->fd, (char *)q->buf + got, q->len - got, (off_t)(q->offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			q->res = -errno;
			return;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	q->res = (ssize_t)got;
}

/* Claim the next request of the queue's head batch (lock held). */
static ts__io_batch *claim_locked(struct pread_state *p, ts__io_batch *only, size_t *idx)
{
	ts__io_batch *b = p->head;

	if (only) {
		/* the waiter claims only from its own batch, wherever it is in the queue */
		size_t i = atomic_load(&only->claim);
		if (i >= only->n)
			return NULL;
		b = only;
	}
	if (!b)
		return NULL;
	*idx = atomic_fetch_add(&b->claim, 1);
	if (*idx + 1 >= b->n) {
		/* invariant 1: unlink it */
		ts__io_batch **pp = &p->head, *prev = NULL;
		while (*pp && *pp != b) {
			prev = *pp;
			pp = &(*pp)->qnext;
		}
		if (*pp) {
			*pp = b->qnext;
			if (p->tail == b)
				p->tail = prev;
		}
		b->qnext = NULL;
	}
	return b;
}

static void complete_locked(struct pread_state *p, ts__io_batch *b)
{
	if (atomic_fetch_add(&b->done, 1) + 1 == b->n)
		pthread_cond_broadcast(&p->done);
}

static void *worker(void *arg)
{
	struct pread_state *p = arg;
	size_t idx;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		ts__io_batch *b;
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		b = claim_locked(p, NULL, &idx);
		pthread_mutex_unlock(&p->lock);
		read_one(p->io, &b->reqs[idx]);
		pthread_mutex_lock(&p->lock);
		complete_locked(p, b);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int pread_submit(struct ts__io *io, ts__io_batch *b)
{
	struct pread_state *p = io->priv;

	if (p->nthreads == 0)
		return 0;
	pthread_mutex_lock(&p->lock);
	b->qnext = NULL;
	if (p->tail)
		p->tail->qnext = b;
	else
		p->head = b;
	p->tail = b;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int pread_wait(struct ts__io *io, ts__io_batch *b)
{
	struct pread_state *p = io->priv;
	size_t idx;

	if (p->nthreads == 0) {
		for (size_t i = 0; i < b->n; i++)
			read_one(io, &b->reqs[i]);
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	while (claim_locked(p, b, &idx)) {
		pthread_mutex_unlock(&p->lock);
		read_one(io, &b->reqs[idx]);
		pthread_mutex_lock(&p->lock);
		complete_locked(p, b);
	}
	while (atomic_load(&b->done) < b->n)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void pread_destroy(struct ts__io *io)
{
	struct pread_state *p = io->priv;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p);
	io->priv = NULL;
}

static const struct ts__io_ops pread_ops = {
	.submit = pread_submit,
	.wait = pread_wait,
	.destroy = pread_destroy,
};

int ts__io_pread_init(struct ts__io *io)
{
	struct pread_state *p = calloc(1, sizeof(*p));
	long want = DEFAULT_THREADS;
	int rc = ts__env_int(&want, "TSTORE_IO_THREADS", 1, MAX_THREADS);

	if (rc < 0) {
		free(p);
		return rc;
	}
	if (!p)
		return ts__err(TS_ENOMEM, "pread backend: out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->io = io;
	io->priv = p;
	io->ops = &pread_ops;
	/* the caller is one reader; want - 1 helpers */
	for (int i = 0; i < want - 1; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
			break;
		p->nthreads++;
	}
	io->depth = p->nthreads + 1;
	return 0;
}
