/*
 * The store's databases and meta records (docs/FORMAT.md, "The meta database").
 *
 * Invariants
 *   1. A store file always holds the meta keys "format", "creator", "created" and "next_id"
 *      once its creating transaction has committed; a file without them is not a store.
 *   2. A read-only open creates nothing: no database, no meta key.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/byteorder.h"
#include "common/error.h"
#include "engine/meta.h"
#include "engine/txn.h"

#define FORMAT_MAGIC "TSTR"

/* Open the four databases and check (or, when creating, write) the meta records. Runs in a
 * read-only transaction for a read-only open, so that it creates nothing. Also used by
 * engine/create.c to initialise a new store under its temporary name. */
int ts__meta_open(ts_store *st, MDB_txn *txn, int create)
{
	static const char *const names[4] = {"meta", "tensors", "pages", "pending"};
	MDB_dbi *dbis[4] = {&st->dbi_meta, &st->dbi_tensors, &st->dbi_pages, &st->dbi_pending};
	MDB_val key, val;
	MDB_stat ms;
	unsigned dbflags = 0;
	int rc;

	rc = mdb_dbi_open(txn, names[0], 0, dbis[0]);
	if (rc == MDB_NOTFOUND) {
		/* No meta database: a new (empty) LMDB environment may become a store; anything
		 * else is some other application's data. */
		MDB_dbi main_dbi;
		if (!create)
			return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (no 'meta' database)",
				       st->path);
		rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
		if (rc == 0)
			rc = mdb_stat(txn, main_dbi, &ms);
		if (rc)
			return ts__err_from_mdb(rc, "opening the store's main database");
		if (ms.ms_entries != 0)
			return ts__err(TS_ECORRUPT,
				       "'%s' is an LMDB file of another application, not a tstore store",
				       st->path);
		dbflags = MDB_CREATE;
	} else if (rc == MDB_INCOMPATIBLE) {
		return ts__err(TS_ECORRUPT, "'%s' is not a tstore store ('meta' is not a database)",
			       st->path);
	} else if (rc) {
		return ts__err_from_mdb(rc, "opening the 'meta' database");
	}
	for (int i = 0; i < 4; i++) {
		rc = mdb_dbi_open(txn, names[i], dbflags, dbis[i]);
		if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
			return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (no '%s' database)",
				       st->path, names[i]);
		if (rc)
			return ts__err_from_mdb(rc, "opening the store's databases");
	}

	key.mv_data = (void *)TS_META_FORMAT;
	key.mv_size = sizeof(TS_META_FORMAT) - 1;
	rc = mdb_get(txn, st->dbi_meta, &key, &val);
	if (rc == MDB_NOTFOUND && dbflags == MDB_CREATE) {
		uint8_t fmt[8], id[8], created[8];
		char creator[64];
		MDB_val v;

		memcpy(fmt, FORMAT_MAGIC, 4);
		ts__put_le32(fmt + 4, TS_FORMAT_VERSION);
		ts__put_le64(id, 1);
		ts__put_le64(created, (uint64_t)time(NULL));
		snprintf(creator, sizeof(creator), "tstore %s", ts_version());
		struct {
			const char *k;
			const void *v;
			size_t n;
		} kv[4] = {{TS_META_FORMAT, fmt, 8},
			   {TS_META_CREATOR, creator, strlen(creator)},
			   {TS_META_CREATED, created, 8},
			   {TS_META_NEXT_ID, id, 8}};
		for (int i = 0; i < 4; i++) {
			key.mv_data = (void *)kv[i].k;
			key.mv_size = strlen(kv[i].k);
			v.mv_data = (void *)kv[i].v;
			v.mv_size = kv[i].n;
			rc = mdb_put(txn, st->dbi_meta, &key, &v, MDB_NOOVERWRITE);
			if (rc)
				return ts__err_from_mdb(rc, "writing the store's meta records");
		}
		return 0;
	}
	if (rc == MDB_NOTFOUND)
		return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (no format record)",
			       st->path);
	if (rc)
		return ts__err_from_mdb(rc, "reading the store's format record");
	if (val.mv_size != 8 || memcmp(val.mv_data, FORMAT_MAGIC, 4) != 0)
		return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (bad format record, %zu bytes)",
			       st->path, val.mv_size);
	uint32_t version = ts__get_le32((const uint8_t *)val.mv_data + 4);
	if (version == 0)
		return ts__err(TS_ECORRUPT, "'%s': format version 0 is invalid", st->path);
	if (version > TS_FORMAT_VERSION)
		return ts__err(TS_EVERSION,
			       "'%s' has store format version %u; this library reads up to %u",
			       st->path, version, TS_FORMAT_VERSION);
	key.mv_data = (void *)TS_META_NEXT_ID;
	key.mv_size = sizeof(TS_META_NEXT_ID) - 1;
	rc = mdb_get(txn, st->dbi_meta, &key, &val);
	if (rc == 0 && val.mv_size != 8)
		rc = MDB_CORRUPTED;
	if (rc == 0 && ts__get_le64(val.mv_data) == 0)
		rc = MDB_CORRUPTED;
	if (rc == MDB_NOTFOUND || rc == MDB_CORRUPTED)
		return ts__err(TS_ECORRUPT, "'%s': the next tensor id record is missing or malformed",
			       st->path);
	if (rc)
		return ts__err_from_mdb(rc, "reading the store's meta records");
	return 0;
}

int ts__meta_next_id_get(uint64_t *out, ts_store *st, MDB_txn *txn)
{
	MDB_val key = {sizeof(TS_META_NEXT_ID) - 1, (void *)TS_META_NEXT_ID}, val;
	int rc = mdb_get(txn, st->dbi_meta, &key, &val);

	*out = 0;
	if (rc)
		return rc;
	if (val.mv_size != 8)
		return TS_ECORRUPT;
	*out = ts__get_le64(val.mv_data);
	return 0;
}

int ts__meta_next_id_put(ts_store *st, MDB_txn *txn, uint64_t next)
{
	uint8_t v[8];
	MDB_val key = {sizeof(TS_META_NEXT_ID) - 1, (void *)TS_META_NEXT_ID}, val = {8, v};

	ts__put_le64(v, next);
	return mdb_put(txn, st->dbi_meta, &key, &val, 0);
}
