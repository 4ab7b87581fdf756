/*
 * The store handle: struct ts_store, what every engine module shares about an open store. Types
 * only; the modules that act on it have their own headers (txn.h: the LMDB environment and
 * transactions; meta.h: the databases and meta records; store.c: open and close).
 *
 * Invariants
 *   1. Tensor ids are never reused (a counter in the meta database), so a cached page keyed by
 *      (tensor id, page index) can never be served for a different tensor; deletion and
 *      replacement need no cache invalidation for correctness.
 *   2. A tensor record exists in the tensors database only once every one of its pages has been
 *      committed; pages of an unfinished write are listed in the pending database until commit
 *      or cleanup.
 *   3. No pointer into LMDB's map outlives the read transaction it was obtained in.
 *   4. map_base/map_size change only under map_lock held exclusively (map growth); anything that
 *      turns a map address into a file offset holds map_lock shared.
 *   5. Every transaction begun with ts__txn_begin_read/write (engine/txn.h) holds map_lock shared until it ends
 *      in ts__txn_commit or ts__txn_abort (never mdb_txn_commit/abort directly): LMDB may only
 *      remap (mdb_env_set_mapsize) when no transaction of the process is active. Consequently a
 *      thread never begins a write transaction while it holds a read transaction.
 *   6. One writer process per store: a store opened with TS_OPEN_WRITE holds an exclusive flock
 *      on its data file, so entries of the pending database belong to no live writer except
 *      this handle's own (cleanup of interrupted writes is then safe): the active writer's and
 *      the tensors staged in the handle's open write group (st->group), which cleanup skips.
 */
#ifndef TS_ENGINE_HANDLE_H
#define TS_ENGINE_HANDLE_H

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

struct ts__io;
struct ts__cache;
struct ts__residency;
struct ts__pool;

/* The on-disk format version written in the meta database (docs/FORMAT.md). */
#define TS_FORMAT_VERSION 1u

struct ts_store {
	MDB_env *env;
	MDB_dbi dbi_meta;    /* "meta": format version, creator, created, next tensor id, ... */
	MDB_dbi dbi_tensors; /* "tensors": name -> encoded ts__tensor_rec */
	MDB_dbi dbi_pages;   /* "pages": ts__page_key -> page (header + payload) */
	MDB_dbi dbi_pending; /* "pending": tensor id (BE) -> name: writes in progress */
	char *path;
	unsigned flags;  /* TS_OPEN_* */
	int threads;     /* worker threads, >= 1 */
	ts_io_backend io; /* in effect, never TS_IO_DEFAULT */
	struct ts__io *io_ctx;
	struct ts__cache *cache;
	struct ts__residency *residency; /* the cache's policy state (engine/cache_api.c only) */
	int profile_measured; /* the residency profile was measured (a profile file) */
	struct ts__pool *pool;

	pthread_mutex_t writer_lock; /* one writer at a time; guards writer_active, group */
	int writer_active;
	struct ts_group *group; /* the open write group, NULL if none (engine/group.c) */
	/* the last writer's batch buffers, kept for the next writer (engine/writer.c invariant 8):
	 * touched only by the thread that holds the writer slot */
	struct ts__writer_spare *writer_spare;

	pthread_rwlock_t map_lock; /* invariant 4 */
	uintptr_t map_base;        /* address of the data file's mapping */
	size_t map_size;
	uint64_t map_max; /* growth limit (ts_open_opts.map_max; 0: address space) */
};

#endif
