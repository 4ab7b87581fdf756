/*
 * Tests of the residency policy on hand-built cases: promotion of a hot page, scan resistance,
 * the budget, payload ownership, read-ahead, determinism, and the tiered policy against
 * decoded-lru on a Zipf(1.0) workload priced by a fixed profile.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/residency.h"

/* Payloads are tokens: (tag << 32 | serial). drops[] counts releases per serial. */
#define MAX_TOKENS 400000
static unsigned char drops[MAX_TOKENS];
static uint64_t next_token = 1;

static void drop_cb(void *ud, void *payload, ts__form form)
{
	(void)ud;
	uint64_t t = (uint64_t)(uintptr_t)payload;
	uint64_t serial = t & 0xFFFFFFFFu;
	cr_assert_lt(serial, MAX_TOKENS);
	cr_assert_eq((int)(t >> 32), (int)form + 1, "payload of form %d dropped as form %d",
		     (int)(t >> 32) - 1, (int)form);
	drops[serial]++;
}

static void *token(ts__form form)
{
	cr_assert_lt(next_token, MAX_TOKENS);
	return (void *)(uintptr_t)(((uint64_t)form + 1) << 32 | next_token++);
}

static void reset_tokens(void)
{
	memset(drops, 0, sizeof(drops));
	next_token = 1;
}

/*
 * A profile with round figures: RAM 10 GB/s + 0.1 us, storage 1 GB/s + 100 us, nvfp4 decode
 * 0.5 G elements/s, raw decode 20 G elements/s. For the standard page below:
 *   decoded:    0.1 + 65536 / 10e3        =   6.6536 us
 *   compressed: 16384 / 0.5e3             =  32.768 us
 *   storage:    100 + 12288 / 1e3 + 32.768 = 145.056 us
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
	return p;
}

static ts__res_page page_of(uint64_t tensor, uint64_t page)
{
	return (ts__res_page){.tensor_id = tensor, .page = page, .codec = TS_CODEC_NVFP4,
			      .elements = 16384, .compressed_bytes = 10000, .io_bytes = 12288,
			      .decoded_bytes = 65536};
}

static ts__res *make(ts_cache_policy policy, uint64_t budget, uint64_t seed)
{
	ts__res_config cfg = {.policy = policy, .budget = budget, .profile = test_profile(),
			      .page_bytes_hint = 10000, .seed = seed, .drop = drop_cb};
	ts__res *r;
	cr_assert_eq(ts__res_create(&r, &cfg), 0);
	return r;
}

/* Serve one page access the way the cache does. Returns the form it was served from. */
static ts__form serve(ts__res *r, const ts__res_page *pg)
{
	ts__res_hit h;
	ts__res_access(r, pg, &h);
	if (h.form == TS__FORM_STORAGE) {
		ts__res_insert(r, pg, h.want_compressed ? token(TS__FORM_COMPRESSED) : NULL,
			       h.want_decoded ? token(TS__FORM_DECODED) : NULL, 0);
	} else if (h.promote) {
		ts__res_promote(r, pg->tensor_id, pg->page, token(TS__FORM_DECODED));
	}
	return h.form;
}

static void expect_consistent(const ts__res *r)
{
	ts_residency_stats s;
	ts__res_stats(r, &s);
	cr_assert_leq(s.used_bytes, s.budget_bytes, "used %llu > budget %llu",
		      (unsigned long long)s.used_bytes, (unsigned long long)s.budget_bytes);
	cr_assert_eq(s.decoded_bytes + s.compressed_bytes, s.used_bytes);
}

/* After ts__res_free(): every payload ever handed over was released exactly once. */
static void expect_all_dropped_once(void)
{
	for (uint64_t i = 1; i < next_token; i++)
		cr_assert_eq(drops[i], 1, "payload %llu released %d times", (unsigned long long)i,
			     drops[i]);
}

