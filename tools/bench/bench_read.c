/*
 * `tstore bench read`: the read path's benchmarks, each printing figures and the ratio against a
 * baseline measured in the same run, plus the I/O backend and kernels in effect. Public API only
 * (and liburing for the device's floor in section 5).
 *
 *   1. Cold full load: every tensor of an NVFP4 store read as BF16 with nothing cached, against
 *      O_DIRECT reads (16 MiB preads, like dd iflag=direct bs=8M) of the store file and of the
 *      BF16 source safetensors file in the same run; the page cache is emptied before each
 *      (echo 3 > /proc/sys/vm/drop_caches, needs root; said so when it cannot). One
 *      ts_read_slice() per tensor and one ts_read_many() into a pre-touched buffer; then
 *      ts_read_many() into fresh memory (ts_buffer_alloc, or aligned_alloc) with the
 *      allocation timed; then the same tensors stored lossless (issue 11's cold figure).
 *      Each figure is the best of --reps runs.
 *   2. Decode efficiency: an NVFP4 tensor read to F32 with the decoded cache off and the file in
 *      the page cache (mmap backend), against the same tensor stored raw F32.
 *   3. Read amplification: bytes read from storage / stored bytes of the requested region, for
 *      row slices (64-row ones at 1000 random starts: mean and worst), quarter-width and an
 *      eighth-width column shard of a 4096 x 4096 NVFP4 tensor.
 *   4. io_uring batches against one-at-a-time O_DIRECT pread (the pread backend with
 *      TSTORE_IO_THREADS=1): cold reads of column strips of 32 scattered pages each.
 *   5. Row gathers: 64 random rows of a 32000 x 4096 NVFP4 embedding (ts_read_rows) against
 *      one contiguous 64-row slice, cold; the embedding written as import writes a token
 *      embedding (TS_WRITE_ROWS: whole-row tiles) and with a weight matrix's tiles; and the
 *      device's floor for both: as many O_DIRECT reads of the same size at random places,
 *      FLOOR_QD in flight through io_uring, cold.
 *
 * The stores and the safetensors file are created in a temporary directory (--dir) with the
 * writer API and removed at the end (--keep keeps them).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"

#define CMD "bench read"

#define MIB (1024.0 * 1024.0)
#define EMB_ROWS 32000
#define EMB_COLS 4096
#define FLOOR_QD 32 /* reads in flight for the device's floor: the uring backend's depth */

struct bt {
	char name[96];
	uint64_t rows, cols;
	uint64_t offset; /* in the safetensors data region */
};

struct bench {
	char dir[512];
	char st_path[600];
	char ll_path[600]; /* the same tensors, every one lossless */
	char nv_path[600];
	char aux_path[600];
	uint64_t size_mb;
	int keep;
	int cold_ok;
	int reps;
	struct bt *t;
	int nt;
	uint64_t data_bytes;
	uint64_t rng;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Approximately normal: sum of four uniforms (cheap; weight-like bell shape). */
static float gauss(uint64_t *s)
{
	uint64_t r = rnd(s);
	float a = (float)(r & 0xFFFF) + (float)((r >> 16) & 0xFFFF) + (float)((r >> 32) & 0xFFFF) +
		  (float)(r >> 48);
	return (a - 2.0f * 65535.0f) / (65535.0f * 0.57735f);
}

static int drop_caches(struct bench *b)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0 || write(fd, "3\n", 2) != 2) {
		if (fd >= 0)
			close(fd);
		if (b->cold_ok)
			cli_error(CMD, strerror(errno),
				  "cannot drop the page cache: \"cold\" figures are warm");
		b->cold_ok = 0;
		return -1;
	}
	close(fd);
	return 0;
}

static ts_store *open_store(const char *path, unsigned flags, ts_io_backend io, int64_t cache)
{
	ts_open_opts o;
	ts_store *st = NULL;
	int rc;

	ts_open_opts_init(&o);
	o.flags = flags;
	o.io = io;
	o.cache_bytes = cache;
	rc = ts_store_open(&st, path, &o);
	if (rc) {
		cli_error(CMD, path, "%s", ts_error_last());
		return NULL;
	}
	return st;
}

static void say_backend(ts_store *st)
{
	const char *d = ts_store_io_detail(st);
	printf("  backend %s%s%s, kernels %s\n", ts_io_backend_name(ts_store_io_backend(st)),
	       *d ? ": " : "", d, ts_kernel_name());
}

/* Write one tensor of BF16 @p x to the store with @p cfg and write flags @p flags. */
static int put_tensor(ts_store *st, const char *name, ts_dtype sdt, const void *x,
			    uint64_t rows, uint64_t cols, const ts_codec_config *cfg, float amax,
			    unsigned flags)
{
	ts_writer *w;
	ts_write_opts wo;
	uint64_t shape[2] = {rows, cols};
	int ndim = rows == 1 ? 1 : 2;
	int rc;

	ts_write_opts_init(&wo);
	wo.amax = amax;
	wo.flags = flags;
	rc = ts_writer_begin(&w, st, name, sdt, ndim, ndim == 1 ? shape + 1 : shape, cfg, &wo);
	if (rc == 0)
		rc = ts_writer_append(w, x, rows * cols * ts_dtype_size(sdt));
	if (rc == 0)
		return ts_writer_commit(NULL, w);
	cli_error(CMD, NULL, "writing '%s': %s", name, ts_error_last());
	ts_writer_abort(w);
	return rc;
}

