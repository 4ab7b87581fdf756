/*
 * The store: opening one LMDB environment in one file (MDB_NOSUBDIR) as a store, and closing
 * it. Open checks the file before LMDB follows it (engine/lmdbcheck.c), creates a new store
 * atomically (engine/create.c), opens the databases (engine/meta.c), removes what interrupted
 * writes left (engine/recovery.c), and sets up the pool, the cache and the I/O backend.
 *
 * Invariants
 *   1. A read-only open creates nothing: no data file, no database, no meta key.
 *   2. A handle opened for writing holds an exclusive flock on the data file until close
 *      (engine/handle.h, invariant 6). Another opener for writing waits for it up to
 *      ts_open_opts.busy_timeout_ms (engine/lockwait.c).
 *   3. The flock is kept only on the file still at the path: one removed or replaced while we
 *      waited (a creator that failed removed it) is let go and the open starts over.
 *   4. The lock file is the data file's own: an open whose lock file's last transaction id
 *      does not match the data file's meta pages (an old store's lock file, still held open
 *      elsewhere, under a new store's path) lets both go and tries again (lock_file_pairs()).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "engine/cache_api.h"
#include "engine/create.h"
#include "engine/handle.h"
#include "engine/io.h"
#include "engine/lockwait.h"
#include "engine/lmdbcheck.h"
#include "engine/meta.h"
#include "engine/pool.h"
#include "engine/recovery.h"
#include "engine/txn.h"
#include "engine/writer.h"

/* Map sizes: the first map is large (it costs address space only, no file space, since we do
 * not use MDB_WRITEMAP) and grows by doubling. */
#define MAP_SIZE_DEFAULT (64ull << 30)
#define MAP_SIZE_MIN (1ull << 20)
#define MAP_ALIGN (1ull << 20)


TS_API void ts_open_opts_init(ts_open_opts *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->flags = 0;
	opts->io = TS_IO_DEFAULT;
	opts->cache_bytes = -1;
	opts->map_size = 0;
	opts->threads = 0;
	opts->map_max = 0;
	opts->busy_timeout_ms = 0;
}

/* -- open and close ----------------------------------------------------------------------- */

/* Databases the open reads (meta) or walks when opening for writing (pending): checked whole. */
static const char *const open_checked_dbs[2] = {"meta", "pending"};

/* Returned by open_once() when the file it created, checked or locked for writing is no
 * longer at the path (a creator that failed removed it meanwhile): the open starts over. */
#define OPEN_AGAIN 1
#define OPEN_STALE 2 /* invariant 4: the lock file belongs to a store removed meanwhile */
/* how long an open waits for a stale lock file to be let go (naps of 1 ms doubling) */
#define STALE_WAIT_MS 2000

static int open_once(ts_store **out, const char *path, const ts_open_opts *opts_in);

/* 1 if the file at @p path, of stat @p sb, is blank (engine/create.c invariant 2): it holds no
 * store. A file larger than LMDB's largest two pages is not read. */
static int path_blank(const char *path, const struct stat *sb)
{
	int fd, blank;

	if (sb->st_size > 2 * 65536)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	blank = ts__store_file_blank(fd);
	close(fd);
	return blank;
}

/* A blank file holds no store, exactly as a missing one: TS_ENOTFOUND, and creating a store at
 * the path replaces it. */
static int blank_error(const char *path)
{
	return ts__err(TS_ENOTFOUND,
		       "no store at '%s' (a blank file: %s, nothing was ever committed; creating a "
		       "store there replaces it)",
		       path, "empty or LMDB's initial pages alone");
}

/* After LMDB's open, a file that is blank now though it was not at the checks before: the
 * store was removed meanwhile and a writer's mdb_env_open() made the file anew (it opens with
 * O_CREAT). The file itself is read: a lock file kept by a process of the removed store would
 * still carry that store's transaction id. 0 (not blank), OPEN_AGAIN for a creator (the next
 * round replaces it), or TS_ENOTFOUND. */
static int opened_blank(MDB_env *env, unsigned flags, const char *path)
{
	mdb_filehandle_t fd = -1;

	if (mdb_env_get_fd(env, &fd) != 0 || fd < 0 || !ts__store_file_blank(fd))
		return 0;
	return (flags & TS_OPEN_CREATE) ? OPEN_AGAIN : blank_error(path);
}

