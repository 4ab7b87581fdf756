/*
 * The store's databases and its meta records (docs/FORMAT.md): opening the four databases,
 * writing the meta records of a new store and checking those of an existing one.
 */
#ifndef TS_ENGINE_META_H
#define TS_ENGINE_META_H

#include <lmdb.h>
#include <stdint.h>

#include "engine/handle.h"

/* Keys of the meta database. */
#define TS_META_FORMAT "format"
#define TS_META_CREATOR "creator"
#define TS_META_CREATED "created"
#define TS_META_NEXT_ID "next_id"
#define TS_META_METADATA "metadata" /* optional: ts_group_metadata_set() (engine/group.c) */

/** Open the store's databases in @p txn and check its meta records; with @p create, an empty
 *  environment becomes a store (databases and meta records written in @p txn). Runs in a
 *  read-only transaction for a read-only open, so that it creates nothing. */
int ts__meta_open(ts_store *st, MDB_txn *txn, int create);

/** In @p txn: the next tensor id (the "next_id" record, u64 little-endian). Returns 0, an LMDB
 *  code (MDB_NOTFOUND if the record is missing), or TS_ECORRUPT, with no message set, if it is
 *  not 8 bytes long. */
int ts__meta_next_id_get(uint64_t *out, ts_store *st, MDB_txn *txn);

/** In write transaction @p txn: set the next tensor id. 0 or an LMDB code. */
int ts__meta_next_id_put(ts_store *st, MDB_txn *txn, uint64_t next);

#endif
