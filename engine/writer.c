/*
 * The streaming writer and tensor deletion (interrupted writes are removed by engine/recovery.c).
 *
 * A tensor arrives in row-major order in chunks of any size. The writer cuts the stream into
 * units: a tile-row band (tile_rows whole rows, all its pages), or, when a single row is wider
 * than the band limit (tile_rows is then 1), a segment of a row holding a few whole tiles. A
 * unit is buffered (or used in place when the caller hands over a whole unit at once), its
 * pages are encoded, sealed, decoded again (not those that reproduce the source bit for bit: raw
 * of the source's dtype, lossless) and measured on the store's pool (all cores), the
 * pages' statistics are merged in page order, and the pages join a batch that is committed in
 * one write transaction once it holds BATCH_BYTES, by a committer thread while the next batch
 * is encoded.
 *
 * Invariants
 *   1. Units, pages and the order in which statistics are accumulated and merged depend only on
 *      the tensor's shape and geometry, never on how the caller chunks its data: the same tensor
 *      written in chunks of any sizes gives a byte-identical store.
 *   2. Memory is bounded by one unit (TS_GEOMETRY_BAND_BYTES of source), one job's decoded F32
 *      scratch (JOB_BYTES of source elements, or one unit where that is larger) and two
 *      batches (BATCH_BYTES plus one job's pages each), whatever the tensor's size.
 *   3. The first transaction that commits pages of tensor id X also records X in the pending
 *      database and advances the meta next_id past X; the tensor record appears, and the
 *      pending entry disappears, in one final transaction. Readers therefore see all of a
 *      tensor or nothing, and the pages of an interrupted write are always findable.
 *   4. One writer per store handle at a time (writer_active under writer_lock), one writer
 *      process per store (the flock taken at open): pending entries found by
 *      ts__recovery_run() belong to no live write, except the tensors staged in the
 *      handle's open write group, which it skips (engine/group.c).
 *   5. A writer of a write group ends, at commit, in a stage instead of the final transaction:
 *      its last pages, its pending entry (invariant 3) and the removal of an earlier version of
 *      the name staged in the group (its pages and pending entry) are carried by the group
 *      (invariant 9) and committed together, as one staging transaction would; the record goes
 *      to the group once they are.
 *   6. At most one batch is being committed at a time, by the committer thread, into its own
 *      transaction, while the caller's thread encodes into the other batch; the transactions
 *      are the same, in the same order, as if each batch were committed where it filled. Its
 *      result is collected (joined) before the next hand-over and before an append returns,
 *      so that pending_written is read and written by one thread at a time, a failed batch
 *      fails the writer, and every batch filled by an append is committed when it returns,
 *      as without the committer: encoding overlaps commits within one append, so callers
 *      append large pieces (the tstore command: a whole tensor, up to half its read buffer).
 *   7. Whole bands that an append hands over in place go to the pool as one job, up to
 *      JOB_BYTES of source (w->bands): a narrow tensor's band is one or two pages, which the
 *      calling thread would encode alone before a woken worker claimed one.
 *      Pages, their order and their statistics' merge order are those of band-by-band jobs.
 *   8. A writer's two batch buffers outlive it: writer_free() leaves them, emptied, to the
 *      store handle (st->writer_spare) and the next writer of the handle starts with them, so
 *      that a store written tensor by tensor does not touch fresh memory (a page fault each
 *      4 KiB) for every tensor's batches. Only the thread holding the writer slot (invariant
 *      4) moves them; they are what one writer may hold (invariant 2), freed at close.
 *   9. Staged tensors share transactions (engine/carry.c): a group writer's last pages (less
 *      than a batch) wait in the group's carry; a writer's batch handed to the committer takes
 *      the carry along, applied first in the same transaction (lower ids: page keys rise); a
 *      carry of a batch or more is committed on a thread of its own (ts__carry_commit_async),
 *      joined before the next batch is handed over or the carry changes. Without it every
 *      tensor cost a staging transaction with its flush on the caller's thread (84 of an
 *      import's 142 flushes, 16 MiB batches no remedy: tensors smaller than a batch never
 *      overlapped their commit with encoding).
 */
#include "config.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/stats.h"
#include "common/byteorder.h"
#include "common/error.h"
#include "engine/carry.h"
#include "engine/format.h"
#include "engine/geometry.h"
#include "engine/group.h"
#include "engine/meta.h"
#include "engine/handle.h"
#include "engine/page.h"
#include "engine/pool.h"
#include "engine/publish.h"
#include "engine/record.h"
#include "engine/recovery.h"
#include "engine/txn.h"
#include "engine/writer.h"

#define BATCH_BYTES (4u * 1024 * 1024)
/* Source bytes of whole bands encoded as one pool job (invariant 7): enough pages to keep
 * every core busy between two waits for the pool (at 512 KiB the calling thread waited
 * 0.024-0.041 s of a 0.36 s nvfp4 import for a job's last page, at 2 MiB 0.006-0.016 s),
 * little enough to keep the F32 scratch small (4 MiB). */
#define JOB_BYTES (2048u * 1024)

typedef struct wpage {
	uint64_t index, r0, nr, c0, nc;
	size_t off;       /* in the batch buffer: header + payload */
	size_t len;
	uint64_t dec_off; /* elements, in the decoded scratch */
	ts_stats_acc acc; /* this page's statistics, merged in page order */
} wpage;


/* Sealed pages waiting for their transaction: header + payload of each, back to back. */
typedef struct wbatch {
	uint8_t *buf;
	size_t len, cap;
	ts__carry_page *bp;
	size_t n, bp_cap;
} wbatch;

/* Invariant 8. */
struct ts__writer_spare {
	wbatch batch[2];
};

struct ts_writer {
	ts_store *st;
	char *name;
	unsigned flags;
	ts__tensor_rec rec;
	float amax_given; /* NaN if not given */
	float enc_amax;   /* what ts_codec_encode receives */
	int failed;       /* sticky negative code after a failed append */
	int encoded;      /* TS_WRITE_ENCODED */
	size_t esz;       /* source element size */
	int stats_ok;     /* the source dtype is F32, BF16 or F16 */
	int exact;        /* pages decode to the source bit for bit (raw of its dtype, lossless):
			     no decode is needed to know their error is 0 */
	int copy;         /* a stored tensor copied page by page (ts__writer_begin_copy): the
			     record, statistics included, is the source's */
	uint64_t copied;  /* copy: pages put so far (they come in index order) */
	uint64_t bs;      /* elements per block along a row */
	uint64_t total;   /* elements */
	uint64_t fed;     /* elements appended (rows * cols in encoded mode) */
	uint64_t across;  /* pages per tile row */
	int segmented;    /* tile_rows is 1 and a row is wider than the band limit */
	uint64_t group;   /* pages per unit (a band's, or a segment's) */
	uint64_t bands;   /* most whole bands encoded in place as one job (not segmented) */

