/*
 * The GPU decode kernels: every codec's payload (docs/CODECS.md; lossless in the unpacked form
 * of docs/GPU.md) to F32, BF16 or F16, or to its own dtype for raw and lossless, bit for bit what
 * ts_codec_decode() gives on the CPU. One launch decodes a batch of pages: blockIdx.y is the page,
 * and the blocks of a page stride over its rows, the threads of a block over a row's work units
 * (8 elements; for a plane copy, one codec block); pages of short rows are walked flat. A
 * persistent grid of at most BLOCKS_MAX blocks: the tables are loaded into shared memory once
 * per block.
 *
 * Invariants
 *   1. The arithmetic is the CPU's, operation for operation (codec/codecs.h invariant 2): the
 *      products are __fmul_rn (round to nearest even, never fused), the tables are the CPU's own
 *      (copied to the device from codec/elem.c at first use), and the narrowing conversions
 *      are codec/elem.h's functions compiled for the device, or the hardware's paired
 *      conversion where it gives the same bits (pack2()).
 *   2. A thread writes only the elements of its unit that lie in the job's rectangle
 *      (gpu/gpu.h invariant 3); the padded columns of a row's last block are never written.
 *   3. Loads are aligned to their width: a batch places payloads at 16-byte offsets, nvfp4 and
 *      mxfp4 code rows are multiples of 8 and 16 bytes, int8 code rows of 16; anything else (fp8
 *      rows, scale records, raw and lossless elements) is read bytewise.
 */
#include "config.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdint.h>
#include <string.h>

#include "codec/elem.h"
#include "gpu/gpu.h"

#define THREADS 128

#define BLOCKS_MAX 4096 /* a persistent grid: blocks per launch at most, spread over the pages */

/* the CPU's tables (invariant 1), copied into each block's shared memory */
__device__ float g_e4m3[256];
__device__ float g_e2m1[16];

struct params {
	const uint8_t *base;
	const struct ts__gpu_page *table;
	struct ts__gpu_page single;
	void *dst, *dst2;
	uint64_t stride, stride2;
	uint64_t ra, rn, ca, cn;
	float g;
	int block;  /* int8 block size */
	int es;     /* raw/lossless element size */
	int stored; /* raw/lossless stored dtype */
};

enum kcodec { K_NVFP4, K_MXFP4, K_INT8S, K_INT8A, K_FP8, K_RAW, K_LOSSLESS };

/* Elements of one work unit: TS__GPU_UNIT (gpu/gpu.h) of the codec. */
static constexpr __host__ __device__ int unit_elems(int kc, int planes)
{
	return planes ? (kc == K_MXFP4 ? TS__GPU_UNIT(TS_CODEC_MXFP4, 1)
				       : TS__GPU_UNIT(TS_CODEC_NVFP4, 1))
		      : TS__GPU_UNIT(TS_CODEC_NVFP4, 0);
}

static __device__ inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The float value of a raw/lossless element's bits (F32, BF16, F16 stored). */
static __device__ inline float bits_value(uint32_t x, int stored)
{
	if (stored == TS_F32)
		return ts__bits_f32(x);
	if (stored == TS_BF16)
		return ts__bf16_decode((uint16_t)x);
	return ts__f16_decode((uint16_t)x);
}

/* Element i's bits of a raw or lossless payload (lossless: mode byte m, n elements). */
static __device__ inline uint32_t elem_bits(int kc, const uint8_t *pay, int es, uint64_t n,
					    uint64_t i)
{
	const uint8_t *p;
	uint32_t x = 0;

	if (kc == K_LOSSLESS && pay[0] == 1) {
		const uint8_t *sm = pay + 5 + i * (uint64_t)(es - 1);
		uint32_t e = pay[5 + n * (uint64_t)(es - 1) + i];
		if (es == 2)
			return (uint32_t)(sm[0] & 0x80u) << 8 | e << 7 | (sm[0] & 0x7fu);
		return (uint32_t)(sm[2] & 0x80u) << 24 | e << 23 | (uint32_t)(sm[2] & 0x7fu) << 16 |
		       (uint32_t)sm[1] << 8 | sm[0];
	}
	p = pay + (kc == K_LOSSLESS ? 1 : 0) + i * (uint64_t)es;
	for (int b = 0; b < es && b < 4; b++)
		x |= (uint32_t)p[b] << (8 * b);
	return x;
}

template <int OUT> static __device__ inline void put(const params &p, uint64_t di, float y)
{
	if (OUT == TS_F32)
		((float *)p.dst)[di] = y;
	else if (OUT == TS_BF16)
		((uint16_t *)p.dst)[di] = ts__bf16_encode(y);
	else
		((uint16_t *)p.dst)[di] = ts__f16_encode(y);
}

