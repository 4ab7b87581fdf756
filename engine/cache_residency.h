/*
 * The read cache's policy (engine/cache_residency.c): tiered residency, which pages the cache
 * holds decoded, compressed, or not at all, within the cache's ONE byte budget.
 *
 * The cache (engine/cache.h) holds both forms as entries: a decoded page under its output dtype,
 * a compressed page (the verified stored page: header and payload) under the pseudo-dtype
 * TS__CACHE_COMPRESSED. The residency policy plugs into the cache's policy interface and decides
 * admission and eviction of both kinds by expected benefit per byte; through the interface's
 * hints the reader tells it which pages are accessed (frequency), how each tensor's pages are
 * priced, and what served each page. Only the store's cache set-up (engine/cache_api.c) calls
 * the functions below; the reader reaches the policy through the cache alone.
 *
 * Threads: every function may be called from any thread. The policy hooks run under the
 * cache's shard lock and take the residency lock inside it; the hints and the calls below take
 * only the residency lock. Lock order: shard lock, then residency lock; never the other way.
 */
#ifndef TS_ENGINE_CACHE_RESIDENCY_H
#define TS_ENGINE_CACHE_RESIDENCY_H

#include <stdint.h>

#include "engine/cache.h"
#include "engine/hierarchy.h"
#include "tstore.h"

typedef struct ts__residency ts__residency;

/**
 * Create the residency state for a cache of @p budget bytes under @p policy (DEFAULT resolves
 * TSTORE_CACHE_POLICY, else tiered), pricing with @p profile. @p seed drives eviction sampling:
 * the same calls with the same seed make the same decisions.
 */
int ts__residency_create(ts__residency **out, ts_cache_policy policy, uint64_t budget,
			 const ts_hw_profile *profile, uint64_t seed);
/* NULL accepted. The cache created with ts__residency_cache_policy() must be freed first. */
void ts__residency_free(ts__residency *r);

/** The policy in effect (never DEFAULT). */
ts_cache_policy ts__residency_policy(const ts__residency *r);

/** The cache policy to create the cache with (valid until ts__residency_free()): its hooks and
 *  hints; for decoded-lru the cache's own LRU hooks with this state's hints (counters). */
const ts__cache_policy *ts__residency_cache_policy(ts__residency *r);

/** Price decisions with @p profile from now on. */
void ts__residency_set_profile(ts__residency *r, const ts_hw_profile *profile);
void ts__residency_get_profile(ts__residency *r, ts_hw_profile *out);

/** Counters (the occupancy fields are filled from @p cache, which may be NULL). */
void ts__residency_stats(ts__residency *r, struct ts__cache *cache, ts_residency_stats *out);

/** Resolve TS_CACHE_POLICY_DEFAULT (TSTORE_CACHE_POLICY, else tiered); other policies stand
 *  for themselves. 0 or TS_EINVAL (a malformed TSTORE_CACHE_POLICY). */
int ts__residency_policy_resolve(ts_cache_policy *out, ts_cache_policy p);

#endif
