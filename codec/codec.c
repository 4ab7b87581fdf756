/*
 * The codec API (include/tstore.h, "Codecs"): configurations, encoded sizes, and the drivers that
 * run the block kernels over the rows of a matrix. Byte layouts are in docs/CODECS.md.
 *
 * Invariants
 *   1. Layout: for a rows x cols matrix, the code plane (row r at r * code_row bytes, each row
 *      padded to whole blocks) is followed by the scale plane (row r at r * scale_row bytes).
 *      Blocks never straddle a row. Raw rows are packed with no padding and no scale plane.
 *   2. Padded elements of the last block of a row are encoded from +0 and their codes are 0;
 *      decoding writes exactly the cols real elements of each row and nothing past them.
 *   3. Lossy encoders never see a non-finite value: each chunk is checked before it is encoded,
 *      and the first NaN/Inf is reported as TS_ENONFINITE with its row and column.
 *   4. No allocation: sources other than aligned F32 are converted in stack chunks of CHUNK
 *      elements, a multiple of every block size, so a chunk boundary is a block boundary.
 *   5. Any table slot left NULL by the kernels in effect is served by the scalar reference.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "codec/codec.h"
#include "codec/codecs.h"
#include "codec/lossless.h"
#include "common/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the codec payloads are little-endian and these drivers copy host words: port them first"
#endif

#define CHUNK 4096 /* == TS_INT8_BLOCK_MAX, a multiple of every block size */

static const char *const codec_names[TS_CODEC_COUNT] = {
	[TS_CODEC_RAW] = "raw",	    [TS_CODEC_NVFP4] = "nvfp4", [TS_CODEC_MXFP4] = "mxfp4",
	[TS_CODEC_INT8] = "int8",   [TS_CODEC_FP8] = "fp8",     [TS_CODEC_LOSSLESS] = "lossless",
};

TS_API const char *ts_codec_name(ts_codec codec)
{
	return (unsigned)codec < TS_CODEC_COUNT ? codec_names[codec] : "?";
}

TS_API int ts_codec_parse(ts_codec *out, const char *name)
{
	for (int i = 0; i < TS_CODEC_COUNT; i++) {
		if (name && strcasecmp(name, codec_names[i]) == 0) {
			*out = (ts_codec)i;
			return 0;
		}
	}
	return ts__err(TS_EINVAL, "unknown codec '%s' (expected raw, nvfp4, mxfp4, int8, fp8 or lossless)",
		       name ? name : "(null)");
}

TS_API ts_codec_config ts_codec_config_default(ts_codec codec)
{
	ts_codec_config c;

	memset(&c, 0, sizeof(c));
	c.codec = codec;
	c.symmetric = 1;
	c.recipe = TS_RECIPE_NVIDIA;
	c.raw_dtype = TS_F32;
	c.max_error_pct = 10.0;
	switch (codec) {
	case TS_CODEC_NVFP4:
		c.block_size = TS_NVFP4_BLOCK;
		c.bits_per_value = 4;
		break;
	case TS_CODEC_MXFP4:
		c.block_size = TS_MXFP4_BLOCK;
		c.bits_per_value = 4;
		break;
	case TS_CODEC_INT8:
		c.block_size = TS_INT8_BLOCK_DEFAULT;
		c.bits_per_value = 8;
		break;
	case TS_CODEC_FP8:
		c.block_size = 1;
		c.bits_per_value = 8;
		break;
	case TS_CODEC_RAW:
		c.block_size = 1;
		c.bits_per_value = 32;
		break;
	case TS_CODEC_LOSSLESS:
		c.raw_dtype = TS_BF16;
		c.block_size = 1;
		c.bits_per_value = 16;
		c.max_error_pct = 0.0;
		break;
	default:
		break;
	}
	return c;
}

