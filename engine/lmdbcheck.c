/*
 * Checking LMDB's own structure before LMDB follows it. LMDB checksums none of its pages and
 * follows page numbers, node offsets and sizes unchecked, so a damaged meta, branch or leaf page
 * makes it read outside the file (SIGBUS) or outside its map (SIGSEGV). This module reads the
 * same bytes LMDB will read (layout of LMDB 0.9 on 64-bit: docs/TESTING.md) and refuses to let
 * LMDB go where they are inconsistent:
 *
 *   - at open, before LMDB sees the file, from the file with pread: both meta pages, then every
 *     page of the main tree and of the small databases (meta, pending) that the open reads;
 *   - in a read transaction, from the map: the pages on the path to one key (tensor lookups, page
 *     lookups), or every page of one database (listing the tensors; the store check);
 *   - in a read transaction, a copy of a leaf that the reader read from the file itself (its
 *     page lookups: the branch pages above it are checked in the map), before a key is looked
 *     up in the copy.
 *
 * A page is accepted when its number lies inside the file and at or below the snapshot's last
 * page, its header names it, its kind is what its level requires (branch above, leaf at the
 * bottom, depth as the database record says), its node index and every node (header, key, inline
 * data, or the overflow run a big value points to) lie inside the page or the file, and the keys
 * of a branch page are strictly increasing. With sorted keys every binary search picks the one
 * child that ours picks, so LMDB's own descent stays on checked pages.
 *
 * Invariants
 *   1. Nothing here reads a byte that a check has not first placed inside the file: at open all
 *      reads are pread (short reads are errors); from the map, only pages numbered below the
 *      snapshot's last page + 1 (a bound validated against the file size at open; LMDB never
 *      shrinks the file) and inside the map are touched.
 *   2. Only read-only transactions are checked (a write transaction's pages live partly outside
 *      the map); ts__lmdb_check_key/_tree return 0 for a write transaction.
 *   3. A damaged structure is TS_ECORRUPT with a message naming the database, the page and what
 *      is wrong; callers add the tensor's name.
 *   4. At open we are not one of LMDB's readers: a writer of another process may commit while
 *      the file is read, reuse pages of the snapshot being followed, or grow the file past the
 *      size the caller saw. Damage seen while the meta pages or the file's size changed is
 *      checked again on the new snapshot (CHECK_FILE_TRIES times at most); damage in a file
 *      that stayed the same is reported.
 *   5. A page checked in a read transaction stays checked for the rest of that transaction: the
 *      pages of a live reader's snapshot are never written (LMDB's copy-on-write reuses a page
 *      only once no reader can reach it), and the map cannot move while the transaction holds
 *      map_lock (engine/handle.h). A ts__lmdb_window therefore remembers the pages it has
 *      checked and, for the next key, only finds the way through them. It is bound to one
 *      transaction and one database and dies with the transaction. A leaf it remembers had the
 *      overflow extent of every big value on it checked, not only the one looked up, so every
 *      later lookup that ends on it is covered.
 *   6. At open, no page that the free database lists as free is a page of the trees walked
 *      (the main tree and the small databases). A commit frees the pages its copies replaced,
 *      the old roots among them, so an older tree stays intact in the file until its pages are
 *      reused; a damaged root number in the meta page that names such a page would otherwise
 *      open an older snapshot whole and well formed, and reads would return its data (replaced
 *      tensors' old values) as if current.
 *   7. At open, the other meta page (the older snapshot, one transaction before) has no last
 *      page past the one in use (LMDB never lowers it) and names no root past it, nor one that
 *      the free database in use lists as freed by a transaction before its own: the older
 *      snapshot's pages were all in use in it, so the only ones freed since are freed by the
 *      transaction in use. A damaged transaction id that makes the older meta page look newer
 *      (7 -> 9 beside 8 still passes the rule that the two be consecutive) opens the older
 *      snapshot as current; then the truly newer meta page's roots are pages that the older
 *      snapshot had not yet allocated or had free, which this finds: a commit copies its main
 *      root (every commit changes a database record in it), and LMDB takes the pages of commit
 *      T only past the last page or from free-list records of transactions before T - 1
 *      (mdb_page_alloc stops at mdb_find_oldest(), at most T - 1), never from those that
 *      T - 1 freed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "engine/handle.h"
#include "engine/lmdbcheck.h"
#include "engine/lmdbfmt.h"
#include "engine/txn.h"

/* Limits of a walk (LMDB 0.9, 64-bit: engine/lmdbfmt.h). */
#define L_INVALID UINT64_MAX
#define L_MAX_DEPTH 16 /* far above any real tree (LMDB's cursor stack is 32) */
#define CHECK_FILE_TRIES 100

/* Where pages come from: the file (pread into per-level buffers) or the map. */
struct src {
	const char *path;
	const char *db; /* database being walked, for messages */
	int fd;
	const uint8_t *map;
	uint64_t psize;
	uint64_t npages; /* pages 0 .. npages-1 may be read */
	uint8_t *buf;    /* fd: L_MAX_DEPTH + 1 pages */
	uint8_t *seen;   /* whole-tree walks: one bit per page, a page reached twice is damage */
	int lazy;        /* key lookups: an overflow run is bounds-checked, not touched (below) */
	int int_keys;    /* the free database: integer keys, not in memcmp order, not compared */
	uint64_t txnid;        /* at open: the meta page in use's transaction id ... */
	uint64_t older_roots[2]; /* ... and the other meta page's roots (invariant 7) */
};

