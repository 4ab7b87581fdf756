/*
 * Tests of the decoded-page cache: hits and misses, the byte budget (also under concurrent load),
 * pinned entries surviving eviction, the cache turned off, and a plugged-in policy.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cache.h"

static ts__cache_key key_of(uint64_t tensor, uint64_t page)
{
	return (ts__cache_key){tensor, page, TS_F32};
}

/* Fill an entry's data with a pattern derived from its key only. */
static void fill(ts__cache_entry *e)
{
	uint32_t *p = e->data;
	for (size_t i = 0; i < e->bytes / 4; i++)
		p[i] = (uint32_t)(e->key.tensor_id * 1000003u + e->key.page * 7919u + i);
}

static int pattern_ok(const ts__cache_entry *e)
{
	const uint32_t *p = e->data;
	for (size_t i = 0; i < e->bytes / 4; i++)
		if (p[i] != (uint32_t)(e->key.tensor_id * 1000003u + e->key.page * 7919u + i))
			return 0;
	return 1;
}

static ts_cache_stats stats_of(struct ts__cache *c)
{
	ts_cache_stats s;
	memset(&s, 0, sizeof(s));
	ts__cache_stats(c, &s);
	return s;
}

static void put(struct ts__cache *c, uint64_t t, uint64_t p, size_t bytes)
{
	ts__cache_key k = key_of(t, p);
	ts__cache_entry *e = ts__cache_alloc(c, &k, bytes);
	if (!e)
		return;
	fill(e);
	ts__cache_insert(c, e);
	ts__cache_release(c, e);
}

Test(cache, counts_hits_and_misses)
{
	struct ts__cache *c;
	ts__cache_key k = key_of(1, 2);

	cr_assert_eq(ts__cache_create(&c, 1 << 20), 0);
	cr_expect_null(ts__cache_lookup(c, &k));
	put(c, 1, 2, 4096);
	ts__cache_entry *e = ts__cache_lookup(c, &k);
	cr_assert_not_null(e);
	cr_expect(pattern_ok(e));
	cr_expect_eq(e->bytes, 4096);
	ts__cache_release(c, e);
	/* a different dtype of the same page is a different entry */
	ts__cache_key k2 = k;
	k2.dtype = TS_BF16;
	cr_expect_null(ts__cache_lookup(c, &k2));
	ts_cache_stats s = stats_of(c);
	cr_expect_eq(s.hits, 1);
	cr_expect_eq(s.misses, 2);
	cr_expect_eq(s.budget_bytes, 1 << 20);
	cr_expect_geq(s.used_bytes, 4096);
	ts__cache_free(c);
}

Test(cache, never_exceeds_its_budget_and_evicts_least_recent)
{
	struct ts__cache *c;
	const uint64_t budget = 256 * 1024;

	cr_assert_eq(ts__cache_create(&c, budget), 0);
	for (uint64_t p = 0; p < 200; p++) {
		put(c, 7, p, 10000 + (size_t)(p % 5) * 1000);
		cr_assert_leq(stats_of(c).used_bytes, budget, "after page %llu",
			      (unsigned long long)p);
		/* keep page 0 hot */
		ts__cache_key k0 = key_of(7, 0);
		ts__cache_release(c, ts__cache_lookup(c, &k0));
	}
	ts_cache_stats s = stats_of(c);
	cr_expect_gt(s.evictions, 150);
	ts__cache_key k0 = key_of(7, 0), k1 = key_of(7, 1);
	ts__cache_entry *e = ts__cache_lookup(c, &k0);
	cr_expect_not_null(e, "the hot page was evicted");
	ts__cache_release(c, e);
	cr_expect_null(ts__cache_lookup(c, &k1), "a cold page survived");
	/* an entry larger than the budget is refused */
	ts__cache_key big = key_of(8, 0);
	cr_expect_null(ts__cache_alloc(c, &big, (size_t)budget + 1));
	ts__cache_free(c);
}

Test(cache, pinned_entry_survives_eviction_and_clear)
{
	struct ts__cache *c;
	ts__cache_key k = key_of(3, 0);

	cr_assert_eq(ts__cache_create(&c, 64 * 1024), 0);
	put(c, 3, 0, 16384);
	ts__cache_entry *pinned = ts__cache_lookup(c, &k);
	cr_assert_not_null(pinned);
	for (uint64_t p = 1; p < 40; p++)
		put(c, 3, p, 16384);
	ts__cache_clear(c);
	cr_expect(pattern_ok(pinned), "a pinned entry was overwritten or freed");
	cr_expect_geq(stats_of(c).used_bytes, 16384, "a pinned entry's bytes stopped counting");
	cr_expect_null(ts__cache_lookup(c, &k), "clear left the entry in the table");
	ts__cache_release(c, pinned);
	cr_expect_eq(stats_of(c).used_bytes, 0);
	ts__cache_free(c);
}

Test(cache, duplicate_insert_keeps_one_entry)
{
	struct ts__cache *c;
	ts__cache_key k = key_of(4, 4);

	cr_assert_eq(ts__cache_create(&c, 1 << 20), 0);
	ts__cache_entry *a = ts__cache_alloc(c, &k, 4096), *b = ts__cache_alloc(c, &k, 4096);
	cr_assert(a && b);
	fill(a);
	fill(b);
	ts__cache_insert(c, a);
	ts__cache_insert(c, b);
	ts__cache_release(c, a);
	ts__cache_release(c, b);
	ts__cache_entry *e = ts__cache_lookup(c, &k);
	cr_expect_eq(e, a);
	ts__cache_release(c, e);
	ts_cache_stats s = stats_of(c);
	cr_expect_lt(s.used_bytes, 2 * 4096, "the losing duplicate was not freed");
	ts__cache_free(c);
}

