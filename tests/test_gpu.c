/*
 * Tests of the GPU path's host side, on the CPU: page planning (ts_page_plan), the payloads as
 * ts_read_pages() places them (lossless unpacked), and the slot pipeline of gpu/pipeline.c driven
 * through a host stand-in backend whose "copy" is memcpy and whose "kernel" is the CPU decoder.
 * The pipeline's output must equal ts_read_slice() and ts_read_encoded() of the same store, for
 * every codec, output dtype and odd rectangle, with slots small enough that reads take many
 * batches, reuse every slot and grow one. In a build without CUDA, asking for the GPU must say
 * so. (Bit-exactness of the CUDA kernels is checked on a GPU by tools/gpu/gpu_check.sh.)
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec/lossless.h"
#include "config.h"
#include "gpu/gpu.h"
#include "storetest.h"
#include "tstore.h"

/* -- the host stand-in backend ------------------------------------------------------------------ */

#define SLOTS 3

struct host {
	int pending[SLOTS]; /* submitted and not yet waited for */
};

static _Atomic int submits; /* batches the stand-in decoded (by the filler threads) */

static int h_open(void **ctx, int device, int slots)
{
	cr_assert_eq(device, 0);
	cr_assert_eq(slots, SLOTS);
	*ctx = calloc(1, sizeof(struct host));
	return *ctx ? 0 : TS_ENOMEM;
}

static void h_close(void *ctx)
{
	free(ctx);
}

static int h_alloc(void *ctx, void **p, size_t n)
{
	(void)ctx;
	*p = malloc(n);
	return *p ? 0 : TS_ENOMEM;
}

static void h_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static int h_begin(void *ctx, void *stream)
{
	(void)ctx, (void)stream;
	return 0;
}

static int h_wait(void *ctx, int slot)
{
	((struct host *)ctx)->pending[slot] = 0;
	return 0;
}

static int h_end(void *ctx, void *stream)
{
	(void)ctx, (void)stream;
	return 0;
}

static int h_sync(void *ctx)
{
	memset(((struct host *)ctx)->pending, 0, sizeof(((struct host *)ctx)->pending));
	return 0;
}

/* The CPU decode of one page payload as ts_read_pages() places it, into nr x nc of dtype. */
static void page_decode(const struct ts__gpu_job *job, const uint8_t *pay,
			const struct ts__gpu_page *pg, void *out)
{
	const ts_codec_config *c = &job->codec;
	uint64_t n = (uint64_t)pg->nr * pg->nc;
	int rc;

	if (c->codec == TS_CODEC_LOSSLESS) {
		ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
		size_t es = ts_dtype_size(c->raw_dtype);
		raw.raw_dtype = c->raw_dtype;
		raw.bits_per_value = (int)(8 * es);
		if (pay[0] == TS_LOSSLESS_STORED) {
			rc = ts_codec_decode(&raw, 1.0f, pay + 1, n * es, pg->nr, pg->nc, job->dtype,
					     out, pg->nc);
		} else {
			uint8_t *bits = malloc(n * es);
			cr_assert_eq(pay[0], TS_LOSSLESS_PLANES);
			cr_assert_eq(pay[1] | pay[2] << 8 | pay[3] << 16 | (uint32_t)pay[4] << 24, n);
			const uint8_t *sm = pay + 5, *e = pay + 5 + n * (es - 1);
			if (es == 2)
				ts__lossless_join16_scalar(e, sm, n, bits);
			else
				ts__lossless_join32_scalar(e, sm, n, bits);
			rc = ts_codec_decode(&raw, 1.0f, bits, n * es, pg->nr, pg->nc, job->dtype,
					     out, pg->nc);
			free(bits);
		}
	} else {
		rc = ts_codec_decode(c, job->tensor_scale, pay, ts_codec_encoded_size(c, pg->nr, pg->nc),
				     pg->nr, pg->nc, job->dtype, out, pg->nc);
	}
	cr_assert_eq(rc, 0, "stand-in decode: %s", ts_error_last());
}