/*
 * Two floats as two BF16 or F16 in one word (the first in the low half), by the hardware's
 * paired conversion (cvt.rn.bf16x2.f32, cvt.rn.f16x2.f32): round to nearest even, subnormals
 * kept, overflow to Inf, which is codec/elem.h's result for every number (tools/gpu/gpu_check.py
 * compares every output with the CPU's); NaN, whose payload rules differ, goes through elem.h.
 */
template <int OUT> static __device__ inline uint32_t pack2(float a, float b)
{
	uint32_t r;
	if (OUT == TS_BF16) {
		__nv_bfloat162 h = __floats2bfloat162_rn(a, b);
		memcpy(&r, &h, 4);
		if (a != a || b != b)
			r = (uint32_t)ts__bf16_encode(a) | (uint32_t)ts__bf16_encode(b) << 16;
	} else {
		__half2 h = __floats2half2_rn(a, b);
		memcpy(&r, &h, 4);
		if (a != a || b != b)
			r = (uint32_t)ts__f16_encode(a) | (uint32_t)ts__f16_encode(b) << 16;
	}
	return r;
}

/*
 * Work unit @p gi of row @p row of page @p pg (the module's comment). OUT is TS_F32, TS_BF16, TS_F16, or
 * -1: raw/lossless to the stored dtype itself (bits copied), or -2: the planes copied as they
 * are (nvfp4, mxfp4, fp8). A decode unit is 8 elements, so that a warp's 16-bit outputs are 512
 * contiguous bytes written by one 16-byte store a thread.
 */
