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

/*
 * The checks of many key lookups in one database within one read transaction (a reader's
 * window of page lookups): the database's record is found once, and a page checked once is
 * not checked again in the same transaction (engine/lmdbcheck.c, invariant 5). Stack-allocated
 * by the caller; valid only while @p txn is open and map_lock is held; not shared by threads.
 */
#define TS__LMDB_WINDOW_SLOTS 512
typedef struct ts__lmdb_window {
	const char *path, *db;
	const uint8_t *map;
	uint64_t psize, npages, root;
	unsigned flags, depth;
	int unchecked; /* a write transaction: nothing is checked (invariant 2) */
	size_t nchecked;
	uint64_t checked[TS__LMDB_WINDOW_SLOTS]; /* page number + 1 of each checked page; 0: free */
} ts__lmdb_window;

/** Begin window @p w on database @p dbname in transaction @p txn. 0, or TS_ECORRUPT if the
 *  database's record is damaged (another negative code if the environment cannot be read). */
int ts__lmdb_window_begin(ts__lmdb_window *w, ts_store *st, MDB_txn *txn, const char *dbname);

/** What ts__lmdb_check_key() checks for @p key, skipping the pages @p w has already checked.
 *  0 or TS_ECORRUPT naming the database and the page. */
int ts__lmdb_window_check_key(ts__lmdb_window *w, const void *key, size_t klen);

/*
 * Leaf pages read from the file instead of through the map (engine/reader.c reads a window's
 * leaves as one O_DIRECT batch: the map is opened without read-ahead, and each first touch of a
 * leaf through it is a synchronous fault of 65-135 us on our VM). A copy read while the
 * transaction is open holds what the map holds: a live reader's snapshot is never written.
 */

/** The leaf page of window @p w's database where @p key belongs, in *@p leaf: LMDB's descent
 *  through the branch pages, each checked (and remembered) as for a lookup; the root when the
 *  tree is one leaf. The leaf itself is not touched. 0; 1 if there is no leaf to read (an empty
 *  database, or a write transaction: look the key up through LMDB); TS_ECORRUPT. */
int ts__lmdb_window_leaf_of(ts__lmdb_window *w, const void *key, size_t klen, uint64_t *leaf);

/** Check @p pg, a copy of leaf page @p pgno of window @p w's database (psize bytes), as a
 *  lookup checks a leaf in the map: header, node index, every node inside the page, every big
 *  value's overflow run inside the file. 0 or TS_ECORRUPT naming the page. */
int ts__lmdb_window_leaf_check(ts__lmdb_window *w, const uint8_t *pg, uint64_t pgno);

/** A value found in a leaf: a big value's first overflow page (its bytes are at page + 16 in
 *  the file) or, for a value held in the leaf, a pointer into the leaf (overflow 0). */
typedef struct ts__lmdb_leaf_val {
	uint64_t overflow;
	const uint8_t *data;
	uint64_t size;
} ts__lmdb_leaf_val;

/** Look @p key up in leaf @p pg, checked by ts__lmdb_window_leaf_check(). 1 with *@p out
 *  filled (data points into @p pg), or 0 if the leaf does not hold the key. */
int ts__lmdb_leaf_get(const uint8_t *pg, const void *key, size_t klen, ts__lmdb_leaf_val *out);

/** In read transaction @p txn: every page of database @p dbname (before a cursor walks it),
 *  including key order across pages. 0 or TS_ECORRUPT. */
int ts__lmdb_check_tree(ts_store *st, MDB_txn *txn, const char *dbname);

#endif