/*
 * Invariant 4. LMDB keeps the last transaction id in the lock file (STORE-lock), which the first
 * process to open it fills from the data file's meta pages; every later opener trusts it, and a
 * write transaction builds on the meta page that id names. When a store is removed and another
 * is created at the same path while a process still holds the old lock file open (a waiting
 * writer that has not yet seen the removal, or the remover itself between its two unlinks), a
 * new opener pairs the new data file with the old lock file: its writes would build on the
 * wrong meta page and undo other processes' commits. So an open checks the pair: a writer (it
 * holds the flock, so no commit is in flight) needs the lock file's id to be the data file's
 * newest meta page's; a reader allows a commit in flight (the meta page written, the lock
 * file's id not yet). A pair that does not match is let go and the open tried again once the
 * old lock file's holders have had time to let it go (the next first opener refills it).
 */
static int lock_file_pairs(MDB_env *env, MDB_txn *txn, int writer)
{
	MDB_envinfo info;
	size_t id = mdb_txn_id(txn);

	if (mdb_env_info(env, &info) != 0)
		return 0;
	if (writer)
		return id == info.me_last_txnid + 1;
	return id == info.me_last_txnid || id + 1 == info.me_last_txnid;
}

TS_API int ts_store_open(ts_store **out, const char *path, const ts_open_opts *opts)
{
	int64_t nap_ms = 1, napped_ms = 0;
	int rc;

	for (int tries = 0;; tries++) {
		rc = open_once(out, path, opts);
		if (rc == OPEN_AGAIN && tries >= 8)
			return ts__err(TS_EBUSY, "store '%s' keeps being removed and recreated", path);
		if (rc == OPEN_AGAIN && tries > 0) {
			/* the other process is in the middle of it: give it a moment (1-64 ms) */
			struct timespec ts = {0, (1L << (tries < 7 ? tries - 1 : 6)) * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (rc == OPEN_STALE) {
			if (napped_ms >= STALE_WAIT_MS)
				return ts__err(TS_EBUSY,
					       "store '%s': its lock file '%s-lock' belongs to a store "
					       "removed meanwhile and is still open in another process",
					       path, path);
			struct timespec ts = {0, (long)nap_ms * 1000000L};
			nanosleep(&ts, NULL);
			napped_ms += nap_ms;
			nap_ms = nap_ms * 2 > 64 ? 64 : nap_ms * 2;
			continue;
		}
		if (rc != OPEN_AGAIN)
			return rc;
	}
}

static int open_once(ts_store **out, const char *path, const ts_open_opts *opts_in)
{
	ts_open_opts opts;
	ts_store *st = NULL;
	MDB_txn *txn = NULL;
	struct stat sb;
	unsigned envflags = MDB_NOSUBDIR | MDB_NORDAHEAD | MDB_NOTLS;
	int rc, exists, blank, locks_ok = 0;

	if (!out || !path || !*path)
		return ts__err(TS_EINVAL, "ts_store_open: %s is NULL or empty", out ? "path" : "out");
	*out = NULL;
	if (opts_in)
		opts = *opts_in;
	else
		ts_open_opts_init(&opts);
	if (opts.flags & ~(TS_OPEN_WRITE | TS_OPEN_CREATE | TS_OPEN_NOSYNC))
		return ts__err(TS_EINVAL, "ts_store_open('%s'): unknown flags %#x", path, opts.flags);
	if (opts.flags & TS_OPEN_NOSYNC)
		envflags |= MDB_NOSYNC | MDB_NOMETASYNC; /* a scratch store: no flush per commit */
	if (opts.flags & TS_OPEN_CREATE)
		opts.flags |= TS_OPEN_WRITE;
	if (opts.io < TS_IO_DEFAULT || opts.io > TS_IO_MMAP)
		return ts__err(TS_EINVAL, "ts_store_open('%s'): unknown I/O backend %d", path,
			       (int)opts.io);
	if (opts.threads < 0)
		return ts__err(TS_EINVAL, "ts_store_open('%s'): threads is %d", path, opts.threads);

	exists = stat(path, &sb) == 0;
	if (!exists && errno != ENOENT)
		return ts__err_errno(errno, "opening store '%s'", path);
	if (!exists && !(opts.flags & TS_OPEN_CREATE))
		return ts__err(TS_ENOTFOUND, "no store at '%s'", path);
	if (exists && !S_ISREG(sb.st_mode))
		return ts__err(TS_EINVAL, "'%s' is not a regular file", path);
	blank = exists && path_blank(path, &sb);
	if ((opts.flags & TS_OPEN_CREATE) && (!exists || blank)) {
		/* Never initialise in place: a kill would leave a file no open accepts. */
		rc = ts__store_create(path, opts.busy_timeout_ms);
		if (rc < 0)
			return rc;
		exists = stat(path, &sb) == 0;
		if (!exists && errno == ENOENT)
			return OPEN_AGAIN; /* created, then removed by a creator that failed */
		if (!exists)
			return ts__err_errno(errno, "opening new store '%s'", path);
		blank = path_blank(path, &sb);
	}
	if (blank) {
		/* Blank after the creation above: another process's writer opened the store just
		 * as its creator removed it again (a failed save_file), and LMDB's open made the
		 * file anew. Start over: a file still blank then is replaced by the creation
		 * (engine/create.c invariant 2). */
		if (opts.flags & TS_OPEN_CREATE)
			return OPEN_AGAIN;
		return blank_error(path);
	}
	if (exists && sb.st_size > 0 && sb.st_size < 2 * 4096)
		return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (%lld bytes)", path,
			       (long long)sb.st_size);

	/* LMDB trusts its meta, branch and leaf pages: check what the open will follow first. */
	if (exists && sb.st_size > 0 &&
	    (rc = ts__lmdb_check_file(path, (uint64_t)sb.st_size, open_checked_dbs, 2)) < 0)
		return rc == TS_ENOTFOUND && (opts.flags & TS_OPEN_CREATE) ? OPEN_AGAIN : rc;

	st = calloc(1, sizeof(*st));
	if (!st)
		return ts__err(TS_ENOMEM, "opening store '%s': out of memory", path);
	st->path = strdup(path);
	if (!st->path) {
		free(st);
		return ts__err(TS_ENOMEM, "opening store '%s': out of memory", path);
	}
	st->flags = opts.flags;
	st->map_max = opts.map_max;
	st->io = TS_IO_MMAP;
	if (pthread_mutex_init(&st->writer_lock, NULL) ||
	    pthread_rwlock_init(&st->map_lock, NULL)) {
		free(st->path);
		free(st);
		return ts__err(TS_ENOMEM, "opening store '%s': cannot create locks", path);
	}
	locks_ok = 1;

	rc = mdb_env_create(&st->env);
	if (rc) {
		rc = ts__err_from_mdb(rc, "creating the LMDB environment");
		goto fail;
	}
	mdb_env_set_maxdbs(st->env, 8);
	mdb_env_set_maxreaders(st->env, 512);
	if (opts.flags & TS_OPEN_WRITE) {
		uint64_t size = opts.map_size ? opts.map_size : MAP_SIZE_DEFAULT;
		if (exists && (uint64_t)sb.st_size * 2 > size && !opts.map_size)
			size = (uint64_t)sb.st_size * 2;
		if (size < MAP_SIZE_MIN)
			size = MAP_SIZE_MIN;
		if (opts.map_max && size > opts.map_max)
			size = opts.map_max < MAP_SIZE_MIN ? MAP_SIZE_MIN : opts.map_max;
		size = (size + MAP_ALIGN - 1) / MAP_ALIGN * MAP_ALIGN;
		rc = mdb_env_set_mapsize(st->env, size);
		if (rc) {
			rc = ts__err_from_mdb(rc, "setting the map size");
			goto fail;
		}
		/* each commit flushes its pages, then a durable one its meta page too
		 * (engine/txn.c invariant 4) */
		envflags |= MDB_NOMETASYNC;
	} else {
		envflags |= MDB_RDONLY;
	}
	rc = mdb_env_open(st->env, path, envflags, 0644);
	if (rc) {
		if (rc == MDB_INVALID)
			rc = ts__err(TS_ECORRUPT, "'%s' is not a tstore store (not an LMDB file)",
				     path);
		else if (rc == MDB_VERSION_MISMATCH)
			rc = ts__err(TS_EVERSION, "'%s' was written by an incompatible LMDB version",
				     path);
		else if (rc == ENOENT && (opts.flags & TS_OPEN_CREATE)) {
			/* the file checked above went away meanwhile (a creator that failed
			 * removed it): start over, creating it if it is still missing */
			rc = OPEN_AGAIN;
			goto fail;
		} else if (rc == ENOENT && !exists)
			rc = ts__err(TS_ENOTFOUND, "no store at '%s'", path);
		else
			rc = ts__err_from_mdb(rc, path);
		goto fail;
	}

	if (opts.flags & TS_OPEN_WRITE) {
		mdb_filehandle_t fd = -1;
		/* Invariant 2; a writer that holds it (another process or handle) is waited for
		 * up to busy_timeout_ms; a killed one drops it, and the recovery below then
		 * removes what its interrupted writes left. */
		if (mdb_env_get_fd(st->env, &fd) == 0 &&
		    (rc = ts__flock_wait(fd, opts.busy_timeout_ms)) != 0) {
			rc = rc > 0 ? ts__err(TS_EBUSY, "store '%s' is open for writing elsewhere", path)
				    : ts__err_errno(-rc, "locking store '%s' for writing", path);
			goto fail;
		}
		struct stat fsb, psb;
		if (fd >= 0 && (fstat(fd, &fsb) != 0 || stat(path, &psb) != 0 ||
				fsb.st_ino != psb.st_ino || fsb.st_dev != psb.st_dev)) {
			rc = OPEN_AGAIN;
			goto fail;
		}
		/* checked once we hold the file: a creator replacing it has finished */
		if ((rc = opened_blank(st->env, opts.flags, path)) != 0)
			goto fail;
		/* A writer waited for may have grown the map meanwhile: adopt its size. */
		for (int tries = 0; (rc = mdb_txn_begin(st->env, NULL, 0, &txn)) == MDB_MAP_RESIZED &&
				    tries < 8;
		     tries++)
			mdb_env_set_mapsize(st->env, 0);
	} else {
		if ((rc = opened_blank(st->env, opts.flags, path)) != 0)
			goto fail;
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	}
	if (rc == 0 && !lock_file_pairs(st->env, txn, (opts.flags & TS_OPEN_WRITE) != 0)) {
		mdb_txn_abort(txn);
		txn = NULL;
		rc = OPEN_STALE;
		goto fail;
	}
	if (rc) {
		rc = ts__err_from_mdb(rc, "opening the store");
		goto fail;
	}
	rc = ts__meta_open(st, txn, (opts.flags & TS_OPEN_CREATE) != 0);
	if (rc < 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = ts__mdb_commit_durable(st->env, txn);
	if (rc) {
		rc = ts__err_from_mdb(rc, "opening the store");
		goto fail;
	}
	rc = ts__txn_refresh_map(st);
	if (rc < 0)
		goto fail;

	st->threads = opts.threads;
	if (st->threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		st->threads = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
	}
	rc = ts__pool_create(&st->pool, st->threads);
	if (rc < 0)
		goto fail;

	if (opts.flags & TS_OPEN_WRITE) {
		ts__store_remove_stale(path);
		rc = ts__recovery_run(st, NULL);
		if (rc < 0)
			goto fail;
	}

	rc = ts__store_cache_open(st, opts.cache_bytes); /* the cache with its residency policy */
	if (rc < 0)
		goto fail;
	rc = ts__io_open(st, opts.io);
	if (rc < 0)
		goto fail;
	*out = st;
	return 0;

fail:
	ts__store_cache_close(st);
	if (st->pool)
		ts__pool_free(st->pool);
	if (st->env)
		mdb_env_close(st->env);
	if (locks_ok) {
		pthread_mutex_destroy(&st->writer_lock);
		pthread_rwlock_destroy(&st->map_lock);
	}
	free(st->path);
	free(st);
	return rc;
}

TS_API void ts_store_close(ts_store *st)
{
	if (!st)
		return;
	ts__io_close(st);
	ts__store_cache_close(st);
	ts__pool_free(st->pool);
	ts__writer_spare_free(st);
	/* Closing the environment closes the data file, which releases the writer's flock. */
	mdb_env_close(st->env);
	pthread_mutex_destroy(&st->writer_lock);
	pthread_rwlock_destroy(&st->map_lock);
	free(st->path);
	free(st);
}

TS_API ts_io_backend ts_store_io_backend(const ts_store *st)
{
	return st ? st->io : TS_IO_DEFAULT;
}
