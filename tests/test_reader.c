/*
 * Tests of the read path through the public API: random hyperslabs of 1-D to 4-D tensors with odd
 * sizes compared element by element against the source (raw) or against a decode of the whole
 * tensor by ts_codec_decode (lossy codecs), on every I/O backend; the encoded form; concurrent
 * readers; the errors a caller can act on; a flipped byte in a page giving TS_ECORRUPT that names
 * the tensor and the page; the layout check (no map fallbacks for overflow pages); the cache.
 * Each test works in a fresh temporary directory and prints its random seed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tstore.h"

static const ts_io_backend backends[] = {TS_IO_URING, TS_IO_PREAD, TS_IO_MMAP};
#define NBACKENDS 3

static char dir[256];

static void mkdir_fresh(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/tstore-reader-XXXXXX", t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_fresh(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", dir);
}

static const char *store_path(void)
{
	static char p[300];
	snprintf(p, sizeof(p), "%s/model.tst", dir);
	return p;
}

static uint64_t seed_of(const char *test)
{
	const char *e = getenv("TSTORE_TEST_SEED");
	uint64_t s = e && *e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
	fprintf(stderr, "%s: seed %llu (TSTORE_TEST_SEED to repeat)\n", test, (unsigned long long)s);
	return s ? s : 1;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static float normal(uint64_t *s)
{
	double u1 = ((double)(rnd(s) >> 11) + 1.0) / 9007199254740993.0;
	double u2 = (double)(rnd(s) >> 11) / 9007199254740992.0;
	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static ts_store *open_store(ts_io_backend io, int64_t cache, int write)
{
	ts_open_opts o;
	ts_store *st = NULL;
	ts_open_opts_init(&o);
	o.flags = write ? TS_OPEN_CREATE | TS_OPEN_WRITE : 0;
	o.io = io;
	o.cache_bytes = cache;
	o.threads = 2;
	int rc = ts_store_open(&st, store_path(), &o);
	cr_assert_eq(rc, 0, "open: %s", ts_error_last());
	cr_assert_eq(ts_store_io_backend(st), io, "backend %s in effect, %s asked (%s)",
		     ts_io_backend_name(ts_store_io_backend(st)), ts_io_backend_name(io),
		     ts_store_io_detail(st));
	return st;
}

static uint64_t elems_of(int ndim, const uint64_t *shape)
{
	uint64_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= shape[i];
	return n;
}

static float amax_of(const float *x, uint64_t n)
{
	float m = 0;
	for (uint64_t i = 0; i < n; i++)
		m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
	return m;
}

/* Write @p x (F32) as tensor @p name with @p cfg, appended in random chunks, small pages. */
static void write_tensor(ts_store *st, const char *name, int ndim, const uint64_t *shape,
			 const ts_codec_config *cfg, const float *x, uint64_t page_bytes,
			 uint64_t *s)
{
	ts_writer *w;
	ts_write_opts wo;
	uint64_t n = elems_of(ndim, shape), done = 0;

	ts_write_opts_init(&wo);
	wo.amax = amax_of(x, n);
	wo.page_bytes = page_bytes;
	cr_assert_eq(ts_writer_begin(&w, st, name, TS_F32, ndim, shape, cfg, &wo), 0, "begin %s: %s",
		     name, ts_error_last());
	while (done < n) {
		uint64_t k = 1 + rnd(s) % 3000;
		if (k > n - done)
			k = n - done;
		cr_assert_eq(ts_writer_append(w, x + done, k * 4), 0, "append: %s", ts_error_last());
		done += k;
	}
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "commit %s: %s", name, ts_error_last());
}

/* The values a reader must return for the whole tensor as F32: the source for raw, else a
 * decode of the whole tensor encoded in one piece. */
static float *expected_f32(const ts_codec_config *cfg, const float *x, int ndim,
			   const uint64_t *shape)
{
	uint64_t cols = ndim ? shape[ndim - 1] : 1, n = elems_of(ndim, shape), rows = n / cols;
	float *out = malloc(n * 4);
	if (cfg->codec == TS_CODEC_RAW) {
		memcpy(out, x, n * 4);
		return out;
	}
	float amax = amax_of(x, n);
	size_t sz = ts_codec_encoded_size(cfg, rows, cols);
	void *enc = malloc(sz);
	cr_assert_eq(ts_codec_encode(cfg, amax, x, TS_F32, cols, rows, cols, enc, sz), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_codec_decode(cfg, ts_codec_tensor_scale(cfg, amax), enc, sz, rows, cols,
				     TS_F32, out, cols),
		     0, "%s", ts_error_last());
	free(enc);
	return out;
}

/* Read @p trials random hyperslabs and compare with @p want (F32 of the whole tensor); also as
 * BF16 and F16 (the RNE conversion of the F32 value). */
static void check_slices(ts_store *st, const char *name, int ndim, const uint64_t *shape,
			 const float *want, int trials, uint64_t *s)
{
	for (int t = 0; t < trials; t++) {
		uint64_t start[TS_MAX_DIMS], count[TS_MAX_DIMS], n = 1;
		for (int i = 0; i < ndim; i++) {
			start[i] = rnd(s) % shape[i];
			count[i] = 1 + rnd(s) % (shape[i] - start[i]);
			if (t == 0) { /* the whole tensor once */
				start[i] = 0;
				count[i] = shape[i];
			}
			n *= count[i];
		}
		ts_dtype dt = t % 3 == 0 ? TS_F32 : t % 3 == 1 ? TS_BF16 : TS_F16;
		size_t esz = ts_dtype_size(dt);
		uint8_t *buf = malloc(n * esz + 1);
		int rc = ts_read_slice(st, name, ndim, start, count, dt, buf, n * esz);
		cr_assert_eq(rc, 0, "%s trial %d: %s", name, t, ts_error_last());
		/* walk the slab in row-major order */
		uint64_t idx[TS_MAX_DIMS] = {0};
		for (uint64_t k = 0; k < n; k++) {
			uint64_t src = 0;
			for (int i = 0; i < ndim; i++)
				src = src * shape[i] + start[i] + idx[i];
			float w = want[src];
			int ok;
			if (dt == TS_F32) {
				float g;
				memcpy(&g, buf + k * 4, 4);
				ok = memcmp(&g, &w, 4) == 0;
				if (!ok)
					cr_assert(0, "%s trial %d element %llu (source %llu): got %g want %g",
						  name, t, (unsigned long long)k, (unsigned long long)src,
						  g, w);
			} else {
				uint16_t g, e = dt == TS_BF16 ? ts_f32_to_bf16(w) : ts_f32_to_f16(w);
				memcpy(&g, buf + k * 2, 2);
				ok = g == e;
				if (!ok)
					cr_assert(0, "%s trial %d %s element %llu: got %#x want %#x", name, t,
						  ts_dtype_name(dt), (unsigned long long)k, g, e);
			}
			for (int i = ndim - 1; i >= 0; i--) {
				if (++idx[i] < count[i])
					break;
				idx[i] = 0;
			}
		}
		free(buf);
	}
}

struct shape_case {
	int ndim;
	uint64_t shape[TS_MAX_DIMS];
};

