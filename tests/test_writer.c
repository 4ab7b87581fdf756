/*
 * Tests of the streaming writer (engine/writer.c): every codec round-trips through the store
 * (pages decoded here with ts_codec_decode and compared against a one-shot encoding of the whole
 * tensor, and read back with ts_read_slice whole and as random hyperslabs), statistics, chunking that does not change a byte, atomic visibility, interrupted
 * writes and their cleanup, replace and delete, pre-encoded rows, bounded memory, and the
 * errors a caller can act on.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "engine/format.h"
#include "engine/geometry.h"
#include "engine/handle.h"
#include "engine/page.h"
#include "engine/record.h"
#include "engine/txn.h"
#include "storetest.h"

/* Read tensor @p name back by fetching each page with LMDB and decoding it with the codec:
 * a reader written from docs/FORMAT.md, independent of engine/reader.c. */
static float *read_back(ts_store *st, const char *name, ts__tensor_rec *rec_out)
{
	MDB_txn *txn;
	ts__tensor_rec rec;
	cr_assert_eq(ts__txn_begin_read(st, &txn), 0);
	cr_assert_eq(ts__tensor_lookup(st, txn, name, &rec), 0, "%s", ts_error_last());
	float *out = malloc((rec.rows * rec.cols + 1) * sizeof(float));
	for (uint64_t p = 0; p < rec.page_count; p++) {
		uint8_t kb[16];
		MDB_val k = {16, kb}, v;
		uint64_t r0, nr, c0, nc;
		ts__page_key(kb, rec.id, p);
		cr_assert_eq(mdb_get(txn, st->dbi_pages, &k, &v), 0, "page %llu missing",
			     (unsigned long long)p);
		cr_assert_eq(ts__page_verify(v.mv_data, v.mv_size, &rec, name, p), 0, "%s",
			     ts_error_last());
		ts__geometry_page_rect(&rec, p, &r0, &nr, &c0, &nc);
		cr_assert_eq(ts_codec_decode(&rec.codec, rec.tensor_scale,
					     (const uint8_t *)v.mv_data + TS_PAGE_HEADER_SIZE,
					     v.mv_size - TS_PAGE_HEADER_SIZE, nr, nc, TS_F32,
					     out + r0 * rec.cols + c0, rec.cols),
			     0, "%s", ts_error_last());
	}
	ts__txn_abort(st, txn);
	if (rec_out)
		*rec_out = rec;
	return out;
}

/* The whole tensor encoded and decoded in one shot by the codec. */
static float *one_shot(const ts_codec_config *cfg, const float *x, uint64_t rows, uint64_t cols,
		       float amax)
{
	size_t n = ts_codec_encoded_size(cfg, rows, cols);
	uint8_t *enc = malloc(n + 1);
	float *out = malloc((rows * cols + 1) * sizeof(float));
	cr_assert_eq(ts_codec_encode_len(&n, cfg, amax, x, TS_F32, cols, rows, cols, enc, n), 0,
		     "%s", ts_error_last());
	cr_assert_eq(ts_codec_decode(cfg, ts_codec_tensor_scale(cfg, amax), enc, n, rows, cols,
				     TS_F32, out, cols),
		     0, "%s", ts_error_last());
	free(enc);
	return out;
}

static ts_codec_config cfg_of(ts_codec c)
{
	ts_codec_config cfg = ts_codec_config_default(c);
	if (c == TS_CODEC_RAW || c == TS_CODEC_LOSSLESS) {
		cfg.raw_dtype = TS_F32;
		cfg.bits_per_value = 32;
	}
	return cfg;
}

static void write_chunked(ts_store *st, const char *name, int ndim, const uint64_t *shape,
			  const ts_codec_config *cfg, const float *x, size_t chunk,
			  uint64_t page_bytes, unsigned flags)
{
	ts_write_opts o;
	ts_writer *w;
	uint64_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= shape[i];
	ts_write_opts_init(&o);
	o.flags = flags;
	o.amax = st_amax(x, n);
	o.page_bytes = page_bytes;
	cr_assert_eq(ts_writer_begin(&w, st, name, TS_F32, ndim, shape, cfg, &o), 0, "%s",
		     ts_error_last());
	for (uint64_t i = 0; i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;
		cr_assert_eq(ts_writer_append(w, x + i, k * 4), 0, "%s", ts_error_last());
	}
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
}

