/*
 * The CUDA backend of the GPU path (gpu/gpu.h): pinned host memory, device memory, one stream
 * and one event per slot, and ts_gpu_decode()'s device side. The pipeline (gpu/pipeline.c) drives
 * it; the kernels are in gpu/decode.cu.
 *
 * Invariants
 *   1. Each slot's work (copy, then decode) runs on the slot's own stream, in order, and ends in
 *      the slot's event: slot_wait() is that event's synchronisation (gpu/gpu.h invariant 1).
 *   2. begin() makes every slot stream wait for the caller's stream; end() makes the caller's
 *      stream wait for every slot's last event: the caller sees one ordered stream.
 *   3. Any thread may call any function: each selects the device first (fillers submit).
 *   4. Every CUDA error is turned into TS_EIO here, with CUDA's own words, in one place (fail()).
 */
#include "config.h"

#include <cuda_runtime.h>

#include <stdlib.h>

extern "C" {
#include "common/error.h"
}
#include "gpu/gpu.h"

#define MAX_SLOTS 8

struct cuctx {
	int device;
	int slots;
	cudaStream_t stream[MAX_SLOTS];
	cudaEvent_t done[MAX_SLOTS];
	cudaEvent_t start;
};

static int fail(cudaError_t e, const char *what)
{
	return ts__err(TS_EIO, "GPU: %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define CU(call, what)                                                                             \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess)                                                             \
			return fail(e_, what);                                                     \
	} while (0)

static void cu_close(void *vctx)
{
	struct cuctx *c = (struct cuctx *)vctx;
	if (!c)
		return;
	cudaSetDevice(c->device);
	for (int i = 0; i < c->slots; i++) {
		if (c->stream[i]) {
			cudaStreamSynchronize(c->stream[i]);
			cudaStreamDestroy(c->stream[i]);
		}
		if (c->done[i])
			cudaEventDestroy(c->done[i]);
	}
	if (c->start)
		cudaEventDestroy(c->start);
	free(c);
}

static int cu_open(void **out, int device, int slots)
{
	struct cuctx *c;
	int n = 0;

	CU(cudaGetDeviceCount(&n), "counting devices");
	if (device < 0 || device >= n)
		return ts__err(TS_EINVAL, "GPU: no CUDA device %d (%d present)", device, n);
	if (slots < 1 || slots > MAX_SLOTS)
		return ts__err(TS_EINVAL, "GPU: %d slots (1..%d)", slots, MAX_SLOTS);
	c = (struct cuctx *)calloc(1, sizeof(*c));
	if (!c)
		return ts__err(TS_ENOMEM, "GPU: out of memory");
	c->device = device;
	c->slots = slots;
	*out = c;
	CU(cudaSetDevice(device), "selecting the device");
	CU(cudaEventCreateWithFlags(&c->start, cudaEventDisableTiming), "creating an event");
	for (int i = 0; i < slots; i++) {
		CU(cudaStreamCreateWithFlags(&c->stream[i], cudaStreamNonBlocking),
		   "creating a stream");
		CU(cudaEventCreateWithFlags(&c->done[i], cudaEventDisableTiming), "creating an event");
	}
	return 0;
}

static int cu_host_alloc(void *vctx, void **p, size_t n)
{
	struct cuctx *c = (struct cuctx *)vctx;
	CU(cudaSetDevice(c->device), "selecting the device");
	CU(cudaHostAlloc(p, n, cudaHostAllocPortable), "allocating pinned memory");
	return 0;
}

static void cu_host_free(void *vctx, void *p)
{
	(void)vctx;
	if (p)
		cudaFreeHost(p);
}

static int cu_dev_alloc(void *vctx, void **p, size_t n)
{
	struct cuctx *c = (struct cuctx *)vctx;
	CU(cudaSetDevice(c->device), "selecting the device");
	CU(cudaMalloc(p, n), "allocating device memory");
	return 0;
}

static void cu_dev_free(void *vctx, void *p)
{
	(void)vctx;
	if (p)
		cudaFree(p);
}

static int cu_begin(void *vctx, void *user)
{
	struct cuctx *c = (struct cuctx *)vctx;
	CU(cudaSetDevice(c->device), "selecting the device");
	CU(cudaEventRecord(c->start, (cudaStream_t)user), "recording an event");
	for (int i = 0; i < c->slots; i++)
		CU(cudaStreamWaitEvent(c->stream[i], c->start, 0), "ordering the streams");
	return 0;
}

static int cu_slot_wait(void *vctx, int slot)
{
	struct cuctx *c = (struct cuctx *)vctx;
	CU(cudaSetDevice(c->device), "selecting the device");
	CU(cudaEventSynchronize(c->done[slot]), "waiting for a slot");
	return 0;
}

static int cu_slot_submit(void *vctx, int slot, void *dev, const void *host, size_t bytes,
			  const struct ts__gpu_job *job)
{
	struct cuctx *c = (struct cuctx *)vctx;
	cudaStream_t s = c->stream[slot];
	int rc;

	CU(cudaSetDevice(c->device), "selecting the device"); /* a filler thread's first call */
	CU(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, s), "copying pages");
	rc = ts__gpu_launch(job, dev, NULL, s);
	if (rc == -2)
		return ts__err(TS_EDTYPE, "GPU: %s pages cannot be decoded as %s",
			       ts_codec_name(job->codec.codec), ts_dtype_name(job->dtype));
	if (rc)
		return fail(cudaGetLastError(), "launching the decode");
	CU(cudaEventRecord(c->done[slot], s), "recording an event");
	return 0;
}

static int cu_end(void *vctx, void *user)
{
	struct cuctx *c = (struct cuctx *)vctx;
	for (int i = 0; i < c->slots; i++) {
		CU(cudaEventRecord(c->done[i], c->stream[i]), "recording an event");
		CU(cudaStreamWaitEvent((cudaStream_t)user, c->done[i], 0), "ordering the streams");
	}
	return 0;
}

static int cu_sync(void *vctx)
{
	struct cuctx *c = (struct cuctx *)vctx;
	for (int i = 0; i < c->slots; i++)
		CU(cudaStreamSynchronize(c->stream[i]), "waiting for the GPU");
	return 0;
}

static const struct ts__gpu_backend cuda_backend = {
	cu_open,   cu_close,	   cu_host_alloc, cu_host_free, cu_dev_alloc, cu_dev_free,
	cu_begin,  cu_slot_wait, cu_slot_submit, cu_end,	    cu_sync,
};

extern "C" const struct ts__gpu_backend *ts__gpu_cuda(void)
{
	return &cuda_backend;
}

extern "C" int ts__gpu_cuda_available(void)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess)
		return fail(e, "looking for a CUDA device");
	if (n == 0)
		return ts__err(TS_ENOTSUP, "GPU: no CUDA device");
	return 0;
}