/* A database's record (MDB_db). */
struct dbrec {
	unsigned flags, depth;
	uint64_t root;
};

static int bad(const struct src *s, uint64_t pgno, const char *what, uint64_t a)
{
	return ts__err(TS_ECORRUPT,
		       "'%s': LMDB page %" PRIu64 " of the '%s' database is damaged (%s %" PRIu64 ")",
		       s->path, pgno, s->db, what, a);
}

/* Page @p pgno (slot @p level for pread), or NULL with the error set. */
static const uint8_t *get_page(struct src *s, uint64_t pgno, int level)
{
	if (pgno < 2 || pgno >= s->npages) {
		bad(s, pgno, "page number outside the file's used pages, last is", s->npages - 1);
		return NULL;
	}
	if (!s->buf)
		return s->map + pgno * s->psize;
	uint8_t *b = s->buf + (size_t)level * s->psize;
	if (pread(s->fd, b, (size_t)s->psize, (off_t)(pgno * s->psize)) != (ssize_t)s->psize) {
		ts__err(TS_ECORRUPT, "'%s': cannot read LMDB page %" PRIu64, s->path, pgno);
		return NULL;
	}
	return b;
}

/* The overflow run that a big value of @p dsize bytes at page @p ov occupies. */
static int check_overflow(struct src *s, uint64_t ov, uint64_t dsize, uint64_t from)
{
	uint8_t hdr[TS_LMDB_PAGEHDR];
	const uint8_t *h;

	if (ov < 2 || ov >= s->npages)
		return bad(s, from, "a big value's overflow page is outside the file:", ov);
	if (s->lazy) {
		/* A lookup needs only the run's extent: LMDB hands out a pointer without reading
		 * the run, and reading its header here would fault the page in through the page
		 * cache, one synchronous 4 KiB read per value, ahead of the reader's O_DIRECT read
		 * of the whole run (which checks that header itself: engine/reader.c, invariant 2). */
		if ((dsize + TS_LMDB_PAGEHDR + s->psize - 1) / s->psize > s->npages - ov)
			return bad(s, from, "a big value runs past the file's used pages, bytes",
				   dsize);
		return 0;
	}
	if (s->buf) {
		if (pread(s->fd, hdr, sizeof hdr, (off_t)(ov * s->psize)) != (ssize_t)sizeof hdr)
			return ts__err(TS_ECORRUPT, "'%s': cannot read LMDB page %" PRIu64, s->path,
				       ov);
		h = hdr;
	} else {
		h = s->map + ov * s->psize;
	}
	uint64_t pages = ts__lmdb_u32(h + TS_LMDB_PAGEHDR_PAGES);
	if (ts__lmdb_u64(h) != ov ||
	    (ts__lmdb_u16(h + TS_LMDB_PAGEHDR_FLAGS) & TS_LMDB_P_KIND) != TS_LMDB_P_OVERFLOW)
		return bad(s, ov, "overflow page header, flags",
			   ts__lmdb_u16(h + TS_LMDB_PAGEHDR_FLAGS));
	if (pages < 1 || pages > s->npages - ov)
		return bad(s, ov, "overflow run past the file's used pages, length", pages);
	if (dsize > pages * s->psize - TS_LMDB_PAGEHDR)
		return bad(s, from, "a big value is longer than its overflow run, bytes", dsize);
	/* Whole-tree walks (the store check) also hold the header to exactly what LMDB wrote:
	 * flags P_OVERFLOW alone and the page count its size gives (tstore never overwrites a big
	 * value in place, so LMDB never reuses a longer run). Readers do not need this (reads stay
	 * intact: engine/reader.c falls back to the map), but LMDB's next write that frees the
	 * run trusts the header's page number, count and dirty flag: damage there would free
	 * the wrong pages. */
	if (ts__lmdb_u16(h + TS_LMDB_PAGEHDR_FLAGS) != TS_LMDB_P_OVERFLOW)
		return bad(s, ov, "overflow page header, flags",
			   ts__lmdb_u16(h + TS_LMDB_PAGEHDR_FLAGS));
	if (pages != (dsize + TS_LMDB_PAGEHDR + s->psize - 1) / s->psize)
		return bad(s, ov, "overflow run length differs from its value's, pages", pages);
	return 0;
}

/* LMDB's default key order (mdb_cmp_memn): bytes, then length. */
static int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

struct node {
	const uint8_t *key;
	size_t ksize;
	unsigned flags;
	uint64_t dsize; /* leaf: data size; branch: child page */
	const uint8_t *data;
};

static void node_at(const uint8_t *pg, unsigned i, struct node *n)
{
	const uint8_t *p = pg + ts__lmdb_u16(pg + TS_LMDB_PAGEHDR + 2 * i);
	n->flags = ts__lmdb_u16(p + 4);
	n->ksize = ts__lmdb_u16(p + 6);
	n->key = p + TS_LMDB_NODEHDR;
	n->data = n->key + n->ksize;
	n->dsize = (uint64_t)ts__lmdb_u16(p) | (uint64_t)ts__lmdb_u16(p + 2) << 16;
}