template <int KC, int OUT>
static __device__ __forceinline__ void unit(const params &p, const struct ts__gpu_page &pg,
					    uint32_t row, uint32_t gi, const float *s_e4m3,
					    const float *s_e2m1)
{
	constexpr int G = unit_elems(KC, OUT == -2);
	const uint32_t gpr = (pg.nc + G - 1) / G;
	const uint64_t R = pg.r0 + row;
	if (R < p.ra || R >= p.ra + p.rn)
		return;
	const uint8_t *pay = p.base + pg.off;
	const uint32_t col0 = gi * G;
	const uint32_t ne = pg.nc - col0 < (uint32_t)G ? pg.nc - col0 : (uint32_t)G;
	const uint64_t C0 = pg.c0 + col0;

	if (OUT == -2) { /* one block of whole rows (the rectangle spans every column) */
		const uint32_t cb = KC == K_NVFP4 ? 8 : 16;
		const uint32_t code_row = KC == K_FP8 ? pg.nc : gpr * cb;
		uint8_t *d = (uint8_t *)p.dst + (R - p.ra) * p.stride + C0 * cb / G;
		const uint8_t *s = pay + (uint64_t)row * code_row + (uint64_t)gi * cb;
		uint32_t nb = KC == K_FP8 ? ne : cb;
		for (uint32_t b = 0; b < nb; b++)
			d[b] = s[b];
		if (KC != K_FP8)
			((uint8_t *)p.dst2)[(R - p.ra) * p.stride2 + C0 / G] =
				pay[(uint64_t)pg.nr * code_row + (uint64_t)row * gpr + gi];
		return;
	}

	/* the unit's columns inside the rectangle: [k0, k1) */
	uint32_t k0 = 0, k1 = ne;
	if (C0 < p.ca)
		k0 = p.ca - C0 < (uint64_t)ne ? (uint32_t)(p.ca - C0) : ne;
	if (C0 + k1 > p.ca + p.cn)
		k1 = p.ca + p.cn > C0 ? (uint32_t)(p.ca + p.cn - C0) : 0;
	if (k0 >= k1)
		return;
	const uint64_t d0 = (R - p.ra) * p.stride + (C0 - p.ca); /* element k at d0 + k */
	float y[8];

	if (KC == K_NVFP4 || KC == K_MXFP4) {
		constexpr uint32_t B = KC == K_NVFP4 ? 16 : 32;
		const uint32_t rb = (pg.nc + B - 1) / B, code_row = rb * (B / 2);
		const uint32_t w = *(const uint32_t *)(pay + (uint64_t)row * code_row + col0 / 2);
		const uint8_t sb = pay[(uint64_t)pg.nr * code_row + (uint64_t)row * rb + col0 / B];
		const float s = KC == K_NVFP4 ? s_e4m3[sb] : ts__e8m0_decode(sb);
#pragma unroll
		for (int k = 0; k < 8; k++) {
			float v = __fmul_rn(s_e2m1[(w >> (4 * k)) & 15u], s);
			y[k] = KC == K_NVFP4 ? __fmul_rn(v, p.g) : v;
		}
	} else if (KC == K_INT8S || KC == K_INT8A) {
		const uint32_t B = (uint32_t)p.block, rb = (pg.nc + B - 1) / B, blk = col0 / B;
		const uint32_t rec = KC == K_INT8S ? 4 : 5;
		const uint64_t code_row = (uint64_t)rb * B;
		const uint8_t *r = pay + (uint64_t)pg.nr * code_row + ((uint64_t)row * rb + blk) * rec;
		const float s = ts__bits_f32(le32(r));
		const int z = KC == K_INT8A ? r[4] : 0;
		const uint2 c = *(const uint2 *)(pay + row * code_row + col0);
#pragma unroll
		for (int k = 0; k < 8; k++) {
			uint32_t b = ((k < 4 ? c.x : c.y) >> (8 * (k & 3))) & 0xffu;
			float v = KC == K_INT8S ? (float)(int8_t)b : (float)((int)b - z);
			y[k] = __fmul_rn(v, s);
		}
	} else if (KC == K_FP8) {
		const uint8_t *c = pay + (uint64_t)row * pg.nc + col0;
#pragma unroll
		for (int k = 0; k < 8; k++)
			y[k] = __fmul_rn(s_e4m3[k < (int)ne ? c[k] : 0], p.g);
	} else { /* raw, lossless: element by element */
		const uint64_t n = (uint64_t)pg.nr * pg.nc, i0 = (uint64_t)row * pg.nc + col0;
		for (uint32_t k = k0; k < k1; k++) {
			if (OUT == -1) { /* the stored dtype itself: the bytes */
				uint8_t *d = (uint8_t *)p.dst + (d0 + k) * (uint64_t)p.es;
				if (KC == K_LOSSLESS && pay[0] == 1) {
					uint32_t x = elem_bits(KC, pay, p.es, n, i0 + k);
					for (int b = 0; b < p.es; b++)
						d[b] = (uint8_t)(x >> (8 * b));
				} else {
					const uint8_t *s = pay + (KC == K_LOSSLESS ? 1 : 0) +
							   (i0 + k) * (uint64_t)p.es;
					for (int b = 0; b < p.es; b++)
						d[b] = s[b];
				}
			} else {
				uint32_t x = elem_bits(KC, pay, p.es, n, i0 + k);
				if (OUT == p.stored) /* BF16->BF16, F16->F16: the bits */
					((uint16_t *)p.dst)[d0 + k] = (uint16_t)x;
				else
					put<OUT>(p, d0 + k, bits_value(x, p.stored));
			}
		}
		return;
	}
	if (OUT == -1)
		return; /* not reached: only raw and lossless copy their own dtype */
	if (k0 == 0 && k1 == 8) { /* a whole unit: 16-byte stores */
		if (OUT != TS_F32 && (d0 & 7) == 0) {
			uint32_t h[4];
#pragma unroll
			for (int k = 0; k < 4; k++)
				h[k] = pack2<OUT>(y[2 * k], y[2 * k + 1]);
			/* streaming: the output is not read again by this launch */
			__stcs((uint4 *)((uint16_t *)p.dst + d0), make_uint4(h[0], h[1], h[2], h[3]));
			return;
		}
		if (OUT == TS_F32 && (d0 & 3) == 0) {
			float4 *d = (float4 *)((float *)p.dst + d0);
			__stcs(d, make_float4(y[0], y[1], y[2], y[3]));
			__stcs(d + 1, make_float4(y[4], y[5], y[6], y[7]));
			return;
		}
	}
#pragma unroll
	for (int k = 0; k < 8; k++)
		if (k >= (int)k0 && k < (int)k1)
			put<OUT>(p, d0 + k, y[k]);
}

template <int KC, int OUT> __global__ void __launch_bounds__(THREADS) k_decode(params p)
{
	constexpr int G = unit_elems(KC, OUT == -2);
	__shared__ float s_e4m3[256];
	__shared__ float s_e2m1[16];

	for (uint32_t i = threadIdx.x; i < 256; i += THREADS)
		s_e4m3[i] = g_e4m3[i];
	if (threadIdx.x < 16)
		s_e2m1[threadIdx.x] = g_e2m1[threadIdx.x];
	__syncthreads();

	const struct ts__gpu_page pg = p.table ? p.table[blockIdx.y] : p.single;
	const uint32_t gpr = (pg.nc + G - 1) / G;
	if (gpr >= THREADS / 2) { /* rows to blocks, units to threads: no division */
		for (uint32_t row = blockIdx.x; row < pg.nr; row += gridDim.x)
			for (uint32_t gi = threadIdx.x; gi < gpr; gi += THREADS)
				unit<KC, OUT>(p, pg, row, gi, s_e4m3, s_e2m1);
		return;
	}
	const uint32_t units = pg.nr * gpr; /* short rows: flat over the page */
	for (uint32_t u = blockIdx.x * THREADS + threadIdx.x; u < units; u += gridDim.x * THREADS) {
		uint32_t row = u / gpr;
		unit<KC, OUT>(p, pg, row, u - row * gpr, s_e4m3, s_e2m1);
	}
}

