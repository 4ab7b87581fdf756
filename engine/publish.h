/*
 * Publishing a tensor record, shared by ts_writer_commit() and ts_group_commit(): the name's
 * old version is refused or replaced (its pages freed), and the new record is put
 * (engine/publish.c).
 */
#ifndef TS_ENGINE_PUBLISH_H
#define TS_ENGINE_PUBLISH_H

#include <lmdb.h>

#include "engine/format.h"
#include "engine/handle.h"

/** In write transaction @p txn: put the record of tensor @p name (@p rec). If a tensor of that
 *  name exists, fail with TS_EEXIST unless @p replace, else delete the pages of its old version
 *  (a damaged old record cannot name its pages: they stay, as orphans that ts_store_check()
 *  finds and repairs). Returns 0, a TS_E* code or an LMDB/errno code, for ts__txn_write(). */
int ts__publish_record(ts_store *st, MDB_txn *txn, const char *name, const ts__tensor_rec *rec,
		       int replace);

#endif