static int check_dbrec(struct src *s, const uint8_t *rec, struct dbrec *out, uint64_t where,
		       int any_flags);

/*
 * Check page @p pg (number @p pgno) as a branch (@p branch) or leaf of the current database:
 * header, node index, every node inside the page, branch keys strictly increasing (and, with
 * @p lo/@p hi, inside the key range the parent gives this page), leaf values inside the page or
 * (with @p ovf) their overflow runs inside the file. @p main: leaves hold database records.
 */
static int check_page(struct src *s, const uint8_t *pg, uint64_t pgno, int branch, int main,
		      int ovf, int sorted_leaf, const struct node *lo, const struct node *hi,
		      unsigned *nkeys_out)
{
	unsigned flags = ts__lmdb_u16(pg + TS_LMDB_PAGEHDR_FLAGS);
	unsigned lower = ts__lmdb_u16(pg + 12), upper = ts__lmdb_u16(pg + 14);
	unsigned want = branch ? TS_LMDB_P_BRANCH : TS_LMDB_P_LEAF;

	if (ts__lmdb_u64(pg) != pgno)
		return bad(s, pgno, "page header names page", ts__lmdb_u64(pg));
	if ((flags & TS_LMDB_P_KIND) != want || (ovf && flags != want)) /* ovf: a whole-tree walk */
		return bad(s, pgno, branch ? "not a branch page, flags" : "not a leaf page, flags",
			   flags);
	if (lower < TS_LMDB_PAGEHDR || (lower - TS_LMDB_PAGEHDR) % 2 || lower > upper ||
	    upper > s->psize)
		return bad(s, pgno, "node index bounds, lower", lower);
	unsigned nkeys = (lower - TS_LMDB_PAGEHDR) / 2;
	if (nkeys < (branch ? 2u : 1u))
		return bad(s, pgno, "too few nodes:", nkeys);
	struct node prev = {0}, n;
	for (unsigned i = 0; i < nkeys; i++) {
		unsigned off = ts__lmdb_u16(pg + TS_LMDB_PAGEHDR + 2 * i);
		if (off < upper || off % 2 || (uint64_t)off + TS_LMDB_NODEHDR > s->psize)
			return bad(s, pgno, "node offset outside the page, node", i);
		node_at(pg, i, &n);
		if (off + TS_LMDB_NODEHDR + (uint64_t)n.ksize > s->psize)
			return bad(s, pgno, "node key outside the page, node", i);
		if (branch) {
			uint64_t child = n.dsize | (uint64_t)n.flags << 32;
			if (child < 2 || child >= s->npages)
				return bad(s, pgno, "child page outside the file's used pages:", child);
		} else if (main) {
			/* tstore's main tree holds only database records; anything else makes
			 * LMDB refuse the name (MDB_INCOMPATIBLE), which the open reports. */
			if ((n.flags & ~(TS_LMDB_F_BIGDATA | TS_LMDB_F_SUBDATA)) ||
			    n.flags == (TS_LMDB_F_BIGDATA | TS_LMDB_F_SUBDATA) ||
			    (n.flags == TS_LMDB_F_SUBDATA && n.dsize != TS_LMDB_DB_SIZE))
				return bad(s, pgno, "not a database record, node", i);
		} else {
			if (n.flags & ~TS_LMDB_F_BIGDATA)
				return bad(s, pgno, "unknown node flags, node", i);
		}
		if (!branch) {
			uint64_t inline_len = n.flags & TS_LMDB_F_BIGDATA ? 8 : n.dsize;
			if (off + TS_LMDB_NODEHDR + n.ksize + inline_len > s->psize)
				return bad(s, pgno, "node value outside the page, node", i);
			if ((n.flags & TS_LMDB_F_BIGDATA) && ovf) {
				int rc = check_overflow(s, ts__lmdb_u64(n.data), n.dsize, pgno);
				if (rc < 0)
					return rc;
			}
			if (main && n.flags == TS_LMDB_F_SUBDATA) {
				struct dbrec db;
				int rc = check_dbrec(s, n.data, &db, pgno, 0);
				if (rc < 0)
					return rc;
			}
		}
		/* Order: a branch's node 0 has no key (LMDB never compares it). */
		if (!s->int_keys && ((branch && i >= 2) || (!branch && sorted_leaf && i >= 1))) {
			if (key_cmp(prev.key, prev.ksize, n.key, n.ksize) >= 0)
				return bad(s, pgno, "keys out of order at node", i);
		}
		if ((branch ? i >= 1 : sorted_leaf) && lo && key_cmp(n.key, n.ksize, lo->key, lo->ksize) < 0)
			return bad(s, pgno, "key below its parent's separator, node", i);
		if ((branch ? i >= 1 : sorted_leaf) && hi && key_cmp(n.key, n.ksize, hi->key, hi->ksize) >= 0)
			return bad(s, pgno, "key above its parent's next separator, node", i);
		prev = n;
	}
	*nkeys_out = nkeys;
	return 0;
}

