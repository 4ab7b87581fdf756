/*
 * Tests of ts_tensor_copy (engine/copy.c): a copy decodes to the original's values, with its
 * record (codec, geometry, statistics); it joins a write group; it honours TS_WRITE_REPLACE; a
 * damaged source page fails it with TS_ECORRUPT and leaves nothing in the destination; bad
 * arguments are refused.
 */
#include <criterion/criterion.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storetest.h"

static void tensor_f32(ts_store *st, const char *name, float *out, size_t n)
{
	ts_tensor_info ti;
	cr_assert_eq(ts_tensor_info_get(&ti, st, name), 0, "%s", ts_error_last());
	uint64_t start[TS_MAX_DIMS] = {0};
	cr_assert_eq(ts_read_slice(st, name, ti.ndim, start, ti.shape, TS_F32, out, n * 4), 0,
		     "%s", ts_error_last());
}

/* Flip one payload byte of the first page of the store file at @p path, with LMDB directly. */
static void damage_first_page(const char *path)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, v;
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	mdb_env_set_mapsize(env, 1ull << 30);
	cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOTLS, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "pages", 0, &dbi), 0);
	cr_assert_eq(mdb_cursor_open(txn, dbi, &c), 0);
	cr_assert_eq(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
	uint8_t *copy = malloc(v.mv_size);
	memcpy(copy, v.mv_data, v.mv_size);
	copy[v.mv_size - 1] ^= 0x40;
	MDB_val nv = {v.mv_size, copy};
	cr_assert_eq(mdb_cursor_put(c, &k, &nv, MDB_CURRENT), 0);
	mdb_cursor_close(c);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	free(copy);
}

Test(copy, copies_decode_to_the_original_values_with_its_record)
{
	uint64_t seed = st_seed("copy");
	enum { R = 300, C = 1000 };
	float *x = malloc(R * C * 4), *a = malloc(R * C * 4), *b = malloc(R * C * 4);
	uint64_t shape[2] = {R, C};
	const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_LOSSLESS, TS_CODEC_RAW,
				   TS_CODEC_INT8};
	ts_store *src = st_create("src.tst", 2), *dst = st_create("dst.tst", 2);
	st_fill_f32(x, R * C, &seed, 0.02f);
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		char name[32];
		ts_codec_config cfg = ts_codec_config_default(codecs[i]);
		if (codecs[i] == TS_CODEC_RAW || codecs[i] == TS_CODEC_LOSSLESS)
			cfg.raw_dtype = TS_F32, cfg.bits_per_value = 32;
		snprintf(name, sizeof(name), "t.%s", ts_codec_name(codecs[i]));
		st_write_f32(src, name, 2, shape, &cfg, x, 0);
		cr_assert_eq(ts_tensor_copy(dst, src, name, NULL), 0, "%s", ts_error_last());
		ts_tensor_info ia, ib;
		cr_assert_eq(ts_tensor_info_get(&ia, src, name), 0);
		cr_assert_eq(ts_tensor_info_get(&ib, dst, name), 0);
		cr_assert_eq(ia.codec.codec, ib.codec.codec);
		cr_assert_eq(ia.stored_bytes, ib.stored_bytes);
		cr_assert_eq(ia.page_count, ib.page_count);
		cr_assert(memcmp(&ia.error, &ib.error, sizeof(ia.error)) == 0, "%s: error stats", name);
		cr_assert(memcmp(&ia.dist, &ib.dist, sizeof(ia.dist)) == 0, "%s: distribution", name);
		cr_assert_eq(ia.amax, ib.amax);
		tensor_f32(src, name, a, R * C);
		tensor_f32(dst, name, b, R * C);
		cr_assert(memcmp(a, b, (size_t)R * C * 4) == 0, "%s: values differ", name);
	}
	/* a second copy of a name: TS_EEXIST, then replaced with TS_WRITE_REPLACE */
	cr_assert_eq(ts_tensor_copy(dst, src, "t.nvfp4", NULL), TS_EEXIST);
	ts_write_opts wo;
	ts_write_opts_init(&wo);
	wo.flags = TS_WRITE_REPLACE;
	cr_assert_eq(ts_tensor_copy(dst, src, "t.nvfp4", &wo), 0, "%s", ts_error_last());
	uint64_t problems = 1;
	cr_assert_eq(st_check(&problems, dst, 0, NULL, NULL), 0);
	cr_assert_eq(problems, 0);
	ts_store_close(src);
	ts_store_close(dst);
	free(x);
	free(a);
	free(b);
}

