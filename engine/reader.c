/*
 * The read path: ts_read_slice(), ts_read_many() (many slices as one pipeline), ts_read_rows()
 * (row gathers), ts_read_encoded() and ts_read_pages() (payloads as they are, for the GPU path:
 * docs/GPU.md), and the page planning ts_page_plan().
 *
 * A request is planned on the tensor's 2-D view (rows = product of the leading dimensions,
 * cols = the last one): the hyperslab becomes a column range and a sorted list of row runs (each
 * a run of consecutive source rows landing on consecutive rows of the caller's buffer), and the
 * pages it covers are the tiles those rows and columns touch. Pages are handled in windows of at
 * most WINDOW_PAGES pages and WINDOW_BYTES of storage: cache hits are pinned; for the misses,
 * inside one short read transaction held with map_lock shared, each page value is looked up, its
 * file offset derived (value address - map base - LMDB's 16-byte overflow page header), and the
 * aligned runs go out as one I/O batch (queue depth TS_IO_QD); runs that lie back to back in the
 * file are merged into one read of up to READ_MAX, so that small pages cost no extra I/O
 * operations on a sequential load. While one window is verified and decoded on the worker pool,
 * the reads of the next DEPTH windows are in flight, each window holding its own read
 * transaction until its reads are waited for, so that the disk never waits for the decode nor
 * the decode for one slow batch. ts_read_many() runs the windows of all its requests as one
 * sequence, so the overlap continues across tensors. A window's page keys are looked up in copies
 * of their LMDB leaves that it reads itself, as one batch before its pages (window_leaves), not
 * through the map one fault at a time. A page is decoded only where the request wants it
 * (decode_parts: its rows and columns inside the request), straight into the caller's buffer.
 *
 * Invariants
 *   1. No byte reaches the caller's buffer from a page that has not passed ts__page_verify()
 *      (type, version, geometry, XXH3 checksum); a cached page was verified before it was cached.
 *   1a. Before LMDB follows a page key, engine/lmdbcheck.c has checked the pages on its path; the
 *      checks of one window's transaction share one ts__lmdb_window (each page checked once per
 *      transaction: engine/lmdbcheck.c, invariant 5). A key is looked up in a copy of its leaf
 *      only after ts__lmdb_window_leaf_check() accepted the copy; a copy that did not read back
 *      whole or failed the check is not used (the key is looked up through LMDB, checked in the
 *      map, where damage is reported).
 *   2. A run read from storage is used only if LMDB's overflow header in it says what the layout
 *      predicts (page number = offset / 4096, overflow flag, page count = run length / 4096);
 *      otherwise the value is copied from the map while the transaction is still open, and counted
 *      (map_fallbacks).
 *   3. Map addresses are turned into offsets, and map bytes copied, only with map_lock held
 *      shared and the transaction that produced them open (engine/handle.h invariants 3, 4);
 *      leaves are read, and looked up in, only while that transaction is open too (its
 *      snapshot's pages are not rewritten before it ends).
 *      The windows in flight each hold map_lock shared, so one thread holds it up to DEPTH
 *      times: the lock is created with the default attributes, under which glibc's rwlock
 *      prefers readers, so a writer waiting for it cannot block the thread's next read lock.
 *   4. Every batch submitted is waited for before its buffers are reused or freed, on every path.
 *   5. Memory per request: the row-run list (at most one entry per requested row), DEPTH + 1
 *      windows of page buffers (WINDOW_BYTES of runs each by the pages' estimated sizes, at most
 *      twice that: page_estimate) and of leaf copies (one 4 KiB leaf per page at most), and
 *      one scratch page per worker; nothing is allocated per element or per page.
 *   6. A bulk request (its pages' storage runs add up to TS_READ_BULK_BYTES or more: a load,
 *      not a lookup) puts into the cache only pages the frequency sketch has seen before; a
 *      first-seen page is decoded straight into the caller's buffer. A one-pass load of a model
 *      therefore costs no cache copies and evicts nothing (docs/READ.md, "The cache").
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/lossless.h"
#include "common/error.h"
#include "engine/cache.h"
#include "engine/format.h"
#include "engine/geometry.h"
#include "engine/handle.h"
#include "engine/io.h"
#include "engine/lmdbcheck.h"
#include "engine/lmdbfmt.h"
#include "engine/page.h"
#include "engine/pool.h"
#include "engine/record.h"
#include "engine/txn.h"

#define WINDOW_PAGES 512   /* pages (hits and misses) per window at most: with 8 KiB pages, a
			    * window reaches WINDOW_BYTES (256 left windows of 4 and 8 KiB pages at
			    * 1 and 2 MiB in flight, and a cold load 10-15% slower) */
#define WINDOW_BYTES (4u << 20) /* storage bytes per window at most */
#define CHUNK_PAGES 8       /* pages one worker decodes as one pool item at most */
#define DEPTH 2             /* windows being read while one decodes */
#define READ_MAX (1u << 20)    /* adjacent runs are merged into reads of at most this size */
#define TS_READ_BULK_BYTES (1u << 20) /* invariant 6 */
#define RETRIES 8 /* reads of a tensor replaced meanwhile, before TS_EBUSY (3 starved a
                    * reader under AddressSanitizer beside a writer replacing in a loop) */
#define NO_LEAF SIZE_MAX
#define TS__RETRY 1        /* internal: the tensor changed under a multi-window read */

struct run {
	uint64_t src; /* first source row (2-D view) */
	uint64_t dst; /* first destination row */
	uint64_t len;
};

enum mode { MODE_SLICE, MODE_ENCODED, MODE_PAGES };

struct job {
	uint64_t page;
	uint64_t idx; /* MODE_PAGES: its index in the caller's page list */
	uint64_t r0, nr, c0, nc;
	ts__cache_entry *hit; /* pinned cache hit, or NULL */
	ts__cache_entry *chit; /* pinned compressed page (tiered residency), or NULL */
	int prefetch;          /* read ahead: cache it compressed, copy nothing out */
	int seen;              /* accessed before (ts__cache_access()): worth caching in bulk */
	int served;            /* the form it was served from + 1 (0: not served), for
				* tier_served() once per pool item */
	const uint8_t *raw;   /* verified-to-be page bytes (header + payload) */
	size_t raw_len;
	/* miss bookkeeping while the transaction is open */
	const uint8_t *map_val;
	size_t req;     /* index of its I/O request, or SIZE_MAX if copied from the map */
	size_t req_off; /* where its aligned run starts in that request's buffer */
	size_t run_len; /* the aligned run's length */
	size_t leaf;    /* its key's leaf in the window's leaf copies, or NO_LEAF: through LMDB */
};

struct window {
	struct req *r; /* the request its jobs belong to */
	struct job *jobs;
	size_t njobs;
	size_t *chunks; /* pool item k decodes jobs [chunks[k], chunks[k + 1]) */
	ts__io_req *reqs;
	size_t nreqs;
	ts__io_batch batch;
	uint8_t *arena;
	size_t arena_cap;
	uint64_t *leaf_pg; /* the leaves read for its lookups (0: not usable, look up through LMDB) */
	size_t nleaves;
	uint8_t *leaf_buf; /* their copies, TS_LMDB_PAGE each */
	size_t leaf_cap;
	int leaves_out;    /* its leaves' batch is being read (until window_leaves_wait) */
	int fetching;      /* window_fetch_start done, window_fetch_finish not yet */
	ts__lmdb_window *lw; /* the structure checks of its transaction's page lookups */
	int submitted;
	MDB_txn *txn; /* open from the window's lookups until its reads are waited for */
	size_t ri;    /* its request's index in the pipeline */
	ts__pool_job job; /* its decoding */
};

struct scratch {
	atomic_flag busy;
	void *buf;
	size_t cap;
};

struct req {
	ts_store *st;
	const char *name;
	ts__tensor_rec rec;
	enum mode mode;
	/* slice */
	ts_dtype dtype;
	size_t esz;
	uint8_t *dst;
	uint64_t cs, cc; /* column range in the 2-D view */
	struct run *runs;
	size_t nruns;
	/* encoded */
	uint8_t *codes, *scales;
	uint64_t row_start;
	size_t code_row, scale_row, cb; /* bytes: code row, scale row, code bytes per block */
	/* pages */
	const ts_page_ref *plist;
	size_t nplist;
	uint8_t *pbuf;
	const size_t *poff;
	size_t *plen;
	/* pages */
	uint64_t *trows; /* tile rows touched, ascending */
	size_t ntrows;
	uint64_t u0, u1, across;
	/* decode */
	struct scratch *scr; /* shared by the requests of one call (ts_read_many) */
	int nscr;
	size_t scr_bytes;
	int scr_owned;
	pthread_mutex_t err_lock;
	uint64_t err_idx;
	int err_code;
	char err_msg[512];
	/* read-ahead pages still to add to the last window (engine/cache.h) */
	uint64_t ra_pos, ra_end;
	int bulk; /* a bulk request: first-seen pages bypass the cache (invariant 6) */
};

/* -- small helpers ----------------------------------------------------------------------------- */

static int out_dtype_ok(const ts__tensor_rec *rec, ts_dtype dtype)
{
	int stored = rec->codec.codec == TS_CODEC_RAW || rec->codec.codec == TS_CODEC_LOSSLESS;
	if (stored && dtype == rec->codec.raw_dtype)
		return 1;
	if (dtype != TS_F32 && dtype != TS_BF16 && dtype != TS_F16)
		return 0;
	if (stored)
		return rec->codec.raw_dtype == TS_F32 || rec->codec.raw_dtype == TS_BF16 ||
		       rec->codec.raw_dtype == TS_F16;
	return 1;
}

/* Record the error of job @p idx (raised on a worker thread) if it is the lowest so far. */
static void note_error(struct req *r, uint64_t idx, int code)
{
	pthread_mutex_lock(&r->err_lock);
	if (!r->err_code || idx < r->err_idx) {
		r->err_code = code;
		r->err_idx = idx;
		snprintf(r->err_msg, sizeof(r->err_msg), "%s", ts_error_last());
	}
	pthread_mutex_unlock(&r->err_lock);
}