/* The stand-in "kernel": gpu/gpu.h's contract, on the CPU. */
static void h_kernel(const struct ts__gpu_job *job, const uint8_t *batch)
{
	const struct ts__gpu_page *t = (const struct ts__gpu_page *)(batch + job->table);

	cr_assert_eq(job->table % 16, 0);
	for (uint32_t i = 0; i < job->npages; i++) {
		const struct ts__gpu_page *pg = &t[i];
		const uint8_t *pay = batch + pg->off;
		cr_assert_eq(pg->off % 16, 0, "payloads start at 16-byte offsets");
		if (job->out == TS__GPU_PLANES) {
			size_t cr, sr;
			ts_tensor_info fake = {0};
			fake.ndim = 1;
			fake.shape[0] = pg->nc;
			fake.codec = job->codec;
			cr_assert_eq(ts_read_encoded_size(&cr, &sr, &fake, 1), 0);
			uint64_t blk0 = pg->c0 / (uint64_t)job->codec.block_size;
			size_t cb = job->codec.codec == TS_CODEC_NVFP4 ? 8 : 16;
			for (uint32_t r = 0; r < pg->nr; r++) {
				uint64_t R = pg->r0 + r;
				if (R < job->ra || R >= job->ra + job->rn)
					continue;
				memcpy((uint8_t *)job->dst + (R - job->ra) * job->dst_stride +
					       (job->codec.codec == TS_CODEC_FP8 ? pg->c0 : blk0 * cb),
				       pay + r * cr, cr);
				if (sr)
					memcpy((uint8_t *)job->dst2 + (R - job->ra) * job->dst2_stride + blk0,
					       pay + pg->nr * cr + r * sr, sr);
			}
			continue;
		}
		size_t es = ts_dtype_size(job->dtype);
		uint8_t *tmp = malloc((size_t)pg->nr * pg->nc * es);
		page_decode(job, pay, pg, tmp);
		for (uint32_t r = 0; r < pg->nr; r++) {
			uint64_t R = pg->r0 + r;
			if (R < job->ra || R >= job->ra + job->rn)
				continue;
			for (uint32_t c = 0; c < pg->nc; c++) {
				uint64_t C = pg->c0 + c;
				if (C < job->ca || C >= job->ca + job->cn)
					continue;
				memcpy((uint8_t *)job->dst +
					       ((R - job->ra) * job->dst_stride + (C - job->ca)) * es,
				       tmp + ((size_t)r * pg->nc + c) * es, es);
			}
		}
		free(tmp);
	}
}

static int h_submit(void *ctx, int slot, void *dev, const void *host, size_t bytes,
		    const struct ts__gpu_job *job)
{
	struct host *h = ctx;

	cr_assert_not(h->pending[slot], "slot %d rewritten before it was waited for", slot);
	memcpy(dev, host, bytes); /* the "copy" */
	memset((void *)host, 0xA5, bytes); /* what the next batch must not rely on */
	h_kernel(job, dev);
	h->pending[slot] = 1;
	submits++;
	return 0;
}

static const struct ts__gpu_backend stand_in = {
	h_open, h_close, h_alloc, h_free, h_alloc, h_free,
	h_begin, h_wait, h_submit, h_end, h_sync,
};

/* -- the store ------------------------------------------------------------------------------------ */

struct tcase {
	const char *name;
	ts_codec codec;
	int block, symmetric;
	ts_dtype raw_dtype;
};