static int check_dbrec(struct src *s, const uint8_t *rec, struct dbrec *out, uint64_t where,
		       int any_flags)
{
	out->flags = ts__lmdb_u16(rec + 4);
	out->depth = ts__lmdb_u16(rec + 6);
	out->root = ts__lmdb_u64(rec + 40);
	/* tstore opens every database with flags 0: other flags would change LMDB's key order
	 * or make it read values as sub-databases. */
	if (out->flags != 0 && !any_flags)
		return bad(s, where, "database record: flags", out->flags);
	if (out->root == L_INVALID ? out->depth != 0
				    : (out->depth < 1 || out->depth > L_MAX_DEPTH || out->root < 2 ||
				       out->root >= s->npages))
		return bad(s, where, "database record: root", out->root);
	return 0;
}

/* Every page of the tree under @p pgno at @p level of @p depth, keys within [lo, hi). */
/* Whole-tree walks: page @p pgno is marked seen; a page reached before is damage. A tree shares
 * no page: a second visit is a damaged pointer (and unchecked, a few such pointers would make
 * the walk exponential). */
static int mark_seen(struct src *s, uint64_t pgno, int level)
{
	if (s->seen && pgno < s->npages) {
		if (s->seen[pgno / 8] & (1u << (pgno % 8)))
			return bad(s, pgno, "page reached twice in the tree, at level", (uint64_t)level);
		s->seen[pgno / 8] |= (uint8_t)(1u << (pgno % 8));
	}
	return 0;
}

