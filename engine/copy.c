/*
 * Copying a stored tensor from one store into another (ts_tensor_copy): its pages as they are,
 * sealed anew under the destination's tensor id, and its record. What `tstore import` uses to
 * move the pages it encoded into a spool store while another process held the destination.
 *
 * Invariants
 *   1. Nothing of the source is trusted unchecked: the record is decoded by ts__tensor_lookup(),
 *      each page key's LMDB path is checked before mdb_get() follows it, and each page is
 *      verified against the record (checksum, codec, rows, cols, payload length) before it is
 *      copied. A damaged source fails the copy with TS_ECORRUPT; the writer is aborted, so the
 *      destination keeps nothing of it.
 *   2. The source is read in one read transaction: the copy is of one version of the tensor
 *      even if another handle replaces it meanwhile.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "common/error.h"
#include "engine/format.h"
#include "engine/handle.h"
#include "engine/lmdbcheck.h"
#include "engine/page.h"
#include "engine/record.h"
#include "engine/txn.h"
#include "engine/writer.h"

TS_API int ts_tensor_copy(ts_store *dst, ts_store *src, const char *name,
			  const ts_write_opts *opts)
{
	ts__tensor_rec rec;
	ts_writer *w = NULL;
	MDB_txn *txn = NULL;
	uint8_t kb[TS_PAGE_KEY_SIZE];
	int rc;

	if (!dst || !src || !name)
		return ts__err(TS_EINVAL, "ts_tensor_copy: %s is NULL",
			       !dst ? "destination" : !src ? "source" : "name");
	if (dst == src)
		return ts__err(TS_EINVAL, "ts_tensor_copy: source and destination are one handle");
	if ((unsigned char)name[0] == TS_RESERVED_KEY_BYTE || strlen(name) > TS_MAX_NAME ||
	    !name[0])
		return ts__err(TS_EINVAL, "ts_tensor_copy: '%.64s' is not a tensor name", name);
	rc = ts__txn_begin_read(src, &txn);
	if (rc < 0)
		return rc;
	rc = ts__tensor_lookup(src, txn, name, &rec);
	if (rc < 0)
		goto out;
	rc = ts__writer_begin_copy(&w, dst, name, &rec, opts);
	if (rc < 0)
		goto out;
	for (uint64_t i = 0; i < rec.page_count; i++) {
		MDB_val key = {sizeof(kb), kb}, val;
		ts__page_key(kb, rec.id, i);
		rc = ts__lmdb_check_key(src, txn, "pages", kb, sizeof(kb));
		if (rc < 0)
			goto out;
		rc = mdb_get(txn, src->dbi_pages, &key, &val);
		if (rc == MDB_NOTFOUND) {
			rc = ts__err(TS_ECORRUPT, "store '%s': page %" PRIu64 " of tensor '%s' is "
				     "missing", src->path, i, name);
			goto out;
		}
		if (rc) {
			rc = ts__err_from_mdb(rc, name);
			goto out;
		}
		rc = ts__page_verify(val.mv_data, val.mv_size, &rec, name, i);
		if (rc < 0)
			goto out;
		rc = ts__writer_put_page(w, i, (const uint8_t *)val.mv_data + TS_PAGE_HEADER_SIZE,
					 val.mv_size - TS_PAGE_HEADER_SIZE);
		if (rc < 0)
			goto out;
	}
	rc = ts_writer_commit(NULL, w);
	w = NULL;
out:
	ts_writer_abort(w);
	if (txn)
		ts__txn_abort(src, txn);
	return rc;
}