/* -- 1. the model: a BF16 safetensors file and its NVFP4 store ------------------------------- */

static void add_t(struct bench *b, const char *name, uint64_t rows, uint64_t cols)
{
	struct bt *t = &b->t[b->nt++];
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->rows = rows;
	t->cols = cols;
	t->offset = b->data_bytes;
	b->data_bytes += rows * cols * 2;
}

static int make_model(struct bench *b)
{
	const uint64_t h = 2048, ffn = 5632;
	const uint64_t per_layer = (4 * h * h + 3 * h * ffn + 2 * h) * 2;
	int layers = (int)((b->size_mb << 20) / per_layer);
	char path[700], name[96];
	FILE *f;
	ts_store *st, *ll;
	ts_codec_config nv = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	ts_codec_config lossless = ts_codec_config_default(TS_CODEC_LOSSLESS); /* BF16 */
	static const char *mats[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
				     "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
				     "mlp.down_proj"};
	double t0 = progress_now();
	int rc = 0;

	if (layers < 1)
		layers = 1;
	raw.raw_dtype = TS_BF16;
	raw.bits_per_value = 16;
	b->t = calloc((size_t)layers * 9, sizeof(*b->t));
	if (!b->t)
		return -1;
	for (int l = 0; l < layers; l++) {
		for (int m = 0; m < 7; m++) {
			snprintf(name, sizeof(name), "model.layers.%d.%s.weight", l, mats[m]);
			add_t(b, name, m == 6 ? h : m >= 4 ? ffn : h, m == 6 ? ffn : h);
		}
		snprintf(name, sizeof(name), "model.layers.%d.input_layernorm.weight", l);
		add_t(b, name, 1, h);
		snprintf(name, sizeof(name), "model.layers.%d.post_attention_layernorm.weight", l);
		add_t(b, name, 1, h);
	}
	/* safetensors: 8-byte header length, JSON header (padded with spaces to 8), data */
	size_t cap = (size_t)b->nt * 200 + 64, len = 0;
	char *hdr = malloc(cap);
	len += (size_t)snprintf(hdr + len, cap - len, "{");
	for (int i = 0; i < b->nt; i++) {
		struct bt *t = &b->t[i];
		if (t->rows == 1)
			len += (size_t)snprintf(hdr + len, cap - len,
						"%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu],"
						"\"data_offsets\":[%llu,%llu]}",
						i ? "," : "", t->name, (unsigned long long)t->cols,
						(unsigned long long)t->offset,
						(unsigned long long)(t->offset + t->cols * 2));
		else
			len += (size_t)snprintf(
				hdr + len, cap - len,
				"%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu,%llu],"
				"\"data_offsets\":[%llu,%llu]}",
				i ? "," : "", t->name, (unsigned long long)t->rows,
				(unsigned long long)t->cols, (unsigned long long)t->offset,
				(unsigned long long)(t->offset + t->rows * t->cols * 2));
	}
	len += (size_t)snprintf(hdr + len, cap - len, "}");
	while (len % 8)
		hdr[len++] = ' ';
	snprintf(path, sizeof(path), "%s/model.safetensors", b->dir);
	f = fopen(path, "wb");
	if (!f) {
		free(hdr);
		return -1;
	}
	uint64_t hl = len;
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(hl >> (8 * i));
	fwrite(le, 1, 8, f);
	fwrite(hdr, 1, len, f);
	free(hdr);

	st = open_store(b->st_path, TS_OPEN_CREATE | TS_OPEN_WRITE, TS_IO_DEFAULT, 0);
	ll = open_store(b->ll_path, TS_OPEN_CREATE | TS_OPEN_WRITE, TS_IO_DEFAULT, 0);
	if (!st || !ll) {
		ts_store_close(st);
		ts_store_close(ll);
		fclose(f);
		return -1;
	}
	for (int i = 0; i < b->nt && rc == 0; i++) {
		struct bt *t = &b->t[i];
		uint64_t n = t->rows * t->cols;
		uint16_t *x = malloc(n * 2);
		float amax = 0;
		for (uint64_t k = 0; k < n; k++) {
			float v = t->rows == 1 ? 1.0f + 0.1f * gauss(&b->rng) : 0.02f * gauss(&b->rng);
			x[k] = ts_f32_to_bf16(v);
			float a = fabsf(ts_bf16_to_f32(x[k]));
			amax = a > amax ? a : amax;
		}
		if (fwrite(x, 2, n, f) != n)
			rc = -1;
		if (rc == 0)
			rc = put_tensor(st, t->name, TS_BF16, x, t->rows, t->cols,
					t->rows == 1 ? &raw : &nv, amax, 0);
		if (rc == 0)
			rc = put_tensor(ll, t->name, TS_BF16, x, t->rows, t->cols, &lossless, amax,
					0);
		free(x);
	}
	if (fclose(f) != 0)
		rc = -1;
	ts_store_close(st);
	ts_store_close(ll);
	printf("model: %d tensors, %.1f MiB BF16 (%d layers of a 2048-wide decoder), stored twice "
	       "(NVFP4, lossless) in "
	       "%.1f s\n",
	       b->nt, (double)b->data_bytes / MIB, layers, progress_now() - t0);
	return rc;
}