Test(writer, every_codec_round_trips_through_the_pages)
{
	uint64_t seed = st_seed("writer.round_trip");
	ts_store *st = st_create("rt.tst", 2);
	static const ts_codec codecs[] = {TS_CODEC_RAW, TS_CODEC_NVFP4, TS_CODEC_MXFP4,
					  TS_CODEC_INT8, TS_CODEC_FP8};
	static const uint64_t shapes[][3] = {{1, 1, 1}, {1, 1, 17}, {3, 33, 15}, {1, 300, 1000},
					     {2, 97, 2100}};
	for (size_t c = 0; c < 5; c++) {
		for (size_t s = 0; s < 5; s++) {
			uint64_t rows = shapes[s][0] * shapes[s][1], cols = shapes[s][2];
			float *x = malloc(rows * cols * 4);
			st_fill_f32(x, rows * cols, &seed, 0.02f);
			ts_codec_config cfg = cfg_of(codecs[c]);
			char name[64];
			snprintf(name, sizeof(name), "%s.%zu", ts_codec_name(codecs[c]), s);
			/* small pages so that even these tensors span many pages */
			write_chunked(st, name, 3, shapes[s], &cfg, x, 4099, 4080, 0);
			ts__tensor_rec rec;
			float *got = read_back(st, name, &rec);
			float *want = one_shot(&cfg, x, rows, cols, st_amax(x, rows * cols));
			for (uint64_t i = 0; i < rows * cols; i++)
				cr_assert_eq(got[i], want[i], "%s element %llu: %g != %g", name,
					     (unsigned long long)i, got[i], want[i]);
			if (codecs[c] == TS_CODEC_RAW)
				cr_assert_eq(memcmp(got, x, rows * cols * 4), 0);
			/* the read path gives the same values, whole and as a random hyperslab */
			float *viaread = malloc(rows * cols * 4 + 4);
			uint64_t zero[3] = {0, 0, 0};
			cr_assert_eq(ts_read_slice(st, name, 3, zero, shapes[s], TS_F32, viaread,
						   rows * cols * 4), 0, "%s: %s", name, ts_error_last());
			cr_assert_eq(memcmp(viaread, want, rows * cols * 4), 0, "%s via ts_read_slice",
				     name);
			uint64_t start[3], count[3];
			for (int d = 0; d < 3; d++) {
				start[d] = st_rand(&seed) % shapes[s][d];
				count[d] = 1 + st_rand(&seed) % (shapes[s][d] - start[d]);
			}
			cr_assert_eq(ts_read_slice(st, name, 3, start, count, TS_F32, viaread,
						   count[0] * count[1] * count[2] * 4), 0, "%s: %s", name,
				     ts_error_last());
			uint64_t k = 0;
			for (uint64_t a = 0; a < count[0]; a++)
				for (uint64_t b = 0; b < count[1]; b++)
					for (uint64_t e = 0; e < count[2]; e++, k++) {
						uint64_t at = ((start[0] + a) * shapes[s][1] + start[1] + b) *
								      cols + start[2] + e;
						cr_assert_eq(viaread[k], want[at], "%s slice element %llu",
							     name, (unsigned long long)k);
					}
			free(viaread);
			/* statistics computed here from the one-shot decode */
			double e2 = 0, x2 = 0, sum = 0, mx = -INFINITY;
			for (uint64_t i = 0; i < rows * cols; i++) {
				double d = (double)x[i] - want[i];
				e2 += d * d;
				x2 += (double)x[i] * x[i];
				sum += x[i];
				if (x[i] > mx)
					mx = x[i];
			}
			double rel = x2 > 0 ? 100.0 * sqrt(e2 / x2) : 0;
			cr_expect(fabs(rec.error.rel_rms_pct - rel) <= 1e-6 * (1 + rel), "%s: %g vs %g",
				  name, rec.error.rel_rms_pct, rel);
			cr_expect(fabs(rec.dist.mean - sum / (double)(rows * cols)) < 1e-6);
			cr_expect_eq(rec.dist.max_val, mx);
			cr_expect_eq(rec.dist.count, rows * cols);
			cr_expect_eq(rec.error.original_bytes, rows * cols * 4);
			uint64_t stored = 0;
			for (uint64_t p = 0; p < rec.page_count; p++) {
				uint64_t r0, nr, c0, nc;
				ts__geometry_page_rect(&rec, p, &r0, &nr, &c0, &nc);
				stored += ts_codec_encoded_size(&cfg, nr, nc);
			}
			cr_expect_eq(rec.stored_bytes, stored);
			free(x);
			free(got);
			free(want);
		}
	}
	uint64_t problems = 1;
	cr_expect_eq(ts_store_check(&problems, st, NULL), 0);
	cr_expect_eq(problems, 0);
	ts_store_close(st);
}

