/*
 * Tests of the offline optimum (tools/bench/belady.c) on sequences worked out by hand.
 */
#include <criterion/criterion.h>

#include "tools/bench/belady.h"

static double opt(const uint64_t *keys, const uint64_t *sizes, size_t n, uint64_t budget)
{
	belady_access acc[64];
	double r = -1;
	cr_assert_leq(n, 64);
	for (size_t i = 0; i < n; i++)
		acc[i] = (belady_access){keys[i], sizes ? sizes[i] : 1, 0};
	cr_assert_eq(belady_link(acc, n), 0);
	cr_assert_eq(belady_hit_ratio(acc, n, budget, &r), 0);
	return r;
}

Test(belady, links_each_access_to_the_next_of_its_key)
{
	belady_access a[5] = {{1, 1, 0}, {2, 1, 0}, {1, 1, 0}, {3, 1, 0}, {2, 1, 0}};
	cr_assert_eq(belady_link(a, 5), 0);
	cr_expect_eq(a[0].next, 2);
	cr_expect_eq(a[1].next, 4);
	cr_expect_eq(a[2].next, UINT64_MAX);
	cr_expect_eq(a[3].next, UINT64_MAX);
	cr_expect_eq(a[4].next, UINT64_MAX);
}

Test(belady, repeats_that_fit_all_hit_after_the_first)
{
	/* A B A B with room for two: 2 hits of 4 */
	uint64_t k[] = {1, 2, 1, 2};
	cr_expect_float_eq(opt(k, NULL, 4, 2), 0.5, 1e-12);
}

Test(belady, a_cycle_larger_than_the_cache_keeps_what_comes_back_first)
{
	/* A B C A B C with room for two. A, B kept; C (next use never) bypassed; A, B hit; C
	 * misses: 2 hits of 6 (LRU would have none). */
	uint64_t k[] = {1, 2, 3, 1, 2, 3};
	cr_expect_float_eq(opt(k, NULL, 6, 2), 2.0 / 6.0, 1e-12);
	/* A B C B A C, room for two: A, B kept; C needed at 5, after A (4) and B (3): bypassed;
	 * B hit, A hit; C miss: 2 of 6 */
	uint64_t k2[] = {1, 2, 3, 2, 1, 3};
	cr_expect_float_eq(opt(k2, NULL, 6, 2), 2.0 / 6.0, 1e-12);
	/* A B C A C B, room for two: A, B kept; C (next 4) replaces B (next 5); A hit, C hit;
	 * B miss: 2 of 6 */
	uint64_t k3[] = {1, 2, 3, 1, 3, 2};
	cr_expect_float_eq(opt(k3, NULL, 6, 2), 2.0 / 6.0, 1e-12);
	/* A B C C A, room for two: A, B kept; C (next 3) replaces B (never again): C hit, A hit */
	uint64_t k4[] = {1, 2, 3, 3, 1};
	cr_expect_float_eq(opt(k4, NULL, 5, 2), 2.0 / 5.0, 1e-12);
}

Test(belady, sizes_count_against_the_budget)
{
	/* budget 3: X(2) Y(1) kept; Z(2) never used again: bypassed; X, Y hit: 2 of 5 */
	uint64_t k[] = {1, 2, 3, 1, 2}, s[] = {2, 1, 2, 2, 1};
	cr_expect_float_eq(opt(k, s, 5, 3), 2.0 / 5.0, 1e-12);
	/* budget 3: X(2) kept, Y(2) evicts X (X never again); Y hits: 1 of 3 */
	uint64_t k2[] = {1, 2, 2}, s2[] = {2, 2, 2};
	cr_expect_float_eq(opt(k2, s2, 3, 3), 1.0 / 3.0, 1e-12);
	/* a page larger than the budget is never kept */
	uint64_t k3[] = {1, 1, 1}, s3[] = {5, 5, 5};
	cr_expect_float_eq(opt(k3, s3, 3, 4), 0.0, 1e-12);
}