static void *scratch_get(struct req *r, struct scratch **slot)
{
	for (int i = 0; i < r->nscr; i++) {
		if (!atomic_flag_test_and_set(&r->scr[i].busy)) {
			if (r->scr[i].cap < r->scr_bytes) { /* a later request's pages are larger */
				free(r->scr[i].buf);
				r->scr[i].cap = (r->scr_bytes + 63) & ~(size_t)63;
				r->scr[i].buf = aligned_alloc(64, r->scr[i].cap);
				if (!r->scr[i].buf)
					r->scr[i].cap = 0;
			}
			if (!r->scr[i].buf) {
				atomic_flag_clear(&r->scr[i].busy);
				return NULL;
			}
			*slot = &r->scr[i];
			return r->scr[i].buf;
		}
	}
	*slot = NULL;
	return NULL;
}

static void scratch_put(struct scratch *slot)
{
	if (slot)
		atomic_flag_clear(&slot->busy);
}

/* -- planning ---------------------------------------------------------------------------------- */

static int add_run(struct req *r, size_t *cap, uint64_t src, uint64_t dst, uint64_t len)
{
	if (r->nruns) {
		struct run *p = &r->runs[r->nruns - 1];
		if (p->src + p->len == src && p->dst + p->len == dst) {
			p->len += len;
			return 0;
		}
	}
	if (r->nruns == *cap) {
		size_t n = *cap ? *cap * 2 : 16;
		struct run *q = realloc(r->runs, n * sizeof(*q));
		if (!q)
			return ts__err(TS_ENOMEM, "reading '%s': out of memory planning the slice",
				       r->name);
		r->runs = q;
		*cap = n;
	}
	r->runs[r->nruns++] = (struct run){src, dst, len};
	return 0;
}

/* The row runs of a hyperslab in the 2-D view, ascending in both source and destination. */
static int plan_runs(struct req *r, const uint64_t *start, const uint64_t *count)
{
	const ts__tensor_rec *t = &r->rec;
	int nd = t->ndim;
	size_t cap = 0;
	uint64_t idx[TS_MAX_DIMS] = {0}, rstride[TS_MAX_DIMS];
	int L, outer;
	uint64_t dst = 0;

	if (nd <= 1) {
		r->cs = nd == 1 ? start[0] : 0;
		r->cc = nd == 1 ? count[0] : 1;
		return add_run(r, &cap, 0, 0, 1);
	}
	r->cs = start[nd - 1];
	r->cc = count[nd - 1];
	L = nd - 1; /* leading dims 0..L-1 make the row index */
	rstride[L - 1] = 1;
	for (int k = L - 2; k >= 0; k--)
		rstride[k] = rstride[k + 1] * t->shape[k + 1];
	outer = L - 1; /* dims 0..outer-1 enumerate runs; dim outer is the run itself */
	for (;;) {
		uint64_t src = start[outer];
		for (int k = 0; k < outer; k++)
			src += (start[k] + idx[k]) * rstride[k];
		int rc = add_run(r, &cap, src, dst, count[outer]);
		if (rc)
			return rc;
		dst += count[outer];
		int k = outer - 1;
		while (k >= 0 && ++idx[k] == count[k])
			idx[k--] = 0;
		if (k < 0)
			break;
	}
	return 0;
}

/* Tile rows touched by the runs, ascending, without duplicates. */
static int plan_tiles(struct req *r)
{
	uint64_t tr = r->rec.tile_rows, prev = UINT64_MAX;
	size_t cap = 0;

	if (r->rec.tile_rows == 0 || r->rec.tile_cols == 0)
		return ts__err(TS_ECORRUPT, "tensor '%s': record has an empty page geometry", r->name);

	for (size_t i = 0; i < r->nruns; i++) {
		uint64_t a = r->runs[i].src / tr, b = (r->runs[i].src + r->runs[i].len - 1) / tr;
		for (uint64_t t = a; t <= b; t++) {
			if (prev != UINT64_MAX && t <= prev) /* runs of a row gather may overlap */
				continue;
			if (r->ntrows == cap) {
				size_t n = cap ? cap * 2 : 16;
				uint64_t *q = realloc(r->trows, n * sizeof(*q));
				if (!q)
					return ts__err(TS_ENOMEM, "reading '%s': out of memory", r->name);
				r->trows = q;
				cap = n;
			}
			r->trows[r->ntrows++] = t;
			prev = t;
		}
	}
	r->across = ts__geometry_tiles_across(&r->rec);
	r->u0 = r->cs / r->rec.tile_cols;
	r->u1 = (r->cs + r->cc - 1) / r->rec.tile_cols;
	return 0;
}

/* First run whose rows end after @p row. */
static size_t run_find(const struct req *r, uint64_t row)
{
	size_t lo = 0, hi = r->nruns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->runs[mid].src + r->runs[mid].len <= row)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* -- consuming verified pages --------------------------------------------------------------------- */

/* The request's columns [*a, *b) inside page @p j. */
static void page_cols(const struct req *r, const struct job *j, uint64_t *a, uint64_t *b)
{
	*a = j->c0 > r->cs ? j->c0 : r->cs;
	*b = j->c0 + j->nc < r->cs + r->cc ? j->c0 + j->nc : r->cs + r->cc;
}

/* The source rows [*lo, *hi) of run @p u inside page @p j. */
static void run_rows(const struct run *u, const struct job *j, uint64_t *lo, uint64_t *hi)
{
	*lo = u->src > j->r0 ? u->src : j->r0;
	*hi = u->src + u->len < j->r0 + j->nr ? u->src + u->len : j->r0 + j->nr;
}

/* Copy the part of a decoded page (stride nc elements) that the request wants. */
static void copy_out(struct req *r, const struct job *j, const uint8_t *page)
{
	uint64_t a, b, lo, hi;
	size_t n;

	page_cols(r, j, &a, &b);
	n = (size_t)(b - a) * r->esz;
	for (size_t i = run_find(r, j->r0); i < r->nruns && r->runs[i].src < j->r0 + j->nr; i++) {
		const struct run *u = &r->runs[i];
		run_rows(u, j, &lo, &hi);
		for (uint64_t row = lo; row < hi; row++) {
			uint64_t drow = u->dst + (row - u->src);
			memcpy(r->dst + (drow * r->cc + (a - r->cs)) * r->esz,
			       page + ((row - j->r0) * j->nc + (a - j->c0)) * r->esz, n);
		}
	}
}

/* If the whole page lands as a rectangle in the caller's buffer: where its first element goes. */
static uint8_t *direct_target(struct req *r, const struct job *j)
{
	size_t i;

	if (j->c0 < r->cs || j->c0 + j->nc > r->cs + r->cc)
		return NULL;
	i = run_find(r, j->r0);
	if (i >= r->nruns || r->runs[i].src > j->r0 ||
	    r->runs[i].src + r->runs[i].len < j->r0 + j->nr)
		return NULL;
	if (i + 1 < r->nruns && r->runs[i + 1].src < j->r0 + j->nr)
		return NULL; /* a row gather wants some of these rows twice */
	return r->dst + ((r->runs[i].dst + (j->r0 - r->runs[i].src)) * r->cc + (j->c0 - r->cs)) *
				r->esz;
}

static int decode_page(struct req *r, const struct job *j, void *out, uint64_t stride)
{
	const uint8_t *payload = j->raw + TS_PAGE_HEADER_SIZE;
	size_t plen = j->raw_len - TS_PAGE_HEADER_SIZE;
	int rc = ts_codec_decode(&r->rec.codec, r->rec.tensor_scale, payload, plen, j->nr, j->nc,
				 r->dtype, out, stride);

	if (rc)
		return ts__err_wrap(rc, "decoding page %llu of tensor '%s'",
				    (unsigned long long)j->page, r->name);
	return 0;
}

/*
 * Decode only the part of a page that the request wants, straight into the caller's buffer: for
 * each run crossing the page, its rows of the page and the request's columns of it (the blocks
 * they touch: codec/codec.h). A 64-row slice of a page of 28-row tiles, or one embedding row,
 * decodes what it returns and little more.
 */
static int decode_parts(struct req *r, const struct job *j)
{
	const uint8_t *payload = j->raw + TS_PAGE_HEADER_SIZE;
	size_t plen = j->raw_len - TS_PAGE_HEADER_SIZE;
	uint64_t a, b, lo, hi;

	page_cols(r, j, &a, &b);
	for (size_t i = run_find(r, j->r0); i < r->nruns && r->runs[i].src < j->r0 + j->nr; i++) {
		const struct run *u = &r->runs[i];
		uint8_t *d;
		int rc;

		run_rows(u, j, &lo, &hi);
		d = r->dst + ((u->dst + (lo - u->src)) * r->cc + (a - r->cs)) * r->esz;
		rc = ts__codec_decode_rect(&r->rec.codec, r->rec.tensor_scale, payload, plen, j->nr,
					   j->nc, lo - j->r0, hi - lo, a - j->c0, b - a, r->dtype, d,
					   r->cc);
		if (rc)
			return ts__err_wrap(rc, "decoding page %llu of tensor '%s'",
					    (unsigned long long)j->page, r->name);
	}
	return 0;
}

/* -- the cache's hints (engine/cache.h) ---------------------------------------------------------- */

/* Tell the cache which form served jobs [a, b) (one call per form rather than per page: the
 * policy's lock is shared by every reading thread). */
static void tier_served(struct req *r, const struct job *jobs, size_t a, size_t b)
{
	for (int f = 1; f <= TS__FORM_STORAGE + 1; f++) {
		uint64_t pages = 0, elements = 0;
		for (size_t i = a; i < b; i++)
			if (jobs[i].served == f) {
				pages++;
				elements += jobs[i].nr * jobs[i].nc;
			}
		ts__cache_served(r->st->cache, r->rec.id, (ts__form)(f - 1), pages, elements,
				 elements * r->esz);
	}
}

/* Keep a verified page compressed in the cache, if the policy makes room for it. */
static int cache_compressed(struct req *r, const struct job *j)
{
	ts__cache_key key = {r->rec.id, j->page, TS__CACHE_COMPRESSED};
	ts__cache_entry *e = ts__cache_alloc(r->st->cache, &key, j->raw_len);

	if (!e)
		return 0;
	memcpy(e->data, j->raw, j->raw_len);
	ts__cache_insert(r->st->cache, e);
	ts__cache_release(r->st->cache, e);
	return 1;
}

