/*
 * Tests of the residency policy, driven through the cache (engine/cache.c) the way the reader
 * drives it: a hot page is promoted to decoded form, a scan does not evict the hot set, the
 * budget is never exceeded, sequential requests get read-ahead, decisions are reproducible for a
 * fixed seed, and on a Zipf(1.0) workload priced by a fixed profile the tiered policy serves far
 * more pages without storage than decoded-lru.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cache.h"
#include "engine/hierarchy.h"
#include "engine/cache_residency.h"

/* The standard page: 16384 elements, 10000 bytes compressed, a 12288-byte run on storage,
 * 65536 bytes decoded (F32). */
#define ELEMENTS 16384
#define COMPRESSED 10000
#define IO_BYTES 12288
#define DECODED (ELEMENTS * 4)
/* what the cache charges for them: a 128-byte entry header + data rounded up to 64 bytes */
#define C_CHARGE (128 + 10048)
#define D_CHARGE (128 + DECODED)

/*
 * A profile with round figures: RAM 10 GB/s + 0.1 us, storage 1 GB/s + 100 us, nvfp4 decode
 * 0.5 G elements/s, raw 20 G elements/s. For the standard nvfp4 page:
 *   decoded:    0.1 + 65536 / 10e3          =   6.6536 us
 *   compressed: 16384 / 0.5e3               =  32.768 us
 *   storage:    100 + 12288 / 1e3 + 32.768  = 145.056 us
 */
static ts_hw_profile test_profile(void)
{
	ts_hw_profile p;
	cr_assert_eq(ts_hw_profile_builtin(&p, "blackwell"), 0);
	snprintf(p.name, sizeof(p.name), "test");
	p.level[TS_MEM_RAM] = (ts_mem_level_info){1ull << 34, 10.0, 0.1, 1};
	p.level[TS_MEM_STORAGE] = (ts_mem_level_info){1ull << 40, 1.0, 100.0, 1};
	p.decode_geps[TS_CODEC_NVFP4] = 0.5;
	p.decode_geps[TS_CODEC_RAW] = 20.0;
	p.page_bytes = COMPRESSED;
	return p;
}

typedef struct rig {
	ts__residency *r;
	struct ts__cache *c;
} rig;

static rig make(ts_cache_policy policy, uint64_t budget, uint64_t seed)
{
	rig g;
	ts_hw_profile p = test_profile();
	cr_assert_eq(ts__residency_create(&g.r, policy, budget, &p, seed), 0);
	cr_assert_eq(ts__cache_create_with_policy(&g.c, budget, ts__residency_cache_policy(g.r)), 0);
	for (uint64_t t = 0; t < 8; t++)
		ts__cache_tensor(g.c, t, TS_CODEC_NVFP4, IO_BYTES, ELEMENTS);
	return g;
}

static void unmake(rig *g)
{
	ts__cache_free(g->c);
	ts__residency_free(g->r);
}

static ts__cache_key dkey(uint64_t t, uint64_t p)
{
	return (ts__cache_key){t, p, TS_F32};
}

static ts__cache_key ckey(uint64_t t, uint64_t p)
{
	return (ts__cache_key){t, p, TS__CACHE_COMPRESSED};
}

static void put(rig *g, ts__cache_key k, size_t bytes)
{
	ts__cache_entry *e = ts__cache_alloc(g->c, &k, bytes);
	if (!e)
		return;
	memset(e->data, 0x5A, bytes < 64 ? bytes : 64);
	ts__cache_insert(g->c, e);
	ts__cache_release(g->c, e);
}

/* Serve one page access as the reader does; returns the form it was served from. */
static ts__form serve(rig *g, uint64_t t, uint64_t p)
{
	ts__cache_key dk = dkey(t, p), ck = ckey(t, p);
	ts__cache_entry *e;

	ts__cache_access(g->c, t, p);
	if ((e = ts__cache_lookup(g->c, &dk))) {
		ts__cache_release(g->c, e);
		ts__cache_served(g->c, t, TS__FORM_DECODED, 1, ELEMENTS, DECODED);
		return TS__FORM_DECODED;
	}
	if (ts__cache_keeps_compressed(g->c) && (e = ts__cache_lookup(g->c, &ck))) {
		ts__cache_served(g->c, t, TS__FORM_COMPRESSED, 1, ELEMENTS, DECODED);
		put(g, dk, DECODED); /* offered for promotion: the policy admits it or not */
		ts__cache_release(g->c, e);
		return TS__FORM_COMPRESSED;
	}
	ts__cache_served(g->c, t, TS__FORM_STORAGE, 1, ELEMENTS, DECODED);
	if (ts__cache_keeps_compressed(g->c))
		put(g, ck, COMPRESSED);
	else
		put(g, dk, DECODED);
	return TS__FORM_STORAGE;
}

