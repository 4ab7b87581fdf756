/*
 * The LMDB environment of a store: transactions that hold map_lock (engine/handle.h, invariant
 * 5), write transactions retried after growing the map, the map's address and size, and the
 * translation of LMDB's return codes into TS_E* codes (the one place that does it).
 */
#ifndef TS_ENGINE_TXN_H
#define TS_ENGINE_TXN_H

#include <lmdb.h>

#include "engine/handle.h"

/** Translate an LMDB return code into a TS_E* code with context; sets the last error. */
int ts__err_from_mdb(int rc, const char *what);

/** Begin a read-only transaction (short-lived: end it promptly with ts__txn_abort, or
 *  ts__txn_commit). Holds map_lock shared until it ends (invariant 5); handles MDB_MAP_RESIZED
 *  (another process grew the map). 0 or a negative TS_E* code. */
int ts__txn_begin_read(ts_store *st, MDB_txn **out);

/** Begin a write transaction (holds map_lock shared until it ends). 0 or a negative TS_E* code.
 *  Most callers want ts__txn_write(), which also handles map growth. */
int ts__txn_begin_write(ts_store *st, MDB_txn **out);

/** Commit @p txn durably and release map_lock: when it returns 0 the commit is on disk
 *  (engine/txn.c invariant 4; unless the store was opened TS_OPEN_NOSYNC). Returns 0 or the
 *  untranslated LMDB/errno code, so that the caller can tell MDB_MAP_FULL (grow the map with
 *  ts__txn_grow_map() and redo the work) from other failures (translate with
 *  ts__err_from_mdb()). */
int ts__txn_commit(ts_store *st, MDB_txn *txn);

/** As ts__txn_commit(), but an interim commit: atomic, visible at once and kept when the
 *  process is killed, but a power loss may undo it (and every interim commit since the last
 *  durable one); the store on disk stays consistent. For the steps of a write that nothing
 *  can see until a later durable commit publishes it (a writer's batches, staged tensors).
 *  One flush instead of two. */
int ts__txn_commit_interim(ts_store *st, MDB_txn *txn);

/** mdb_txn_commit() made durable on an environment opened with MDB_NOMETASYNC (invariant 4):
 *  the meta page is flushed after a commit that wrote one. For commits outside
 *  ts__txn_commit() (the open's own transaction). Returns 0 or an LMDB/errno code. */
int ts__mdb_commit_durable(MDB_env *env, MDB_txn *txn);

/** Abort @p txn (read or write) and release map_lock. NULL accepted. */
void ts__txn_abort(ts_store *st, MDB_txn *txn);

/** Grow the map (double it, within map_max) under map_lock held exclusively and refresh
 *  map_base/map_size. The caller must hold no transaction. 0 or TS_ENOSPC. */
int ts__txn_grow_map(ts_store *st);

/** Find the mapping of the data file in /proc/self/maps and set map_base/map_size. Called at
 *  open and under map_lock held exclusively after a remap. */
int ts__txn_refresh_map(ts_store *st);

/** 1 if @p rc is one of our TS_E* codes, 0 for an LMDB code (MDB_KEYEXIST..MDB_LAST_ERRCODE,
 *  negative too) or an errno value (positive). */
static inline int ts__is_ts_code(int rc)
{
	return rc < 0 && rc > -1000;
}

/**
 * Run @p fn in a write transaction and commit it. @p fn returns 0 (commit), a TS_E* code
 * (abort, returned as is) or an LMDB or errno code (abort, translated with @p what as
 * context). On MDB_MAP_FULL, from @p fn or from the commit, the map is grown and @p fn runs
 * again from the start, so it must not keep state across calls. The caller holds no transaction.
 * @return 0; TS_ENOSPC when the disk is full or the map cannot grow (the store is unchanged);
 *         the error of @p fn; another negative TS_E* code.
 */
int ts__txn_write(ts_store *st, int (*fn)(void *ud, MDB_txn *txn), void *ud, const char *what);

/** ts__txn_write() with an interim commit (ts__txn_commit_interim()): for the steps of a write
 *  that a later durable transaction publishes. */
int ts__txn_write_interim(ts_store *st, int (*fn)(void *ud, MDB_txn *txn), void *ud,
			  const char *what);

#endif
