/*
 * Creating a store so that a kill at any instant leaves no store or a whole one (engine/create.c).
 */
#ifndef TS_ENGINE_CREATE_H
#define TS_ENGINE_CREATE_H

#include "tstore.h"

/** Create a store with no tensors at @p path so that a kill at any instant leaves no store or
 *  a whole one (engine/create.c): built under a temporary name in the same directory, synced,
 *  then linked into place. Does nothing if a file that is not blank is at @p path; replaces a
 *  blank one. 0 or a negative TS_E* code. */
int ts__store_create(const char *path, int64_t timeout_ms);
/** 1 if open file @p fd is blank (engine/create.c invariant 2: empty, or LMDB's two initial
 *  meta pages with no commit: no data), else 0. */
int ts__store_file_blank(int fd);
/** Remove what killed creations of the store at @p path left (their temporary files; never
 *  one whose creator is alive). Called by every open for writing. Reports nothing. */
void ts__store_remove_stale(const char *path);

#endif
