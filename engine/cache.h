/*
 * The read cache: the one interface the reader (engine/reader.c) uses for cached pages. Pages
 * are held decoded, keyed by (tensor id, page index, output dtype), or compressed (the verified
 * stored page, under the pseudo-dtype TS__CACHE_COMPRESSED), under one byte budget, sharded,
 * with refcounted entries. Which pages are admitted and evicted, whether pages are kept
 * compressed and which pages are read ahead is the policy's: a plug-in (ts__cache_policy) with
 * per-shard hooks, called by the cache's table, and per-cache hints, which the reader's
 * ts__cache_tensor/access/request/served/prefetched calls pass on. The files:
 *   engine/cache.c            the mechanism: table, budget, references, and this interface;
 *   engine/cache_residency.c  the policy: tiered residency (and decoded-only, decoded-lru);
 *   engine/cache_api.c        the store's cache set-up and every public ts_cache_* / profile call.
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
 *      a policy therefore needs no locking of its own and sees only its shard's entries. The
 *      hints are called with no shard lock held; a policy that keeps per-cache state locks it.
 *   4. A key is in a shard's table at most once.
 */
#ifndef TS_ENGINE_CACHE_H
#define TS_ENGINE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

struct ts__cache;

/* The cache key dtype of a compressed page (not a ts_dtype). */
#define TS__CACHE_COMPRESSED 0xC0u

/* The forms a page can be held in, cheapest to serve first. */
typedef enum ts__form {
	TS__FORM_DECODED = 0,    /* decoded elements in RAM */
	TS__FORM_COMPRESSED = 1, /* the stored page bytes in RAM */
	TS__FORM_STORAGE = 2,    /* only on storage */
	TS__FORM_COUNT
} ts__form;

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
	 * the residency policy's pricing and frequency sketch, engine/cache_residency.h). */
	void *(*create_arg)(uint64_t shard_budget, void *arg);
	void *arg;
	/*
	 * Optional hints, per cache rather than per shard, called with @p arg and no shard lock
	 * held (invariant 3): what the reader tells the cache (the ts__cache_* calls of the same
	 * names).
	 * A NULL hook, and keeps_compressed 0, give the plain cache's answers: nothing is kept
	 * compressed, nothing read ahead, every page counts as seen before.
	 */
	int keeps_compressed;
	void (*tensor)(void *arg, uint64_t tensor_id, ts_codec codec, uint64_t io_bytes,
		       uint64_t elements);
	int (*access)(void *arg, uint64_t tensor_id, uint64_t page);
	void (*request)(void *arg, uint64_t tensor_id, uint64_t first, uint64_t last,
			uint64_t page_count, uint64_t *ra_first, uint64_t *ra_count);
	void (*served)(void *arg, uint64_t tensor_id, ts__form form, uint64_t pages,
		       uint64_t elements, uint64_t decoded_bytes);
	void (*prefetched)(void *arg, uint64_t n);
} ts__cache_policy;

/* A doubly linked list of entries through their pol_prev/pol_next, most recent at the head: the
 * recency list a policy keeps (the LRU's, the residency policy's admission window). */
typedef struct ts__cache_list {
	ts__cache_entry *head; /* most recent */
	ts__cache_entry *tail; /* least recent */
} ts__cache_list;

static inline void ts__cache_list_unlink(ts__cache_list *l, ts__cache_entry *e)
{
	if (e->pol_prev)
		e->pol_prev->pol_next = e->pol_next;
	else
		l->head = e->pol_next;
	if (e->pol_next)
		e->pol_next->pol_prev = e->pol_prev;
	else
		l->tail = e->pol_prev;
	e->pol_prev = e->pol_next = NULL;
}

static inline void ts__cache_list_push(ts__cache_list *l, ts__cache_entry *e)
{
	e->pol_prev = NULL;
	e->pol_next = l->head;
	if (l->head)
		l->head->pol_prev = e;
	l->head = e;
	if (!l->tail)
		l->tail = e;
}

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

/*
 * Hints: what the reader tells the cache about its requests, passed on to the policy. Every
 * call accepts a NULL cache (then: the plain cache's answers).
 */

/** 1 if the cache is on and its policy keeps pages compressed too (the reader then looks them
 *  up and offers them under TS__CACHE_COMPRESSED). */
int ts__cache_keeps_compressed(const struct ts__cache *c);

/** Tensor @p tensor_id's pages, for pricing: codec, the aligned run read from storage for a full
 *  page, the elements of a full page. Called before a request's pages are accessed. */
void ts__cache_tensor(struct ts__cache *c, uint64_t tensor_id, ts_codec codec, uint64_t io_bytes,
		      uint64_t elements);

/** An access to page @p page of @p tensor_id (frequency). Not for read-ahead. 1 if the page was
 *  accessed before this access, so that caching it has shown a use (the reader asks it for the
 *  pages of bulk requests): one call, one lock, per page. */
int ts__cache_access(struct ts__cache *c, uint64_t tensor_id, uint64_t page);

/** A request covers pages [first, last] of @p tensor_id (of @p page_count pages): *ra_count
 *  pages from *ra_first to read ahead in the same I/O batch and keep compressed (often 0). */
void ts__cache_request(struct ts__cache *c, uint64_t tensor_id, uint64_t first, uint64_t last,
		       uint64_t page_count, uint64_t *ra_first, uint64_t *ra_count);

/** @p pages pages of @p tensor_id, of @p elements elements and @p decoded_bytes decoded in all,
 *  were served from @p form (counters, modelled time; the model is affine in both, so a sum of
 *  pages costs what its pages cost one by one). The reader reports a pool item's pages at once. */
void ts__cache_served(struct ts__cache *c, uint64_t tensor_id, ts__form form, uint64_t pages,
		      uint64_t elements, uint64_t decoded_bytes);

/** @p n pages were read ahead and cached compressed. */
void ts__cache_prefetched(struct ts__cache *c, uint64_t n);

#endif