	/* the unit being filled (source elements) */
	uint8_t *buf;
	size_t buf_cap;
	uint64_t unit_fill;

	/* encoded mode: code and scale bytes per block, a band of encoded rows */
	size_t cb, sb;
	uint8_t *ecodes, *escales;
	uint64_t erows; /* rows in the band buffers */

	float *dec;
	size_t dec_cap; /* elements */
	wpage *pages;
	size_t pages_cap;

	wbatch batch[2]; /* batch[cur] fills while the other one may be committing */
	int cur;
	pthread_t committer; /* commits batch[!cur] (invariant 6) */
	int committing;      /* a batch was handed over and its result not yet collected */
	int threaded;        /* ... to the committer thread (else it was committed in place) */
	int commit_rc;       /* its result, and its last-error message */
	char commit_msg[512];
	int pending_written;
	ts_group *wgroup;  /* NULL, or the write group this writer stages into */
	int carry_taken;   /* the batch being committed carries the group's carry (invariant 9) */

	ts_stats_acc acc;
	uint64_t blocks;
	uint64_t stored;
};

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

TS_API void ts_write_opts_init(ts_write_opts *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->flags = 0;
	opts->amax = NAN;
	opts->page_bytes = 0;
	opts->tensor_scale = NAN;
	opts->group = NULL;
}

/* -- transactions ------------------------------------------------------------------------- */

static int put_pages(ts_writer *w, const wbatch *b, MDB_txn *txn)
{
	return ts__carry_put_pages(w->st, txn, b->buf, b->bp, b->n, w->name);
}

static int flush_txn(void *ud, MDB_txn *txn)
{
	ts_writer *w = ud;
	/* invariant 9: the group's carried stages first */
	int rc = w->carry_taken ? ts__carry_apply(w->st, &w->wgroup->carry, txn) : 0;

	if (rc == 0 && !w->pending_written)
		rc = ts__carry_pending_start(w->st, txn, w->rec.id, w->name);
	if (rc == 0)
		rc = put_pages(w, &w->batch[!w->cur], txn);
	return rc;
}

/* The committer thread: one transaction for the batch that is not filling. */
static void *committer_main(void *arg)
{
	ts_writer *w = arg;
	int rc = ts__txn_write_interim(w->st, flush_txn, w, w->name);

	if (rc < 0) {
		rc = ts__err_wrap(rc, "writing pages of tensor '%s'", w->name);
		snprintf(w->commit_msg, sizeof(w->commit_msg), "%s", ts_error_last());
	}
	w->commit_rc = rc;
	return NULL;
}

/* Wait for the committer, if one runs; its result (the message set on this thread). */
static int join_committer(ts_writer *w)
{
	wbatch *b = &w->batch[!w->cur];

	if (!w->committing)
		return 0;
	if (w->threaded)
		pthread_join(w->committer, NULL);
	w->committing = 0;
	if (w->carry_taken && w->commit_rc == 0)
		ts__group_carry_done(w->wgroup);
	w->carry_taken = 0;
	if (w->commit_rc < 0)
		return ts__err(w->commit_rc, "%s", w->commit_msg);
	w->pending_written = 1;
	b->n = 0;
	b->len = 0;
	return 0;
}

/* Hand the filled batch to the committer and go on filling the other one (invariant 6); its
 * result comes with the next join. Without a thread to be had, the batch is committed here. */
static int flush(ts_writer *w)
{
	int rc = join_committer(w);

	if (rc == 0 && w->wgroup)
		rc = ts__group_carry_join(w->wgroup); /* invariant 9: a carry committing on its own */
	if (rc < 0 || w->batch[w->cur].n == 0)
		return rc;
	w->cur = !w->cur;
	w->commit_rc = 0;
	w->committing = 1;
	w->carry_taken = w->wgroup && w->wgroup->carry.ns > 0;
	w->threaded = pthread_create(&w->committer, NULL, committer_main, w) == 0;
	if (!w->threaded)
		committer_main(w);
	return 0;
}

static int final_txn(void *ud, MDB_txn *txn)
{
	ts_writer *w = ud;
	ts_store *st = w->st;
	uint8_t kb[8];
	int rc;

	rc = put_pages(w, &w->batch[w->cur], txn);
	if (rc == 0)
		rc = ts__publish_record(st, txn, w->name, &w->rec,
					(w->flags & TS_WRITE_REPLACE) != 0);
	if (rc)
		return rc;
	if (w->pending_written) {
		MDB_val pk = {8, kb};
		ts__put_be64(kb, w->rec.id);
		rc = mdb_del(txn, st->dbi_pending, &pk, NULL);
		if (rc == MDB_NOTFOUND)
			return ts__err(TS_ECORRUPT, "tensor '%s': its pending entry vanished", w->name);
		return rc;
	}
	return ts__meta_next_id_put(st, txn, w->rec.id + 1);
}

/* -- begin -------------------------------------------------------------------------------- */

/* The id of a new writer of @p st in group @p g (may be NULL): the meta next_id, above every id
 * carried in the group (engine/carry.c invariant 3). */
static int read_next_id(ts_store *st, ts_group *g, uint64_t *out)
{
	MDB_txn *txn;
	int rc = ts__txn_begin_read(st, &txn);

	if (rc < 0)
		return rc;
	rc = ts__meta_next_id_get(out, st, txn);
	ts__txn_abort(st, txn);
	if (rc && rc != TS_ECORRUPT)
		return ts__err_from_mdb(rc, "reading the next tensor id");
	if (rc || *out == 0 || *out == UINT64_MAX)
		return ts__err(TS_ECORRUPT, "store '%s': the next tensor id record is malformed",
			       st->path);
	if (*out < ts__group_next_id(g))
		*out = ts__group_next_id(g);
	return 0;
}

static int name_exists(ts_store *st, const char *name, int *exists)
{
	MDB_txn *txn;
	MDB_val key = {strlen(name), (void *)name}, val;
	int rc = ts__txn_begin_read(st, &txn);

	if (rc < 0)
		return rc;
	rc = mdb_get(txn, st->dbi_tensors, &key, &val);
	ts__txn_abort(st, txn);
	if (rc && rc != MDB_NOTFOUND)
		return ts__err_from_mdb(rc, name);
	*exists = rc == 0;
	return 0;
}

static int is_float_src(ts_dtype d)
{
	return d == TS_F32 || d == TS_BF16 || d == TS_F16;
}

