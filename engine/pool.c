/*
 * The worker pool: threads - 1 workers plus each calling thread run the items of submitted
 * jobs. Used by the writer (encoding pages), the reader (decoding pages) and the pread backend
 * (a pool of its own, of I/O threads: engine/io_pread.c).
 *
 * Invariants
 *   1. A job lives in its submitter's memory; it stays on the pool's list until every one of its
 *      items has been claimed, and ts__pool_run() / ts__pool_finish() return only after every
 *      claimed item has finished, so no worker touches a job after they returned.
 *   2. The calling thread works on its own job, so a job always makes progress even when every
 *      worker is busy (and a job submitted from inside a worker cannot deadlock).
 *   3. The last-error message of the failing item is set on the submitting thread.
 *   4. After an item fails, items with a higher index are claimed but not run; items with a
 *      lower index still run, so the result is that of the lowest failing index.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "engine/pool.h"

typedef ts__pool_job job;

struct ts__pool {
	pthread_mutex_t lock;
	pthread_cond_t work;
	job *head, *tail; /* jobs with unclaimed items */
	int stop;
	int nthreads;
	pthread_t *threads;
};

static void unlink_job(struct ts__pool *p, job *j)
{
	if (j->prev)
		j->prev->nextjob = j->nextjob;
	else
		p->head = j->nextjob;
	if (j->nextjob)
		j->nextjob->prev = j->prev;
	else
		p->tail = j->prev;
	j->prev = j->nextjob = NULL;
}

/* With p->lock held: claim an item of @p j; returns 0 if none is left. */
static int claim(struct ts__pool *p, job *j, uint64_t *i)
{
	if (j->next >= j->n)
		return 0;
	*i = j->next++;
	if (j->next == j->n)
		unlink_job(p, j);
	return 1;
}

/* With p->lock held: run item @p i of @p j (dropping the lock meanwhile) and account for it. */
static void run_item(struct ts__pool *p, job *j, uint64_t i)
{
	int skip = i > j->err_at, rc = 0;

	pthread_mutex_unlock(&p->lock);
	if (!skip)
		rc = j->fn(j->ud, i);
	pthread_mutex_lock(&p->lock);
	if (rc != 0 && i < j->err_at) {
		j->err_at = i;
		j->err = rc;
		snprintf(j->msg, sizeof(j->msg), "%s", ts_error_last());
	}
	if (++j->done == j->n)
		pthread_cond_broadcast(&j->finished);
}

static void *worker(void *arg)
{
	struct ts__pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		uint64_t i;
		job *j;

		while (!p->stop && !p->head)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		j = p->head;
		if (claim(p, j, &i))
			run_item(p, j, i);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int ts__pool_create(struct ts__pool **out, int threads)
{
	struct ts__pool *p;

	*out = NULL;
	if (threads < 1)
		threads = 1;
	p = calloc(1, sizeof(*p));
	if (!p)
		return ts__err(TS_ENOMEM, "creating the worker pool: out of memory");
	p->threads = calloc((size_t)threads, sizeof(pthread_t));
	if (!p->threads || pthread_mutex_init(&p->lock, NULL) ||
	    pthread_cond_init(&p->work, NULL)) {
		free(p->threads);
		free(p);
		return ts__err(TS_ENOMEM, "creating the worker pool: out of memory");
	}
	for (int i = 0; i < threads - 1; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			ts__pool_free(p);
			return ts__err(TS_ENOMEM, "creating the worker pool: cannot start thread %d",
				       i + 1);
		}
		p->nthreads++;
	}
	*out = p;
	return 0;
}

void ts__pool_free(struct ts__pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

int ts__pool_start(struct ts__pool *p, ts__pool_job *j, uint64_t n,
		   int (*fn)(void *ud, uint64_t i), void *ud)
{
	memset(j, 0, sizeof(*j));
	j->fn = fn;
	j->ud = ud;
	j->n = n;
	j->err_at = n;
	if (!p || p->nthreads == 0 || n == 0)
		return 0; /* the caller runs them all in ts__pool_finish() */
	if (pthread_cond_init(&j->finished, NULL))
		return 0; /* likewise, without help */
	j->queued = 1;
	pthread_mutex_lock(&p->lock);
	j->prev = p->tail;
	if (p->tail)
		p->tail->nextjob = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int ts__pool_finish(struct ts__pool *p, ts__pool_job *j)
{
	uint64_t i;

	if (!j->queued) {
		for (i = 0; i < j->n; i++) {
			int rc = j->fn(j->ud, i);
			if (rc)
				return rc;
		}
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	while (claim(p, j, &i))
		run_item(p, j, i);
	while (j->done < j->n)
		pthread_cond_wait(&j->finished, &p->lock);
	pthread_mutex_unlock(&p->lock);
	pthread_cond_destroy(&j->finished);
	if (j->err < 0)
		return ts__err(j->err, "%s", j->msg);
	return j->err;
}

int ts__pool_run(struct ts__pool *p, uint64_t n, int (*fn)(void *ud, uint64_t i), void *ud)
{
	job j;

	/* one item: not worth waking a worker */
	ts__pool_start(n == 1 ? NULL : p, &j, n, fn, ud);
	return ts__pool_finish(p, &j);
}