/* Dump the tensors and pages databases of a store file, byte for byte. */
static uint8_t *dump(const char *path, size_t *len)
{
	MDB_env *env;
	MDB_txn *txn;
	size_t cap = 1 << 20, n = 0;
	uint8_t *out = malloc(cap);
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	for (const char *const *db = (const char *const[]){"tensors", "pages", "pending", NULL}; *db;
	     db++) {
		MDB_dbi dbi;
		MDB_cursor *cur;
		MDB_val k, v;
		cr_assert_eq(mdb_dbi_open(txn, *db, 0, &dbi), 0);
		cr_assert_eq(mdb_cursor_open(txn, dbi, &cur), 0);
		for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			while (n + k.mv_size + v.mv_size + 16 > cap)
				out = realloc(out, cap *= 2);
			memcpy(out + n, &k.mv_size, 8);
			memcpy(out + n + 8, k.mv_data, k.mv_size);
			n += 8 + k.mv_size;
			memcpy(out + n, &v.mv_size, 8);
			memcpy(out + n + 8, v.mv_data, v.mv_size);
			n += 8 + v.mv_size;
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	*len = n;
	return out;
}

Test(writer, chunk_sizes_do_not_change_a_byte)
{
	uint64_t seed = st_seed("writer.chunks");
	uint64_t shape[2] = {61, 333};
	size_t n = 61 * 333;
	float *x = malloc(n * 4);
	st_fill_f32(x, n, &seed, 1.0f);
	static const size_t chunks[] = {1, 7, 333, 1000, 20313};
	uint8_t *first = NULL;
	size_t first_len = 0;
	for (size_t c = 0; c < 5; c++) {
		char name[32];
		snprintf(name, sizeof(name), "c%zu.tst", c);
		ts_store *st = st_create(name, 2);
		for (ts_codec k = TS_CODEC_RAW; k < TS_CODEC_COUNT; k++) {
			ts_codec_config cfg = cfg_of(k);
			write_chunked(st, ts_codec_name(k), 2, shape, &cfg, x, chunks[c], 4080, 0);
		}
		ts_store_close(st);
		size_t len;
		uint8_t *d = dump(st_path(name), &len);
		if (!first) {
			first = d;
			first_len = len;
			continue;
		}
		cr_expect_eq(len, first_len, "chunk %zu", chunks[c]);
		cr_expect_eq(memcmp(d, first, len < first_len ? len : first_len), 0, "chunk %zu",
			     chunks[c]);
		free(d);
	}
	free(first);
	free(x);
}

Test(writer, shapes_of_every_rank_and_empty_tensors)
{
	ts_store *st = st_create("ranks.tst", 1);
	ts_codec_config raw = cfg_of(TS_CODEC_RAW);
	float x[120];
	for (int i = 0; i < 120; i++)
		x[i] = (float)i - 60.0f;
	uint64_t s4[4] = {2, 3, 4, 5}, s0[1] = {0}, s2[2] = {5, 0};
	ts_tensor_info info;
	st_write_f32(st, "scalar", 0, NULL, &raw, x, 0);
	st_write_f32(st, "r4", 4, s4, &raw, x, 0);
	st_write_f32(st, "empty", 1, s0, &raw, x, 0);
	st_write_f32(st, "empty2", 2, s2, &raw, x, 0);
	cr_assert_eq(ts_tensor_info_get(&info, st, "scalar"), 0);
	cr_expect_eq(info.ndim, 0);
	cr_expect_eq(info.page_count, 1);
	cr_assert_eq(ts_tensor_info_get(&info, st, "r4"), 0);
	cr_expect_eq(info.ndim, 4);
	cr_expect_eq(info.shape[3], 5);
	cr_expect_eq(info.source_bytes, 480);
	cr_expect_eq(info.dist.min_val, -60.0);
	cr_expect_eq(info.dist.max_val, 59.0);
	cr_expect_eq(info.amax, 60.0f);
	float *back = read_back(st, "r4", NULL);
	cr_expect_eq(memcmp(back, x, 480), 0);
	free(back);
	cr_assert_eq(ts_tensor_info_get(&info, st, "empty"), 0);
	cr_expect_eq(info.page_count, 0);
	cr_assert_eq(ts_tensor_info_get(&info, st, "empty2"), 0);
	cr_expect_eq(info.shape[1], 0);
	ts_store_close(st);
}

Test(writer, raw_integer_tensors_are_stored_as_they_are)
{
	ts_store *st = st_create("int.tst", 1);
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	raw.raw_dtype = TS_I64;
	raw.bits_per_value = 64;
	int64_t v[300];
	for (int i = 0; i < 300; i++)
		v[i] = (int64_t)i * 1000000007ll - 5;
	uint64_t shape[2] = {3, 100};
	ts_writer *w;
	cr_assert_eq(ts_writer_begin(&w, st, "ids", TS_I64, 2, shape, &raw, NULL), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_writer_append(w, v, sizeof(v)), 0, "%s", ts_error_last());
	ts_tensor_info info;
	cr_assert_eq(ts_writer_commit(&info, w), 0, "%s", ts_error_last());
	cr_expect_eq(info.stored_bytes, sizeof(v));
	cr_expect_eq(info.dist.count, 300);
	MDB_txn *txn;
	uint8_t kb[16];
	MDB_val k = {16, kb}, val;
	cr_assert_eq(ts__txn_begin_read(st, &txn), 0);
	ts__page_key(kb, info.id, 0);
	cr_assert_eq(mdb_get(txn, st->dbi_pages, &k, &val), 0);
	cr_expect_eq(val.mv_size, 40 + sizeof(v));
	cr_expect_eq(memcmp((uint8_t *)val.mv_data + 40, v, sizeof(v)), 0);
	ts__txn_abort(st, txn);
	ts_store_close(st);
}

Test(writer, nothing_is_visible_until_commit_and_abort_leaves_nothing)
{
	uint64_t seed = st_seed("writer.visibility");
	ts_store *st = st_create("vis.tst", 2);
	size_t n = 3 << 20; /* 12 MiB raw: several batches are committed before the end */
	float *x = malloc(n * 4);
	st_fill_f32(x, n, &seed, 1.0f);
	uint64_t shape[2] = {3072, 1024};
	ts_codec_config raw = cfg_of(TS_CODEC_RAW);
	ts_writer *w;
	ts_tensor_info info;
	cr_assert_eq(ts_writer_begin(&w, st, "t", TS_F32, 2, shape, &raw, NULL), 0);
	cr_assert_eq(ts_writer_append(w, x, n * 2), 0, "%s", ts_error_last()); /* half */
	cr_expect_eq(ts_tensor_info_get(&info, st, "t"), TS_ENOTFOUND);
	uint64_t problems = 0;
	cr_expect_eq(ts_store_check(&problems, st, NULL), 0);
	cr_expect_eq(problems, 1, "the write in progress shows as unfinished");
	ts_writer *w2;
	cr_expect_eq(ts_writer_begin(&w2, st, "u", TS_F32, 2, shape, &raw, NULL), TS_EBUSY);
	ts_writer_abort(w);
	cr_expect_eq(ts_tensor_info_get(&info, st, "t"), TS_ENOTFOUND);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("vis.tst"), "pages"), 0);
	cr_expect_eq(st_raw_count(st_path("vis.tst"), "pending"), 0);
	free(x);
}

