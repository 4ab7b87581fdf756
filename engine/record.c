/*
 * The tensor record: what the tensors database holds for each tensor name. Encoded field by
 * field, little-endian, with a magic byte, a version and a trailing XXH3-64; decoded the same
 * way and validated completely before anything in it is trusted (docs/FORMAT.md, "Tensor
 * records").
 *
 * Invariants
 *   1. A record that decodes without error describes a tensor whose element count, 2-D view,
 *      page geometry and page count are mutually consistent and within TS_MAX_ELEMENTS, and
 *      whose pages each fit the u32 fields of the page header: a reader may size buffers and
 *      loops from it without further overflow checks.
 *   2. ts__tensor_rec_encode() and ts__tensor_rec_decode() are exact inverses for every record
 *      that validates (floating-point fields are stored as their bit patterns).
 */
#include "config.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/byteorder.h"
#include "common/error.h"
#include "engine/format.h"
#include "engine/geometry.h"
#include "engine/handle.h"
#include "engine/lmdbcheck.h"
#include "engine/page.h"
#include "engine/record.h"
#include "engine/txn.h"

/* Byte layout (docs/FORMAT.md):
 *   0 u8 magic 'T'   1 u8 version   2 u8 ndim   3 u8 source dtype
 *   4 u8 codec   5 u8 recipe   6 u8 symmetric   7 u8 raw dtype
 *   8 u16 block size   10 u16 bits per value   12 u32 reserved (0)
 *   16 f64 max_error_pct   24 u64 id   32 u64 shape[ndim]
 *   then f32 amax, f32 tensor scale, u64 rows, cols, tile rows, tile cols, page count,
 *   stored bytes; error stats: u64 original, u64 compressed, f64 ratio, f64 mean, f64 max,
 *   u64 blocks, f64 rel rms, f64 sqnr; distribution stats: f64 mean, std, min, max, dynamic
 *   range, sparsity, u64 count, u64 nonfinite; u64 XXH3-64 of every preceding byte. */
#define FIXED_HEAD 32
#define FIXED_TAIL (8 + 6 * 8 + 8 * 8 + 8 * 8 + 8)
#define REC_SIZE(ndim) ((size_t)FIXED_HEAD + 8 * (size_t)(ndim) + FIXED_TAIL)

_Static_assert(REC_SIZE(TS_MAX_DIMS) <= TS_RECORD_MAX, "TS_RECORD_MAX is too small");

typedef struct wbuf {
	uint8_t *p;
	size_t n;
} wbuf;

static void w8(wbuf *b, unsigned v)
{
	b->p[b->n++] = (uint8_t)v;
}

static void w16(wbuf *b, unsigned v)
{
	ts__put_le16(b->p + b->n, (uint16_t)v);
	b->n += 2;
}

static void w32(wbuf *b, uint32_t v)
{
	ts__put_le32(b->p + b->n, v);
	b->n += 4;
}

static void w64(wbuf *b, uint64_t v)
{
	ts__put_le64(b->p + b->n, v);
	b->n += 8;
}

static void wf32(wbuf *b, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	w32(b, u);
}

static void wf64(wbuf *b, double d)
{
	uint64_t u;
	memcpy(&u, &d, 8);
	w64(b, u);
}

typedef struct rbuf {
	const uint8_t *p;
	size_t n;
} rbuf;

static unsigned r8(rbuf *b)
{
	return b->p[b->n++];
}

static unsigned r16(rbuf *b)
{
	b->n += 2;
	return ts__get_le16(b->p + b->n - 2);
}

static uint32_t r32(rbuf *b)
{
	b->n += 4;
	return ts__get_le32(b->p + b->n - 4);
}

static uint64_t r64(rbuf *b)
{
	b->n += 8;
	return ts__get_le64(b->p + b->n - 8);
}

