/*
 * Checking a store (every record, every page's presence, geometry and checksum, orphan pages,
 * unfinished writes), repairing what can be repaired without touching good data, and writing a
 * compacted copy.
 *
 * Invariants
 *   1. The check reads one consistent snapshot (one read transaction); repair happens after it
 *      in write transactions, with the store's writer slot held so that no write of this
 *      process is in flight (other processes cannot write: the writer flock).
 *   2. Repair removes only pages that no valid record can own — pages of ids without a record
 *      or pending entry, pages beyond a record's page count, pages of unfinished writes — and
 *      removes orphans only when every record decoded and LMDB's structure looked sound, since a
 *      damaged record's pages look like orphans. It also moves a next_id that is not above every
 *      live id (which would let a new tensor reuse an id) past them.
 *   3. Every problem is reported through the callback with the tensor (when one applies) and
 *      the page (or -1), and counted.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/byteorder.h"
#include "common/error.h"
#include "engine/format.h"
#include "engine/handle.h"
#include "engine/lmdbcheck.h"
#include "engine/meta.h"
#include "engine/page.h"
#include "engine/record.h"
#include "engine/recovery.h"
#include "engine/txn.h"

typedef struct crec {
	char *name;
	ts__tensor_rec rec;
	uint64_t next_page; /* next page index expected in the walk */
} crec;

typedef struct cpend {
	uint64_t id;
	char *name;
	uint64_t pages;
} cpend;

typedef struct extra_page {
	uint64_t id, index;
} extra_page;

typedef struct checker {
	ts_store *st;
	void (*cb)(void *ud, const ts_problem *p);
	void *ud;
	uint64_t problems;
	crec *recs;
	size_t nrecs, caprecs;
	cpend *pend;
	size_t npend, cappend;
	uint64_t *orphans; /* ids */
	size_t norphans, caporphans;
	extra_page *extra; /* pages beyond their record's page count */
	size_t nextra, capextra;
	int record_problems;
	int structure_problems;
	uint64_t max_id;  /* largest id of a record or pending entry */
	uint64_t next_id; /* meta next_id (0 if unreadable) */
	int fix_next_id;
	void (*progress)(void *ud, uint64_t done, uint64_t total); /* NULL: none */
	uint64_t pdone, ptotal; /* bytes of pages walked, of all pages in the snapshot */
} checker;

