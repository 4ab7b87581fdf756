/*
 * The GPU path's private interface: what the pipeline (gpu/pipeline.c, plain C, built always)
 * hands a backend, and the backends. The CUDA backend (gpu/cuda.cu, gpu/decode.cu) exists only in
 * a `./configure --with-cuda` build; the tests plug in a host stand-in (tests/test_gpu.c) so that
 * the pipeline's planning, batching and buffer reuse run in the CPU suite.
 *
 * A batch is what one slot carries: page payloads (as ts_read_pages() places them) followed by
 * the page table (struct ts__gpu_page, 16-byte aligned at job->table), copied to the device in
 * one transfer and decoded by one launch.
 *
 * Invariants
 *   1. A slot's host buffer is rewritten only after slot_wait() on it returned: the copy that
 *      read it and the decode that read its device copy are done.
 *   2. Every page of a batch lies wholly in its slot (offset + max_bytes <= the batch's bytes);
 *      a page that would not fit an empty slot grows the slot first.
 *   3. The decode of a page writes only the elements of the job's rectangle, each exactly once
 *      across the pages of one read (pages do not overlap).
 */
#ifndef TS_GPU_GPU_H
#define TS_GPU_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One page of a batch (device-visible layout: plain integers, 32 bytes). */
struct ts__gpu_page {
	uint64_t off;   /* payload offset from the batch start */
	uint32_t nr, nc; /* its rows and columns */
	uint64_t r0, c0; /* its first row and column in the 2-D view */
};

enum ts__gpu_out {
	TS__GPU_DECODE = 0, /* decode into dst as job->dtype */
	TS__GPU_PLANES = 1  /* copy the code plane to dst and the scale plane to dst2 */
};

/* One launch: decode (or copy the planes of) the pages of a batch into the caller's rectangle. */
struct ts__gpu_job {
	ts_codec_config codec;
	float tensor_scale;
	enum ts__gpu_out out;
	ts_dtype dtype;      /* TS__GPU_DECODE: the output type */
	void *dst;           /* device: element (ra + i, ca + j) at dst[i * dst_stride + j] */
	void *dst2;          /* TS__GPU_PLANES: the scale plane's destination */
	uint64_t dst_stride; /* elements (TS__GPU_PLANES: bytes of a code row) */
	uint64_t dst2_stride; /* TS__GPU_PLANES: bytes of a scale row */
	uint64_t ra, rn, ca, cn; /* the rectangle: rows [ra, ra+rn), columns [ca, ca+cn) */
	size_t table;        /* offset of the page table in the batch */
	uint32_t npages;
	uint32_t max_units;  /* the most work units of one page (the launch's width) */
};

/* A backend: device memory, pinned memory, streams and the decode launch. ctx is its own. */
struct ts__gpu_backend {
	int (*open)(void **ctx, int device, int slots);
	void (*close)(void *ctx); /* waits for everything first */
	int (*host_alloc)(void *ctx, void **p, size_t n); /* pinned */
	void (*host_free)(void *ctx, void *p);
	int (*dev_alloc)(void *ctx, void **p, size_t n);
	void (*dev_free)(void *ctx, void *p);
	/* work queued on user_stream before begin() happens before any slot's work after it */
	int (*begin)(void *ctx, void *user_stream);
	/* invariant 1: the host waits until slot @p slot's last submission is done */
	int (*slot_wait)(void *ctx, int slot);
	/* copy @p bytes of @p host to @p dev on the slot's stream, decode, and mark the slot */
	int (*slot_submit)(void *ctx, int slot, void *dev, const void *host, size_t bytes,
			   const struct ts__gpu_job *job);
	/* work queued on user_stream after end() happens after every slot's work before it */
	int (*end)(void *ctx, void *user_stream);
	int (*sync)(void *ctx);
};

/* Elements of one work unit of the decode launch (one thread's share along a row): 8 when
 * decoding (any codec); when copying planes, one block (mxfp4 32; nvfp4 16; fp8 16 bytes). */
#define TS__GPU_UNIT(codec, planes) ((planes) ? ((codec) == TS_CODEC_MXFP4 ? 32 : 16) : 8)

/* A reader on any backend (ts_gpu_reader_new() uses CUDA's; the tests a stand-in). */
int ts__gpu_reader_new(ts_gpu_reader **out, ts_store *st, const struct ts__gpu_backend *be,
		       int device, int slots, size_t slot_bytes);

#ifdef TS_HAVE_CUDA
/* gpu/cuda.cu */
const struct ts__gpu_backend *ts__gpu_cuda(void);
int ts__gpu_cuda_available(void);
int ts__gpu_cuda_decode(const ts_codec_config *cfg, float tensor_scale, const void *src,
			size_t src_size, uint64_t rows, uint64_t cols, ts_dtype dtype, void *dst,
			uint64_t dst_stride, void *stream);
/* gpu/decode.cu: queue the decode of a batch already in device memory at @p batch; its page
 * table at batch + job->table, or, if @p single is not NULL, the one page *single. */
int ts__gpu_launch(const struct ts__gpu_job *job, const void *batch,
		   const struct ts__gpu_page *single, void *stream);
#endif

#ifdef __cplusplus
}
#endif
#endif
