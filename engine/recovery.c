/*
 * Recovery: removing what writes that will never be published left in the store. A write
 * commits its pages in batches before its record (engine/writer.c), under a pending entry
 * (tensor id -> name) that lists it as unfinished; a crash, a kill or an abort that could not
 * finish leaves pages that no record names. The next writer, and every open for writing,
 * removes them here.
 *
 * Invariants
 *   1. Only ids in the pending database are touched, and never one staged in the handle's open
 *      write group (engine/group.c invariant 3): one writer process per store (engine/handle.h
 *      invariant 6) makes every other pending entry a dead write.
 *   2. A pending entry goes in the same transaction as the last of its pages, so a failure
 *      halfway leaves an entry that the next run finds again.
 */
#include "config.h"

#include <pthread.h>

#include "common/byteorder.h"
#include "common/error.h"
#include "engine/group.h"
#include "engine/page.h"
#include "engine/recovery.h"
#include "engine/txn.h"

typedef struct cleanup_ctx {
	ts_store *st;
	uint64_t only_id; /* 0: every pending id */
	uint64_t removed;
	const ts_group *keep; /* the open write group, whose staged ids stay (or NULL) */
} cleanup_ctx;

static int cleanup_txn(void *ud, MDB_txn *txn)
{
	cleanup_ctx *c = ud;
	ts_store *st = c->st;
	MDB_cursor *cur;
	MDB_val key, val;
	int rc;

	c->removed = 0;
	rc = mdb_cursor_open(txn, st->dbi_pending, &cur);
	if (rc)
		return rc;
	rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (rc == 0) {
		uint64_t id = key.mv_size == 8 ? ts__get_be64(key.mv_data) : 0;
		if ((c->only_id == 0 && !ts__group_owns(c->keep, id)) ||
		    (c->only_id && id == c->only_id)) {
			if (id != 0) {
				rc = ts__pages_delete(st, txn, id, NULL);
				if (rc)
					break;
			}
			rc = mdb_cursor_del(cur, 0);
			if (rc)
				break;
			c->removed++;
			rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
			continue;
		}
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int ts__recovery_run(ts_store *st, uint64_t *removed)
{
	cleanup_ctx c = {st, 0, 0, NULL};
	MDB_txn *txn;
	MDB_stat ms;
	int rc;

	if (removed)
		*removed = 0;
	/* The caller holds the writer slot, so no tensor can be staged meanwhile; a group opened
	 * after this snapshot has none yet. */
	pthread_mutex_lock(&st->writer_lock);
	c.keep = st->group;
	pthread_mutex_unlock(&st->writer_lock);
	rc = ts__txn_begin_read(st, &txn);
	if (rc < 0)
		return rc;
	rc = mdb_stat(txn, st->dbi_pending, &ms);
	ts__txn_abort(st, txn);
	if (rc)
		return ts__err_from_mdb(rc, "reading the pending database");
	if (ms.ms_entries == 0 || (c.keep && ms.ms_entries == c.keep->n))
		return 0; /* nothing, or only the open group's staged tensors (engine/group.c invariant 3) */
	rc = ts__txn_write(st, cleanup_txn, &c, "removing interrupted writes");
	if (rc < 0)
		return rc;
	if (removed)
		*removed = c.removed;
	return 0;
}

int ts__recovery_discard(ts_store *st, MDB_txn *txn, uint64_t id)
{
	cleanup_ctx c = {st, id, 0, NULL};
	return cleanup_txn(&c, txn);
}
