/*
 * The read cache's mechanism (see engine/cache.h for the interface and the invariants).
 *
 * The budget is split evenly over a power-of-two number of shards (one per 8 MiB of budget, at
 * most 16), each with its own lock, hash table and policy state. A key always maps to the same
 * shard, so a shard's lock protects everything about its entries: table links, reference counts,
 * the charge and the policy's state. Counters are atomics so that statistics need no lock.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/error.h"
#include "engine/cache.h"

#define MAX_SHARDS 16
#define BYTES_PER_SHARD (8ull << 20)
#define DEFAULT_BUDGET (256ull << 20)
#define ENTRY_HDR ((sizeof(ts__cache_entry) + 63) & ~(size_t)63)

struct shard {
	pthread_mutex_t lock;
	ts__cache_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	uint64_t budget;
	uint64_t charged; /* invariant 1: <= budget */
	void *pol;
} __attribute__((aligned(64)));

struct ts__cache {
	uint64_t budget;
	unsigned nshards;
	const ts__cache_policy *policy;
	struct shard shards[MAX_SHARDS];
	atomic_uint_fast64_t used;
	atomic_uint_fast64_t hits;
	atomic_uint_fast64_t misses;
	atomic_uint_fast64_t evictions;
};

/* -- the default policy: LRU over an intrusive list ---------------------------------------- */

static void *lru_create(uint64_t shard_budget)
{
	(void)shard_budget;
	return calloc(1, sizeof(ts__cache_list));
}

static void lru_destroy(void *state)
{
	free(state);
}

static int lru_admit(void *state, const ts__cache_key *key, size_t charge)
{
	(void)state;
	(void)key;
	(void)charge;
	return 1;
}

static void lru_inserted(void *state, ts__cache_entry *e)
{
	ts__cache_list_push(state, e);
}

static void lru_hit(void *state, ts__cache_entry *e)
{
	ts__cache_list_unlink(state, e);
	ts__cache_list_push(state, e);
}

static void lru_removed(void *state, ts__cache_entry *e)
{
	ts__cache_list_unlink(state, e);
}

static ts__cache_entry *lru_victim(void *state, const ts__cache_key *incoming, size_t charge)
{
	ts__cache_list *l = state;

	(void)incoming;
	(void)charge;
	return l->tail;
}

const ts__cache_policy ts__cache_policy_lru = {
	.name = "lru",
	.create = lru_create,
	.destroy = lru_destroy,
	.admit = lru_admit,
	.inserted = lru_inserted,
	.hit = lru_hit,
	.removed = lru_removed,
	.victim = lru_victim,
};

/* -- budget ---------------------------------------------------------------------------------- */

int ts__cache_budget_resolve(uint64_t *out, int64_t opt)
{
	int rc;

	*out = opt >= 0 ? (uint64_t)opt : DEFAULT_BUDGET;
	if (opt >= 0)
		return 0;
	rc = ts__env_bytes(out, "TSTORE_CACHE_BYTES");
	return rc < 0 ? rc : 0;
}

/* -- hashing --------------------------------------------------------------------------------- */