Test(writer, an_interrupted_write_leaves_nothing_visible_and_is_cleaned)
{
	uint64_t seed = st_seed("writer.interrupted");
	ts_store *st = st_create("int.tst", 1);
	ts_codec_config raw = cfg_of(TS_CODEC_RAW);
	float keep[64];
	st_fill_f32(keep, 64, &seed, 1.0f);
	uint64_t s1[1] = {64};
	st_write_f32(st, "keep", 1, s1, &raw, keep, 0);
	ts_store_close(st);

	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* the child writes 8 MiB of a 12 MiB tensor, then dies without a word */
		ts_store *cst = st_create("int.tst", 1);
		size_t n = 2 << 20;
		float *x = malloc(n * 4);
		st_fill_f32(x, n, &seed, 1.0f);
		uint64_t shape[2] = {3072, 1024};
		ts_writer *w;
		if (ts_writer_begin(&w, cst, "lost", TS_F32, 2, shape, &raw, NULL) ||
		    ts_writer_append(w, x, n * 4))
			_exit(3);
		kill(getpid(), SIGKILL);
	}
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFSIGNALED(status), "child status %d", status);

	cr_expect_gt(st_raw_count(st_path("int.tst"), "pages"), 1, "pages were committed");
	cr_expect_eq(st_raw_count(st_path("int.tst"), "pending"), 1);
	ts_store *ro;
	ts_tensor_info info;
	cr_assert_eq(ts_store_open(&ro, st_path("int.tst"), NULL), 0);
	cr_expect_eq(ts_tensor_info_get(&info, ro, "lost"), TS_ENOTFOUND);
	float one;
	uint64_t z2[2] = {0, 0}, c2[2] = {1, 1};
	cr_expect_eq(ts_read_slice(ro, "lost", 2, z2, c2, TS_F32, &one, 4), TS_ENOTFOUND);
	cr_expect_eq(ts_tensor_info_get(&info, ro, "keep"), 0);
	ts_store_close(ro);

	st = st_create("int.tst", 1); /* opening for writing cleans up */
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("int.tst"), "pages"), 1, "only 'keep' remains");
	cr_expect_eq(st_raw_count(st_path("int.tst"), "pending"), 0);
}