/* A page read ahead: verified, kept compressed. A page failing verification is not kept (the
 * read that needs it will report it). */
static int consume_prefetch(struct req *r, struct job *j)
{
	if (ts__page_verify(j->raw, j->raw_len, &r->rec, r->name, j->page) == 0 &&
	    cache_compressed(r, j))
		ts__cache_prefetched(r->st->cache, 1);
	ts_error_clear();
	return 0;
}

/* Price the tensor's pages for the policy and ask for read-ahead of a sequential walk. */
static void tier_request(struct req *r)
{
	struct ts__cache *c = r->st->cache;
	uint64_t n = 0, first, last;

	r->ra_pos = r->ra_end = 0;
	if (ts__cache_budget(c) == 0 || r->ntrows == 0)
		return;
	size_t enc = ts_codec_encoded_size(&r->rec.codec, r->rec.tile_rows, r->rec.tile_cols);
	uint64_t io = (TS_LMDB_PAGEHDR + TS_PAGE_HEADER_SIZE + enc + TS_LMDB_PAGE - 1) &
		      ~(uint64_t)(TS_LMDB_PAGE - 1);
	ts__cache_tensor(c, r->rec.id, r->rec.codec.codec, io, r->rec.tile_rows * r->rec.tile_cols);
	first = r->trows[0] * r->across + r->u0;
	last = r->trows[r->ntrows - 1] * r->across + r->u1;
	r->bulk = (uint64_t)r->ntrows * (r->u1 - r->u0 + 1) * io >= TS_READ_BULK_BYTES;
	ts__cache_request(c, r->rec.id, first, last, r->rec.page_count, &r->ra_pos, &n);
	r->ra_end = r->ra_pos + n;
}

static int consume_slice(struct req *r, struct job *j)
{
	ts__cache_entry *e;
	ts__cache_key key = {r->rec.id, j->page, (uint32_t)r->dtype};
	uint8_t *direct;
	struct scratch *slot;
	void *buf;
	int rc, first_sight;

	if (j->prefetch)
		return consume_prefetch(r, j);
	if (j->hit) {
		copy_out(r, j, j->hit->data);
		j->served = TS__FORM_DECODED + 1;
		return 0;
	}
	if (!j->chit) { /* a compressed page in the cache was verified before it was cached */
		rc = ts__page_verify(j->raw, j->raw_len, &r->rec, r->name, j->page);
		if (rc)
			return rc;
	}
	j->served = (j->chit ? TS__FORM_COMPRESSED : TS__FORM_STORAGE) + 1;
	/* tiered: a page read from storage is cached compressed and decoded straight to the
	 * caller; a compressed hit is offered decoded (promotion, if the policy admits it).
	 * A bulk request caches only pages seen before (invariant 6). */
	first_sight = r->bulk && !j->chit && !j->seen;
	e = NULL;
	if (!first_sight && ts__cache_keeps_compressed(r->st->cache) && !j->chit)
		cache_compressed(r, j);
	else if (!first_sight)
		e = ts__cache_alloc(r->st->cache, &key, (size_t)(j->nr * j->nc) * r->esz);
	if (e) {
		rc = decode_page(r, j, e->data, j->nc);
		if (rc == 0) {
			ts__cache_insert(r->st->cache, e);
			copy_out(r, j, e->data);
		}
		ts__cache_release(r->st->cache, e);
		return rc;
	}
	if (r->rec.codec.codec != TS_CODEC_LOSSLESS)
		return decode_parts(r, j);
	direct = direct_target(r, j);
	if (direct)
		return decode_page(r, j, direct, r->cc);
	buf = scratch_get(r, &slot);
	if (!buf) {
		/* more concurrent jobs than slots (should not happen): a private buffer */
		buf = aligned_alloc(64, (r->scr_bytes + 63) & ~(size_t)63);
		if (!buf)
			return ts__err(TS_ENOMEM, "reading '%s': out of memory", r->name);
	}
	rc = decode_page(r, j, buf, j->nc);
	if (rc == 0)
		copy_out(r, j, buf);
	if (slot)
		scratch_put(slot);
	else
		free(buf);
	return rc;
}

static int consume_encoded(struct req *r, struct job *j)
{
	int bs = r->rec.codec.block_size;
	uint64_t nbp = (j->nc + (uint64_t)bs - 1) / (uint64_t)bs;
	size_t pcode = (size_t)nbp * r->cb, pscale = r->scale_row ? (size_t)nbp : 0;
	size_t plen = j->raw_len - TS_PAGE_HEADER_SIZE;
	const uint8_t *codes = j->raw + TS_PAGE_HEADER_SIZE, *scales;
	uint64_t lo, hi, blk0 = j->c0 / (uint64_t)bs;
	int rc = ts__page_verify(j->raw, j->raw_len, &r->rec, r->name, j->page);

	if (rc)
		return rc;
	if (plen != (size_t)j->nr * (pcode + pscale))
		return ts__err(TS_ECORRUPT,
			       "page %llu of tensor '%s': payload of %zu bytes, planes need %zu",
			       (unsigned long long)j->page, r->name, plen,
			       (size_t)j->nr * (pcode + pscale));
	scales = codes + (size_t)j->nr * pcode;
	lo = j->r0 > r->row_start ? j->r0 : r->row_start;
	hi = j->r0 + j->nr < r->row_start + r->runs[0].len ? j->r0 + j->nr
							      : r->row_start + r->runs[0].len;
	for (uint64_t row = lo; row < hi; row++) {
		uint64_t o = row - r->row_start, p = row - j->r0;
		memcpy(r->codes + o * r->code_row + blk0 * r->cb, codes + p * pcode, pcode);
		if (pscale)
			memcpy(r->scales + o * r->scale_row + blk0, scales + p * pscale, pscale);
	}
	return 0;
}

/* A verified payload placed as it is (lossless: unpacked) at the caller's offset. */
static int consume_page(struct req *r, struct job *j)
{
	const ts_page_ref *p = &r->plist[j->idx];
	const uint8_t *payload = j->raw + TS_PAGE_HEADER_SIZE;
	size_t plen = j->raw_len - TS_PAGE_HEADER_SIZE, len = plen;
	uint8_t *dst = r->pbuf + r->poff[j->idx];
	int rc = ts__page_verify(j->raw, j->raw_len, &r->rec, r->name, j->page);

	if (rc)
		return rc;
	if (r->rec.codec.codec == TS_CODEC_LOSSLESS) {
		rc = ts__lossless_unpack(&len, payload, plen, r->rec.codec.raw_dtype, j->nr * j->nc,
					 dst, p->max_bytes);
		if (rc)
			return ts__err_wrap(rc, "page %llu of tensor '%s'",
					    (unsigned long long)j->page, r->name);
	} else {
		if (plen > p->max_bytes)
			return ts__err(TS_ECORRUPT, "page %llu of tensor '%s': payload of %zu bytes, "
				       "at most %zu expected", (unsigned long long)j->page, r->name,
				       plen, p->max_bytes);
		memcpy(dst, payload, plen);
	}
	r->plen[j->idx] = len;
	return 0;
}

static int job_run(void *ud, uint64_t i)
{
	struct window *w = ud;
	struct req *r = w->r;
	struct job *j = &w->jobs[i];
	int rc = r->mode == MODE_SLICE     ? consume_slice(r, j)
		 : r->mode == MODE_ENCODED ? consume_encoded(r, j)
					   : consume_page(r, j);

	if (rc)
		note_error(r, i, rc);
	return rc;
}

/*
 * The window's jobs cut into pool items: consecutive pages of one tile row, at most CHUNK_PAGES.
 * One worker then writes whole rows of the destination instead of two workers writing
 * neighbouring column ranges of the same rows, which halved the decode rate on a two-core VM
 * (the cores' prefetchers fight over the neighbour's lines), and claims an item once per tile
 * row rather than once per page. Returns the number of items.
 */
static size_t window_chunks(struct window *w)
{
	uint64_t across = ts__geometry_tiles_across(&w->r->rec);
	size_t n = 0;

	for (size_t i = 0; i < w->njobs; i++)
		if (i == 0 || i - w->chunks[n - 1] == CHUNK_PAGES || across == 0 ||
		    w->jobs[i].page / across != w->jobs[i - 1].page / across)
			w->chunks[n++] = i;
	w->chunks[n] = w->njobs;
	return n;
}

static int chunk_run(void *ud, uint64_t k)
{
	struct window *w = ud;
	size_t i;
	int rc = 0;

	for (i = w->chunks[k]; i < w->chunks[k + 1] && rc == 0; i++)
		rc = job_run(w, i); /* after an error the chunk's later jobs are skipped, as the pool
				     * skips later items */
	if (w->r->mode == MODE_SLICE)
		tier_served(w->r, w->jobs, w->chunks[k], i);
	return rc;
}

/* Unpin the window's cache hits and empty it. */
static void window_release(ts_store *st, struct window *w)
{
	for (size_t i = 0; i < w->njobs; i++) {
		ts__cache_release(st->cache, w->jobs[i].hit);
		ts__cache_release(st->cache, w->jobs[i].chit);
		w->jobs[i].hit = w->jobs[i].chit = NULL;
	}
	w->njobs = 0;
}

/*
 * Decoding a window in two halves: start queues its pool items, so that the pool's workers decode
 * while the caller looks up and submits the next window; finish decodes on the calling thread
 * too and waits. 0 or the error of the window's first failing page.
 */
static void window_consume_start(struct window *w)
{
	size_t items = window_chunks(w);

	w->r->err_code = 0;
	/* one item: not worth waking a worker */
	ts__pool_start(items > 1 ? w->r->st->pool : NULL, &w->job, items, chunk_run, w);
}

static int window_consume_finish(struct window *w)
{
	struct req *r = w->r;
	int rc = ts__pool_finish(r->st->pool, &w->job);

	window_release(r->st, w);
	if (rc && r->err_code)
		return ts__err(r->err_code, "%s", r->err_msg);
	return rc;
}

/* -- one window: look up, read, check ------------------------------------------------------------- */

