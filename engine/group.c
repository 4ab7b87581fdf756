/*
 * Write groups: tensors staged by several writers and published together, or not at all.
 *
 * A writer begun with ts_write_opts.group commits its pages as any writer does (in batches, so
 * memory stays bounded) and, at ts_writer_commit(), stages the tensor: its last pages and its
 * pending entry are committed, but its record is kept here, in memory, instead of being written
 * to the tensors database. ts_group_commit() then writes every staged record, deletes the
 * replaced tensors' pages and the staged tensors' pending entries, in ONE write transaction.
 * ts_group_abort() deletes the staged tensors' pages and pending entries. The store's metadata
 * (meta key "metadata", docs/FORMAT.md section 2) is staged here too and written, or removed, in
 * the publishing transaction; ts_store_metadata_get() reads it.
 *
 * Invariants
 *   1. A staged tensor's pages are all committed, and its id is in the pending database, from
 *      the moment it is staged until it is published or discarded. Readers never see it: no
 *      record names it.
 *   2. Publication is one LMDB write transaction: a process killed at any point leaves either
 *      no tensor of the group visible or all of them. What a killed process staged is an
 *      ordinary interrupted write (pending entries and their pages), removed by the next writer.
 *   3. While a group is open on a handle (st->group), ts__recovery_run() skips the
 *      ids staged in it: their pending entries belong to a live write. items[] is sorted by
 *      tensor id (ids rise with every writer; a superseded item is removed, its successor
 *      appended), so the lookup is a binary search.
 *   4. st->group and the items are changed only by the thread holding the writer slot
 *      (writer_active) or while no writer is active, under writer_lock for st->group itself.
 */
#include "config.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/byteorder.h"
#include "common/error.h"
#include "engine/format.h"
#include "engine/group.h"
#include "engine/handle.h"
#include "engine/meta.h"
#include "engine/page.h"
#include "engine/publish.h"
#include "engine/txn.h"

int ts__group_owns(const ts_group *g, uint64_t id)
{
	size_t lo = 0, hi;

	if (!g)
		return 0;
	if (ts__carry_owns(&g->carry, id))
		return 1;
	hi = g->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->items[mid].rec.id == id)
			return 1;
		if (g->items[mid].rec.id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

ptrdiff_t ts__group_find(const ts_group *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->items[i].name, name) == 0)
			return (ptrdiff_t)i;
	return -1;
}

int ts__group_reserve(ts_group *g, size_t more)
{
	if (g->n + more <= g->cap)
		return 0;
	size_t cap = g->cap ? 2 * g->cap : 16;
	while (cap < g->n + more)
		cap *= 2;
	ts__staged *n = realloc(g->items, cap * sizeof(*n));
	if (!n)
		return ts__err(TS_ENOMEM, "write group: out of memory");
	g->items = n;
	g->cap = cap;
	return 0;
}

void ts__group_add(ts_group *g, char *name, const ts__tensor_rec *rec, int replace)
{
	ptrdiff_t old = ts__group_find(g, name);

	assert(g->n < g->cap);
	if (old >= 0) {
		free(g->items[old].name);
		memmove(&g->items[old], &g->items[old + 1],
			(g->n - (size_t)old - 1) * sizeof(g->items[0]));
		g->n--;
	}
	assert(g->n == 0 || g->items[g->n - 1].rec.id < rec->id); /* invariant 3 */
	g->items[g->n].name = name;
	g->items[g->n].rec = *rec;
	g->items[g->n].replace = replace;
	g->n++;
}

void ts__group_carry_done(ts_group *g)
{
	for (size_t i = 0; i < g->carry.ns; i++) {
		ts__carry_stage *s = &g->carry.stages[i];
		ts__group_add(g, s->name, &s->rec, (s->flags & TS_WRITE_REPLACE) != 0);
		s->name = NULL; /* the group's now */
	}
	ts__carry_clear(&g->carry);
}

int ts__group_carry_join(ts_group *g)
{
	int rc = ts__carry_join(&g->carry);

	if (rc == 1)
		ts__group_carry_done(g);
	return rc < 0 ? rc : 0;
}

int ts__group_carry_flush(ts_group *g)
{
	int rc = ts__group_carry_join(g);

	if (rc == 0 && g->carry.ns && (rc = ts__carry_commit(g->st, &g->carry)) == 0)
		ts__group_carry_done(g);
	return rc;
}

int ts__group_carry_settle(ts_store *st)
{
	ts_group *g;

	pthread_mutex_lock(&st->writer_lock);
	g = st->group;
	pthread_mutex_unlock(&st->writer_lock);
	return g ? ts__group_carry_flush(g) : 0;
}

uint64_t ts__group_next_id(const ts_group *g)
{
	return g ? g->carry.next_id : 0;
}

