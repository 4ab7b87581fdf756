/*
 * Progress reporting on stderr for long work (import, export, fsck).
 *
 * Invariants
 *   1. When stderr is a terminal: one line redrawn in place (at most 10 times a second) with a
 *      bar, the amount done, the rate and the ETA; finished by a newline in progress_end().
 *   2. Otherwise: a plain line at most every PROGRESS_PLAIN_SECONDS seconds (the environment's
 *      TSTORE_PROGRESS_SECONDS if set, 0 meaning every update), and one at the end unless the
 *      work took less than that, so that logs stay short.
 *   3. A quiet progress (-q) prints nothing. Nothing is allocated.
 */
#ifndef TS_TOOLS_PROGRESS_H
#define TS_TOOLS_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_PLAIN_SECONDS 5.0

typedef struct progress {
	const char *label;
	uint64_t total;   /* units of work, e.g. bytes */
	uint64_t done;
	int bytes;        /* units are bytes: print them as sizes */
	int quiet;
	int tty;
	double t0;
	double last;
	double every; /* plain lines: seconds between lines */
	int drawn;
} progress;

/** Seconds on CLOCK_MONOTONIC: the command's one clock (its commands and benchmarks time with it;
 *  the library's is common/clock.h, which the command may not include). */
double progress_now(void);

void progress_begin(progress *p, const char *label, uint64_t total, int bytes, int quiet);
/** Add @p n units done and redraw if due; @p what (may be NULL) names the current item. */
void progress_add(progress *p, uint64_t n, const char *what);
/** Clear the in-place line (before printing a message) */
void progress_clear(progress *p);
void progress_end(progress *p);

/** Format @p bytes as "12.3 MB" (decimal units) into @p buf. */
const char *progress_size(char *buf, size_t size, double bytes);

#endif