/*
 * Page buffers are large (a window is up to WINDOW_BYTES of runs) and a fresh allocation of that size
 * is a fresh mapping whose pages fault in on first touch: each thread keeps its last few
 * buffers for its next requests (freed at thread exit). A buffer of 2 MiB or more is a
 * ts_buffer_alloc() mapping, backed by transparent huge pages where the kernel gives them: every
 * O_DIRECT read pins its buffer's pages (get_user_pages), and pinning 4 KiB pages one by one was
 * 6.5% of the CPU time of a cold lossless load (perf: gup_fast_fallback under io_uring_enter),
 * against one step per 2 MiB page.
 */
#define KEPT_BUFFERS (2 * (DEPTH + 1)) /* each window's arena and leaf copies */
#define KEPT_MAX (32u << 20)
#define HUGE_BUFFER (2u << 20)

static void *buffer_alloc(size_t bytes, size_t *cap)
{
	void *p = NULL;

	if (bytes < HUGE_BUFFER) {
		*cap = (bytes + TS_IO_ALIGN - 1) & ~(size_t)(TS_IO_ALIGN - 1);
		return aligned_alloc(TS_IO_ALIGN, *cap);
	}
	*cap = (bytes + HUGE_BUFFER - 1) & ~(size_t)(HUGE_BUFFER - 1);
	if (ts_buffer_alloc(&p, NULL, *cap) != 0) {
		ts_error_clear();
		return NULL;
	}
	return p;
}

/* Free a buffer of buffer_alloc(): its capacity says which kind it is. */
static void buffer_free(void *p, size_t cap)
{
	if (cap >= HUGE_BUFFER)
		ts_buffer_free(p, cap);
	else
		free(p);
}

struct kept {
	void *p[KEPT_BUFFERS];
	size_t cap[KEPT_BUFFERS];
};

static pthread_key_t kept_key;
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;

static void kept_free(void *v)
{
	struct kept *k = v;
	for (int i = 0; i < KEPT_BUFFERS; i++)
		buffer_free(k->p[i], k->cap[i]);
	free(k);
}

static void kept_init(void)
{
	pthread_key_create(&kept_key, kept_free);
}

static struct kept *kept_get(void)
{
	struct kept *k;

	pthread_once(&kept_once, kept_init);
	k = pthread_getspecific(kept_key);
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (k && pthread_setspecific(kept_key, k) != 0) {
			free(k);
			k = NULL;
		}
	}
	return k;
}

/* An aligned buffer of at least @p bytes (*cap receives its size), kept or new. */
static void *buffer_take(size_t bytes, size_t *cap)
{
	struct kept *k = kept_get();
	int best = -1;

	for (int i = 0; k && i < KEPT_BUFFERS; i++)
		if (k->p[i] && k->cap[i] >= bytes && (best < 0 || k->cap[i] < k->cap[best]))
			best = i;
	if (best >= 0) {
		void *p = k->p[best];
		*cap = k->cap[best];
		k->p[best] = NULL;
		return p;
	}
	return buffer_alloc(bytes, cap);
}

static void buffer_give(void *p, size_t cap)
{
	struct kept *k;
	int slot = 0;

	if (!p)
		return;
	k = cap <= KEPT_MAX ? kept_get() : NULL;
	if (!k) {
		buffer_free(p, cap);
		return;
	}
	for (int i = 1; i < KEPT_BUFFERS; i++) /* an empty slot, else the smallest */
		if (k->p[slot] && (!k->p[i] || k->cap[i] < k->cap[slot]))
			slot = i;
	if (k->p[slot] && k->cap[slot] >= cap) {
		buffer_free(p, cap);
		return;
	}
	buffer_free(k->p[slot], k->cap[slot]);
	k->p[slot] = p;
	k->cap[slot] = cap;
}

static int arena_reserve(struct window *w, size_t bytes)
{
	if (bytes <= w->arena_cap)
		return 0;
	buffer_give(w->arena, w->arena_cap);
	w->arena_cap = 0;
	w->arena = buffer_take(bytes, &w->arena_cap);
	if (!w->arena)
		return TS_ENOMEM;
	return 0;
}

/*
 * The LMDB leaves holding the keys of the window's missing pages, read from the file as one
 * batch and checked (engine/lmdbcheck.h): the map is opened without read-ahead, and each leaf
 * reached through it was a synchronous fault of 65-135 us on our VM, one per row of a row
 * gather. Each miss's j->leaf names its copy, or is NO_LEAF where its key is to be looked up
 * through LMDB: a write transaction, or a leaf that did not read back whole or failed its check
 * (the lookup then checks the leaf in the map and reports the damage there).
 */
static int window_leaves_start(struct req *r, struct window *w)
{
	ts_store *st = r->st;
	ts__lmdb_window *lw = w->lw;
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < w->njobs; i++) {
		struct job *j = &w->jobs[i];
		uint8_t key[TS_PAGE_KEY_SIZE];
		uint64_t leaf;
		size_t k;

		j->leaf = NO_LEAF;
		if (j->hit || j->chit || !st->map_base || lw->psize != TS_LMDB_PAGE)
			continue;
		ts__page_key(key, r->rec.id, j->page);
		rc = ts__lmdb_window_leaf_of(lw, key, sizeof key, &leaf);
		if (rc < 0)
			return ts__err_wrap(rc, "page %llu of tensor '%s'", (unsigned long long)j->page,
					    r->name);
		if (rc)
			continue;
		for (k = n; k > 0 && w->leaf_pg[k - 1] != leaf;) /* pages in key order: the last */
			k--;
		if (k == 0) {
			w->leaf_pg[n++] = leaf;
			k = n;
		}
		j->leaf = k - 1;
	}
	w->nleaves = n;
	if (n == 0)
		return 0;
	if (n * TS_LMDB_PAGE > w->leaf_cap) {
		buffer_give(w->leaf_buf, w->leaf_cap);
		w->leaf_cap = 0;
		w->leaf_buf = buffer_take(n * TS_LMDB_PAGE, &w->leaf_cap);
		if (!w->leaf_buf)
			return ts__err(TS_ENOMEM, "reading '%s': out of memory for %zu leaves",
				       r->name, n);
	}
	for (size_t i = 0; i < n; i++)
		w->reqs[i] = (ts__io_req){.offset = w->leaf_pg[i] * TS_LMDB_PAGE,
					  .len = TS_LMDB_PAGE,
					  .buf = w->leaf_buf + i * TS_LMDB_PAGE,
					  .map_src = (const uint8_t *)st->map_base +
						     w->leaf_pg[i] * TS_LMDB_PAGE};
	w->batch = (ts__io_batch){.reqs = w->reqs, .n = n, .tree = 1};
	w->leaves_out = 1; /* waited for even if the submission failed (invariant 4) */
	rc = ts__io_submit(st->io_ctx, &w->batch);
	if (rc)
		return ts__err_wrap(rc, "reading the index of tensor '%s'", r->name);
	return 0;
}

/* Wait for the window's leaves, if they are being read. 0 or the machinery's error. */
static int window_leaves_wait(struct req *r, struct window *w)
{
	int rc;

	if (!w->leaves_out)
		return 0;
	w->leaves_out = 0;
	rc = ts__io_wait(r->st->io_ctx, &w->batch);
	if (rc)
		return ts__err_wrap(rc, "reading the index of tensor '%s'", r->name);
	return 0;
}

/* The window's leaves read: check each copy; one that did not read back whole or fails its
 * check is not used (its keys are looked up through LMDB). */
static int window_leaves_finish(struct req *r, struct window *w)
{
	int rc = window_leaves_wait(r, w);

	for (size_t i = 0; rc == 0 && i < w->nleaves; i++)
		if (w->reqs[i].res != TS_LMDB_PAGE ||
		    ts__lmdb_window_leaf_check(w->lw, w->leaf_buf + i * TS_LMDB_PAGE,
					       w->leaf_pg[i])) {
			w->leaf_pg[i] = 0;
			ts_error_clear();
		}
	return rc;
}

/* Page @p j's value as mdb_get() gives it: from its leaf's copy (a big value's address in the
 * map computed, not touched), or through LMDB after checking the way to it. 0, MDB_NOTFOUND, or
 * a negative TS_E* (set). */
static int page_value(struct req *r, struct window *w, const struct job *j, MDB_val *v)
{
	uint8_t key[TS_PAGE_KEY_SIZE];
	MDB_val k = {TS_PAGE_KEY_SIZE, key};
	ts__lmdb_leaf_val lv;
	int rc;

	ts__page_key(key, r->rec.id, j->page);
	if (j->leaf != NO_LEAF && w->leaf_pg[j->leaf]) {
		if (!ts__lmdb_leaf_get(w->leaf_buf + j->leaf * TS_LMDB_PAGE, key, sizeof key, &lv))
			return MDB_NOTFOUND;
		v->mv_size = lv.size;
		v->mv_data = lv.data ? (void *)lv.data
				     : (void *)(r->st->map_base + lv.overflow * TS_LMDB_PAGE +
						TS_LMDB_PAGEHDR);
		return 0;
	}
	rc = ts__lmdb_window_check_key(w->lw, key, sizeof key);
	if (rc < 0)
		return ts__err_wrap(rc, "page %llu of tensor '%s'", (unsigned long long)j->page,
				    r->name);
	rc = mdb_get(w->txn, r->st->dbi_pages, &k, v);
	if (rc && rc != MDB_NOTFOUND)
		return ts__err_from_mdb(rc, "reading a page");
	return rc;
}

/*
 * Fetching a window's pages, in two steps with its transaction open and map_lock held: start
 * finds the leaves of its page keys and sends their reads out; finish (after the window before
 * it was decoded: the leaves are read meanwhile) waits for them, looks each missing page's
 * value up, plans its read (aligned overflow run) or copies it from the map, and submits the
 * batch.
 */
static int window_fetch_start(struct req *r, struct window *w)
{
	int rc;

	w->nreqs = 0;
	w->nleaves = 0;
	rc = ts__lmdb_window_begin(w->lw, r->st, w->txn, "pages");
	if (rc < 0)
		return ts__err_wrap(rc, "reading tensor '%s'", r->name);
	return window_leaves_start(r, w);
}