Test(residency, a_page_accessed_often_is_promoted_to_decoded_form, .init = reset_tokens)
{
	ts__res *r = make(TS_CACHE_POLICY_TIERED, 4u << 20, 1);
	ts__res_page hot = page_of(1, 7), cold = page_of(1, 8);

	cr_expect_eq(serve(r, &hot), TS__FORM_STORAGE);
	cr_expect_eq(ts__res_form(r, 1, 7), TS__FORM_COMPRESSED, "a new page is kept compressed");
	serve(r, &cold);
	/* push both out of the admission window into the main region */
	for (uint64_t i = 100; i < 100 + 80; i++) {
		ts__res_page f = page_of(2, i);
		serve(r, &f);
	}
	cr_assert_eq(ts__res_form(r, 1, 7), TS__FORM_COMPRESSED);
	for (int i = 0; i < 6; i++)
		serve(r, &hot);
	cr_expect_eq(ts__res_form(r, 1, 7), TS__FORM_DECODED);
	cr_expect_eq(serve(r, &hot), TS__FORM_DECODED);
	cr_expect_eq(ts__res_form(r, 1, 8), TS__FORM_COMPRESSED, "a page seen once stays compressed");

	ts_residency_stats s;
	ts__res_stats(r, &s);
	cr_expect_eq(s.promoted, 1);
	cr_expect_eq(s.decoded_pages, 1);
	cr_expect_eq(s.decoded_bytes, 65536 + 10000, "decoded form keeps its compressed bytes");
	expect_consistent(r);
	ts__res_free(r);
	expect_all_dropped_once();
}

Test(residency, no_promotion_when_decoding_is_cheaper_than_copying, .init = reset_tokens)
{
	ts__res *r = make(TS_CACHE_POLICY_TIERED, 4u << 20, 1);
	/* raw at 20 G elements/s: decode 0.8192 us < copy 6.6536 us: nothing to gain */
	ts__res_page pg = page_of(1, 1);
	pg.codec = TS_CODEC_RAW;
	for (int i = 0; i < 200; i++) {
		ts__res_page f = page_of(3, (uint64_t)i);
		serve(r, &f);
		serve(r, &pg);
	}
	cr_expect_eq(ts__res_form(r, 1, 1), TS__FORM_COMPRESSED);
	ts_residency_stats s;
	ts__res_stats(r, &s);
	cr_expect_eq(s.promoted, 0);
	ts__res_free(r);
	expect_all_dropped_once();
}

Test(residency, a_scan_does_not_evict_the_hot_set, .init = reset_tokens)
{
	/* room for about 40 compressed pages: a hot set of 20, then a scan of 2000 pages */
	for (int policy = TS_CACHE_POLICY_TIERED; policy <= TS_CACHE_POLICY_DECODED_ONLY;
	     policy++) {
		uint64_t unit = policy == TS_CACHE_POLICY_TIERED ? 10000 : 65536;
		ts__res *r = make((ts_cache_policy)policy, 40 * unit, 3);
		for (int round = 0; round < 10; round++)
			for (uint64_t i = 0; i < 20; i++) {
				ts__res_page pg = page_of(1, i);
				serve(r, &pg);
			}
		for (uint64_t i = 0; i < 2000; i++) {
			ts__res_page pg = page_of(2, i);
			serve(r, &pg);
			expect_consistent(r);
		}
		int kept = 0;
		for (uint64_t i = 0; i < 20; i++)
			kept += ts__res_contains(r, 1, i);
		if (policy == TS_CACHE_POLICY_DECODED_LRU)
			cr_expect_eq(kept, 0, "LRU loses the hot set to the scan");
		else
			cr_expect_eq(kept, 20, "%s kept %d of 20 hot pages",
				     ts_cache_policy_name((ts_cache_policy)policy), kept);
		ts__res_free(r);
	}
	expect_all_dropped_once();
}

Test(residency, the_budget_is_never_exceeded, .init = reset_tokens)
{
	uint64_t seed = 0x1234;
	for (int policy = TS_CACHE_POLICY_TIERED; policy <= TS_CACHE_POLICY_DECODED_ONLY;
	     policy++) {
		ts__res *r = make((ts_cache_policy)policy, 300000, 9);
		for (int i = 0; i < 20000; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t x = seed >> 33;
			ts__res_page pg = page_of(x % 3, (x / 3) % 97);
			/* pages of varied sizes, some larger than the window or the budget */
			pg.compressed_bytes = 500 + (x % 7) * 9000;
			pg.decoded_bytes = pg.compressed_bytes * 7;
			pg.io_bytes = (pg.compressed_bytes + 4095) / 4096 * 4096;
			if (i % 5 == 0) {
				uint64_t ra_first, ra_count;
				ts__res_request(r, pg.tensor_id, pg.page, pg.page + 1, 100,
						&ra_first, &ra_count);
				for (uint64_t k = 0; k < ra_count; k++) {
					ts__res_page q = pg;
					q.page = ra_first + k;
					if (!ts__res_contains(r, q.tensor_id, q.page))
						ts__res_insert(r, &q, token(TS__FORM_COMPRESSED),
							       NULL, 1);
				}
			}
			serve(r, &pg);
			expect_consistent(r);
		}
		ts__res_clear(r);
		ts_residency_stats s;
		ts__res_stats(r, &s);
		cr_expect_eq(s.used_bytes, 0);
		ts__res_free(r);
	}
	expect_all_dropped_once();
}

