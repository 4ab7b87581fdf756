/*
 * Removing what writes that will never be published left in the store: the pages and pending
 * entries of interrupted writes (a crash, a kill, a failed abort), found through the pending
 * database, and of a discarded write (engine/recovery.c).
 */
#ifndef TS_ENGINE_RECOVERY_H
#define TS_ENGINE_RECOVERY_H

#include <lmdb.h>
#include <stdint.h>

#include "engine/handle.h"

/** Delete the pages and pending entries of interrupted writes (ids in the pending database),
 *  skipping the tensors staged in the handle's open write group. Called at open for writing
 *  and at ts_writer_begin(), by a thread holding the writer slot (or none open yet).
 *  *removed (may be NULL) receives the number of interrupted writes cleaned. 0 or a negative
 *  TS_E* code. */
int ts__recovery_run(ts_store *st, uint64_t *removed);

/** In write transaction @p txn: delete the pages and the pending entry of the write of tensor
 *  @p id (a writer that is aborted). Returns 0 or an LMDB/errno code, for ts__txn_write(). */
int ts__recovery_discard(ts_store *st, MDB_txn *txn, uint64_t id);

#endif
