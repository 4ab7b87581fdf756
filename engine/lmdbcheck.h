/*
 * LMDB's structure checked before LMDB follows it (engine/lmdbcheck.c).
 */
#ifndef TS_ENGINE_LMDBCHECK_H
#define TS_ENGINE_LMDBCHECK_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/handle.h"

/** At open, before LMDB sees the file (pread only): both meta pages, every page of the main
 *  tree, and every page of the databases named in @p full (@p nfull names). 0; TS_ECORRUPT
 *  saying which page is damaged and how; an errno code if the file cannot be opened. */
int ts__lmdb_check_file(const char *path, uint64_t file_size, const char *const *full,
			int nfull);

/** In read transaction @p txn: the pages LMDB visits to look up @p key in database @p dbname
 *  ("tensors", "pages", ...), so that mdb_get() cannot leave the file. 0 (also for a write
 *  transaction, which is not checked) or TS_ECORRUPT naming the database and the page. */
int ts__lmdb_check_key(ts_store *st, MDB_txn *txn, const char *dbname, const void *key,
		       size_t klen);

/** In read transaction @p txn: every page of database @p dbname (before a cursor walks it),
 *  including key order across pages. 0 or TS_ECORRUPT. */
int ts__lmdb_check_tree(ts_store *st, MDB_txn *txn, const char *dbname);

#endif
