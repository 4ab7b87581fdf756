/*
 * The LMDB environment of a store: transactions, map growth, and LMDB's return codes translated
 * into TS_E* codes.
 *
 * Invariants
 *   1. Every transaction holds map_lock shared from begin to end (engine/handle.h invariant 5);
 *      mdb_env_set_mapsize() runs only with map_lock held exclusively, hence with no
 *      transaction of this process active.
 *   2. map_base is the address at which the data file's first byte is mapped; it is re-read
 *      from /proc/self/maps after every remap, because the reader turns map addresses of LMDB
 *      overflow pages into file offsets with it.
 *   3. LMDB return codes become TS_E* codes here and nowhere else (ts__err_from_mdb).
 *   4. A writing handle's environment runs with MDB_NOMETASYNC: every commit flushes its data
 *      pages (fdatasync) before it writes its meta page, so the file on disk is always a
 *      consistent state, the last or the one before (LMDB keeps the pages of both). A durable
 *      commit (ts__txn_commit, ts__txn_write) then flushes the meta page too: two flushes, as
 *      LMDB's default commit does. An interim commit (ts__txn_commit_interim,
 *      ts__txn_write_interim) stops after the first: a power loss may undo it, never damage
 *      what a durable commit left. A TS_OPEN_NOSYNC handle flushes nothing (mdb_env_sync
 *      without force does nothing under MDB_NOSYNC).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/error.h"
#include "engine/txn.h"

int ts__err_from_mdb(int rc, const char *what)
{
	const char *msg = mdb_strerror(rc);
	int code;

	if (!what)
		what = "store";
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		code = TS_ENOTFOUND;
		break;
	case MDB_KEYEXIST:
		code = TS_EEXIST;
		break;
	case MDB_MAP_FULL:
		code = TS_ENOSPC;
		break;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_INCOMPATIBLE:
	case MDB_BAD_DBI:
		code = TS_ECORRUPT;
		break;
	case MDB_VERSION_MISMATCH:
		code = TS_EVERSION;
		break;
	case MDB_READERS_FULL:
	case MDB_MAP_RESIZED:
	case MDB_BAD_RSLOT:
		code = TS_EBUSY;
		break;
	case MDB_BAD_VALSIZE:
		code = TS_EINVAL;
		break;
	case MDB_PANIC:
		code = TS_EIO;
		break;
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:
	case MDB_DBS_FULL:
	case MDB_TLS_FULL:
	case MDB_BAD_TXN:
		code = TS_EINTERNAL;
		break;
	default:
		code = rc > 0 ? ts__code_from_errno(rc) : TS_EIO;
		break;
	}
	return ts__err(code, "%s: %s", what, msg);
}

/* -- transactions ------------------------------------------------------------------------- */

/* With map_lock held exclusively: adopt the map size another process committed. */
static int adopt_resized_map(ts_store *st)
{
	int rc = mdb_env_set_mapsize(st->env, 0);
	if (rc)
		return ts__err_from_mdb(rc, "remapping the store after another process grew it");
	return ts__txn_refresh_map(st);
}

/* Begin a transaction with map_lock held shared until it ends, adopting a map another process
 * grew (MDB_MAP_RESIZED) and trying again. */
static int txn_begin(ts_store *st, unsigned flags, const char *what, MDB_txn **out)
{
	*out = NULL;
	for (int attempt = 0; attempt < 8; attempt++) {
		MDB_txn *txn = NULL;
		int rc;

		pthread_rwlock_rdlock(&st->map_lock);
		rc = mdb_txn_begin(st->env, NULL, flags, &txn);
		if (rc == 0) {
			*out = txn;
			return 0;
		}
		pthread_rwlock_unlock(&st->map_lock);
		if (rc != MDB_MAP_RESIZED)
			return ts__err_from_mdb(rc, what);
		pthread_rwlock_wrlock(&st->map_lock);
		rc = adopt_resized_map(st);
		pthread_rwlock_unlock(&st->map_lock);
		if (rc < 0)
			return rc;
	}
	return ts__err(TS_EBUSY, "%s: the map keeps being resized", what);
}

int ts__txn_begin_read(ts_store *st, MDB_txn **out)
{
	return txn_begin(st, MDB_RDONLY, "beginning a read transaction", out);
}

int ts__txn_begin_write(ts_store *st, MDB_txn **out)
{
	*out = NULL;
	if (!(st->flags & TS_OPEN_WRITE))
		return ts__err(TS_EREADONLY, "store '%s' is opened read-only", st->path);
	return txn_begin(st, 0, "beginning a write transaction", out);
}

int ts__mdb_commit_durable(MDB_env *env, MDB_txn *txn)
{
	MDB_envinfo before, after;
	int rc;

	if (mdb_env_info(env, &before))
		before.me_last_txnid = 0;
	rc = mdb_txn_commit(txn);
	/* invariant 4: the meta page of a commit that wrote one reaches the disk */
	if (rc == 0 && (mdb_env_info(env, &after) || after.me_last_txnid != before.me_last_txnid))
		rc = mdb_env_sync(env, 0);
	return rc;
}

