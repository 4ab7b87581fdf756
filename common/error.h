/*
 * Errors: the thread-local last-error message and the translation of foreign codes.
 *
 * Invariants
 *   1. Every public function that returns a negative code has set the calling thread's last
 *      error message (one line, what and where) before returning it.
 *   2. Foreign codes (errno, LMDB's, io_uring's -errno) are translated here and only here.
 */
#ifndef TS_COMMON_ERROR_H
#define TS_COMMON_ERROR_H

#include "tstore.h"

/** Set the last error to the formatted message and return @p code (negative). */
int ts__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Prefix the current last error with "<formatted>: " and return @p code; for adding context. */
int ts__err_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Map an errno value to a TS_E* code (ENOSPC -> TS_ENOSPC, ENOMEM -> TS_ENOMEM, else TS_EIO). */
int ts__code_from_errno(int err);

/** Set the last error from errno @p err with context and return the translated code. */
int ts__err_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