/* Read @p path whole into @p buf (@p bytes, 4096-aligned) in 16 MiB preads, O_DIRECT when
 * @p direct (the tail rounded up to whole 4096-byte blocks); seconds, or -1. */
static double read_whole(const char *path, uint8_t *buf, uint64_t bytes, int direct)
{
	uint64_t got = 0;
	double t = progress_now();
	int fd = open(path, O_RDONLY | (direct ? O_DIRECT : 0));

	while (fd >= 0 && got < bytes) {
		size_t want = bytes - got < (16u << 20) ? (size_t)(bytes - got) : (16u << 20);
		if (direct)
			want = (want + 4095) & ~(size_t)4095;
		ssize_t n = pread(fd, buf + got, want, (off_t)got);
		if (n <= 0)
			break;
		got += (uint64_t)n;
	}
	if (fd >= 0)
		close(fd);
	return got >= bytes ? progress_now() - t : -1;
}

/* Read every tensor of the model from @p st as BF16 into its place in @p buf; the seconds in
 * @p secs. @p many: one ts_read_many() call, else one ts_read_slice() per tensor. */
static int load_all(struct bench *b, ts_store *st, uint8_t *buf, int many, double *secs)
{
	int rc = 0;
	double t = progress_now();

	if (many) {
		ts_read_request *q = calloc((size_t)b->nt, sizeof(*q));
		if (!q)
			return -1;
		for (int i = 0; i < b->nt; i++) {
			struct bt *x = &b->t[i];
			q[i] = (ts_read_request){x->name, 0, NULL, NULL, TS_BF16, buf + x->offset,
						 x->rows * x->cols * 2};
		}
		rc = ts_read_many(st, q, (size_t)b->nt);
		free(q);
	}
	for (int i = 0; !many && i < b->nt && rc == 0; i++) {
		struct bt *x = &b->t[i];
		uint64_t start[2] = {0, 0}, count[2] = {x->rows, x->cols};
		int nd = x->rows == 1 ? 1 : 2;
		rc = ts_read_slice(st, x->name, nd, start, nd == 1 ? count + 1 : count, TS_BF16,
				   buf + x->offset, x->rows * x->cols * 2);
	}
	*secs = progress_now() - t;
	if (rc)
		cli_error(CMD, NULL, "%s", ts_error_last());
	return rc;
}

static uint64_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* The best of --reps O_DIRECT reads of @p path, page cache emptied before each; -1 on error. */
static double direct_min(struct bench *b, const char *path, uint8_t *buf, uint64_t bytes)
{
	double best = -1;
	for (int r = 0; r < b->reps; r++) {
		drop_caches(b);
		double t = read_whole(path, buf, bytes, 1);
		if (t > 0 && (best < 0 || t < best))
			best = t;
	}
	return best;
}

/*
 * The best of --reps cold loads of store @p path into @p buf (pre-touched after emptying the
 * page cache), or, with @p fresh, into a buffer allocated for each load and included in its
 * time: ts_buffer_alloc() (fresh 1) or plain aligned_alloc (fresh 2). -1 on error.
 */
static double cold_load(struct bench *b, const char *path, uint8_t *buf, uint64_t bytes, int many,
			int fresh, ts_cache_stats *cs)
{
	double best = -1;
	for (int r = 0; r < b->reps; r++) {
		double t, t0;
		int rc;
		drop_caches(b);
		if (!fresh)
			memset(buf, 3, bytes);
		ts_store *st = open_store(path, 0, TS_IO_DEFAULT, 0);
		if (!st)
			return -1;
		t0 = progress_now();
		if (fresh) {
			void *m = NULL;
			size_t cap = (bytes + 4095) & ~(uint64_t)4095;
			if (fresh == 1)
				rc = ts_buffer_alloc(&m, st, cap);
			else
				rc = (m = aligned_alloc(4096, cap)) ? 0 : -1;
			if (rc == 0)
				rc = load_all(b, st, m, many, &t);
			if (fresh == 1)
				ts_buffer_free(m, cap);
			else
				free(m);
		} else {
			rc = load_all(b, st, buf, many, &t);
		}
		t = progress_now() - t0;
		if (cs)
			ts_cache_stats_get(cs, st);
		ts_store_close(st);
		if (rc)
			return -1;
		if (best < 0 || t < best)
			best = t;
	}
	return best;
}