/* The form a page is held in (inspection: a lookup and a release). */
static ts__form held(rig *g, uint64_t t, uint64_t p)
{
	ts__cache_key dk = dkey(t, p), ck = ckey(t, p);
	ts__cache_entry *e;
	if ((e = ts__cache_lookup(g->c, &dk))) {
		ts__cache_release(g->c, e);
		return TS__FORM_DECODED;
	}
	if ((e = ts__cache_lookup(g->c, &ck))) {
		ts__cache_release(g->c, e);
		return TS__FORM_COMPRESSED;
	}
	return TS__FORM_STORAGE;
}

static void expect_within_budget(rig *g)
{
	ts_cache_stats s;
	memset(&s, 0, sizeof(s));
	ts__cache_stats(g->c, &s);
	cr_assert_leq(s.used_bytes, s.budget_bytes, "used %llu > budget %llu",
		      (unsigned long long)s.used_bytes, (unsigned long long)s.budget_bytes);
	ts_residency_stats rs;
	ts__residency_stats(g->r, g->c, &rs);
	if (ts__residency_policy(g->r) != TS_CACHE_POLICY_DECODED_LRU)
		cr_assert_eq(rs.decoded_bytes + rs.compressed_bytes, s.used_bytes);
}

Test(residency, a_page_accessed_often_is_promoted_to_decoded_form)
{
	rig g = make(TS_CACHE_POLICY_TIERED, 4u << 20, 1);

	cr_expect_eq(serve(&g, 1, 7), TS__FORM_STORAGE);
	serve(&g, 1, 8);
	/* push both through the admission window into the main region */
	for (uint64_t i = 100; i < 200; i++)
		serve(&g, 2, i);
	cr_expect_eq(serve(&g, 1, 7), TS__FORM_COMPRESSED, "kept compressed at first");
	for (int i = 0; i < 5; i++)
		serve(&g, 1, 7);
	cr_expect_eq(serve(&g, 1, 7), TS__FORM_DECODED, "promoted after repeated hits");
	cr_expect_eq(held(&g, 1, 8), TS__FORM_COMPRESSED, "a page seen once stays compressed");

	ts_residency_stats s;
	ts__residency_stats(g.r, g.c, &s);
	cr_expect_geq(s.promoted, 1);
	cr_expect_eq(s.decoded_pages, s.promoted - s.demoted);
	cr_expect_geq(s.served_decoded, 1);
	expect_within_budget(&g);
	unmake(&g);
}

Test(residency, no_promotion_when_decoding_is_cheaper_than_copying)
{
	rig g = make(TS_CACHE_POLICY_TIERED, 4u << 20, 1);
	/* raw at 20 G elements/s: a decode takes 0.8192 us, less than the 6.6536 us copy */
	ts__cache_tensor(g.c, 3, TS_CODEC_RAW, IO_BYTES, ELEMENTS);
	for (int i = 0; i < 200; i++) {
		serve(&g, 2, (uint64_t)i);
		serve(&g, 3, 1);
	}
	cr_expect_eq(held(&g, 3, 1), TS__FORM_COMPRESSED);
	ts_residency_stats s;
	ts__residency_stats(g.r, g.c, &s);
	cr_expect_eq(s.promoted, 0);
	unmake(&g);
}

