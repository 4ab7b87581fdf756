/*
 * The engine's clock: seconds on CLOCK_MONOTONIC, for timing and deadlines (never wall time).
 * The command has its own, progress_now() (tools/cli/progress.h): it sees only tstore.h.
 */
#ifndef TS_COMMON_CLOCK_H
#define TS_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline double ts__clock_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The same clock in whole milliseconds, for deadlines counted in milliseconds. */
static inline int64_t ts__clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