Test(residency, a_zero_budget_keeps_nothing, .init = reset_tokens)
{
	ts__res *r = make(TS_CACHE_POLICY_TIERED, 0, 1);
	ts__res_page pg = page_of(1, 1);
	for (int i = 0; i < 5; i++)
		cr_expect_eq(serve(r, &pg), TS__FORM_STORAGE);
	ts__res_free(r);
	expect_all_dropped_once();
}

Test(residency, decoded_lru_evicts_the_least_recently_used, .init = reset_tokens)
{
	ts__res *r = make(TS_CACHE_POLICY_DECODED_LRU, 3 * 65536, 1);
	ts__res_page a = page_of(1, 1), b = page_of(1, 2), c = page_of(1, 3), d = page_of(1, 4);
	serve(r, &a);
	serve(r, &b);
	serve(r, &c);
	cr_expect_eq(serve(r, &a), TS__FORM_DECODED); /* a is now the most recent */
	serve(r, &d);                                 /* evicts b */
	cr_expect(ts__res_contains(r, 1, 1));
	cr_expect(!ts__res_contains(r, 1, 2));
	cr_expect(ts__res_contains(r, 1, 3));
	cr_expect_eq(ts__res_form(r, 1, 4), TS__FORM_DECODED);
	ts__res_free(r);
	expect_all_dropped_once();
}

Test(residency, sequential_requests_trigger_read_ahead, .init = reset_tokens)
{
	ts__res *r = make(TS_CACHE_POLICY_TIERED, 8u << 20, 1);
	uint64_t f, n;
	ts__res_request(r, 5, 0, 1, 1000, &f, &n);
	cr_expect_eq(n, 0, "one request is not a pattern");
	ts__res_request(r, 5, 2, 3, 1000, &f, &n);
	cr_expect_eq(f, 4);
	cr_expect_eq(n, 8, "two consecutive requests of 2 pages: 8 pages ahead");
	for (uint64_t k = 0; k < n; k++) {
		ts__res_page pg = page_of(5, f + k);
		ts__res_insert(r, &pg, token(TS__FORM_COMPRESSED), NULL, 1);
	}
	ts__res_request(r, 5, 4, 5, 1000, &f, &n);
	cr_expect_eq(n, 0, "6 pages still ahead: no new read-ahead yet");
	ts__res_page p4 = page_of(5, 4);
	cr_expect_eq(serve(r, &p4), TS__FORM_COMPRESSED, "served from the read-ahead");
	ts__res_request(r, 5, 6, 7, 1000, &f, &n);
	cr_expect_eq(f, 12, "continues where the last read-ahead ended");
	cr_expect_eq(n, 4, "refilled to 8 pages ahead of the request");
	ts__res_request(r, 5, 8, 9, 1000, &f, &n);
	cr_expect_eq(n, 0);
	/* near the end of the tensor: clipped */
	ts__res_request(r, 6, 990, 994, 1000, &f, &n);
	ts__res_request(r, 6, 995, 997, 1000, &f, &n);
	cr_expect_eq(f, 998);
	cr_expect_eq(n, 2);
	/* random requests: no read-ahead */
	uint64_t total = 0;
	for (uint64_t i = 0; i < 50; i++) {
		ts__res_request(r, 7, (i * 7919) % 1000, (i * 7919) % 1000, 1000, &f, &n);
		total += n;
	}
	cr_expect_eq(total, 0);
	ts_residency_stats s;
	ts__res_stats(r, &s);
	cr_expect_eq(s.readahead_pages, 8, "only the pages offered count");
	cr_expect_eq(s.readahead_used, 1);
	ts__res_free(r);
	expect_all_dropped_once();

	/* the baselines do not read ahead */
	r = make(TS_CACHE_POLICY_DECODED_LRU, 8u << 20, 1);
	ts__res_request(r, 5, 0, 1, 1000, &f, &n);
	ts__res_request(r, 5, 2, 3, 1000, &f, &n);
	cr_expect_eq(n, 0);
	ts__res_free(r);
}