static int check_args(ts_store *st, const char *name, ts_dtype src_dtype, int ndim,
		      const uint64_t *shape, const ts_codec_config *cfg, const ts_write_opts *o)
{
	size_t n;

	if (!st || !name || !cfg || (ndim > 0 && !shape))
		return ts__err(TS_EINVAL, "ts_writer_begin: %s is NULL",
			       !st ? "store" : !name ? "name" : !cfg ? "codec configuration" : "shape");
	if (!(st->flags & TS_OPEN_WRITE))
		return ts__err(TS_EREADONLY, "store '%s' is opened read-only", st->path);
	n = strlen(name);
	if (n == 0 || n > TS_MAX_NAME)
		return ts__err(TS_EINVAL, "tensor name of %zu bytes (1..%d allowed)", n, TS_MAX_NAME);
	if (ndim < 0 || ndim > TS_MAX_DIMS)
		return ts__err(TS_EINVAL, "tensor '%s': %d dimensions (0..%d allowed)", name, ndim,
			       TS_MAX_DIMS);
	if (ts__shape_elements(ndim, shape) == UINT64_MAX)
		return ts__err(TS_EINVAL, "tensor '%s': shape has more than 2^56 elements", name);
	if ((unsigned)src_dtype >= TS_DTYPE_COUNT)
		return ts__err(TS_EDTYPE, "tensor '%s': unknown source dtype %d", name,
			       (int)src_dtype);
	if (o->group && o->group->st != st)
		return ts__err(TS_EINVAL, "tensor '%s': the write group belongs to another store",
			       name);
	if (o->flags & ~(TS_WRITE_REPLACE | TS_WRITE_ENCODED | TS_WRITE_ROWS))
		return ts__err(TS_EINVAL, "tensor '%s': unknown write flags %#x", name, o->flags);
	if (ts_codec_config_check(cfg) < 0)
		return ts__err_wrap(TS_EINVAL, "tensor '%s'", name);
	if (o->flags & TS_WRITE_ENCODED) {
		if (cfg->codec != TS_CODEC_NVFP4 && cfg->codec != TS_CODEC_MXFP4 &&
		    cfg->codec != TS_CODEC_FP8)
			return ts__err(TS_ENOTSUP, "tensor '%s': pre-encoded data only for nvfp4, "
				       "mxfp4 and fp8, not %s", name, ts_codec_name(cfg->codec));
		if (cfg->codec != TS_CODEC_MXFP4 && isnan(o->amax) && isnan(o->tensor_scale))
			return ts__err(TS_EINVAL, "tensor '%s': %s data needs amax or tensor_scale",
				       name, ts_codec_name(cfg->codec));
		if (!isnan(o->tensor_scale) && !(isfinite(o->tensor_scale) && o->tensor_scale >= 0))
			return ts__err(TS_EINVAL, "tensor '%s': tensor_scale %g is not finite and "
				       ">= 0", name, (double)o->tensor_scale);
	} else if (cfg->codec == TS_CODEC_RAW || cfg->codec == TS_CODEC_LOSSLESS) {
		if (src_dtype != cfg->raw_dtype)
			return ts__err(TS_EDTYPE, "tensor '%s': %s codec stores %s, the source is %s",
				       name, ts_codec_name(cfg->codec), ts_dtype_name(cfg->raw_dtype),
				       ts_dtype_name(src_dtype));
	} else if (!is_float_src(src_dtype)) {
		return ts__err(TS_EDTYPE, "tensor '%s': %s cannot encode %s (F32, BF16, F16 only)",
			       name, ts_codec_name(cfg->codec), ts_dtype_name(src_dtype));
	} else if ((cfg->codec == TS_CODEC_NVFP4 || cfg->codec == TS_CODEC_FP8) &&
		   isnan(o->amax)) {
		return ts__err(TS_EINVAL, "tensor '%s': %s needs the tensor's amax (opts->amax is "
			       "NaN)", name, ts_codec_name(cfg->codec));
	}
	if (!isnan(o->amax) && !(isfinite(o->amax) && o->amax >= 0))
		return ts__err(TS_EINVAL, "tensor '%s': amax %g is not finite and >= 0", name,
			       (double)o->amax);
	return 0;
}

/* Invariant 8: the writer's batch buffers to the handle (the slot is still held), the ones
 * kept there before freed. */
static void spare_keep(ts_writer *w)
{
	struct ts__writer_spare *sp = w->st->writer_spare;

	if (!sp) {
		sp = calloc(1, sizeof(*sp));
		if (!sp)
			return; /* writer_free() frees the buffers */
		w->st->writer_spare = sp;
	}
	for (int i = 0; i < 2; i++) {
		wbatch t = sp->batch[i];
		sp->batch[i] = w->batch[i];
		sp->batch[i].len = sp->batch[i].n = 0;
		w->batch[i] = t;
	}
}

/* Invariant 8: start with the buffers the last writer left (the slot is held). */
static void spare_take(ts_writer *w)
{
	struct ts__writer_spare *sp = w->st->writer_spare;

	if (!sp)
		return;
	for (int i = 0; i < 2; i++) {
		w->batch[i] = sp->batch[i];
		memset(&sp->batch[i], 0, sizeof(sp->batch[i]));
	}
}

void ts__writer_spare_free(ts_store *st)
{
	struct ts__writer_spare *sp = st->writer_spare;

	if (!sp)
		return;
	for (int i = 0; i < 2; i++) {
		free(sp->batch[i].buf);
		free(sp->batch[i].bp);
	}
	free(sp);
	st->writer_spare = NULL;
}

static void writer_free(ts_writer *w)
{
	if (!w)
		return;
	assert(!w->committing);
	if (w->st) {
		spare_keep(w);
		ts__writer_slot_give(w->st, w->wgroup);
	}
	free(w->name);
	free(w->buf);
	free(w->ecodes);
	free(w->escales);
	free(w->dec);
	free(w->pages);
	for (int i = 0; i < 2; i++) {
		free(w->batch[i].buf);
		free(w->batch[i].bp);
	}
	free(w);
}

