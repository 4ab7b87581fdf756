/*
 * The store's read cache (engine/cache_api.c): created at open with the residency policy and
 * the store's hardware profile, freed at close. Called by engine/store.c.
 */
#ifndef TS_ENGINE_CACHE_API_H
#define TS_ENGINE_CACHE_API_H

#include <stdint.h>

#include "tstore.h"

/**
 * Create st->residency and st->cache: policy TSTORE_CACHE_POLICY (else tiered), budget
 * ts__cache_budget_resolve(@p cache_bytes), profile from the store's profile file (else the
 * built-in reference). @return 0; TS_ENOMEM; TS_EINVAL (a malformed TSTORE_CACHE_BYTES or
 * TSTORE_CACHE_POLICY).
 */
int ts__store_cache_open(ts_store *st, int64_t cache_bytes);

/** Free st->cache, then st->residency. */
void ts__store_cache_close(ts_store *st);

#endif
