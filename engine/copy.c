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
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/byteorder.h"
#include "engine/carry.h"
#include "engine/format.h"
#include "engine/geometry.h"
#include "engine/group.h"
#include "engine/handle.h"
#include "engine/lmdbcheck.h"
#include "engine/meta.h"
#include "engine/page.h"
#include "engine/publish.h"
#include "engine/record.h"
#include "engine/txn.h"
#include "engine/writer.h"

/* Tensor @p name, record @p rec, read in @p txn of @p src, through a writer of @p dst. */
static int copy_one(ts_store *dst, ts_store *src, MDB_txn *txn, const char *name,
		    const ts__tensor_rec *rec, const ts_write_opts *opts)
{
	ts_writer *w = NULL;
	uint8_t kb[TS_PAGE_KEY_SIZE];
	int rc = ts__writer_begin_copy(&w, dst, name, rec, opts);

	if (rc < 0)
		return rc;
	for (uint64_t i = 0; i < rec->page_count; i++) {
		MDB_val key = {sizeof(kb), kb}, val;
		ts__page_key(kb, rec->id, i);
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
		rc = ts__page_verify(val.mv_data, val.mv_size, rec, name, i);
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
	return rc;
}

TS_API int ts_tensor_copy(ts_store *dst, ts_store *src, const char *name,
			  const ts_write_opts *opts)
{
	ts__tensor_rec rec;
	MDB_txn *txn = NULL;
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
	if (rc == 0)
		rc = copy_one(dst, src, txn, name, &rec, opts);
	ts__txn_abort(src, txn);
	return rc;
}

/* -- many tensors at once ------------------------------------------------------------------ */

/*
 * ts_tensor_copy_many(): the tensors go in as few write transactions as their pages allow (up
 * to COPY_TXN_BYTES of pages each, whole tensors), instead of ts_tensor_copy()'s batches of a
 * writer and one staging or final transaction per tensor: a store's commit costs a flush to
 * disk, so a copy of many small tensors was bound by the flushes, not by its bytes. Each page is
 * written straight into LMDB's page (MDB_RESERVE) and sealed there. A tensor larger than
 * COPY_TXN_BYTES is copied by ts_tensor_copy()'s path (the writer's batches), so that the
 * transaction's dirty pages, which LMDB keeps in memory, stay bounded.
 *
 * Invariants (besides 1 and 2 above)
 *   3. A transaction of the copy holds, for each of its tensors, every page, the advance of
 *      the meta next_id past its id, and either its record (no group: published) or its
 *      pending entry (group: staged; the record goes to the group after the commit, and an
 *      earlier version of the name staged in the group loses its pages and pending entry in
 *      the same transaction), as a writer's transactions do (engine/writer.c, invariants 3
 *      and 5).
 *   4. The writer slot is held for each transaction (ts__writer_slot_take()), so no writer of
 *      the handle runs meanwhile and the group's items change only here.
 */
#define COPY_TXN_BYTES (8u << 20) /* LMDB holds a transaction's dirty pages in memory: the
				    writer's bound, two 4 MiB batches */

typedef struct copy_item {
	const char *name;
	char *owned;          /* a copy of the name, for the group (NULL without a group) */
	ts__tensor_rec src;   /* the source's record */
	ts__tensor_rec rec;   /* the copy's: the source's with a new id */
	uint64_t supersede;   /* group: id of the version of the name staged before, or 0 */
} copy_item;

typedef struct copy_txn_ctx {
	ts_store *dst, *src;
	MDB_txn *stxn;
	copy_item *it;
	size_t n;
	int replace, staged;
} copy_txn_ctx;

/* Page @p i of item @p c: read from the source, verified, put under the copy's id and sealed
 * anew in the destination's page (invariant 1). */
static int copy_page(copy_txn_ctx *x, ts__lmdb_window *win, MDB_txn *txn, const copy_item *c,
		     uint64_t i)
{
	uint8_t kb[TS_PAGE_KEY_SIZE], db[TS_PAGE_KEY_SIZE];
	MDB_val key = {sizeof(kb), kb}, val, dkey = {sizeof(db), db}, dval;
	ts__page_hdr hdr;
	uint64_t r0, nr, c0, nc;
	int rc;

	ts__page_key(kb, c->src.id, i);
	rc = ts__lmdb_window_check_key(win, kb, sizeof(kb));
	if (rc < 0)
		return rc;
	rc = mdb_get(x->stxn, x->src->dbi_pages, &key, &val);
	if (rc == MDB_NOTFOUND)
		return ts__err(TS_ECORRUPT, "store '%s': page %" PRIu64 " of tensor '%s' is missing",
			       x->src->path, i, c->name);
	if (rc)
		return ts__err_from_mdb(rc, c->name);
	rc = ts__page_verify(val.mv_data, val.mv_size, &c->src, c->name, i);
	if (rc < 0)
		return rc;
	ts__page_key(db, c->rec.id, i);
	dval.mv_size = val.mv_size;
	dval.mv_data = NULL;
	rc = mdb_put(txn, x->dst->dbi_pages, &dkey, &dval, MDB_RESERVE | MDB_APPEND);
	if (rc == MDB_KEYEXIST)
		rc = mdb_put(txn, x->dst->dbi_pages, &dkey, &dval, MDB_RESERVE | MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return ts__err(TS_ECORRUPT, "page %" PRIu64 " of tensor id %" PRIu64 " ('%s') exists "
			       "already", i, c->rec.id, c->name);
	if (rc)
		return rc;
	memcpy((uint8_t *)dval.mv_data + TS_PAGE_HEADER_SIZE,
	       (const uint8_t *)val.mv_data + TS_PAGE_HEADER_SIZE, val.mv_size - TS_PAGE_HEADER_SIZE);
	ts__geometry_page_rect(&c->rec, i, &r0, &nr, &c0, &nc);
	hdr.codec = (unsigned)c->rec.codec.codec;
	hdr.rows = (uint32_t)nr;
	hdr.cols = (uint32_t)nc;
	hdr.payload_len = (uint32_t)(val.mv_size - TS_PAGE_HEADER_SIZE);
	hdr.tensor_id = c->rec.id;
	hdr.page_index = i;
	hdr.checksum = 0;
	ts__page_seal(dval.mv_data, &hdr);
	return 0;
}

/* One transaction of the copy (invariant 3); run again from the start if the map grows. */
static int copy_txn(void *ud, MDB_txn *txn)
{
	copy_txn_ctx *x = ud;
	ts_store *st = x->dst;
	ts__lmdb_window win;
	uint64_t next;
	int rc = ts__meta_next_id_get(&next, st, txn);

	if (rc == TS_ECORRUPT || (rc == 0 && (next == 0 || next == UINT64_MAX)))
		return ts__err(TS_ECORRUPT, "store '%s': the next tensor id record is malformed",
			       st->path);
	if (rc)
		return rc;
	rc = ts__lmdb_window_begin(&win, x->src, x->stxn, "pages");
	if (rc < 0)
		return rc;
	for (size_t k = 0; k < x->n; k++) {
		copy_item *c = &x->it[k];
		MDB_val key = {strlen(c->name), (void *)c->name};
		uint8_t ib[8];
		MDB_val pk = {8, ib};

		c->rec = c->src;
		c->rec.id = next++;
		rc = ts__tensor_may_write(st, txn, c->name, x->replace);
		if (rc)
			return rc;
		for (uint64_t i = 0; i < c->src.page_count; i++) {
			rc = copy_page(x, &win, txn, c, i);
			if (rc)
				return rc;
		}
		if (!x->staged) {
			rc = ts__publish_record(st, txn, c->name, &c->rec, x->replace);
			if (rc)
				return rc;
			continue;
		}
		ts__put_be64(ib, c->rec.id);
		rc = mdb_put(txn, st->dbi_pending, &pk, &key, 0);
		if (rc)
			return rc;
		if (c->supersede && (rc = ts__carry_supersede(st, txn, c->supersede, c->name)) != 0)
			return rc;
	}
	return ts__meta_next_id_put(st, txn, next);
}

/* Items [0, n) in one transaction, holding the writer slot (invariant 4); staged items go to
 * the group once it committed. */
static int copy_batch(ts_store *dst, ts_store *src, MDB_txn *stxn, copy_item *it, size_t n,
		      const ts_write_opts *o)
{
	ts_group *g = o->group;
	copy_txn_ctx x = {dst, src, stxn, it, n, (o->flags & TS_WRITE_REPLACE) != 0, g != NULL};
	int rc = ts__writer_slot_take(dst, g, it[0].name);

	if (rc < 0)
		return rc;
	/* the group's carried stages first: ids, supersession and next_id then count them */
	rc = ts__group_carry_settle(dst);
	if (rc == 0 && g) {
		rc = ts__group_reserve(g, n);
		for (size_t k = 0; k < n && rc == 0; k++) {
			ptrdiff_t f = ts__group_find(g, it[k].name);
			it[k].supersede = f >= 0 ? g->items[f].rec.id : 0;
		}
	}
	if (rc == 0)
		rc = (g ? ts__txn_write_interim : ts__txn_write)(dst, copy_txn, &x, it[0].name);
	if (rc == 0 && g)
		for (size_t k = 0; k < n; k++) {
			ts__group_add(g, it[k].owned, &it[k].rec, x.replace);
			it[k].owned = NULL; /* the group's now */
		}
	ts__writer_slot_give(dst, g);
	if (rc < 0)
		return ts__err_wrap(rc, "copying tensor%s '%s'%s", n > 1 ? "s" : "", it[0].name,
				    n > 1 ? " and the next ones" : "");
	return 0;
}

TS_API int ts_tensor_copy_many(ts_store *dst, ts_store *src, const char *const *names, size_t n,
			       const ts_write_opts *opts)
{
	ts_write_opts o;
	copy_item *it = NULL;
	MDB_txn *txn = NULL;
	int rc = 0;

	if (!dst || !src || (!names && n))
		return ts__err(TS_EINVAL, "ts_tensor_copy_many: %s is NULL",
			       !dst ? "destination" : !src ? "source" : "names");
	if (dst == src)
		return ts__err(TS_EINVAL, "ts_tensor_copy_many: source and destination are one "
			       "handle");
	if (opts)
		o = *opts;
	else
		ts_write_opts_init(&o);
	o.flags &= TS_WRITE_REPLACE;
	if (!(dst->flags & TS_OPEN_WRITE))
		return ts__err(TS_EREADONLY, "store '%s' is opened read-only", dst->path);
	if (o.group && o.group->st != dst)
		return ts__err(TS_EINVAL, "ts_tensor_copy_many: the write group belongs to another "
			       "store");
	for (size_t k = 0; k < n; k++) {
		const char *name = names[k];
		if (!name || (unsigned char)name[0] == TS_RESERVED_KEY_BYTE || !name[0] ||
		    strlen(name) > TS_MAX_NAME)
			return ts__err(TS_EINVAL, "ts_tensor_copy_many: '%.64s' is not a tensor name",
				       name ? name : "(null)");
		for (size_t m = 0; m < k; m++)
			if (strcmp(names[m], name) == 0)
				return ts__err(TS_EINVAL, "ts_tensor_copy_many: '%s' is named twice",
					       name);
	}
	if (n == 0)
		return 0;
	it = calloc(n, sizeof(*it));
	if (!it)
		return ts__err(TS_ENOMEM, "ts_tensor_copy_many: out of memory");
	rc = ts__txn_begin_read(src, &txn);
	if (rc < 0)
		goto out;
	for (size_t k = 0; k < n && rc == 0; k++) {
		it[k].name = names[k];
		rc = ts__tensor_lookup(src, txn, names[k], &it[k].src);
		if (rc == 0 && o.group && !(it[k].owned = strdup(names[k])))
			rc = ts__err(TS_ENOMEM, "ts_tensor_copy_many: out of memory");
	}
	for (size_t k = 0; k < n && rc == 0;) {
		size_t e = k;
		uint64_t bytes = 0;
		if (it[k].src.stored_bytes > COPY_TXN_BYTES) {
			/* large: the writer's batches (invariant 2 of memory) */
			rc = copy_one(dst, src, txn, names[k], &it[k].src, &o);
			k++;
			continue;
		}
		while (e < n && it[e].src.stored_bytes <= COPY_TXN_BYTES &&
		       (e == k || bytes + it[e].src.stored_bytes <= COPY_TXN_BYTES))
			bytes += it[e++].src.stored_bytes;
		rc = copy_batch(dst, src, txn, it + k, e - k, &o);
		k = e;
	}
out:
	if (txn)
		ts__txn_abort(src, txn);
	for (size_t k = 0; k < n; k++)
		free(it[k].owned);
	free(it);
	return rc;
}