Test(cache, off_when_budget_is_zero)
{
	struct ts__cache *c;
	ts__cache_key k = key_of(1, 1);

	cr_assert_eq(ts__cache_create(&c, 0), 0);
	cr_expect_null(ts__cache_alloc(c, &k, 16));
	cr_expect_null(ts__cache_lookup(c, &k));
	ts_cache_stats s = stats_of(c);
	cr_expect_eq(s.budget_bytes, 0);
	cr_expect_eq(s.used_bytes, 0);
	cr_expect_eq(s.misses, 1);
	ts__cache_free(c);
}

static uint64_t resolved(int64_t opt)
{
	uint64_t b = 7;
	cr_assert_eq(ts__cache_budget_resolve(&b, opt), 0, "%s", ts_error_last());
	return b;
}

Test(cache, budget_from_option_and_environment)
{
	uint64_t b;

	cr_expect_eq(resolved(12345), 12345);
	cr_expect_eq(resolved(0), 0);
	unsetenv("TSTORE_CACHE_BYTES");
	cr_expect_eq(resolved(-1), 256ull << 20);
	setenv("TSTORE_CACHE_BYTES", "3M", 1);
	cr_expect_eq(resolved(-1), 3ull << 20);
	setenv("TSTORE_CACHE_BYTES", "3MiB", 1);
	cr_expect_eq(resolved(-1), 3ull << 20);
	setenv("TSTORE_CACHE_BYTES", "4096", 1);
	cr_expect_eq(resolved(-1), 4096);
	setenv("TSTORE_CACHE_BYTES", "0", 1);
	cr_expect_eq(resolved(-1), 0);
	/* one rule for every variable: a malformed value is an error naming it */
	setenv("TSTORE_CACHE_BYTES", "lots", 1);
	cr_expect_eq(ts__cache_budget_resolve(&b, -1), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "TSTORE_CACHE_BYTES='lots'") != NULL, "%s",
		  ts_error_last());
	setenv("TSTORE_CACHE_BYTES", "1G", 1);
	struct ts__cache *c;
	cr_assert_eq(ts__cache_create(&c, UINT64_MAX), 0);
	cr_expect_eq(ts__cache_budget(c), 1ull << 30);
	ts__cache_free(c);
	unsetenv("TSTORE_CACHE_BYTES");
}

/* A policy that admits only even pages: shows the plug-in point. */
static int even_admit(void *state, const ts__cache_key *key, size_t charge)
{
	(void)state;
	(void)charge;
	return key->page % 2 == 0;
}

Test(cache, a_plugged_policy_decides_admission)
{
	ts__cache_policy even = ts__cache_policy_lru;
	struct ts__cache *c;

	even.name = "even";
	even.admit = even_admit;
	cr_assert_eq(ts__cache_create_with_policy(&c, 1 << 20, &even), 0);
	ts__cache_key k1 = key_of(1, 1), k2 = key_of(1, 2);
	cr_expect_null(ts__cache_alloc(c, &k1, 64));
	ts__cache_entry *e = ts__cache_alloc(c, &k2, 64);
	cr_expect_not_null(e);
	ts__cache_release(c, e);
	ts__cache_free(c);
}

struct hammer {
	struct ts__cache *c;
	uint64_t budget;
	unsigned seed;
	atomic_int stop;
	atomic_int bad;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	unsigned seed = __atomic_fetch_add(&h->seed, 1, __ATOMIC_RELAXED);

	for (int i = 0; i < 20000; i++) {
		uint64_t page = (uint64_t)(rand_r(&seed) % 300);
		ts__cache_key k = key_of(9, page);
		ts__cache_entry *e = ts__cache_lookup(h->c, &k);
		if (!e) {
			e = ts__cache_alloc(h->c, &k, 1024 + (page % 7) * 512);
			if (!e)
				continue;
			fill(e);
			ts__cache_insert(h->c, e);
		}
		if (!pattern_ok(e))
			atomic_fetch_add(&h->bad, 1);
		ts__cache_release(h->c, e);
	}
	return NULL;
}

static void *monitor_thread(void *arg)
{
	struct hammer *h = arg;
	while (!atomic_load(&h->stop)) {
		ts_cache_stats s;
		memset(&s, 0, sizeof(s));
		ts__cache_stats(h->c, &s);
		if (s.used_bytes > h->budget)
			atomic_fetch_add(&h->bad, 1000000);
	}
	return NULL;
}

Test(cache, budget_holds_under_concurrent_load)
{
	struct hammer h = {.budget = 64 * 1024, .seed = 12345};
	pthread_t t[4], m;

	cr_assert_eq(ts__cache_create(&h.c, h.budget), 0);
	pthread_create(&m, NULL, monitor_thread, &h);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer_thread, &h);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	atomic_store(&h.stop, 1);
	pthread_join(m, NULL);
	cr_expect_eq(atomic_load(&h.bad), 0, "budget exceeded or data damaged (%d)",
		     atomic_load(&h.bad));
	ts_cache_stats s = stats_of(h.c);
	cr_expect_gt(s.hits, 0);
	cr_expect_gt(s.evictions, 0);
	cr_expect_eq(s.hits + s.misses, 4 * 20000);
	ts__cache_free(h.c);
}
