/*
 * Creating a store so that a kill at any instant leaves no store or a whole one (engine/create.c).
 */
#ifndef TS_ENGINE_CREATE_H
#define TS_ENGINE_CREATE_H

#include "tstore.h"

/** Create a store with no tensors at @p path so that a kill at any instant leaves no store or
 *  a whole one (engine/create.c): built under a temporary name in the same directory, synced,
 *  then linked into place. Does nothing if a non-empty file is at @p path; replaces an empty
 *  one. 0 or a negative TS_E* code. */
int ts__store_create(const char *path, int64_t timeout_ms);
/** Remove what killed creations of the store at @p path left (their temporary files; never
 *  one whose creator is alive). Called by every open for writing. Reports nothing. */
void ts__store_remove_stale(const char *path);

#endif