static int cold_full_load(struct bench *b)
{
	char path[700];
	uint8_t *buf;
	uint64_t src_bytes, nv_bytes, ll_bytes, cap;
	ts_cache_stats cs;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/model.safetensors", b->dir);
	src_bytes = file_size(path);
	nv_bytes = file_size(b->st_path);
	ll_bytes = file_size(b->ll_path);
	cap = src_bytes > ll_bytes ? src_bytes : ll_bytes;
	cap = (cap + 4095) & ~(uint64_t)4095;
	buf = aligned_alloc(4096, cap);
	if (!buf || !src_bytes || !nv_bytes || !ll_bytes) {
		free(buf);
		return -1;
	}
	/* The destination is touched after emptying the page cache, before each timer starts: on
	 * this VM (Firecracker) the first write to every page of an already faulted-in buffer
	 * after drop_caches costs as much as a fresh fault (490 MiB: 1.4 s), which would otherwise
	 * be timed as part of every read. */
	memset(buf, 1, cap);
	drop_caches(b);
	memset(buf, 1, cap);
	double t_pread = read_whole(path, buf, src_bytes, 0);
	double d_src = direct_min(b, path, buf, src_bytes);
	double d_nv = direct_min(b, b->st_path, buf, nv_bytes);
	double d_ll = direct_min(b, b->ll_path, buf, ll_bytes);
	double t_slice = cold_load(b, b->st_path, buf, src_bytes, 0, 0, NULL);
	double t_many = cold_load(b, b->st_path, buf, src_bytes, 1, 0, &cs);
	double t_fresh = cold_load(b, b->st_path, buf, src_bytes, 1, 1, NULL);
	double t_malloc = cold_load(b, b->st_path, buf, src_bytes, 1, 2, NULL);
	double t_ll = cold_load(b, b->ll_path, buf, src_bytes, 1, 0, NULL);
	if (t_pread < 0 || d_src < 0 || d_nv < 0 || d_ll < 0 || t_slice < 0 || t_many < 0 ||
	    t_fresh < 0 || t_malloc < 0 || t_ll < 0) {
		free(buf);
		return -1;
	}
	printf("\n1. cold full load (%s page cache), best of %d; %.1f MiB of BF16 out\n",
	       b->cold_ok ? "empty" : "WARM", b->reps, (double)b->data_bytes / MIB);
	printf("  O_DIRECT reads (dd iflag=direct-like, 16 MiB preads):\n");
	printf("    BF16 source     %8.1f MiB in %6.3f s = %7.1f MiB/s\n", (double)src_bytes / MIB,
	       d_src, (double)src_bytes / MIB / d_src);
	printf("    NVFP4 store     %8.1f MiB in %6.3f s = %7.1f MiB/s\n", (double)nv_bytes / MIB,
	       d_nv, (double)nv_bytes / MIB / d_nv);
	printf("    lossless store  %8.1f MiB in %6.3f s = %7.1f MiB/s\n", (double)ll_bytes / MIB,
	       d_ll, (double)ll_bytes / MIB / d_ll);
	printf("  (the source with plain pread, through the page cache: %.3f s)\n", t_pread);
	printf("  NVFP4 -> BF16, pre-touched buffer (%.1f MiB read from storage):\n",
	       (double)cs.storage_bytes / MIB);
	printf("    one ts_read_slice per tensor %6.3f s\n", t_slice);
	printf("    ts_read_many                 %6.3f s = %.2fx the store's O_DIRECT read "
	       "(target <= 1.25)\n", t_many, t_many / d_nv);
	printf("                                          %.2fx faster than the source's O_DIRECT "
	       "read (target >= 2.5; bound %.2fx)\n", d_src / t_many,
	       (double)src_bytes / (double)nv_bytes);
	printf("  NVFP4 -> BF16 into fresh memory, allocation timed:\n");
	printf("    ts_buffer_alloc + ts_read_many %6.3f s = %.2fx the pre-touched load "
	       "(target <= 1.5)\n", t_fresh, t_fresh / t_many);
	printf("    aligned_alloc + ts_read_many   %6.3f s = %.2fx (4 KiB faults during the "
	       "decode)\n", t_malloc, t_malloc / t_many);
	printf("  lossless -> BF16, pre-touched, ts_read_many %6.3f s = %.2fx faster than the "
	       "source's O_DIRECT read (target >= 1.25; bound %.2fx)\n", t_ll, d_src / t_ll,
	       (double)src_bytes / (double)ll_bytes);
	free(buf);
	return rc;
}

/* -- 2. decode efficiency --------------------------------------------------------------------- */

static double read_rate(ts_store *st, const char *name, uint64_t rows, uint64_t cols, float *buf)
{
	double best = 0;
	for (int rep = 0; rep < 4; rep++) {
		uint64_t start[2] = {0, 0}, count[2] = {rows, cols};
		double t = progress_now();
		if (ts_read_slice(st, name, 2, start, count, TS_F32, buf, rows * cols * 4) != 0) {
			cli_error(CMD, NULL, "%s", ts_error_last());
			return 0;
		}
		t = progress_now() - t;
		if (rep > 0 && (double)(rows * cols) / t > best) /* rep 0 warms the page cache */
			best = (double)(rows * cols) / t;
	}
	return best;
}

