/*
 * Waiting for another process's exclusive flock on a store's file (a writer, or a creator that
 * replaces an empty file), up to a busy timeout, as SQLite's busy_timeout does for its locks.
 *
 * A flock has no wait with a timeout, and a blocking flock() cannot be bounded without signals
 * (which a library must not take). So a waiter tries LOCK_NB, and between tries sleeps until
 * the file is closed by someone or a nap ends, whichever comes first:
 *
 *   - an inotify watch on the file (through /proc/self/fd/N, so on the very inode we hold
 *     open, whatever its name is now) reports every close of it: IN_CLOSE_WRITE when a writer
 *     closes its descriptor, by close() or by dying, which is exactly when its flock goes. A
 *     waiter takes the lock within microseconds of its release, where a plain nap of 50 ms cost
 *     a serialised import of a few tenths of a second up to a sixth of its time per hand-over.
 *   - the nap (1 ms doubling to FLOCK_NAP_MAX_MS) stays as the fallback: a file system without
 *     inotify, no /proc, a watch refused (the per-user limit), a close missed. A spurious wake
 *     (a reader closing its descriptor) only costs one more LOCK_NB try.
 *
 * Invariants
 *   1. The watch is added before the first try: a release between a failed try and the wait
 *      has queued its close event, so the wait returns at once (no lost wake-up).
 *   2. Nothing outlives the call: the inotify descriptor is closed on every return.
 *   3. The result depends on flock() alone; inotify only decides when to try again.
 *   4. A close starts the naps over at 1 ms: the kernel reports the last close of a file
 *      (__fput: fsnotify_close) just before it drops the file's flocks (locks_remove_file), so
 *      the try right after the wake-up can still find the lock held.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/clock.h"
#include "engine/lockwait.h"

/* The longest nap between tries when no close wakes the waiter. */
#define FLOCK_NAP_MAX_MS 50

/* An inotify descriptor watching the closes of the file open as @p fd, or -1 (naps only). */
static int close_watch(int fd)
{
	char path[64];
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	if (in < 0)
		return -1;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (inotify_add_watch(in, path, IN_CLOSE_WRITE | IN_CLOSE_NOWRITE) < 0) {
		close(in);
		return -1;
	}
	return in;
}

/* Sleep up to @p ms, or until the watch @p in (if any) reports a close: 1 then, else 0. The
 * events are read and dropped (each only says "try again"). */
static int wait_close(int in, int64_t ms)
{
	if (in < 0) {
		struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		return 0;
	}
	struct pollfd p = {.fd = in, .events = POLLIN};
	if (poll(&p, 1, (int)ms) <= 0)
		return 0;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(in, buf, sizeof buf) > 0)
		;
	return 1;
}

int ts__flock_wait(int fd, int64_t timeout_ms)
{
	int64_t start = ts__clock_ms(), nap_ms = 1;
	int in = -1, rc;

	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			rc = 0;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			rc = -errno;
			break;
		}
		int64_t left = timeout_ms < 0 ? nap_ms : timeout_ms - (ts__clock_ms() - start);
		if (left <= 0) {
			rc = 1;
			break;
		}
		if (in < 0 && nap_ms == 1) {
			/* invariant 1: watch first, then one more try before the first wait */
			in = close_watch(fd);
			if (in >= 0)
				continue;
		}
		if (wait_close(in, nap_ms < left ? nap_ms : left))
			nap_ms = 1; /* invariant 4 */
		else if (nap_ms < FLOCK_NAP_MAX_MS)
			nap_ms = nap_ms * 2 > FLOCK_NAP_MAX_MS ? FLOCK_NAP_MAX_MS : nap_ms * 2;
	}
	if (in >= 0)
		close(in);
	return rc;
}