int ts__txn_commit(ts_store *st, MDB_txn *txn)
{
	int rc = ts__mdb_commit_durable(st->env, txn);
	pthread_rwlock_unlock(&st->map_lock);
	return rc;
}

int ts__txn_commit_interim(ts_store *st, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);
	pthread_rwlock_unlock(&st->map_lock);
	return rc;
}

void ts__txn_abort(ts_store *st, MDB_txn *txn)
{
	if (!txn)
		return;
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->map_lock);
}

static int txn_write(ts_store *st, int (*fn)(void *ud, MDB_txn *txn), void *ud, const char *what,
		     int durable)
{
	for (;;) {
		MDB_txn *txn;
		int rc = ts__txn_begin_write(st, &txn);
		if (rc < 0)
			return rc;
		rc = fn(ud, txn);
		if (rc != 0) {
			ts__txn_abort(st, txn);
		} else {
			rc = durable ? ts__txn_commit(st, txn) : ts__txn_commit_interim(st, txn);
			if (rc == 0)
				return 0;
		}
		if (ts__is_ts_code(rc))
			return rc;
		if (rc != MDB_MAP_FULL)
			return ts__err_from_mdb(rc, what);
		rc = ts__txn_grow_map(st);
		if (rc < 0)
			return ts__err_wrap(rc, "%s", what);
	}
}

int ts__txn_write(ts_store *st, int (*fn)(void *ud, MDB_txn *txn), void *ud, const char *what)
{
	return txn_write(st, fn, ud, what, 1);
}

int ts__txn_write_interim(ts_store *st, int (*fn)(void *ud, MDB_txn *txn), void *ud,
			  const char *what)
{
	return txn_write(st, fn, ud, what, 0);
}

/* -- the map ------------------------------------------------------------------------------ */

int ts__txn_refresh_map(ts_store *st)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	MDB_envinfo info;
	mdb_filehandle_t fd;
	struct stat sb;
	FILE *f = NULL;
	char line[4096];
	uintptr_t probe;
	int rc, found = 0;

	/* An address certainly inside the data file's mapping: a value read in a read-only
	 * transaction points into the map (we never use MDB_WRITEMAP, so writes never alias it).
	 * A raw transaction: callers hold map_lock already. */
	rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return ts__err_from_mdb(rc, "locating the store's map");
	rc = mdb_cursor_open(txn, st->dbi_meta, &cur);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); /* the meta records always exist */
	if (cur)
		mdb_cursor_close(cur);
	if (rc) {
		mdb_txn_abort(txn);
		return ts__err_from_mdb(rc, "locating the store's map");
	}
	probe = (uintptr_t)val.mv_data;
	mdb_txn_abort(txn);

	if (mdb_env_info(st->env, &info) || mdb_env_get_fd(st->env, &fd) || fstat(fd, &sb))
		return ts__err(TS_EIO, "locating the map of '%s': cannot query the environment",
			       st->path);
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return ts__err_errno(errno, "locating the map of '%s': /proc/self/maps", st->path);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off, ino;
		unsigned maj, min;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perms, &off, &maj, &min,
			   &ino) != 7)
			continue;
		if (probe < lo || probe >= hi)
			continue;
		if (ino != (unsigned long long)sb.st_ino || maj != major(sb.st_dev) ||
		    min != minor(sb.st_dev) || off > lo)
			break;
		st->map_base = (uintptr_t)(lo - off);
		found = 1;
		break;
	}
	fclose(f);
	if (!found)
		return ts__err(TS_EINTERNAL,
			       "locating the map of '%s': no mapping of the data file holds %#" PRIxPTR,
			       st->path, probe);
	st->map_size = info.me_mapsize;
	return 0;
}

int ts__txn_grow_map(ts_store *st)
{
	MDB_envinfo info;
	uint64_t want;
	void *probe;
	int rc;

	pthread_rwlock_wrlock(&st->map_lock);
	if (mdb_env_info(st->env, &info)) {
		pthread_rwlock_unlock(&st->map_lock);
		return ts__err(TS_EIO, "growing the map of '%s': cannot query the environment",
			       st->path);
	}
	want = (uint64_t)info.me_mapsize * 2;
	if (st->map_max && want > st->map_max)
		want = st->map_max;
	if (want <= info.me_mapsize) {
		pthread_rwlock_unlock(&st->map_lock);
		return ts__err(TS_ENOSPC, "store '%s' is full: its map of %zu bytes may not grow",
			       st->path, info.me_mapsize);
	}
	/* LMDB unmaps before it maps anew and is unusable if the new mapping fails: make sure
	 * the address space is there first. */
	probe = mmap(NULL, want, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (probe == MAP_FAILED) {
		pthread_rwlock_unlock(&st->map_lock);
		return ts__err(TS_ENOSPC, "store '%s' is full: cannot map %" PRIu64 " bytes",
			       st->path, want);
	}
	munmap(probe, want);
	rc = mdb_env_set_mapsize(st->env, want);
	if (rc) {
		pthread_rwlock_unlock(&st->map_lock);
		return ts__err_from_mdb(rc, "growing the store's map");
	}
	rc = ts__txn_refresh_map(st);
	pthread_rwlock_unlock(&st->map_lock);
	return rc;
}
