/*
 * Carried staging: the last pages of tensors staged in a write group, held in memory after
 * ts_writer_commit() and committed together with later pages (engine/carry.c).
 */
#ifndef TS_ENGINE_CARRY_H
#define TS_ENGINE_CARRY_H

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/format.h"
#include "engine/handle.h"

/** One page of a tensor: sealed header + payload, @p len bytes at @p off of a batch buffer. */
typedef struct ts__carry_page {
	uint64_t id, index;
	size_t off, len;
} ts__carry_page;

/** What a staging transaction does for tensor @p rec.id, and what ts__group_add() then takes. */
typedef struct ts__carry_stage {
	char *name; /* owned */
	ts__tensor_rec rec;
	unsigned flags;          /* the writer's TS_WRITE_* */
	int pending_written;     /* an earlier batch committed its pending entry */
	uint64_t supersede_id;   /* the group's earlier version of the name, 0 if none */
} ts__carry_stage;

/** The carry of a write group (struct ts_group.carry): carried pages back to back in @p buf
 *  (page i at pages[i].off), in the order of their tensors' ids, and the stages, one per tensor,
 *  ids rising. */
typedef struct ts__carry {
	uint8_t *buf;
	size_t len, cap;
	ts__carry_page *pages;
	size_t n, pages_cap;
	ts__carry_stage *stages;
	size_t ns, stages_cap;
	uint64_t next_id; /* above every carried id: invariant 3 */
	ts_store *st;     /* of the commit on its own thread */
	pthread_t thread; /* commits the carry in the background (ts__carry_flush_async) */
	int inflight;     /* ... not joined yet (ts__carry_join): 1 on the thread, 2 done in place */
	int thread_rc;    /* its result and last-error message */
	char thread_msg[512];
} ts__carry;

/** Record tensor @p id (@p name) as being written in @p txn: its pending entry, and the meta
 *  next_id past it. For the transaction that commits its first pages. LMDB code or 0. */
int ts__carry_pending_start(ts_store *st, MDB_txn *txn, uint64_t id, const char *name);

/** Put pages @p p[0..n) (keys rising) from @p buf in @p txn: MDB_APPEND, else a plain insert
 *  that refuses to overwrite (TS_ECORRUPT naming @p name). LMDB code, TS_E* code or 0. */
int ts__carry_put_pages(ts_store *st, MDB_txn *txn, const uint8_t *buf,
			const ts__carry_page *p, size_t n, const char *name);

/** In @p txn: remove the version of @p name staged before in a write group, tensor @p id (its
 *  pages and pending entry, which must exist: TS_ECORRUPT). LMDB code, TS_E* code or 0. */
int ts__carry_supersede(ts_store *st, MDB_txn *txn, uint64_t id, const char *name);

/** What staging @p s does besides its pages: the existence check (no TS_WRITE_REPLACE), the
 *  pending entry if none was committed, the earlier version's pages and pending entry. The
 *  pages are put first by the caller. LMDB code, TS_E* code or 0. */
int ts__carry_stage_txn(ts_store *st, MDB_txn *txn, const ts__carry_stage *s);

/** Carry the last pages of a writer (@p pages, with ids, in @p buf; copied) and its stage
 *  @p s in @p c: they are committed by the next ts__carry_apply() transaction,
 *  ts__carry_commit(), or the publication. @p s->rec.id must be above every carried id and no
 *  carried stage may be of the same name; nothing may be committing the carry. 0, the carry
 *  taking s->name (set to NULL); or TS_ENOMEM, nothing carried. */
int ts__carry_add(ts__carry *c, const uint8_t *buf, const ts__carry_page *pages, size_t n,
		  ts__carry_stage *s);

/** The carried pages' bytes; 1 if a carried stage is of tensor @p name. */
size_t ts__carry_bytes(const ts__carry *c);
int ts__carry_has(const ts__carry *c, const char *name);

/** 1 if a carried stage is of tensor @p id (its pending entry may be committed). Safe while
 *  the carry is being committed (it does not change then). */
int ts__carry_owns(const ts__carry *c, uint64_t id);

/** Every carried stage in @p txn of @p st, before anything of later ids: pages, pending
 *  entries, superseded versions (invariant 1). Does not change the carry (a transaction may
 *  run again). LMDB code, TS_E* code or 0. */
int ts__carry_apply(ts_store *st, const ts__carry *c, MDB_txn *txn);

/** After the transaction that applied the carry committed, and its stages' names were taken
 *  (by ts__group_add): the carry empty, its buffers kept. */
void ts__carry_clear(ts__carry *c);

/** Commit the carry in an interim transaction of its own; the carry unchanged (the caller
 *  then hands the stages to the group and clears it). 0 or a negative TS_E* code. */
int ts__carry_commit(ts_store *st, const ts__carry *c);

/** ts__carry_commit() on a thread of its own (here if none can be started); nothing may
 *  change the carry until ts__carry_join(). */
void ts__carry_commit_async(ts_store *st, ts__carry *c);

/** Wait for ts__carry_commit_async(): 0 if none was started, 1 if it committed, or its
 *  negative TS_E* code (the carry stays). */
int ts__carry_join(ts__carry *c);

/** Free the carry's stages and buffers (joining a commit still running: what it committed is
 *  an interrupted write then). */
void ts__carry_free(ts__carry *c);

#endif