/* Zipf(1.0) ranks over n items by inverse transform on the cumulative weights. */
typedef struct zipf {
	double *cdf;
	uint64_t n;
} zipf;

static zipf zipf_make(uint64_t n)
{
	zipf z = {malloc(n * sizeof(double)), n};
	double s = 0;
	for (uint64_t i = 0; i < n; i++)
		z.cdf[i] = (s += 1.0 / (double)(i + 1));
	for (uint64_t i = 0; i < n; i++)
		z.cdf[i] /= s;
	return z;
}

static uint64_t zipf_draw(const zipf *z, uint64_t *seed)
{
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	double u = (double)(*seed >> 11) * 0x1.0p-53;
	uint64_t lo = 0, hi = z->n - 1;
	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;
		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

typedef struct run_result {
	uint64_t no_storage;
	double model_seconds;
	ts_residency_stats st;
	uint8_t forms[4096];
} run_result;

static void run_zipf(ts_cache_policy policy, uint64_t seed, run_result *out)
{
	const uint64_t pages = 4096; /* stored bytes 40 MB: 4x ... 10 MB budget */
	zipf z = zipf_make(pages);
	ts__res *r = make(policy, pages * 10000 / 4, 77);
	uint64_t s = seed;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 40000; i++) {
		uint64_t rank = zipf_draw(&z, &s);
		ts__res_page pg = page_of(1, (rank * 2654435761u) % pages); /* hot pages scattered */
		out->no_storage += serve(r, &pg) != TS__FORM_STORAGE;
	}
	ts__res_stats(r, &out->st);
	out->model_seconds = out->st.model_seconds;
	for (uint64_t i = 0; i < pages; i++)
		out->forms[i] = (uint8_t)ts__res_form(r, 1, i);
	ts__res_free(r);
	free(z.cdf);
}

Test(residency, tiered_beats_decoded_lru_on_zipf_in_the_model, .init = reset_tokens)
{
	static run_result t, l;
	run_zipf(TS_CACHE_POLICY_TIERED, 42, &t);
	run_zipf(TS_CACHE_POLICY_DECODED_LRU, 42, &l);
	cr_log_info("zipf: tiered %llu without storage (%.3f s modelled), decoded-lru %llu (%.3f s)",
		    (unsigned long long)t.no_storage, t.model_seconds,
		    (unsigned long long)l.no_storage, l.model_seconds);
	cr_expect_geq((double)t.no_storage, 1.5 * (double)l.no_storage);
	cr_expect_leq(t.model_seconds, 0.7 * l.model_seconds);
	cr_expect_gt(t.st.decoded_pages, 0, "the hottest pages are decoded");
}

Test(residency, decisions_are_reproducible_for_a_fixed_seed, .init = reset_tokens)
{
	static run_result a, b;
	run_zipf(TS_CACHE_POLICY_TIERED, 7, &a);
	run_zipf(TS_CACHE_POLICY_TIERED, 7, &b);
	cr_expect_eq(a.no_storage, b.no_storage);
	cr_expect_eq(a.st.promoted, b.st.promoted);
	cr_expect_eq(a.st.evicted, b.st.evicted);
	cr_expect_eq(a.st.used_bytes, b.st.used_bytes);
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
	cr_expect_eq(ts__res_policy_resolve(TS_CACHE_POLICY_DEFAULT), TS_CACHE_POLICY_DECODED_ONLY);
	setenv("TSTORE_CACHE_POLICY", "bogus", 1);
	cr_expect_eq(ts__res_policy_resolve(TS_CACHE_POLICY_DEFAULT), TS_CACHE_POLICY_TIERED);
	unsetenv("TSTORE_CACHE_POLICY");
	cr_expect_eq(ts__res_policy_resolve(TS_CACHE_POLICY_DECODED_LRU),
		     TS_CACHE_POLICY_DECODED_LRU);
}
