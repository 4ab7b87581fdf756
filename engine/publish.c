/*
 * Publishing a tensor record: the step ts_writer_commit() and ts_group_commit() share. The
 * record goes into the tensors database under the tensor's name, bound to it (engine/record.c);
 * the old version of that name, if any, is refused or replaced, and then its pages are freed in
 * the same transaction, so that readers see the old tensor whole or the new one whole.
 */
#include "config.h"

#include <string.h>

#include "common/error.h"
#include "engine/page.h"
#include "engine/publish.h"
#include "engine/record.h"

int ts__publish_record(ts_store *st, MDB_txn *txn, const char *name, const ts__tensor_rec *rec,
		       int replace)
{
	uint8_t rb[TS_RECORD_MAX];
	size_t len = strlen(name), n;
	MDB_val key = {len, (void *)name}, val;
	int rc = mdb_get(txn, st->dbi_tensors, &key, &val);

	if (rc == 0) {
		ts__tensor_rec old;

		if (!replace)
			return ts__err(TS_EEXIST, "tensor '%s' exists (TS_WRITE_REPLACE not set)",
				       name);
		/* A damaged old record cannot name its pages: they stay, as orphans. */
		if (ts__tensor_rec_decode_named(&old, name, len, val.mv_data, val.mv_size) == 0) {
			rc = ts__pages_delete(st, txn, old.id, NULL);
			if (rc)
				return rc;
		}
	} else if (rc != MDB_NOTFOUND) {
		return rc;
	}
	n = ts__tensor_rec_encode_named(rec, name, len, rb, sizeof(rb));
	if (n == 0)
		return ts__err(TS_EINTERNAL, "tensor '%s': cannot encode its record", name);
	val.mv_data = rb;
	val.mv_size = n;
	return mdb_put(txn, st->dbi_tensors, &key, &val, 0);
}