static const struct tcase cases[] = {
	{"nvfp4", TS_CODEC_NVFP4, 16, 1, TS_F32},  {"mxfp4", TS_CODEC_MXFP4, 32, 1, TS_F32},
	{"int8s", TS_CODEC_INT8, 32, 1, TS_F32},   {"int8a", TS_CODEC_INT8, 64, 0, TS_F32},
	{"fp8", TS_CODEC_FP8, 1, 1, TS_F32},       {"raw32", TS_CODEC_RAW, 1, 1, TS_F32},
	{"rawbf16", TS_CODEC_RAW, 1, 1, TS_BF16},  {"lossless", TS_CODEC_LOSSLESS, 1, 1, TS_F32},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

#define ROWS 111
#define COLS 1100

/* A store holding each case as a [3, 37, 1100] tensor in small pages (several tile columns). */
static ts_store *make_store(uint64_t *seed)
{
	ts_store *st = st_create("gpu.tst", 2);
	uint64_t shape[3] = {3, 37, COLS};
	float *x = malloc(ROWS * COLS * sizeof(float));

	st_fill_f32(x, ROWS * COLS, seed, 1.0f);
	uint16_t *xb = malloc(ROWS * COLS * 2);

	for (size_t i = 0; i < ROWS * COLS; i += 7) /* fewer distinct exponents: lossless planes */
		x[i] = 0.5f;
	for (size_t i = 0; i < ROWS * COLS; i++)
		xb[i] = ts_f32_to_bf16(x[i]);
	for (size_t k = 0; k < NCASES; k++) {
		ts_codec_config cfg = ts_codec_config_default(cases[k].codec);
		ts_write_opts wo;
		ts_writer *w;
		cfg.block_size = cases[k].block;
		cfg.symmetric = cases[k].symmetric;
		if (cases[k].codec == TS_CODEC_RAW || cases[k].codec == TS_CODEC_LOSSLESS) {
			cfg.raw_dtype = cases[k].raw_dtype;
			cfg.bits_per_value = (int)(8 * ts_dtype_size(cases[k].raw_dtype));
		}
		ts_write_opts_init(&wo);
		wo.amax = st_amax(x, ROWS * COLS);
		wo.page_bytes = 4080;
		ts_dtype src = cases[k].raw_dtype == TS_BF16 ? TS_BF16 : TS_F32;
		cr_assert_eq(ts_writer_begin(&w, st, cases[k].name, src, 3, shape, &cfg, &wo), 0,
			     "%s: %s", cases[k].name, ts_error_last());
		if (src == TS_BF16) /* a BF16 source, stored as it is */
			cr_assert_eq(ts_writer_append(w, xb, ROWS * COLS * 2), 0, "%s",
				     ts_error_last());
		else
			cr_assert_eq(ts_writer_append(w, x, ROWS * COLS * sizeof(float)), 0, "%s",
				     ts_error_last());
		cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
	}
	free(x);
	free(xb);
	return st;
}

/* -- tests ------------------------------------------------------------------------------------------ */

Test(gpu, asking_for_the_gpu_without_cuda_says_so)
{
#ifdef TS_HAVE_CUDA
	cr_skip_test("this build has the GPU path");
#else
	ts_gpu_reader *g = (ts_gpu_reader *)1;
	uint64_t seed = st_seed("gpu");
	(void)seed;
	ts_store *st = st_create("nogpu.tst", 1);
	cr_assert_eq(ts_gpu_available(), 0);
	cr_assert(strstr(ts_error_last(), "no GPU path"), "%s", ts_error_last());
	cr_assert_eq(ts_gpu_reader_new(&g, st, 0, 0, 0), TS_ENOTSUP);
	cr_assert_null(g);
	cr_assert(strstr(ts_error_last(), "no GPU path") && strstr(ts_error_last(), "--with-cuda"),
		  "%s", ts_error_last());
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	cr_assert_eq(ts_gpu_decode(&cfg, 1.0f, &cfg, 64, 1, 16, TS_BF16, &cfg, 16, NULL),
		     TS_ENOTSUP);
	ts_store_close(st);
#endif
}

Test(gpu, page_plan_lists_exactly_the_covering_pages)
{
	uint64_t seed = st_seed("gpu");
	ts_store *st = make_store(&seed);
	ts_tensor_info in;
	size_t n, n2;

	cr_assert_eq(ts_tensor_info_get(&in, st, "nvfp4"), 0);
	cr_assert_lt(in.tile_cols, COLS, "small pages give several tile columns");
	for (int t = 0; t < 200; t++) {
		uint64_t ra = st_rand(&seed) % ROWS, rn = 1 + st_rand(&seed) % (ROWS - ra);
		uint64_t ca = st_rand(&seed) % COLS, cn = 1 + st_rand(&seed) % (COLS - ca);
		cr_assert_eq(ts_page_plan(NULL, 0, &n, &in, ra, rn, ca, cn), TS_ESHORTBUF);
		ts_page_ref *p = malloc(n * sizeof(*p));
		cr_assert_eq(ts_page_plan(p, n, &n2, &in, ra, rn, ca, cn), 0);
		cr_assert_eq(n, n2);
		/* every page of the tensor: listed iff it meets the rectangle, in ascending order */
		size_t k = 0;
		for (uint64_t pg = 0; pg < in.page_count; pg++) {
			uint64_t across = (COLS + in.tile_cols - 1) / in.tile_cols;
			uint64_t r0 = pg / across * in.tile_rows, c0 = pg % across * in.tile_cols;
			int meets = r0 < ra + rn && r0 + in.tile_rows > ra && c0 < ca + cn &&
				    c0 + in.tile_cols > ca;
			if (!meets)
				continue;
			cr_assert_lt(k, n);
			cr_assert_eq(p[k].page, pg);
			cr_assert_eq(p[k].r0, r0);
			cr_assert_eq(p[k].c0, c0);
			cr_assert_eq(p[k].nr, ROWS - r0 < in.tile_rows ? ROWS - r0 : in.tile_rows);
			cr_assert_eq(p[k].nc, COLS - c0 < in.tile_cols ? COLS - c0 : in.tile_cols);
			cr_assert_eq(p[k].max_bytes,
				     ts_codec_encoded_size(&in.codec, p[k].nr, p[k].nc));
			k++;
		}
		cr_assert_eq(k, n);
		free(p);
	}
	cr_assert_eq(ts_page_plan(NULL, 0, &n, &in, ROWS, 1, 0, 1), TS_ERANGE);
	cr_assert_eq(ts_page_plan(NULL, 0, &n, &in, 0, 1, 1050, 51), TS_ERANGE);
	cr_assert_eq(ts_page_plan(NULL, 0, &n, &in, 5, 0, 0, COLS), 0);
	cr_assert_eq(n, 0);
	ts_store_close(st);
}

/* The pipeline (stand-in backend) must give what ts_read_slice() gives, bit for bit. */
static void check_pipeline(ts_store *st, ts_gpu_reader *g, const struct tcase *c, ts_dtype dt,
			   uint64_t ra, uint64_t rn, uint64_t ca, uint64_t cn)
{
	size_t es = ts_dtype_size(dt), bytes = rn * cn * es;
	uint64_t stride = cn + 3; /* a padded destination: the pad is never written */
	uint8_t *got = malloc(rn * stride * es), *want = malloc(bytes ? bytes : 1);
	uint64_t start[3], count[3];

	memset(got, 0x5A, rn * stride * es);
	cr_assert_eq(ts_gpu_read(g, c->name, ra, rn, ca, cn, dt, got, stride, NULL), 0,
		     "%s rows %llu+%llu cols %llu+%llu: %s", c->name, (unsigned long long)ra,
		     (unsigned long long)rn, (unsigned long long)ca, (unsigned long long)cn,
		     ts_error_last());
	cr_assert_eq(ts_gpu_reader_sync(g), 0);
	/* the same rectangle through ts_read_slice(), row by row of the [3, 37, 1100] tensor */
	for (uint64_t r = 0; r < rn; r++) {
		uint64_t R = ra + r;
		start[0] = R / 37, start[1] = R % 37, start[2] = ca;
		count[0] = 1, count[1] = 1, count[2] = cn;
		cr_assert_eq(ts_read_slice(st, c->name, 3, start, count, dt, want + r * cn * es,
					   cn * es), 0, "%s", ts_error_last());
		cr_assert_eq(memcmp(got + r * stride * es, want + r * cn * es, cn * es), 0,
			     "%s as %s: row %llu differs", c->name, ts_dtype_name(dt),
			     (unsigned long long)R);
		for (size_t b = cn * es; b < stride * es; b++)
			cr_assert_eq(got[r * stride * es + b], 0x5A, "%s: the pad was written",
				     c->name);
	}
	free(got);
	free(want);
}

Test(gpu, pipeline_gives_what_read_slice_gives)
{
	uint64_t seed = st_seed("gpu");
	ts_store *st = make_store(&seed);
	const ts_dtype dts[] = {TS_F32, TS_BF16, TS_F16};
	ts_gpu_reader *g;

	/* 4 KiB slots: each read takes many batches; a lossless or raw page grows a slot */
	cr_assert_eq(ts__gpu_reader_new(&g, st, &stand_in, 0, SLOTS, 4096), 0, "%s",
		     ts_error_last());
	for (size_t k = 0; k < NCASES; k++) {
		for (size_t d = 0; d < 3; d++) {
			check_pipeline(st, g, &cases[k], dts[d], 0, ROWS, 0, COLS);
			check_pipeline(st, g, &cases[k], dts[d], 17, 1, 3, 33);
			check_pipeline(st, g, &cases[k], dts[d], 40, 15, 100, 17);
			check_pipeline(st, g, &cases[k], dts[d], 110, 1, 1099, 1);
			check_pipeline(st, g, &cases[k], dts[d], 5, 20, 500, 100);
			for (int t = 0; t < 4; t++) {
				uint64_t ra = st_rand(&seed) % ROWS, rn = 1 + st_rand(&seed) % (ROWS - ra);
				uint64_t ca = st_rand(&seed) % COLS, cn = 1 + st_rand(&seed) % (COLS - ca);
				check_pipeline(st, g, &cases[k], dts[d], ra, rn, ca, cn);
			}
		}
	}
	cr_assert_gt(submits, 50 * (int)NCASES, "reads went through many batches");
	ts_gpu_reader_free(g);
	ts_store_close(st);
}

/* One ts_gpu_read_many() of every case (whole tensors and rectangles, one case twice) gives
 * what one ts_gpu_read() per request gives; a bad request anywhere writes nothing. */
Test(gpu, read_many_gives_what_reads_one_by_one_give)
{
	uint64_t seed = st_seed("gpu");
	ts_store *st = make_store(&seed);
	ts_gpu_request q[NCASES + 1];
	uint8_t *many[NCASES + 1], *one[NCASES + 1];
	size_t bytes[NCASES + 1];
	ts_gpu_reader *g;

	cr_assert_eq(ts__gpu_reader_new(&g, st, &stand_in, 0, SLOTS, 4096), 0, "%s",
		     ts_error_last());
	for (size_t k = 0; k <= NCASES; k++) {
		const struct tcase *c = &cases[k % NCASES];
		uint64_t ra = k % 3 ? 7 : 0, rn = k % 3 ? 50 : ROWS;
		uint64_t ca = k % 2 ? 90 : 0, cn = k % 2 ? 700 : COLS;
		ts_dtype dt = k % 3 == 1 ? TS_BF16 : k % 3 == 2 ? TS_F16 : TS_F32;
		if (c->codec == TS_CODEC_RAW && c->raw_dtype == TS_BF16)
			dt = TS_BF16;
		bytes[k] = rn * cn * ts_dtype_size(dt);
		many[k] = malloc(bytes[k]);
		one[k] = malloc(bytes[k]);
		memset(many[k], 0x5A, bytes[k]);
		q[k] = (ts_gpu_request){c->name, ra, rn, ca, cn, dt, many[k], cn};
		cr_assert_eq(ts_gpu_read(g, c->name, ra, rn, ca, cn, dt, one[k], cn, NULL), 0,
			     "%s: %s", c->name, ts_error_last());
	}
	int before = submits;
	cr_assert_eq(ts_gpu_read_many(g, q, NCASES + 1, NULL), 0, "%s", ts_error_last());
	cr_assert_eq(ts_gpu_reader_sync(g), 0);
	cr_assert_gt(submits - before, (int)NCASES, "the requests went through many batches");
	for (size_t k = 0; k <= NCASES; k++)
		cr_assert_eq(memcmp(many[k], one[k], bytes[k]), 0, "request %zu (%s) differs", k,
			     q[k].name);

	/* a missing name, a stride too small, a dtype the codec cannot give: nothing written */
	for (int bad = 0; bad < 3; bad++) {
		ts_gpu_request b[NCASES + 1];
		memcpy(b, q, sizeof(q));
		for (size_t k = 0; k <= NCASES; k++)
			memset(many[k], 0x5A, bytes[k]);
		if (bad == 0)
			b[NCASES / 2].name = "no such tensor";
		else if (bad == 1)
			b[NCASES].dst_stride = b[NCASES].col_count - 1;
		else
			b[NCASES - 1].dtype = TS_I32;
		int rc = ts_gpu_read_many(g, b, NCASES + 1, NULL);
		cr_assert_eq(rc, bad == 0 ? TS_ENOTFOUND : bad == 1 ? TS_EINVAL : TS_EDTYPE,
			     "bad request %d: %d (%s)", bad, rc, ts_error_last());
		for (size_t k = 0; k <= NCASES; k++)
			for (size_t i = 0; i < bytes[k]; i++)
				cr_assert_eq(many[k][i], 0x5A, "bad request %d: request %zu written",
					     bad, k);
	}
	cr_assert_eq(ts_gpu_read_many(g, q, 0, NULL), 0);
	cr_assert_eq(ts_gpu_read_many(g, NULL, 1, NULL), TS_EINVAL);
	for (size_t k = 0; k <= NCASES; k++)
		free(many[k]), free(one[k]);
	ts_gpu_reader_free(g);
	ts_store_close(st);
}

Test(gpu, pipeline_planes_are_read_encoded_bytes)
{
	uint64_t seed = st_seed("gpu");
	ts_store *st = make_store(&seed);
	const char *names[] = {"nvfp4", "mxfp4", "fp8"};
	ts_gpu_reader *g;

	cr_assert_eq(ts__gpu_reader_new(&g, st, &stand_in, 0, SLOTS, 8192), 0, "%s",
		     ts_error_last());
	for (int k = 0; k < 3; k++) {
		ts_tensor_info in;
		size_t cs, ss, cs1, ss1;
		cr_assert_eq(ts_tensor_info_get(&in, st, names[k]), 0);
		cr_assert_eq(ts_read_encoded_size(&cs, &ss, &in, 50), 0);
		cr_assert_eq(ts_read_encoded_size(&cs1, &ss1, &in, 1), 0);
		uint8_t *c1 = malloc(cs), *s1 = malloc(ss + 1), *c2 = malloc(cs), *s2 = malloc(ss + 1);
		cr_assert_eq(ts_read_encoded(st, names[k], 30, 50, c1, cs, s1, ss), 0);
		memset(c2, 0, cs);
		memset(s2, 0, ss + 1);
		cr_assert_eq(ts_gpu_read_encoded(g, names[k], 30, 50, c2, s2, NULL), 0, "%s",
			     ts_error_last());
		cr_assert_eq(memcmp(c1, c2, cs), 0, "%s: code plane differs", names[k]);
		cr_assert_eq(memcmp(s1, s2, ss), 0, "%s: scale plane differs", names[k]);
		free(c1), free(s1), free(c2), free(s2);
	}
	cr_assert_eq(ts_gpu_read_encoded(g, "int8s", 0, 1, &seed, &seed, NULL), TS_ENOTSUP);
	ts_gpu_reader_free(g);
	ts_store_close(st);
}

Test(gpu, read_pages_refuses_a_stale_plan_and_a_short_buffer)
{
	uint64_t seed = st_seed("gpu");
	ts_store *st = make_store(&seed);
	ts_tensor_info in;
	ts_page_ref p[2];
	size_t n, off[2], len[2];
	uint8_t buf[8192];

	cr_assert_eq(ts_tensor_info_get(&in, st, "nvfp4"), 0);
	cr_assert_eq(ts_page_plan(p, 2, &n, &in, 0, 1, 0, COLS), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(ts_read_pages(st, "nvfp4", &in, p, 2, buf, 100, off, len), TS_ESHORTBUF);
	cr_assert_eq(ts_read_pages(st, "nvfp4", &in, p, 2, buf, sizeof buf, off, len), 0, "%s",
		     ts_error_last());
	cr_assert_eq(off[0], 0);
	cr_assert_eq(off[1], (p[0].max_bytes + 15) & ~(size_t)15);
	cr_assert_eq(len[0], p[0].max_bytes);
	p[1].nc++;
	cr_assert_eq(ts_read_pages(st, "nvfp4", &in, p, 2, buf, sizeof buf, off, len), TS_EINVAL);
	p[1].nc--;
	in.id++;
	cr_assert_eq(ts_read_pages(st, "nvfp4", &in, p, 2, buf, sizeof buf, off, len), TS_EBUSY);
	ts_store_close(st);
}