Test(residency, a_scan_does_not_evict_the_hot_set)
{
	for (int policy = TS_CACHE_POLICY_TIERED; policy <= TS_CACHE_POLICY_DECODED_ONLY;
	     policy++) {
		/* room for about 40 pages in the form the policy keeps new pages in */
		uint64_t unit = policy == TS_CACHE_POLICY_TIERED ? C_CHARGE : D_CHARGE;
		rig g = make((ts_cache_policy)policy, 40 * unit, 3);
		for (int round = 0; round < 10; round++)
			for (uint64_t i = 0; i < 20; i++)
				serve(&g, 1, i);
		for (uint64_t i = 0; i < 2000; i++) {
			serve(&g, 2, i);
			expect_within_budget(&g);
		}
		int kept = 0;
		for (uint64_t i = 0; i < 20; i++)
			kept += held(&g, 1, i) != TS__FORM_STORAGE;
		if (policy == TS_CACHE_POLICY_DECODED_LRU)
			cr_expect_eq(kept, 0, "LRU loses the hot set to the scan");
		else
			cr_expect_eq(kept, 20, "%s kept %d of 20 hot pages",
				     ts_cache_policy_name((ts_cache_policy)policy), kept);
		unmake(&g);
	}
}

Test(residency, the_budget_is_never_exceeded)
{
	uint64_t seed = 0x1234;
	static const uint64_t budgets[] = {300000, 40u << 20}; /* one shard, four shards */
	for (size_t b = 0; b < 2; b++)
		for (int policy = TS_CACHE_POLICY_TIERED; policy <= TS_CACHE_POLICY_DECODED_ONLY;
		     policy++) {
			rig g = make((ts_cache_policy)policy, budgets[b], 9);
			for (int i = 0; i < 8000; i++) {
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				uint64_t x = seed >> 33, t = x % 3, p = (x / 3) % 997;
				size_t csize = 500 + (x % 7) * 9000; /* varied, some over the window */
				ts__cache_key ck = ckey(t, p), dk = dkey(t, p);
				ts__cache_access(g.c, t, p);
				ts__cache_entry *e = ts__cache_lookup(g.c, &dk);
				if (!e && policy == TS_CACHE_POLICY_TIERED)
					e = ts__cache_lookup(g.c, &ck);
				if (e) {
					ts__cache_release(g.c, e);
					if (policy == TS_CACHE_POLICY_TIERED && x % 2)
						put(&g, dk, csize * 7);
				} else {
					put(&g, policy == TS_CACHE_POLICY_TIERED ? ck : dk,
					    policy == TS_CACHE_POLICY_TIERED ? csize : csize * 7);
				}
				expect_within_budget(&g);
			}
			ts__cache_clear(g.c);
			ts_residency_stats s;
			ts__residency_stats(g.r, g.c, &s);
			cr_expect_eq(s.used_bytes, 0);
			if (policy != TS_CACHE_POLICY_DECODED_LRU) {
				cr_expect_eq(s.decoded_pages + s.compressed_pages, 0);
				cr_expect_eq(s.decoded_bytes + s.compressed_bytes, 0);
			}
			unmake(&g);
		}
}

Test(residency, sequential_requests_trigger_read_ahead)
{
	rig g = make(TS_CACHE_POLICY_TIERED, 8u << 20, 1);
	uint64_t f, n;
	ts__cache_request(g.c, 5, 0, 1, 1000, &f, &n);
	cr_expect_eq(n, 0, "one request is not a pattern");
	ts__cache_request(g.c, 5, 2, 3, 1000, &f, &n);
	cr_expect_eq(f, 4);
	cr_expect_eq(n, 8, "two consecutive requests of 2 pages: 8 pages ahead");
	ts__cache_request(g.c, 5, 4, 5, 1000, &f, &n);
	cr_expect_eq(n, 0, "6 pages still ahead: nothing more yet");
	ts__cache_request(g.c, 5, 6, 7, 1000, &f, &n);
	cr_expect_eq(f, 12, "continues where the last read-ahead ended");
	cr_expect_eq(n, 4, "topped up to 8 pages ahead of the request");
	/* a request overlapping the previous one's last page still continues the walk */
	ts__cache_request(g.c, 6, 0, 4, 1000, &f, &n);
	ts__cache_request(g.c, 6, 4, 9, 1000, &f, &n);
	cr_expect_eq(f, 10);
	cr_expect_eq(n, 12, "twice a 6-page request");
	/* near the end of the tensor: clipped */
	ts__cache_request(g.c, 7, 990, 994, 1000, &f, &n);
	ts__cache_request(g.c, 7, 995, 997, 1000, &f, &n);
	cr_expect_eq(f, 998);
	cr_expect_eq(n, 2);
	/* random requests: no read-ahead */
	uint64_t total = 0;
	for (uint64_t i = 0; i < 50; i++) {
		ts__cache_request(g.c, 3, (i * 7919) % 1000, (i * 7919) % 1000, 1000, &f, &n);
		total += n;
	}
	cr_expect_eq(total, 0);
	unmake(&g);

	/* the baselines do not read ahead */
	g = make(TS_CACHE_POLICY_DECODED_LRU, 8u << 20, 1);
	ts__cache_request(g.c, 5, 0, 1, 1000, &f, &n);
	ts__cache_request(g.c, 5, 2, 3, 1000, &f, &n);
	cr_expect_eq(n, 0);
	unmake(&g);
}

