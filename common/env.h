/*
 * The environment: every TSTORE_* variable the library reads goes through here, with one rule.
 * An unset or empty variable means the default. A set one must parse: otherwise the call that
 * reads it fails with TS_EINVAL, and ts_error_last() names the variable, its value and what was
 * expected. (The one exception is TSTORE_KERNEL, read once per process where nothing can fail:
 * any value but "scalar" means the best kernels the CPU has.)
 *
 * Variables (include/tstore.h and docs/ say what each does; `grep -rn ts__env` who reads it):
 * TSTORE_CACHE_BYTES, TSTORE_CACHE_POLICY, TSTORE_IO, TSTORE_IO_THREADS, TSTORE_PROFILE,
 * TSTORE_KERNEL, TSTORE_NT_STORES; test-only hooks are named TSTORE_TEST_*
 * (TSTORE_TEST_URING_FAIL). The command's own variables follow the same rule in
 * tools/cli/cli.c (cli_env_read), the one place that reads them.
 */
#ifndef TS_COMMON_ENV_H
#define TS_COMMON_ENV_H

#include <stdint.h>

/** The value of @p name, or NULL when it is unset or empty. */
const char *ts__env(const char *name);

/** Fail with TS_EINVAL: "<name>='<value>': expected <expected>". Returns TS_EINVAL. */
int ts__env_bad(const char *name, const char *value, const char *expected);

/**
 * A byte count: decimal digits with an optional suffix K, M or G (powers of 1024), which may be
 * followed by "iB" or "B" ("64M", "64MiB", "4096").
 * @return 0 when unset (*out untouched); 1 when set (*out receives it); TS_EINVAL.
 */
int ts__env_bytes(uint64_t *out, const char *name);

/** An integer in [@p min, @p max]. @return 0 when unset (*out untouched); 1; TS_EINVAL. */
int ts__env_int(long *out, const char *name, long min, long max);

#endif
