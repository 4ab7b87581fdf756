/*
 * The store's residency set-up: which policy and hardware profile its read cache runs with, the
 * profile file next to the store, calibration, and the public functions of the "Tiered
 * residency" section of include/tstore.h.
 *
 * Invariants
 *   1. st->cache and st->res are created together and replaced together (ts_cache_configure),
 *      the cache first freed, since its policy refers to st->res.
 *   2. A missing or unreadable profile file never stops a store from opening: the built-in
 *      "blackwell" profile prices decisions then, and ts_store_profile_get() says it is not
 *      measured.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "engine/cache.h"
#include "engine/handle.h"
#include "engine/residency.h"
#include "engine/tiering.h"

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
	struct ts__res *res = NULL;
	struct ts__cache *cache = NULL;
	int rc = ts__res_create(&res, policy, budget, p, DEFAULT_SEED);

	if (rc)
		return rc;
	rc = ts__cache_create_with_policy(&cache, budget, ts__res_cache_policy(res));
	if (rc) {
		ts__res_free(res);
		return rc;
	}
	st->res = res;
	st->cache = cache;
	return 0;
}

int ts__tier_open(ts_store *st, int64_t cache_bytes)
{
	ts_hw_profile p;
	uint64_t budget;
	int rc = ts__cache_budget_resolve(&budget, cache_bytes);

	if (rc < 0)
		return rc;
	load_profile(st, &p, &st->profile_measured);
	return setup(st, TS_CACHE_POLICY_DEFAULT, budget, &p);
}

void ts__tier_close(ts_store *st)
{
	ts__cache_free(st->cache); /* invariant 1 */
	ts__res_free(st->res);
	st->cache = NULL;
	st->res = NULL;
}

TS_API int ts_residency_stats_get(ts_residency_stats *out, ts_store *st)
{
	if (!st || !out)
		return ts__err(TS_EINVAL, "ts_residency_stats_get: NULL argument");
	memset(out, 0, sizeof(*out));
	if (!st->res)
		return 0;
	ts__res_stats(st->res, st->cache, out);
	return 0;
}

TS_API int ts_cache_configure(ts_store *st, ts_cache_policy policy, int64_t budget)
{
	ts_hw_profile p;
	uint64_t b;
	struct ts__res *old_res;
	struct ts__cache *old_cache;
	int rc;

	if (!st)
		return ts__err(TS_EINVAL, "ts_cache_configure: NULL store");
	if ((unsigned)policy > TS_CACHE_POLICY_DECODED_ONLY)
		return ts__err(TS_EINVAL, "ts_cache_configure: unknown policy %d", (int)policy);
	if (budget < -1)
		return ts__err(TS_EINVAL, "ts_cache_configure: budget %lld", (long long)budget);
	b = budget == -1 ? ts__cache_budget(st->cache) : (uint64_t)budget;
	if (st->res)
		ts__res_get_profile(st->res, &p);
	else
		load_profile(st, &p, &st->profile_measured);
	old_res = st->res;
	old_cache = st->cache;
	if ((rc = setup(st, policy, b, &p)))
		return rc; /* the old cache stays in place */
	ts__cache_free(old_cache);
	ts__res_free(old_res);
	return 0;
}

TS_API int ts_store_profile_get(ts_hw_profile *out, int *measured, ts_store *st)
{
	if (!st || !out)
		return ts__err(TS_EINVAL, "ts_store_profile_get: NULL argument");
	if (st->res)
		ts__res_get_profile(st->res, out);
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
	if (st->res)
		ts__res_set_profile(st->res, p);
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