static int check_shape(const ts_codec_config *cfg, int block, int bits)
{
	const char *name = ts_codec_name(cfg->codec);
	if (cfg->block_size != block)
		return ts__err(TS_EINVAL, "%s: block_size must be %d (got %d)", name, block,
			       cfg->block_size);
	if (cfg->bits_per_value != bits)
		return ts__err(TS_EINVAL, "%s: bits_per_value must be %d (got %d)", name, bits,
			       cfg->bits_per_value);
	return 0;
}

TS_API int ts_codec_config_check(const ts_codec_config *cfg)
{
	int rc;

	if (!cfg)
		return ts__err(TS_EINVAL, "codec configuration is NULL");
	if (!(cfg->max_error_pct >= 0.0))
		return ts__err(TS_EINVAL, "max_error_pct must be >= 0 (got %g)",
			       cfg->max_error_pct);
	switch (cfg->codec) {
	case TS_CODEC_NVFP4:
		if (cfg->recipe != TS_RECIPE_NVIDIA && cfg->recipe != TS_RECIPE_BEST)
			return ts__err(TS_EINVAL, "nvfp4: unknown recipe %d", (int)cfg->recipe);
		return check_shape(cfg, TS_NVFP4_BLOCK, 4);
	case TS_CODEC_MXFP4:
		return check_shape(cfg, TS_MXFP4_BLOCK, 4);
	case TS_CODEC_FP8:
		return check_shape(cfg, 1, 8);
	case TS_CODEC_INT8:
		if (cfg->block_size < TS_INT8_BLOCK_MIN || cfg->block_size > TS_INT8_BLOCK_MAX ||
		    (cfg->block_size & (cfg->block_size - 1)))
			return ts__err(TS_EINVAL,
				       "int8: block_size must be a power of two in %d..%d (got %d)",
				       TS_INT8_BLOCK_MIN, TS_INT8_BLOCK_MAX, cfg->block_size);
		if (cfg->symmetric != 0 && cfg->symmetric != 1)
			return ts__err(TS_EINVAL, "int8: symmetric must be 0 or 1 (got %d)",
				       cfg->symmetric);
		return check_shape(cfg, cfg->block_size, 8);
	case TS_CODEC_RAW:
	case TS_CODEC_LOSSLESS:
		if (!ts_dtype_size(cfg->raw_dtype))
			return ts__err(TS_EINVAL, "%s: unknown raw_dtype %d",
				       ts_codec_name(cfg->codec), (int)cfg->raw_dtype);
		rc = check_shape(cfg, 1, (int)(8 * ts_dtype_size(cfg->raw_dtype)));
		return rc;
	default:
		return ts__err(TS_EINVAL, "unknown codec %d", (int)cfg->codec);
	}
}

TS_API float ts_codec_tensor_scale(const ts_codec_config *cfg, float amax)
{
	if (!cfg)
		return 1.0f;
	if (cfg->codec == TS_CODEC_NVFP4)
		return ts__nvfp4_tensor_scale(cfg->recipe, amax);
	if (cfg->codec == TS_CODEC_FP8)
		return ts__fp8_tensor_scale(amax);
	return 1.0f;
}

/* ---- geometry ------------------------------------------------------------------------------ */

typedef struct geometry {
	int block;           /* elements per block (1 for fp8 and raw) */
	size_t code_block;   /* code bytes per block */
	size_t scale_block;  /* scale bytes per block */
	uint64_t row_blocks; /* blocks per row */
	size_t code_row;     /* code bytes per row */
	size_t scale_row;    /* scale bytes per row */
	size_t total;        /* the whole payload */
} geometry;

static int mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
	if (b && a > UINT64_MAX / b)
		return 0;
	*out = a * b;
	return 1;
}

