/*
 * Write groups: tensors staged to be published together (engine/group.c).
 */
#ifndef TS_ENGINE_GROUP_H
#define TS_ENGINE_GROUP_H

#include <stddef.h>
#include <stdint.h>

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
};

/** 1 if tensor id @p id is staged in write group @p g (0 if @p g is NULL). The caller holds
 *  the writer slot, so that no tensor is staged meanwhile. */
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

#endif