Test(copy, a_group_publishes_copies_together)
{
	uint64_t seed = st_seed("copy group");
	float x[64 * 64];
	uint64_t shape[2] = {64, 64};
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_LOSSLESS);
	cfg.raw_dtype = TS_F32;
	cfg.bits_per_value = 32;
	ts_store *src = st_create("gsrc.tst", 1), *dst = st_create("gdst.tst", 1);
	st_fill_f32(x, 64 * 64, &seed, 1.0f);
	st_write_f32(src, "a", 2, shape, &cfg, x, 0);
	st_write_f32(src, "b", 2, shape, &cfg, x, 0);
	ts_group *g;
	ts_write_opts wo;
	ts_tensor_info ti;
	cr_assert_eq(ts_group_begin(&g, dst), 0);
	ts_write_opts_init(&wo);
	wo.group = g;
	cr_assert_eq(ts_tensor_copy(dst, src, "a", &wo), 0, "%s", ts_error_last());
	cr_assert_eq(ts_tensor_copy(dst, src, "b", &wo), 0, "%s", ts_error_last());
	cr_assert_eq(ts_tensor_info_get(&ti, dst, "a"), TS_ENOTFOUND, "visible before the group");
	uint64_t n = 0;
	cr_assert_eq(ts_group_commit(&n, g), 0, "%s", ts_error_last());
	cr_assert_eq(n, 2);
	cr_assert_eq(ts_tensor_info_get(&ti, dst, "b"), 0);
	ts_store_close(src);
	ts_store_close(dst);
}

Test(copy, a_damaged_source_page_fails_and_leaves_nothing)
{
	uint64_t seed = st_seed("copy damaged");
	float x[128 * 256];
	uint64_t shape[2] = {128, 256};
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_store *src = st_create("dsrc.tst", 1);
	st_fill_f32(x, 128 * 256, &seed, 1.0f);
	st_write_f32(src, "w", 2, shape, &cfg, x, 0);
	ts_store_close(src);
	damage_first_page(st_path("dsrc.tst"));
	ts_open_opts oo;
	ts_open_opts_init(&oo);
	cr_assert_eq(ts_store_open(&src, st_path("dsrc.tst"), &oo), 0, "%s", ts_error_last());
	ts_store *dst = st_create("ddst.tst", 1);
	cr_assert_eq(ts_tensor_copy(dst, src, "w", NULL), TS_ECORRUPT);
	cr_assert(strstr(ts_error_last(), "'w'"), "message: %s", ts_error_last());
	ts_tensor_info ti;
	cr_assert_eq(ts_tensor_info_get(&ti, dst, "w"), TS_ENOTFOUND);
	ts_store_close(dst);
	ts_store_close(src);
	cr_assert_eq(st_raw_count(st_path("ddst.tst"), "pages"), 0);
	cr_assert_eq(st_raw_count(st_path("ddst.tst"), "pending"), 0);
}

Test(copy, bad_arguments_are_refused)
{
	ts_store *a = st_create("ba.tst", 1), *b = st_create("bb.tst", 1);
	cr_assert_eq(ts_tensor_copy(NULL, a, "x", NULL), TS_EINVAL);
	cr_assert_eq(ts_tensor_copy(a, NULL, "x", NULL), TS_EINVAL);
	cr_assert_eq(ts_tensor_copy(a, b, NULL, NULL), TS_EINVAL);
	cr_assert_eq(ts_tensor_copy(a, a, "x", NULL), TS_EINVAL);
	cr_assert_eq(ts_tensor_copy(a, b, "", NULL), TS_EINVAL);
	cr_assert_eq(ts_tensor_copy(a, b, "\xff" "attached", NULL), TS_EINVAL);
	cr_assert_eq(ts_tensor_copy(a, b, "missing", NULL), TS_ENOTFOUND);
	ts_store_close(a);
	ts_store_close(b);
}

/* ts_tensor_copy_many: many tensors (small ones share transactions, one larger than a
 * transaction's budget goes through the writer) decode to the originals' values with their
 * records, staged in a group (a name staged before is superseded) or published at once; the
 * store checks clean; a name given twice, a missing name and an existing name without
 * TS_WRITE_REPLACE are refused. */
