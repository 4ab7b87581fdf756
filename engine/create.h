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
/** Take an exclusive flock on @p fd, waiting up to @p timeout_ms for whoever holds it (0: not
 *  at all; negative: for ever), sleeping with backoff between tries (1 ms doubling to 5 ms).
 *  A holder that dies releases its flock with its descriptors, so a waiter proceeds then.
 *  0; 1 if the lock is still held when the time is up; -errno for another failure. */
int ts__flock_wait(int fd, int64_t timeout_ms);
/** Remove what killed creations of the store at @p path left (their temporary files; never
 *  one whose creator is alive). Called by every open for writing. Reports nothing. */
void ts__store_remove_stale(const char *path);

#endif