static int make_aux(struct bench *b, uint64_t rows, uint64_t cols)
{
	ts_store *st = open_store(b->aux_path, TS_OPEN_CREATE | TS_OPEN_WRITE, TS_IO_DEFAULT, 0);
	ts_codec_config nv = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
	float *x = malloc(rows * cols * 4), amax = 0;
	int rc;

	if (!st || !x) {
		ts_store_close(st);
		free(x);
		return -1;
	}
	raw.raw_dtype = TS_F32;
	for (uint64_t i = 0; i < rows * cols; i++) {
		x[i] = 0.02f * gauss(&b->rng);
		amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
	}
	rc = put_tensor(st, "w.nvfp4", TS_F32, x, rows, cols, &nv, amax, 0);
	if (rc == 0)
		rc = put_tensor(st, "w.raw", TS_F32, x, rows, cols, &raw, amax, 0);
	free(x);
	/* an embedding table, 32000 x 4096 NVFP4 from BF16 (section 5), written twice: as import
	 * writes a token embedding (ts_policy_by_rows(): whole-row tiles) and with the default
	 * tiles of a weight matrix */
	uint16_t *e = malloc((size_t)EMB_ROWS * EMB_COLS * 2);
	amax = 0;
	for (uint64_t i = 0; rc == 0 && e && i < (uint64_t)EMB_ROWS * EMB_COLS; i++) {
		e[i] = ts_f32_to_bf16(0.02f * gauss(&b->rng));
		float a = fabsf(ts_bf16_to_f32(e[i]));
		amax = a > amax ? a : amax;
	}
	if (rc == 0)
		rc = e ? put_tensor(st, "emb", TS_BF16, e, EMB_ROWS, EMB_COLS, &nv, amax,
				    TS_WRITE_ROWS) : -1;
	if (rc == 0)
		rc = put_tensor(st, "emb.tiled", TS_BF16, e, EMB_ROWS, EMB_COLS, &nv, amax, 0);
	free(e);
	ts_store_close(st);
	return rc;
}

/* Read a file once so that it is in the page cache. */
static void warm(const char *path)
{
	static char chunk[1 << 20];
	int fd = open(path, O_RDONLY);
	off_t off = 0;
	ssize_t n;

	while (fd >= 0 && (n = pread(fd, chunk, sizeof(chunk), off)) > 0)
		off += n;
	if (fd >= 0)
		close(fd);
}

static int decode_efficiency(struct bench *b)
{
	const uint64_t rows = 4096, cols = 4096;
	float *buf = malloc(rows * cols * 4);
	ts_io_backend io[2] = {TS_IO_MMAP, TS_IO_DEFAULT};
	int rc = 0;

	warm(b->aux_path);
	printf("\n2. decode efficiency: %llux%llu tensor to F32, decoded cache off, file in the page "
	       "cache\n",
	       (unsigned long long)rows, (unsigned long long)cols);
	for (int k = 0; k < 2 && rc == 0; k++) {
		ts_store *st = open_store(b->aux_path, 0, io[k], 0);
		if (!st) {
			rc = -1;
			break;
		}
		say_backend(st);
		double nv = read_rate(st, "w.nvfp4", rows, cols, buf);
		double raw = read_rate(st, "w.raw", rows, cols, buf);
		printf("  nvfp4: %6.2f G elements/s (%7.1f MiB/s of F32)\n", nv * 1e-9,
		       nv * 4 / MIB);
		printf("  raw:   %6.2f G elements/s (%7.1f MiB/s of F32)\n", raw * 1e-9,
		       raw * 4 / MIB);
		printf("  ratio nvfp4/raw: %.2f (target >= 0.7)%s\n", raw > 0 ? nv / raw : 0,
		       k == 1 ? " [O_DIRECT: storage speed, not the page cache]" : "");
		ts_store_close(st);
	}
	free(buf);
	return rc;
}

/* -- 3. read amplification -------------------------------------------------------------------- */

/* Bytes read from storage by the slice rows r0+nr x cols c0+nc of "w.nvfp4", over the region's
 * share of the tensor's stored bytes; -1 on error. */
static double amp_of(ts_store *st, const ts_tensor_info *info, uint64_t r0, uint64_t nr,
		     uint64_t c0, uint64_t nc, float *buf, uint64_t *read, double *region)
{
	ts_cache_stats a, z;
	uint64_t start[2] = {r0, c0}, count[2] = {nr, nc};

	ts_cache_stats_get(&a, st);
	if (ts_read_slice(st, "w.nvfp4", 2, start, count, TS_F32, buf, nr * nc * 4) != 0) {
		cli_error(CMD, NULL, "%s", ts_error_last());
		return -1;
	}
	ts_cache_stats_get(&z, st);
	*region = (double)info->stored_bytes * (double)(nr * nc) /
		  (double)(info->shape[0] * info->shape[1]);
	*read = z.storage_bytes - a.storage_bytes;
	return (double)*read / *region;
}

static void amp_case(ts_store *st, const ts_tensor_info *info, const char *what, uint64_t r0,
		     uint64_t nr, uint64_t c0, uint64_t nc, float *buf, double target)
{
	uint64_t read;
	double region, x = amp_of(st, info, r0, nr, c0, nc, buf, &read, &region);

	if (x < 0)
		return;
	printf("  %-34s rows %4llu+%-4llu cols %4llu+%-4llu: %8.1f KiB read / %8.1f KiB stored = "
	       "%.3f (target <= %.2f)\n",
	       what, (unsigned long long)r0, (unsigned long long)nr, (unsigned long long)c0,
	       (unsigned long long)nc, (double)read / 1024, region / 1024, x, target);
}

/* 64-row slices at AMP_STARTS random starts: the mean (the target's figure: a slice's start is
 * not chosen by the tiles) and the worst start. */