TS_API int ts_group_begin(ts_group **out, ts_store *st)
{
	ts_group *g;

	if (!out)
		return ts__err(TS_EINVAL, "ts_group_begin: out is NULL");
	*out = NULL;
	if (!st)
		return ts__err(TS_EINVAL, "ts_group_begin: store is NULL");
	if (!(st->flags & TS_OPEN_WRITE))
		return ts__err(TS_EREADONLY, "store '%s' is opened read-only", st->path);
	g = calloc(1, sizeof(*g));
	if (!g)
		return ts__err(TS_ENOMEM, "ts_group_begin: out of memory");
	g->st = st;
	pthread_mutex_lock(&st->writer_lock);
	if (st->group) {
		pthread_mutex_unlock(&st->writer_lock);
		free(g);
		return ts__err(TS_EBUSY, "store '%s' has an open write group already", st->path);
	}
	st->group = g;
	pthread_mutex_unlock(&st->writer_lock);
	*out = g;
	return 0;
}

/* Take the writer slot for the group's own transactions. A writer of the group still open is
 * TS_EBUSY; another writer of the store (another thread's) is TS_EBUSY too, or, when @p wait,
 * waited for. */
static int take_slot(ts_group *g, int wait)
{
	ts_store *st = g->st;
	const struct timespec ms = {0, 1000000};
	int rc = 0;

	pthread_mutex_lock(&st->writer_lock);
	while (g->writers == 0 && st->writer_active && wait) {
		pthread_mutex_unlock(&st->writer_lock);
		nanosleep(&ms, NULL);
		pthread_mutex_lock(&st->writer_lock);
	}
	if (g->writers > 0)
		rc = ts__err(TS_EBUSY, "store '%s': a writer of the write group is still open",
			     st->path);
	else if (st->writer_active)
		rc = ts__err(TS_EBUSY, "store '%s' has an active writer", st->path);
	else
		st->writer_active = 1;
	pthread_mutex_unlock(&st->writer_lock);
	return rc;
}

/* Release the writer slot, close the group on its store and free it. */
static void group_end(ts_group *g)
{
	ts_store *st = g->st;

	pthread_mutex_lock(&st->writer_lock);
	st->writer_active = 0;
	st->group = NULL;
	pthread_mutex_unlock(&st->writer_lock);
	for (size_t i = 0; i < g->n; i++)
		free(g->items[i].name);
	free(g->items);
	free(g->metadata);
	ts__carry_free(&g->carry);
	free(g);
}

/* Delete the pending entry of staged tensor @p name, id @p id; it must exist (invariant 1). */
static int drop_pending(ts_store *st, MDB_txn *txn, const char *name, uint64_t id)
{
	uint8_t kb[8];
	MDB_val key = {8, kb};
	int rc;

	ts__put_be64(kb, id);
	rc = mdb_del(txn, st->dbi_pending, &key, NULL);
	if (rc == MDB_NOTFOUND)
		return ts__err(TS_ECORRUPT, "staged tensor '%s' (id %" PRIu64 "): its pending entry "
			       "vanished", name, id);
	return rc;
}

/* Publish tensor @p name, record @p rec, staged in this transaction or before. */
static int publish_one(ts_store *st, MDB_txn *txn, const char *name, const ts__tensor_rec *rec,
		       int replace)
{
	int rc = ts__publish_record(st, txn, name, rec, replace);
	return rc ? rc : drop_pending(st, txn, name, rec->id);
}

/* The carried stages (engine/carry.c; none supersedes an item: ts_group_commit() committed
 * such a carry first), then every tensor's record. */
