/*
 * Tiered residency (engine/residency.c): which pages the read cache holds decoded, compressed,
 * or not at all, within the cache's ONE byte budget.
 *
 * The cache (engine/cache.c) holds both forms as entries: a decoded page under its output dtype,
 * a compressed page (the verified stored page: header and payload) under the pseudo-dtype
 * TS__CACHE_COMPRESSED. The residency policy plugs into the cache's policy interface and decides
 * admission and eviction of both kinds by expected benefit per byte; the reader tells it which
 * pages are accessed (frequency), how each tensor's pages are priced, and what served each page.
 *
 * Threads: every function may be called from any thread. The policy hooks run under the
 * cache's shard lock and take the residency lock inside it; the reader's calls take only the
 * residency lock. Lock order: shard lock, then residency lock; never the other way.
 */
#ifndef TS_ENGINE_RESIDENCY_H
#define TS_ENGINE_RESIDENCY_H

#include <stdint.h>

#include "engine/cache.h"
#include "engine/hierarchy.h"
#include "tstore.h"

/* The cache key dtype of a compressed page (not a ts_dtype). */
#define TS__CACHE_COMPRESSED 0xC0u

typedef struct ts__res ts__res;

/**
 * Create the residency state for a cache of @p budget bytes under @p policy (DEFAULT resolves
 * TSTORE_CACHE_POLICY, else tiered), pricing with @p profile. @p seed drives eviction sampling:
 * the same calls with the same seed make the same decisions.
 */
int ts__res_create(ts__res **out, ts_cache_policy policy, uint64_t budget,
		   const ts_hw_profile *profile, uint64_t seed);
/* NULL accepted. The cache created with ts__res_cache_policy() must be freed first. */
void ts__res_free(ts__res *r);

/** The policy in effect (never DEFAULT). */
ts_cache_policy ts__res_policy(const ts__res *r);

/** The cache policy to create the cache with (valid until ts__res_free()); for decoded-lru the
 *  cache's own LRU. */
const ts__cache_policy *ts__res_cache_policy(ts__res *r);

/** 1 if the policy keeps compressed pages (tiered). */
int ts__res_keeps_compressed(const ts__res *r);

/** Price decisions with @p profile from now on. */
void ts__res_set_profile(ts__res *r, const ts_hw_profile *profile);
void ts__res_get_profile(ts__res *r, ts_hw_profile *out);

/**
 * Describe tensor @p tensor_id's pages for pricing: codec, the aligned run read from storage for
 * a full page, and the elements of a full page. Called by the reader before it accesses pages of
 * the tensor (cheap when nothing changed).
 */
void ts__res_tensor(ts__res *r, uint64_t tensor_id, ts_codec codec, uint64_t io_bytes,
		    uint64_t elements);

/** An access to page @p page of @p tensor_id (frequency sketch). Not for read-ahead. */
void ts__res_access(ts__res *r, uint64_t tensor_id, uint64_t page);

/**
 * 1 if page @p page of @p tensor_id was accessed before its current access (the sketch counts
 * at least two accesses), so that caching it has shown a use; always 1 for decoded-lru, which
 * keeps no sketch. The reader asks this for the pages of bulk requests (engine/reader.c).
 */
int ts__res_seen_before(ts__res *r, uint64_t tensor_id, uint64_t page);

/** Page @p page of @p tensor_id, of @p elements elements and @p decoded_bytes decoded, was served
 *  from @p form: counters and modelled time. */
void ts__res_served(ts__res *r, uint64_t tensor_id, ts__form form, uint64_t elements,
		    uint64_t decoded_bytes);

/**
 * A request covers pages [first, last] of tensor @p tensor_id (of @p page_count pages). When it
 * continues a sequential pattern, *ra_count pages from *ra_first should be read ahead in the same
 * I/O batch and kept compressed (tiered policy only; otherwise *ra_count is 0).
 */
void ts__res_request(ts__res *r, uint64_t tensor_id, uint64_t first, uint64_t last,
		     uint64_t page_count, uint64_t *ra_first, uint64_t *ra_count);

/** @p n pages were read ahead and cached. */
void ts__res_prefetched(ts__res *r, uint64_t n);

/** Counters (the occupancy fields are filled from @p cache, which may be NULL). */
void ts__res_stats(ts__res *r, struct ts__cache *cache, ts_residency_stats *out);

/** Resolve TS_CACHE_POLICY_DEFAULT (TSTORE_CACHE_POLICY, else tiered); other policies stand
 *  for themselves. 0 or TS_EINVAL (a malformed TSTORE_CACHE_POLICY). */
int ts__res_policy_resolve(ts_cache_policy *out, ts_cache_policy p);

#endif