Test(copy, many_tensors_copy_in_few_transactions)
{
	uint64_t seed = st_seed("copy many");
	enum { N = 40, R = 64, C = 4096, BR = 2200, BC = 1024 };
	float *x = malloc((size_t)N * R * C * 4), *a = malloc((size_t)N * R * C * 4),
	      *b = malloc((size_t)N * R * C * 4);
	uint64_t shape[2] = {R, C}, big[2] = {BR, BC};
	ts_codec_config nv = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_codec_config raw = st_raw_f32();
	ts_store *src = st_create("msrc.tst", 2), *dst = st_create("mdst.tst", 2);
	char names[N + 1][16];
	const char *list[N + 1];
	st_fill_f32(x, (size_t)N * R * C, &seed, 0.02f);
	for (int i = 0; i < N; i++) { /* 1 MiB raw and nvfp4 ones: several transactions */
		snprintf(names[i], sizeof(names[i]), "t%02d", i);
		list[i] = names[i];
		st_write_f32(src, names[i], 2, shape, i % 2 ? &raw : &nv, x + (size_t)i * R * C, 0);
	}
	snprintf(names[N], sizeof(names[N]), "big"); /* 9 MB raw: over a transaction's budget */
	list[N] = names[N];
	st_write_f32(src, "big", 2, big, &raw, x, 0);

	/* staged in a group, "t03" staged before by ts_tensor_copy and superseded */
	ts_group *g;
	ts_write_opts wo;
	ts_tensor_info ia, ib;
	cr_assert_eq(ts_group_begin(&g, dst), 0);
	ts_write_opts_init(&wo);
	wo.group = g;
	cr_assert_eq(ts_tensor_copy(dst, src, "t03", &wo), 0, "%s", ts_error_last());
	cr_assert_eq(ts_tensor_copy_many(dst, src, list, N + 1, &wo), 0, "%s", ts_error_last());
	cr_assert_eq(ts_tensor_info_get(&ia, dst, "t00"), TS_ENOTFOUND, "visible before the group");
	uint64_t n = 0;
	cr_assert_eq(ts_group_commit(&n, g), 0, "%s", ts_error_last());
	cr_assert_eq(n, N + 1);
	for (int i = 0; i <= N; i++) {
		cr_assert_eq(ts_tensor_info_get(&ia, src, list[i]), 0);
		cr_assert_eq(ts_tensor_info_get(&ib, dst, list[i]), 0, "%s", list[i]);
		cr_assert_eq(ia.codec.codec, ib.codec.codec);
		cr_assert_eq(ia.stored_bytes, ib.stored_bytes);
		cr_assert(memcmp(&ia.error, &ib.error, sizeof(ia.error)) == 0, "%s", list[i]);
		size_t e = (size_t)ia.shape[0] * ia.shape[1];
		tensor_f32(src, list[i], a, e);
		tensor_f32(dst, list[i], b, e);
		cr_assert(memcmp(a, b, e * 4) == 0, "%s: values differ", list[i]);
	}
	uint64_t problems = 1;
	cr_assert_eq(st_check(&problems, dst, 0, NULL, NULL), 0);
	cr_assert_eq(problems, 0);

	/* published at once; refusals leave the store as it was */
	ts_store *d2 = st_create("mdst2.tst", 1);
	cr_assert_eq(ts_tensor_copy_many(d2, src, list, 10, NULL), 0, "%s", ts_error_last());
	cr_assert_eq(ts_tensor_info_get(&ib, d2, "t09"), 0);
	const char *twice[2] = {"t10", "t10"}, *missing[2] = {"t10", "nope"};
	cr_assert_eq(ts_tensor_copy_many(d2, src, twice, 2, NULL), TS_EINVAL);
	cr_assert_eq(ts_tensor_copy_many(d2, src, missing, 2, NULL), TS_ENOTFOUND);
	cr_assert_eq(ts_tensor_copy_many(d2, src, list + 5, 10, NULL), TS_EEXIST);
	cr_assert_eq(ts_tensor_info_get(&ib, d2, "t10"), TS_ENOTFOUND, "a refused copy left t10");
	cr_assert_eq(ts_tensor_copy_many(d2, src, list, 0, NULL), 0);
	cr_assert_eq(ts_tensor_copy_many(d2, d2, list, 1, NULL), TS_EINVAL);
	problems = 1;
	cr_assert_eq(st_check(&problems, d2, 0, NULL, NULL), 0);
	cr_assert_eq(problems, 0);
	ts_store_close(d2);
	cr_assert_eq(st_raw_count(st_path("mdst2.tst"), "pending"), 0);
	ts_store_close(src);
	ts_store_close(dst);
	free(x);
	free(a);
	free(b);
}
