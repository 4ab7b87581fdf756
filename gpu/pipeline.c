/*
 * The GPU read pipeline: ts_gpu_reader and the public ts_gpu_* functions (include/tstore.h).
 * Built in every configuration; it reaches the device only through a backend (gpu/gpu.h): CUDA's
 * in a `--with-cuda` build, a host stand-in in the tests. It uses the library through its public
 * API alone (ts_tensor_info_get, ts_page_plan, ts_read_pages).
 *
 * A read plans the covering pages and cuts them into batches of a slot's size. The caller's
 * thread hands batch k to slot k mod slots once the slot is free (its filler done, and its
 * previous copy and decode finished: slot_wait()); one of the reader's filler threads then reads
 * the pages into the slot's pinned buffer (ts_read_pages: I/O, checksum, lossless entropy decode,
 * on the CPU), appends the page table and hands the batch to the backend (one copy, one decode
 * launch, one event, on the slot's stream). Several fillers read at once, so the storage sees
 * several batches in flight, while the GPU copies and decodes the batches already read.
 *
 * Invariants
 *   1. gpu/gpu.h's: a slot is rewritten only after slot_wait(); a batch holds whole pages.
 *   2. A slot is touched by one thread at a time: the caller's thread while it is not busy, its
 *      filler while it is (busy is set and cleared under the lock).
 *   3. A call returns only when every batch it handed out has been read and queued; on any error,
 *      everything queued is waited for too, so nothing the call queued writes the caller's memory
 *      afterwards.
 *   4. Buffers only grow, and are freed with the reader.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "gpu/gpu.h"

#define MAX_SLOTS 8
#define DEFAULT_SLOTS 8
#define DEFAULT_SLOT_BYTES (2u << 20)
#define BATCH_PAGES 4096 /* pages per batch at most (the launch's grid height) */
#define ALIGN16(x) (((x) + 15) & ~(size_t)15)

#define NO_GPU "this build of libtstore has no GPU path (configure it --with-cuda)"

struct slot {
	void *host; /* pinned */
	void *dev;
	size_t cap;
	int busy; /* handed to a filler (invariant 2) */
	/* the batch: pages first .. first+count-1 of the call's plan */
	const char *name;
	const ts_tensor_info *info;
	size_t first, count, table;
	struct ts__gpu_job job;
};

/* One request of a call: a tensor's rectangle, its pages plan[first, first + n). */
struct request {
	const char *name;
	ts_tensor_info info;
	struct ts__gpu_job job;
	size_t first, n;
};

struct ts_gpu_reader {
	ts_store *st;
	const struct ts__gpu_backend *be;
	void *ctx;
	int nslots, next;
	size_t slot_bytes;
	struct slot slot[MAX_SLOTS];
	/* the call in progress */
	struct request *req;
	size_t req_cap;
	ts_page_ref *plan;
	size_t plan_cap;
	size_t *off, *len;
	size_t off_cap;
	/* fillers */
	pthread_t thread[MAX_SLOTS];
	int nthreads, stop;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	int queue[MAX_SLOTS], qhead, qlen;
	int err;
	char err_msg[512];
};

/* Read a batch into its slot and queue its copy and decode (a filler, slot busy). */
static int fill(ts_gpu_reader *g, struct slot *sl)
{
	struct ts__gpu_page *t;
	uint64_t u = TS__GPU_UNIT(sl->info->codec.codec, sl->job.out == TS__GPU_PLANES);
	uint32_t units = 0;
	int rc = ts_read_pages(g->st, sl->name, sl->info, g->plan + sl->first, sl->count, sl->host,
			       sl->table, g->off + sl->first, g->len + sl->first);

	if (rc)
		return rc;
	t = (struct ts__gpu_page *)((uint8_t *)sl->host + sl->table);
	for (size_t j = 0; j < sl->count; j++) {
		const ts_page_ref *p = &g->plan[sl->first + j];
		uint32_t pu = (uint32_t)(p->nr * ((p->nc + u - 1) / u));
		t[j].off = g->off[sl->first + j];
		t[j].nr = (uint32_t)p->nr;
		t[j].nc = (uint32_t)p->nc;
		t[j].r0 = p->r0;
		t[j].c0 = p->c0;
		units = pu > units ? pu : units;
	}
	sl->job.table = sl->table;
	sl->job.npages = (uint32_t)sl->count;
	sl->job.max_units = units;
	return g->be->slot_submit(g->ctx, (int)(sl - g->slot), sl->dev, sl->host,
				  sl->table + sl->count * sizeof(*t), &sl->job);
}

