/*
 * Tests of the tensor record (engine/record.c): exact round trips, the checksum, and rejection
 * of every kind of inconsistent record with TS_ECORRUPT; the public info and foreach calls; the
 * "ts_tensor_info" linker symbol.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <dlfcn.h>
#include <math.h>
#include <string.h>
#include <xxhash.h>

#include "common/error.h"
#include "engine/format.h"
#include "engine/geometry.h"
#include "engine/record.h"
#include "storetest.h"

static ts__tensor_rec sample(ts_codec codec, int ndim, const uint64_t *shape)
{
	ts__tensor_rec r;
	memset(&r, 0, sizeof(r));
	r.id = 42;
	r.source_dtype = TS_BF16;
	r.ndim = ndim;
	for (int i = 0; i < ndim; i++)
		r.shape[i] = shape[i];
	r.codec = ts_codec_config_default(codec);
	if (codec == TS_CODEC_RAW)
		r.codec.raw_dtype = TS_F32, r.codec.bits_per_value = 32;
	r.amax = 3.5f;
	r.tensor_scale = 3.5f / 2688.0f;
	r.rows = 1;
	r.cols = ndim ? shape[ndim - 1] : 1;
	for (int i = 0; i + 1 < ndim; i++)
		r.rows *= shape[i];
	cr_assert_eq(ts__geometry_plan(&r, 0, 0), 0, "%s", ts_error_last());
	r.stored_bytes = ts_codec_encoded_size(&r.codec, r.rows, r.cols);
	r.error.original_bytes = r.rows * r.cols * 2;
	r.error.compressed_bytes = r.stored_bytes;
	r.error.compression_ratio = 3.25;
	r.error.mean_error = 0.125;
	r.error.max_error = 0.5;
	r.error.blocks_processed = 77;
	r.error.rel_rms_pct = 9.75;
	r.error.sqnr_db = INFINITY;
	r.dist.mean = -0.25;
	r.dist.std = 1.5;
	r.dist.min_val = -3.5;
	r.dist.max_val = 3.0;
	r.dist.dynamic_range = 12.0;
	r.dist.sparsity = 0.01;
	r.dist.count = r.rows * r.cols;
	r.dist.nonfinite = 3;
	return r;
}

/* Re-seal a record after changing bytes of it, so that only the field check can catch it. */
static void reseal(uint8_t *buf, size_t len)
{
	uint64_t h = XXH3_64bits(buf, len - 8);
	for (int i = 0; i < 8; i++)
		buf[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

static size_t encode(const ts__tensor_rec *r, uint8_t *buf)
{
	size_t n = ts__tensor_rec_encode(r, buf, TS_RECORD_MAX);
	cr_assert_gt(n, 0);
	return n;
}

static void expect_corrupt(const ts__tensor_rec *r, const char *what)
{
	uint8_t buf[TS_RECORD_MAX];
	ts__tensor_rec out;
	size_t n = encode(r, buf);
	int rc = ts__tensor_rec_decode(&out, buf, n);
	cr_expect_eq(rc, TS_ECORRUPT, "%s: got %d (%s)", what, rc, ts_error_last());
	cr_expect_neq(ts_error_last()[0], '\0', "%s: no message", what);
}

Test(record, round_trip_is_exact)
{
	uint64_t shape[3] = {4, 96, 4096};
	ts__tensor_rec r = sample(TS_CODEC_NVFP4, 3, shape), out;
	uint8_t buf[TS_RECORD_MAX];
	size_t n = encode(&r, buf);

	/* 32 fixed + 8 per dimension + 4+4 + 6*8 + 8*8 + 8*8 + 8 checksum */
	cr_expect_eq(n, 32 + 3 * 8 + 8 + 48 + 64 + 64 + 8);
	cr_assert_eq(ts__tensor_rec_decode(&out, buf, n), 0, "%s", ts_error_last());
	cr_expect_eq(memcmp(&out.shape, &r.shape, sizeof(r.shape)), 0);
	cr_expect_eq(out.id, 42);
	cr_expect_eq(out.ndim, 3);
	cr_expect_eq(out.source_dtype, TS_BF16);
	cr_expect_eq(out.codec.codec, TS_CODEC_NVFP4);
	cr_expect_eq(out.codec.block_size, 16);
	cr_expect_eq(out.codec.bits_per_value, 4);
	cr_expect_eq(out.codec.max_error_pct, r.codec.max_error_pct);
	cr_expect_eq(out.amax, 3.5f);
	cr_expect_eq(out.tensor_scale, 3.5f / 2688.0f);
	cr_expect_eq(out.rows, 384);
	cr_expect_eq(out.cols, 4096);
	cr_expect_eq(out.tile_rows, r.tile_rows);
	cr_expect_eq(out.tile_cols, r.tile_cols);
	cr_expect_eq(out.page_count, r.page_count);
	cr_expect_eq(out.stored_bytes, r.stored_bytes);
	cr_expect_eq(out.error.blocks_processed, 77);
	cr_expect_eq(out.error.rel_rms_pct, 9.75);
	cr_expect(isinf(out.error.sqnr_db));
	cr_expect_eq(out.dist.mean, -0.25);
	cr_expect_eq(out.dist.nonfinite, 3);
	/* the layout starts as documented in docs/FORMAT.md */
	cr_expect_eq(buf[0], 'T');
	cr_expect_eq(buf[1], 1);
	cr_expect_eq(buf[2], 3);
	cr_expect_eq(buf[3], TS_BF16);
	cr_expect_eq(buf[4], TS_CODEC_NVFP4);
	cr_expect_eq(buf[8] | buf[9] << 8, 16);
	cr_expect_eq(buf[24], 42);
	cr_expect_eq(buf[32 + 8 + 1], 96 >> 8);
	/* re-encoding gives the same bytes */
	uint8_t again[TS_RECORD_MAX];
	cr_expect_eq(encode(&out, again), n);
	cr_expect_eq(memcmp(buf, again, n), 0);
}

Test(record, a_record_under_another_name_fails_its_checksum)
{
	/* LMDB does not checksum keys: a damaged key must not serve one tensor's record (and so
	 * its pages) under another name (found by tests/robust/corrupt: a flipped byte in a leaf
	 * page renamed "...q_proj.weight" to "...q_proj.|eight", which then read as the original). */
	uint64_t shape[2] = {96, 4096};
	ts__tensor_rec r = sample(TS_CODEC_NVFP4, 2, shape), out;
	uint8_t buf[TS_RECORD_MAX];
	const char *name = "model.layers.0.self_attn.q_proj.weight";
	const char *other = "model.layers.0.self_attn.q_proj.|eight";
	size_t n = ts__tensor_rec_encode_named(&r, name, strlen(name), buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_expect_eq(ts__tensor_rec_decode_named(&out, name, strlen(name), buf, n), 0, "%s",
		     ts_error_last());
	cr_expect_eq(out.id, r.id);
	cr_expect_eq(ts__tensor_rec_decode_named(&out, other, strlen(other), buf, n), TS_ECORRUPT);
	cr_expect_eq(ts__tensor_rec_decode_named(&out, name, strlen(name) - 1, buf, n), TS_ECORRUPT);
	/* the plain decoder sees the bound checksum as damage too */
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), TS_ECORRUPT);
}

Test(record, every_flipped_byte_is_detected)
{
	uint64_t shape[2] = {100, 300};
	ts__tensor_rec r = sample(TS_CODEC_INT8, 2, shape), out;
	uint8_t buf[TS_RECORD_MAX];
	size_t n = encode(&r, buf);
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			buf[i] ^= (uint8_t)(1u << bit);
			int rc = ts__tensor_rec_decode(&out, buf, n);
			cr_expect(rc == TS_ECORRUPT || rc == TS_EVERSION, "byte %zu bit %d: %d", i, bit,
				  rc);
			buf[i] ^= (uint8_t)(1u << bit);
		}
	}
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), 0);
}