/* Sizes of the unit buffers, from the geometry. */
static int plan_buffers(ts_writer *w)
{
	ts__tensor_rec *r = &w->rec;
	uint64_t unit_elems;

	if (r->page_count == 0)
		return 0;
	w->across = ts__geometry_tiles_across(r);
	w->segmented = r->tile_rows == 1 && r->cols * w->esz > TS_GEOMETRY_BAND_BYTES;
	if (w->segmented) {
		uint64_t per = r->tile_cols * w->esz;
		w->group = TS_GEOMETRY_BAND_BYTES / per;
		if (w->group < 1)
			w->group = 1;
		if (w->group > w->across)
			w->group = w->across;
		unit_elems = w->group * r->tile_cols;
		if (unit_elems > r->cols)
			unit_elems = r->cols;
		w->bands = 1;
	} else {
		w->group = w->across;
		unit_elems = r->tile_rows * r->cols;
		/* Bands handed over whole go to the pool together, up to JOB_BYTES of source: one
		 * band of a narrow tensor is a page or two, which the calling thread would encode
		 * alone before a woken worker claimed any (invariant 7). */
		w->bands = JOB_BYTES / (unit_elems * w->esz);
		if (w->bands < 1 || w->encoded)
			w->bands = 1;
		if (w->bands > ceil_div(r->rows, r->tile_rows))
			w->bands = ceil_div(r->rows, r->tile_rows);
	}
	w->pages = calloc(w->group * w->bands, sizeof(*w->pages));
	w->pages_cap = w->group * w->bands;
	w->dec_cap = unit_elems * w->bands;
	w->dec = malloc(w->dec_cap * sizeof(float));
	if (!w->pages || !w->dec)
		return ts__err(TS_ENOMEM, "tensor '%s': out of memory", w->name);
	if (w->encoded) {
		/* Only bands of several rows are ever copied; single rows are used in place. */
		if (r->tile_rows > 1) {
			uint64_t nb = ceil_div(r->cols, w->bs);
			w->ecodes = malloc(r->tile_rows * nb * w->cb);
			w->escales = malloc(r->tile_rows * nb * w->sb + 1);
			if (!w->ecodes || !w->escales)
				return ts__err(TS_ENOMEM, "tensor '%s': out of memory", w->name);
		}
	} else {
		w->buf_cap = unit_elems * w->esz;
		w->buf = malloc(w->buf_cap);
		if (!w->buf)
			return ts__err(TS_ENOMEM, "tensor '%s': out of memory", w->name);
	}
	return 0;
}

/* A new writer of @p name on @p st: the store's one writer slot taken (invariant 4), the name
 * checked against the store, interrupted writes removed. Freed by writer_free() on failure. */
/* Take the writer slot of @p st (invariant 4), counting the write among @p g's writers. */
static int slot_take(ts_store *st, ts_group *g, const char *name)
{
	pthread_mutex_lock(&st->writer_lock);
	if (st->writer_active || (g && st->group != g)) {
		int busy = st->writer_active;
		pthread_mutex_unlock(&st->writer_lock);
		if (busy)
			return ts__err(TS_EBUSY, "store '%s' has an active writer already", st->path);
		return ts__err(TS_EINVAL, "tensor '%s': the write group is not open on store '%s'",
			       name, st->path);
	}
	st->writer_active = 1;
	if (g)
		g->writers++;
	pthread_mutex_unlock(&st->writer_lock);
	return 0;
}

void ts__writer_slot_give(ts_store *st, ts_group *g)
{
	pthread_mutex_lock(&st->writer_lock);
	st->writer_active = 0;
	if (g)
		g->writers--;
	pthread_mutex_unlock(&st->writer_lock);
}

int ts__writer_slot_take(ts_store *st, ts_group *g, const char *name)
{
	int rc = slot_take(st, g, name);

	if (rc == 0 && (rc = ts__recovery_run(st, NULL)) < 0)
		ts__writer_slot_give(st, g);
	return rc;
}