Test(writer, replace_and_delete)
{
	uint64_t seed = st_seed("writer.replace");
	ts_store *st = st_create("rep.tst", 2);
	ts_codec_config raw = cfg_of(TS_CODEC_RAW);
	size_t n = 100000;
	float *a = malloc(n * 4), *b = malloc(n * 4);
	st_fill_f32(a, n, &seed, 1.0f);
	st_fill_f32(b, n, &seed, 2.0f);
	uint64_t shape[2] = {100, 1000};
	st_write_f32(st, "w", 2, shape, &raw, a, 0);
	ts_tensor_info i1, i2;
	cr_assert_eq(ts_tensor_info_get(&i1, st, "w"), 0);
	ts_writer *w;
	cr_expect_eq(ts_writer_begin(&w, st, "w", TS_F32, 2, shape, &raw, NULL), TS_EEXIST);
	st_write_f32(st, "w", 2, shape, &raw, b, TS_WRITE_REPLACE);
	cr_assert_eq(ts_tensor_info_get(&i2, st, "w"), 0);
	cr_expect_neq(i1.id, i2.id, "a replaced tensor gets a new id");
	float *got = read_back(st, "w", NULL);
	cr_expect_eq(memcmp(got, b, n * 4), 0);
	free(got);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("rep.tst"), "pages"), i2.page_count, "old pages gone");

	st = st_create("rep.tst", 1);
	cr_expect_eq(ts_tensor_delete(st, "w"), 0, "%s", ts_error_last());
	cr_expect_eq(ts_tensor_info_get(&i2, st, "w"), TS_ENOTFOUND);
	cr_expect_eq(ts_tensor_delete(st, "w"), TS_ENOTFOUND);
	cr_expect_eq(ts_tensor_delete(st, ""), TS_ENOTFOUND);
	/* a deleted name can be written again, with a fresh id */
	st_write_f32(st, "w", 2, shape, &raw, a, 0);
	cr_assert_eq(ts_tensor_info_get(&i1, st, "w"), 0);
	cr_expect_gt(i1.id, i2.id);
	ts_store_close(st);
	cr_expect_eq(st_raw_count(st_path("rep.tst"), "pages"), i1.page_count);
	free(a);
	free(b);
}