extern "C" int ts__gpu_cuda_decode(const ts_codec_config *cfg, float tensor_scale,
				   const void *src, size_t src_size, uint64_t rows, uint64_t cols,
				   ts_dtype dtype, void *dst, uint64_t dst_stride, void *stream)
{
	struct ts__gpu_job job = {};
	struct ts__gpu_page pg = {};
	uint64_t g = TS__GPU_UNIT(cfg->codec, 0);
	size_t need = ts_codec_encoded_size(cfg, rows, cols);
	int rc;

	if (!src || !dst || !need)
		return ts__err(TS_EINVAL, "ts_gpu_decode: no source, no destination or a bad codec");
	if (cfg->codec == TS_CODEC_LOSSLESS)
		need = 1; /* its own header says (docs/GPU.md): not checked on the device */
	if (src_size < need)
		return ts__err(TS_ESHORTBUF, "ts_gpu_decode: %zu bytes of payload, %zu needed",
			       src_size, need);
	if (dst_stride < cols)
		return ts__err(TS_EINVAL, "ts_gpu_decode: stride %llu < %llu columns",
			       (unsigned long long)dst_stride, (unsigned long long)cols);
	if (rows == 0 || cols == 0)
		return 0;
	if (cols > UINT32_MAX || rows > UINT32_MAX || rows * ((cols + g - 1) / g) > UINT32_MAX)
		return ts__err(TS_ERANGE, "ts_gpu_decode: %llu x %llu is too large for one launch",
			       (unsigned long long)rows, (unsigned long long)cols);
	job.codec = *cfg;
	job.tensor_scale = tensor_scale;
	job.out = TS__GPU_DECODE;
	job.dtype = dtype;
	job.dst = dst;
	job.dst_stride = dst_stride;
	job.ra = 0, job.rn = rows, job.ca = 0, job.cn = cols;
	job.npages = 1;
	job.max_units = (uint32_t)(rows * ((cols + g - 1) / g));
	pg.nr = (uint32_t)rows, pg.nc = (uint32_t)cols;
	rc = ts__gpu_launch(&job, src, &pg, stream);
	if (rc == -2)
		return ts__err(TS_EDTYPE, "GPU: %s payloads cannot be decoded as %s",
			       ts_codec_name(cfg->codec), ts_dtype_name(dtype));
	if (rc)
		return fail(cudaGetLastError(), "launching the decode");
	return 0;
}
