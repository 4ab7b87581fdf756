/*
 * lossless: every bit of every element kept. A float element (F32, BF16, F16) is split into two
 * planes: its exponent byte, entropy-coded as a zstd frame made only of Huffman-coded literals,
 * and its sign and mantissa, kept as they are (they are close to random in trained weights).
 * Other dtypes, and data the planes would not make smaller, are stored as they are behind a
 * one-byte mode. Byte layout: docs/CODECS.md, "lossless".
 *
 * Why zstd and why literals only (measured, docs/CODECS.md): an exponent plane is short on
 * repeats, and zstd's match finder, allowed to run, costs more in sequences than it saves and
 * perturbs the literal statistics (1.46x instead of 1.50x on BF16 checkpoints). Giving zstd an
 * empty sequence list (ZSTD_compressSequences) makes each 128 KiB block one Huffman-coded
 * literal section with its own table: within 0.1% of the order-0 bound and decoded by zstd's
 * 4-stream Huffman decoder. The frame is an ordinary RFC 8878 frame: any zstd decoder reads it.
 *
 * Invariants
 *   1. The payload is never longer than 1 + n * size(dtype) (ts_codec_encoded_size()): planes are
 *      used only when the whole payload is strictly shorter than the stored form.
 *   2. The decoder trusts nothing: the mode, the frame length, the frame's declared content size
 *      and the bytes zstd actually produced must all agree with n and the payload's length;
 *      anything else is TS_ECORRUPT, and no byte is read outside the payload.
 *   3. The per-thread context (zstd contexts and the exponent scratch) is made at a thread's first
 *      call and freed by the thread-specific-data destructor when the thread exits.
 */
#include "config.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_compressSequences, ZSTD_c_blockDelimiters */
#include <zstd.h>

#include "codec/codecs.h"
#include "codec/lossless.h"
#include "common/byteorder.h"
#include "common/error.h"

#define CHUNK 4096 /* elements joined on the stack before a dtype conversion */

int ts__lossless_splits(ts_dtype dtype)
{
	return dtype == TS_F32 || dtype == TS_BF16 || dtype == TS_F16;
}

/* ---- the plane kernels --------------------------------------------------------------------- */

void ts__lossless_join16_scalar(const uint8_t *e, const uint8_t *sm, size_t n, void *dst)
{
	uint16_t *d = dst;
	for (size_t i = 0; i < n; i++)
		d[i] = (uint16_t)((sm[i] & 0x80u) << 8 | (unsigned)e[i] << 7 | (sm[i] & 0x7fu));
}

void ts__lossless_join32_scalar(const uint8_t *e, const uint8_t *sm, size_t n, void *dst)
{
	uint32_t *d = dst;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *s = sm + 3 * i;
		d[i] = (uint32_t)(s[2] & 0x80u) << 24 | (uint32_t)e[i] << 23 |
		       (uint32_t)(s[2] & 0x7fu) << 16 | (uint32_t)s[1] << 8 | s[0];
	}
}

static void split16(const uint16_t *x, size_t n, uint8_t *e, uint8_t *sm)
{
	for (size_t i = 0; i < n; i++) {
		e[i] = (uint8_t)(x[i] >> 7);
		sm[i] = (uint8_t)((x[i] >> 8 & 0x80u) | (x[i] & 0x7fu));
	}
}

static void split32(const uint32_t *x, size_t n, uint8_t *e, uint8_t *sm)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t v = x[i];
		e[i] = (uint8_t)(v >> 23);
		sm[3 * i] = (uint8_t)v;
		sm[3 * i + 1] = (uint8_t)(v >> 8);
		sm[3 * i + 2] = (uint8_t)((v >> 16 & 0x7fu) | (v >> 24 & 0x80u));
	}
}

/* ---- the per-thread context ------------------------------------------------------------------ */

typedef struct tctx {
	ZSTD_CCtx *cc;
	ZSTD_DCtx *dc;
	uint8_t *buf; /* the exponent plane of one payload */
	size_t cap;
	uint8_t *frame; /* encode: the frame, before it is known to fit the payload */
	size_t frame_cap;
} tctx;

static pthread_key_t tkey;
static pthread_once_t tonce = PTHREAD_ONCE_INIT;
static int tkey_rc;

static void tctx_free(void *p)
{
	tctx *t = p;
	if (!t)
		return;
	ZSTD_freeCCtx(t->cc);
	ZSTD_freeDCtx(t->dc);
	free(t->buf);
	free(t->frame);
	free(t);
}

