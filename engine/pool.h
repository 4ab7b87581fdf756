/*
 * The worker pool (engine/pool.c).
 */
#ifndef TS_ENGINE_POOL_H
#define TS_ENGINE_POOL_H

#include <pthread.h>
#include <stdint.h>

struct ts__pool;

/* A job: items fn(ud, 0 .. n-1). Its fields belong to engine/pool.c. */
typedef struct ts__pool_job {
	int (*fn)(void *ud, uint64_t i);
	void *ud;
	uint64_t n;
	uint64_t next;   /* next index to claim */
	uint64_t done;   /* items finished */
	uint64_t err_at; /* lowest failing index, or n */
	int err;         /* its result */
	int queued;      /* on the pool's list (else the caller runs every item) */
	char msg[512];   /* the failing item's last-error message, for the submitting thread */
	pthread_cond_t finished;
	struct ts__pool_job *prev, *nextjob;
} ts__pool_job;

/** Create a pool of @p threads workers. */
int ts__pool_create(struct ts__pool **out, int threads);
void ts__pool_free(struct ts__pool *pool);

/** Run fn(ud, i) for i in [0, n) on the pool's workers and the calling thread; return the first
 *  non-zero result (by lowest i), or 0. Safe to call from several threads at once. */
int ts__pool_run(struct ts__pool *pool, uint64_t n, int (*fn)(void *ud, uint64_t i), void *ud);

/** ts__pool_run() in two halves, for work that overlaps the caller's: start queues @p j (in the
 *  caller's memory until finish returns) and returns at once, the workers taking its items;
 *  finish runs the items still unclaimed on the calling thread, waits for the rest and returns
 *  what ts__pool_run() would. Every start is followed by one finish, on the same thread. */
int ts__pool_start(struct ts__pool *pool, ts__pool_job *j, uint64_t n,
		   int (*fn)(void *ud, uint64_t i), void *ud);
int ts__pool_finish(struct ts__pool *pool, ts__pool_job *j);

#endif