static int walk(struct src *s, uint64_t pgno, int level, int depth, int main,
		const struct node *lo, const struct node *hi)
{
	const uint8_t *pg;
	unsigned nkeys;
	int branch = level < depth - 1, rc;

	rc = mark_seen(s, pgno, level);
	if (rc < 0)
		return rc;
	pg = get_page(s, pgno, level);
	if (!pg)
		return TS_ECORRUPT;
	rc = check_page(s, pg, pgno, branch, main, 1, 1, lo, hi, &nkeys);
	if (rc < 0 || !branch)
		return rc;
	for (unsigned i = 0; i < nkeys; i++) {
		struct node n, next;
		/* pg stays valid: deeper levels use other buffers (pread) or the map. */
		node_at(pg, i, &n);
		if (i + 1 < nkeys)
			node_at(pg, i + 1, &next);
		rc = walk(s, n.dsize | (uint64_t)n.flags << 32, level + 1, depth, main,
			  i ? &n : lo, i + 1 < nkeys ? &next : hi);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * The pages on the path to @p key: each branch checked (sorted), the child LMDB's binary search
 * picks (the last node whose key <= @p key; node 0 when none), the leaf checked, and the value
 * with key @p key, if any, checked through its overflow run. *@p rec_out (may be NULL) receives a
 * main-tree leaf's record for @p key.
 */
/* Whether page @p pgno is remembered as checked in window @p w; with @p add, remember it. */
static int window_has(ts__lmdb_window *w, uint64_t pgno, int add)
{
	size_t mask = TS__LMDB_WINDOW_SLOTS - 1, i = (size_t)(pgno * 0x9E3779B97F4A7C15ull >> 40) & mask;

	if (!w)
		return 0;
	for (size_t n = 0; n < TS__LMDB_WINDOW_SLOTS; n++, i = (i + 1) & mask) {
		if (w->checked[i] == pgno + 1)
			return 1;
		if (w->checked[i] == 0) {
			/* remember while at most 3/4 full (probes stay short); past that, check */
			if (add && w->nchecked < TS__LMDB_WINDOW_SLOTS / 4 * 3) {
				w->checked[i] = pgno + 1;
				w->nchecked++;
			}
			return 0;
		}
	}
	return 0;
}

/* The child of branch page @p pg (@p nkeys nodes) that LMDB's binary search picks for @p key: the
 * last node i >= 1 whose key <= @p key, node 0 when none. */
static uint64_t branch_child(const uint8_t *pg, unsigned nkeys, const uint8_t *key, size_t klen)
{
	struct node n;
	unsigned i = 0;

	for (unsigned lo = 1, hi = nkeys; lo < hi;) {
		unsigned mid = (lo + hi) / 2;
		node_at(pg, mid, &n);
		if (key_cmp(n.key, n.ksize, key, klen) <= 0) {
			i = mid;
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	node_at(pg, i, &n);
	return n.dsize | (uint64_t)n.flags << 32;
}

/* Check leaf @p pg (number @p pgno, from the map or a copy read from the file) as a lookup does,
 * with every big value's overflow extent, so that any lookup ending on it is covered. */
static int check_leaf(struct src *s, const uint8_t *pg, uint64_t pgno, unsigned *nkeys)
{
	struct node n;
	int rc = check_page(s, pg, pgno, 0, 0, 0, 0, NULL, NULL, nkeys);

	for (unsigned i = 0; rc == 0 && i < *nkeys; i++) {
		node_at(pg, i, &n);
		if (n.flags & TS_LMDB_F_BIGDATA)
			rc = check_overflow(s, ts__lmdb_u64(n.data), n.dsize, pgno);
	}
	return rc;
}

static int walk_path(struct src *s, const struct dbrec *db, int main, const uint8_t *key, size_t klen,
		const uint8_t **val_out, ts__lmdb_window *w)
{
	uint64_t pgno = db->root;

	if (val_out)
		*val_out = NULL;
	if (db->root == L_INVALID)
		return 0;
	for (int level = 0; level < (int)db->depth; level++) {
		const uint8_t *pg = get_page(s, pgno, level);
		int branch = level < (int)db->depth - 1, rc;
		unsigned nkeys;
		struct node n;

		if (!pg)
			return TS_ECORRUPT;
		if (window_has(w, pgno, 0)) {
			/* checked earlier in this transaction (invariant 5) */
			if (!branch)
				return 0;
			nkeys = (ts__lmdb_u16(pg + 12) - TS_LMDB_PAGEHDR) / 2;
		} else if (w && !branch) {
			rc = check_leaf(s, pg, pgno, &nkeys);
			if (rc == 0)
				window_has(w, pgno, 1);
			return rc;
		} else {
			rc = check_page(s, pg, pgno, branch, main, 0, 0, NULL, NULL, &nkeys);
			if (rc < 0)
				return rc;
			window_has(w, pgno, 1);
		}
		if (branch) {
			pgno = branch_child(pg, nkeys, key, klen);
			continue;
		}
		for (unsigned i = 0; i < nkeys; i++) {
			node_at(pg, i, &n);
			if (n.ksize != klen || memcmp(n.key, key, klen))
				continue;
			if (n.flags & TS_LMDB_F_BIGDATA) {
				rc = check_overflow(s, ts__lmdb_u64(n.data), n.dsize, pgno);
				if (rc < 0)
					return rc;
			}
			if (val_out)
				*val_out = n.data;
		}
	}
	return 0;
}

/* -- at open, from the file --------------------------------------------------------------- */

/* The free list's entries are page numbers (after a count) in the values of the free database's
 * leaves; its keys are transaction ids (integer keys: not in memcmp order, so check_page()
 * leaves their order alone, s->int_keys). Invariant 6: none may be a page the walks before
 * marked in s->seen. */
static int free_pages_unused(struct src *s, uint64_t pgno, int level, int depth)
{
	const uint8_t *pg;
	unsigned nkeys;
	int branch = level < depth - 1, rc;

	rc = mark_seen(s, pgno, level);
	if (rc < 0)
		return rc;
	pg = get_page(s, pgno, level);
	if (!pg)
		return TS_ECORRUPT;
	/* ovf 0: LMDB rewrites a free-list entry in place with a smaller size (its reserved
	 * records), so the exact run length of check_overflow()'s whole-tree rule does not hold
	 * here; the run is checked below as far as reading it needs */
	rc = check_page(s, pg, pgno, branch, 0, 0, 0, NULL, NULL, &nkeys);
	if (rc < 0)
		return rc;
	if (branch) {
		for (unsigned i = 0; i < nkeys; i++) {
			struct node n;
			node_at(pg, i, &n);
			/* deeper levels read into other buffers: pg stays valid */
			rc = free_pages_unused(s, n.dsize | (uint64_t)n.flags << 32, level + 1, depth);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	for (unsigned i = 0; i < nkeys; i++) {
		struct node n;
		uint8_t *big = NULL;
		const uint8_t *ids;
		node_at(pg, i, &n);
		if (n.dsize < 8 || n.dsize % 8)
			return bad(s, pgno, "a free-list entry of bytes", n.dsize);
		if (n.flags & TS_LMDB_F_BIGDATA) {
			uint64_t ov = ts__lmdb_u64(n.data), len = TS_LMDB_PAGEHDR + n.dsize;
			if (ov < 2 || ov >= s->npages ||
			    (len + s->psize - 1) / s->psize > s->npages - ov)
				return bad(s, pgno, "a free-list entry's overflow run is outside the "
					   "file's used pages, at page", ov);
			if (s->buf) {
				big = malloc((size_t)len);
				if (!big)
					return ts__err(TS_ENOMEM, "checking '%s': out of memory", s->path);
				if (pread(s->fd, big, (size_t)len, (off_t)(ov * s->psize)) !=
				    (ssize_t)len) {
					free(big);
					return ts__err(TS_ECORRUPT, "'%s': cannot read LMDB page %" PRIu64,
						       s->path, ov);
				}
			}
			const uint8_t *h = big ? big : s->map + ov * s->psize;
			if (ts__lmdb_u64(h) != ov || (ts__lmdb_u16(h + TS_LMDB_PAGEHDR_FLAGS) &
						     TS_LMDB_P_KIND) != TS_LMDB_P_OVERFLOW) {
				free(big);
				return bad(s, ov, "a free-list entry's overflow page header, flags",
					   ts__lmdb_u16(h + TS_LMDB_PAGEHDR_FLAGS));
			}
			ids = h + TS_LMDB_PAGEHDR;
		} else {
			ids = n.data;
		}
		uint64_t count = ts__lmdb_u64(ids);
		/* the transaction that freed them (invariant 7), if the key is one */
		uint64_t freed_by = n.ksize == 8 ? ts__lmdb_u64(n.key) : s->txnid;
		rc = 0;
		/* a reserved entry may hold fewer pages than it has room for (LMDB reads the count) */
		if (count > n.dsize / 8 - 1)
			rc = bad(s, pgno, "a free-list entry's count", count);
		for (uint64_t k = 1; rc == 0 && k <= count; k++) {
			uint64_t f = ts__lmdb_u64(ids + 8 * k);
			if (f < s->npages && (s->seen[f / 8] & (1u << (f % 8))))
				rc = ts__err(TS_ECORRUPT, "'%s': LMDB page %" PRIu64 " is listed free but "
					     "lies in a tree in use (a damaged meta page naming an older "
					     "tree's root?)", s->path, f);
			else if (freed_by < s->txnid &&
				 (f == s->older_roots[0] || f == s->older_roots[1]))
				rc = ts__err(TS_ECORRUPT, "'%s': LMDB meta pages are damaged (the older "
					     "one's root, page %" PRIu64 ", was free before the newer "
					     "one's transaction %" PRIu64 ": a damaged transaction id?)",
					     s->path, f, s->txnid);
		}
		free(big);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* One check of the file as it is now; @p m receives the meta pages' first bytes as read. */
static int check_file_once(const char *path, uint64_t file_size, const char *const *full,
			   int nfull, uint8_t m[2][160])
{
	uint64_t txn[2], psize;
	struct src s = {.path = path, .db = "main", .fd = -1};
	int rc;

	memset(m, 0, 2 * sizeof(m[0]));
	s.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s.fd < 0)
		return ts__err_errno(errno, "opening store '%s'", path);
	rc = TS_ECORRUPT;
	if (pread(s.fd, m[0], sizeof(m[0]), 0) != (ssize_t)sizeof(m[0])) {
		ts__err(TS_ECORRUPT, "'%s': cannot read LMDB's first meta page", path);
		goto out;
	}
	psize = ts__lmdb_u32(m[0] + 40);
	if (ts__lmdb_u32(m[0] + 16) != TS_LMDB_MAGIC)
		psize = 4096; /* judged below; the second meta still says what the file is */
	if (psize < 512 || psize > 65536 || (psize & (psize - 1)) ||
	    pread(s.fd, m[1], sizeof(m[1]), (off_t)psize) != (ssize_t)sizeof(m[1])) {
		ts__err(TS_ECORRUPT, "'%s': LMDB page size %" PRIu64 " is invalid", path, psize);
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		unsigned flags = ts__lmdb_u16(m[i] + TS_LMDB_PAGEHDR_FLAGS);
		if (ts__lmdb_u32(m[i] + 16) != TS_LMDB_MAGIC) {
			ts__err(TS_ECORRUPT, "'%s' is not a tstore store (LMDB meta page %d has no "
				"LMDB magic)", path, i);
			goto out;
		}
		if (ts__lmdb_u32(m[i] + 20) != 1 || !(flags & TS_LMDB_P_META) ||
		    ts__lmdb_u64(m[i]) != (uint64_t)i) {
			ts__err(TS_ECORRUPT,
				"'%s': LMDB meta page %d is damaged (version %u, flags "
				"%#x)",
				path, i, ts__lmdb_u32(m[i] + 20), flags);
			goto out;
		}
		txn[i] = ts__lmdb_u64(m[i] + 144);
	}
	/* LMDB uses the meta with the higher txnid; a damaged txnid would silently roll the
	 * store back to the older snapshot, so the two must be consecutive, each in its slot. */
	int cur = txn[0] < txn[1];
	if (!(txn[0] == 0 && txn[1] == 0) &&
	    ((txn[cur] & 1) != (uint64_t)cur || txn[cur] - txn[!cur] != 1)) {
		ts__err(TS_ECORRUPT, "'%s': LMDB meta pages are damaged (transaction ids %" PRIu64
			" and %" PRIu64 " are not consecutive)", path, txn[0], txn[1]);
		goto out;
	}
	const uint8_t *mm = m[cur];
	if (ts__lmdb_u32(mm + 40) != psize) {
		ts__err(TS_ECORRUPT,
			"'%s': LMDB meta page %d is damaged (page size %u, the first "
			"meta says %" PRIu64 ")",
			path, cur, ts__lmdb_u32(mm + 40), psize);
		goto out;
	}
	uint64_t last = ts__lmdb_u64(mm + 136), pages = file_size / psize;
	if (last < 1 || last >= pages) {
		ts__err(TS_ECORRUPT, "'%s': LMDB's last page %" PRIu64 " lies outside the file's %"
			PRIu64 " pages (damaged meta page or truncated file)", path, last, pages);
		goto out;
	}
	s.psize = psize;
	s.npages = last + 1;
	s.txnid = txn[cur];
	if (ts__lmdb_u64(m[!cur] + 136) > last) { /* invariant 7: LMDB never lowers it */
		ts__err(TS_ECORRUPT, "'%s': LMDB meta pages are damaged (the older one's last page "
			"%" PRIu64 " lies past the newer one's, %" PRIu64 ": a damaged transaction "
			"id?)", path, ts__lmdb_u64(m[!cur] + 136), last);
		goto out;
	}
	for (int i = 0; i < 2; i++) { /* invariant 7: the older meta's free and main roots */
		uint64_t root = ts__lmdb_u64(m[!cur] + (i ? 88 : 40) + 40);
		s.older_roots[i] = root;
		if (root != L_INVALID && root > last) {
			ts__err(TS_ECORRUPT, "'%s': LMDB meta pages are damaged (the older one's root, "
				"page %" PRIu64 ", lies past the newer one's last page %" PRIu64
				": a damaged transaction id?)", path, root, last);
			goto out;
		}
	}
	struct dbrec freedb, maindb;
	if (check_dbrec(&s, mm + 40, &freedb, (uint64_t)cur, 1) < 0 ||
	    check_dbrec(&s, mm + 88, &maindb, (uint64_t)cur, 0) < 0) {
		ts__err(TS_ECORRUPT, "'%s': LMDB meta page %d is damaged (a tree root lies outside "
			"the file's %" PRIu64 " used pages, or its depth is wrong)", path, cur, last + 1);
		goto out;
	}
	s.buf = malloc((size_t)psize * (L_MAX_DEPTH + 1));
	s.seen = calloc(1, (size_t)(s.npages / 8 + 1));
	if (!s.buf || !s.seen) {
		rc = ts__err(TS_ENOMEM, "opening '%s': out of memory", path);
		goto out;
	}
	if (maindb.root == L_INVALID) {
		rc = 0;
		goto out;
	}
	rc = walk(&s, maindb.root, 0, (int)maindb.depth, 1, NULL, NULL);
	for (int i = 0; rc == 0 && i < nfull; i++) {
		const uint8_t *v;
		struct dbrec db;
		s.db = "main";
		rc = walk_path(&s, &maindb, 1, (const uint8_t *)full[i], strlen(full[i]), &v, NULL);
		if (rc < 0 || !v)
			continue;
		/* v points into the leaf's buffer (slot depth-1); copy before walking on. */
		uint8_t rec[TS_LMDB_DB_SIZE];
		memcpy(rec, v, sizeof rec);
		s.db = full[i];
		rc = check_dbrec(&s, rec, &db, maindb.root, 0);
		if (rc == 0 && db.root != L_INVALID)
			rc = walk(&s, db.root, 0, (int)db.depth, 0, NULL, NULL);
	}
	if (rc == 0 && freedb.root != L_INVALID) { /* invariant 6 */
		s.db = "free";
		s.int_keys = 1;
		rc = free_pages_unused(&s, freedb.root, 0, (int)freedb.depth);
	}
out:
	free(s.buf);
	free(s.seen);
	close(s.fd);
	return rc;
}

/* Whether the meta pages differ from @p m or the file's size from *@p file_size (a commit
 * happened since they were read); the file's size then goes to *@p file_size. */
static int metas_changed(const char *path, uint8_t m[2][160], uint64_t *file_size)
{
	uint8_t now[2][160];
	struct stat sb;
	uint64_t psize = ts__lmdb_u32(m[0] + 40);
	int fd = open(path, O_RDONLY | O_CLOEXEC), changed = 0;

	if (fd < 0)
		return 0;
	if (psize < 512 || psize > 65536 || (psize & (psize - 1)))
		psize = 4096;
	if (pread(fd, now[0], sizeof(now[0]), 0) == (ssize_t)sizeof(now[0]) &&
	    pread(fd, now[1], sizeof(now[1]), (off_t)psize) == (ssize_t)sizeof(now[1]) &&
	    fstat(fd, &sb) == 0 &&
	    (memcmp(now, m, sizeof(now)) != 0 || (uint64_t)sb.st_size != *file_size)) {
		*file_size = (uint64_t)sb.st_size;
		changed = 1;
	}
	close(fd);
	return changed;
}

int ts__lmdb_check_file(const char *path, uint64_t file_size, const char *const *full,
			int nfull)
{
	uint8_t m[2][160];
	int rc;

	/* Invariant 4: damage found while a commit changed the meta pages may be pages that the
	 * commit reused under us; check the new snapshot. Damage in a file that stays still is
	 * reported. */
	for (int tries = 0;; tries++) {
		rc = check_file_once(path, file_size, full, nfull, m);
		if (rc != TS_ECORRUPT || tries == CHECK_FILE_TRIES ||
		    !metas_changed(path, m, &file_size))
			return rc;
	}
}

/* -- in a read transaction, from the map -------------------------------------------------- */

/* Set up @p s and *@p db for database @p dbname in read transaction @p txn. 1: a write
 * transaction (not checked); 0; or a negative code. */
static int map_src(ts_store *st, MDB_txn *txn, const char *dbname, struct src *s,
		   struct dbrec *db)
{
	MDB_envinfo info;
	MDB_stat es;
	MDB_dbi main_dbi;
	MDB_val k = {strlen(dbname), (void *)dbname}, v;
	int rc;

	if (mdb_env_info(st->env, &info) || mdb_env_stat(st->env, &es))
		return ts__err(TS_EIO, "'%s': cannot query the LMDB environment", st->path);
	if (mdb_txn_id(txn) > info.me_last_txnid)
		return 1; /* invariant 2 */
	memset(s, 0, sizeof *s);
	s->path = st->path;
	s->db = "main";
	s->fd = -1;
	s->map = (const uint8_t *)st->map_base;
	s->psize = es.ms_psize;
	s->npages = (uint64_t)info.me_last_pgno + 1;
	if (s->npages > st->map_size / s->psize)
		s->npages = st->map_size / s->psize;
	if (!s->map || s->psize < 512)
		return ts__err(TS_EINTERNAL, "'%s': the store's map is unknown", st->path);
	/* The database's record in this snapshot's main tree (checked whole at open). */
	rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
	if (rc == 0)
		rc = mdb_get(txn, main_dbi, &k, &v);
	if (rc)
		return ts__err_from_mdb(rc, "reading LMDB's main tree");
	if (v.mv_size != TS_LMDB_DB_SIZE)
		return ts__err(TS_ECORRUPT, "'%s': LMDB's record of the '%s' database is damaged",
			       st->path, dbname);
	s->db = dbname;
	return check_dbrec(s, v.mv_data, db, 0, 0);
}

int ts__lmdb_check_key(ts_store *st, MDB_txn *txn, const char *dbname, const void *key,
		       size_t klen)
{
	struct src s;
	struct dbrec db;
	int rc = map_src(st, txn, dbname, &s, &db);

	if (rc)
		return rc < 0 ? rc : 0;
	s.lazy = 1;
	return walk_path(&s, &db, 0, key, klen, NULL, NULL);
}

int ts__lmdb_window_begin(ts__lmdb_window *w, ts_store *st, MDB_txn *txn, const char *dbname)
{
	struct src s;
	struct dbrec db;
	int rc = map_src(st, txn, dbname, &s, &db);

	w->nchecked = 0;
	memset(w->checked, 0, sizeof(w->checked));
	w->unchecked = rc == 1;
	if (rc < 0)
		return rc;
	w->path = s.path;
	w->db = s.db;
	w->map = s.map;
	w->psize = s.psize;
	w->npages = s.npages;
	w->flags = db.flags;
	w->depth = db.depth;
	w->root = db.root;
	return 0;
}

/* The map source of window @p w's database. */
static void window_src(const ts__lmdb_window *w, struct src *s)
{
	memset(s, 0, sizeof *s);
	s->path = w->path;
	s->db = w->db;
	s->fd = -1;
	s->map = w->map;
	s->psize = w->psize;
	s->npages = w->npages;
}

int ts__lmdb_window_leaf_of(ts__lmdb_window *w, const void *key, size_t klen, uint64_t *leaf)
{
	struct src s;
	uint64_t pgno = w->root;

	if (w->unchecked || w->root == L_INVALID)
		return 1;
	window_src(w, &s);
	for (int level = 0; level + 1 < (int)w->depth; level++) {
		const uint8_t *pg = get_page(&s, pgno, level);
		unsigned nkeys;

		if (!pg)
			return TS_ECORRUPT;
		if (!window_has(w, pgno, 0)) {
			int rc = check_page(&s, pg, pgno, 1, 0, 0, 0, NULL, NULL, &nkeys);
			if (rc < 0)
				return rc;
			window_has(w, pgno, 1);
		}
		nkeys = (ts__lmdb_u16(pg + 12) - TS_LMDB_PAGEHDR) / 2;
		pgno = branch_child(pg, nkeys, key, klen);
	}
	if (pgno < 2 || pgno >= w->npages)
		return bad(&s, pgno, "page number outside the file's used pages, last is",
			   w->npages - 1);
	*leaf = pgno;
	return 0;
}

int ts__lmdb_window_leaf_check(ts__lmdb_window *w, const uint8_t *pg, uint64_t pgno)
{
	struct src s;
	unsigned nkeys;

	window_src(w, &s);
	s.lazy = 1;
	return check_leaf(&s, pg, pgno, &nkeys);
}

int ts__lmdb_leaf_get(const uint8_t *pg, const void *key, size_t klen, ts__lmdb_leaf_val *out)
{
	unsigned nkeys = (ts__lmdb_u16(pg + 12) - TS_LMDB_PAGEHDR) / 2;

	/* LMDB's search (mdb_node_search): keys ascending; only an exact match is an answer */
	for (unsigned lo = 0, hi = nkeys; lo < hi;) {
		unsigned mid = (lo + hi) / 2;
		struct node n;
		int c;

		node_at(pg, mid, &n);
		c = key_cmp(n.key, n.ksize, key, klen);
		if (c < 0) {
			lo = mid + 1;
		} else if (c > 0) {
			hi = mid;
		} else {
			out->size = n.dsize;
			out->overflow = n.flags & TS_LMDB_F_BIGDATA ? ts__lmdb_u64(n.data) : 0;
			out->data = n.flags & TS_LMDB_F_BIGDATA ? NULL : n.data;
			return 1;
		}
	}
	return 0;
}

int ts__lmdb_window_check_key(ts__lmdb_window *w, const void *key, size_t klen)
{
	struct src s;
	struct dbrec db = {w->flags, w->depth, w->root};

	if (w->unchecked)
		return 0;
	window_src(w, &s);
	s.lazy = 1;
	return walk_path(&s, &db, 0, key, klen, NULL, w);
}

int ts__lmdb_check_tree(ts_store *st, MDB_txn *txn, const char *dbname)
{
	struct src s;
	struct dbrec db;
	int rc = map_src(st, txn, dbname, &s, &db);

	if (rc)
		return rc < 0 ? rc : 0;
	if (db.root == L_INVALID)
		return 0;
	s.seen = calloc(1, (size_t)(s.npages / 8 + 1));
	if (!s.seen)
		return ts__err(TS_ENOMEM, "checking the '%s' database: out of memory", dbname);
	rc = walk(&s, db.root, 0, (int)db.depth, 0, NULL, NULL);
	free(s.seen);
	return rc;
}
