/*
 * The decoded-page cache: decoded pages keyed by (tensor id, page index, output dtype) under a
 * byte budget, sharded, with refcounted entries; and the small policy interface that decides
 * admission and eviction, so that another residency policy can be plugged in without touching
 * the cache's locking, accounting or lifetime rules.
 *
 * Invariants
 *   1. The bytes charged for every allocated entry (header + data), whether in the table, pinned
 *      after eviction, or not yet inserted, never exceed the budget: an entry is allocated only
 *      after its charge was reserved in its shard, and each shard's charge stays within its
 *      share of the budget (the shares sum to the budget).
 *   2. An entry is freed only when its reference count drops to zero: the table holds one
 *      reference while the entry is in it, each ts__cache_lookup()/ts__cache_alloc() caller holds
 *      one until ts__cache_release(). An entry in use is never freed, only unlinked.
 *   3. Every policy hook is called with its shard's lock held, on the policy state of that shard;
 *      a policy therefore needs no locking of its own and sees only its shard's entries.
 *   4. A key is in a shard's table at most once.
 */
#ifndef TS_ENGINE_CACHE_H
#define TS_ENGINE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

struct ts__cache;

typedef struct ts__cache_key {
	uint64_t tensor_id;
	uint64_t page;
	uint32_t dtype; /* ts_dtype of the decoded data */
} ts__cache_key;

typedef struct ts__cache_entry {
	ts__cache_key key;
	size_t bytes;   /* bytes of decoded data at @data */
	size_t charge;  /* bytes charged against the budget (header + data) */
	void *data;     /* 64-byte aligned; written by the allocating caller before insert */
	/* private to cache.c */
	struct ts__cache_entry *hnext;
	uint32_t refs;
	uint32_t in_table;
	uint32_t shard;
	/* private to the policy of the entry's shard */
	struct ts__cache_entry *pol_prev;
	struct ts__cache_entry *pol_next;
	uint64_t pol_word;
} ts__cache_entry;

/*
 * An admission/eviction policy. One instance (state) per shard; every hook is called with the
 * shard's lock held (invariant 3). The cache calls, for one shard:
 *   admit     before reserving room for a new entry: 1 to admit it, 0 to refuse (the caller then
 *             decodes without caching);
 *   inserted  when an entry enters the table;
 *   hit       when a lookup finds an entry;
 *   removed   when an entry leaves the table (eviction, clear, duplicate);
 *   victim    when room is needed for @p incoming: the entry to evict, or NULL if the policy
 *             would rather refuse the newcomer (the allocation then fails). It may return an
 *             entry in use (e->refs > 1): it leaves the table at once and its bytes are freed
 *             when its last user releases it.
 */
typedef struct ts__cache_policy {
	const char *name;
	void *(*create)(uint64_t shard_budget);
	void (*destroy)(void *state);
	int (*admit)(void *state, const ts__cache_key *key, size_t charge);
	void (*inserted)(void *state, ts__cache_entry *e);
	void (*hit)(void *state, ts__cache_entry *e);
	void (*removed)(void *state, ts__cache_entry *e);
	ts__cache_entry *(*victim)(void *state, const ts__cache_key *incoming, size_t charge);
	/* Optional: when set, used instead of create, with @p arg (per-store policy state, e.g.
	 * the residency policy's pricing and frequency sketch, engine/residency.h). */
	void *(*create_arg)(uint64_t shard_budget, void *arg);
	void *arg;
} ts__cache_policy;

/** The default policy: admit everything, evict the least recently used entry. */
extern const ts__cache_policy ts__cache_policy_lru;

/** The budget for an open option: @p opt >= 0 as is; -1: TSTORE_CACHE_BYTES from the
 *  environment (common/env.h: ts__env_bytes) or 256 MiB. 0 or TS_EINVAL (a malformed variable). */
int ts__cache_budget_resolve(uint64_t *out, int64_t opt);

/** Create a cache of @p budget bytes with @p policy (NULL: LRU). A budget of UINT64_MAX means
 *  the default (ts__cache_budget_resolve(-1)); 0 turns the cache off (every lookup misses,
 *  every allocation is refused). 0, TS_ENOMEM or TS_EINVAL (a malformed TSTORE_CACHE_BYTES). */
int ts__cache_create_with_policy(struct ts__cache **out, uint64_t budget,
				 const ts__cache_policy *policy);

/** Find @p key; on a hit the entry is returned pinned (release it), NULL on a miss. Counts. */
ts__cache_entry *ts__cache_lookup(struct ts__cache *c, const ts__cache_key *key);

/** 1 if @p key is in the cache. Counts nothing and tells the policy nothing (read-ahead uses it
 *  to skip pages already cached). */
int ts__cache_contains(struct ts__cache *c, const ts__cache_key *key);

/** Reserve room for and allocate an entry of @p bytes for @p key, evicting as the policy says.
 *  Returns it pinned and outside the table (fill data, then ts__cache_insert()), or NULL when the
 *  cache is off, the policy refuses, or there is no room without exceeding the budget. */
ts__cache_entry *ts__cache_alloc(struct ts__cache *c, const ts__cache_key *key, size_t bytes);

/** Publish an entry from ts__cache_alloc(). If the key is already present (another thread got
 *  there first) the table keeps the older entry. The caller still holds its reference. */
void ts__cache_insert(struct ts__cache *c, ts__cache_entry *e);

/** Drop a reference; frees the entry (and its charge) when it was the last. NULL accepted. */
void ts__cache_release(struct ts__cache *c, ts__cache_entry *e);

/** Remove every entry from the table (entries in use are freed on their last release). */
void ts__cache_clear(struct ts__cache *c);

/** Budget, used bytes, hits, misses, evictions (the other fields are left as they are). */
void ts__cache_stats(struct ts__cache *c, ts_cache_stats *out);

/** The budget in bytes (0 when off). */
uint64_t ts__cache_budget(const struct ts__cache *c);

/** Create the decoded-page cache with @p budget bytes (0: off) and the default policy. */
int ts__cache_create(struct ts__cache **out, uint64_t budget);
void ts__cache_free(struct ts__cache *cache);

#endif
