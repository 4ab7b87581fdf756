/*
 * Helpers shared by the store tests: a fresh temporary directory per test, a printed random
 * seed, random data, and raw (LMDB-level) views of a store that do not go through the code
 * under test.
 */
#ifndef TS_TESTS_STORETEST_H
#define TS_TESTS_STORETEST_H

#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

/** A fresh directory under $TMPDIR (or /tmp), removed at process exit. */
const char *st_tmpdir(void);
/** "<st_tmpdir()>/<name>" in a static rotating buffer. */
const char *st_path(const char *name);

/** The seed: TSTORE_TEST_SEED from the environment, else time-based; printed to stderr. */
uint64_t st_seed(const char *test);
uint64_t st_rand(uint64_t *s);
/** Uniform in [0, 1). */
double st_uniform(uint64_t *s);
/** Standard normal. */
double st_normal(uint64_t *s);

/** Fill @p n F32 values with N(0, 1) * scale. */
void st_fill_f32(float *x, size_t n, uint64_t *s, float scale);

/** Open (creating) a store for writing at st_path(name) with @p threads workers. */
ts_store *st_create(const char *name, int threads);

/** Count entries of the named database of the store file at @p path, read with LMDB directly
 *  (the store must be closed, or opened in this process by the same handle only). */
uint64_t st_raw_count(const char *path, const char *db);
/** The id of the last committed LMDB transaction of the store at @p path (read directly):
 *  the number of write transactions between two calls. No handle of this process may have the
 *  store open. */
uint64_t st_raw_txnid(const char *path);

/** Read the whole file at @p path (malloc'd); *len receives its size. */
uint8_t *st_read_file(const char *path, size_t *len);

/** The raw codec storing F32 values as they are. */
ts_codec_config st_raw_f32(void);

/** Write a tensor of F32 values in one call with @p cfg; fails the test on error. */
void st_write_f32(ts_store *st, const char *name, int ndim, const uint64_t *shape,
		  const ts_codec_config *cfg, const float *x, unsigned flags);

/** ts_store_check() with options {flags, cb, no progress, ud}. */
int st_check(uint64_t *problems, ts_store *st, unsigned flags,
	     void (*cb)(void *ud, const ts_problem *p), void *ud);

/** Largest |x| over n values. */
float st_amax(const float *x, size_t n);

/** Reset the process's peak resident set size (Linux: clear_refs 5). */
void st_peak_rss_reset(void);
/** The process's peak resident set size since start or the last reset, KiB (VmHWM); -1 if
 *  /proc cannot tell. */
long st_peak_rss_kib(void);

#endif