Test(writer, pre_encoded_rows_give_the_same_pages)
{
	uint64_t seed = st_seed("writer.encoded");
	static const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_MXFP4, TS_CODEC_FP8};
	uint64_t rows = 300, cols = 2000, shape[2] = {300, 2000};
	float *x = malloc(rows * cols * 4);
	st_fill_f32(x, rows * cols, &seed, 0.05f);
	float amax = st_amax(x, rows * cols);
	ts_store *a = st_create("plain.tst", 2), *b = st_create("enc.tst", 2);
	for (size_t c = 0; c < 3; c++) {
		ts_codec_config cfg = cfg_of(codecs[c]);
		write_chunked(a, ts_codec_name(codecs[c]), 2, shape, &cfg, x, 77777, 0, 0);
		size_t n = ts_codec_encoded_size(&cfg, rows, cols);
		uint8_t *enc = malloc(n);
		cr_assert_eq(ts_codec_encode(&cfg, amax, x, TS_F32, cols, rows, cols, enc, n), 0);
		uint64_t nb = (cols + cfg.block_size - 1) / cfg.block_size;
		size_t crow = nb * cfg.block_size * cfg.bits_per_value / 8;
		size_t srow = codecs[c] == TS_CODEC_FP8 ? 0 : nb;
		cr_assert_eq(crow * rows + srow * rows, n);
		ts_write_opts o;
		ts_writer *w;
		ts_write_opts_init(&o);
		o.flags = TS_WRITE_ENCODED;
		o.amax = amax;
		cr_assert_eq(ts_writer_begin(&w, b, ts_codec_name(codecs[c]), TS_F32, 2, shape, &cfg,
					     &o), 0, "%s", ts_error_last());
		for (uint64_t r = 0; r < rows; r += 37) {
			uint64_t k = rows - r < 37 ? rows - r : 37;
			cr_assert_eq(ts_writer_append_encoded(w, enc + r * crow, k * crow,
							      srow ? enc + rows * crow + r * srow : NULL,
							      k * srow, k),
				     0, "%s", ts_error_last());
		}
		cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
		free(enc);
	}
	/* pages are byte-identical (same ids, same geometry, same codes) */
	MDB_txn *ta, *tb;
	cr_assert_eq(ts__txn_begin_read(a, &ta), 0);
	cr_assert_eq(ts__txn_begin_read(b, &tb), 0);
	MDB_cursor *ca, *cb;
	MDB_val ka, va, kb, vb;
	cr_assert_eq(mdb_cursor_open(ta, a->dbi_pages, &ca), 0);
	cr_assert_eq(mdb_cursor_open(tb, b->dbi_pages, &cb), 0);
	int ra = mdb_cursor_get(ca, &ka, &va, MDB_FIRST), rb = mdb_cursor_get(cb, &kb, &vb, MDB_FIRST);
	uint64_t pages = 0;
	while (ra == 0 && rb == 0) {
		cr_assert_eq(ka.mv_size, kb.mv_size);
		cr_assert_eq(memcmp(ka.mv_data, kb.mv_data, ka.mv_size), 0);
		cr_assert_eq(va.mv_size, vb.mv_size);
		cr_assert_eq(memcmp(va.mv_data, vb.mv_data, va.mv_size), 0, "page %llu",
			     (unsigned long long)pages);
		pages++;
		ra = mdb_cursor_get(ca, &ka, &va, MDB_NEXT);
		rb = mdb_cursor_get(cb, &kb, &vb, MDB_NEXT);
	}
	cr_expect_eq(ra, MDB_NOTFOUND);
	cr_expect_eq(rb, MDB_NOTFOUND);
	cr_expect_gt(pages, 3);
	mdb_cursor_close(ca);
	mdb_cursor_close(cb);
	ts__txn_abort(a, ta);
	ts__txn_abort(b, tb);
	ts_tensor_info info;
	cr_assert_eq(ts_tensor_info_get(&info, b, "nvfp4"), 0);
	cr_expect(isnan(info.error.rel_rms_pct), "no source: the error is unknown");
	cr_expect_eq(info.amax, amax);
	ts_store_close(a);
	ts_store_close(b);
	free(x);
}