static void *filler(void *ud)
{
	ts_gpu_reader *g = ud;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		while (!g->stop && g->qlen == 0)
			pthread_cond_wait(&g->work, &g->lock);
		if (g->qlen == 0)
			break;
		struct slot *sl = &g->slot[g->queue[g->qhead]];
		g->qhead = (g->qhead + 1) % MAX_SLOTS;
		g->qlen--;
		int skip = g->err != 0; /* the call failed: read nothing more */
		pthread_mutex_unlock(&g->lock);
		int rc = skip ? 0 : fill(g, sl);
		pthread_mutex_lock(&g->lock);
		if (rc && !g->err) { /* the message is this thread's: keep it for the caller */
			g->err = rc;
			snprintf(g->err_msg, sizeof(g->err_msg), "%s", ts_error_last());
		}
		sl->busy = 0;
		pthread_cond_broadcast(&g->done);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int ts__gpu_reader_new(ts_gpu_reader **out, ts_store *st, const struct ts__gpu_backend *be,
		       int device, int slots, size_t slot_bytes)
{
	ts_gpu_reader *g;
	int rc;

	if (!out || !st)
		return ts__err(TS_EINVAL, "ts_gpu_reader_new: out and store are required");
	*out = NULL;
	if (slots == 0)
		slots = DEFAULT_SLOTS;
	if (slots < 2 || slots > MAX_SLOTS)
		return ts__err(TS_EINVAL, "ts_gpu_reader_new: %d slots (2..%d)", slots, MAX_SLOTS);
	g = calloc(1, sizeof(*g));
	if (!g)
		return ts__err(TS_ENOMEM, "GPU reader: out of memory");
	g->st = st;
	g->be = be;
	g->nslots = slots;
	g->slot_bytes = slot_bytes ? ALIGN16(slot_bytes) : DEFAULT_SLOT_BYTES;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->work, NULL);
	pthread_cond_init(&g->done, NULL);
	rc = be->open(&g->ctx, device, slots);
	for (int i = 0; rc == 0 && i < slots; i++) {
		rc = be->host_alloc(g->ctx, &g->slot[i].host, g->slot_bytes);
		if (rc == 0)
			rc = be->dev_alloc(g->ctx, &g->slot[i].dev, g->slot_bytes);
		if (rc == 0)
			g->slot[i].cap = g->slot_bytes;
	}
	for (int i = 0; rc == 0 && i < slots - 1; i++) {
		if (pthread_create(&g->thread[i], NULL, filler, g) != 0)
			rc = ts__err(TS_ENOMEM, "GPU reader: cannot start a filler thread");
		else
			g->nthreads++;
	}
	if (rc) {
		ts_gpu_reader_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

TS_API void ts_gpu_reader_free(ts_gpu_reader *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = 1;
	pthread_cond_broadcast(&g->work);
	pthread_mutex_unlock(&g->lock);
	for (int i = 0; i < g->nthreads; i++)
		pthread_join(g->thread[i], NULL);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->work);
	pthread_cond_destroy(&g->done);
	if (g->ctx) {
		g->be->sync(g->ctx);
		for (int i = 0; i < g->nslots; i++) {
			g->be->host_free(g->ctx, g->slot[i].host);
			g->be->dev_free(g->ctx, g->slot[i].dev);
		}
		g->be->close(g->ctx);
	}
	free(g->req);
	free(g->plan);
	free(g->off);
	free(g->len);
	free(g);
}

/* Make slot @p s hold at least @p bytes (it is idle: slot_wait() returned). */
static int slot_grow(ts_gpu_reader *g, struct slot *s, size_t bytes)
{
	if (bytes <= s->cap)
		return 0;
	g->be->host_free(g->ctx, s->host);
	g->be->dev_free(g->ctx, s->dev);
	s->host = s->dev = NULL;
	s->cap = 0;
	int rc = g->be->host_alloc(g->ctx, &s->host, bytes);
	if (rc == 0)
		rc = g->be->dev_alloc(g->ctx, &s->dev, bytes);
	if (rc == 0)
		s->cap = bytes;
	return rc;
}

/* Plan request @p r's pages at index @p at of the call's plan (growing it); r->first, r->n. */
static int plan(ts_gpu_reader *g, struct request *r, size_t at)
{
	const struct ts__gpu_job *j = &r->job;
	size_t n = 0, need;
	int rc = ts_page_plan(g->plan + at, g->plan_cap - at, &n, &r->info, j->ra, j->rn, j->ca,
			      j->cn);

	if (rc == TS_ESHORTBUF) {
		need = at + n + at / 2; /* geometric: many requests plan in linear time */
		ts_page_ref *p = realloc(g->plan, need * sizeof(*p));
		if (!p)
			return ts__err(TS_ENOMEM, "GPU reader: out of memory for %zu pages", at + n);
		g->plan = p;
		g->plan_cap = need;
		rc = ts_page_plan(g->plan + at, g->plan_cap - at, &n, &r->info, j->ra, j->rn, j->ca,
				  j->cn);
	}
	r->first = at;
	r->n = n;
	if (rc == 0 && at + n > g->off_cap) {
		size_t *o = realloc(g->off, g->plan_cap * sizeof(*o)), *l;
		if (o)
			g->off = o;
		l = o ? realloc(g->len, g->plan_cap * sizeof(*l)) : NULL;
		if (!l)
			return ts__err(TS_ENOMEM, "GPU reader: out of memory for %zu pages", at + n);
		g->len = l;
		g->off_cap = g->plan_cap;
	}
	return rc;
}

/* How many pages from @p first fit one batch of @p cap bytes (payloads, then the table). */
static size_t batch_pages(const ts_page_ref *p, size_t n, size_t cap, size_t *bytes)
{
	size_t k = 0, b = 0;

	while (k < n && k < BATCH_PAGES) {
		size_t nb = ALIGN16(b + p[k].max_bytes);
		if (k > 0 && nb + (k + 1) * sizeof(struct ts__gpu_page) > cap)
			break;
		b = nb;
		k++;
	}
	*bytes = b;
	return k;
}

/* Hand pages [i, i + n) of the plan, all of request @p r, to the slots in batches. */
static int hand_out(ts_gpu_reader *g, const struct request *r, size_t i, size_t n)
{
	int rc = 0;

	while (rc == 0 && n > 0) {
		int s = g->next;
		struct slot *sl = &g->slot[s];
		size_t bytes;

		pthread_mutex_lock(&g->lock);
		while (sl->busy)
			pthread_cond_wait(&g->done, &g->lock);
		rc = g->err;
		pthread_mutex_unlock(&g->lock);
		if (rc == 0)
			rc = g->be->slot_wait(g->ctx, s); /* invariant 1 */
		if (rc)
			break;
		g->next = (s + 1) % g->nslots;
		sl->count = batch_pages(g->plan + i, n, sl->cap, &bytes);
		sl->table = bytes;
		rc = slot_grow(g, sl, bytes + sl->count * sizeof(struct ts__gpu_page));
		if (rc)
			break;
		sl->first = i;
		sl->name = r->name;
		sl->info = &r->info;
		sl->job = r->job;
		i += sl->count;
		n -= sl->count;
		pthread_mutex_lock(&g->lock);
		sl->busy = 1;
		g->queue[(g->qhead + g->qlen) % MAX_SLOTS] = s;
		g->qlen++;
		pthread_cond_signal(&g->work);
		pthread_mutex_unlock(&g->lock);
	}
	return rc;
}

/* Queue the pages of the call's @p n requests (g->req) through the slots (the module's
 * comment): every plan first, so that the slots stream from one request into the next. */
static int run(ts_gpu_reader *g, size_t n, void *stream)
{
	const struct ts__gpu_backend *be = g->be;
	size_t pages = 0;
	int rc = 0, busy;

	for (size_t k = 0; rc == 0 && k < n; k++) {
		rc = plan(g, &g->req[k], pages);
		pages += g->req[k].n;
	}
	if (rc || pages == 0)
		return rc;
	g->err = 0;
	rc = be->begin(g->ctx, stream);
	for (size_t k = 0; rc == 0 && k < n; k++)
		rc = hand_out(g, &g->req[k], g->req[k].first, g->req[k].n);
	pthread_mutex_lock(&g->lock); /* invariant 3 */
	do {
		busy = 0;
		for (int k = 0; k < g->nslots; k++)
			busy |= g->slot[k].busy;
		if (busy)
			pthread_cond_wait(&g->done, &g->lock);
	} while (busy);
	pthread_mutex_unlock(&g->lock);
	if (rc == 0 && g->err)
		rc = ts__err(g->err, "%s", g->err_msg);
	if (rc == 0)
		rc = be->end(g->ctx, stream);
	if (rc)
		be->sync(g->ctx);
	return rc;
}

/* Room for @p n requests in g->req. */
static int requests(ts_gpu_reader *g, size_t n)
{
	if (n <= g->req_cap)
		return 0;
	struct request *r = realloc(g->req, n * sizeof(*r));
	if (!r)
		return ts__err(TS_ENOMEM, "GPU reader: out of memory for %zu requests", n);
	g->req = r;
	g->req_cap = n;
	return 0;
}

static int dtype_ok(const ts_tensor_info *info, ts_dtype dtype)
{
	ts_codec c = info->codec.codec;
	ts_dtype raw = info->codec.raw_dtype;
	int fl = dtype == TS_F32 || dtype == TS_BF16 || dtype == TS_F16;

	if (c == TS_CODEC_RAW || c == TS_CODEC_LOSSLESS)
		return dtype == raw || (fl && (raw == TS_F32 || raw == TS_BF16 || raw == TS_F16));
	return fl;
}

/* The 2-D view of the tensor @p info describes. */
static void view(const ts_tensor_info *info, uint64_t *rows, uint64_t *cols)
{
	*rows = 1;
	for (int i = 0; i + 1 < info->ndim; i++)
		*rows *= info->shape[i];
	*cols = info->ndim ? info->shape[info->ndim - 1] : 1;
}

/* Check request @p q and fill @p r from it (nothing read yet). */
static int prepare(ts_gpu_reader *g, struct request *r, const ts_gpu_request *q)
{
	struct ts__gpu_job *job = &r->job;
	int rc;

	if (!q->name)
		return ts__err(TS_EINVAL, "ts_gpu_read: a request without a name");
	rc = ts_tensor_info_get(&r->info, g->st, q->name);
	if (rc)
		return rc;
	if (!dtype_ok(&r->info, q->dtype))
		return ts__err(TS_EDTYPE, "tensor '%s' (%s, codec %s) cannot be read as %s", q->name,
			       ts_dtype_name(r->info.source_dtype),
			       ts_codec_name(r->info.codec.codec), ts_dtype_name(q->dtype));
	if (q->col_count > q->dst_stride)
		return ts__err(TS_EINVAL, "reading '%s': stride %llu < %llu columns", q->name,
			       (unsigned long long)q->dst_stride, (unsigned long long)q->col_count);
	if (!q->dst && q->row_count && q->col_count)
		return ts__err(TS_EINVAL, "reading '%s': no destination", q->name);
	r->name = q->name;
	memset(job, 0, sizeof(*job));
	job->codec = r->info.codec;
	job->tensor_scale = r->info.tensor_scale;
	job->out = TS__GPU_DECODE;
	job->dtype = q->dtype;
	job->dst = q->dst;
	job->dst_stride = q->dst_stride;
	job->ra = q->row_start, job->rn = q->row_count;
	job->ca = q->col_start, job->cn = q->col_count;
	return 0;
}

TS_API int ts_gpu_read_many(ts_gpu_reader *g, const ts_gpu_request *reqs, size_t n, void *stream)
{
	int rc;

	if (!g || (n && !reqs))
		return ts__err(TS_EINVAL, "ts_gpu_read_many: reader and requests are required");
	rc = requests(g, n);
	for (size_t k = 0; rc == 0 && k < n; k++)
		rc = prepare(g, &g->req[k], &reqs[k]);
	return rc ? rc : run(g, n, stream);
}

TS_API int ts_gpu_read(ts_gpu_reader *g, const char *name, uint64_t row_start, uint64_t row_count,
		       uint64_t col_start, uint64_t col_count, ts_dtype dtype, void *dst,
		       uint64_t dst_stride, void *stream)
{
	ts_gpu_request q = {name, row_start, row_count, col_start, col_count, dtype, dst,
			    dst_stride};

	if (!g || !name)
		return ts__err(TS_EINVAL, "ts_gpu_read: reader and name are required");
	return ts_gpu_read_many(g, &q, 1, stream);
}

TS_API int ts_gpu_read_encoded(ts_gpu_reader *g, const char *name, uint64_t row_start,
			       uint64_t row_count, void *codes, void *scales, void *stream)
{
	struct request *r;
	struct ts__gpu_job *job;
	size_t code_row, scale_row;
	uint64_t rows, cols;
	int rc;

	if (!g || !name)
		return ts__err(TS_EINVAL, "ts_gpu_read_encoded: reader and name are required");
	rc = requests(g, 1);
	if (rc)
		return rc;
	r = &g->req[0];
	job = &r->job;
	rc = ts_tensor_info_get(&r->info, g->st, name);
	if (rc == 0)
		rc = ts_read_encoded_size(&code_row, &scale_row, &r->info, 1);
	if (rc)
		return rc == TS_ENOTSUP ? ts__err(TS_ENOTSUP, "tensor '%s' is %s-coded: no encoded "
						  "form to read", name,
						  ts_codec_name(r->info.codec.codec))
					: rc;
	view(&r->info, &rows, &cols);
	if (!codes || (scale_row && !scales))
		return ts__err(TS_EINVAL, "tensor '%s': no buffer for the encoded rows", name);
	r->name = name;
	memset(job, 0, sizeof(*job));
	job->codec = r->info.codec;
	job->out = TS__GPU_PLANES;
	job->dst = codes;
	job->dst2 = scales;
	job->dst_stride = code_row;
	job->dst2_stride = scale_row;
	job->ra = row_start, job->rn = row_count, job->ca = 0, job->cn = cols;
	return run(g, 1, stream);
}

TS_API int ts_gpu_reader_sync(ts_gpu_reader *g)
{
	if (!g)
		return ts__err(TS_EINVAL, "ts_gpu_reader_sync: no reader");
	return g->be->sync(g->ctx);
}

/* -- the CUDA entry points (TS_ENOTSUP in a build without it) ------------------------------- */

TS_API int ts_gpu_available(void)
{
#ifdef TS_HAVE_CUDA
	return ts__gpu_cuda_available() == 0;
#else
	ts__err(TS_ENOTSUP, NO_GPU);
	return 0;
#endif
}

TS_API int ts_gpu_reader_new(ts_gpu_reader **out, ts_store *st, int device, int slots,
			     size_t slot_bytes)
{
#ifdef TS_HAVE_CUDA
	return ts__gpu_reader_new(out, st, ts__gpu_cuda(), device, slots, slot_bytes);
#else
	(void)st, (void)device, (void)slots, (void)slot_bytes;
	if (out)
		*out = NULL;
	return ts__err(TS_ENOTSUP, NO_GPU);
#endif
}

TS_API int ts_gpu_decode(const ts_codec_config *cfg, float tensor_scale, const void *src,
			 size_t src_size, uint64_t rows, uint64_t cols, ts_dtype dtype, void *dst,
			 uint64_t dst_stride, void *stream)
{
#ifdef TS_HAVE_CUDA
	int rc = cfg ? ts_codec_config_check(cfg) : ts__err(TS_EINVAL, "ts_gpu_decode: no codec");
	if (rc)
		return rc;
	return ts__gpu_cuda_decode(cfg, tensor_scale, src, src_size, rows, cols, dtype, dst,
				   dst_stride, stream);
#else
	(void)cfg, (void)tensor_scale, (void)src, (void)src_size, (void)rows, (void)cols;
	(void)dtype, (void)dst, (void)dst_stride, (void)stream;
	return ts__err(TS_ENOTSUP, NO_GPU);
#endif
}
