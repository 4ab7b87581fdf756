/*
 * The memory-hierarchy model's private side (engine/hierarchy.c): what it costs to serve one
 * page from each of the three forms a page can be held in (decoded, compressed, on storage: the
 * cache's ts__form), priced from a hardware profile. The residency policy
 * (engine/cache_residency.c) compares these costs; nothing else prices a page.
 * Profiles come from ts_hw_profile_builtin() (here), ts_hw_profile_measure()
 * (engine/calibrate.c) and ts_hw_profile_load() (engine/profile.c).
 *
 * Invariants
 *   1. For a profile accepted by ts_hw_profile_load() or made by ts_hw_profile_builtin() /
 *      ts_hw_profile_measure(), every cost is finite and >= 0.
 *   2. storage_us >= compressed_us: a page read from storage is decoded as well.
 */
#ifndef TS_ENGINE_HIERARCHY_H
#define TS_ENGINE_HIERARCHY_H

#include <stdint.h>

#include "tstore.h"

/* The page size a profile prices when none is given: a store's default page. */
#define TS__PROFILE_PAGE_BYTES 65520u

typedef struct ts__page_cost {
	double decoded_us;    /* copy decoded_bytes out of RAM */
	double compressed_us; /* decode the page's elements */
	double storage_us;    /* read the stored bytes from storage, then decode */
} ts__page_cost;

/**
 * Price one page of @p codec holding @p elements elements, @p stored_bytes on storage (the
 * aligned run actually read) and @p decoded_bytes once decoded.
 */
void ts__hw_page_cost(const ts_hw_profile *p, ts_codec codec, uint64_t elements,
		      uint64_t stored_bytes, uint64_t decoded_bytes, ts__page_cost *out);

#endif