Test(record, wrong_lengths_are_rejected)
{
	uint64_t shape[1] = {1000};
	ts__tensor_rec r = sample(TS_CODEC_FP8, 1, shape), out;
	uint8_t buf[TS_RECORD_MAX + 8];
	size_t n = encode(&r, buf);
	for (size_t len = 0; len < n; len++)
		cr_expect_eq(ts__tensor_rec_decode(&out, buf, len), TS_ECORRUPT, "length %zu", len);
	buf[n] = 0;
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n + 1), TS_ECORRUPT);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n + 8), TS_ECORRUPT);
}

Test(record, magic_and_version_are_checked)
{
	uint64_t shape[1] = {10};
	ts__tensor_rec r = sample(TS_CODEC_RAW, 1, shape), out;
	uint8_t buf[TS_RECORD_MAX];
	size_t n = encode(&r, buf);
	buf[1] = 2;
	reseal(buf, n);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), TS_EVERSION);
	buf[1] = 0;
	reseal(buf, n);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), TS_ECORRUPT);
	buf[1] = 1;
	buf[0] = 'X';
	reseal(buf, n);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), TS_ECORRUPT);
	buf[0] = 'T';
	buf[2] = 9; /* ndim beyond TS_MAX_DIMS */
	reseal(buf, n);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), TS_ECORRUPT);
	buf[2] = 1;
	buf[12] = 1; /* reserved */
	reseal(buf, n);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), TS_ECORRUPT);
}

