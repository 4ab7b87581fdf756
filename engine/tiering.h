/*
 * The store's residency set-up (engine/tiering.c): creates the read cache with the residency
 * policy and the store's hardware profile. Called by engine/store.c at open and close.
 */
#ifndef TS_ENGINE_TIERING_H
#define TS_ENGINE_TIERING_H

#include <stdint.h>

#include "tstore.h"

/**
 * Create st->res and st->cache: policy TSTORE_CACHE_POLICY (else tiered), budget
 * ts__cache_budget_resolve(@p cache_bytes), profile from the store's profile file (else the
 * built-in reference). @return 0; TS_ENOMEM.
 */
int ts__tier_open(ts_store *st, int64_t cache_bytes);

/** Free st->cache, then st->res. */
void ts__tier_close(ts_store *st);

#endif
