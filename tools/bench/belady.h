/*
 * The offline optimum of a cache (Belady's MIN, with bypass, on pages of varied sizes): the hit
 * ratio an omniscient cache of a given budget reaches on a known sequence of page accesses.
 * `tstore bench cache` shows the decoded-only policies against it (tools/bench/bench_cache.c).
 *
 * Invariants
 *   1. On a miss the page is kept only if enough resident pages are needed later than it (or
 *      never again) to make room; those needed furthest in the future are evicted first. With
 *      pages of one size this is the optimum; with varied sizes it is Belady's rule applied as is.
 *   2. A page that is never accessed again, or larger than the budget, is never kept.
 */
#ifndef TS_TOOLS_BELADY_H
#define TS_TOOLS_BELADY_H

#include <stddef.h>
#include <stdint.h>

typedef struct belady_access {
	uint64_t key;   /* identifies the page (any value but UINT64_MAX) */
	uint64_t bytes; /* its size in the cache */
	uint64_t next;  /* set by belady_link(): index of the next access to key, or UINT64_MAX */
} belady_access;

/** Fill the next fields of @p acc. 0, or -1 when out of memory. */
int belady_link(belady_access *acc, size_t n);

/** Hits / accesses of the optimum with @p budget bytes (acc linked). 0, or -1 (out of memory). */
int belady_hit_ratio(const belady_access *acc, size_t n, uint64_t budget, double *ratio);

#endif