static float rf32(rbuf *b)
{
	uint32_t u = r32(b);
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static double rf64(rbuf *b)
{
	uint64_t u = r64(b);
	double d;
	memcpy(&d, &u, 8);
	return d;
}

uint64_t ts__shape_elements(int ndim, const uint64_t *shape)
{
	uint64_t n = 1;
	for (int i = 0; i < ndim; i++) {
		if (__builtin_mul_overflow(n, shape[i], &n))
			return UINT64_MAX;
	}
	return n > TS_MAX_ELEMENTS ? UINT64_MAX : n;
}

size_t ts__tensor_rec_encode(const ts__tensor_rec *rec, uint8_t *buf, size_t cap)
{
	wbuf b = {buf, 0};
	size_t need;

	if (rec->ndim < 0 || rec->ndim > TS_MAX_DIMS)
		return 0;
	need = REC_SIZE(rec->ndim);
	if (cap < need)
		return 0;
	w8(&b, TS_RECORD_MAGIC);
	w8(&b, TS_RECORD_VERSION);
	w8(&b, (unsigned)rec->ndim);
	w8(&b, (unsigned)rec->source_dtype);
	w8(&b, (unsigned)rec->codec.codec);
	w8(&b, (unsigned)rec->codec.recipe);
	w8(&b, rec->codec.symmetric ? 1u : 0u);
	w8(&b, (unsigned)rec->codec.raw_dtype);
	w16(&b, (unsigned)rec->codec.block_size);
	w16(&b, (unsigned)rec->codec.bits_per_value);
	w32(&b, 0);
	wf64(&b, rec->codec.max_error_pct);
	w64(&b, rec->id);
	for (int i = 0; i < rec->ndim; i++)
		w64(&b, rec->shape[i]);
	wf32(&b, rec->amax);
	wf32(&b, rec->tensor_scale);
	w64(&b, rec->rows);
	w64(&b, rec->cols);
	w64(&b, rec->tile_rows);
	w64(&b, rec->tile_cols);
	w64(&b, rec->page_count);
	w64(&b, rec->stored_bytes);
	w64(&b, rec->error.original_bytes);
	w64(&b, rec->error.compressed_bytes);
	wf64(&b, rec->error.compression_ratio);
	wf64(&b, rec->error.mean_error);
	wf64(&b, rec->error.max_error);
	w64(&b, rec->error.blocks_processed);
	wf64(&b, rec->error.rel_rms_pct);
	wf64(&b, rec->error.sqnr_db);
	wf64(&b, rec->dist.mean);
	wf64(&b, rec->dist.std);
	wf64(&b, rec->dist.min_val);
	wf64(&b, rec->dist.max_val);
	wf64(&b, rec->dist.dynamic_range);
	wf64(&b, rec->dist.sparsity);
	w64(&b, rec->dist.count);
	w64(&b, rec->dist.nonfinite);
	w64(&b, XXH3_64bits(buf, b.n));
	assert(b.n == need);
	return b.n;
}

/* Validate the codec fields the geometry depends on (the codec's own check follows). */
static int check_codec(const ts__tensor_rec *rec)
{
	const ts_codec_config *c = &rec->codec;

	if ((unsigned)c->codec >= TS_CODEC_COUNT)
		return ts__err(TS_ECORRUPT, "unknown codec %u", (unsigned)c->codec);
	if ((unsigned)c->raw_dtype >= TS_DTYPE_COUNT)
		return ts__err(TS_ECORRUPT, "unknown raw dtype %u", (unsigned)c->raw_dtype);
	if ((unsigned)c->recipe > TS_RECIPE_BEST)
		return ts__err(TS_ECORRUPT, "unknown nvfp4 recipe %u", (unsigned)c->recipe);
	if (c->block_size < 1 || c->block_size > 4096 || (c->block_size & (c->block_size - 1)))
		return ts__err(TS_ECORRUPT, "block size %d is not a power of two in 1..4096",
			       c->block_size);
	if (ts_codec_config_check(c) < 0)
		return ts__err_wrap(TS_ECORRUPT, "codec configuration");
	return 0;
}

/* Validate the 2-D view and the page geometry against the shape and the codec. */
static int check_geometry(const ts__tensor_rec *rec)
{
	uint64_t elems = ts__shape_elements(rec->ndim, rec->shape);
	uint64_t rows = 1, cols = 1, bs, across, down, count, payload;

	if (elems == UINT64_MAX)
		return ts__err(TS_ECORRUPT, "shape has more than 2^56 elements or overflows");
	if (rec->ndim >= 1) {
		cols = rec->shape[rec->ndim - 1];
		for (int i = 0; i + 1 < rec->ndim; i++)
			rows *= rec->shape[i]; /* cannot overflow: the product of all did not */
	}
	if (rec->rows != rows || rec->cols != cols)
		return ts__err(TS_ECORRUPT,
			       "2-D view %" PRIu64 " x %" PRIu64 " disagrees with the shape (%" PRIu64
			       " x %" PRIu64 ")",
			       rec->rows, rec->cols, rows, cols);
	if (elems == 0) {
		if (rec->tile_rows || rec->tile_cols || rec->page_count || rec->stored_bytes)
			return ts__err(TS_ECORRUPT, "an empty tensor must have no pages");
		return 0;
	}
	bs = ts__geometry_block(&rec->codec);
	if (rec->tile_rows < 1 || rec->tile_rows > rows || rec->tile_rows > UINT32_MAX)
		return ts__err(TS_ECORRUPT, "tile rows %" PRIu64 " outside 1..%" PRIu64,
			       rec->tile_rows, rows);
	if (rec->tile_cols < 1 || rec->tile_cols > cols || rec->tile_cols > UINT32_MAX)
		return ts__err(TS_ECORRUPT, "tile columns %" PRIu64 " outside 1..%" PRIu64,
			       rec->tile_cols, cols);
	if (rec->tile_cols != cols && rec->tile_cols % bs != 0)
		return ts__err(TS_ECORRUPT,
			       "tile columns %" PRIu64 " are not a multiple of the block size %" PRIu64,
			       rec->tile_cols, bs);
	down = (rows + rec->tile_rows - 1) / rec->tile_rows;
	across = (cols + rec->tile_cols - 1) / rec->tile_cols;
	if (__builtin_mul_overflow(down, across, &count) || count != rec->page_count)
		return ts__err(TS_ECORRUPT,
			       "page count %" PRIu64 " disagrees with the geometry (%" PRIu64
			       " x %" PRIu64 " tiles)",
			       rec->page_count, down, across);
	payload = ts_codec_encoded_size(&rec->codec, rec->tile_rows, rec->tile_cols);
	if (payload == 0 || payload > TS_PAGE_BYTES_MAX - TS_PAGE_HEADER_SIZE)
		return ts__err(TS_ECORRUPT,
			       "a full page of %" PRIu64 " x %" PRIu64 " elements exceeds the largest page",
			       rec->tile_rows, rec->tile_cols);
	if (rec->stored_bytes > (uint64_t)payload * count)
		return ts__err(TS_ECORRUPT, "stored bytes %" PRIu64 " exceed %" PRIu64
			       " pages of at most %" PRIu64 " bytes",
			       rec->stored_bytes, count, (uint64_t)payload);
	return 0;
}

int ts__tensor_rec_decode(ts__tensor_rec *rec, const void *buf, size_t len)
{
	rbuf b = {buf, 0};
	unsigned magic, version, ndim;
	uint64_t sum;
	int rc;

	memset(rec, 0, sizeof(*rec));
	if (len < REC_SIZE(0))
		return ts__err(TS_ECORRUPT, "record of %zu bytes is too short", len);
	magic = r8(&b);
	version = r8(&b);
	ndim = r8(&b);
	if (magic != TS_RECORD_MAGIC)
		return ts__err(TS_ECORRUPT, "record magic %#x is not %#x", magic, TS_RECORD_MAGIC);
	if (version == 0)
		return ts__err(TS_ECORRUPT, "record version 0 is invalid");
	if (version > TS_RECORD_VERSION)
		return ts__err(TS_EVERSION, "record version %u is newer than this library's %u",
			       version, TS_RECORD_VERSION);
	if (ndim > TS_MAX_DIMS)
		return ts__err(TS_ECORRUPT, "record has %u dimensions (at most %d)", ndim,
			       TS_MAX_DIMS);
	if (len != REC_SIZE(ndim))
		return ts__err(TS_ECORRUPT, "record of %zu bytes, %zu expected for %u dimensions", len,
			       REC_SIZE(ndim), ndim);
	{
		rbuf t = {buf, len - 8};
		sum = r64(&t);
	}
	if (sum != XXH3_64bits(buf, len - 8))
		return ts__err(TS_ECORRUPT, "record checksum mismatch (damaged, or under another name)");

	rec->ndim = (int)ndim;
	rec->source_dtype = (ts_dtype)r8(&b);
	rec->codec.codec = (ts_codec)r8(&b);
	rec->codec.recipe = (ts_recipe)r8(&b);
	rec->codec.symmetric = (int)r8(&b);
	rec->codec.raw_dtype = (ts_dtype)r8(&b);
	rec->codec.block_size = (int)r16(&b);
	rec->codec.bits_per_value = (int)r16(&b);
	if (r32(&b) != 0)
		return ts__err(TS_ECORRUPT, "record reserved field is not zero");
	rec->codec.max_error_pct = rf64(&b);
	rec->id = r64(&b);
	for (unsigned i = 0; i < ndim; i++)
		rec->shape[i] = r64(&b);
	rec->amax = rf32(&b);
	rec->tensor_scale = rf32(&b);
	rec->rows = r64(&b);
	rec->cols = r64(&b);
	rec->tile_rows = r64(&b);
	rec->tile_cols = r64(&b);
	rec->page_count = r64(&b);
	rec->stored_bytes = r64(&b);
	rec->error.original_bytes = r64(&b);
	rec->error.compressed_bytes = r64(&b);
	rec->error.compression_ratio = rf64(&b);
	rec->error.mean_error = rf64(&b);
	rec->error.max_error = rf64(&b);
	rec->error.blocks_processed = r64(&b);
	rec->error.rel_rms_pct = rf64(&b);
	rec->error.sqnr_db = rf64(&b);
	rec->dist.mean = rf64(&b);
	rec->dist.std = rf64(&b);
	rec->dist.min_val = rf64(&b);
	rec->dist.max_val = rf64(&b);
	rec->dist.dynamic_range = rf64(&b);
	rec->dist.sparsity = rf64(&b);
	rec->dist.count = r64(&b);
	rec->dist.nonfinite = r64(&b);
	assert(b.n == len - 8);

	if (rec->id == 0)
		return ts__err(TS_ECORRUPT, "tensor id 0 is invalid");
	if ((unsigned)rec->source_dtype >= TS_DTYPE_COUNT)
		return ts__err(TS_ECORRUPT, "unknown source dtype %u", (unsigned)rec->source_dtype);
	if (rec->codec.symmetric > 1)
		return ts__err(TS_ECORRUPT, "symmetric flag %d is not 0 or 1", rec->codec.symmetric);
	rc = check_codec(rec);
	if (rc < 0)
		return rc;
	if (!isfinite(rec->tensor_scale) || rec->tensor_scale < 0)
		return ts__err(TS_ECORRUPT, "tensor scale %g is not a finite non-negative number",
			       (double)rec->tensor_scale);
	if (!(rec->amax >= 0) || !isfinite(rec->amax))
		return ts__err(TS_ECORRUPT, "amax %g is not a finite non-negative number",
			       (double)rec->amax);
	return check_geometry(rec);
}

static void xor_le64(uint8_t *p, uint64_t v)
{
	ts__put_le64(p, ts__get_le64(p) ^ v);
}

size_t ts__tensor_rec_encode_named(const ts__tensor_rec *rec, const char *name, size_t name_len,
				   uint8_t *buf, size_t cap)
{
	size_t n = ts__tensor_rec_encode(rec, buf, cap);

	if (n >= 8)
		xor_le64(buf + n - 8, XXH3_64bits(name, name_len));
	return n;
}

int ts__tensor_rec_decode_named(ts__tensor_rec *rec, const char *name, size_t name_len,
				const void *buf, size_t len)
{
	uint8_t tmp[TS_RECORD_MAX];

	/* A length no record can have fails in ts__tensor_rec_decode() before any checksum. */
	if (len < 8 || len > sizeof(tmp))
		return ts__tensor_rec_decode(rec, buf, len);
	memcpy(tmp, buf, len); /* never write into LMDB's map */
	xor_le64(tmp + len - 8, XXH3_64bits(name, name_len));
	return ts__tensor_rec_decode(rec, tmp, len);
}

int ts__tensor_may_write(ts_store *st, MDB_txn *txn, const char *name, int replace)
{
	MDB_val key = {strlen(name), (void *)name}, val;
	int rc;

	if (replace)
		return 0;
	rc = mdb_get(txn, st->dbi_tensors, &key, &val);
	if (rc == 0)
		return ts__err(TS_EEXIST, "tensor '%s' exists (TS_WRITE_REPLACE not set)", name);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int ts__tensor_lookup(ts_store *st, MDB_txn *txn, const char *name, ts__tensor_rec *out)
{
	MDB_val key, val;
	size_t n;
	int rc;

	if (!name)
		return ts__err(TS_EINVAL, "tensor name is NULL");
	n = strlen(name);
	if (n == 0 || n > TS_MAX_NAME)
		return ts__err(TS_ENOTFOUND, "no tensor named '%.64s'%s (names are 1..%d bytes)", name,
			       n > 64 ? "..." : "", TS_MAX_NAME);
	key.mv_data = (void *)name;
	key.mv_size = n;
	rc = ts__lmdb_check_key(st, txn, "tensors", name, n);
	if (rc < 0)
		return ts__err_wrap(rc, "looking up tensor '%s'", name);
	rc = mdb_get(txn, st->dbi_tensors, &key, &val);
	if (rc == MDB_NOTFOUND)
		return ts__err(TS_ENOTFOUND, "no tensor named '%s'", name);
	if (rc)
		return ts__err_from_mdb(rc, name);
	rc = ts__tensor_rec_decode_named(out, name, n, val.mv_data, val.mv_size);
	if (rc < 0)
		return ts__err_wrap(rc, "record of tensor '%s'", name);
	return 0;
}

void ts__tensor_rec_to_info(const ts__tensor_rec *rec, ts_tensor_info *out)
{
	memset(out, 0, sizeof(*out));
	out->ndim = rec->ndim;
	for (int i = 0; i < rec->ndim && i < TS_MAX_DIMS; i++)
		out->shape[i] = rec->shape[i];
	out->source_dtype = rec->source_dtype;
	out->codec = rec->codec;
	out->amax = rec->amax;
	out->tensor_scale = rec->tensor_scale;
	out->tile_rows = rec->tile_rows;
	out->tile_cols = rec->tile_cols;
	out->page_count = rec->page_count;
	out->stored_bytes = rec->stored_bytes;
	out->source_bytes = ts__shape_elements(rec->ndim, rec->shape) *
			    (uint64_t)ts_dtype_size(rec->source_dtype);
	out->error = rec->error;
	out->dist = rec->dist;
	out->id = rec->id;
}

TS_API int ts_tensor_info_get(ts_tensor_info *out, ts_store *st, const char *name)
{
	ts__tensor_rec rec;
	MDB_txn *txn;
	int rc;

	if (!st || !name || !out)
		return ts__err(TS_EINVAL, "ts_tensor_info_get: %s is NULL",
			       !st ? "store" : !name ? "name" : "out");
	rc = ts__txn_begin_read(st, &txn);
	if (rc < 0)
		return rc;
	rc = ts__tensor_lookup(st, txn, name, &rec);
	ts__txn_abort(st, txn);
	if (rc < 0)
		return rc;
	ts__tensor_rec_to_info(&rec, out);
	return 0;
}

/* ts_tensor_foreach reads names in batches, each in a short read transaction, so that a slow
 * callback never pins LMDB's pages (which would stop reuse of freed pages and grow the file). */
#define FOREACH_BATCH 64

typedef struct foreach_item {
	char name[TS_MAX_NAME + 1];
	ts__tensor_rec rec;
	int rc;
	char err[256];
} foreach_item;

TS_API int ts_tensor_foreach(ts_store *st,
			     int (*cb)(void *ud, const char *name, const ts_tensor_info *info),
			     void *ud)
{
	foreach_item *items;
	char last[TS_MAX_NAME + 1];
	size_t last_len = 0, checked_txnid = (size_t)-1;
	int have_last = 0, rc = 0;

	if (!st || !cb)
		return ts__err(TS_EINVAL, "ts_tensor_foreach: %s is NULL", !st ? "store" : "callback");
	items = malloc(sizeof(*items) * FOREACH_BATCH);
	if (!items)
		return ts__err(TS_ENOMEM, "ts_tensor_foreach: out of memory");
	for (;;) {
		MDB_txn *txn;
		MDB_cursor *cur;
		MDB_val key, val;
		int n = 0, mrc;

		rc = ts__txn_begin_read(st, &txn);
		if (rc < 0)
			break;
		if (mdb_txn_id(txn) != checked_txnid) { /* LMDB's pages, before the cursor */
			rc = ts__lmdb_check_tree(st, txn, "tensors");
			if (rc < 0) {
				ts__txn_abort(st, txn);
				rc = ts__err_wrap(rc, "listing tensors");
				break;
			}
			checked_txnid = mdb_txn_id(txn);
		}
		mrc = mdb_cursor_open(txn, st->dbi_tensors, &cur);
		if (mrc) {
			ts__txn_abort(st, txn);
			rc = ts__err_from_mdb(mrc, "listing tensors");
			break;
		}
		if (have_last) {
			key.mv_data = last;
			key.mv_size = last_len;
			mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
			if (mrc == 0 && key.mv_size == last_len && !memcmp(key.mv_data, last, last_len))
				mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
		} else {
			mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
		}
		while (mrc == 0 && n < FOREACH_BATCH) {
			foreach_item *it = &items[n];
			if (key.mv_size > 0 &&
			    *(const unsigned char *)key.mv_data == TS_RESERVED_KEY_BYTE) {
				mrc = MDB_NOTFOUND; /* attachments sort last: no tensor follows */
				break;
			}
			if (key.mv_size == 0 || key.mv_size > TS_MAX_NAME ||
			    memchr(key.mv_data, 0, key.mv_size)) {
				mrc = MDB_CORRUPTED;
				break;
			}
			memcpy(it->name, key.mv_data, key.mv_size);
			it->name[key.mv_size] = '\0';
			it->rc = ts__tensor_rec_decode_named(&it->rec, it->name, key.mv_size,
							     val.mv_data, val.mv_size);
			if (it->rc < 0)
				snprintf(it->err, sizeof(it->err), "%s", ts_error_last());
			n++;
			mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
		}
		mdb_cursor_close(cur);
		ts__txn_abort(st, txn);
		if (mrc && mrc != MDB_NOTFOUND) {
			rc = mrc == MDB_CORRUPTED
				     ? ts__err(TS_ECORRUPT, "tensors database holds a malformed name")
				     : ts__err_from_mdb(mrc, "listing tensors");
			break;
		}
		for (int i = 0; i < n && rc == 0; i++) {
			ts_tensor_info info;
			if (items[i].rc < 0) {
				rc = ts__err(items[i].rc, "record of tensor '%s': %s", items[i].name,
					     items[i].err);
				break;
			}
			ts__tensor_rec_to_info(&items[i].rec, &info);
			rc = cb(ud, items[i].name, &info);
		}
		if (rc || n < FOREACH_BATCH || mrc == MDB_NOTFOUND)
			break;
		last_len = strlen(items[n - 1].name);
		memcpy(last, items[n - 1].name, last_len + 1);
		have_last = 1;
	}
	free(items);
	return rc;
}
