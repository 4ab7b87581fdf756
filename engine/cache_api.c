/*
 * The store's read cache, its set-up and every public function about it: which policy and
 * hardware profile the cache (engine/cache.h) runs with, the profile file next to the store,
 * calibration, and the "Read cache" / "Tiered residency" functions of include/tstore.h
 * (ts_cache_stats_get, ts_cache_clear, ts_cache_configure, ts_residency_stats_get,
 * ts_store_profile_get/set, ts_store_calibrate).
 *
 * Invariants
 *   1. st->cache and st->residencyidency are created together and replaced together
 *      (ts_cache_configure), the cache first freed, since its policy refers to st->residencyidency.
 *   2. A missing or unreadable profile file never stops a store from opening: the built-in
 *      "blackwell" profile prices decisions then, and ts_store_profile_get() says it is not
 *      measured.
 */
#include "config.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "engine/cache.h"
#include "engine/cache_api.h"
#include "engine/cache_residency.h"
#include "engine/handle.h"
#include "engine/io.h"

#define DEFAULT_SEED 0x7469657265640001ull /* "tiered" */

static void load_profile(ts_store *st, ts_hw_profile *p, int *measured)
{
	char path[PATH_MAX];

	*measured = 0;
	if (st->path && ts_hw_profile_path(path, sizeof(path), st->path) == 0 &&
	    ts_hw_profile_load(p, path) == 0) {
		*measured = 1;
		return;
	}
	ts_error_clear(); /* invariant 2: not an error of the open */
	ts_hw_profile_builtin(p, "blackwell");
}

static int setup(ts_store *st, ts_cache_policy policy, uint64_t budget, const ts_hw_profile *p)
{
	struct ts__residency *res = NULL;
	struct ts__cache *cache = NULL;
	int rc = ts__residency_create(&res, policy, budget, p, DEFAULT_SEED);

	if (rc)
		return rc;
	rc = ts__cache_create_with_policy(&cache, budget, ts__residency_cache_policy(res));
	if (rc) {
		ts__residency_free(res);
		return rc;
	}
	st->residency = res;
	st->cache = cache;
	return 0;
}

int ts__store_cache_open(ts_store *st, int64_t cache_bytes)
{
	ts_hw_profile p;
	uint64_t budget;
	int rc = ts__cache_budget_resolve(&budget, cache_bytes);

	if (rc < 0)
		return rc;
	load_profile(st, &p, &st->profile_measured);
	return setup(st, TS_CACHE_POLICY_DEFAULT, budget, &p);
}

void ts__store_cache_close(ts_store *st)
{
	ts__cache_free(st->cache); /* invariant 1 */
	ts__residency_free(st->residency);
	st->cache = NULL;
	st->residency = NULL;
}

TS_API void ts_cache_stats_get(ts_cache_stats *out, ts_store *st)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!st)
		return;
	ts__cache_stats(st->cache, out);
	if (st->io_ctx) {
		out->storage_reads = atomic_load(&st->io_ctx->reads);
		out->storage_bytes = atomic_load(&st->io_ctx->bytes);
		out->map_fallbacks = atomic_load(&st->io_ctx->map_fallbacks);
	}
}

TS_API void ts_cache_clear(ts_store *st)
{
	if (st)
		ts__cache_clear(st->cache);
}

TS_API int ts_residency_stats_get(ts_residency_stats *out, ts_store *st)
{
	if (!st || !out)
		return ts__err(TS_EINVAL, "ts_residency_stats_get: NULL argument");
	memset(out, 0, sizeof(*out));
	if (!st->residency)
		return 0;
	ts__residency_stats(st->residency, st->cache, out);
	return 0;
}

TS_API int ts_cache_configure(ts_store *st, ts_cache_policy policy, int64_t budget)
{
	ts_hw_profile p;
	uint64_t b;
	struct ts__residency *old_res;
	struct ts__cache *old_cache;
	int rc;

	if (!st)
		return ts__err(TS_EINVAL, "ts_cache_configure: NULL store");
	if ((unsigned)policy > TS_CACHE_POLICY_DECODED_ONLY)
		return ts__err(TS_EINVAL, "ts_cache_configure: unknown policy %d", (int)policy);
	if (budget < -1)
		return ts__err(TS_EINVAL, "ts_cache_configure: budget %lld", (long long)budget);
	b = budget == -1 ? ts__cache_budget(st->cache) : (uint64_t)budget;
	if (st->residency)
		ts__residency_get_profile(st->residency, &p);
	else
		load_profile(st, &p, &st->profile_measured);
	old_res = st->residency;
	old_cache = st->cache;
	if ((rc = setup(st, policy, b, &p)))
		return rc; /* the old cache stays in place */
	ts__cache_free(old_cache);
	ts__residency_free(old_res);
	return 0;
}

TS_API int ts_store_profile_get(ts_hw_profile *out, int *measured, ts_store *st)
{
	if (!st || !out)
		return ts__err(TS_EINVAL, "ts_store_profile_get: NULL argument");
	if (st->residency)
		ts__residency_get_profile(st->residency, out);
	else
		load_profile(st, out, &st->profile_measured);
	if (measured)
		*measured = st->profile_measured;
	return 0;
}

TS_API int ts_store_profile_set(ts_store *st, const ts_hw_profile *p)
{
	if (!st || !p)
		return ts__err(TS_EINVAL, "ts_store_profile_set: NULL argument");
	if (st->residency)
		ts__residency_set_profile(st->residency, p);
	st->profile_measured = p->calibrated_at != 0;
	return 0;
}

TS_API int ts_store_calibrate(ts_hw_profile *out, ts_store *st, const ts_calibrate_opts *opts)
{
	ts_calibrate_opts o;
	ts_hw_profile p;
	char path[PATH_MAX];
	int rc;

	if (!st)
		return ts__err(TS_EINVAL, "ts_store_calibrate: NULL store");
	if (opts)
		o = *opts;
	else
		ts_calibrate_opts_init(&o);
	if (!o.path)
		o.path = st->path;
	if (o.io == TS_IO_DEFAULT)
		o.io = st->io;
	if ((rc = ts_hw_profile_measure(&p, &o)))
		return rc;
	if ((rc = ts_hw_profile_path(path, sizeof(path), st->path)))
		return rc;
	if ((rc = ts_hw_profile_save(&p, path)))
		return rc;
	ts_store_profile_set(st, &p);
	if (out)
		*out = p;
	return 0;
}