/* Zipf(1.0) ranks over n items by inverse transform on the cumulative weights. */
static uint64_t zipf_draw(const double *cdf, uint64_t n, uint64_t *seed)
{
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	double u = (double)(*seed >> 11) * 0x1.0p-53;
	uint64_t lo = 0, hi = n - 1;
	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;
		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

typedef struct run_result {
	uint64_t no_storage;
	ts_residency_stats st;
	uint8_t forms[4096];
} run_result;

static void run_zipf(ts_cache_policy policy, uint64_t seed, run_result *out)
{
	const uint64_t pages = 4096; /* 41.7 MB compressed (with headers), 4x the budget */
	double *cdf = malloc(pages * sizeof(double)), sum = 0;
	for (uint64_t i = 0; i < pages; i++)
		cdf[i] = (sum += 1.0 / (double)(i + 1));
	for (uint64_t i = 0; i < pages; i++)
		cdf[i] /= sum;
	rig g = make(policy, pages * C_CHARGE / 4, 77);
	uint64_t s = seed;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 40000; i++) {
		uint64_t rank = zipf_draw(cdf, pages, &s);
		out->no_storage += serve(&g, 1, (rank * 2654435761u) % pages) != TS__FORM_STORAGE;
	}
	ts__residency_stats(g.r, g.c, &out->st);
	for (uint64_t i = 0; i < pages; i++)
		out->forms[i] = (uint8_t)held(&g, 1, i);
	unmake(&g);
	free(cdf);
}

Test(residency, tiered_beats_decoded_lru_on_zipf_in_the_model)
{
	static run_result t, l;
	run_zipf(TS_CACHE_POLICY_TIERED, 42, &t);
	run_zipf(TS_CACHE_POLICY_DECODED_LRU, 42, &l);
	cr_log_info("zipf: tiered %llu of 40000 without storage (%.3f s modelled, %llu decoded), "
		    "decoded-lru %llu (%.3f s)",
		    (unsigned long long)t.no_storage, t.st.model_seconds,
		    (unsigned long long)t.st.decoded_pages, (unsigned long long)l.no_storage,
		    l.st.model_seconds);
	cr_expect_geq((double)t.no_storage, 1.5 * (double)l.no_storage);
	cr_expect_leq(t.st.model_seconds, 0.7 * l.st.model_seconds);
	cr_expect_gt(t.st.decoded_pages, 0, "the hottest pages are decoded");
}

Test(residency, decisions_are_reproducible_for_a_fixed_seed)
{
	static run_result a, b;
	run_zipf(TS_CACHE_POLICY_TIERED, 7, &a);
	run_zipf(TS_CACHE_POLICY_TIERED, 7, &b);
	cr_expect_eq(a.no_storage, b.no_storage);
	cr_expect_eq(a.st.promoted, b.st.promoted);
	cr_expect_eq(a.st.evicted, b.st.evicted);
	cr_expect_eq(a.st.served_decoded, b.st.served_decoded);
	cr_expect_eq(memcmp(a.forms, b.forms, sizeof(a.forms)), 0);
}