static void report(checker *c, ts_problem_kind kind, const char *tensor, int64_t page,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(checker *c, ts_problem_kind kind, const char *tensor, int64_t page,
		   const char *fmt, ...)
{
	char detail[512];
	ts_problem p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	c->problems++;
	if (kind == TS_PROBLEM_RECORD)
		c->record_problems++;
	if (kind == TS_PROBLEM_STRUCTURE)
		c->structure_problems++;
	if (!c->cb)
		return;
	p.kind = kind;
	p.tensor = tensor;
	p.page = page;
	p.detail = detail;
	c->cb(c->ud, &p);
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? 2 * *cap : 16;
	void *na = realloc(*arr, nc * elem);
	if (!na)
		return ts__err(TS_ENOMEM, "checking the store: out of memory");
	*arr = na;
	*cap = nc;
	return 0;
}

static int cmp_crec(const void *a, const void *b)
{
	const crec *x = a, *y = b;
	return x->rec.id < y->rec.id ? -1 : x->rec.id > y->rec.id;
}

static crec *find_rec(checker *c, uint64_t id)
{
	size_t lo = 0, hi = c->nrecs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->recs[mid].rec.id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nrecs && c->recs[lo].rec.id == id ? &c->recs[lo] : NULL;
}

static cpend *find_pending(checker *c, uint64_t id)
{
	for (size_t i = 0; i < c->npend; i++)
		if (c->pend[i].id == id)
			return &c->pend[i];
	return NULL;
}

static void report_missing(checker *c, crec *r, uint64_t from, uint64_t to)
{
	for (uint64_t p = from; p < to; p++)
		report(c, TS_PROBLEM_MISSING, r->name, (int64_t)p, "page %" PRIu64 " of %" PRIu64
		       " is missing", p, r->rec.page_count);
}

static int load_meta(checker *c, MDB_txn *txn, uint64_t *next_id)
{
	int rc = ts__meta_next_id_get(next_id, c->st, txn);

	if (rc == TS_ECORRUPT || rc == MDB_NOTFOUND)
		report(c, TS_PROBLEM_STRUCTURE, NULL, -1, "the meta next_id record is %s",
		       rc == MDB_NOTFOUND ? "missing" : "malformed");
	else if (rc)
		return rc;
	return 0;
}

static int load_records(checker *c, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int rc = mdb_cursor_open(txn, c->st->dbi_tensors, &cur);

	if (rc)
		return rc;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		char name[TS_MAX_NAME + 1];
		crec *r;

		if (key.mv_size == 0 || key.mv_size > TS_MAX_NAME ||
		    memchr(key.mv_data, 0, key.mv_size)) {
			report(c, TS_PROBLEM_RECORD, NULL, -1, "a tensor name of %zu bytes is malformed",
			       key.mv_size);
			continue;
		}
		memcpy(name, key.mv_data, key.mv_size);
		name[key.mv_size] = '\0';
		if (grow((void **)&c->recs, &c->caprecs, c->nrecs, sizeof(*c->recs)) < 0) {
			mdb_cursor_close(cur);
			return TS_ENOMEM;
		}
		r = &c->recs[c->nrecs];
		memset(r, 0, sizeof(*r));
		if (ts__tensor_rec_decode_named(&r->rec, name, key.mv_size, val.mv_data,
						val.mv_size) < 0) {
			report(c, TS_PROBLEM_RECORD, name, -1, "%s", ts_error_last());
			continue;
		}
		r->name = strdup(name);
		if (!r->name) {
			mdb_cursor_close(cur);
			return ts__err(TS_ENOMEM, "checking the store: out of memory");
		}
		if (r->rec.id > c->max_id)
			c->max_id = r->rec.id;
		c->nrecs++;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (c->nrecs > 1)
		qsort(c->recs, c->nrecs, sizeof(*c->recs), cmp_crec);
	for (size_t i = 1; i < c->nrecs; i++) {
		if (c->recs[i].rec.id == c->recs[i - 1].rec.id)
			report(c, TS_PROBLEM_RECORD, c->recs[i].name, -1,
			       "shares tensor id %" PRIu64 " with tensor '%s'", c->recs[i].rec.id,
			       c->recs[i - 1].name);
	}
	return 0;
}

static int load_pending(checker *c, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int rc = mdb_cursor_open(txn, c->st->dbi_pending, &cur);

	if (rc)
		return rc;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		cpend *p;
		if (grow((void **)&c->pend, &c->cappend, c->npend, sizeof(*c->pend)) < 0) {
			mdb_cursor_close(cur);
			return TS_ENOMEM;
		}
		p = &c->pend[c->npend];
		p->id = key.mv_size == 8 ? ts__get_be64(key.mv_data) : 0;
		p->pages = 0;
		p->name = strndup(val.mv_data, val.mv_size > TS_MAX_NAME ? TS_MAX_NAME : val.mv_size);
		if (!p->name) {
			mdb_cursor_close(cur);
			return ts__err(TS_ENOMEM, "checking the store: out of memory");
		}
		if (p->id > c->max_id)
			c->max_id = p->id;
		c->npend++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int walk_pages(checker *c, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val key, val;
	uint64_t orphan_id = 0, orphan_pages = 0, orphan_first = 0;
	int have_orphan = 0;
	int rc = mdb_cursor_open(txn, c->st->dbi_pages, &cur);

	if (rc)
		return rc;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);; rc = mdb_cursor_get(cur, &key, &val,
										    MDB_NEXT)) {
		uint64_t id = 0, index = 0;
		crec *r;
		cpend *p;

		if (rc == 0 && key.mv_size == TS_PAGE_KEY_SIZE)
			ts__page_key_parse(key.mv_data, &id, &index);
		/* Close a run of orphan pages when the id changes or the walk ends. */
		if (have_orphan && (rc != 0 || id != orphan_id)) {
			report(c, TS_PROBLEM_ORPHAN, NULL, (int64_t)orphan_first,
			       "%" PRIu64 " page%s of tensor id %" PRIu64 ", which has no record",
			       orphan_pages, orphan_pages == 1 ? "" : "s", orphan_id);
			have_orphan = 0;
		}
		if (rc)
			break;
		if (c->progress) {
			c->pdone += val.mv_size;
			c->progress(c->ud, c->pdone, c->ptotal);
		}
		if (key.mv_size != TS_PAGE_KEY_SIZE) {
			report(c, TS_PROBLEM_STRUCTURE, NULL, -1, "a page key of %zu bytes is malformed",
			       key.mv_size);
			continue;
		}
		r = find_rec(c, id);
		if (r) {
			ts_problem_kind kind;
			if (index >= r->rec.page_count) {
				report(c, TS_PROBLEM_ORPHAN, r->name, (int64_t)index,
				       "page %" PRIu64 " lies beyond the tensor's %" PRIu64 " pages", index,
				       r->rec.page_count);
				if (grow((void **)&c->extra, &c->capextra, c->nextra, sizeof(*c->extra)))
					break;
				c->extra[c->nextra].id = id;
				c->extra[c->nextra].index = index;
				c->nextra++;
				continue;
			}
			if (index > r->next_page)
				report_missing(c, r, r->next_page, index);
			r->next_page = index + 1;
			if (ts__page_verify_kind(val.mv_data, val.mv_size, &r->rec, r->name, index,
						 &kind) < 0)
				report(c, kind, r->name, (int64_t)index, "%s", ts_error_last());
			continue;
		}
		p = find_pending(c, id);
		if (p) {
			p->pages++;
			continue;
		}
		if (!have_orphan) {
			have_orphan = 1;
			orphan_id = id;
			orphan_pages = 0;
			orphan_first = index;
			if (grow((void **)&c->orphans, &c->caporphans, c->norphans,
				 sizeof(*c->orphans)))
				break;
			c->orphans[c->norphans++] = id;
		}
		orphan_pages++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	return rc ? rc : TS_ENOMEM;
}

typedef struct repair_ctx {
	checker *c;
	int orphans;
} repair_ctx;

static int repair_txn(void *ud, MDB_txn *txn)
{
	repair_ctx *x = ud;
	checker *c = x->c;
	int rc;

	for (size_t i = 0; x->orphans && i < c->norphans; i++) {
		rc = ts__pages_delete(c->st, txn, c->orphans[i], NULL);
		if (rc)
			return rc;
	}
	if (c->fix_next_id) {
		rc = ts__meta_next_id_put(c->st, txn, c->max_id + 1);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < c->nextra; i++) {
		uint8_t kb[TS_PAGE_KEY_SIZE];
		MDB_val key = {sizeof(kb), kb};
		ts__page_key(kb, c->extra[i].id, c->extra[i].index);
		rc = mdb_del(txn, c->st->dbi_pages, &key, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

static void checker_free(checker *c)
{
	for (size_t i = 0; i < c->nrecs; i++)
		free(c->recs[i].name);
	for (size_t i = 0; i < c->npend; i++)
		free(c->pend[i].name);
	free(c->recs);
	free(c->pend);
	free(c->orphans);
	free(c->extra);
}

/* The bytes of every page in the snapshot, for progress: a walk of the leaf entries only (the
 * page bodies, in overflow pages, are not read). On any error progress is simply not reported:
 * the page walk then reports the problem. */
static void count_pages(checker *c, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val key, val;
	uint64_t total = 0;
	int rc = mdb_cursor_open(txn, c->st->dbi_pages, &cur);

	if (rc) {
		c->progress = NULL;
		return;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
		total += val.mv_size;
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		c->progress = NULL;
		return;
	}
	c->ptotal = total;
	c->progress(c->ud, 0, total);
}

static int run_check(checker *c)
{
	MDB_txn *txn;
	uint64_t next_id;
	int rc = ts__txn_begin_read(c->st, &txn);

	if (rc < 0)
		return rc;
	/* LMDB's own pages first: its cursors would follow damaged ones out of the file. */
	static const char *const dbs[4] = {"meta", "tensors", "pages", "pending"};
	for (int i = 0; i < 4; i++) {
		rc = ts__lmdb_check_tree(c->st, txn, dbs[i]);
		if (rc < 0) {
			char msg[512];
			snprintf(msg, sizeof msg, "%s", ts_error_last());
			ts__txn_abort(c->st, txn);
			report(c, TS_PROBLEM_STRUCTURE, NULL, -1, "%s", msg);
			return 0;
		}
	}
	rc = load_meta(c, txn, &next_id);
	if (rc == 0)
		rc = load_records(c, txn);
	if (rc == 0)
		rc = load_pending(c, txn);
	if (rc == 0 && c->progress)
		count_pages(c, txn);
	if (rc == 0)
		rc = walk_pages(c, txn);
	ts__txn_abort(c->st, txn);
	if (ts__is_ts_code(rc))
		return rc;
	if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_BAD_TXN) {
		/* LMDB's own structure is damaged: report it; the check did run. */
		report(c, TS_PROBLEM_STRUCTURE, NULL, -1, "LMDB: %s", mdb_strerror(rc));
		return 0;
	}
	if (rc)
		return ts__err_from_mdb(rc, "checking the store");
	for (size_t i = 0; i < c->nrecs; i++) {
		crec *r = &c->recs[i];
		if (r->next_page < r->rec.page_count)
			report_missing(c, r, r->next_page, r->rec.page_count);
	}
	for (size_t i = 0; i < c->npend; i++)
		report(c, TS_PROBLEM_UNFINISHED, c->pend[i].name, -1,
		       "unfinished write of tensor id %" PRIu64 " (%" PRIu64 " pages)",
		       c->pend[i].id, c->pend[i].pages);
	c->next_id = next_id;
	if (next_id && next_id <= c->max_id) {
		report(c, TS_PROBLEM_STRUCTURE, NULL, -1,
		       "the next tensor id %" PRIu64 " is not above the largest id in use, %" PRIu64,
		       next_id, c->max_id);
		c->fix_next_id = 1;
	}
	return 0;
}

TS_API void ts_check_opts_init(ts_check_opts *opts)
{
	if (opts)
		memset(opts, 0, sizeof(*opts));
}

TS_API int ts_store_check(uint64_t *problems, ts_store *st, const ts_check_opts *opts)
{
	ts_check_opts defaults;
	checker c;
	unsigned flags;
	int rc, repair;

	if (problems)
		*problems = 0;
	if (!st)
		return ts__err(TS_EINVAL, "ts_store_check: store is NULL");
	if (!opts) {
		ts_check_opts_init(&defaults);
		opts = &defaults;
	}
	flags = opts->flags;
	repair = (flags & TS_CHECK_REPAIR) != 0;
	if (flags & ~TS_CHECK_REPAIR)
		return ts__err(TS_EINVAL, "ts_store_check: unknown flags %#x", flags);
	if (repair && !(st->flags & TS_OPEN_WRITE))
		return ts__err(TS_EREADONLY, "repairing store '%s' needs it opened for writing",
			       st->path);
	if (repair) {
		pthread_mutex_lock(&st->writer_lock);
		if (st->writer_active || st->group) {
			pthread_mutex_unlock(&st->writer_lock);
			return ts__err(TS_EBUSY, "store '%s' has an active writer%s", st->path,
				       st->group ? " or an open write group" : "");
		}
		st->writer_active = 1;
		pthread_mutex_unlock(&st->writer_lock);
	}
	memset(&c, 0, sizeof(c));
	c.st = st;
	c.cb = opts->problem;
	c.ud = opts->ud;
	c.progress = opts->progress;
	rc = run_check(&c);
	if (rc == 0 && repair && (c.norphans || c.nextra || c.npend || c.fix_next_id)) {
		repair_ctx x = {&c, c.record_problems == 0 && c.structure_problems == c.fix_next_id};
		rc = ts__txn_write(st, repair_txn, &x, "removing orphan pages");
		if (rc == 0)
			rc = ts__recovery_run(st, NULL);
	}
	if (repair) {
		pthread_mutex_lock(&st->writer_lock);
		st->writer_active = 0;
		pthread_mutex_unlock(&st->writer_lock);
	}
	if (problems)
		*problems = c.problems;
	checker_free(&c);
	return rc;
}

TS_API int ts_store_copy_compact(ts_store *st, const char *path)
{
	struct stat sb;
	int rc;

	if (!st || !path || !*path)
		return ts__err(TS_EINVAL, "ts_store_copy_compact: %s is NULL or empty",
			       !st ? "store" : "path");
	if (lstat(path, &sb) == 0)
		return ts__err(TS_EEXIST, "'%s' exists; a compacted copy needs a new path", path);
	if (errno != ENOENT)
		return ts__err_errno(errno, "compacting to '%s'", path);
	/* mdb_env_copy2 runs its own read transaction: hold map_lock shared like any other. */
	pthread_rwlock_rdlock(&st->map_lock);
	rc = mdb_env_copy2(st->env, path, MDB_CP_COMPACT);
	pthread_rwlock_unlock(&st->map_lock);
	if (rc == EEXIST)
		return ts__err(TS_EEXIST, "'%s' exists; a compacted copy needs a new path", path);
	if (rc) {
		int code = ts__err_from_mdb(rc, path);
		unlink(path);
		return ts__err_wrap(code, "compacting store '%s'", st->path);
	}
	return 0;
}