static int publish_txn(void *ud, MDB_txn *txn)
{
	ts_group *g = ud;
	int rc = ts__carry_apply(g->st, &g->carry, txn);

	for (size_t i = 0; i < g->n && rc == 0; i++)
		rc = publish_one(g->st, txn, g->items[i].name, &g->items[i].rec,
				 g->items[i].replace);
	for (size_t i = 0; i < g->carry.ns && rc == 0; i++) {
		const ts__carry_stage *s = &g->carry.stages[i];
		rc = publish_one(g->st, txn, s->name, &s->rec, (s->flags & TS_WRITE_REPLACE) != 0);
	}
	if (rc)
		return rc;
	if (g->metadata) {
		MDB_val key = {sizeof(TS_META_METADATA) - 1, (void *)TS_META_METADATA};
		MDB_val val = {g->metadata_len, g->metadata};
		rc = g->metadata_len ? mdb_put(txn, g->st->dbi_meta, &key, &val, 0)
				     : mdb_del(txn, g->st->dbi_meta, &key, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

static int discard_txn(void *ud, MDB_txn *txn)
{
	ts_group *g = ud;

	for (size_t i = 0; i < g->n; i++) {
		int rc = ts__pages_delete(g->st, txn, g->items[i].rec.id, NULL);
		if (rc == 0)
			rc = drop_pending(g->st, txn, g->items[i].name, g->items[i].rec.id);
		if (rc)
			return rc;
	}
	/* carried tensors larger than a batch committed their pending entry and first pages */
	for (size_t i = 0; i < g->carry.ns; i++) {
		const ts__carry_stage *s = &g->carry.stages[i];
		int rc = s->pending_written ? ts__pages_delete(g->st, txn, s->rec.id, NULL) : 0;
		if (rc == 0 && s->pending_written)
			rc = drop_pending(g->st, txn, s->name, s->rec.id);
		if (rc)
			return rc;
	}
	return 0;
}

/* Remove the staged tensors; if that fails (a full disk), their pending entries stay and the
 * next writer removes them once the group is closed. The caller's error is kept. */
static void discard(ts_group *g)
{
	char saved[512];

	snprintf(saved, sizeof(saved), "%s", ts_error_last());
	(void)ts__group_carry_join(g); /* committed: staged items now; failed: still carried */
	if (g->n == 0 && g->carry.ns == 0) {
		ts__err(0, "%s", saved);
		return;
	}
	(void)ts__txn_write(g->st, discard_txn, g, "discarding a write group");
	ts__err(0, "%s", saved);
}

TS_API int ts_group_commit(uint64_t *published, ts_group *g)
{
	int rc;

	if (published)
		*published = 0;
	if (!g)
		return ts__err(TS_EINVAL, "ts_group_commit: group is NULL");
	rc = take_slot(g, 0);
	if (rc < 0)
		return rc;
	rc = ts__group_carry_join(g);
	for (size_t i = 0; i < g->carry.ns && rc == 0; i++)
		if (g->carry.stages[i].supersede_id)
			rc = ts__group_carry_flush(g); /* see publish_txn() */
	if (rc == 0 && (g->n || g->carry.ns || g->metadata))
		rc = ts__txn_write(g->st, publish_txn, g, "publishing a write group");
	if (rc < 0) {
		rc = ts__err_wrap(rc, "publishing %zu staged tensors (none published)",
				  ts_group_count(g));
		discard(g);
	} else if (published) {
		*published = g->n + g->carry.ns;
	}
	group_end(g);
	return rc;
}

TS_API void ts_group_abort(ts_group *g)
{
	if (!g)
		return;
	/* A writer of the group still open would use the group after it is freed: a caller's
	 * bug. The group is then left open (and its staged tensors staged). */
	assert(g->writers == 0);
	if (take_slot(g, 1) < 0)
		return;
	discard(g);
	group_end(g);
}

TS_API size_t ts_group_count(const ts_group *g)
{
	size_t n;

	if (!g)
		return 0;
	n = g->n + g->carry.ns;
	for (size_t i = 0; i < g->carry.ns; i++)
		n -= g->carry.stages[i].supersede_id != 0; /* the name is an item's already */
	return n;
}

TS_API int ts_group_metadata_set(ts_group *g, const char *text, size_t len)
{
	char *copy;

	if (!g || (!text && len))
		return ts__err(TS_EINVAL, "ts_group_metadata_set: %s is NULL", g ? "text" : "group");
	if (len > TS_METADATA_MAX)
		return ts__err(TS_EINVAL, "store metadata of %zu bytes (at most %u)", len,
			       TS_METADATA_MAX);
	if (len && memchr(text, '\0', len))
		return ts__err(TS_EINVAL, "store metadata holds a NUL byte at offset %zu",
			       (size_t)((const char *)memchr(text, '\0', len) - text));
	copy = malloc(len + 1);
	if (!copy)
		return ts__err(TS_ENOMEM, "store metadata of %zu bytes: out of memory", len);
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	free(g->metadata);
	g->metadata = copy;
	g->metadata_len = len;
	return 0;
}

TS_API int ts_store_metadata_get(char *out, size_t size, size_t *len, ts_store *st)
{
	MDB_val key = {sizeof(TS_META_METADATA) - 1, (void *)TS_META_METADATA}, val = {0, NULL};
	MDB_txn *txn = NULL;
	int rc;

	if (len)
		*len = 0;
	if (!st || (!out && size))
		return ts__err(TS_EINVAL, "ts_store_metadata_get: %s is NULL", st ? "out" : "store");
	rc = ts__txn_begin_read(st, &txn);
	if (rc)
		return rc;
	rc = mdb_get(txn, st->dbi_meta, &key, &val);
	if (rc == MDB_NOTFOUND) {
		val.mv_size = 0;
		rc = 0;
	} else if (rc) {
		rc = ts__err_from_mdb(rc, "reading the store's metadata");
		goto out;
	}
	if (val.mv_size && memchr(val.mv_data, '\0', val.mv_size)) {
		rc = ts__err(TS_ECORRUPT, "store '%s': the metadata record holds a NUL byte",
			     st->path);
		goto out;
	}
	if (len)
		*len = val.mv_size;
	if (size <= val.mv_size) {
		rc = ts__err(TS_ESHORTBUF, "store metadata of %zu bytes: a buffer of %zu bytes is too "
			     "small", val.mv_size, size);
		goto out;
	}
	if (val.mv_size)
		memcpy(out, val.mv_data, val.mv_size);
	out[val.mv_size] = '\0';
out:
	ts__txn_abort(st, txn);
	return rc;
}