static int writer_claim(ts_writer **out, ts_store *st, const char *name, const ts_write_opts *o)
{
	ts_writer *w = calloc(1, sizeof(*w));
	int rc, exists = 0;

	*out = NULL;
	if (!w)
		return ts__err(TS_ENOMEM, "ts_writer_begin: out of memory");
	rc = slot_take(st, o->group, name);
	if (rc < 0) {
		free(w);
		return rc;
	}
	w->st = st;
	spare_take(w);
	/* a write outside the open group: the group's carry first (engine/carry.c invariant 3) */
	if (!o->group && (rc = ts__group_carry_settle(st)) < 0)
		goto fail;
	w->wgroup = o->group;
	w->flags = o->flags;
	w->encoded = (o->flags & TS_WRITE_ENCODED) != 0;
	w->name = strdup(name);
	if (!w->name) {
		rc = ts__err(TS_ENOMEM, "ts_writer_begin: out of memory");
		goto fail;
	}
	rc = name_exists(st, name, &exists);
	if (rc < 0)
		goto fail;
	if (exists && !(o->flags & TS_WRITE_REPLACE)) {
		rc = ts__err(TS_EEXIST, "tensor '%s' exists (TS_WRITE_REPLACE not set)", name);
		goto fail;
	}
	rc = ts__recovery_run(st, NULL);
	if (rc < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	writer_free(w);
	return rc;
}

TS_API int ts_writer_begin(ts_writer **out, ts_store *st, const char *name, ts_dtype src_dtype,
			   int ndim, const uint64_t *shape, const ts_codec_config *cfg,
			   const ts_write_opts *opts)
{
	if (out)
		*out = NULL;
	if (name && (unsigned char)name[0] == TS_RESERVED_KEY_BYTE)
		return ts__err(TS_EINVAL, "tensor name '%.64s': a first byte 0xFF is reserved "
					  "(attachments; never valid UTF-8)", name);
	return ts__writer_begin(out, st, name, src_dtype, ndim, shape, cfg, opts);
}

int ts__writer_begin(ts_writer **out, ts_store *st, const char *name, ts_dtype src_dtype,
		     int ndim, const uint64_t *shape, const ts_codec_config *cfg,
		     const ts_write_opts *opts)
{
	ts_write_opts o;
	ts_writer *w;
	ts__tensor_rec *r;
	int rc;

	if (!out)
		return ts__err(TS_EINVAL, "ts_writer_begin: out is NULL");
	*out = NULL;
	if (opts)
		o = *opts;
	else
		ts_write_opts_init(&o);
	rc = check_args(st, name, src_dtype, ndim, shape, cfg, &o);
	if (rc < 0)
		return rc;

	rc = writer_claim(&w, st, name, &o);
	if (rc < 0)
		return rc;

	r = &w->rec;
	r->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		r->shape[i] = shape[i];
	r->source_dtype = src_dtype;
	r->codec = *cfg;
	r->rows = 1;
	r->cols = 1;
	if (ndim >= 1) {
		r->cols = shape[ndim - 1];
		for (int i = 0; i + 1 < ndim; i++)
			r->rows *= shape[i];
	}
	w->esz = ts_dtype_size(src_dtype);
	w->bs = ts__geometry_block(cfg);
	w->total = r->rows * r->cols;
	w->stats_ok = is_float_src(src_dtype);
	w->exact = !w->encoded && (cfg->codec == TS_CODEC_LOSSLESS ||
				   (cfg->codec == TS_CODEC_RAW && cfg->raw_dtype == src_dtype));
	w->amax_given = o.amax;
	w->enc_amax = isnan(o.amax) ? 0.0f : o.amax;
	if (w->encoded && !isnan(o.tensor_scale))
		r->tensor_scale = o.tensor_scale;
	else if (cfg->codec == TS_CODEC_NVFP4 || cfg->codec == TS_CODEC_FP8)
		r->tensor_scale = ts_codec_tensor_scale(cfg, w->enc_amax);
	else
		r->tensor_scale = 1.0f;
	if (w->encoded) {
		w->cb = (size_t)(w->bs * (uint64_t)cfg->bits_per_value / 8);
		w->sb = cfg->codec == TS_CODEC_FP8 ? 0 : 1;
		if (ts_codec_encoded_size(cfg, 1, w->bs) != w->cb + w->sb) {
			rc = ts__err(TS_EINTERNAL, "tensor '%s': unexpected %s block layout", name,
				     ts_codec_name(cfg->codec));
			goto fail;
		}
	}
	rc = ts__geometry_plan(r, o.page_bytes, (o.flags & TS_WRITE_ROWS) != 0);
	if (rc < 0) {
		rc = ts__err_wrap(rc, "tensor '%s'", name);
		goto fail;
	}
	rc = plan_buffers(w);
	if (rc < 0)
		goto fail;
	rc = read_next_id(st, o.group, &r->id);
	if (rc < 0)
		goto fail;
	ts_stats_acc_init(&w->acc);
	*out = w;
	return 0;
fail:
	writer_free(w);
	return rc;
}

/* -- encoding units ----------------------------------------------------------------------- */

/* Where the pages of a unit read from: source elements (row stride @p stride, the unit's
 * first element at row r0, column c0), or encoded rows. */
typedef struct unit_src {
	ts_writer *w;
	const uint8_t *data;
	uint64_t stride, r0, c0;
	const uint8_t *codes, *scales;
	size_t code_stride, scale_stride;
} unit_src;

static int page_task(void *ud, uint64_t k)
{
	unit_src *u = ud;
	ts_writer *w = u->w;
	const ts__tensor_rec *r = &w->rec;
	wpage *p = &w->pages[k];
	uint8_t *out = w->batch[w->cur].buf + p->off;
	uint8_t *payload = out + TS_PAGE_HEADER_SIZE;
	size_t cap = p->len - TS_PAGE_HEADER_SIZE, plen = cap;
	ts__page_hdr hdr;
	int rc;

	if (!w->encoded) {
		const uint8_t *src =
			u->data + ((p->r0 - u->r0) * u->stride + (p->c0 - u->c0)) * w->esz;
		rc = ts_codec_encode_len(&plen, &r->codec, w->enc_amax, src, r->source_dtype,
					 u->stride, p->nr, p->nc, payload, cap);
		if (rc < 0)
			return ts__err_wrap(rc, "tensor '%s', page %" PRIu64 " (rows %" PRIu64
					    "+, columns %" PRIu64 "+)", w->name, p->index, p->r0,
					    p->c0);
	} else {
		uint64_t nb = ceil_div(p->nc, w->bs);
		size_t crow = nb * w->cb, srow = nb * w->sb;
		size_t cofs = (p->c0 / w->bs) * w->cb, sofs = (p->c0 / w->bs) * w->sb;
		for (uint64_t i = 0; i < p->nr; i++) {
			uint64_t row = p->r0 - u->r0 + i;
			memcpy(payload + i * crow, u->codes + row * u->code_stride + cofs, crow);
			if (srow)
				memcpy(payload + p->nr * crow + i * srow,
				       u->scales + row * u->scale_stride + sofs, srow);
		}
	}
	p->len = TS_PAGE_HEADER_SIZE + plen; /* lossless: shorter than planned */
	hdr.codec = (unsigned)r->codec.codec;
	hdr.rows = (uint32_t)p->nr;
	hdr.cols = (uint32_t)p->nc;
	hdr.payload_len = (uint32_t)plen;
	hdr.tensor_id = r->id;
	hdr.page_index = p->index;
	hdr.checksum = 0;
	ts__page_seal(out, &hdr);
	ts_stats_acc_init(&p->acc);
	if (w->stats_ok || w->encoded) {
		const float *dec = NULL;
		if (!w->exact) {
			/* the error is measured on the page as a reader will decode it */
			dec = w->dec + p->dec_off;
			rc = ts_codec_decode(&r->codec, r->tensor_scale, payload, plen, p->nr, p->nc,
					     TS_F32, w->dec + p->dec_off, p->nc);
			if (rc < 0)
				return ts__err_wrap(rc, "tensor '%s', decoding page %" PRIu64,
						    w->name, p->index);
		}
		if (w->encoded)
			return ts_stats_acc_add_dist(&p->acc, dec, TS_F32, p->nr * p->nc);
		for (uint64_t i = 0; i < p->nr; i++) {
			const uint8_t *src = u->data + ((p->r0 - u->r0 + i) * u->stride +
							(p->c0 - u->c0)) * w->esz;
			rc = ts__stats_acc_add_both(&p->acc, src, r->source_dtype,
						    dec ? dec + i * p->nc : NULL, p->nc);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Lay out pages [first, first + n) of the tensor in the batch buffer and the decoded scratch. */
static int plan_pages(ts_writer *w, uint64_t first, uint64_t n)
{
	wbatch *b = &w->batch[w->cur];
	size_t need = b->len;
	uint64_t dec = 0;

	assert(n <= w->pages_cap);
	for (uint64_t k = 0; k < n; k++) {
		wpage *p = &w->pages[k];
		p->index = first + k;
		ts__geometry_page_rect(&w->rec, p->index, &p->r0, &p->nr, &p->c0, &p->nc);
		p->len = TS_PAGE_HEADER_SIZE + ts_codec_encoded_size(&w->rec.codec, p->nr, p->nc);
		p->off = need;
		need += p->len;
		p->dec_off = dec;
		dec += p->nr * p->nc;
	}
	assert(dec <= w->dec_cap);
	if (need > b->cap) {
		size_t cap = need > 2 * b->cap ? need : 2 * b->cap;
		uint8_t *nb = realloc(b->buf, cap);
		if (!nb)
			return ts__err(TS_ENOMEM, "tensor '%s': out of memory", w->name);
		b->buf = nb;
		b->cap = cap;
	}
	if (b->n + n > b->bp_cap) {
		size_t cap = b->n + n > 2 * b->bp_cap ? b->n + n : 2 * b->bp_cap;
		ts__carry_page *nb = realloc(b->bp, cap * sizeof(*nb));
		if (!nb)
			return ts__err(TS_ENOMEM, "tensor '%s': out of memory", w->name);
		b->bp = nb;
		b->bp_cap = cap;
	}
	return 0;
}

/* Encode (or assemble) pages [first, first + n), accumulate statistics, batch the pages. */
static int run_pages(ts_writer *w, unit_src *u, uint64_t first, uint64_t n)
{
	wbatch *b;
	int rc = plan_pages(w, first, n);

	if (rc < 0)
		return rc;
	rc = ts__pool_run(w->st->pool, n, page_task, u);
	if (rc < 0)
		return rc;
	b = &w->batch[w->cur];
	for (uint64_t k = 0; k < n; k++) {
		wpage *p = &w->pages[k];
		/* statistics merged in page order: independent of chunking and of threads */
		ts_stats_acc_merge(&w->acc, &p->acc);
		w->blocks += p->nr * ceil_div(p->nc, w->bs);
		w->stored += p->len - TS_PAGE_HEADER_SIZE;
		b->bp[b->n].id = w->rec.id;
		b->bp[b->n].index = p->index;
		b->bp[b->n].off = p->off;
		b->bp[b->n].len = p->len;
		b->n++;
		b->len = p->off + p->len;
	}
	if (b->len >= BATCH_BYTES)
		return flush(w);
	return 0;
}

/* The unit that starts at stream element @p pos: its rows, columns and first page. */
static void unit_at(const ts_writer *w, uint64_t pos, uint64_t *r0, uint64_t *nr, uint64_t *c0,
		    uint64_t *nc)
{
	const ts__tensor_rec *r = &w->rec;

	*r0 = pos / r->cols;
	*c0 = pos % r->cols;
	if (w->segmented) {
		*nr = 1;
		*nc = w->group * r->tile_cols;
		if (*nc > r->cols - *c0)
			*nc = r->cols - *c0;
	} else {
		assert(*c0 == 0 && *r0 % r->tile_rows == 0);
		*nr = r->rows - *r0 < r->tile_rows ? r->rows - *r0 : r->tile_rows;
		*nc = r->cols;
	}
}

static int process_unit(ts_writer *w, const uint8_t *data, uint64_t pos)
{
	const ts__tensor_rec *r = &w->rec;
	uint64_t r0, nr, c0, nc, first, n;
	unit_src u = {0};

	unit_at(w, pos, &r0, &nr, &c0, &nc);
	first = r0 / r->tile_rows * w->across + c0 / r->tile_cols;
	n = ceil_div(nc, r->tile_cols);
	u.w = w;
	u.data = data;
	u.stride = nc;
	u.r0 = r0;
	u.c0 = c0;
	return run_pages(w, &u, first, n);
}

/* Whole bands handed over in place at stream element @p pos (a band's first, not segmented):
 * as many as @p avail elements hold, at most w->bands, encoded as one job (invariant 7). The
 * elements consumed in *@p used. */
static int process_bands(ts_writer *w, const uint8_t *data, uint64_t pos, uint64_t avail,
			 uint64_t *used)
{
	const ts__tensor_rec *r = &w->rec;
	uint64_t r0 = pos / r->cols, rows = avail / r->cols;
	unit_src u = {0};

	if (rows > w->bands * r->tile_rows)
		rows = w->bands * r->tile_rows;
	if (rows > r->rows - r0)
		rows = r->rows - r0;
	if (rows < r->rows - r0) /* whole bands only; the tensor's last one may be short */
		rows -= rows % r->tile_rows;
	*used = rows * r->cols;
	u.w = w;
	u.data = data;
	u.stride = r->cols;
	u.r0 = r0;
	return run_pages(w, &u, r0 / r->tile_rows * w->across,
			 ceil_div(rows, r->tile_rows) * w->across);
}

static int writer_failed(ts_writer *w, int rc)
{
	w->failed = rc;
	return rc;
}

TS_API int ts_writer_append(ts_writer *w, const void *data, size_t bytes)
{
	const uint8_t *p = data;
	uint64_t n;
	int rc;

	if (!w)
		return ts__err(TS_EINVAL, "ts_writer_append: writer is NULL");
	if (w->failed)
		return ts__err(w->failed, "tensor '%s': an earlier append failed", w->name);
	if (w->encoded || w->copy)
		return ts__err(TS_EINVAL, "tensor '%s': %s", w->name,
			       w->copy ? "a copied tensor takes stored pages only"
				       : "TS_WRITE_ENCODED data goes through ts_writer_append_encoded()");
	if (bytes == 0)
		return 0;
	if (!data)
		return ts__err(TS_EINVAL, "tensor '%s': data is NULL", w->name);
	if (bytes % w->esz)
		return ts__err(TS_EINVAL, "tensor '%s': %zu bytes is not a whole number of %s "
			       "elements", w->name, bytes, ts_dtype_name(w->rec.source_dtype));
	n = bytes / w->esz;
	if (n > w->total - w->fed)
		return ts__err(TS_ERANGE, "tensor '%s': %" PRIu64 " more elements than its shape "
			       "holds (%" PRIu64 ")", w->name, n - (w->total - w->fed), w->total);
	while (n > 0) {
		uint64_t r0, nr, c0, nc, len, take;
		uint64_t start = w->fed - w->unit_fill;

		unit_at(w, start, &r0, &nr, &c0, &nc);
		len = nr * nc;
		if (w->unit_fill == 0 && n >= len) {
			/* Whole units at hand: encode them in place. */
			if (w->segmented)
				rc = process_unit(w, p, start);
			else
				rc = process_bands(w, p, start, n, &len);
			if (rc < 0)
				return writer_failed(w, rc);
			w->fed += len;
			p += len * w->esz;
			n -= len;
			continue;
		}
		take = len - w->unit_fill < n ? len - w->unit_fill : n;
		memcpy(w->buf + w->unit_fill * w->esz, p, take * w->esz);
		w->unit_fill += take;
		w->fed += take;
		p += take * w->esz;
		n -= take;
		if (w->unit_fill == len) {
			rc = process_unit(w, w->buf, start);
			w->unit_fill = 0;
			if (rc < 0)
				return writer_failed(w, rc);
		}
	}
	rc = join_committer(w);
	return rc < 0 ? writer_failed(w, rc) : 0;
}

/* A band of encoded rows [r0, r0 + nr), all columns, from @p codes / @p scales. */
static int process_encoded(ts_writer *w, uint64_t r0, const uint8_t *codes, size_t code_stride,
			   const uint8_t *scales, size_t scale_stride)
{
	const ts__tensor_rec *r = &w->rec;
	uint64_t first = r0 / r->tile_rows * w->across;
	unit_src u = {0};

	u.w = w;
	u.r0 = r0;
	u.codes = codes;
	u.scales = scales;
	u.code_stride = code_stride;
	u.scale_stride = scale_stride;
	for (uint64_t k = 0; k < w->across; k += w->group) {
		uint64_t n = w->across - k < w->group ? w->across - k : w->group;
		int rc = run_pages(w, &u, first + k, n);
		if (rc < 0)
			return rc;
	}
	return 0;
}

TS_API int ts_writer_append_encoded(ts_writer *w, const void *codes, size_t codes_size,
				    const void *scales, size_t scales_size, uint64_t row_count)
{
	const ts__tensor_rec *r;
	const uint8_t *cp = codes, *sp = scales;
	uint64_t nb, rows_fed;
	size_t crow, srow;
	int rc;

	if (!w)
		return ts__err(TS_EINVAL, "ts_writer_append_encoded: writer is NULL");
	if (w->failed)
		return ts__err(w->failed, "tensor '%s': an earlier append failed", w->name);
	if (!w->encoded || w->copy)
		return ts__err(TS_EINVAL, "tensor '%s': not begun with TS_WRITE_ENCODED", w->name);
	if (row_count == 0)
		return 0;
	r = &w->rec;
	nb = ceil_div(r->cols, w->bs);
	crow = nb * w->cb;
	srow = nb * w->sb;
	rows_fed = r->cols ? w->fed / r->cols : 0;
	if (row_count > r->rows - rows_fed)
		return ts__err(TS_ERANGE, "tensor '%s': %" PRIu64 " rows appended, %" PRIu64
			       " remain", w->name, row_count, r->rows - rows_fed);
	if (!codes || codes_size != row_count * crow)
		return ts__err(TS_EINVAL, "tensor '%s': %" PRIu64 " rows need %" PRIu64 " code bytes, "
			       "got %zu", w->name, row_count, row_count * crow, codes_size);
	if (srow && (!scales || scales_size != row_count * srow))
		return ts__err(TS_EINVAL, "tensor '%s': %" PRIu64 " rows need %" PRIu64 " scale "
			       "bytes, got %zu", w->name, row_count, row_count * srow, scales_size);
	if (r->cols == 0)
		return 0;
	while (row_count > 0) {
		uint64_t band_r0 = rows_fed - w->erows;
		uint64_t band_nr = r->rows - band_r0 < r->tile_rows ? r->rows - band_r0 : r->tile_rows;
		uint64_t take;

		if (w->erows == 0 && row_count >= band_nr) {
			rc = process_encoded(w, band_r0, cp, crow, sp, srow);
			if (rc < 0)
				return writer_failed(w, rc);
			take = band_nr;
		} else {
			take = band_nr - w->erows < row_count ? band_nr - w->erows : row_count;
			memcpy(w->ecodes + w->erows * crow, cp, take * crow);
			if (srow)
				memcpy(w->escales + w->erows * srow, sp, take * srow);
			w->erows += take;
			if (w->erows == band_nr) {
				rc = process_encoded(w, band_r0, w->ecodes, crow, w->escales, srow);
				w->erows = 0;
				if (rc < 0)
					return writer_failed(w, rc);
			}
		}
		cp += take * crow;
		if (srow)
			sp += take * srow;
		rows_fed += take;
		w->fed += take * r->cols;
		row_count -= take;
	}
	rc = join_committer(w);
	return rc < 0 ? writer_failed(w, rc) : 0;
}

/* -- copying stored pages ----------------------------------------------------------------- */

int ts__writer_begin_copy(ts_writer **out, ts_store *st, const char *name,
			  const ts__tensor_rec *src, const ts_write_opts *opts)
{
	ts_write_opts o;
	ts_writer *w;
	int rc;

	*out = NULL;
	if (opts)
		o = *opts;
	else
		ts_write_opts_init(&o);
	o.flags &= TS_WRITE_REPLACE;
	if (!(st->flags & TS_OPEN_WRITE))
		return ts__err(TS_EREADONLY, "store '%s' is opened read-only", st->path);
	if (o.group && o.group->st != st)
		return ts__err(TS_EINVAL, "tensor '%s': the write group belongs to another store",
			       name);
	rc = writer_claim(&w, st, name, &o);
	if (rc < 0)
		return rc;
	w->copy = 1;
	w->rec = *src;
	w->stored = src->stored_bytes;
	rc = read_next_id(st, o.group, &w->rec.id);
	if (rc < 0) {
		writer_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

int ts__writer_put_page(ts_writer *w, uint64_t index, const uint8_t *payload, size_t plen)
{
	wbatch *b = &w->batch[w->cur];
	uint64_t r0, nr, c0, nc;
	ts__page_hdr hdr;
	size_t need;
	int rc;

	if (w->failed)
		return ts__err(w->failed, "tensor '%s': an earlier page failed", w->name);
	assert(w->copy && index == w->copied && index < w->rec.page_count);
	ts__geometry_page_rect(&w->rec, index, &r0, &nr, &c0, &nc);
	need = b->len + TS_PAGE_HEADER_SIZE + plen;
	if (need > b->cap) {
		size_t cap = need > 2 * b->cap ? need : 2 * b->cap;
		uint8_t *nb = realloc(b->buf, cap);
		if (!nb)
			return writer_failed(w, ts__err(TS_ENOMEM, "tensor '%s': out of memory",
							w->name));
		b->buf = nb;
		b->cap = cap;
	}
	if (b->n + 1 > b->bp_cap) {
		size_t cap = b->bp_cap ? 2 * b->bp_cap : 64;
		ts__carry_page *np = realloc(b->bp, cap * sizeof(*np));
		if (!np)
			return writer_failed(w, ts__err(TS_ENOMEM, "tensor '%s': out of memory",
							w->name));
		b->bp = np;
		b->bp_cap = cap;
	}
	memcpy(b->buf + b->len + TS_PAGE_HEADER_SIZE, payload, plen);
	hdr.codec = (unsigned)w->rec.codec.codec;
	hdr.rows = (uint32_t)nr;
	hdr.cols = (uint32_t)nc;
	hdr.payload_len = (uint32_t)plen;
	hdr.tensor_id = w->rec.id;
	hdr.page_index = index;
	hdr.checksum = 0;
	ts__page_seal(b->buf + b->len, &hdr);
	b->bp[b->n].id = w->rec.id;
	b->bp[b->n].index = index;
	b->bp[b->n].off = b->len;
	b->bp[b->n].len = TS_PAGE_HEADER_SIZE + plen;
	b->n++;
	b->len += TS_PAGE_HEADER_SIZE + plen;
	w->copied++;
	if (b->len >= BATCH_BYTES) {
		rc = flush(w);
		if (rc < 0)
			return writer_failed(w, rc);
	}
	return 0;
}

/* -- commit and abort --------------------------------------------------------------------- */

static void finish_stats(ts_writer *w)
{
	ts__tensor_rec *r = &w->rec;
	uint64_t orig = w->total * w->esz;

	if (w->copy)
		return; /* the source's record says it all */

	if (w->stats_ok || w->encoded) {
		ts_stats_acc_finish_dist(&r->dist, &w->acc);
	} else {
		memset(&r->dist, 0, sizeof(r->dist));
		r->dist.count = w->total;
	}
	if (w->encoded) {
		/* No source to compare with: the error is unknown. */
		memset(&r->error, 0, sizeof(r->error));
		r->error.original_bytes = orig;
		r->error.compressed_bytes = w->stored;
		r->error.compression_ratio = w->stored ? (double)orig / (double)w->stored : 0;
		r->error.blocks_processed = w->blocks;
		r->error.mean_error = r->error.max_error = NAN;
		r->error.rel_rms_pct = r->error.sqnr_db = NAN;
	} else {
		ts_stats_acc_finish_error(&r->error, &w->acc, orig, w->stored, w->blocks);
	}
	r->stored_bytes = w->stored;
	if (!isnan(w->amax_given) && (r->codec.codec == TS_CODEC_NVFP4 ||
				      r->codec.codec == TS_CODEC_FP8 || w->encoded)) {
		r->amax = w->amax_given;
	} else {
		double a = fabs(r->dist.min_val) > fabs(r->dist.max_val) ? fabs(r->dist.min_val)
									 : fabs(r->dist.max_val);
		r->amax = isfinite(a) && a < 3.4e38 ? (float)a : 0.0f;
	}
}

static int abort_txn(void *ud, MDB_txn *txn)
{
	ts_writer *w = ud;
	return ts__recovery_discard(w->st, txn, w->rec.id);
}

TS_API void ts_writer_abort(ts_writer *w)
{
	char saved[512];

	if (!w)
		return;
	snprintf(saved, sizeof(saved), "%s", ts_error_last());
	(void)join_committer(w);
	if (w->pending_written) {
		/* If this fails (a full disk), the pending entry stays for the next writer. */
		(void)ts__txn_write(w->st, abort_txn, w, "discarding an unfinished write");
	}
	ts__err(0, "%s", saved);
	writer_free(w);
}

/* Staging (invariants 5 and 9): the tensor's last pages and what its staging transaction does
 * go to the group's carry, committed with the next batch of the group, on their own once they
 * fill a batch, or when the group is published; the record goes to the group then. */
static int stage(ts_tensor_info *info, ts_writer *w)
{
	ts_group *g = w->wgroup;
	wbatch *b = &w->batch[w->cur];
	ts__carry_stage s;
	ptrdiff_t k;
	int rc = ts__group_carry_join(g);

	if (rc == 0)
		rc = ts__group_reserve(g, g->carry.ns + 1);
	/* a name carried already: its stage is committed first, this one supersedes it */
	if (rc == 0 && ts__carry_has(&g->carry, w->name))
		rc = ts__group_carry_flush(g);
	if (rc < 0)
		goto fail;
	k = ts__group_find(g, w->name);
	s.name = w->name;
	s.rec = w->rec;
	s.flags = w->flags;
	s.pending_written = w->pending_written;
	s.supersede_id = k >= 0 ? g->items[k].rec.id : 0;
	rc = ts__carry_add(&g->carry, b->buf, b->bp, b->n, &s);
	if (rc < 0)
		goto fail;
	/* the carry owns the stage now: a failure below leaves it to the group (abort discards) */
	w->name = NULL;
	w->pending_written = 0;
	if (info)
		ts__tensor_rec_to_info(&w->rec, info);
	/* a full carry is committed on a thread of its own while the caller goes on: its result
	 * comes with the next writer's first batch or the group's end */
	if (ts__carry_bytes(&g->carry) >= BATCH_BYTES)
		ts__carry_commit_async(w->st, &g->carry);
	writer_free(w);
	return 0;
fail:
	rc = ts__err_wrap(rc, "staging tensor '%s'", w->name);
	ts_writer_abort(w);
	return rc;
}

TS_API int ts_writer_commit(ts_tensor_info *info, ts_writer *w)
{
	uint64_t expect;
	int rc;

	if (!w)
		return ts__err(TS_EINVAL, "ts_writer_commit: writer is NULL");
	if (w->failed) {
		rc = ts__err(w->failed, "tensor '%s': an earlier append failed", w->name);
		goto fail;
	}
	expect = w->total;
	if (w->copy && w->copied != w->rec.page_count) {
		rc = ts__err(TS_EINVAL, "tensor '%s': %" PRIu64 " of its %" PRIu64 " pages were "
			     "copied", w->name, w->copied, w->rec.page_count);
		goto fail;
	}
	if (!w->copy && w->fed != expect) {
		rc = ts__err(TS_EINVAL, "tensor '%s': %" PRIu64 " of its %" PRIu64 " elements were "
			     "appended", w->name, w->fed, expect);
		goto fail;
	}
	rc = join_committer(w);
	if (rc < 0)
		goto fail;
	finish_stats(w);
	if (w->wgroup)
		return stage(info, w);
	rc = ts__txn_write(w->st, final_txn, w, w->name);
	if (rc < 0) {
		rc = ts__err_wrap(rc, "committing tensor '%s'", w->name);
		goto fail;
	}
	if (info)
		ts__tensor_rec_to_info(&w->rec, info);
	w->pending_written = 0;
	writer_free(w);
	return 0;
fail:
	ts_writer_abort(w);
	return rc;
}

/* -- delete ------------------------------------------------------------------------------- */

typedef struct delete_ctx {
	ts_store *st;
	const char *name;
} delete_ctx;

static int delete_txn(void *ud, MDB_txn *txn)
{
	delete_ctx *d = ud;
	ts_store *st = d->st;
	MDB_val key = {strlen(d->name), (void *)d->name}, val;
	ts__tensor_rec rec;
	int rc, good;

	rc = mdb_get(txn, st->dbi_tensors, &key, &val);
	if (rc == MDB_NOTFOUND)
		return ts__err(TS_ENOTFOUND, "no tensor named '%s'", d->name);
	if (rc)
		return rc;
	/* A damaged record is removed too; its pages then show up as orphans in a check. */
	good = ts__tensor_rec_decode_named(&rec, d->name, strlen(d->name), val.mv_data,
					   val.mv_size) == 0;
	rc = mdb_del(txn, st->dbi_tensors, &key, NULL);
	if (rc)
		return rc;
	return good ? ts__pages_delete(st, txn, rec.id, NULL) : 0;
}

TS_API int ts_tensor_delete(ts_store *st, const char *name)
{
	delete_ctx d = {st, name};
	size_t n;

	if (!st || !name)
		return ts__err(TS_EINVAL, "ts_tensor_delete: %s is NULL", !st ? "store" : "name");
	if (!(st->flags & TS_OPEN_WRITE))
		return ts__err(TS_EREADONLY, "store '%s' is opened read-only", st->path);
	n = strlen(name);
	if (n == 0 || n > TS_MAX_NAME)
		return ts__err(TS_ENOTFOUND, "no tensor named '%.64s'", name);
	return ts__txn_write(st, delete_txn, &d, name);
}