Test(writer, an_explicit_tensor_scale_is_kept_bit_for_bit)
{
	ts_store *st = st_create("ts.tst", 1);
	ts_codec_config cfg = cfg_of(TS_CODEC_NVFP4);
	uint64_t shape[2] = {2, 32};
	uint8_t codes[2 * 16] = {0x12, 0x34}, scales[2 * 2] = {0x38, 0x38, 0x40, 0x30};
	ts_write_opts o;
	ts_writer *w;
	ts_write_opts_init(&o);
	o.flags = TS_WRITE_ENCODED;
	o.tensor_scale = 0.0013020834f; /* as a ModelOpt weight_scale_2 might hold it */
	cr_assert_eq(ts_writer_begin(&w, st, "q", TS_BF16, 2, shape, &cfg, &o), 0, "%s",
		     ts_error_last());
	cr_expect_eq(ts_writer_append_encoded(w, codes, 32, scales, 3, 2), TS_EINVAL);
	cr_assert_eq(ts_writer_append_encoded(w, codes, 32, scales, 4, 2), 0, "%s",
		     ts_error_last());
	cr_expect_eq(ts_writer_append_encoded(w, codes, 16, scales, 2, 1), TS_ERANGE);
	ts_tensor_info info;
	cr_assert_eq(ts_writer_commit(&info, w), 0, "%s", ts_error_last());
	cr_expect_eq(info.tensor_scale, 0.0013020834f);
	cr_expect_eq(info.source_bytes, 2 * 32 * 2);
	ts_store_close(st);
}

Test(writer, caller_mistakes_get_clear_errors)
{
	ts_store *st = st_create("err.tst", 1);
	ts_codec_config nv = cfg_of(TS_CODEC_NVFP4), raw = cfg_of(TS_CODEC_RAW);
	uint64_t shape[2] = {4, 32};
	ts_writer *w;
	ts_write_opts o;
	ts_write_opts_init(&o);
	cr_expect(isnan(o.amax));
	cr_expect_eq(ts_writer_begin(&w, st, "a", TS_F32, 2, shape, &nv, &o), TS_EINVAL,
		     "nvfp4 without amax");
	cr_expect(strstr(ts_error_last(), "amax"), "%s", ts_error_last());
	o.amax = INFINITY;
	cr_expect_eq(ts_writer_begin(&w, st, "a", TS_F32, 2, shape, &nv, &o), TS_EINVAL);
	o.amax = 1.0f;
	cr_expect_eq(ts_writer_begin(&w, st, "a", TS_I32, 2, shape, &nv, &o), TS_EDTYPE);
	cr_expect_eq(ts_writer_begin(&w, st, "a", TS_BF16, 2, shape, &raw, &o), TS_EDTYPE);
	cr_expect_eq(ts_writer_begin(&w, st, "", TS_F32, 2, shape, &nv, &o), TS_EINVAL);
	char longname[TS_MAX_NAME + 2];
	memset(longname, 'x', sizeof(longname));
	longname[TS_MAX_NAME + 1] = 0;
	cr_expect_eq(ts_writer_begin(&w, st, longname, TS_F32, 2, shape, &nv, &o), TS_EINVAL);
	cr_expect_eq(ts_writer_begin(&w, st, "a", TS_F32, 9, shape, &nv, &o), TS_EINVAL);
	uint64_t huge[3] = {1ull << 30, 1ull << 30, 1ull << 30};
	cr_expect_eq(ts_writer_begin(&w, st, "a", TS_F32, 3, huge, &nv, &o), TS_EINVAL);
	ts_codec_config bad = nv;
	bad.block_size = 7;
	cr_expect_eq(ts_writer_begin(&w, st, "a", TS_F32, 2, shape, &bad, &o), TS_EINVAL);
	o.page_bytes = 5000;
	cr_expect_eq(ts_writer_begin(&w, st, "a", TS_F32, 2, shape, &nv, &o), TS_EINVAL);
	o.page_bytes = 0;
	o.flags = TS_WRITE_ENCODED;
	cr_expect_eq(ts_writer_begin(&w, st, "a", TS_F32, 2, shape, &raw, &o), TS_ENOTSUP);
	o.flags = 0;

	/* too much data, too little data */
	float x[200] = {0};
	cr_assert_eq(ts_writer_begin(&w, st, "a", TS_F32, 2, shape, &nv, &o), 0);
	cr_expect_eq(ts_writer_append(w, x, 3), TS_EINVAL, "not whole elements");
	cr_expect_eq(ts_writer_append(w, x, 129 * 4), TS_ERANGE);
	cr_expect_eq(ts_writer_append(w, x, 100 * 4), 0);
	cr_expect_eq(ts_writer_commit(NULL, w), TS_EINVAL);
	cr_expect(strstr(ts_error_last(), "100 of its 128"), "%s", ts_error_last());
	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "a"), TS_ENOTFOUND);

	/* non-finite data for a lossy codec fails, and nothing becomes visible */
	x[77] = NAN;
	cr_assert_eq(ts_writer_begin(&w, st, "a", TS_F32, 2, shape, &nv, &o), 0);
	int rc = ts_writer_append(w, x, 128 * 4);
	if (rc == 0)
		rc = ts_writer_commit(NULL, w);
	else {
		cr_expect_eq(ts_writer_append(w, x, 4), TS_ENONFINITE, "the failure sticks");
		cr_expect_eq(ts_writer_commit(NULL, w), TS_ENONFINITE);
	}
	cr_expect_eq(rc, TS_ENONFINITE, "%s", ts_error_last());
	cr_expect(strstr(ts_error_last(), "'a'"), "%s", ts_error_last());
	cr_expect_eq(ts_tensor_info_get(&info, st, "a"), TS_ENOTFOUND);
	/* ... while a raw tensor keeps them */
	cr_assert_eq(ts_writer_begin(&w, st, "a", TS_F32, 2, shape, &raw, &o), 0);
	cr_assert_eq(ts_writer_append(w, x, 128 * 4), 0);
	cr_assert_eq(ts_writer_commit(&info, w), 0, "%s", ts_error_last());
	cr_expect_eq(info.dist.nonfinite, 1);
	ts_writer_abort(NULL);
	ts_store_close(st);
}

