/*
 * Write groups: tensors staged to be published together (engine/group.c).
 */
#ifndef TS_ENGINE_GROUP_H
#define TS_ENGINE_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/carry.h"
#include "engine/format.h"
#include "engine/handle.h"

/* A tensor staged in a write group: pages and pending entry committed, record held here. */
typedef struct ts__staged {
	char *name; /* owned */
	ts__tensor_rec rec;
	int replace; /* TS_WRITE_REPLACE was set */
} ts__staged;

struct ts_group {
	ts_store *st;
	ts__staged *items; /* sorted by rec.id, ascending */
	size_t n, cap;
	int writers; /* writers of this group not yet committed or aborted (under writer_lock) */
	char *metadata;      /* staged by ts_group_metadata_set() (owned), NULL: none staged */
	size_t metadata_len; /* 0 with metadata set: remove the record at commit */
	ts__carry carry;     /* staged tensors' last pages not yet committed (engine/carry.c) */
};

/** 1 if tensor id @p id is staged in write group @p g, or carried with its pending entry
 *  committed (engine/carry.c invariant 2); 0 if @p g is NULL. The caller holds the writer slot,
 *  so that no tensor is staged meanwhile. */
int ts__group_owns(const ts_group *g, uint64_t id);

/** Index of the tensor staged under @p name in @p g, or -1. */
ptrdiff_t ts__group_find(const ts_group *g, const char *name);

/** Room for @p more staged tensors, so that that many ts__group_add() cannot fail. 0 or
 *  TS_ENOMEM. */
int ts__group_reserve(ts_group *g, size_t more);

/** Record tensor @p name (malloc'd; the group takes it) with record @p rec as staged, after
 *  the transaction that committed its last pages and, for a name staged before, deleted the
 *  earlier version's pages and pending entry; the earlier item is dropped. @p rec's id must be
 *  above every staged id. */
void ts__group_add(ts_group *g, char *name, const ts__tensor_rec *rec, int replace);

/* -- the carry (engine/carry.c): staged tensors' last pages not yet committed --------------- */

/** After a transaction that applied @p g's carry (a writer's batch) committed: the carried
 *  tensors become staged items (room reserved by their writers), the carry empties. */
void ts__group_carry_done(ts_group *g);

/** Wait for a commit of @p g's carry on its own thread (ts__carry_commit_async), if one runs;
 *  on success as ts__group_carry_done(). 0 or its negative TS_E* code (the carry stays). */
int ts__group_carry_join(ts_group *g);

/** Commit @p g's carry in a transaction of its own (after joining one running), then as
 *  ts__group_carry_done(). The caller holds the writer slot. 0 or a negative TS_E* code. */
int ts__group_carry_flush(ts_group *g);

/** Before a write of @p st outside its open group (a writer without the group, a copy): the
 *  open group's carry committed, so that ids and the meta next_id count it. The caller holds
 *  the writer slot. 0 or a negative TS_E* code. */
int ts__group_carry_settle(ts_store *st);

/** The smallest id a new writer of @p g (NULL: 0) may take: above every carried id. */
uint64_t ts__group_next_id(const ts_group *g);

#endif