static int window_fetch_finish(struct req *r, struct window *w)
{
	ts_store *st = r->st;
	size_t need = 0, off = 0;
	int rc;

	rc = window_leaves_finish(r, w);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < w->njobs; i++) {
		struct job *j = &w->jobs[i];
		MDB_val v;
		uintptr_t addr;

		j->req = SIZE_MAX;
		j->map_val = NULL;
		if (j->hit || j->chit)
			continue;
		rc = page_value(r, w, j, &v);
		if (rc == MDB_NOTFOUND) {
			ts__tensor_rec now;
			if (ts__tensor_lookup(st, w->txn, r->name, &now) != 0 || now.id != r->rec.id)
				return TS__RETRY;
			return ts__err(TS_ECORRUPT, "page %llu of tensor '%s' is missing",
				       (unsigned long long)j->page, r->name);
		}
		if (rc)
			return rc;
		j->map_val = v.mv_data;
		j->raw_len = v.mv_size;
		addr = (uintptr_t)v.mv_data;
		/* a value held in a leaf's copy lies outside the map: copied below */
		if (st->map_base && addr >= st->map_base + TS_LMDB_PAGEHDR &&
		    (addr - st->map_base - TS_LMDB_PAGEHDR) % TS_LMDB_PAGE == 0 &&
		    v.mv_size > TS_LMDB_PAGE / 2 &&
		    addr - st->map_base - TS_LMDB_PAGEHDR +
				    ((TS_LMDB_PAGEHDR + v.mv_size + TS_LMDB_PAGE - 1) &
				     ~(size_t)(TS_LMDB_PAGE - 1)) <=
			    st->map_size) {
			size_t len = (TS_LMDB_PAGEHDR + v.mv_size + TS_LMDB_PAGE - 1) &
				     ~(size_t)(TS_LMDB_PAGE - 1);
			uint64_t offset = addr - st->map_base - TS_LMDB_PAGEHDR;
			ts__io_req *q = w->nreqs ? &w->reqs[w->nreqs - 1] : NULL;
			j->run_len = len;
			if (q && q->offset + q->len == offset && q->len + len <= READ_MAX) {
				j->req = w->nreqs - 1; /* back to back with the previous run */
				j->req_off = q->len;
				q->len += len;
			} else {
				q = &w->reqs[w->nreqs];
				q->offset = offset;
				q->len = len;
				q->map_src = (const uint8_t *)v.mv_data - TS_LMDB_PAGEHDR;
				j->req = w->nreqs++;
				j->req_off = 0;
			}
			need += len;
		} else {
			need += (v.mv_size + 63) & ~(size_t)63;
		}
	}
	if (arena_reserve(w, need))
		return ts__err(TS_ENOMEM, "reading '%s': out of memory for %zu bytes of pages",
			       r->name, need);
	for (size_t i = 0; i < w->nreqs; i++) {
		w->reqs[i].buf = w->arena + off;
		off += w->reqs[i].len;
	}
	for (size_t i = 0; i < w->njobs; i++) {
		struct job *j = &w->jobs[i];
		if (j->hit || j->chit)
			continue;
		if (j->req != SIZE_MAX) {
			j->raw = (uint8_t *)w->reqs[j->req].buf + j->req_off + TS_LMDB_PAGEHDR;
		} else {
			/* small value in a leaf page (or an unexpected address): copy it */
			memcpy(w->arena + off, j->map_val, j->raw_len);
			j->raw = w->arena + off;
			off += (j->raw_len + 63) & ~(size_t)63;
			atomic_fetch_add(&st->io_ctx->map_fallbacks, 1);
		}
	}
	w->batch = (ts__io_batch){.reqs = w->reqs, .n = w->nreqs};
	rc = ts__io_submit(st->io_ctx, &w->batch);
	w->submitted = 1;
	return rc;
}

/* Wait for the window's batch and check LMDB's overflow header in each run (invariant 2). */
static int window_complete(struct req *r, struct window *w)
{
	ts_store *st = r->st;
	int rc = window_leaves_wait(r, w); /* a fetch left unfinished (a failure): invariant 4 */

	if (rc || !w->submitted)
		return rc;
	rc = ts__io_wait(st->io_ctx, &w->batch);
	w->submitted = 0;
	if (rc)
		return rc;
	for (size_t i = 0; i < w->njobs; i++) {
		struct job *j = &w->jobs[i];
		ts__io_req *q;
		const uint8_t *h;

		if (j->hit || j->req == SIZE_MAX)
			continue;
		q = &w->reqs[j->req];
		if (q->res < 0)
			return ts__err_errno((int)-q->res,
					     "reading page %llu of tensor '%s' at offset %llu",
					     (unsigned long long)j->page, r->name,
					     (unsigned long long)(q->offset + j->req_off));
		h = (const uint8_t *)q->buf + j->req_off;
		if (q->res != (ssize_t)q->len ||
		    ts__lmdb_u64(h) != (q->offset + j->req_off) / TS_LMDB_PAGE ||
		    !(ts__lmdb_u16(h + TS_LMDB_PAGEHDR_FLAGS) & TS_LMDB_P_OVERFLOW) ||
		    (ts__lmdb_u16(h + TS_LMDB_PAGEHDR_FLAGS) &
		     (TS_LMDB_P_BRANCH | TS_LMDB_P_LEAF)) ||
		    ts__lmdb_u32(h + TS_LMDB_PAGEHDR_PAGES) != j->run_len / TS_LMDB_PAGE) {
			memcpy((uint8_t *)q->buf + j->req_off + TS_LMDB_PAGEHDR, j->map_val,
			       j->raw_len);
			atomic_fetch_add(&st->io_ctx->map_fallbacks, 1);
		}
	}
	return 0;
}

static int window_alloc(struct window *w)
{
	memset(w, 0, sizeof(*w));
	w->jobs = calloc(WINDOW_PAGES, sizeof(*w->jobs));
	w->chunks = calloc(WINDOW_PAGES + 1, sizeof(*w->chunks));
	w->reqs = calloc(WINDOW_PAGES, sizeof(*w->reqs)); /* at most one read per page */
	w->leaf_pg = calloc(WINDOW_PAGES, sizeof(*w->leaf_pg)); /* at most one leaf per page */
	w->lw = malloc(sizeof(*w->lw));
	return w->jobs && w->chunks && w->reqs && w->leaf_pg && w->lw ? 0 : TS_ENOMEM;
}

static void window_free(ts_store *st, struct window *w)
{
	if (w->jobs)
		window_release(st, w);
	free(w->jobs);
	free(w->chunks);
	free(w->reqs);
	free(w->leaf_pg);
	free(w->lw);
	buffer_give(w->arena, w->arena_cap);
	buffer_give(w->leaf_buf, w->leaf_cap);
}

/* -- the request loop ----------------------------------------------------------------------------- */

/*
 * The storage bytes page @p j is expected to take, for the window's budget: the tensor's average
 * page, kept between half its codec's bound and the bound. Pages of the fixed-size codecs are
 * their bound; lossless pages vary, about 2/3 of the bound on trained weights, and never less
 * than half of it (the sign+mantissa plane alone is half of a 16-bit element), so a window's runs
 * stay under 2 x WINDOW_BYTES whatever the record says.
 */
/* A tensor's average stored page (payload bytes), 0 if it has no pages. */
static uint64_t avg_page(const ts__tensor_rec *t)
{
	return t->page_count ? t->stored_bytes / t->page_count : 0;
}

static size_t page_estimate(const struct req *r, const struct job *j)
{
	size_t bound = ts_codec_encoded_size(&r->rec.codec, j->nr, j->nc);
	uint64_t avg = r->rec.page_count ? avg_page(&r->rec) : bound;

	if (avg > bound)
		avg = bound;
	if (avg < bound / 2)
		avg = bound / 2;
	return (size_t)avg + TS_IO_ALIGN;
}

/* Fill window @p w with the next pages starting at flat index *pos (tile row list x tile cols),
 * up to @p budget bytes of storage (at most WINDOW_BYTES). */
static void window_fill(struct req *r, struct window *w, uint64_t *pos, uint64_t total,
			size_t budget)
{
	size_t misses = 0, bytes = 0;
	uint64_t width = r->u1 - r->u0 + 1;

	w->njobs = 0;
	while (*pos < total && w->njobs < WINDOW_PAGES && bytes < budget) {
		struct job *j = &w->jobs[w->njobs++];

		memset(j, 0, sizeof(*j));
		j->idx = *pos;
		if (r->mode == MODE_PAGES)
			j->page = r->plist[*pos].page;
		else
			j->page = r->trows[*pos / width] * r->across + r->u0 + *pos % width;
		ts__geometry_page_rect(&r->rec, j->page, &j->r0, &j->nr, &j->c0, &j->nc);
		if (r->mode == MODE_SLICE) {
			ts__cache_key key = {r->rec.id, j->page, (uint32_t)r->dtype};
			j->seen = ts__cache_access(r->st->cache, r->rec.id, j->page);
			j->hit = ts__cache_lookup(r->st->cache, &key);
			if (!j->hit && ts__cache_keeps_compressed(r->st->cache)) {
				ts__cache_key ck = {r->rec.id, j->page, TS__CACHE_COMPRESSED};
				if ((j->chit = ts__cache_lookup(r->st->cache, &ck))) {
					j->raw = j->chit->data;
					j->raw_len = j->chit->bytes;
				}
			}
		}
		if (!j->hit && !j->chit) {
			misses++;
			bytes += page_estimate(r, j);
		}
		(*pos)++;
	}
	/* read-ahead (tiered residency): the next pages of a sequential walk, in the same batch
	 * as the request's last pages, while the batch has room */
	while (*pos >= total && r->ra_pos < r->ra_end && w->njobs < WINDOW_PAGES &&
	       misses < TS_IO_QD && bytes < budget) {
		uint64_t page = r->ra_pos++;
		ts__cache_key ck = {r->rec.id, page, TS__CACHE_COMPRESSED};
		ts__cache_key dk = {r->rec.id, page, (uint32_t)r->dtype};
		if (ts__cache_contains(r->st->cache, &ck) || ts__cache_contains(r->st->cache, &dk))
			continue;
		struct job *j = &w->jobs[w->njobs++];
		memset(j, 0, sizeof(*j));
		j->page = page;
		j->prefetch = 1;
		ts__geometry_page_rect(&r->rec, j->page, &j->r0, &j->nr, &j->c0, &j->nc);
		misses++;
		bytes += page_estimate(r, j);
	}
}