/* Fill @p g for a valid @p cfg; 0, or TS_EINVAL if the payload size overflows. */
static int geometry_of(const ts_codec_config *cfg, uint64_t rows, uint64_t cols, geometry *g)
{
	uint64_t code_row, scale_row, a, b, extra;

	memset(g, 0, sizeof(*g));
	switch (cfg->codec) {
	case TS_CODEC_NVFP4:
	case TS_CODEC_MXFP4:
		g->block = cfg->block_size;
		g->code_block = (size_t)g->block / 2;
		g->scale_block = 1;
		break;
	case TS_CODEC_INT8:
		g->block = cfg->block_size;
		g->code_block = (size_t)g->block;
		g->scale_block = cfg->symmetric ? TS_INT8_SYM_SCALE_BYTES : TS_INT8_ASYM_SCALE_BYTES;
		break;
	case TS_CODEC_FP8:
		g->block = 1;
		g->code_block = 1;
		break;
	default: /* raw, lossless */
		g->block = 1;
		g->code_block = ts_dtype_size(cfg->raw_dtype);
		break;
	}
	g->row_blocks = cols / (uint64_t)g->block + (cols % (uint64_t)g->block != 0);
	if (!mul_ok(g->row_blocks, g->code_block, &code_row) ||
	    !mul_ok(g->row_blocks, g->scale_block, &scale_row) || !mul_ok(rows, code_row, &a) ||
	    !mul_ok(rows, scale_row, &b) || a + b < a || a + b >= SIZE_MAX)
		return ts__err(TS_EINVAL, "%s: a %llu x %llu matrix is too large to encode",
			       ts_codec_name(cfg->codec), (unsigned long long)rows,
			       (unsigned long long)cols);
	/* lossless: its most, one mode byte more than raw (codec/lossless.c, invariant 1) */
	extra = cfg->codec == TS_CODEC_LOSSLESS && a > 0;
	g->code_row = (size_t)code_row;
	g->scale_row = (size_t)scale_row;
	g->total = (size_t)(a + b + extra);
	return 0;
}

