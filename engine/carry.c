/*
 * Carried staging: the last pages of tensors staged in a write group, held in memory after
 * ts_writer_commit() and committed together with later pages.
 *
 * Without it every tensor of a group ends in a staging transaction of its own, each with its
 * flush to disk, on the caller's thread while nothing else is encoded: an import of 84
 * tensors made 84 of them, more than its batches (57). With it, a tensor's last pages (less
 * than a batch) and what its staging transaction would do wait here until one of
 *   - the next writer of the group hands its first batch to its committer thread: the carried
 *     stages go first in that transaction (engine/writer.c invariant 9), while the caller
 *     encodes on;
 *   - the carried pages fill a writer's batch, the name is carried already, or a write that is
 *     not of the group's writers begins (a copy, a writer without the group): they are
 *     committed in a transaction of their own (ts__group_carry_flush, _settle), on a thread
 *     of its own when they fill a batch (ts__carry_commit_async);
 *   - the group is published: they go in the publishing transaction itself;
 *   - the group is aborted: what they committed before (the pending entries and pages of
 *     tensors larger than a batch) is removed with the group's staged tensors.
 *
 * Invariants
 *   1. A carried stage is applied as engine/writer.c's staging transaction would have been
 *      when its writer committed: the same pages, pending entry, existence check and removal
 *      of the group's earlier version; the carried stages in the order of their ids (rising)
 *      and before any page of a later id, so that page keys rise (MDB_APPEND holds) and the
 *      meta next_id never falls (ts__carry_pending_start only raises it).
 *   2. A carried tensor becomes a staged item of the group (ts__group_add, by engine/group.c)
 *      only once the transaction that applied it has committed. Until then ts__group_owns()
 *      counts its id (ts__carry_owns), so that recovery leaves its pending entry alone.
 *   3. A writer of the store takes an id above every carried one (carry.next_id): the meta
 *      next_id does not count tensors whose first pages are still carried.
 *   4. Only the thread that holds the store's writer slot changes the carry. While a thread
 *      commits it (a writer's committer, or the carry's own: ts__carry_commit_async) nothing
 *      changes it until that thread is joined (then its stages go to the group and the carry
 *      is cleared or, on failure, the carry stays as it was): whatever adds to, applies,
 *      commits or discards the carry joins first (ts__carry_join); reading it
 *      (ts__group_owns, carry.next_id) is safe meanwhile.
 *   5. Memory: the carried pages stay below a writer's batch (engine/writer.c BATCH_BYTES)
 *      plus one writer's last batch: the writer commits the carry once it holds a batch.
 */
#include "config.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/byteorder.h"
#include "common/error.h"
#include "engine/carry.h"
#include "engine/meta.h"
#include "engine/page.h"
#include "engine/record.h"
#include "engine/txn.h"

int ts__carry_pending_start(ts_store *st, MDB_txn *txn, uint64_t id, const char *name)
{
	uint8_t kb[8];
	MDB_val key = {8, kb}, val = {strlen(name), (void *)name};
	uint64_t next;
	int rc = ts__meta_next_id_get(&next, st, txn);

	if (rc == MDB_NOTFOUND)
		next = 0;
	else if (rc)
		return rc;
	if (next < id + 1 && (rc = ts__meta_next_id_put(st, txn, id + 1)) != 0)
		return rc;
	ts__put_be64(kb, id);
	return mdb_put(txn, st->dbi_pending, &key, &val, 0);
}

int ts__carry_put_pages(ts_store *st, MDB_txn *txn, const uint8_t *buf,
			const ts__carry_page *p, size_t n, const char *name)
{
	uint8_t kb[TS_PAGE_KEY_SIZE];

	for (size_t i = 0; i < n; i++) {
		MDB_val key = {sizeof(kb), kb};
		MDB_val val = {p[i].len, (void *)(buf + p[i].off)};
		int rc;

		ts__page_key(kb, p[i].id, p[i].index);
		rc = mdb_put(txn, st->dbi_pages, &key, &val, MDB_APPEND);
		if (rc == MDB_KEYEXIST)
			rc = mdb_put(txn, st->dbi_pages, &key, &val, MDB_NOOVERWRITE);
		if (rc == MDB_KEYEXIST)
			return ts__err(TS_ECORRUPT, "page %" PRIu64 " of tensor id %" PRIu64
				       " ('%s') exists already", p[i].index, p[i].id, name);
		if (rc)
			return rc;
	}
	return 0;
}

int ts__carry_supersede(ts_store *st, MDB_txn *txn, uint64_t id, const char *name)
{
	uint8_t kb[8];
	MDB_val pk = {8, kb};
	int rc = ts__pages_delete(st, txn, id, NULL);

	ts__put_be64(kb, id);
	if (rc == 0)
		rc = mdb_del(txn, st->dbi_pending, &pk, NULL);
	if (rc == MDB_NOTFOUND)
		return ts__err(TS_ECORRUPT, "tensor '%s': the pending entry of its staged version "
			       "vanished", name);
	return rc;
}

int ts__carry_stage_txn(ts_store *st, MDB_txn *txn, const ts__carry_stage *s)
{
	int rc = ts__tensor_may_write(st, txn, s->name, (s->flags & TS_WRITE_REPLACE) != 0);

	if (rc)
		return rc;
	rc = s->pending_written ? 0 : ts__carry_pending_start(st, txn, s->rec.id, s->name);
	if (rc == 0 && s->supersede_id)
		rc = ts__carry_supersede(st, txn, s->supersede_id, s->name);
	return rc;
}

