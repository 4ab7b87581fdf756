/*
 * The worker pool (engine/pool.c).
 */
#ifndef TS_ENGINE_POOL_H
#define TS_ENGINE_POOL_H

#include <stdint.h>

struct ts__pool;

/** Create a pool of @p threads workers. */
int ts__pool_create(struct ts__pool **out, int threads);
void ts__pool_free(struct ts__pool *pool);

/** Run fn(ud, i) for i in [0, n) on the pool's workers and the calling thread; return the first
 *  non-zero result (by lowest i), or 0. Safe to call from several threads at once. */
int ts__pool_run(struct ts__pool *pool, uint64_t n, int (*fn)(void *ud, uint64_t i), void *ud);

#endif