Test(residency, policy_names_parse)
{
	ts_cache_policy p;
	cr_expect_eq(ts_cache_policy_parse(&p, "decoded-lru"), 0);
	cr_expect_eq(p, TS_CACHE_POLICY_DECODED_LRU);
	cr_expect_eq(ts_cache_policy_parse(&p, "TIERED"), 0);
	cr_expect_eq(p, TS_CACHE_POLICY_TIERED);
	cr_expect_eq(ts_cache_policy_parse(&p, "lru"), TS_EINVAL);
	cr_expect_str_eq(ts_cache_policy_name(TS_CACHE_POLICY_DECODED_ONLY), "decoded-only");
	setenv("TSTORE_CACHE_POLICY", "decoded-only", 1);
	cr_expect_eq(ts__residency_policy_resolve(&p, TS_CACHE_POLICY_DEFAULT), 0);
	cr_expect_eq(p, TS_CACHE_POLICY_DECODED_ONLY);
	/* one rule for every variable: a malformed value is an error naming it */
	setenv("TSTORE_CACHE_POLICY", "bogus", 1);
	cr_expect_eq(ts__residency_policy_resolve(&p, TS_CACHE_POLICY_DEFAULT), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "TSTORE_CACHE_POLICY='bogus'") != NULL);
	unsetenv("TSTORE_CACHE_POLICY");
	cr_expect_eq(ts__residency_policy_resolve(&p, TS_CACHE_POLICY_DEFAULT), 0);
	cr_expect_eq(p, TS_CACHE_POLICY_TIERED);
	cr_expect_eq(ts__residency_policy_resolve(&p, TS_CACHE_POLICY_DECODED_LRU), 0);
	cr_expect_eq(p, TS_CACHE_POLICY_DECODED_LRU);
}

/* Repeated sweeps over 4096 pages (4x the budget, compressed) mixed 1:1 with requests to a hot
 * set of 150 pages: about what decoded-lru can hold (158 pages), so between two uses of a hot
 * page LRU sees about twice as many distinct pages as it holds. Returns the hot-set hit ratio. */
static double run_sweep_hot(ts_cache_policy policy, double *model)
{
	const uint64_t pages = 4096, hot = 150;
	rig g = make(policy, pages * C_CHARGE / 4, 5);
	uint64_t s = 99, pos = 0, hot_req = 0, hot_hit = 0;
	for (int i = 0; i < 30000; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		if ((s >> 63) & 1) {
			hot_req++;
			hot_hit += serve(&g, 2, (s >> 20) % hot) != TS__FORM_STORAGE;
		} else {
			serve(&g, 1, pos);
			pos = (pos + 1) % pages;
		}
	}
	ts_residency_stats st;
	ts__residency_stats(g.r, g.c, &st);
	*model = st.model_seconds;
	unmake(&g);
	return (double)hot_hit / (double)hot_req;
}

Test(residency, sweeps_mixed_with_a_hot_set_keep_the_hot_set)
{
	double mt, ml, mo;
	double t = run_sweep_hot(TS_CACHE_POLICY_TIERED, &mt);
	double l = run_sweep_hot(TS_CACHE_POLICY_DECODED_LRU, &ml);
	double o = run_sweep_hot(TS_CACHE_POLICY_DECODED_ONLY, &mo);
	cr_log_info("sweep-hot: hot-set hit ratio tiered %.3f, decoded-lru %.3f, decoded-only %.3f",
		    t, l, o);
	cr_expect_gt(t, 0.9);
	cr_expect_lt(l, 0.5, "LRU loses the hot set");
}

Test(residency, a_pure_scan_costs_no_more_than_with_decoded_lru)
{
	double model[2];
	static const ts_cache_policy pol[2] = {TS_CACHE_POLICY_TIERED, TS_CACHE_POLICY_DECODED_LRU};
	for (int k = 0; k < 2; k++) {
		rig g = make(pol[k], 4096 * C_CHARGE / 4, 5);
		uint64_t hits = 0;
		for (uint64_t p = 0; p < 4096; p++)
			hits += serve(&g, 1, p) != TS__FORM_STORAGE;
		cr_expect_eq(hits, 0, "a one-pass scan has nothing to hit");
		ts_residency_stats st;
		ts__residency_stats(g.r, g.c, &st);
		model[k] = st.model_seconds;
		unmake(&g);
	}
	cr_expect_leq(model[0], model[1]);
}