TS_API size_t ts_codec_encoded_size(const ts_codec_config *cfg, uint64_t rows, uint64_t cols)
{
	geometry g;
	if (ts_codec_config_check(cfg) < 0 || geometry_of(cfg, rows, cols, &g) < 0)
		return 0;
	return g.total;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static int is_float_out(ts_dtype d)
{
	return d == TS_F32 || d == TS_BF16 || d == TS_F16;
}

static int aligned(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

static ts__convert_fn convert_fn(const ts__kernels *k, ts_dtype from, ts_dtype to)
{
	ts__convert_fn f = k->convert[from][to];
	return f ? f : ts__kernels_scalar()->convert[from][to];
}

/*
 * n (<= CHUNK) elements of @p dtype at @p src as float32: either @p src itself (aligned F32) or
 * @p buf. @p tmp is scratch for unaligned narrow sources.
 */
static const float *load_chunk(const ts__kernels *k, const uint8_t *src, ts_dtype dtype,
			       size_t n, float *buf, void *tmp)
{
	if (dtype == TS_F32) {
		if (aligned(src, 4))
			return (const float *)(const void *)src;
		memcpy(buf, src, n * 4);
		return buf;
	}
	if (!aligned(src, 2)) {
		memcpy(tmp, src, n * 2);
		src = tmp;
	}
	convert_fn(k, dtype, TS_F32)(src, n, buf);
	return buf;
}

/* Index of the first non-finite value of x[0..n), or n. */
static size_t first_nonfinite(const float *x, size_t n)
{
	/* An all-ones exponent plus one exponent unit carries into bit 31; any other exponent
	 * stays below it. Adds, ands and ors only, in vectors of 4 (the baseline's SSE2; a scalar
	 * compare per element was a tenth of an import's time). */
	typedef uint32_t u32x4 __attribute__((vector_size(16)));
	u32x4 acc = {0, 0, 0, 0};
	uint32_t any;
	size_t k = 0;
	for (; k + 4 <= n; k += 4) {
		u32x4 v;
		memcpy(&v, x + k, sizeof(v));
		acc |= (v & 0x7f800000u) + 0x00800000u;
	}
	any = acc[0] | acc[1] | acc[2] | acc[3];
	for (; k < n; k++)
		any |= (ts__f32_bits(x[k]) & 0x7f800000u) + 0x00800000u;
	if (!(any & 0x80000000u))
		return n;
	for (size_t i = 0; i < n; i++)
		if (!ts__f32_finite(x[i]))
			return i;
	return n;
}

/* ---- encode -------------------------------------------------------------------------------- */

typedef struct encoder {
	const ts_codec_config *cfg;
	const ts__kernels *k;
	ts__encode_fn block_fn; /* nvfp4 nvidia, mxfp4 */
	float scale;            /* nvidia/fp8: S; best: g */
} encoder;

static void encode_blocks(const encoder *e, const float *x, size_t nblocks, uint8_t *codes,
			  uint8_t *scales)
{
	switch (e->cfg->codec) {
	case TS_CODEC_NVFP4:
		if (e->cfg->recipe == TS_RECIPE_BEST)
			ts__nvfp4_encode_best(x, nblocks, e->scale, codes, scales);
		else
			e->block_fn(x, nblocks, e->scale, codes, scales);
		break;
	case TS_CODEC_MXFP4:
		e->block_fn(x, nblocks, 0.0f, codes, scales);
		break;
	case TS_CODEC_INT8:
		ts__int8_encode(x, nblocks, e->cfg->block_size, e->cfg->symmetric, codes, scales);
		break;
	case TS_CODEC_FP8:
		ts__fp8_encode_scalar(x, nblocks, e->scale, codes);
		break;
	default:
		break;
	}
}

/* Zero the codes of elements [from, block) of one block (4-bit codes for nvfp4/mxfp4). */
static void zero_padded_codes(const ts_codec_config *cfg, uint8_t *codes, int from, int block)
{
	if (cfg->bits_per_value == 4) {
		if (from & 1)
			codes[from / 2] &= 0x0f;
		memset(codes + (from + 1) / 2, 0, (size_t)(block - (from + 1) / 2 * 2) / 2);
	} else {
		memset(codes + from, 0, (size_t)(block - from));
	}
}

static int encode_raw(const ts_codec_config *cfg, const uint8_t *src, ts_dtype src_dtype,
		      uint64_t src_stride, uint64_t rows, uint64_t cols, uint8_t *dst,
		      const geometry *g)
{
	size_t in_size = ts_dtype_size(src_dtype);
	ts_dtype to = cfg->raw_dtype;

	if (src_dtype == to) {
		for (uint64_t r = 0; r < rows; r++)
			memcpy(dst + r * g->code_row, src + r * src_stride * in_size, g->code_row);
		return 0;
	}
	if (!is_float_out(src_dtype) || !is_float_out(to))
		return ts__err(TS_EDTYPE, "raw: cannot store %s source as %s",
			       ts_dtype_name(src_dtype), ts_dtype_name(to));

	const ts__kernels *k = ts__kernels_get();
	_Alignas(32) uint8_t in[CHUNK * 4], out[CHUNK * 4];
	size_t out_size = ts_dtype_size(to);
	for (uint64_t r = 0; r < rows; r++) {
		const uint8_t *s = src + r * src_stride * in_size;
		uint8_t *d = dst + r * g->code_row;
		for (uint64_t c0 = 0; c0 < cols; c0 += CHUNK) {
			size_t n = cols - c0 < CHUNK ? (size_t)(cols - c0) : CHUNK;
			memcpy(in, s + c0 * in_size, n * in_size);
			convert_fn(k, src_dtype, to)(in, n, out);
			memcpy(d + c0 * out_size, out, n * out_size);
		}
	}
	return 0;
}

TS_API int ts_codec_encode(const ts_codec_config *cfg, float amax, const void *src,
			   ts_dtype src_dtype, uint64_t src_stride, uint64_t rows, uint64_t cols,
			   void *dst, size_t dst_size)
{
	size_t written;
	return ts_codec_encode_len(&written, cfg, amax, src, src_dtype, src_stride, rows, cols,
				   dst, dst_size);
}

TS_API int ts_codec_encode_len(size_t *written, const ts_codec_config *cfg, float amax,
			       const void *src, ts_dtype src_dtype, uint64_t src_stride,
			       uint64_t rows, uint64_t cols, void *dst, size_t dst_size)
{
	geometry g;
	int rc;

	*written = 0;
	if ((rc = ts_codec_config_check(cfg)) < 0 || (rc = geometry_of(cfg, rows, cols, &g)) < 0)
		return rc;
	if (dst_size < g.total)
		return ts__err(TS_ESHORTBUF, "%s: encoding %llu x %llu needs %zu bytes, got %zu",
			       ts_codec_name(cfg->codec), (unsigned long long)rows,
			       (unsigned long long)cols, g.total, dst_size);
	if (rows == 0 || cols == 0)
		return 0;
	if (!src || !dst)
		return ts__err(TS_EINVAL, "%s: NULL %s buffer", ts_codec_name(cfg->codec),
			       src ? "destination" : "source");
	if (rows > 1 && src_stride < cols)
		return ts__err(TS_EINVAL, "%s: source stride %llu is less than the row length %llu",
			       ts_codec_name(cfg->codec), (unsigned long long)src_stride,
			       (unsigned long long)cols);
	if (!ts_dtype_size(src_dtype))
		return ts__err(TS_EDTYPE, "%s: unknown source dtype %d", ts_codec_name(cfg->codec),
			       (int)src_dtype);
	if (cfg->codec == TS_CODEC_LOSSLESS) {
		if (src_dtype != cfg->raw_dtype)
			return ts__err(TS_EDTYPE, "lossless: cannot store %s source as %s (lossless "
				       "keeps the source dtype)", ts_dtype_name(src_dtype),
				       ts_dtype_name(cfg->raw_dtype));
		return ts__lossless_encode(written, src_dtype, src, src_stride, rows, cols, dst,
					   dst_size);
	}
	*written = g.total;
	if (cfg->codec == TS_CODEC_RAW)
		return encode_raw(cfg, src, src_dtype, src_stride, rows, cols, dst, &g);
	if (!is_float_out(src_dtype))
		return ts__err(TS_EDTYPE, "%s: cannot encode %s source (F32, BF16 or F16 only)",
			       ts_codec_name(cfg->codec), ts_dtype_name(src_dtype));

	encoder e = {.cfg = cfg, .k = ts__kernels_get()};
	if (cfg->codec == TS_CODEC_NVFP4 || cfg->codec == TS_CODEC_FP8) {
		if (!(amax >= 0.0f) || !ts__f32_finite(amax))
			return ts__err(TS_EINVAL, "%s: amax must be finite and >= 0 (got %g)",
				       ts_codec_name(cfg->codec), (double)amax);
	}
	if (cfg->codec == TS_CODEC_NVFP4) {
		if (cfg->recipe == TS_RECIPE_BEST) {
			e.scale = ts__nvfp4_tensor_scale(TS_RECIPE_BEST, amax);
		} else {
			e.scale = ts__nvfp4_encode_scale(amax);
			e.block_fn = e.k->nvfp4_encode_nvidia ? e.k->nvfp4_encode_nvidia
							       : ts__kernels_scalar()->nvfp4_encode_nvidia;
		}
	} else if (cfg->codec == TS_CODEC_MXFP4) {
		e.block_fn = e.k->mxfp4_encode ? e.k->mxfp4_encode
					       : ts__kernels_scalar()->mxfp4_encode;
	} else if (cfg->codec == TS_CODEC_FP8) {
		e.scale = ts__fp8_encode_scale(amax);
	}

	_Alignas(32) float buf[CHUNK];
	_Alignas(32) uint8_t tmp[CHUNK * 2];
	const uint8_t *s8 = src;
	uint8_t *d8 = dst;
	size_t in_size = ts_dtype_size(src_dtype);
	size_t bs = (size_t)g.block;

	for (uint64_t r = 0; r < rows; r++) {
		const uint8_t *srow = s8 + r * src_stride * in_size;
		uint8_t *crow = d8 + r * g.code_row;
		uint8_t *scrow = d8 + rows * g.code_row + r * g.scale_row;
		for (uint64_t c0 = 0; c0 < cols; c0 += CHUNK) {
			size_t n = cols - c0 < CHUNK ? (size_t)(cols - c0) : CHUNK;
			const float *x = load_chunk(e.k, srow + c0 * in_size, src_dtype, n, buf, tmp);
			size_t bad = first_nonfinite(x, n);
			if (bad < n)
				return ts__err(TS_ENONFINITE,
					       "%s: row %llu, column %llu holds %s, which a lossy "
					       "codec cannot encode",
					       ts_codec_name(cfg->codec), (unsigned long long)r,
					       (unsigned long long)(c0 + bad),
					       isnan(x[bad]) ? "NaN" : "Inf");
			size_t b0 = (size_t)(c0 / bs), nfull = n / bs, rem = n % bs;
			uint8_t *cb = crow + b0 * g.code_block;
			uint8_t *sb = scrow + b0 * g.scale_block;
			if (nfull)
				encode_blocks(&e, x, nfull, cb, sb);
			if (rem) {
				/* the padded last block of the row (only the last chunk has one) */
				if (x != buf)
					memcpy(buf, x + nfull * bs, rem * sizeof(float));
				else
					memmove(buf, x + nfull * bs, rem * sizeof(float));
				memset(buf + rem, 0, (bs - rem) * sizeof(float));
				cb += nfull * g.code_block;
				sb += nfull * g.scale_block;
				encode_blocks(&e, buf, 1, cb, sb);
				zero_padded_codes(cfg, cb, (int)rem, (int)bs);
			}
		}
	}
	return 0;
}

/* ---- decode -------------------------------------------------------------------------------- */

/* Rows r0 .. r0+nr-1, columns c0 .. c0+nc-1 of a raw page (rows of g->code_row bytes). */
static int decode_raw(const ts_codec_config *cfg, const uint8_t *src, uint64_t r0, uint64_t nr,
		      uint64_t c0, uint64_t nc, ts_dtype dtype, uint8_t *dst, uint64_t dst_stride,
		      const geometry *g)
{
	ts_dtype from = cfg->raw_dtype;
	size_t out_size = ts_dtype_size(dtype), in_size = ts_dtype_size(from);

	src += r0 * g->code_row + c0 * in_size;
	if (dtype == from) {
		for (uint64_t r = 0; r < nr; r++)
			memcpy(dst + r * dst_stride * out_size, src + r * g->code_row, nc * in_size);
		return 0;
	}
	if (!is_float_out(from) || !is_float_out(dtype))
		return ts__err(TS_EDTYPE, "raw: cannot decode %s data as %s", ts_dtype_name(from),
			       ts_dtype_name(dtype));

	const ts__kernels *k = ts__kernels_get();
	_Alignas(32) uint8_t in[CHUNK * 4], out[CHUNK * 4];
	for (uint64_t r = 0; r < nr; r++) {
		const uint8_t *s = src + r * g->code_row;
		uint8_t *d = dst + r * dst_stride * out_size;
		for (uint64_t x = 0; x < nc; x += CHUNK) {
			size_t n = nc - x < CHUNK ? (size_t)(nc - x) : CHUNK;
			memcpy(in, s + x * in_size, n * in_size);
			if (aligned(d, out_size)) {
				convert_fn(k, from, dtype)(in, n, d + x * out_size);
			} else {
				convert_fn(k, from, dtype)(in, n, out);
				memcpy(d + x * out_size, out, n * out_size);
			}
		}
	}
	return 0;
}

/* Blocks bfirst .. bfirst+nb-1 of one row decoded into @p tmp, and the part of them inside
 * columns [c0, c0+nc) copied to that column's place in @p drow (drow holds column c0 first). */
static void decode_blocks_via(ts__decode_fn fn, const geometry *g, const uint8_t *crow,
			      const uint8_t *scrow, uint64_t bfirst, size_t nb, float tscale,
			      uint64_t c0, uint64_t nc, size_t out_size, uint8_t *drow, uint8_t *tmp)
{
	uint64_t bs = (uint64_t)g->block, a = bfirst * bs, b = a + nb * bs;

	fn(crow + bfirst * g->code_block, scrow + bfirst * g->scale_block, nb, g->block, tscale,
	   tmp);
	if (a < c0)
		a = c0;
	if (b > c0 + nc)
		b = c0 + nc;
	memcpy(drow + (a - c0) * out_size, tmp + (a - bfirst * bs) * out_size,
	       (size_t)(b - a) * out_size);
}

int ts__codec_decode_rect(const ts_codec_config *cfg, float tensor_scale, const void *src,
			  size_t src_size, uint64_t rows, uint64_t cols, uint64_t r0, uint64_t nr,
			  uint64_t c0, uint64_t nc, ts_dtype dtype, void *dst, uint64_t dst_stride)
{
	geometry g;
	int rc;

	if ((rc = ts_codec_config_check(cfg)) < 0 || (rc = geometry_of(cfg, rows, cols, &g)) < 0)
		return rc;
	if (src_size < g.total && !(cfg->codec == TS_CODEC_LOSSLESS && src_size > 0))
		return ts__err(TS_ESHORTBUF, "%s: decoding %llu x %llu needs %zu bytes, got %zu",
			       ts_codec_name(cfg->codec), (unsigned long long)rows,
			       (unsigned long long)cols, g.total, src_size);
	if (!ts_dtype_size(dtype))
		return ts__err(TS_EDTYPE, "%s: unknown output dtype %d", ts_codec_name(cfg->codec),
			       (int)dtype);
	if (r0 > rows || nr > rows - r0 || c0 > cols || nc > cols - c0)
		return ts__err(TS_EINVAL, "%s: rows %llu+%llu, columns %llu+%llu leave the %llu x "
			       "%llu page", ts_codec_name(cfg->codec), (unsigned long long)r0,
			       (unsigned long long)nr, (unsigned long long)c0,
			       (unsigned long long)nc, (unsigned long long)rows,
			       (unsigned long long)cols);
	if (nr == 0 || nc == 0)
		return 0;
	if (!src || !dst)
		return ts__err(TS_EINVAL, "%s: NULL %s buffer", ts_codec_name(cfg->codec),
			       src ? "destination" : "source");
	if (nr > 1 && dst_stride < nc)
		return ts__err(TS_EINVAL,
			       "%s: destination stride %llu is less than the row length %llu",
			       ts_codec_name(cfg->codec), (unsigned long long)dst_stride,
			       (unsigned long long)nc);
	if (cfg->codec == TS_CODEC_RAW)
		return decode_raw(cfg, src, r0, nr, c0, nc, dtype, dst, dst_stride, &g);
	if (cfg->codec == TS_CODEC_LOSSLESS) {
		if (r0 || c0 || nr != rows || nc != cols)
			return ts__err(TS_ENOTSUP, "lossless: a page decodes whole");
		return ts__lossless_decode(src, src_size, cfg->raw_dtype, rows, cols, dtype, dst,
					   dst_stride);
	}
	if (!is_float_out(dtype))
		return ts__err(TS_EDTYPE, "%s: cannot decode to %s (F32, BF16 or F16 only)",
			       ts_codec_name(cfg->codec), ts_dtype_name(dtype));
	if (!ts__f32_finite(tensor_scale))
		return ts__err(TS_EINVAL, "%s: tensor scale %g is not finite",
			       ts_codec_name(cfg->codec), (double)tensor_scale);

	const ts__kernels *k = ts__kernels_get(), *ks = ts__kernels_scalar();
	ts__decode_fn fn;
	ts__decode_rows_fn rows_fn = NULL;
	if (cfg->codec == TS_CODEC_INT8 && !cfg->symmetric) {
		fn = k->decode_int8_asym[dtype] ? k->decode_int8_asym[dtype]
						: ks->decode_int8_asym[dtype];
	} else {
		fn = k->decode[cfg->codec][dtype] ? k->decode[cfg->codec][dtype]
						  : ks->decode[cfg->codec][dtype];
		if (k->decode[cfg->codec][dtype])
			rows_fn = k->decode_rows[cfg->codec][dtype];
	}

	const uint8_t *s8 = src;
	uint8_t *d8 = dst;
	const uint8_t *codes0 = s8 + r0 * g.code_row, *scales0 = s8 + rows * g.code_row + r0 * g.scale_row;
	size_t out_size = ts_dtype_size(dtype);
	uint64_t bs = (uint64_t)g.block;
	uint64_t b_lo = c0 / bs, b_hi = (c0 + nc + bs - 1) / bs; /* blocks touched */
	uint64_t f0 = (c0 + bs - 1) / bs, f1 = (c0 + nc) / bs;   /* blocks wholly inside */
	size_t chunk = TS_INT8_BLOCK_MAX / (size_t)bs;          /* blocks of one tmp */
	_Alignas(32) uint8_t tmp[TS_INT8_BLOCK_MAX * 4];

	if (f1 < f0)
		f1 = f0;
	if (!aligned(dst, out_size)) {
		/* an unaligned destination: everything through the aligned scratch */
		for (uint64_t r = 0; r < nr; r++)
			for (uint64_t b = b_lo; b < b_hi; b += chunk)
				decode_blocks_via(fn, &g, codes0 + r * g.code_row,
						  scales0 + r * g.scale_row, b,
						  b_hi - b < chunk ? (size_t)(b_hi - b) : chunk,
						  tensor_scale, c0, nc, out_size,
						  d8 + r * dst_stride * out_size, tmp);
		return 0;
	}
	if (f1 > f0) {
		uint8_t *d = d8 + (f0 * bs - c0) * out_size;
		if (rows_fn)
			rows_fn(codes0 + f0 * g.code_block, g.code_row, scales0 + f0 * g.scale_block,
				g.scale_row, (size_t)nr, (size_t)(f1 - f0), g.block, tensor_scale, d,
				(size_t)dst_stride * out_size);
		else
			for (uint64_t r = 0; r < nr; r++)
				fn(codes0 + r * g.code_row + f0 * g.code_block,
				   scales0 + r * g.scale_row + f0 * g.scale_block, (size_t)(f1 - f0),
				   g.block, tensor_scale, d + r * dst_stride * out_size);
	}
	/* the blocks cut by the column range or by the row's end: [b_lo, f0) and [f1, b_hi), at
	 * most one each */
	for (int side = 0; side < 2; side++) {
		uint64_t b = side ? f1 : b_lo, end = side ? b_hi : f0;
		for (; b < end; b++)
			for (uint64_t r = 0; r < nr; r++)
				decode_blocks_via(fn, &g, codes0 + r * g.code_row,
						  scales0 + r * g.scale_row, b, 1, tensor_scale, c0,
						  nc, out_size, d8 + r * dst_stride * out_size, tmp);
	}
	return 0;
}

TS_API int ts_codec_decode(const ts_codec_config *cfg, float tensor_scale, const void *src,
			   size_t src_size, uint64_t rows, uint64_t cols, ts_dtype dtype, void *dst,
			   uint64_t dst_stride)
{
	return ts__codec_decode_rect(cfg, tensor_scale, src, src_size, rows, cols, 0, rows, 0,
				     cols, dtype, dst, dst_stride);
}