static uint64_t key_hash(const ts__cache_key *k)
{
	uint64_t h = k->tensor_id * 0x9E3779B97F4A7C15ull;

	h ^= (k->page + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
	h ^= (uint64_t)k->dtype << 56;
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ull;
	h ^= h >> 32;
	return h;
}

static int key_eq(const ts__cache_key *a, const ts__cache_key *b)
{
	return a->tensor_id == b->tensor_id && a->page == b->page && a->dtype == b->dtype;
}

static struct shard *shard_of(struct ts__cache *c, uint64_t h)
{
	return &c->shards[(h >> 60) & (c->nshards - 1)];
}

static ts__cache_entry **bucket_of(struct shard *s, uint64_t h)
{
	return &s->buckets[h & (s->nbuckets - 1)];
}

/* The entry of @p key (hash @p h) in shard @p s's table, or NULL. The shard's lock is held. */
static ts__cache_entry *find(struct shard *s, uint64_t h, const ts__cache_key *key)
{
	ts__cache_entry *e;

	for (e = *bucket_of(s, h); e; e = e->hnext)
		if (key_eq(&e->key, key))
			break;
	return e;
}

static void table_grow(struct shard *s)
{
	size_t n = s->nbuckets * 2;
	ts__cache_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* keep the longer chains; still correct */
	for (size_t i = 0; i < s->nbuckets; i++) {
		ts__cache_entry *e = s->buckets[i], *next;
		for (; e; e = next) {
			next = e->hnext;
			size_t j = key_hash(&e->key) & (n - 1);
			e->hnext = b[j];
			b[j] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

/* -- entries (all with the shard lock held) ----------------------------------------------- */

static void entry_free_locked(struct ts__cache *c, struct shard *s, ts__cache_entry *e)
{
	s->charged -= e->charge;
	atomic_fetch_sub(&c->used, e->charge);
	free(e);
}

static void entry_unref_locked(struct ts__cache *c, struct shard *s, ts__cache_entry *e)
{
	if (--e->refs == 0)
		entry_free_locked(c, s, e);
}

static void table_remove_locked(struct ts__cache *c, struct shard *s, ts__cache_entry *e)
{
	ts__cache_entry **p = bucket_of(s, key_hash(&e->key));

	while (*p && *p != e)
		p = &(*p)->hnext;
	if (*p)
		*p = e->hnext;
	e->hnext = NULL;
	e->in_table = 0;
	s->count--;
	c->policy->removed(s->pol, e);
	entry_unref_locked(c, s, e);
}

/* -- the interface --------------------------------------------------------------------------- */

int ts__cache_create_with_policy(struct ts__cache **out, uint64_t budget,
				 const ts__cache_policy *policy)
{
	struct ts__cache *c;
	unsigned n = 1;

	*out = NULL;
	if (budget == UINT64_MAX) {
		int rc = ts__cache_budget_resolve(&budget, -1);
		if (rc < 0)
			return rc;
	}
	if (!policy)
		policy = &ts__cache_policy_lru;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ts__err(TS_ENOMEM, "decoded-page cache: out of memory");
	c->budget = budget;
	c->policy = policy;
	while (n < MAX_SHARDS && budget / (n * 2) >= BYTES_PER_SHARD)
		n *= 2;
	c->nshards = n;
	for (unsigned i = 0; i < n; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_init(&s->lock, NULL);
		s->budget = budget / n + (i == 0 ? budget % n : 0);
		s->nbuckets = 64;
		s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
		s->pol = policy->create_arg ? policy->create_arg(s->budget, policy->arg)
					    : policy->create(s->budget);
		if (!s->buckets || !s->pol) {
			c->nshards = i + 1;
			ts__cache_free(c);
			return ts__err(TS_ENOMEM, "decoded-page cache: out of memory");
		}
	}
	*out = c;
	return 0;
}

int ts__cache_create(struct ts__cache **out, uint64_t budget)
{
	return ts__cache_create_with_policy(out, budget, NULL);
}

void ts__cache_free(struct ts__cache *c)
{
	if (!c)
		return;
	ts__cache_clear(c);
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		if (s->pol)
			c->policy->destroy(s->pol);
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(c);
}

uint64_t ts__cache_budget(const struct ts__cache *c)
{
	return c ? c->budget : 0;
}

ts__cache_entry *ts__cache_lookup(struct ts__cache *c, const ts__cache_key *key)
{
	uint64_t h;
	struct shard *s;
	ts__cache_entry *e;

	if (!c)
		return NULL;
	/* an empty cache (a cold load caches nothing it has not seen before) answers without a
	 * lock; an entry being inserted meanwhile is at worst missed */
	if (c->budget == 0 || atomic_load_explicit(&c->used, memory_order_relaxed) == 0) {
		atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
		return NULL;
	}
	h = key_hash(key);
	s = shard_of(c, h);
	pthread_mutex_lock(&s->lock);
	e = find(s, h, key);
	if (e) {
		e->refs++;
		c->policy->hit(s->pol, e);
	}
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add_explicit(e ? &c->hits : &c->misses, 1, memory_order_relaxed);
	return e;
}

int ts__cache_contains(struct ts__cache *c, const ts__cache_key *key)
{
	uint64_t h;
	struct shard *s;
	ts__cache_entry *e;

	if (!c || c->budget == 0)
		return 0;
	h = key_hash(key);
	s = shard_of(c, h);
	pthread_mutex_lock(&s->lock);
	e = find(s, h, key);
	pthread_mutex_unlock(&s->lock);
	return e != NULL;
}

ts__cache_entry *ts__cache_alloc(struct ts__cache *c, const ts__cache_key *key, size_t bytes)
{
	uint64_t h;
	struct shard *s;
	ts__cache_entry *e = NULL;
	size_t charge;

	if (!c || c->budget == 0 || bytes > SIZE_MAX - ENTRY_HDR - 64)
		return NULL;
	charge = ENTRY_HDR + ((bytes + 63) & ~(size_t)63);
	h = key_hash(key);
	s = shard_of(c, h);
	pthread_mutex_lock(&s->lock);
	if (charge > s->budget || !c->policy->admit(s->pol, key, charge))
		goto out;
	while (s->charged + charge > s->budget) {
		ts__cache_entry *v = c->policy->victim(s->pol, key, charge);
		if (!v)
			goto out;
		atomic_fetch_add_explicit(&c->evictions, 1, memory_order_relaxed);
		table_remove_locked(c, s, v);
	}
	e = aligned_alloc(64, charge);
	if (!e)
		goto out;
	memset(e, 0, sizeof(*e));
	e->key = *key;
	e->bytes = bytes;
	e->charge = charge;
	e->data = (uint8_t *)e + ENTRY_HDR;
	e->refs = 1;
	e->shard = (uint32_t)(s - c->shards);
	s->charged += charge;
	atomic_fetch_add(&c->used, charge);
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

void ts__cache_insert(struct ts__cache *c, ts__cache_entry *e)
{
	struct shard *s = &c->shards[e->shard];
	uint64_t h = key_hash(&e->key);
	ts__cache_entry **b, *o;

	pthread_mutex_lock(&s->lock);
	b = bucket_of(s, h);
	o = find(s, h, &e->key);
	if (!o && !e->in_table) {
		e->refs++;
		e->in_table = 1;
		e->hnext = *b;
		*b = e;
		s->count++;
		c->policy->inserted(s->pol, e);
		if (s->count > s->nbuckets)
			table_grow(s);
	}
	pthread_mutex_unlock(&s->lock);
}

void ts__cache_release(struct ts__cache *c, ts__cache_entry *e)
{
	struct shard *s;

	if (!e)
		return;
	s = &c->shards[e->shard];
	pthread_mutex_lock(&s->lock);
	entry_unref_locked(c, s, e);
	pthread_mutex_unlock(&s->lock);
}

void ts__cache_clear(struct ts__cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_lock(&s->lock);
		for (size_t b = 0; b < s->nbuckets; b++)
			while (s->buckets[b])
				table_remove_locked(c, s, s->buckets[b]);
		pthread_mutex_unlock(&s->lock);
	}
}

void ts__cache_stats(struct ts__cache *c, ts_cache_stats *out)
{
	if (!c)
		return;
	out->budget_bytes = c->budget;
	out->used_bytes = atomic_load(&c->used);
	out->hits = atomic_load(&c->hits);
	out->misses = atomic_load(&c->misses);
	out->evictions = atomic_load(&c->evictions);
}

/* -- hints, passed on to the policy ----------------------------------------------------------- */

int ts__cache_keeps_compressed(const struct ts__cache *c)
{
	return c && c->budget && c->policy->keeps_compressed;
}

void ts__cache_tensor(struct ts__cache *c, uint64_t tensor_id, ts_codec codec, uint64_t io_bytes,
		      uint64_t elements)
{
	if (c && c->policy->tensor)
		c->policy->tensor(c->policy->arg, tensor_id, codec, io_bytes, elements);
}

int ts__cache_access(struct ts__cache *c, uint64_t tensor_id, uint64_t page)
{
	if (c && c->policy->access)
		return c->policy->access(c->policy->arg, tensor_id, page);
	return 1;
}

void ts__cache_request(struct ts__cache *c, uint64_t tensor_id, uint64_t first, uint64_t last,
		       uint64_t page_count, uint64_t *ra_first, uint64_t *ra_count)
{
	*ra_first = *ra_count = 0;
	if (c && c->policy->request)
		c->policy->request(c->policy->arg, tensor_id, first, last, page_count, ra_first,
				   ra_count);
}

void ts__cache_served(struct ts__cache *c, uint64_t tensor_id, ts__form form, uint64_t pages,
		      uint64_t elements, uint64_t decoded_bytes)
{
	if (c && c->policy->served && pages)
		c->policy->served(c->policy->arg, tensor_id, form, pages, elements, decoded_bytes);
}

void ts__cache_prefetched(struct ts__cache *c, uint64_t n)
{
	if (c && c->policy->prefetched)
		c->policy->prefetched(c->policy->arg, n);
}