#define AMP_STARTS 1000
static void amp_random_64(struct bench *b, ts_store *st, const ts_tensor_info *info, float *buf)
{
	double sum = 0, worst = 0, region;
	uint64_t worst_r0 = 0, read;
	int n = 0;

	for (int k = 0; k < AMP_STARTS; k++) {
		uint64_t r0 = rnd(&b->rng) % (info->shape[0] - 64 + 1);
		double x = amp_of(st, info, r0, 64, 0, info->shape[1], buf, &read, &region);
		if (x < 0)
			return;
		sum += x;
		n++;
		if (x > worst) {
			worst = x;
			worst_r0 = r0;
		}
	}
	printf("  row slice (64 rows), %d random starts: mean %.3f (target <= 1.25), worst %.3f "
	       "(rows %llu+64)\n",
	       n, sum / n, worst, (unsigned long long)worst_r0);
}

static int read_amplification(struct bench *b)
{
	ts_store *st = open_store(b->aux_path, 0, TS_IO_URING, 0);
	ts_tensor_info info;
	float *buf = malloc(4096ull * 4096 * 4);

	if (!st || ts_tensor_info_get(&info, st, "w.nvfp4") != 0) {
		ts_store_close(st);
		free(buf);
		return -1;
	}
	printf("\n3. read amplification, 4096x4096 NVFP4 (pages of %llu rows x %llu cols, %llu "
	       "pages, %.1f KiB stored), decoded cache off\n",
	       (unsigned long long)info.tile_rows, (unsigned long long)info.tile_cols,
	       (unsigned long long)info.page_count, (double)info.stored_bytes / 1024);
	say_backend(st);
	amp_case(st, &info, "row slice (quarter height)", 1024, 1024, 0, 4096, buf, 1.25);
	amp_case(st, &info, "row slice (eighth height, odd start)", 777, 512, 0, 4096, buf, 1.25);
	amp_case(st, &info, "row slice (256 rows)", 2000, 256, 0, 4096, buf, 1.25);
	amp_random_64(b, st, &info, buf);
	for (int q = 0; q < 4; q++)
		amp_case(st, &info, "column shard (quarter width)", 0, 4096, (uint64_t)q * 1024, 1024,
			 buf, 1.5);
	amp_case(st, &info, "column shard (eighth width)", 0, 4096, 3584, 512, buf, 1.1);
	ts_store_close(st);
	free(buf);
	return 0;
}

/* -- 5. row gathers ------------------------------------------------------------------------------ */

/* The best of --reps cold reads of 64 rows of @p name: @p gather random rows with ts_read_rows(),
 * else one contiguous 64-row slice at a random start. */
static double emb_read(struct bench *b, const char *name, int gather, uint16_t *buf,
		       uint64_t *bytes, uint64_t *reads)
{
	double best = -1;
	for (int r = 0; r < b->reps; r++) {
		uint64_t rows[64], r0 = rnd(&b->rng) % (EMB_ROWS - 64 + 1);
		ts_cache_stats a, z;
		int rc;
		for (int i = 0; i < 64; i++)
			rows[i] = rnd(&b->rng) % EMB_ROWS;
		drop_caches(b);
		ts_store *st = open_store(b->aux_path, 0, TS_IO_DEFAULT, 0);
		if (!st)
			return -1;
		ts_cache_stats_get(&a, st);
		double t = progress_now();
		if (gather) {
			rc = ts_read_rows(st, name, 64, rows, TS_BF16, buf, 64 * EMB_COLS * 2);
		} else {
			uint64_t start[2] = {r0, 0}, count[2] = {64, EMB_COLS};
			rc = ts_read_slice(st, name, 2, start, count, TS_BF16, buf,
					   64 * EMB_COLS * 2);
		}
		t = progress_now() - t;
		ts_cache_stats_get(&z, st);
		ts_store_close(st);
		if (rc) {
			cli_error(CMD, NULL, "%s", ts_error_last());
			return -1;
		}
		*bytes = z.storage_bytes - a.storage_bytes;
		*reads = z.storage_reads - a.storage_reads;
		if (best < 0 || t < best)
			best = t;
	}
	return best;
}

/* The device's floor: the best of --reps cold batches of @p n O_DIRECT reads of @p len bytes at
 * random 4 KiB-aligned offsets of @p path, FLOOR_QD in flight through one io_uring (as the
 * library's uring backend reads); seconds, or -1. */