static const struct shape_case shapes[] = {
	{1, {1001}},
	{2, {67, 301}},
	{3, {5, 13, 77}},
	{4, {3, 4, 7, 45}},
	{2, {333, 1}},
	{2, {1, 2049}},
	{5, {3, 2, 5, 4, 19}},
	{8, {2, 3, 1, 2, 3, 2, 1, 33}},
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static void round_trip(ts_codec codec, ts_io_backend io, int64_t cache, uint64_t page_bytes,
		       const char *test)
{
	uint64_t s = seed_of(test);
	ts_codec_config cfg = ts_codec_config_default(codec);
	if (codec == TS_CODEC_RAW)
		cfg.raw_dtype = TS_F32;
	ts_store *st = open_store(io, cache, 1);
	float *src[NSHAPES];
	for (size_t c = 0; c < NSHAPES; c++) {
		uint64_t n = elems_of(shapes[c].ndim, shapes[c].shape);
		char name[64];
		src[c] = malloc(n * 4);
		for (uint64_t i = 0; i < n; i++)
			src[c][i] = normal(&s) * 0.05f;
		snprintf(name, sizeof(name), "t%zu.weight", c);
		write_tensor(st, name, shapes[c].ndim, shapes[c].shape, &cfg, src[c], page_bytes, &s);
	}
	ts_store_close(st);
	st = open_store(io, cache, 0);
	for (size_t c = 0; c < NSHAPES; c++) {
		char name[64];
		snprintf(name, sizeof(name), "t%zu.weight", c);
		float *want = expected_f32(&cfg, src[c], shapes[c].ndim, shapes[c].shape);
		check_slices(st, name, shapes[c].ndim, shapes[c].shape, want, 40, &s);
		free(want);
		free(src[c]);
	}
	ts_store_close(st);
}

#define ROUND_TRIP_TESTS(codec, cname)                                                         \
	Test(reader, cname##_slices_match_on_uring, .init = mkdir_fresh, .fini = rm_fresh)     \
	{                                                                                      \
		round_trip(codec, TS_IO_URING, 0, 4080, #cname "_uring");                      \
	}                                                                                      \
	Test(reader, cname##_slices_match_on_pread, .init = mkdir_fresh, .fini = rm_fresh)     \
	{                                                                                      \
		round_trip(codec, TS_IO_PREAD, 1 << 20, 8176, #cname "_pread");                \
	}                                                                                      \
	Test(reader, cname##_slices_match_on_mmap, .init = mkdir_fresh, .fini = rm_fresh)      \
	{                                                                                      \
		round_trip(codec, TS_IO_MMAP, 0, 4080, #cname "_mmap");                        \
	}

ROUND_TRIP_TESTS(TS_CODEC_RAW, raw)
ROUND_TRIP_TESTS(TS_CODEC_NVFP4, nvfp4)
ROUND_TRIP_TESTS(TS_CODEC_MXFP4, mxfp4)
ROUND_TRIP_TESTS(TS_CODEC_INT8, int8)
ROUND_TRIP_TESTS(TS_CODEC_FP8, fp8)

Test(reader, raw_tensor_reads_as_its_own_dtype_only, .init = mkdir_fresh, .fini = rm_fresh)
{
	uint64_t s = seed_of("raw_own_dtype");
	ts_store *st = open_store(TS_IO_URING, 0, 1);
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
	cfg.raw_dtype = TS_I32;
	uint64_t shape[2] = {37, 129};
	int32_t *x = malloc(37 * 129 * 4), *y = malloc(37 * 129 * 4);
	for (int i = 0; i < 37 * 129; i++)
		x[i] = (int32_t)rnd(&s);
	ts_writer *w;
	ts_write_opts wo;
	ts_write_opts_init(&wo);
	wo.page_bytes = 4080;
	cr_assert_eq(ts_writer_begin(&w, st, "ids", TS_I32, 2, shape, &cfg, &wo), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_writer_append(w, x, 37 * 129 * 4), 0, "%s", ts_error_last());
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
	uint64_t start[2] = {3, 5}, count[2] = {30, 100};
	cr_assert_eq(ts_read_slice(st, "ids", 2, start, count, TS_I32, y, 30 * 100 * 4), 0, "%s",
		     ts_error_last());
	for (int r = 0; r < 30; r++)
		for (int c = 0; c < 100; c++)
			cr_assert_eq(y[r * 100 + c], x[(r + 3) * 129 + c + 5]);
	cr_expect_eq(ts_read_slice(st, "ids", 2, start, count, TS_F32, y, 30 * 100 * 4), TS_EDTYPE);
	free(x);
	free(y);
	ts_store_close(st);
}

/* -- errors -------------------------------------------------------------------------------- */

static void small_store(void)
{
	uint64_t s = 7;
	ts_store *st = open_store(TS_IO_URING, 0, 1);
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	uint64_t shape[2] = {64, 96};
	float *x = malloc(64 * 96 * 4);
	for (int i = 0; i < 64 * 96; i++)
		x[i] = normal(&s);
	write_tensor(st, "w", 2, shape, &cfg, x, 4080, &s);
	free(x);
	ts_store_close(st);
}

Test(reader, errors_name_what_is_wrong, .init = mkdir_fresh, .fini = rm_fresh)
{
	small_store();
	ts_store *st = open_store(TS_IO_URING, 0, 0);
	float buf[64 * 96];
	uint64_t start[2] = {0, 0}, count[2] = {64, 96};

	cr_expect_eq(ts_read_slice(st, "nope", 2, start, count, TS_F32, buf, sizeof(buf)),
		     TS_ENOTFOUND);
	cr_expect(strstr(ts_error_last(), "nope") != NULL, "%s", ts_error_last());

	cr_expect_eq(ts_read_slice(st, "w", 3, start, count, TS_F32, buf, sizeof(buf)), TS_ERANGE);
	cr_expect(strstr(ts_error_last(), "'w'") != NULL, "%s", ts_error_last());

	uint64_t s2[2] = {60, 0}, c2[2] = {5, 96};
	cr_expect_eq(ts_read_slice(st, "w", 2, s2, c2, TS_F32, buf, sizeof(buf)), TS_ERANGE);
	cr_expect(strstr(ts_error_last(), "dimension 0") != NULL, "%s", ts_error_last());
	uint64_t s3[2] = {0, UINT64_MAX}, c3[2] = {1, 2};
	cr_expect_eq(ts_read_slice(st, "w", 2, s3, c3, TS_F32, buf, sizeof(buf)), TS_ERANGE);
	uint64_t s4[2] = {1, 1}, c4[2] = {UINT64_MAX, UINT64_MAX};
	cr_expect_eq(ts_read_slice(st, "w", 2, s4, c4, TS_F32, buf, sizeof(buf)), TS_ERANGE);

	cr_expect_eq(ts_read_slice(st, "w", 2, start, count, TS_F32, buf, sizeof(buf) - 1),
		     TS_ESHORTBUF);
	cr_expect(strstr(ts_error_last(), "buffer") != NULL, "%s", ts_error_last());
	cr_expect_eq(ts_read_slice(st, "w", 2, start, count, TS_I32, buf, sizeof(buf)), TS_EDTYPE);
	cr_expect_eq(ts_read_slice(st, "w", 2, start, count, (ts_dtype)99, buf, sizeof(buf)),
		     TS_EDTYPE);
	cr_expect_eq(ts_read_slice(st, "w", 9, start, count, TS_F32, buf, sizeof(buf)), TS_ERANGE);
	cr_expect_eq(ts_read_slice(st, NULL, 2, start, count, TS_F32, buf, sizeof(buf)), TS_EINVAL);
	/* an empty slice reads nothing and succeeds */
	uint64_t c0[2] = {0, 96};
	cr_expect_eq(ts_read_slice(st, "w", 2, start, c0, TS_F32, NULL, 0), 0);
	/* one-line messages */
	cr_expect_eq(ts_read_slice(st, "w", 2, s2, c2, TS_F32, buf, sizeof(buf)), TS_ERANGE);
	cr_expect_null(strchr(ts_error_last(), '\n'));
	ts_store_close(st);
}

/* -- corruption ---------------------------------------------------------------------------- */

/* A raw tensor stores its bytes as they are: find 64 source bytes in the file and flip one. */
static void flip_a_page_byte(const uint8_t *needle, size_t nlen)
{
	int fd = open(store_path(), O_RDWR);
	struct stat sb;
	cr_assert(fd >= 0 && fstat(fd, &sb) == 0);
	uint8_t *f = malloc((size_t)sb.st_size);
	cr_assert_eq(pread(fd, f, (size_t)sb.st_size, 0), sb.st_size);
	uint8_t *hit = memmem(f, (size_t)sb.st_size, needle, nlen);
	cr_assert_not_null(hit, "source bytes not found in the store file");
	off_t off = (off_t)(hit - f) + 17;
	uint8_t b = (uint8_t)(f[off] ^ 0x10);
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	fsync(fd);
	close(fd);
	free(f);
}

Test(reader, flipped_byte_is_corruption_naming_tensor_and_page_on_every_backend,
     .init = mkdir_fresh, .fini = rm_fresh)
{
	uint64_t s = seed_of("corrupt");
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
	cfg.raw_dtype = TS_F32;
	uint64_t shape[2] = {200, 300};
	float *x = malloc(200 * 300 * 4), *y = malloc(200 * 300 * 4);
	for (int i = 0; i < 200 * 300; i++)
		x[i] = normal(&s);
	ts_store *st = open_store(TS_IO_URING, 0, 1);
	write_tensor(st, "layers.0.attn.weight", 2, shape, &cfg, x, 16368, &s);
	ts_store_close(st);
	flip_a_page_byte((const uint8_t *)(x + 100 * 300 + 7), 64);
	for (int b = 0; b < NBACKENDS; b++) {
		st = open_store(backends[b], 1 << 20, 0);
		uint64_t start[2] = {0, 0};
		int rc = ts_read_slice(st, "layers.0.attn.weight", 2, start, shape, TS_F32, y,
				       200 * 300 * 4);
		cr_expect_eq(rc, TS_ECORRUPT, "%s: rc %d", ts_io_backend_name(backends[b]), rc);
		cr_expect(strstr(ts_error_last(), "layers.0.attn.weight") != NULL &&
				  strstr(ts_error_last(), "page") != NULL,
			  "%s: '%s'", ts_io_backend_name(backends[b]), ts_error_last());
		/* rows far from the damage still read */
		uint64_t c1[2] = {10, 300};
		cr_expect_eq(ts_read_slice(st, "layers.0.attn.weight", 2, start, c1, TS_F32, y,
					   10 * 300 * 4),
			     0, "%s", ts_error_last());
		cr_expect_eq(memcmp(y, x, 10 * 300 * 4), 0);
		/* the damaged page was not cached: it fails again */
		rc = ts_read_slice(st, "layers.0.attn.weight", 2, start, shape, TS_F32, y,
				   200 * 300 * 4);
		cr_expect_eq(rc, TS_ECORRUPT);
		ts_store_close(st);
	}
	free(x);
	free(y);
}

/* -- layout, storage accounting and the cache ----------------------------------------------- */

Test(reader, overflow_pages_are_read_from_storage_without_map_fallback, .init = mkdir_fresh,
     .fini = rm_fresh)
{
	uint64_t s = seed_of("layout");
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	uint64_t shape[2] = {512, 1024};
	float *x = malloc(512 * 1024 * 4), *y = malloc(512 * 1024 * 4);
	for (int i = 0; i < 512 * 1024; i++)
		x[i] = normal(&s);
	ts_store *st = open_store(TS_IO_URING, 0, 1);
	write_tensor(st, "w", 2, shape, &cfg, x, 0, &s);
	ts_store_close(st);
	for (int b = 0; b < 2; b++) {
		st = open_store(backends[b], 0, 0);
		ts_tensor_info info;
		cr_assert_eq(ts_tensor_info_get(&info, st, "w"), 0);
		uint64_t start[2] = {0, 0};
		cr_assert_eq(ts_read_slice(st, "w", 2, start, shape, TS_F32, y, 512 * 1024 * 4), 0,
			     "%s", ts_error_last());
		ts_cache_stats cs;
		ts_cache_stats_get(&cs, st);
		cr_expect_eq(cs.map_fallbacks, 0, "%s: %llu map fallbacks",
			     ts_io_backend_name(backends[b]), (unsigned long long)cs.map_fallbacks);
		/* adjacent runs are merged: at most one read per page, at least one per MiB */
		cr_expect_leq(cs.storage_reads, info.page_count);
		cr_expect_geq(cs.storage_reads, (info.stored_bytes >> 20) + 1);
		/* every page is read as its aligned run: stored bytes rounded up to 4 KiB */
		cr_expect_geq(cs.storage_bytes, info.stored_bytes);
		cr_expect_leq(cs.storage_bytes, info.stored_bytes + info.page_count * 4096);
		ts_store_close(st);
	}
	free(x);
	free(y);
}

Test(reader, bulk_reads_cache_only_pages_seen_before, .init = mkdir_fresh, .fini = rm_fresh)
{
	/* 2048 x 2048 nvfp4: 2.25 MiB stored, a bulk request (>= 1 MiB) when read whole */
	uint64_t s = seed_of("bulk");
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	uint64_t shape[2] = {2048, 2048}, start[2] = {0, 0}, small[2] = {28, 1024};
	size_t n = 2048 * 2048;
	float *x = malloc(n * 4), *y = malloc(n * 4), *z = malloc(n * 4);
	for (size_t i = 0; i < n; i++)
		x[i] = normal(&s);
	ts_store *st = open_store(TS_IO_URING, 0, 1);
	write_tensor(st, "w", 2, shape, &cfg, x, 0, &s);
	ts_store_close(st);
	st = open_store(TS_IO_URING, 64 << 20, 0); /* the tiered policy, 64 MiB */
	ts_cache_stats a, b, c, d;
	/* first sight: decoded straight to the caller, nothing cached */
	cr_assert_eq(ts_read_slice(st, "w", 2, start, shape, TS_F32, y, n * 4), 0, "%s",
		     ts_error_last());
	ts_cache_stats_get(&a, st);
	cr_expect_eq(a.used_bytes, 0, "a first bulk read cached %llu bytes",
		     (unsigned long long)a.used_bytes);
	cr_expect_gt(a.storage_reads, 0);
	/* second sight: now cached (compressed), third: served without storage */
	cr_assert_eq(ts_read_slice(st, "w", 2, start, shape, TS_F32, z, n * 4), 0);
	ts_cache_stats_get(&b, st);
	cr_expect_gt(b.used_bytes, 2u << 20, "a second bulk read cached only %llu bytes",
		     (unsigned long long)b.used_bytes);
	cr_expect_eq(memcmp(y, z, n * 4), 0);
	memset(z, 0, n * 4);
	cr_assert_eq(ts_read_slice(st, "w", 2, start, shape, TS_F32, z, n * 4), 0);
	ts_cache_stats_get(&c, st);
	cr_expect_eq(c.storage_reads, b.storage_reads, "the third read went to storage");
	cr_expect_eq(memcmp(y, z, n * 4), 0);
	/* a small request (one page, not bulk) is cached at first sight, as before */
	ts_cache_clear(st);
	uint64_t at[2] = {28 * 3, 1024};
	cr_assert_eq(ts_read_slice(st, "w", 2, at, small, TS_F32, z, 28 * 1024 * 4), 0);
	ts_cache_stats_get(&d, st);
	cr_expect_gt(d.used_bytes, 0, "a small read was not cached");
	ts_store_close(st);
	free(x);
	free(y);
	free(z);
}

Test(reader, cache_serves_repeated_reads_and_off_reads_storage, .init = mkdir_fresh,
     .fini = rm_fresh)
{
	uint64_t s = seed_of("cache");
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_MXFP4);
	uint64_t shape[2] = {256, 512};
	float *x = malloc(256 * 512 * 4), *y = malloc(256 * 512 * 4), *z = malloc(256 * 512 * 4);
	for (int i = 0; i < 256 * 512; i++)
		x[i] = normal(&s);
	ts_store *st = open_store(TS_IO_URING, 64 << 20, 1);
	/* the decoded-page cache's own counters: decoded pages only (the tiered policy, which
	 * also looks pages up compressed, is tested in test_residency.c and tests/cli/cache.sh) */
	cr_assert_eq(ts_cache_configure(st, TS_CACHE_POLICY_DECODED_LRU, -1), 0);
	write_tensor(st, "w", 2, shape, &cfg, x, 4080, &s);
	uint64_t start[2] = {10, 3}, count[2] = {200, 500};
	ts_cache_stats a, b, c;
	ts_cache_stats_get(&a, st);
	cr_assert_eq(ts_read_slice(st, "w", 2, start, count, TS_F32, y, 200 * 500 * 4), 0);
	ts_cache_stats_get(&b, st);
	cr_assert_eq(ts_read_slice(st, "w", 2, start, count, TS_F32, z, 200 * 500 * 4), 0);
	ts_cache_stats_get(&c, st);
	cr_expect_eq(memcmp(y, z, 200 * 500 * 4), 0);
	cr_expect_gt(b.misses, a.misses);
	cr_expect_eq(c.misses, b.misses, "second read missed");
	cr_expect_eq(c.hits - b.hits, b.misses - a.misses);
	cr_expect_eq(c.storage_reads, b.storage_reads, "second read went to storage");
	cr_expect_leq(c.used_bytes, c.budget_bytes);
	/* another dtype is another entry */
	cr_assert_eq(ts_read_slice(st, "w", 2, start, count, TS_BF16, z, 200 * 500 * 2), 0);
	ts_cache_stats_get(&a, st);
	cr_expect_gt(a.misses, c.misses);
	ts_cache_clear(st);
	ts_cache_stats_get(&a, st);
	cr_expect_eq(a.used_bytes, 0);
	ts_store_close(st);

	st = open_store(TS_IO_URING, 0, 0);
	ts_cache_stats_get(&a, st);
	cr_assert_eq(ts_read_slice(st, "w", 2, start, count, TS_F32, z, 200 * 500 * 4), 0);
	cr_assert_eq(ts_read_slice(st, "w", 2, start, count, TS_F32, z, 200 * 500 * 4), 0);
	ts_cache_stats_get(&b, st);
	cr_expect_eq(memcmp(y, z, 200 * 500 * 4), 0);
	cr_expect_eq(b.hits, 0);
	cr_expect_eq(b.used_bytes, 0);
	cr_expect_eq(b.budget_bytes, 0);
	/* every page of both reads came from storage (no cache): merged reads, at most one each */
	cr_expect_gt(b.storage_reads - a.storage_reads, 0);
	cr_expect_leq(b.storage_reads - a.storage_reads, b.misses - a.misses);
	ts_store_close(st);
	free(x);
	free(y);
	free(z);
}

/* -- encoded rows --------------------------------------------------------------------------- */

Test(reader, encoded_rows_equal_a_whole_tensor_encoding, .init = mkdir_fresh, .fini = rm_fresh)
{
	uint64_t s = seed_of("encoded");
	ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_MXFP4, TS_CODEC_FP8};
	uint64_t rows = 97, cols = 2100;
	float *x = malloc(rows * cols * 4);
	for (uint64_t i = 0; i < rows * cols; i++)
		x[i] = normal(&s);
	ts_store *st = open_store(TS_IO_URING, 0, 1);
	for (int k = 0; k < 3; k++) {
		ts_codec_config cfg = ts_codec_config_default(codecs[k]);
		uint64_t shape[2] = {rows, cols};
		char name[32];
		snprintf(name, sizeof(name), "e%d", k);
		write_tensor(st, name, 2, shape, &cfg, x, 4080, &s);
		size_t sz = ts_codec_encoded_size(&cfg, rows, cols);
		uint8_t *enc = malloc(sz);
		cr_assert_eq(ts_codec_encode(&cfg, amax_of(x, rows * cols), x, TS_F32, cols, rows,
					     cols, enc, sz),
			     0);
		int bs = cfg.block_size;
		size_t nb = (cols + (uint64_t)bs - 1) / (uint64_t)bs;
		size_t crow = codecs[k] == TS_CODEC_NVFP4 ? nb * 8
			      : codecs[k] == TS_CODEC_MXFP4 ? nb * 16
							    : cols;
		size_t srow = codecs[k] == TS_CODEC_FP8 ? 0 : nb;
		cr_assert_eq(sz, rows * (crow + srow));
		uint64_t r0 = 5, nr = 80;
		ts_tensor_info info;
		size_t want_codes = 1, want_scales = 1;
		cr_assert_eq(ts_tensor_info_get(&info, st, name), 0);
		cr_assert_eq(ts_read_encoded_size(&want_codes, &want_scales, &info, nr), 0);
		cr_expect_eq(want_codes, nr * crow, "%s", ts_codec_name(codecs[k]));
		cr_expect_eq(want_scales, nr * srow, "%s", ts_codec_name(codecs[k]));
		cr_expect_eq(ts_read_encoded_size(&want_codes, &want_scales, &info, UINT64_MAX),
			     TS_ERANGE);
		uint8_t *codes = malloc(nr * crow), *scales = malloc(nr * srow + 1);
		cr_assert_eq(ts_read_encoded(st, name, r0, nr, codes, nr * crow, scales, nr * srow),
			     0, "%s: %s", ts_codec_name(codecs[k]), ts_error_last());
		cr_expect_eq(memcmp(codes, enc + r0 * crow, nr * crow), 0, "%s codes differ",
			     ts_codec_name(codecs[k]));
		if (srow)
			cr_expect_eq(memcmp(scales, enc + rows * crow + r0 * srow, nr * srow), 0,
				     "%s scales differ", ts_codec_name(codecs[k]));
		cr_expect_eq(ts_read_encoded(st, name, 90, 8, codes, nr * crow, scales, nr * srow),
			     TS_ERANGE);
		cr_expect_eq(ts_read_encoded(st, name, 0, nr, codes, nr * crow - 1, scales,
					     nr * srow),
			     TS_ESHORTBUF);
		free(codes);
		free(scales);
		free(enc);
	}
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	raw.raw_dtype = TS_F32;
	uint64_t shape[2] = {4, 4};
	write_tensor(st, "r", 2, shape, &raw, x, 4080, &s);
	uint8_t b[64];
	cr_expect_eq(ts_read_encoded(st, "r", 0, 1, b, 64, b, 64), TS_ENOTSUP);
	ts_tensor_info info;
	size_t cs, ss;
	cr_assert_eq(ts_tensor_info_get(&info, st, "r"), 0);
	cr_expect_eq(ts_read_encoded_size(&cs, &ss, &info, 1), TS_ENOTSUP);
	cr_expect_eq(ts_read_encoded_size(NULL, &ss, &info, 1), TS_EINVAL);
	ts_store_close(st);
	free(x);
}

/* -- concurrency ---------------------------------------------------------------------------- */

struct reader_arg {
	ts_store *st;
	const float *want;
	uint64_t seed;
	int failures;
};

static void *reader_thread(void *p)
{
	struct reader_arg *a = p;
	uint64_t shape[3] = {9, 70, 513};
	float *buf = malloc(9 * 70 * 513 * 4);
	for (int t = 0; t < 60; t++) {
		uint64_t start[3], count[3], n = 1;
		for (int i = 0; i < 3; i++) {
			start[i] = rnd(&a->seed) % shape[i];
			count[i] = 1 + rnd(&a->seed) % (shape[i] - start[i]);
			n *= count[i];
		}
		if (ts_read_slice(a->st, "w", 3, start, count, TS_F32, buf, n * 4) != 0) {
			a->failures++;
			continue;
		}
		uint64_t k = 0;
		for (uint64_t i = 0; i < count[0]; i++)
			for (uint64_t j = 0; j < count[1]; j++)
				for (uint64_t l = 0; l < count[2]; l++, k++) {
					uint64_t src = ((start[0] + i) * shape[1] + start[1] + j) *
							       shape[2] +
						       start[2] + l;
					if (memcmp(&buf[k], &a->want[src], 4) != 0)
						a->failures++;
				}
	}
	free(buf);
	return NULL;
}

static void concurrent_readers(ts_io_backend io, int64_t cache)
{
	uint64_t s = seed_of("concurrent");
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	uint64_t shape[3] = {9, 70, 513};
	uint64_t n = 9 * 70 * 513;
	float *x = malloc(n * 4);
	for (uint64_t i = 0; i < n; i++)
		x[i] = normal(&s);
	ts_store *st = open_store(io, cache, 1);
	write_tensor(st, "w", 3, shape, &cfg, x, 4080, &s);
	float *want = expected_f32(&cfg, x, 3, shape);
	pthread_t t[6];
	struct reader_arg a[6];
	for (int i = 0; i < 6; i++) {
		a[i] = (struct reader_arg){st, want, s + (uint64_t)i * 7919, 0};
		pthread_create(&t[i], NULL, reader_thread, &a[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(a[i].failures, 0, "thread %d: %d failures", i, a[i].failures);
	}
	ts_cache_stats cs;
	ts_cache_stats_get(&cs, st);
	cr_expect_leq(cs.used_bytes, cs.budget_bytes);
	ts_store_close(st);
	free(x);
	free(want);
}

Test(reader, concurrent_readers_on_uring_with_small_cache, .init = mkdir_fresh, .fini = rm_fresh)
{
	concurrent_readers(TS_IO_URING, 300 * 1024);
}

Test(reader, concurrent_readers_on_pread, .init = mkdir_fresh, .fini = rm_fresh)
{
	concurrent_readers(TS_IO_PREAD, 0);
}

Test(reader, concurrent_readers_on_mmap, .init = mkdir_fresh, .fini = rm_fresh)
{
	concurrent_readers(TS_IO_MMAP, 1 << 20);
}

Test(reader, scalar_tensor_reads_with_zero_dimensions, .init = mkdir_fresh, .fini = rm_fresh)
{
	ts_store *st = open_store(TS_IO_URING, 0, 1);
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
	cfg.raw_dtype = TS_F32;
	float x = 3.25f, y = 0;
	ts_writer *w;
	ts_write_opts wo;
	ts_write_opts_init(&wo);
	cr_assert_eq(ts_writer_begin(&w, st, "scale", TS_F32, 0, NULL, &cfg, &wo), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_writer_append(w, &x, 4), 0, "%s", ts_error_last());
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
	cr_assert_eq(ts_read_slice(st, "scale", 0, NULL, NULL, TS_F32, &y, 4), 0, "%s",
		     ts_error_last());
	cr_expect_eq(y, 3.25f);
	cr_expect_eq(ts_read_slice(st, "scale", 0, NULL, NULL, TS_F32, &y, 3), TS_ESHORTBUF);
	ts_store_close(st);
}

/* -- ts_read_many and ts_read_rows against ts_read_slice ------------------------------------- */

/* A store of tensors in several codecs, small pages so that each has many. */
static void many_store(uint64_t *s)
{
	static const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_RAW, TS_CODEC_LOSSLESS,
					  TS_CODEC_MXFP4, TS_CODEC_FP8, TS_CODEC_NVFP4};
	static const uint64_t tshapes[][3] = {{300, 130}, {77, 50}, {90, 70}, {5, 40, 96},
					      {1, 1000}, {1000, 64}};
	static const int ndims[] = {2, 2, 2, 3, 2, 2};
	ts_store *st = open_store(TS_IO_URING, 0, 1);
	for (int t = 0; t < 6; t++) {
		char name[32];
		uint64_t n = elems_of(ndims[t], tshapes[t]);
		float *x = malloc(n * 4);
		ts_codec_config cfg = ts_codec_config_default(codecs[t]);
		if (codecs[t] == TS_CODEC_RAW || codecs[t] == TS_CODEC_LOSSLESS) {
			cfg.raw_dtype = TS_F32;
			cfg.bits_per_value = 32;
		}
		for (uint64_t i = 0; i < n; i++)
			x[i] = normal(s);
		snprintf(name, sizeof(name), "t%d", t);
		write_tensor(st, name, ndims[t], tshapes[t], &cfg, x, 4080, s);
		free(x);
	}
	ts_store_close(st);
}

Test(reader, read_many_equals_one_read_slice_per_request, .init = mkdir_fresh, .fini = rm_fresh)
{
	uint64_t s = seed_of("read_many");
	many_store(&s);
	for (int b = 0; b < NBACKENDS; b++) {
		ts_store *st = open_store(backends[b], b == 2 ? 1 << 20 : 0, 0);
		ts_read_request q[10];
		uint8_t *got[10], *want[10];
		uint64_t starts[10][3], counts[10][3];
		size_t n = 0;
		for (int t = 0; t < 6; t++) {
			char name[32];
			ts_tensor_info info;
			snprintf(name, sizeof(name), "t%d", t);
			cr_assert_eq(ts_tensor_info_get(&info, st, name), 0);
			/* whole tensors as BF16 (count NULL) and random slices as F32 */
			for (int k = 0; k < (t < 2 ? 2 : 1); k++) {
				ts_read_request *r = &q[n];
				memset(r, 0, sizeof(*r));
				r->name = strdup(name);
				r->dtype = k ? TS_F32 : TS_BF16;
				uint64_t e = 1;
				if (k) {
					for (int d = 0; d < info.ndim; d++) {
						counts[n][d] = rnd(&s) % info.shape[d] + 1;
						starts[n][d] =
							rnd(&s) % (info.shape[d] - counts[n][d] + 1);
						e *= counts[n][d];
					}
					r->ndim = info.ndim;
					r->start = starts[n];
					r->count = counts[n];
				} else {
					e = elems_of(info.ndim, info.shape);
				}
				r->dst_size = e * ts_dtype_size(r->dtype);
				got[n] = malloc(r->dst_size);
				want[n] = malloc(r->dst_size);
				memset(got[n], 0x5a, r->dst_size);
				r->dst = got[n];
				uint64_t zero[3] = {0, 0, 0};
				cr_assert_eq(ts_read_slice(st, name, info.ndim, k ? starts[n] : zero,
							   k ? counts[n] : info.shape, r->dtype,
							   want[n], r->dst_size),
					     0, "%s", ts_error_last());
				n++;
			}
		}
		/* a request for nothing in the middle */
		uint64_t z0[2] = {3, 0}, zc[2] = {0, 130};
		q[n] = (ts_read_request){"t0", 2, z0, zc, TS_F32, NULL, 0};
		got[n] = want[n] = NULL;
		n++;
		cr_assert_eq(ts_read_many(st, q, n), 0, "%s: %s",
			     ts_io_backend_name(backends[b]), ts_error_last());
		for (size_t i = 0; i < n; i++) {
			if (got[i])
				cr_assert_eq(memcmp(got[i], want[i], q[i].dst_size), 0,
					     "%s: request %zu (%s) differs from ts_read_slice",
					     ts_io_backend_name(backends[b]), i, q[i].name);
			if (i + 1 < n)
				free((char *)q[i].name);
			free(got[i]);
			free(want[i]);
		}
		ts_store_close(st);
	}
}

Test(reader, read_many_stops_at_the_first_failing_request, .init = mkdir_fresh, .fini = rm_fresh)
{
	uint64_t s = seed_of("read_many errors");
	many_store(&s);
	ts_store *st = open_store(TS_IO_URING, 0, 0);
	size_t n0 = 300 * 130, n5 = 1000 * 64;
	float *a = malloc(n0 * 4), *b = malloc(n5 * 4), *ref = malloc(n0 * 4);
	uint64_t z[2] = {0, 0}, sh0[2] = {300, 130};
	ts_read_request q[3] = {{"t0", 0, NULL, NULL, TS_F32, a, n0 * 4},
				{"missing", 0, NULL, NULL, TS_F32, b, n5 * 4},
				{"t5", 0, NULL, NULL, TS_F32, b, n5 * 4}};
	cr_assert_eq(ts_read_many(st, q, 3), TS_ENOTFOUND);
	cr_assert(strstr(ts_error_last(), "missing") != NULL, "%s", ts_error_last());
	cr_assert_eq(ts_read_slice(st, "t0", 2, z, sh0, TS_F32, ref, n0 * 4), 0);
	cr_assert_eq(memcmp(a, ref, n0 * 4), 0, "the request before the failing one was read");
	/* a short buffer, a bad dtype, NULLs */
	q[1] = (ts_read_request){"t5", 0, NULL, NULL, TS_F32, b, n5 * 4 - 1};
	cr_assert_eq(ts_read_many(st, q, 2), TS_ESHORTBUF);
	q[1] = (ts_read_request){"t5", 0, NULL, NULL, TS_U8, b, n5 * 4};
	cr_assert_eq(ts_read_many(st, q, 2), TS_EDTYPE);
	q[1] = (ts_read_request){NULL, 0, NULL, NULL, TS_F32, b, n5 * 4};
	cr_assert_eq(ts_read_many(st, q, 2), TS_EINVAL);
	cr_assert_eq(ts_read_many(NULL, q, 1), TS_EINVAL);
	cr_assert_eq(ts_read_many(st, NULL, 1), TS_EINVAL);
	cr_assert_eq(ts_read_many(st, NULL, 0), 0);
	free(a), free(b), free(ref);
	ts_store_close(st);
}

/*
 * Two raw tensors of several windows each (5 MiB stored; a window holds at most 4 MiB): while one
 * window decodes, the reads of the next ones are in flight, across the boundary between the
 * requests. A damaged page names its own request, the first damaged one by request order, and
 * every request before it is read completely.
 */
Test(reader, read_many_names_the_first_damaged_request_with_later_windows_in_flight,
     .init = mkdir_fresh, .fini = rm_fresh)
{
	uint64_t s = seed_of("read_many in flight");
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
	const uint64_t rows = 1280, cols = 1024, n = rows * cols;
	uint64_t shape[2] = {rows, cols};
	float *a = malloc(n * 4), *b = malloc(n * 4), *ga = malloc(n * 4), *gb = malloc(n * 4);
	cfg.raw_dtype = TS_F32;
	for (uint64_t i = 0; i < n; i++) {
		a[i] = normal(&s);
		b[i] = normal(&s);
	}
	ts_store *st = open_store(TS_IO_URING, 0, 1);
	write_tensor(st, "a", 2, shape, &cfg, a, 16368, &s);
	write_tensor(st, "b", 2, shape, &cfg, b, 16368, &s);
	ts_store_close(st);
	ts_read_request q[2] = {{"a", 0, NULL, NULL, TS_F32, ga, n * 4},
				{"b", 0, NULL, NULL, TS_F32, gb, n * 4}};

	/* b damaged near its start: a is read whole, the error names b */
	flip_a_page_byte((const uint8_t *)(b + 7 * cols + 3), 64);
	for (int k = 0; k < NBACKENDS; k++) {
		st = open_store(backends[k], 0, 0);
		memset(ga, 0, n * 4);
		cr_expect_eq(ts_read_many(st, q, 2), TS_ECORRUPT, "%s", ts_io_backend_name(backends[k]));
		cr_expect(strstr(ts_error_last(), "tensor 'b'") != NULL, "%s: '%s'",
			  ts_io_backend_name(backends[k]), ts_error_last());
		cr_expect_eq(memcmp(ga, a, n * 4), 0, "%s: the request before the damaged one",
			     ts_io_backend_name(backends[k]));
		ts_store_close(st);
	}
	/* a damaged in its last window too: the error names a, the first damaged request */
	flip_a_page_byte((const uint8_t *)(a + (rows - 3) * cols + 5), 64);
	for (int k = 0; k < NBACKENDS; k++) {
		st = open_store(backends[k], 0, 0);
		cr_expect_eq(ts_read_many(st, q, 2), TS_ECORRUPT, "%s", ts_io_backend_name(backends[k]));
		cr_expect(strstr(ts_error_last(), "tensor 'a'") != NULL, "%s: '%s'",
			  ts_io_backend_name(backends[k]), ts_error_last());
		ts_store_close(st);
	}
	free(a), free(b), free(ga), free(gb);
}

Test(reader, read_rows_equals_one_slice_per_row, .init = mkdir_fresh, .fini = rm_fresh)
{
	uint64_t s = seed_of("read_rows");
	many_store(&s);
	static const char *names[] = {"t0", "t1", "t2", "t3", "t4", "t5"};
	for (int b = 0; b < NBACKENDS; b++) {
		ts_store *st = open_store(backends[b], b == 2 ? 1 << 20 : 0, 0);
		for (int t = 0; t < 6; t++) {
			ts_tensor_info info;
			cr_assert_eq(ts_tensor_info_get(&info, st, names[t]), 0);
			uint64_t cols = info.shape[info.ndim - 1], nrows = 1;
			for (int d = 0; d + 1 < info.ndim; d++)
				nrows *= info.shape[d];
			/* unsorted, with duplicates, first and last row included */
			size_t n = 40;
			uint64_t rows[40];
			for (size_t i = 0; i < n; i++)
				rows[i] = rnd(&s) % nrows;
			rows[3] = rows[7];
			rows[5] = 0;
			rows[9] = nrows - 1;
			rows[10] = rows[9];
			for (int o = 0; o < 2; o++) {
				ts_dtype dt = o ? TS_BF16 : TS_F32;
				size_t rb = cols * ts_dtype_size(dt);
				uint8_t *got = malloc(n * rb), *one = malloc(rb);
				cr_assert_eq(ts_read_rows(st, names[t], n, rows, dt, got, n * rb), 0,
					     "%s", ts_error_last());
				for (size_t i = 0; i < n; i++) {
					/* row r of the 2-D view as a slice of the N-D tensor */
					uint64_t st0[3] = {0}, ct[3] = {1, 1, 1}, r = rows[i];
					for (int d = info.ndim - 2; d >= 0; d--) {
						st0[d] = r % info.shape[d];
						r /= info.shape[d];
					}
					ct[info.ndim - 1] = cols;
					cr_assert_eq(ts_read_slice(st, names[t], info.ndim, st0, ct, dt,
								   one, rb),
						     0, "%s", ts_error_last());
					cr_assert_eq(memcmp(got + i * rb, one, rb), 0,
						     "%s %s: gathered row %zu (%llu) differs",
						     ts_io_backend_name(backends[b]), names[t], i,
						     (unsigned long long)rows[i]);
				}
				free(got);
				free(one);
			}
			/* a row outside the tensor: refused, nothing written */
			uint8_t buf[4 * 1000 * 3];
			memset(buf, 0x77, sizeof(buf));
			uint64_t bad[3] = {0, nrows, 1};
			cr_assert_eq(ts_read_rows(st, names[t], 3, bad, TS_F32, buf, sizeof(buf)),
				     TS_ERANGE);
			for (size_t i = 0; i < sizeof(buf); i++)
				cr_assert_eq(buf[i], 0x77, "written before the range check");
		}
		ts_store_close(st);
	}
}

Test(reader, read_rows_reads_each_page_once_in_one_batch, .init = mkdir_fresh, .fini = rm_fresh)
{
	uint64_t s = seed_of("read_rows pages");
	many_store(&s);
	ts_store *st = open_store(TS_IO_URING, 0, 0);
	ts_tensor_info info;
	cr_assert_eq(ts_tensor_info_get(&info, st, "t5"), 0);
	/* every row of two tile rows, many times over, in reverse */
	uint64_t rows[4 * 64];
	size_t n = 0;
	for (int rep = 0; rep < 4; rep++)
		for (uint64_t r = 0; r < 2 * info.tile_rows && n < 256; r++)
			rows[n++] = 3 * info.tile_rows + 2 * info.tile_rows - 1 - r;
	float *got = malloc(n * 64 * 4);
	ts_cache_stats a, z;
	ts_cache_stats_get(&a, st);
	cr_assert_eq(ts_read_rows(st, "t5", n, rows, TS_F32, got, n * 64 * 4), 0, "%s",
		     ts_error_last());
	ts_cache_stats_get(&z, st);
	uint64_t pages = 2 * ((64 + info.tile_cols - 1) / info.tile_cols);
	/* back-to-back pages merge into fewer reads; never more reads than pages */
	cr_assert_leq(z.storage_reads - a.storage_reads, pages);
	cr_assert_gt(z.storage_reads - a.storage_reads, 0);
	uint64_t page_io = (z.storage_bytes - a.storage_bytes) / pages;
	cr_assert_leq(page_io, 4096 * ((16 + 64 + info.stored_bytes / info.page_count + 4095) / 4096),
		      "%llu bytes per page read", (unsigned long long)page_io);
	free(got);
	ts_store_close(st);
}

Test(reader, load_buffers_are_aligned_zeroed_and_take_a_read, .init = mkdir_fresh,
     .fini = rm_fresh)
{
	uint64_t s = seed_of("buffer");
	many_store(&s);
	ts_store *st = open_store(TS_IO_URING, 0, 0);
	size_t n = 300 * 130 * 4, size = (5u << 20) + 123;
	void *buf = NULL;
	cr_assert_eq(ts_buffer_alloc(&buf, st, size), 0, "%s", ts_error_last());
	cr_assert_eq((uintptr_t)buf % (2u << 20), 0, "2 MiB aligned");
	for (size_t i = 0; i < size; i += 4093)
		cr_assert_eq(((uint8_t *)buf)[i], 0);
	ts_read_request q = {"t0", 0, NULL, NULL, TS_F32, (uint8_t *)buf + size - n, n};
	float *ref = malloc(n);
	uint64_t z[2] = {0, 0}, sh[2] = {300, 130};
	cr_assert_eq(ts_read_many(st, &q, 1), 0, "%s", ts_error_last());
	cr_assert_eq(ts_read_slice(st, "t0", 2, z, sh, TS_F32, ref, n), 0);
	cr_assert_eq(memcmp((uint8_t *)buf + size - n, ref, n), 0);
	ts_buffer_free(buf, size);
	/* without a store (populated on the calling thread); errors */
	cr_assert_eq(ts_buffer_alloc(&buf, NULL, 4096), 0);
	((uint8_t *)buf)[4095] = 1;
	ts_buffer_free(buf, 4096);
	ts_buffer_free(NULL, 4096);
	cr_assert_eq(ts_buffer_alloc(&buf, st, 0), TS_EINVAL);
	cr_assert_null(buf);
	cr_assert_eq(ts_buffer_alloc(NULL, st, 10), TS_EINVAL);
	cr_assert_eq(ts_buffer_alloc(&buf, st, SIZE_MAX - 10), TS_ENOMEM);
	free(ref);
	ts_store_close(st);
}

/* -- geometry: tiles of whole rows, and stores written with an earlier rule ---------------------- */

static ts_store *open_at(const char *path, int write)
{
	ts_open_opts o;
	ts_store *st = NULL;
	ts_open_opts_init(&o);
	o.flags = write ? TS_OPEN_CREATE | TS_OPEN_WRITE : 0;
	o.cache_bytes = 0;
	o.threads = 2;
	cr_assert_eq(ts_store_open(&st, path, &o), 0, "open %s: %s", path, ts_error_last());
	return st;
}

/* Tensor @p name of @p st read whole, a column band, and @p n rows gathered, as F32: the same
 * bytes as tensor @p ref_name of @p ref. */
static void expect_same_reads(ts_store *st, const char *name, ts_store *ref, const char *ref_name,
			      uint64_t rows, uint64_t cols, uint64_t *s)
{
	size_t bytes = rows * cols * 4;
	float *a = malloc(bytes), *b = malloc(bytes);
	uint64_t start[2] = {0, 0}, count[2] = {rows, cols}, gather[40];

	cr_assert_eq(ts_read_slice(st, name, 2, start, count, TS_F32, a, bytes), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_read_slice(ref, ref_name, 2, start, count, TS_F32, b, bytes), 0, "%s",
		     ts_error_last());
	cr_assert_eq(memcmp(a, b, bytes), 0, "'%s' whole", name);
	start[0] = rnd(s) % rows;
	count[0] = 1 + rnd(s) % (rows - start[0]);
	start[1] = 16 * (rnd(s) % (cols / 16));
	count[1] = 1 + rnd(s) % (cols - start[1]);
	bytes = count[0] * count[1] * 4;
	cr_assert_eq(ts_read_slice(st, name, 2, start, count, TS_F32, a, bytes), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_read_slice(ref, ref_name, 2, start, count, TS_F32, b, bytes), 0, "%s",
		     ts_error_last());
	cr_assert_eq(memcmp(a, b, bytes), 0, "'%s' rows %llu+%llu cols %llu+%llu", name,
		     (unsigned long long)start[0], (unsigned long long)count[0],
		     (unsigned long long)start[1], (unsigned long long)count[1]);
	for (int i = 0; i < 40; i++)
		gather[i] = rnd(s) % rows;
	bytes = 40 * cols * 4;
	cr_assert_eq(ts_read_rows(st, name, 40, gather, TS_F32, a, bytes), 0, "%s", ts_error_last());
	cr_assert_eq(ts_read_rows(ref, ref_name, 40, gather, TS_F32, b, bytes), 0, "%s",
		     ts_error_last());
	cr_assert_eq(memcmp(a, b, bytes), 0, "'%s' gathered rows", name);
	free(a);
	free(b);
}

Test(reader, row_access_tensors_read_as_tiled_ones_and_a_row_reads_one_page,
     .init = mkdir_fresh, .fini = rm_fresh)
{
	static const ts_codec codecs[] = {TS_CODEC_NVFP4, TS_CODEC_RAW, TS_CODEC_LOSSLESS};
	const uint64_t shape[2] = {200, 4096};
	uint64_t s = seed_of("row access"), n = shape[0] * shape[1];
	float *x = malloc(n * 4);
	ts_store *st = open_store(TS_IO_URING, 0, 1);

	for (uint64_t i = 0; i < n; i++)
		x[i] = 0.02f * normal(&s);
	for (int c = 0; c < 3; c++) {
		ts_codec_config cfg = ts_codec_config_default(codecs[c]);
		ts_write_opts wo;
		ts_writer *w;
		ts_tensor_info info;
		char tiled[32], rows[32];
		if (codecs[c] != TS_CODEC_NVFP4) {
			cfg.raw_dtype = TS_F32;
			cfg.bits_per_value = 32;
		}
		snprintf(tiled, sizeof tiled, "tiled.%s", ts_codec_name(codecs[c]));
		snprintf(rows, sizeof rows, "rows.%s", ts_codec_name(codecs[c]));
		write_tensor(st, tiled, 2, shape, &cfg, x, 0, &s);
		ts_write_opts_init(&wo);
		wo.amax = amax_of(x, n);
		wo.flags = TS_WRITE_ROWS;
		cr_assert_eq(ts_writer_begin(&w, st, rows, TS_F32, 2, shape, &cfg, &wo), 0, "%s",
			     ts_error_last());
		cr_assert_eq(ts_writer_append(w, x, n * 4), 0, "%s", ts_error_last());
		cr_assert_eq(ts_writer_commit(&info, w), 0, "%s", ts_error_last());
		cr_expect_eq(info.tile_cols, 4096, "%s: tiles of whole rows", rows);
		expect_same_reads(st, rows, st, tiled, shape[0], shape[1], &s);

		/* one gathered row: one page, one read */
		ts_cache_stats a, z;
		uint64_t row = 123;
		static float one[4096];
		ts_cache_stats_get(&a, st);
		cr_assert_eq(ts_read_rows(st, rows, 1, &row, TS_F32, one, sizeof one), 0, "%s",
			     ts_error_last());
		ts_cache_stats_get(&z, st);
		cr_expect_eq(z.storage_reads - a.storage_reads, 1, "%s", rows);
		cr_expect_leq(z.storage_bytes - a.storage_bytes,
			      4096 * ((16 + 40 + ts_codec_encoded_size(&cfg, info.tile_rows, 4096) +
				       4095) / 4096), "%s", rows);
	}
	free(x);
	ts_store_close(st);
}

/* tests/golden/stores/geometry-0.2.tst (README there), written before tiles of whole rows
 * existed, reads as it did: the same values written now with whole-row tiles (as import writes
 * a token embedding now) decode to the same bytes through every read call. */
Test(reader, a_store_written_before_whole_row_tiles_reads_as_the_same_values_written_now,
     .init = mkdir_fresh, .fini = rm_fresh)
{
	const uint64_t shape[2] = {56, 4096}, n = 56 * 4096;
	char golden[512], path[300], cmd[900];
	uint16_t *x = malloc(n * 2);
	uint64_t s = 1;
	float amax = 0;
	ts_tensor_info old, now;

	snprintf(golden, sizeof golden, "%s/tests/golden/stores/geometry-0.2.tst", TS_SRCDIR);
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", golden, store_path());
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	for (uint64_t i = 0; i < n; i++) {
		x[i] = ts_f32_to_bf16(((float)(rnd(&s) >> 40) / 16777216.0f - 0.5f) * 0.04f);
		amax = fabsf(ts_bf16_to_f32(x[i])) > amax ? fabsf(ts_bf16_to_f32(x[i])) : amax;
	}
	snprintf(path, sizeof path, "%s/now.tst", dir);
	ts_store *st = open_at(path, 1);
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_write_opts wo;
	ts_writer *w;
	ts_write_opts_init(&wo);
	wo.amax = amax;
	wo.flags = TS_WRITE_ROWS;
	cr_assert_eq(ts_writer_begin(&w, st, "w", TS_BF16, 2, shape, &cfg, &wo), 0, "%s",
		     ts_error_last());
	cr_assert_eq(ts_writer_append(w, x, n * 2), 0, "%s", ts_error_last());
	cr_assert_eq(ts_writer_commit(&now, w), 0, "%s", ts_error_last());
	ts_store *before = open_at(store_path(), 0);
	cr_assert_eq(ts_tensor_info_get(&old, before, "w"), 0, "%s", ts_error_last());
	cr_expect_eq(old.tile_rows, 28, "the geometry it was written with");
	cr_expect_eq(old.tile_cols, 512);
	cr_expect_eq(old.page_count, 16);
	cr_expect_eq(now.tile_rows, 7, "the geometry written now");
	cr_expect_eq(now.tile_cols, 4096);
	s = 7;
	for (int rep = 0; rep < 4; rep++)
		expect_same_reads(before, "w", st, "w", shape[0], shape[1], &s);
	uint64_t problems = 1;
	cr_expect_eq(ts_store_check(&problems, before, NULL), 0, "%s", ts_error_last());
	cr_expect_eq(problems, 0);
	ts_store_close(before);
	ts_store_close(st);
	free(x);
}