Test(record, absurd_shapes_are_corrupt)
{
	uint64_t shape[2] = {64, 64};
	ts__tensor_rec r = sample(TS_CODEC_RAW, 2, shape), bad;

	bad = r;
	bad.shape[0] = 1ull << 40;
	bad.shape[1] = 1ull << 40; /* the product overflows 64 bits */
	expect_corrupt(&bad, "overflowing product");
	bad = r;
	bad.shape[0] = 1ull << 30;
	bad.shape[1] = 1ull << 30; /* 2^60 elements: beyond TS_MAX_ELEMENTS */
	bad.rows = 1ull << 30;
	bad.cols = 1ull << 30;
	expect_corrupt(&bad, "too many elements");
	bad = r;
	bad.rows = 32;
	expect_corrupt(&bad, "rows disagree with the shape");
	bad = r;
	bad.cols = 65;
	expect_corrupt(&bad, "cols disagree with the shape");
}

Test(record, geometry_inconsistent_with_shape_is_corrupt)
{
	uint64_t shape[2] = {4096, 4096};
	ts__tensor_rec r = sample(TS_CODEC_NVFP4, 2, shape), bad;
	cr_assert_eq(r.tile_cols, 512);

	bad = r;
	bad.tile_rows = 0;
	expect_corrupt(&bad, "tile_rows 0");
	bad = r;
	bad.tile_rows = 4097;
	expect_corrupt(&bad, "tile_rows beyond rows");
	bad = r;
	bad.tile_cols = 1000; /* not a multiple of 16 */
	expect_corrupt(&bad, "tile_cols not whole blocks");
	bad = r;
	bad.tile_cols = 0;
	expect_corrupt(&bad, "tile_cols 0");
	bad = r;
	bad.page_count++;
	expect_corrupt(&bad, "page count");
	bad = r;
	bad.tile_rows = 4096; /* a page of 4096 x 512 nvfp4 is 1.2 MB: allowed up to 16 MiB */
	bad.page_count = 8;
	uint8_t buf[TS_RECORD_MAX];
	ts__tensor_rec out;
	size_t n = encode(&bad, buf);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), 0, "%s", ts_error_last());
	bad.tile_cols = 4096; /* 9.4 MB */
	bad.page_count = 1;
	n = encode(&bad, buf);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), 0, "%s", ts_error_last());

	uint64_t big[2] = {65536, 4096}; /* 37.7 MB in one page: too large */
	ts__tensor_rec r2 = sample(TS_CODEC_NVFP4, 2, big);
	r2.tile_rows = 65536;
	r2.tile_cols = 4096;
	r2.page_count = 1;
	expect_corrupt(&r2, "page larger than the largest page");

	bad = r;
	bad.stored_bytes = (r.page_count + 1) * 65520;
	expect_corrupt(&bad, "stored bytes beyond the pages");
}

Test(record, bad_codec_fields_are_corrupt)
{
	uint64_t shape[2] = {10, 64};
	ts__tensor_rec r = sample(TS_CODEC_NVFP4, 2, shape), bad;

	bad = r;
	bad.codec.codec = (ts_codec)9;
	expect_corrupt(&bad, "unknown codec");
	bad = r;
	bad.codec.block_size = 24;
	expect_corrupt(&bad, "block size not a power of two");
	bad = r;
	bad.codec.block_size = 32; /* a power of two, but not nvfp4's */
	expect_corrupt(&bad, "wrong nvfp4 block size");
	bad = r;
	bad.source_dtype = (ts_dtype)77;
	expect_corrupt(&bad, "unknown source dtype");
	bad = r;
	bad.id = 0;
	expect_corrupt(&bad, "tensor id 0");
	bad = r;
	bad.tensor_scale = NAN;
	expect_corrupt(&bad, "NaN tensor scale");
	bad = r;
	bad.amax = -1.0f;
	expect_corrupt(&bad, "negative amax");
}

Test(record, scalar_and_empty_tensors)
{
	ts__tensor_rec r = sample(TS_CODEC_RAW, 0, NULL), out;
	uint8_t buf[TS_RECORD_MAX];
	cr_expect_eq(r.page_count, 1);
	size_t n = encode(&r, buf);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), 0, "%s", ts_error_last());
	cr_expect_eq(out.ndim, 0);

	uint64_t shape[2] = {0, 7};
	ts__tensor_rec e = sample(TS_CODEC_RAW, 2, shape);
	e.stored_bytes = 0;
	cr_expect_eq(e.page_count, 0);
	n = encode(&e, buf);
	cr_expect_eq(ts__tensor_rec_decode(&out, buf, n), 0, "%s", ts_error_last());
	e.page_count = 1;
	expect_corrupt(&e, "an empty tensor with a page");
}