/*
 * The pipeline's state: a ring of DEPTH + 1 windows, the oldest first, each of them read or being
 * read (its transaction open), and where the filling of the next window stands.
 */
struct pipe {
	struct req **rs;
	size_t n;
	size_t ri;          /* the request being cut into windows */
	uint64_t pos;       /* its next page (flat index) */
	struct window win[DEPTH + 1];
	size_t head, count; /* the windows in the ring: win[(head + q) % (DEPTH + 1)], q < count */
	size_t budget;      /* the next window's storage bytes: doubling up to WINDOW_BYTES */
	int fail_rc;        /* the first failure by request order, 0 if none */
	size_t fail_ri;     /* its request */
	char fail_msg[512];
};

/* Note a failure of request @p ri if it is the first by request order; the thread's last error
 * is its message. */
static void pipe_fail(struct pipe *p, size_t ri, int rc)
{
	if (p->fail_rc && p->fail_ri <= ri)
		return;
	p->fail_rc = rc;
	p->fail_ri = ri;
	snprintf(p->fail_msg, sizeof(p->fail_msg), "%s", rc == TS__RETRY ? "" : ts_error_last());
}

static uint64_t req_pages(const struct req *r)
{
	return r->mode == MODE_PAGES ? r->nplist : r->ntrows * (r->u1 - r->u0 + 1);
}

/* The storage bytes the requests rs[0..n) are expected to read (the tensors' average pages). */
static uint64_t call_bytes(struct req **rs, size_t n)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += req_pages(rs[i]) * avg_page(&rs[i]->rec);
	return bytes;
}

/*
 * Cut windows and start their fetches (their leaves' reads sent out) until DEPTH are being read
 * or the requests are all cut; after a failure, nothing more. A window whose fetch failed still
 * joins the ring, to be waited for and its transaction ended there (invariant 4).
 */
static void pipe_top_up(struct pipe *p)
{
	while (!p->fail_rc && p->count < DEPTH && p->ri < p->n) {
		struct req *r = p->rs[p->ri];
		struct window *w = &p->win[(p->head + p->count) % (DEPTH + 1)];
		uint64_t total = req_pages(r);
		int any_miss = 0, rc = 0;

		if (p->pos >= total) { /* a request without pages */
			p->ri++;
			p->pos = 0;
			continue;
		}
		w->r = r;
		w->ri = p->ri;
		w->txn = NULL;
		w->fetching = 0;
		window_fill(r, w, &p->pos, total, p->budget);
		p->budget = p->budget < WINDOW_BYTES / 2 ? 2 * p->budget : WINDOW_BYTES;
		for (size_t q = 0; q < w->njobs; q++)
			any_miss |= !w->jobs[q].hit && !w->jobs[q].chit;
		if (any_miss) {
			/* holds map_lock shared until ts__txn_abort (invariant 3) */
			rc = ts__txn_begin_read(r->st, &w->txn);
			if (rc == 0)
				rc = window_fetch_start(r, w);
			w->fetching = rc == 0;
		}
		p->count++;
		if (rc)
			pipe_fail(p, p->ri, rc);
		if (p->pos >= total) {
			p->ri++;
			p->pos = 0;
		}
	}
}

/*
 * Finish the fetches that pipe_top_up started (their leaves have been read meanwhile): look the
 * pages up and send their reads out. Not for windows of the first failing request or later ones
 * (never decoded: their leaves are waited for by window_complete).
 */
static void pipe_send(struct pipe *p)
{
	for (size_t q = 0; q < p->count; q++) {
		struct window *w = &p->win[(p->head + q) % (DEPTH + 1)];
		int rc;

		if (!w->fetching || (p->fail_rc && w->ri >= p->fail_ri))
			continue;
		w->fetching = 0;
		rc = window_fetch_finish(w->r, w);
		if (rc)
			pipe_fail(p, w->ri, rc);
	}
}

/*
 * The pipeline over the requests rs[0..n): the pages of each request in windows, the windows of
 * all the requests in one sequence; while one window decodes on the pool, the reads of the next
 * DEPTH windows are in flight, across request boundaries too (the first pages of the next
 * tensor load while the last of this one decode). 0, the first error (by request), or TS__RETRY
 * with *@p at the index of the request whose tensor changed under it; every request before it
 * is then complete.
 */
static int run_windows_many(struct req **rs, size_t n, size_t *at)
{
	ts_store *st = rs[0]->st;
	struct pipe *p = calloc(1, sizeof(*p));
	int rc = 0, decode;

	if (!p)
		return ts__err(TS_ENOMEM, "reading '%s': out of memory", rs[0]->name);
	p->rs = rs;
	p->n = n;
	/* Nothing decodes until the first window is read: in a long pipeline (a load) the first
	 * windows are small (1/8, then 1/4, 1/2 of a window), so that the cores start after
	 * 0.5 MiB instead of 4 MiB; a request that fits in the first windows (a slice, a row
	 * gather) keeps its single batch. */
	p->budget = call_bytes(rs, n) > (DEPTH + 1) * (uint64_t)WINDOW_BYTES ? WINDOW_BYTES / 8
									 : WINDOW_BYTES;
	for (int k = 0; k <= DEPTH; k++)
		if (window_alloc(&p->win[k])) {
			rc = ts__err(TS_ENOMEM, "reading '%s': out of memory", rs[0]->name);
			goto out;
		}
	pipe_top_up(p);
	while (p->count) {
		struct window *w = &p->win[p->head];
		int rc2;

		pipe_send(p);
		rc2 = window_complete(w->r, w); /* invariant 4: always waited for */

		ts__txn_abort(st, w->txn);
		w->txn = NULL;
		p->head = (p->head + 1) % (DEPTH + 1);
		p->count--;
		if (rc2)
			pipe_fail(p, w->ri, rc2);
		/* A window of a request before the first failure is decoded: an earlier request is
		 * finished even when a later one fails or must start over. The workers start on it
		 * while this thread starts the next window's fetch (its leaves' reads), then joins
		 * them; the fetch is finished (its pages' reads sent out) at the next turn, so that
		 * this thread does not sit waiting for leaves while the window could decode. */
		decode = !p->fail_rc || w->ri < p->fail_ri;
		if (decode)
			window_consume_start(w);
		pipe_top_up(p);
		if (decode) {
			rc2 = window_consume_finish(w);
			if (rc2)
				pipe_fail(p, w->ri, rc2);
		} else {
			window_release(st, w);
		}
	}
	rc = p->fail_rc;
	if (rc == TS__RETRY)
		*at = p->fail_ri;
	else if (rc)
		rc = ts__err(rc, "%s", p->fail_msg);
out:
	for (int k = 0; k <= DEPTH; k++)
		window_free(st, &p->win[k]);
	free(p);
	return rc;
}

static int run_windows(struct req *r)
{
	size_t at;
	return run_windows_many(&r, 1, &at);
}

static int scratch_alloc(struct req *r)
{
	r->nscr = r->st->threads + 2;
	r->scr = calloc((size_t)r->nscr, sizeof(*r->scr));
	if (!r->scr)
		return ts__err(TS_ENOMEM, "reading '%s': out of memory", r->name);
	for (int i = 0; i < r->nscr; i++)
		atomic_flag_clear(&r->scr[i].busy);
	r->scr_owned = 1;
	return 0;
}

static void scratch_free(struct scratch *scr, int n)
{
	for (int i = 0; scr && i < n; i++)
		free(scr[i].buf);
	free(scr);
}

/* Scratch pages for decoding: the request's own, unless a ts_read_many() call shares its. */
static int req_setup_decode(struct req *r)
{
	int rc = r->scr ? 0 : scratch_alloc(r);
	r->scr_bytes = (size_t)(r->rec.tile_rows * r->rec.tile_cols) * r->esz;
	return rc;
}

static void req_free(struct req *r)
{
	if (r->scr_owned)
		scratch_free(r->scr, r->nscr);
	r->scr = NULL;
	free(r->runs);
	free(r->trows);
	pthread_mutex_destroy(&r->err_lock);
}

static int lookup(ts_store *st, const char *name, ts__tensor_rec *rec)
{
	MDB_txn *txn;
	int rc = ts__txn_begin_read(st, &txn);

	if (rc)
		return rc;
	rc = ts__tensor_lookup(st, txn, name, rec);
	ts__txn_abort(st, txn);
	return rc;
}

/* Start request @p r (cleared here; req_free() it whatever the result): tensor @p name looked up
 * in a short read transaction. */
static int req_begin(struct req *r, ts_store *st, const char *name, enum mode mode)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->err_lock, NULL);
	r->st = st;
	r->name = name;
	r->mode = mode;
	return lookup(st, name, &r->rec);
}

/* Set the request's output dtype, if the tensor can be read as @p dtype; else TS_EDTYPE. */
static int req_dtype(struct req *r, ts_dtype dtype)
{
	size_t esz = ts_dtype_size(dtype);

	if (!esz || !out_dtype_ok(&r->rec, dtype))
		return ts__err(TS_EDTYPE, "tensor '%s' (%s, codec %s) cannot be read as %s", r->name,
			       ts_dtype_name(r->rec.source_dtype),
			       ts_codec_name(r->rec.codec.codec), ts_dtype_name(dtype));
	r->dtype = dtype;
	r->esz = esz;
	return 0;
}

/* The end of a read whose tensor was replaced under it RETRIES times. */
static int kept_changing(const char *name)
{
	return ts__err(TS_EBUSY, "tensor '%s' kept changing during the read", name);
}

/* -- the public functions --------------------------------------------------------------------------- */

/*
 * Validate and plan a slice request into @p r (cleared here; req_free() it whatever the result):
 * the tensor looked up, the runs and tile rows planned, the residency policy told. A NULL
 * @p count asks for the whole tensor (@p ndim and @p start are then ignored). A request for no
 * elements is planned with no pages.
 */
