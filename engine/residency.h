/*
 * The residency policy (engine/residency.c): decides, page by page, whether the read cache holds
 * a page decoded, compressed, or not at all, within ONE byte budget over both forms. It is a
 * self-contained data structure: it holds keys, sizes, frequencies and the caller's payload
 * pointers, never page bytes, and it does no I/O. The cache (engine/cache.c) wraps it with its
 * lock and its buffers; the trace benchmark and the tests drive it directly.
 *
 * Protocol for one read request (under the caller's lock):
 *   1. ts__res_request() with the page range of the request: sequential-pattern detection;
 *      returns pages to read ahead (the caller adds the ones not held to its I/O batch).
 *   2. ts__res_access() for each page: records the access, says which form is held (with its
 *      payload) and whether the policy wants the page promoted (decoded) or, on a miss, which
 *      forms to offer.
 *   3. After reading missed pages: ts__res_insert() offers the payloads; after decoding a page
 *      the policy asked to promote: ts__res_promote().
 * Payloads given to the policy are released through cfg.drop() when the policy lets them go
 * (at once, if it does not keep them). A caller that still needs a payload after handing it
 * over, or after a later call that may evict it, holds its own reference.
 *
 * Not thread-safe: one caller at a time (the cache's lock).
 */
#ifndef TS_ENGINE_RESIDENCY_H
#define TS_ENGINE_RESIDENCY_H

#include <stdint.h>

#include "engine/hierarchy.h"
#include "tstore.h"

typedef struct ts__res ts__res;

typedef struct ts__res_config {
	ts_cache_policy policy;       /* TIERED, DECODED_LRU or DECODED_ONLY (DEFAULT: TIERED) */
	uint64_t budget;              /* bytes over both in-RAM forms; 0 keeps nothing */
	ts_hw_profile profile;        /* prices every decision (engine/hierarchy.h) */
	uint64_t page_bytes_hint;     /* typical compressed page; sizes the sketch. 0: 65536 */
	double window_fraction;       /* admission window share of the budget. 0: 0.01 */
	int readahead_max;            /* most pages read ahead at once; 0: 32; < 0: none */
	uint64_t seed;                /* eviction sampling; same seed, same decisions */
	void (*drop)(void *ud, void *payload, ts__form form);
	void *ud;
} ts__res_config;

/* What the policy needs to know about a page. */
typedef struct ts__res_page {
	uint64_t tensor_id;
	uint64_t page;
	ts_codec codec;
	uint64_t elements;
	uint64_t compressed_bytes; /* RAM held by the compressed form */
	uint64_t io_bytes;         /* bytes read from storage to get it (aligned run) */
	uint64_t decoded_bytes;    /* RAM held by the decoded form */
} ts__res_page;

typedef struct ts__res_hit {
	ts__form form;     /* DECODED, COMPRESSED, or STORAGE (not held) */
	void *payload;     /* that form's payload; NULL for STORAGE */
	void *compressed;  /* the compressed payload when form is DECODED and it is kept too */
	int promote;       /* COMPRESSED: decode the whole page and ts__res_promote() it */
	int want_decoded;  /* STORAGE: offer the decoded form to ts__res_insert() */
	int want_compressed; /* STORAGE: offer the compressed form to ts__res_insert() */
} ts__res_hit;

int ts__res_create(ts__res **out, const ts__res_config *cfg);
/* Releases every payload through cfg.drop(). NULL accepted. */
void ts__res_free(ts__res *r);
/* Release every payload; counters are kept. */
void ts__res_clear(ts__res *r);

/**
 * A request covers pages [first, last] of tensor @p tensor_id (of @p page_count pages).
 * When it continues a sequential pattern, *ra_count pages from *ra_first should be read ahead
 * (in the same I/O batch), each offered with ts__res_insert(..., prefetched = 1) unless already
 * held. Tiered policy only; otherwise *ra_count is 0.
 */
void ts__res_request(ts__res *r, uint64_t tensor_id, uint64_t first, uint64_t last,
		     uint64_t page_count, uint64_t *ra_first, uint64_t *ra_count);

/** Record an access to @p pg and say what is held (see ts__res_hit). */
void ts__res_access(ts__res *r, const ts__res_page *pg, ts__res_hit *out);

/** Is the page held in any form? (No access is recorded.) */
int ts__res_contains(const ts__res *r, uint64_t tensor_id, uint64_t page);

/**
 * Offer a page read from storage, in the forms given (either payload may be NULL). The policy
 * takes ownership of both; what it does not keep goes to cfg.drop() before returning.
 * @p prefetched: read ahead, not yet accessed. Returns the form kept, or TS__FORM_STORAGE.
 * A page already held is left as it is and the offered payloads are dropped.
 */
ts__form ts__res_insert(ts__res *r, const ts__res_page *pg, void *compressed, void *decoded,
			int prefetched);

/**
 * Offer the decoded form of a page held compressed (after ts__res_access() asked for it).
 * Takes ownership of @p decoded. Returns 1 if the page is now held decoded, 0 if not (the
 * payload was dropped: the room could only be made by giving up more valuable pages, or the
 * page has gone meanwhile).
 */
int ts__res_promote(ts__res *r, uint64_t tensor_id, uint64_t page, void *decoded);

/** Counters and occupancy (the store fills in nothing else). */
void ts__res_stats(const ts__res *r, ts_residency_stats *out);

/** The form page is held in now (tests, inspection). */
ts__form ts__res_form(const ts__res *r, uint64_t tensor_id, uint64_t page);

/** Resolve TS_CACHE_POLICY_DEFAULT (TSTORE_CACHE_POLICY, else tiered). */
ts_cache_policy ts__res_policy_resolve(ts_cache_policy p);

#endif