static double device_floor(struct bench *b, const char *path, size_t n, size_t len)
{
	struct io_uring ring;
	struct stat sb;
	double best = -1;
	uint8_t *buf = aligned_alloc(4096, n * len);
	int fd = open(path, O_RDONLY | O_DIRECT), failed = 0;

	if (!buf || fd < 0 || fstat(fd, &sb) != 0 || (uint64_t)sb.st_size < len + 4096 ||
	    io_uring_queue_init(FLOOR_QD, &ring, 0) != 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	memset(buf, 0, n * len);
	for (int r = 0; r < b->reps && !failed; r++) {
		size_t sent = 0, done = 0;
		drop_caches(b);
		double t = progress_now();
		while (done < n && !failed) {
			struct io_uring_sqe *q;
			struct io_uring_cqe *c;
			while (sent < n && sent - done < FLOOR_QD && (q = io_uring_get_sqe(&ring))) {
				uint64_t off = rnd(&b->rng) % (((uint64_t)sb.st_size - len) / 4096) * 4096;
				io_uring_prep_read(q, fd, buf + sent * len, (unsigned)len, off);
				sent++;
			}
			if (io_uring_submit_and_wait(&ring, 1) < 0)
				failed = 1;
			while (!failed && io_uring_peek_cqe(&ring, &c) == 0) {
				failed = c->res != (int)len;
				io_uring_cqe_seen(&ring, c);
				done++;
			}
		}
		t = progress_now() - t;
		if (!failed && (best < 0 || t < best))
			best = t;
	}
	io_uring_queue_exit(&ring);
	close(fd);
	free(buf);
	return failed ? -1 : best;
}

/* Section 5 for one stored copy of the embedding. */
static int row_gather(struct bench *b, const char *name, const char *what, uint16_t *buf)
{
	uint64_t gb = 0, sb = 0, gr = 0, sr = 0;
	ts_tensor_info info;
	ts_store *st = open_store(b->aux_path, 0, TS_IO_DEFAULT, 0);

	if (!st || ts_tensor_info_get(&info, st, name) != 0) {
		ts_store_close(st);
		return -1;
	}
	ts_store_close(st);
	double tg = emb_read(b, name, 1, buf, &gb, &gr), ts = emb_read(b, name, 0, buf, &sb, &sr);
	if (tg < 0 || ts < 0 || gr == 0 || sr == 0)
		return -1;
	/* the device's floor: the same reads (count, average size) of random places of the file,
	 * and a batch of 4 KiB reads like the gather's LMDB leaves (one per distinct leaf) */
	double fg = device_floor(b, b->aux_path, gr, (gb / gr + 4095) / 4096 * 4096),
	       fs = device_floor(b, b->aux_path, sr, (sb / sr + 4095) / 4096 * 4096),
	       fl = device_floor(b, b->aux_path, 32, 4096);
	printf("  %s: tiles of %llu rows x %llu cols, %llu pages\n", what,
	       (unsigned long long)info.tile_rows, (unsigned long long)info.tile_cols,
	       (unsigned long long)info.page_count);
	printf("    64 random rows, ts_read_rows:      %8.2f ms (%.1f KiB read from storage in %llu "
	       "reads)\n", tg * 1e3, (double)gb / 1024, (unsigned long long)gr);
	printf("    64 contiguous rows, ts_read_slice: %8.2f ms (%.1f KiB read from storage in %llu "
	       "reads)\n", ts * 1e3, (double)sb / 1024, (unsigned long long)sr);
	printf("    ratio: %.2fx (target <= 3)\n", tg / ts);
	if (fg > 0 && fs > 0 && fl > 0)
		printf("    device floor (the same O_DIRECT reads at random places, %d in flight): "
		       "gather %.2f ms, slice %.2f ms = %.2fx;\n      a batch of 32 random 4 KiB "
		       "reads (the gather's LMDB leaves come first, one per leaf): %.2f ms\n",
		       FLOOR_QD, fg * 1e3, fs * 1e3, fg / fs, fl * 1e3);
	return 0;
}

static int row_gathers(struct bench *b)
{
	uint16_t *buf = malloc(64 * EMB_COLS * 2);
	int rc;

	if (!buf)
		return -1;
	memset(buf, 1, 64 * EMB_COLS * 2);
	printf("\n5. row gathers, %dx%d NVFP4 embedding, cold, best of %d\n", EMB_ROWS, EMB_COLS,
	       b->reps);
	rc = row_gather(b, "emb", "as import writes a token embedding (TS_WRITE_ROWS)", buf);
	if (rc == 0)
		rc = row_gather(b, "emb.tiled", "with a weight matrix's tiles (no TS_WRITE_ROWS)",
				buf);
	free(buf);
	return rc;
}

/* -- 4. io_uring batch vs one-at-a-time O_DIRECT pread ----------------------------------------- */

static double strip_reads(struct bench *b, ts_io_backend io, uint64_t seed, uint64_t *pages,
			  ts_store **keep)
{
	ts_store *st;
	uint64_t s = seed;
	double t;
	uint16_t *buf = NULL;
	int n = 0;

	drop_caches(b);
	st = open_store(b->st_path, 0, io, 0);
	if (!st)
		return 0;
	*pages = 0;
	t = progress_now();
	for (int k = 0; k < 64; k++) {
		/* a random big matrix, a random tile column, 32 tile rows: 32 scattered pages */
		struct bt *tt;
		ts_tensor_info info;
		do
			tt = &b->t[rnd(&s) % (uint64_t)b->nt];
		while (tt->rows == 1);
		if (ts_tensor_info_get(&info, st, tt->name) != 0)
			continue;
		uint64_t tr = info.tile_rows * 32 > tt->rows ? tt->rows / info.tile_rows : 32;
		if (tr == 0)
			tr = 1;
		uint64_t across = (tt->cols + info.tile_cols - 1) / info.tile_cols;
		uint64_t down = (tt->rows + info.tile_rows - 1) / info.tile_rows;
		uint64_t u = rnd(&s) % across, r = rnd(&s) % (down - tr + 1);
		uint64_t start[2] = {r * info.tile_rows, u * info.tile_cols};
		uint64_t count[2] = {tr * info.tile_rows, info.tile_cols};
		if (start[0] + count[0] > tt->rows)
			count[0] = tt->rows - start[0];
		if (start[1] + count[1] > tt->cols)
			count[1] = tt->cols - start[1];
		buf = realloc(buf, count[0] * count[1] * 2);
		if (ts_read_slice(st, tt->name, 2, start, count, TS_BF16, buf,
				  count[0] * count[1] * 2) != 0) {
			cli_error(CMD, NULL, "%s", ts_error_last());
			break;
		}
		*pages += (count[0] + info.tile_rows - 1) / info.tile_rows; /* one tile column */
		n++;
	}
	t = progress_now() - t;
	free(buf);
	*keep = st;
	return t;
}

static int uring_vs_pread(struct bench *b)
{
	uint64_t seed = rnd(&b->rng), pu = 0, pp = 0;
	ts_store *su = NULL, *sp = NULL;
	double tu, tp;
	char *old = getenv("TSTORE_IO_THREADS") ? strdup(getenv("TSTORE_IO_THREADS")) : NULL;

	printf("\n4. cold random page reads: 64 requests of 32 scattered pages (a tile column "
	       "strip of a random matrix), decoded cache off\n");
	tu = strip_reads(b, TS_IO_URING, seed, &pu, &su);
	setenv("TSTORE_IO_THREADS", "1", 1);
	tp = strip_reads(b, TS_IO_PREAD, seed, &pp, &sp);
	if (old) {
		setenv("TSTORE_IO_THREADS", old, 1);
		free(old);
	} else {
		unsetenv("TSTORE_IO_THREADS");
	}
	if (!su || !sp) {
		ts_store_close(su);
		ts_store_close(sp);
		return -1;
	}
	say_backend(su);
	printf("  io_uring, one batch per request:  %6llu pages in %6.3f s = %8.0f pages/s\n",
	       (unsigned long long)pu, tu, (double)pu / tu);
	say_backend(sp);
	printf("  O_DIRECT pread, one at a time:    %6llu pages in %6.3f s = %8.0f pages/s\n",
	       (unsigned long long)pp, tp, (double)pp / tp);
	printf("  ratio: %.2fx (target >= 1.5x)\n", ((double)pu / tu) / ((double)pp / tp));
	ts_store_close(su);
	ts_store_close(sp);
	return 0;
}

/* -- the command -------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: tstore bench read [--dir DIR] [--size-mb N] [--keep] [--seed N] [--reps N]\n"
		   "  Builds a BF16 safetensors model of about N MiB (default 1024), its NVFP4 store and\n"
		   "  its lossless store in a temporary directory under DIR (default $TMPDIR or /tmp)\n"
		   "  and measures the read\n"
		   "  path against baselines in the same run. Run as root so the page cache can be\n"
		   "  emptied for the cold figures. Each cold figure is the best of --reps runs (3).\n");
}

static void rm_rf(const char *dir)
{
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cli_error(CMD, NULL, "could not remove %s", dir);
}

int cmd_bench_read(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
					     {"size-mb", required_argument, NULL, 's'},
					     {"keep", no_argument, NULL, 'k'},
					     {"seed", required_argument, NULL, 'r'},
					     {"reps", required_argument, NULL, 'n'},
					     {NULL, 0, NULL, 0}};
	struct bench b;
	const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int c, rc = 0;

	memset(&b, 0, sizeof(b));
	b.size_mb = 1024;
	b.rng = 0x9E3779B97F4A7C15ull;
	b.cold_ok = 1;
	b.reps = 3;
	cli_opts co;
	cli_opts_init(&co, CMD, usage, 0, "d:s:kr:n:", opts, argc, argv);
	while ((c = cli_opts_next(&co)) > 0) {
		switch (c) {
		case 'd':
			base = optarg;
			break;
		case 's':
			b.size_mb = strtoull(optarg, NULL, 10);
			break;
		case 'k':
			b.keep = 1;
			break;
		case 'r':
			b.rng = strtoull(optarg, NULL, 0) | 1;
			break;
		case 'n':
			b.reps = atoi(optarg);
			if (b.reps < 1)
				b.reps = 1;
			break;
		}
	}
	if (c < 0)
		return co.status;
	snprintf(b.dir, sizeof(b.dir), "%s/tstore-bench-XXXXXX", base);
	if (!mkdtemp(b.dir)) {
		cli_error(CMD, base, "cannot create a directory: %s", strerror(errno));
		return CLI_USAGE;
	}
	snprintf(b.st_path, sizeof(b.st_path), "%s/model.tst", b.dir);
	snprintf(b.ll_path, sizeof(b.ll_path), "%s/model-lossless.tst", b.dir);
	snprintf(b.aux_path, sizeof(b.aux_path), "%s/square.tst", b.dir);
	printf("tstore bench read: %s, kernels %s, %ld cores\n", ts_version(), ts_kernel_name(),
	       sysconf(_SC_NPROCESSORS_ONLN));
	if (make_model(&b) != 0 || make_aux(&b, 4096, 4096) != 0) {
		rc = 1;
		goto out;
	}
	if (cold_full_load(&b) != 0)
		rc = 1;
	if (decode_efficiency(&b) != 0)
		rc = 1;
	if (read_amplification(&b) != 0)
		rc = 1;
	if (uring_vs_pread(&b) != 0)
		rc = 1;
	if (row_gathers(&b) != 0)
		rc = 1;
out:
	if (b.keep)
		printf("\nkept %s\n", b.dir);
	else
		rm_rf(b.dir);
	free(b.t);
	return rc;
}