static int slice_plan(struct req *r, ts_store *st, const char *name, int ndim,
		      const uint64_t *start, const uint64_t *count, ts_dtype dtype, void *dst,
		      size_t dst_size)
{
	uint64_t elems = 1, zeros[TS_MAX_DIMS] = {0};
	int rc = req_begin(r, st, name, MODE_SLICE);

	if (rc)
		return rc;
	if (!count) {
		ndim = r->rec.ndim;
		start = zeros;
		count = r->rec.shape;
	}
	if (ndim != r->rec.ndim)
		return ts__err(TS_ERANGE, "slice of tensor '%s' has %d dimensions, the tensor %d",
			       name, ndim, r->rec.ndim);
	if (ndim > 0 && (!start || !count))
		return ts__err(TS_EINVAL, "slice of tensor '%s': start and count are required",
			       name);
	for (int i = 0; i < ndim; i++) {
		if (start[i] > r->rec.shape[i] || count[i] > r->rec.shape[i] - start[i])
			return ts__err(TS_ERANGE,
				       "slice of tensor '%s': dimension %d start %llu count %llu "
				       "exceeds its size %llu",
				       name, i, (unsigned long long)start[i],
				       (unsigned long long)count[i],
				       (unsigned long long)r->rec.shape[i]);
		if (count[i] && elems > UINT64_MAX / count[i])
			return ts__err(TS_ERANGE, "slice of tensor '%s': element count overflows",
				       name);
		elems *= count[i];
	}
	rc = req_dtype(r, dtype);
	if (rc)
		return rc;
	if (elems > SIZE_MAX / r->esz || elems * r->esz > dst_size)
		return ts__err(TS_ESHORTBUF,
			       "slice of tensor '%s' needs %llu elements of %s, buffer holds %zu "
			       "bytes",
			       name, (unsigned long long)elems, ts_dtype_name(dtype), dst_size);
	if (elems == 0)
		return 0;
	if (!dst)
		return ts__err(TS_EINVAL, "slice of tensor '%s': no destination buffer", name);
	r->dst = dst;
	rc = plan_runs(r, start, count);
	if (rc == 0)
		rc = plan_tiles(r);
	if (rc == 0)
		tier_request(r);
	return rc;
}

static int read_slice_once(ts_store *st, const char *name, int ndim, const uint64_t *start,
			   const uint64_t *count, ts_dtype dtype, void *dst, size_t dst_size)
{
	struct req r;
	int rc = slice_plan(&r, st, name, ndim, start, count, dtype, dst, dst_size);

	if (rc == 0 && r.ntrows) {
		rc = req_setup_decode(&r);
		if (rc == 0)
			rc = run_windows(&r);
	}
	req_free(&r);
	return rc;
}

TS_API int ts_read_slice(ts_store *st, const char *name, int ndim, const uint64_t *start,
			 const uint64_t *count, ts_dtype dtype, void *dst, size_t dst_size)
{
	int rc;

	if (!st || !name)
		return ts__err(TS_EINVAL, "ts_read_slice: store and name are required");
	if (ndim < 0 || ndim > TS_MAX_DIMS)
		return ts__err(TS_ERANGE, "slice of tensor '%s': %d dimensions (at most %d)", name,
			       ndim, TS_MAX_DIMS);
	for (int i = 0; i < RETRIES; i++) {
		rc = read_slice_once(st, name, ndim, start, count, dtype, dst, dst_size);
		if (rc != TS__RETRY)
			return rc;
	}
	return kept_changing(name);
}

/* -- many requests in one pipeline; row gathers ------------------------------------------------ */

TS_API int ts_read_many(ts_store *st, const ts_read_request *reqs, size_t n)
{
	struct req *rs = NULL, **rp = NULL;
	struct scratch *scr = NULL;
	size_t from = 0, planned = 0;
	int rc = 0, tries = 0, nscr;

	if (!st || (n && !reqs))
		return ts__err(TS_EINVAL, "ts_read_many: store and requests are required");
	for (size_t i = 0; i < n; i++)
		if (!reqs[i].name)
			return ts__err(TS_EINVAL, "ts_read_many: request %zu has no tensor name", i);
	if (n == 0)
		return 0;
	rs = calloc(n, sizeof(*rs));
	rp = calloc(n, sizeof(*rp));
	nscr = st->threads + 2;
	scr = calloc((size_t)nscr, sizeof(*scr));
	if (!rs || !rp || !scr) {
		rc = ts__err(TS_ENOMEM, "ts_read_many: out of memory for %zu requests", n);
		goto out;
	}
	for (int i = 0; i < nscr; i++)
		atomic_flag_clear(&scr[i].busy);
	while (from < n) {
		size_t m = 0, at = 0, bad = n;
		int prc = 0;

		/* plan from @p from on; a request that cannot be planned ends the call after the
		 * ones before it have been read */
		for (size_t i = from; i < n; i++) {
			const ts_read_request *q = &reqs[i];
			if (i < planned)
				req_free(&rs[i]);
			prc = slice_plan(&rs[i], st, q->name, q->ndim, q->start, q->count, q->dtype,
					 q->dst, q->dst_size);
			planned = i + 1;
			if (prc == 0) {
				rs[i].scr = scr; /* shared scratch pages */
				rs[i].nscr = nscr;
				prc = req_setup_decode(&rs[i]);
			}
			if (prc) {
				bad = i;
				break;
			}
			if (rs[i].ntrows)
				rp[m++] = &rs[i];
		}
		rc = m ? run_windows_many(rp, m, &at) : 0;
		if (rc == TS__RETRY) {
			/* rp[at] changed under the read: everything before it is done */
			size_t idx = (size_t)(rp[at] - rs);
			if (idx != from)
				tries = 0;
			if (++tries >= RETRIES) {
				rc = kept_changing(reqs[idx].name);
				goto out;
			}
			from = idx;
			continue;
		}
		if (rc == 0 && bad < n) {
			/* the message of the planning error was overwritten by the reads: redo it */
			struct req t;
			const ts_read_request *q = &reqs[bad];
			rc = slice_plan(&t, st, q->name, q->ndim, q->start, q->count, q->dtype, q->dst,
					q->dst_size);
			req_free(&t);
			if (rc == 0)
				rc = prc;
		}
		break;
	}
out:
	for (size_t i = 0; rs && i < planned; i++)
		req_free(&rs[i]);
	scratch_free(scr, scr ? st->threads + 2 : 0);
	free(rs);
	free(rp);
	return rc;
}

struct gather {
	uint64_t src, dst;
};

static int gather_cmp(const void *a, const void *b)
{
	const struct gather *x = a, *y = b;
	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	return x->dst < y->dst ? -1 : x->dst > y->dst;
}

