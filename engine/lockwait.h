/*
 * Waiting for another process's flock on a store's file, woken by its close (engine/lockwait.c).
 */
#ifndef TS_ENGINE_LOCKWAIT_H
#define TS_ENGINE_LOCKWAIT_H

#include <stdint.h>

/** Take an exclusive flock on @p fd, waiting up to @p timeout_ms for whoever holds it (0: not
 *  at all; negative: for ever). The waiter wakes when the file is closed anywhere (inotify) or
 *  after a nap of 1 ms doubling to 50 ms, and tries again. A holder that dies releases its
 *  flock with its descriptors, so a waiter proceeds then.
 *  0; 1 if the lock is still held when the time is up; -errno for another failure. */
int ts__flock_wait(int fd, int64_t timeout_ms);

#endif