/* @p p (of *cap elements of @p size) reallocated with room for @p need > *cap; NULL if out of
 * memory (@p p kept). */
static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 16;
	void *n;

	while (c < need)
		c *= 2;
	n = realloc(p, c * size);
	if (n)
		*cap = c;
	return n;
}

int ts__carry_add(ts__carry *c, const uint8_t *buf, const ts__carry_page *pages, size_t n,
		  ts__carry_stage *s)
{
	size_t bytes = 0;

	assert(!c->inflight);
	assert(c->ns == 0 || c->stages[c->ns - 1].rec.id < s->rec.id); /* invariant 1 */
	for (size_t i = 0; i < n; i++)
		bytes += pages[i].len;
	if (c->len + bytes > c->cap) {
		uint8_t *nb = grow(c->buf, &c->cap, c->len + bytes, 1);
		if (!nb)
			return ts__err(TS_ENOMEM, "write group: out of memory");
		c->buf = nb;
	}
	if (c->n + n > c->pages_cap) {
		ts__carry_page *np = grow(c->pages, &c->pages_cap, c->n + n, sizeof(*np));
		if (!np)
			return ts__err(TS_ENOMEM, "write group: out of memory");
		c->pages = np;
	}
	if (c->ns + 1 > c->stages_cap) {
		ts__carry_stage *ns = grow(c->stages, &c->stages_cap, c->ns + 1, sizeof(*ns));
		if (!ns)
			return ts__err(TS_ENOMEM, "write group: out of memory");
		c->stages = ns;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(c->buf + c->len, buf + pages[i].off, pages[i].len);
		c->pages[c->n] = pages[i];
		c->pages[c->n].off = c->len;
		c->len += pages[i].len;
		c->n++;
	}
	c->stages[c->ns++] = *s;
	s->name = NULL; /* the group's now */
	c->next_id = s->rec.id + 1;
	return 0;
}

size_t ts__carry_bytes(const ts__carry *c)
{
	return c->len;
}

int ts__carry_has(const ts__carry *c, const char *name)
{
	for (size_t i = 0; i < c->ns; i++)
		if (strcmp(c->stages[i].name, name) == 0)
			return 1;
	return 0;
}

int ts__carry_owns(const ts__carry *c, uint64_t id)
{
	for (size_t i = 0; i < c->ns; i++)
		if (c->stages[i].rec.id == id)
			return 1;
	return 0;
}

int ts__carry_apply(ts_store *st, const ts__carry *c, MDB_txn *txn)
{
	size_t k = 0;

	for (size_t i = 0; i < c->ns; i++) {
		const ts__carry_stage *s = &c->stages[i];
		size_t first = k;
		int rc;

		while (k < c->n && c->pages[k].id == s->rec.id)
			k++;
		rc = ts__carry_stage_txn(st, txn, s);
		if (rc == 0)
			rc = ts__carry_put_pages(st, txn, c->buf, c->pages + first, k - first, s->name);
		if (rc)
			return rc;
	}
	assert(k == c->n);
	return 0;
}

void ts__carry_clear(ts__carry *c)
{
	c->ns = c->n = c->len = 0;
}

/* What the carry's own transaction needs. */
typedef struct carry_txn {
	ts_store *st;
	const ts__carry *c;
} carry_txn;

static int apply_txn(void *ud, MDB_txn *txn)
{
	carry_txn *x = ud;
	return ts__carry_apply(x->st, x->c, txn);
}

int ts__carry_commit(ts_store *st, const ts__carry *c)
{
	carry_txn x = {st, c};
	int rc;

	if (c->ns == 0)
		return 0;
	rc = ts__txn_write_interim(st, apply_txn, &x, c->stages[0].name);
	if (rc < 0)
		return ts__err_wrap(rc, "staging tensor%s '%s'%s", c->ns > 1 ? "s" : "",
				    c->stages[0].name, c->ns > 1 ? " and the next ones" : "");
	return 0;
}

static void *flush_main(void *arg)
{
	ts__carry *c = arg;
	int rc = ts__carry_commit(c->st, c);

	if (rc < 0)
		snprintf(c->thread_msg, sizeof(c->thread_msg), "%s", ts_error_last());
	c->thread_rc = rc;
	return NULL;
}

void ts__carry_commit_async(ts_store *st, ts__carry *c)
{
	assert(!c->inflight);
	if (c->ns == 0)
		return;
	c->st = st;
	c->thread_rc = 0;
	c->inflight = pthread_create(&c->thread, NULL, flush_main, c) == 0 ? 1 : 2;
	if (c->inflight == 2)
		flush_main(c); /* no thread: here, its result kept for ts__carry_join() */
}

int ts__carry_join(ts__carry *c)
{
	int rc;

	if (!c->inflight)
		return 0;
	if (c->inflight == 1)
		pthread_join(c->thread, NULL);
	c->inflight = 0;
	rc = c->thread_rc;
	return rc < 0 ? ts__err(rc, "%s", c->thread_msg) : 1;
}

void ts__carry_free(ts__carry *c)
{
	if (c->inflight == 1)
		pthread_join(c->thread, NULL); /* what it committed is an interrupted write now */

	for (size_t i = 0; i < c->ns; i++)
		free(c->stages[i].name);
	free(c->stages);
	free(c->pages);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}