Test(writer, memory_stays_bounded_whatever_the_tensor_size, .timeout = 120)
{
#if defined(__SANITIZE_ADDRESS__)
	cr_skip_test("peak RSS says nothing under AddressSanitizer (its quarantine keeps freed memory)");
#endif
	uint64_t seed = st_seed("writer.memory");
	ts_store *st = st_create("mem.tst", 0);
	ts_codec_config nv = cfg_of(TS_CODEC_NVFP4);
	uint64_t rows = 16384, cols = 4096; /* 64M BF16 elements: 128 MiB of source */
	uint64_t shape[2] = {rows, cols};
	size_t chunk = 1 << 19;            /* 1 MiB of BF16 per append */
	uint16_t *buf = malloc(chunk * 2);
	for (size_t i = 0; i < chunk; i++)
		buf[i] = ts_f32_to_bf16((float)st_normal(&seed) * 0.02f);
	ts_write_opts o;
	ts_writer *w;
	ts_write_opts_init(&o);
	o.amax = 0.2f;
	st_peak_rss_reset();
	long before = st_peak_rss_kib();
	cr_assert_eq(ts_writer_begin(&w, st, "big", TS_BF16, 2, shape, &nv, &o), 0);
	for (uint64_t done = 0; done < rows * cols; done += chunk)
		cr_assert_eq(ts_writer_append(w, buf, chunk * 2), 0, "%s", ts_error_last());
	ts_tensor_info info;
	cr_assert_eq(ts_writer_commit(&info, w), 0, "%s", ts_error_last());
	long after = st_peak_rss_kib();
	fprintf(stderr, "writer.memory: peak RSS grew by %ld KiB writing %llu MiB of source\n",
		after - before, (unsigned long long)(rows * cols * 2 >> 20));
	cr_expect_lt(after - before, 48 * 1024, "peak grew by %ld KiB", after - before);
	cr_expect_eq(info.page_count, ((rows + 13) / 14) * 8); /* 4 KiB pages: 14 x 512 tiles */
	free(buf);
	ts_store_close(st);
}