typedef void (*kfn)(params);

template <int KC> static kfn pick_out(int out)
{
	switch (out) {
	case TS_F32:
		return k_decode<KC, TS_F32>;
	case TS_BF16:
		return k_decode<KC, TS_BF16>;
	case TS_F16:
		return k_decode<KC, TS_F16>;
	case -1:
		return KC == K_RAW || KC == K_LOSSLESS ? k_decode<KC, -1> : NULL;
	case -2:
		return KC == K_NVFP4 || KC == K_MXFP4 || KC == K_FP8 ? k_decode<KC, -2> : NULL;
	}
	return NULL;
}

static int kcodec_of(const ts_codec_config *c)
{
	switch (c->codec) {
	case TS_CODEC_NVFP4:
		return K_NVFP4;
	case TS_CODEC_MXFP4:
		return K_MXFP4;
	case TS_CODEC_INT8:
		return c->symmetric ? K_INT8S : K_INT8A;
	case TS_CODEC_FP8:
		return K_FP8;
	case TS_CODEC_RAW:
		return K_RAW;
	default:
		return K_LOSSLESS;
	}
}

static kfn pick(int kc, int out)
{
	switch (kc) {
	case K_NVFP4:
		return pick_out<K_NVFP4>(out);
	case K_MXFP4:
		return pick_out<K_MXFP4>(out);
	case K_INT8S:
		return pick_out<K_INT8S>(out);
	case K_INT8A:
		return pick_out<K_INT8A>(out);
	case K_FP8:
		return pick_out<K_FP8>(out);
	case K_RAW:
		return pick_out<K_RAW>(out);
	default:
		return pick_out<K_LOSSLESS>(out);
	}
}

static int tables_ready;

extern "C" int ts__gpu_launch(const struct ts__gpu_job *job, const void *batch,
			      const struct ts__gpu_page *single, void *stream)
{
	params p;
	int kc = kcodec_of(&job->codec), out;
	kfn f;

	if (!tables_ready) { /* the CPU's own tables (invariant 1); same values every time */
		if (cudaMemcpyToSymbol(g_e4m3, ts__e4m3_table, sizeof(g_e4m3)) != cudaSuccess ||
		    cudaMemcpyToSymbol(g_e2m1, ts__e2m1_table, sizeof(g_e2m1)) != cudaSuccess)
			return -1;
		tables_ready = 1;
	}
	if (job->out == TS__GPU_PLANES)
		out = -2;
	else if ((kc == K_RAW || kc == K_LOSSLESS) && job->dtype == job->codec.raw_dtype &&
		 job->dtype != TS_BF16 && job->dtype != TS_F16 && job->dtype != TS_F32)
		out = -1;
	else if ((kc == K_RAW || kc == K_LOSSLESS) && job->dtype == TS_F32 &&
		 job->codec.raw_dtype == TS_F32)
		out = -1; /* F32 -> F32: the bits, NaN payloads included */
	else if ((kc == K_RAW || kc == K_LOSSLESS) && job->codec.raw_dtype != TS_BF16 &&
		 job->codec.raw_dtype != TS_F16 && job->codec.raw_dtype != TS_F32)
		return -2; /* other stored dtypes decode only to themselves */
	else
		out = job->dtype;
	f = pick(kc, out);
	if (!f)
		return -2;
	memset(&p, 0, sizeof(p));
	p.base = (const uint8_t *)batch;
	p.table = single ? NULL : (const struct ts__gpu_page *)((const uint8_t *)batch + job->table);
	if (single)
		p.single = *single;
	p.dst = job->dst;
	p.dst2 = job->dst2;
	p.stride = job->dst_stride;
	p.stride2 = job->dst2_stride;
	p.ra = job->ra, p.rn = job->rn, p.ca = job->ca, p.cn = job->cn;
	p.g = job->tensor_scale;
	p.block = job->codec.block_size;
	p.stored = job->codec.raw_dtype;
	p.es = (int)ts_dtype_size(job->codec.raw_dtype);
	if (job->npages == 0 || job->max_units == 0)
		return 0;
	uint32_t bx = (job->max_units + THREADS - 1) / THREADS, cap = BLOCKS_MAX / job->npages;
	dim3 grid(bx < cap ? bx : cap > 0 ? cap : 1, job->npages);
	f<<<grid, THREADS, 0, (cudaStream_t)stream>>>(p);
	return cudaGetLastError() == cudaSuccess ? 0 : -1;
}