static int read_rows_once(ts_store *st, const char *name, size_t n, const uint64_t *rows,
			  ts_dtype dtype, void *dst, size_t dst_size)
{
	struct req r;
	struct gather *g = NULL;
	size_t cap = 0;
	int rc = req_begin(&r, st, name, MODE_SLICE);

	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (rows[i] >= r.rec.rows) {
			rc = ts__err(TS_ERANGE, "row gather of tensor '%s': row %llu (index %zu) is "
				     "outside its %llu rows", name, (unsigned long long)rows[i], i,
				     (unsigned long long)r.rec.rows);
			goto out;
		}
	rc = req_dtype(&r, dtype);
	if (rc)
		goto out;
	if (r.rec.cols &&
	    (n > SIZE_MAX / r.esz / r.rec.cols || n * r.rec.cols * r.esz > dst_size)) {
		rc = ts__err(TS_ESHORTBUF, "row gather of tensor '%s': %zu rows of %llu elements "
			     "of %s, buffer holds %zu bytes", name, n,
			     (unsigned long long)r.rec.cols, ts_dtype_name(dtype), dst_size);
		goto out;
	}
	if (n == 0 || r.rec.cols == 0)
		goto out;
	if (!dst) {
		rc = ts__err(TS_EINVAL, "row gather of tensor '%s': no destination buffer", name);
		goto out;
	}
	/* sorted by source row: runs ascending (duplicates next to each other), so that every
	 * page is planned, read and decoded once */
	g = malloc(n * sizeof(*g));
	if (!g) {
		rc = ts__err(TS_ENOMEM, "row gather of tensor '%s': out of memory", name);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		g[i] = (struct gather){rows[i], i};
	qsort(g, n, sizeof(*g), gather_cmp);
	r.dst = dst;
	r.cs = 0;
	r.cc = r.rec.cols;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = add_run(&r, &cap, g[i].src, g[i].dst, 1);
	if (rc == 0)
		rc = plan_tiles(&r);
	if (rc == 0)
		rc = req_setup_decode(&r);
	if (rc == 0) {
		tier_request(&r);
		rc = run_windows(&r);
	}
out:
	free(g);
	req_free(&r);
	return rc;
}

TS_API int ts_read_rows(ts_store *st, const char *name, size_t n, const uint64_t *rows,
			ts_dtype dtype, void *dst, size_t dst_size)
{
	int rc;

	if (!st || !name || (n && !rows))
		return ts__err(TS_EINVAL, "ts_read_rows: store, name and rows are required");
	for (int i = 0; i < RETRIES; i++) {
		rc = read_rows_once(st, name, n, rows, dtype, dst, dst_size);
		if (rc != TS__RETRY)
			return rc;
	}
	return kept_changing(name);
}

/* The bytes of one row of the encoded planes of a tensor coded with @p cfg whose rows hold @p cols
 * elements: each row is padded to whole blocks; nvfp4 packs two codes a byte, mxfp4 blocks are
 * 32 codes in 16 bytes, fp8 has one code byte per element and no scale plane. */
static int encoded_row_bytes(const ts_codec_config *cfg, uint64_t cols, size_t *block_bytes,
			     size_t *code_row, size_t *scale_row)
{
	uint64_t nb, cb;

	switch (cfg->codec) {
	case TS_CODEC_NVFP4:
		cb = 8;
		break;
	case TS_CODEC_MXFP4:
		cb = 16;
		break;
	case TS_CODEC_FP8:
		cb = 1;
		break;
	default:
		return TS_ENOTSUP;
	}
	nb = (cols + (uint64_t)cfg->block_size - 1) / (uint64_t)cfg->block_size;
	*block_bytes = (size_t)cb;
	*code_row = (size_t)(nb * cb);
	*scale_row = cfg->codec == TS_CODEC_FP8 ? 0 : (size_t)nb;
	return 0;
}

static int read_encoded_once(ts_store *st, const char *name, uint64_t row_start,
			     uint64_t row_count, void *codes, size_t codes_size, void *scales,
			     size_t scales_size)
{
	struct req r;
	size_t cap = 0;
	int rc = req_begin(&r, st, name, MODE_ENCODED);

	if (rc)
		goto out;
	if (encoded_row_bytes(&r.rec.codec, r.rec.cols, &r.cb, &r.code_row, &r.scale_row)) {
		rc = ts__err(TS_ENOTSUP, "tensor '%s' is %s-coded: no encoded form to read", name,
			     ts_codec_name(r.rec.codec.codec));
		goto out;
	}
	if (row_start > r.rec.rows || row_count > r.rec.rows - row_start) {
		rc = ts__err(TS_ERANGE, "tensor '%s': rows %llu..%llu exceed its %llu rows", name,
			     (unsigned long long)row_start,
			     (unsigned long long)(row_start + row_count),
			     (unsigned long long)r.rec.rows);
		goto out;
	}
	if (row_count * r.code_row > codes_size || row_count * r.scale_row > scales_size) {
		rc = ts__err(TS_ESHORTBUF,
			     "tensor '%s': %llu encoded rows need %zu code and %zu scale bytes", name,
			     (unsigned long long)row_count, (size_t)row_count * r.code_row,
			     (size_t)row_count * r.scale_row);
		goto out;
	}
	if (row_count == 0)
		goto out;
	if (!codes || (r.scale_row && !scales)) {
		rc = ts__err(TS_EINVAL, "tensor '%s': no buffer for the encoded rows", name);
		goto out;
	}
	r.codes = codes;
	r.scales = scales;
	r.row_start = row_start;
	r.cs = 0;
	r.cc = r.rec.cols;
	rc = add_run(&r, &cap, row_start, 0, row_count);
	if (rc == 0)
		rc = plan_tiles(&r);
	if (rc == 0)
		rc = run_windows(&r);
out:
	req_free(&r);
	return rc;
}

TS_API int ts_read_encoded(ts_store *st, const char *name, uint64_t row_start, uint64_t row_count,
			   void *codes, size_t codes_size, void *scales, size_t scales_size)
{
	int rc;

	if (!st || !name)
		return ts__err(TS_EINVAL, "ts_read_encoded: store and name are required");
	for (int i = 0; i < RETRIES; i++) {
		rc = read_encoded_once(st, name, row_start, row_count, codes, codes_size, scales,
				       scales_size);
		if (rc != TS__RETRY)
			return rc;
	}
	return kept_changing(name);
}

TS_API int ts_read_encoded_size(size_t *codes_size, size_t *scales_size,
				const ts_tensor_info *info, uint64_t row_count)
{
	size_t block_bytes, code_row, scale_row;
	uint64_t cols;

	if (!codes_size || !scales_size || !info)
		return ts__err(TS_EINVAL, "ts_read_encoded_size: NULL argument");
	if (info->ndim < 0 || info->ndim > TS_MAX_DIMS)
		return ts__err(TS_EINVAL, "ts_read_encoded_size: ndim %d out of 0..%d", info->ndim,
			       TS_MAX_DIMS);
	if (info->codec.block_size < 1)
		return ts__err(TS_EINVAL, "ts_read_encoded_size: block size %d",
			       info->codec.block_size);
	cols = info->ndim ? info->shape[info->ndim - 1] : 1;
	if (encoded_row_bytes(&info->codec, cols, &block_bytes, &code_row, &scale_row))
		return ts__err(TS_ENOTSUP, "%s-coded tensors have no encoded form to read",
			       ts_codec_name(info->codec.codec));
	if ((code_row && row_count > SIZE_MAX / code_row) ||
	    (scale_row && row_count > SIZE_MAX / scale_row))
		return ts__err(TS_ERANGE, "ts_read_encoded_size: %llu rows overflow size_t",
			       (unsigned long long)row_count);
	*codes_size = (size_t)row_count * code_row;
	*scales_size = (size_t)row_count * scale_row;
	return 0;
}

/* -- pages as stored (the GPU path) ------------------------------------------------------------- */

/* The most ts_read_pages() writes for an nr x nc page: the codec's payload; lossless unpacked,
 * 5 + n * size (docs/GPU.md). */
static size_t page_max_bytes(const ts_codec_config *cfg, uint64_t nr, uint64_t nc)
{
	if (cfg->codec == TS_CODEC_LOSSLESS)
		return 5 + (size_t)(nr * nc) * ts_dtype_size(cfg->raw_dtype);
	return ts_codec_encoded_size(cfg, nr, nc);
}

TS_API int ts_page_plan(ts_page_ref *out, size_t cap, size_t *count, const ts_tensor_info *info,
			uint64_t row_start, uint64_t row_count, uint64_t col_start,
			uint64_t col_count)
{
	uint64_t rows = 1, cols, across, t0, t1, u0, u1;
	ts__tensor_rec g; /* the page geometry of the tensor @p info describes */
	size_t n = 0;

	if (!count || !info || (cap && !out))
		return ts__err(TS_EINVAL, "ts_page_plan: NULL argument");
	*count = 0;
	if (info->ndim < 0 || info->ndim > TS_MAX_DIMS)
		return ts__err(TS_EINVAL, "ts_page_plan: ndim %d out of 0..%d", info->ndim,
			       TS_MAX_DIMS);
	for (int i = 0; i + 1 < info->ndim; i++)
		rows *= info->shape[i];
	cols = info->ndim ? info->shape[info->ndim - 1] : 1;
	if (row_start > rows || row_count > rows - row_start || col_start > cols ||
	    col_count > cols - col_start)
		return ts__err(TS_ERANGE, "page plan: rows %llu+%llu, columns %llu+%llu leave the "
			       "%llu x %llu view", (unsigned long long)row_start,
			       (unsigned long long)row_count, (unsigned long long)col_start,
			       (unsigned long long)col_count, (unsigned long long)rows,
			       (unsigned long long)cols);
	if (row_count == 0 || col_count == 0)
		return 0;
	if (info->tile_rows == 0 || info->tile_cols == 0)
		return ts__err(TS_EINVAL, "page plan: the tensor has an empty page geometry");
	memset(&g, 0, sizeof g);
	g.rows = rows;
	g.cols = cols;
	g.tile_rows = info->tile_rows;
	g.tile_cols = info->tile_cols;
	across = ts__geometry_tiles_across(&g);
	g.page_count = (rows + g.tile_rows - 1) / g.tile_rows * across;
	t0 = row_start / g.tile_rows, t1 = (row_start + row_count - 1) / g.tile_rows;
	u0 = col_start / g.tile_cols, u1 = (col_start + col_count - 1) / g.tile_cols;
	for (uint64_t t = t0; t <= t1; t++)
		for (uint64_t u = u0; u <= u1; u++, n++) {
			ts_page_ref *p;
			if (n >= cap)
				continue;
			p = &out[n];
			p->page = t * across + u;
			ts__geometry_page_rect(&g, p->page, &p->r0, &p->nr, &p->c0, &p->nc);
			p->max_bytes = page_max_bytes(&info->codec, p->nr, p->nc);
		}
	*count = n;
	return n > cap ? ts__err(TS_ESHORTBUF, "page plan: %zu pages, room for %zu", n, cap) : 0;
}

static int read_pages_once(ts_store *st, const char *name, const ts_tensor_info *info,
			   const ts_page_ref *pages, size_t n, void *buf, size_t buf_size,
			   size_t *offsets, size_t *lengths)
{
	struct req r;
	size_t off = 0;
	int rc = req_begin(&r, st, name, MODE_PAGES);

	if (rc)
		goto out;
	if (r.rec.id != info->id) {
		rc = ts__err(TS_EBUSY, "tensor '%s' was replaced since it was planned", name);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t r0, nr, c0, nc;
		if (pages[i].page >= r.rec.page_count) {
			rc = ts__err(TS_EINVAL, "tensor '%s' has %llu pages, not page %llu", name,
				     (unsigned long long)r.rec.page_count,
				     (unsigned long long)pages[i].page);
			goto out;
		}
		ts__geometry_page_rect(&r.rec, pages[i].page, &r0, &nr, &c0, &nc);
		if (r0 != pages[i].r0 || nr != pages[i].nr || c0 != pages[i].c0 ||
		    nc != pages[i].nc || pages[i].max_bytes < page_max_bytes(&r.rec.codec, nr, nc)) {
			rc = ts__err(TS_EINVAL, "page %llu of tensor '%s': the reference does not "
				     "match the tensor's geometry", (unsigned long long)pages[i].page,
				     name);
			goto out;
		}
		offsets[i] = off;
		if (pages[i].max_bytes > buf_size || off > buf_size - pages[i].max_bytes) {
			rc = ts__err(TS_ESHORTBUF, "tensor '%s': %zu pages need more than the %zu "
				     "bytes of the buffer", name, n, buf_size);
			goto out;
		}
		off = (off + pages[i].max_bytes + 15) & ~(size_t)15;
	}
	if (n == 0)
		goto out;
	if (!buf) {
		rc = ts__err(TS_EINVAL, "ts_read_pages: no buffer");
		goto out;
	}
	r.plist = pages;
	r.nplist = n;
	r.pbuf = buf;
	r.poff = offsets;
	r.plen = lengths;
	rc = run_windows(&r);
out:
	req_free(&r);
	return rc;
}

TS_API int ts_read_pages(ts_store *st, const char *name, const ts_tensor_info *info,
			 const ts_page_ref *pages, size_t n, void *buf, size_t buf_size,
			 size_t *offsets, size_t *lengths)
{
	size_t *off = offsets, *len = lengths;
	int rc;

	if (!st || !name || !info || (n && !pages))
		return ts__err(TS_EINVAL, "ts_read_pages: store, name, info and pages are required");
	if (n && (!off || !len)) {
		size_t *tmp = malloc(2 * n * sizeof(size_t));
		if (!tmp)
			return ts__err(TS_ENOMEM, "reading '%s': out of memory", name);
		off = off ? off : tmp;
		len = len ? len : tmp + n;
		rc = read_pages_once(st, name, info, pages, n, buf, buf_size, off, len);
		free(tmp);
	} else {
		rc = read_pages_once(st, name, info, pages, n, buf, buf_size, off, len);
	}
	return rc == TS__RETRY ? ts__err(TS_EBUSY, "tensor '%s' was replaced during the read", name)
			       : rc;
}