Test(record, info_reflects_the_record)
{
	uint64_t shape[3] = {2, 3, 50};
	ts__tensor_rec r = sample(TS_CODEC_MXFP4, 3, shape);
	ts_tensor_info info;
	ts__tensor_rec_to_info(&r, &info);
	cr_expect_eq(info.ndim, 3);
	cr_expect_eq(info.shape[2], 50);
	cr_expect_eq(info.source_bytes, 2 * 3 * 50 * 2); /* BF16 source */
	cr_expect_eq(info.id, 42);
	cr_expect_eq(info.page_count, 1);
	cr_expect_eq(info.codec.codec, TS_CODEC_MXFP4);
	cr_expect_eq(info.error.rel_rms_pct, 9.75);
}

static int collect(void *ud, const char *name, const ts_tensor_info *info)
{
	char *names = ud;
	strcat(names, name);
	strcat(names, info->ndim == 1 ? "." : ",");
	return 0;
}

static int stop_at_second(void *ud, const char *name, const ts_tensor_info *info)
{
	(void)info;
	int *n = ud;
	(void)name;
	return ++*n == 2 ? 7 : 0;
}

Test(record, foreach_walks_in_name_order)
{
	ts_store *st = st_create("s.tst", 2);
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	float x[10] = {1, 2, 3};
	uint64_t one[1] = {10};
	uint64_t two[2] = {2, 5};
	raw.raw_dtype = TS_F32;
	st_write_f32(st, "b", 1, one, &raw, x, 0);
	st_write_f32(st, "a", 2, two, &raw, x, 0);
	st_write_f32(st, "c", 1, one, &raw, x, 0);
	char names[64] = "";
	cr_expect_eq(ts_tensor_foreach(st, collect, names), 0);
	cr_expect_str_eq(names, "a,b.c.");
	int n = 0;
	cr_expect_eq(ts_tensor_foreach(st, stop_at_second, &n), 7);
	cr_expect_eq(n, 2);

	/* more tensors than one batch of the walk */
	char name[16];
	for (int i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "t%03d", i);
		st_write_f32(st, name, 1, one, &raw, x, 0);
	}
	n = 0;
	cr_expect_eq(ts_tensor_foreach(st, stop_at_second, &n), 7);
	static char all[4096];
	all[0] = 0;
	cr_expect_eq(ts_tensor_foreach(st, collect, all), 0);
	cr_expect_eq(strlen(all), 6 + 150 * 5);
	cr_expect(strstr(all, "t000.t001.") != NULL);
	cr_expect(strstr(all, "t148.t149.") != NULL);

	ts_tensor_info info;
	cr_expect_eq(ts_tensor_info_get(&info, st, "a"), 0);
	cr_expect_eq(info.shape[0], 2);
	cr_expect_eq(ts_tensor_info_get(&info, st, "zz"), TS_ENOTFOUND);
	cr_expect(strstr(ts_error_last(), "zz") != NULL);
	ts_store_close(st);
}

#ifdef TS_BUILDDIR
Test(record, the_library_exports_the_public_calls_for_ffi_users)
{
	void *lib = dlopen(TS_BUILDDIR "/.libs/libtstore.so", RTLD_NOW | RTLD_LOCAL);
	cr_assert(lib != NULL, "dlopen: %s", dlerror());
	int (*info_fn)(ts_tensor_info *, ts_store *, const char *) =
		(int (*)(ts_tensor_info *, ts_store *, const char *))dlsym(lib, "ts_tensor_info_get");
	int (*open_fn)(ts_store **, const char *, const ts_open_opts *) =
		(int (*)(ts_store **, const char *, const ts_open_opts *))dlsym(lib, "ts_store_open");
	void (*close_fn)(ts_store *) = (void (*)(ts_store *))dlsym(lib, "ts_store_close");
	cr_assert(info_fn && open_fn && close_fn);
	cr_expect_null(dlsym(lib, "ts__tensor_lookup"), "private symbols stay hidden");
	cr_expect_null(dlsym(lib, "ts_tensor_info"), "no function is spelled like a type");

	ts_store *st = st_create("s.tst", 1);
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	float x[6] = {1, 2, 3, 4, 5, 6};
	uint64_t shape[2] = {2, 3};
	raw.raw_dtype = TS_F32;
	st_write_f32(st, "w", 2, shape, &raw, x, 0);
	ts_store_close(st);

	ts_store *st2 = NULL;
	cr_assert_eq(open_fn(&st2, st_path("s.tst"), NULL), 0);
	ts_tensor_info info;
	memset(&info, 0, sizeof(info));
	cr_expect_eq(info_fn(&info, st2, "w"), 0);
	cr_expect_eq(info.ndim, 2);
	cr_expect_eq(info.shape[0], 2);
	cr_expect_eq(info.shape[1], 3);
	cr_expect_eq(info_fn(&info, st2, "nope"), TS_ENOTFOUND);
	close_fn(st2);
	dlclose(lib);
}
#endif