static void tkey_init(void)
{
	tkey_rc = pthread_key_create(&tkey, tctx_free);
}

/* Grow *@p buf (capacity *@p cap) to at least @p need bytes; 0 or -1. */
static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (*cap >= need)
		return 0;
	size_t c = need > 2 * *cap ? need : 2 * *cap;
	uint8_t *b = realloc(*buf, c);
	if (!b)
		return -1;
	*buf = b;
	*cap = c;
	return 0;
}

/* This thread's context with an exponent scratch of at least @p need bytes, or NULL (ENOMEM). */
static tctx *tctx_get(size_t need)
{
	tctx *t;

	pthread_once(&tonce, tkey_init);
	if (tkey_rc)
		return NULL;
	t = pthread_getspecific(tkey);
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return NULL;
		if (pthread_setspecific(tkey, t)) {
			free(t);
			return NULL;
		}
	}
	return grow(&t->buf, &t->cap, need) ? NULL : t;
}

static ZSTD_CCtx *cctx_of(tctx *t)
{
	if (t->cc)
		return t->cc;
	t->cc = ZSTD_createCCtx();
	if (!t->cc)
		return NULL;
	/* Literals only: the caller passes no sequences and no block delimiters, so every block is
	 * one Huffman-coded literal section. Level 1 only sets how literals are coded (Huffman on);
	 * no checksum (the page has one), the content size in the frame header. */
	if (ZSTD_isError(ZSTD_CCtx_setParameter(t->cc, ZSTD_c_compressionLevel, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(t->cc, ZSTD_c_blockDelimiters,
						ZSTD_sf_noBlockDelimiters)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(t->cc, ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(t->cc, ZSTD_c_contentSizeFlag, 1))) {
		ZSTD_freeCCtx(t->cc);
		t->cc = NULL;
	}
	return t->cc;
}

static ZSTD_DCtx *dctx_of(tctx *t)
{
	if (!t->dc)
		t->dc = ZSTD_createDCtx();
	return t->dc;
}

/* ---- encode -------------------------------------------------------------------------------- */

static void encode_stored(size_t *written, size_t es, const uint8_t *src, uint64_t stride,
			  uint64_t rows, uint64_t cols, uint8_t *dst)
{
	dst[0] = TS_LOSSLESS_STORED;
	for (uint64_t r = 0; r < rows; r++)
		memcpy(dst + 1 + r * cols * es, src + r * stride * es, cols * es);
	*written = 1 + rows * cols * es;
}

int ts__lossless_encode(size_t *written, ts_dtype dtype, const void *vsrc, uint64_t stride,
			uint64_t rows, uint64_t cols, void *vdst, size_t cap)
{
	const uint8_t *src = vsrc;
	uint8_t *dst = vdst;
	size_t es = ts_dtype_size(dtype), n = (size_t)(rows * cols);
	size_t frame_at = TS_LOSSLESS_PLANES_HDR + n * (es - 1), c;
	_Alignas(32) uint8_t tmp[CHUNK * 4];
	tctx *t;
	ZSTD_CCtx *cc;

	assert(cap >= 1 + n * es);
	(void)cap; /* NDEBUG */
	/* a frame has a few bytes of header: below 16 elements planes never pay */
	if (!ts__lossless_splits(dtype) || n < 16) {
		encode_stored(written, es, src, stride, rows, cols, dst);
		return 0;
	}
	if (!(t = tctx_get(n)) || !(cc = cctx_of(t)) ||
	    grow(&t->frame, &t->frame_cap, ZSTD_compressBound(n)))
		return ts__err(TS_ENOMEM, "lossless: out of memory for the zstd context");
	for (uint64_t r = 0; r < rows; r++) {
		const uint8_t *s = src + r * stride * es;
		for (uint64_t c0 = 0; c0 < cols; c0 += CHUNK) {
			size_t k = cols - c0 < CHUNK ? (size_t)(cols - c0) : CHUNK;
			size_t i = (size_t)(r * cols + c0);
			memcpy(tmp, s + c0 * es, k * es); /* the source may be unaligned */
			if (es == 2)
				split16((const uint16_t *)(const void *)tmp, k, t->buf + i,
					dst + TS_LOSSLESS_PLANES_HDR + i);
			else
				split32((const uint32_t *)(const void *)tmp, k, t->buf + i,
					dst + TS_LOSSLESS_PLANES_HDR + 3 * i);
		}
	}
	/* The frame goes to a buffer of ZSTD_compressBound() first: libzstd 1.5.4's
	 * ZSTD_compressSequences() can write past a smaller dstCapacity (found by
	 * fuzz/fuzz_lossless.c; the corpus keeps the input). It is kept only if it makes the payload
	 * strictly shorter than stored (invariant 1): 5 + n (es - 1) + C < 1 + n es <=> C <= n - 5. */
	c = ZSTD_compressSequences(cc, t->frame, t->frame_cap, NULL, 0, t->buf, n);
	if (ZSTD_isError(c) || c > n - 5 || c > UINT32_MAX) {
		/* incompressible, a frame too long for its u32 length (matrices of 4 G elements and
		 * more, never a page), or any other refusal: the stored form is always right */
		encode_stored(written, es, src, stride, rows, cols, dst);
		return 0;
	}
	memcpy(dst + frame_at, t->frame, c);
	dst[0] = TS_LOSSLESS_PLANES;
	ts__put_le32(dst + 1, (uint32_t)c);
	*written = frame_at + c;
	return 0;
}

/* ---- decode -------------------------------------------------------------------------------- */

uint64_t ts__lossless_payload_size(const void *vp, size_t avail, ts_dtype stored, uint64_t n)
{
	const uint8_t *p = vp;
	uint64_t es = ts_dtype_size(stored);

	if (avail < 1)
		return 0;
	if (p[0] == TS_LOSSLESS_STORED)
		return 1 + n * es;
	if (p[0] != TS_LOSSLESS_PLANES || !ts__lossless_splits(stored) ||
	    avail < TS_LOSSLESS_PLANES_HDR)
		return 0;
	return TS_LOSSLESS_PLANES_HDR + n * (es - 1) + ts__get_le32(p + 1);
}

static ts__join_fn join_fn(size_t es)
{
	const ts__kernels *k = ts__kernels_get(), *ks = ts__kernels_scalar();
	if (es == 2)
		return k->lossless_join16 ? k->lossless_join16 : ks->lossless_join16;
	return k->lossless_join32 ? k->lossless_join32 : ks->lossless_join32;
}

static ts__convert_fn convert_fn(ts_dtype from, ts_dtype to)
{
	ts__convert_fn f = ts__kernels_get()->convert[from][to];
	return f ? f : ts__kernels_scalar()->convert[from][to];
}

/* Join planes of rows x cols elements into dst (as @p out) row by row. */
static void join_rows(const uint8_t *e, const uint8_t *sm, ts_dtype stored, uint64_t rows,
		      uint64_t cols, ts_dtype out, uint8_t *dst, uint64_t dst_stride)
{
	size_t es = ts_dtype_size(stored), os = ts_dtype_size(out);
	ts__join_fn join = join_fn(es);
	ts__convert_fn conv = out == stored ? NULL : convert_fn(stored, out);
	_Alignas(32) uint8_t tmp[CHUNK * 4];

	for (uint64_t r = 0; r < rows; r++) {
		uint8_t *d = dst + r * dst_stride * os;
		const uint8_t *er = e + r * cols, *sr = sm + r * cols * (es - 1);
		if (!conv && ((uintptr_t)d & (es - 1)) == 0) {
			join(er, sr, (size_t)cols, d);
			continue;
		}
		for (uint64_t c0 = 0; c0 < cols; c0 += CHUNK) {
			size_t k = cols - c0 < CHUNK ? (size_t)(cols - c0) : CHUNK;
			join(er + c0, sr + c0 * (es - 1), k, tmp);
			if (!conv) {
				memcpy(d + c0 * os, tmp, k * os);
			} else if (((uintptr_t)(d + c0 * os) & (os - 1)) == 0) {
				conv(tmp, k, d + c0 * os);
			} else {
				_Alignas(32) uint8_t o[CHUNK * 4];
				conv(tmp, k, o);
				memcpy(d + c0 * os, o, k * os);
			}
		}
	}
}

/*
 * Check a planes payload (mode byte already seen) of @p n elements and entropy-decode its exponent
 * frame into *@p e (n bytes; if *e is NULL, into this thread's scratch, and *e says where).
 * 0 or TS_ECORRUPT with what is wrong; TS_ENOMEM.
 */
static int frame_decode(const uint8_t *src, size_t size, size_t es, size_t n, uint8_t **e)
{
	size_t frame_at = TS_LOSSLESS_PLANES_HDR + n * (es - 1), c, got;
	unsigned long long content;
	tctx *t;
	ZSTD_DCtx *dc;

	if (size < frame_at || (c = ts__get_le32(src + 1)) != size - frame_at)
		return ts__err(TS_ECORRUPT, "lossless: payload of %zu bytes, the header says %llu",
			       size, size < TS_LOSSLESS_PLANES_HDR ? 0ull
			       : (unsigned long long)frame_at + ts__get_le32(src + 1));
	content = ZSTD_getFrameContentSize(src + frame_at, c);
	if (content != (unsigned long long)n)
		return ts__err(TS_ECORRUPT, "lossless: the exponent frame holds %s, %zu bytes "
			       "expected", content == ZSTD_CONTENTSIZE_ERROR ? "no valid zstd header"
			       : content == ZSTD_CONTENTSIZE_UNKNOWN ? "an unknown size"
			       : "another size", n);
	if (!(t = tctx_get(*e ? 0 : n)) || !(dc = dctx_of(t)))
		return ts__err(TS_ENOMEM, "lossless: out of memory for the zstd context");
	if (!*e)
		*e = t->buf;
	got = ZSTD_decompressDCtx(dc, *e, n, src + frame_at, c);
	if (ZSTD_isError(got) || got != n)
		return ts__err(TS_ECORRUPT, "lossless: the exponent frame does not decode (%s)",
			       ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
	return 0;
}

int ts__lossless_decode(const void *vsrc, size_t size, ts_dtype stored, uint64_t rows,
			uint64_t cols, ts_dtype out, void *dst, uint64_t dst_stride)
{
	const uint8_t *src = vsrc;
	size_t es = ts_dtype_size(stored), n = (size_t)(rows * cols);
	uint8_t *e = NULL;
	int rc;

	if (out != stored && !(ts__lossless_splits(stored) && ts__lossless_splits(out)))
		return ts__err(TS_EDTYPE, "lossless: cannot decode %s data as %s",
			       ts_dtype_name(stored), ts_dtype_name(out));
	if (size < 1)
		return ts__err(TS_ECORRUPT, "lossless: empty payload");
	if (src[0] == TS_LOSSLESS_STORED) {
		ts_codec_config raw = ts_codec_config_default(TS_CODEC_RAW);
		if (size != 1 + n * es)
			return ts__err(TS_ECORRUPT, "lossless: stored payload of %zu bytes, %zu "
				       "expected for %zu elements", size, 1 + n * es, n);
		raw.raw_dtype = stored;
		raw.bits_per_value = (int)(8 * es);
		return ts_codec_decode(&raw, 1.0f, src + 1, size - 1, rows, cols, out, dst,
				       dst_stride);
	}
	if (src[0] != TS_LOSSLESS_PLANES || !ts__lossless_splits(stored))
		return ts__err(TS_ECORRUPT, "lossless: unknown payload mode %u for %s data", src[0],
			       ts_dtype_name(stored));
	rc = frame_decode(src, size, es, n, &e);
	if (rc)
		return rc;
	join_rows(e, src + TS_LOSSLESS_PLANES_HDR, stored, rows, cols, out, dst, dst_stride);
	return 0;
}

int ts__lossless_unpack(size_t *written, const void *vsrc, size_t size, ts_dtype stored,
			uint64_t n, void *vdst, size_t cap)
{
	const uint8_t *src = vsrc;
	uint8_t *dst = vdst;
	size_t es = ts_dtype_size(stored), need;
	int rc;

	if (size < 1)
		return ts__err(TS_ECORRUPT, "lossless: empty payload");
	if (src[0] == TS_LOSSLESS_STORED) {
		if (size != 1 + n * es)
			return ts__err(TS_ECORRUPT, "lossless: stored payload of %zu bytes, %zu "
				       "expected for %zu elements", size, (size_t)(1 + n * es),
				       (size_t)n);
		need = size;
	} else if (src[0] == TS_LOSSLESS_PLANES && ts__lossless_splits(stored)) {
		need = TS_LOSSLESS_PLANES_HDR + (size_t)n * es;
	} else {
		return ts__err(TS_ECORRUPT, "lossless: unknown payload mode %u for %s data", src[0],
			       ts_dtype_name(stored));
	}
	if (need > cap)
		return ts__err(TS_ESHORTBUF, "lossless: %zu bytes unpacked, room for %zu", need, cap);
	if (src[0] == TS_LOSSLESS_STORED) {
		memcpy(dst, src, size);
	} else {
		size_t sm = TS_LOSSLESS_PLANES_HDR + (size_t)n * (es - 1);
		uint8_t *e = dst + sm;
		rc = frame_decode(src, size, es, (size_t)n, &e);
		if (rc)
			return rc;
		memcpy(dst, src, sm);
		ts__put_le32(dst + 1, (uint32_t)n);
	}
	*written = need;
	return 0;
}
