/*
 * The streaming encoder (ts_stream_*): a rows x cols tensor arrives in
 * row-major chunks of any size and leaves, encoded, as batches of whole rows handed to a sink —
 * the same bytes a one-shot ts_codec_encode() of the whole tensor gives, in bounded memory.
 *
 * Method. Blocks never straddle rows and, given the tensor's amax, a block's bytes depend only on
 * its own values; so any run of whole blocks of a row, encoded as a 1 x m matrix, gives exactly
 * the bytes those blocks have in the full encoding, and a row's padded last block encodes the
 * same alone. A chunk is therefore encoded in place: whole rows at once where it holds them,
 * else runs of whole blocks, and only a block cut by a chunk boundary is copied (into `pend`).
 * The code and scale bytes land in a batch of output rows, delivered when full and at the end.
 * Each encoded piece is decoded again at once to accumulate the error statistics, and the input
 * feeds the distribution statistics, in the same pass.
 *
 * Invariants
 *   1. Concatenating the code bytes of every delivery, then the scale bytes of every delivery,
 *      gives ts_codec_encode()'s output for the whole tensor, byte for byte (tests/test_stream.c).
 *   2. Memory is fixed at ts_stream_new(): one partial block of input, a SEG-element encode and
 *      decode scratch, and a batch of encoded rows of max(1, SEG / cols) rows — never a function
 *      of the tensor's row count.
 *   3. After any failure the stream is poisoned: every later call returns the same code.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec/stream.h"
#include "common/error.h"

#define SEG (64u * 1024u) /* elements per encode call; a multiple of every block size */

struct ts_stream {
	ts_codec_config cfg;
	float amax;
	float tensor_scale;
	ts_dtype dtype;
	size_t esize;
	uint64_t rows, cols, total;
	ts_stream_sink sink;
	void *ud;
	int src_float; /* F32, BF16 or F16: statistics are kept */
	int failed;   /* sticky error code, 0 while healthy */
	int finished;

	uint64_t unit;     /* elements per block (1 for fp8 and raw) */
	size_t cpb, spb;   /* code and scale bytes per block */
	size_t code_row, scale_row;

	uint64_t batch_cap, batch_rows, batch_first;
	uint8_t *codes, *scales; /* batch_cap rows of each plane */

	uint64_t row, col;      /* position of the next element to encode */
	unsigned char *pend;    /* a block cut by a chunk boundary */
	uint64_t npend;         /* elements in pend */

	uint8_t *tmp;
	size_t tmp_cap;
	float *dec;
	size_t footprint;
	ts_stats_acc acc;
};

static int fail(ts_stream *s, int rc)
{
	s->failed = rc;
	return rc;
}

static uint64_t find_nonfinite(const unsigned char *p, ts_dtype dtype, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint32_t u;
		uint16_t h;
		if (dtype == TS_F32) {
			memcpy(&u, p + i * 4, 4);
			if ((u & 0x7f800000u) == 0x7f800000u)
				return i;
		} else {
			memcpy(&h, p + i * 2, 2);
			if (dtype == TS_BF16 ? (h & 0x7f80u) == 0x7f80u : (h & 0x7c00u) == 0x7c00u)
				return i;
		}
	}
	return n;
}

static int deliver(ts_stream *s)
{
	if (s->batch_rows == 0)
		return 0;
	int rc = s->sink(s->ud, s->codes, s->batch_rows * s->code_row, s->scales,
			 s->batch_rows * s->scale_row, s->batch_first, s->batch_rows);
	if (rc) {
		rc = ts__err(rc < 0 ? rc : TS_ECANCELED,
			     "stream: the sink returned %d for rows %llu..%llu", rc,
			     (unsigned long long)s->batch_first,
			     (unsigned long long)(s->batch_first + s->batch_rows - 1));
		return fail(s, rc);
	}
	s->batch_first += s->batch_rows;
	s->batch_rows = 0;
	return 0;
}

/*
 * Encode @p n rows x @p w columns from @p src (row stride cols), the first at the current
 * position, into the batch; advance the position; account statistics. Either n whole rows
 * (col == 0, w == cols) or one run of whole blocks of the current row (or its padded tail).
 */
static int encode_piece(ts_stream *s, const unsigned char *src, uint64_t n, uint64_t w)
{
	size_t need = ts_codec_encoded_size(&s->cfg, n, w);
	uint64_t count = n * w;
	int rc;

	if (need == 0 || need > s->tmp_cap)
		return fail(s, ts__err(TS_EINTERNAL, "stream: %zu encoded bytes for %llu x %llu",
				       need, (unsigned long long)n, (unsigned long long)w));
	rc = ts_codec_encode(&s->cfg, s->amax, src, s->dtype, s->cols, n, w, s->tmp, need);
	if (rc == TS_ENONFINITE) {
		uint64_t i = find_nonfinite(src, s->dtype, count);
		return fail(s, ts__err(TS_ENONFINITE,
				       "stream: non-finite value at row %llu column %llu cannot be "
				       "encoded as %s",
				       (unsigned long long)(s->row + i / w),
				       (unsigned long long)(s->col + i % w),
				       ts_codec_name(s->cfg.codec)));
	}
	if (rc)
		return fail(s, ts__err_wrap(rc, "stream: row %llu", (unsigned long long)s->row));

	uint64_t nb = (w + s->unit - 1) / s->unit;
	size_t cbytes = n * nb * s->cpb, sbytes = n * nb * s->spb;
	if (cbytes + sbytes != need)
		return fail(s, ts__err(TS_EINTERNAL, "stream: %s layout is not codes then scales",
				       ts_codec_name(s->cfg.codec)));
	uint64_t b0 = s->col / s->unit;
	memcpy(s->codes + s->batch_rows * s->code_row + b0 * s->cpb, s->tmp, cbytes);
	if (sbytes)
		memcpy(s->scales + s->batch_rows * s->scale_row + b0 * s->spb, s->tmp + cbytes,
		       sbytes);

	/* statistics of float sources; raw in the source dtype is exact by construction */
	rc = s->src_float ? ts_stats_acc_add_dist(&s->acc, src, s->dtype, count) : 0;
	if (!rc && !(s->cfg.codec == TS_CODEC_RAW && s->cfg.raw_dtype == s->dtype)) {
		rc = ts_codec_decode(&s->cfg, s->tensor_scale, s->tmp, need, n, w, TS_F32, s->dec,
				     w);
		if (!rc)
			rc = ts_stats_acc_add_error(&s->acc, src, s->dtype, s->dec, count);
	}
	if (rc)
		return fail(s, rc);

	if (n > 1 || s->col + w == s->cols) {
		s->batch_rows += n;
		s->row += n;
		s->col = 0;
		if (s->batch_rows == s->batch_cap)
			return deliver(s);
	} else {
		s->col += w;
	}
	return 0;
}

TS_API int ts_stream_new(ts_stream **out, const ts_codec_config *cfg, float amax,
			 ts_dtype src_dtype, uint64_t rows, uint64_t cols, ts_stream_sink sink,
			 void *ud)
{
	ts_stream *s;
	int rc;

	if (!out || !cfg || !sink)
		return ts__err(TS_EINVAL, "ts_stream_new: NULL argument");
	*out = NULL;
	rc = ts_codec_config_check(cfg);
	if (rc)
		return rc;
	if (cfg->codec == TS_CODEC_LOSSLESS) /* a payload of its own length, not a row stream */
		return ts__err(TS_ENOTSUP, "ts_stream_new: lossless has no streaming form (write it "
			       "to a store with ts_writer_begin(), or encode pages with "
			       "ts_codec_encode_len())");
	int src_float = src_dtype == TS_F32 || src_dtype == TS_BF16 || src_dtype == TS_F16;
	int raw_float = cfg->raw_dtype == TS_F32 || cfg->raw_dtype == TS_BF16 ||
			cfg->raw_dtype == TS_F16;
	if (cfg->codec == TS_CODEC_RAW ? src_dtype != cfg->raw_dtype && !(src_float && raw_float)
				       : !src_float)
		return ts__err(TS_EDTYPE, "ts_stream_new: %s cannot encode a %s source",
			       ts_codec_name(cfg->codec), ts_dtype_name(src_dtype));
	if ((cfg->codec == TS_CODEC_NVFP4 || cfg->codec == TS_CODEC_FP8) &&
	    !(isfinite(amax) && amax >= 0))
		return ts__err(TS_EINVAL, "ts_stream_new: %s needs the tensor's amax (got %g)",
			       ts_codec_name(cfg->codec), (double)amax);
	if (rows == 0 || cols == 0 || rows > UINT64_MAX / cols)
		return ts__err(TS_EINVAL, "ts_stream_new: bad shape %llu x %llu",
			       (unsigned long long)rows, (unsigned long long)cols);

	s = calloc(1, sizeof(*s));
	if (!s)
		return ts__err(TS_ENOMEM, "ts_stream_new: out of memory");
	s->cfg = *cfg;
	s->amax = amax;
	s->tensor_scale = ts_codec_tensor_scale(cfg, amax);
	s->dtype = src_dtype;
	s->src_float = src_float;
	s->esize = ts_dtype_size(src_dtype);
	s->rows = rows;
	s->cols = cols;
	s->total = rows * cols;
	s->sink = sink;
	s->ud = ud;
	ts_stats_acc_init(&s->acc);

	switch (cfg->codec) {
	case TS_CODEC_NVFP4:
	case TS_CODEC_MXFP4:
		s->unit = (uint64_t)cfg->block_size;
		s->cpb = (size_t)cfg->block_size / 2;
		break;
	case TS_CODEC_INT8:
		s->unit = (uint64_t)cfg->block_size;
		s->cpb = (size_t)cfg->block_size;
		break;
	case TS_CODEC_FP8:
		s->unit = 1;
		s->cpb = 1;
		break;
	default:
		s->unit = 1;
		s->cpb = ts_dtype_size(cfg->raw_dtype);
		break;
	}
	size_t one = ts_codec_encoded_size(cfg, 1, s->unit);
	if (one < s->cpb) {
		rc = ts__err(TS_EINTERNAL, "ts_stream_new: %s block of %zu bytes",
			     ts_codec_name(cfg->codec), one);
		goto fail;
	}
	s->spb = one - s->cpb;
	uint64_t nb = (cols + s->unit - 1) / s->unit;
	s->code_row = nb * s->cpb;
	s->scale_row = nb * s->spb;
	if (ts_codec_encoded_size(cfg, 1, cols) != s->code_row + s->scale_row) {
		rc = ts__err(TS_EINTERNAL, "ts_stream_new: %s rows are not whole blocks of codes "
					   "then scales",
			     ts_codec_name(cfg->codec));
		goto fail;
	}
	s->batch_cap = cols >= SEG ? 1 : SEG / cols;
	if (s->batch_cap > rows)
		s->batch_cap = rows;
	s->tmp_cap = ts_codec_encoded_size(cfg, 1, cols < SEG ? cols : SEG);
	size_t rows_bytes = ts_codec_encoded_size(cfg, s->batch_cap, cols);
	if (cols <= SEG && rows_bytes > s->tmp_cap)
		s->tmp_cap = rows_bytes;
	s->codes = malloc(s->batch_cap * s->code_row);
	s->scales = malloc(s->batch_cap * s->scale_row + 1);
	s->pend = malloc(s->unit * s->esize);
	s->tmp = malloc(s->tmp_cap);
	s->dec = malloc((cols < SEG ? s->batch_cap * cols : SEG) * sizeof(float));
	if (!s->codes || !s->scales || !s->pend || !s->tmp || !s->dec) {
		rc = ts__err(TS_ENOMEM, "ts_stream_new: out of memory for a %llu-column stream",
			     (unsigned long long)cols);
		goto fail;
	}
	s->footprint = sizeof(*s) + s->batch_cap * (s->code_row + s->scale_row) + 1 +
		       s->unit * s->esize + s->tmp_cap +
		       (cols < SEG ? s->batch_cap * cols : SEG) * sizeof(float);
	*out = s;
	return 0;
fail:
	ts_stream_free(s);
	return rc;
}

TS_API int ts_stream_process(ts_stream *s, const void *data, size_t bytes)
{
	const unsigned char *p = data;
	int rc;

	if (!s)
		return ts__err(TS_EINVAL, "ts_stream_process: NULL stream");
	if (s->failed)
		return ts__err(s->failed, "ts_stream_process: the stream failed earlier (%s)",
			       ts_strerror(s->failed));
	if (s->finished)
		return ts__err(TS_EINVAL, "ts_stream_process: the stream is finished");
	if (bytes % s->esize)
		return ts__err(TS_EINVAL, "ts_stream_process: %zu bytes is not a whole number of "
					  "%s elements",
			       bytes, ts_dtype_name(s->dtype));
	if (!data && bytes)
		return ts__err(TS_EINVAL, "ts_stream_process: NULL data");
	uint64_t n = bytes / s->esize;
	uint64_t fed = s->row * s->cols + s->col + s->npend;
	if (n > s->total - fed)
		return ts__err(TS_ERANGE, "ts_stream_process: %llu elements past the end of a "
					  "%llu x %llu tensor",
			       (unsigned long long)(n - (s->total - fed)),
			       (unsigned long long)s->rows, (unsigned long long)s->cols);

	while (n > 0) {
		uint64_t left = s->cols - s->col;          /* elements left in this row */
		uint64_t blk = left < s->unit ? left : s->unit; /* the current block's length */

		if (s->npend == 0 && s->col == 0 && n >= s->cols && s->cols < SEG) {
			/* whole rows, straight from the caller's buffer */
			uint64_t k = n / s->cols, room = s->batch_cap - s->batch_rows;
			k = k < room ? k : room;
			rc = encode_piece(s, p, k, s->cols);
			if (rc)
				return rc;
			p += k * s->cols * s->esize;
			n -= k * s->cols;
		} else if (s->npend == 0 && n >= blk) {
			/* a run of whole blocks of this row (or its padded tail) */
			uint64_t m = n < left ? n : left;
			if (m > SEG)
				m = SEG;
			if (m < left)
				m -= m % s->unit; /* >= blk = unit here */
			rc = encode_piece(s, p, 1, m);
			if (rc)
				return rc;
			p += m * s->esize;
			n -= m;
		} else {
			/* a block cut by the chunk boundary: gather it */
			uint64_t take = blk - s->npend;
			take = take < n ? take : n;
			memcpy(s->pend + s->npend * s->esize, p, take * s->esize);
			s->npend += take;
			p += take * s->esize;
			n -= take;
			if (s->npend == blk) {
				s->npend = 0;
				rc = encode_piece(s, s->pend, 1, blk);
				if (rc)
					return rc;
			}
		}
	}
	return 0;
}

TS_API int ts_stream_finish(ts_compression_stats *stats, ts_stream *s)
{
	int rc;

	if (!s)
		return ts__err(TS_EINVAL, "ts_stream_finish: NULL stream");
	if (s->failed)
		return ts__err(s->failed, "ts_stream_finish: the stream failed earlier (%s)",
			       ts_strerror(s->failed));
	if (s->finished)
		return ts__err(TS_EINVAL, "ts_stream_finish: the stream is already finished");
	uint64_t fed = s->row * s->cols + s->col + s->npend;
	if (fed != s->total)
		return fail(s, ts__err(TS_EINVAL,
				       "ts_stream_finish: %llu of %llu elements were fed",
				       (unsigned long long)fed, (unsigned long long)s->total));
	rc = deliver(s);
	if (rc)
		return rc;
	s->finished = 1;

	ts_distribution_stats d;
	ts_stats_acc_finish_dist(&d, &s->acc);
	double seen = fmax(fabs(d.min_val), fabs(d.max_val));
	if ((s->cfg.codec == TS_CODEC_NVFP4 || s->cfg.codec == TS_CODEC_FP8) &&
	    seen > (double)s->amax)
		return fail(s, ts__err(TS_EINVAL,
				       "ts_stream_finish: amax %g was given but the data reaches %g",
				       (double)s->amax, seen));
	if (stats)
		ts_stats_acc_finish_error(stats, &s->acc, s->total * s->esize,
					  ts_codec_encoded_size(&s->cfg, s->rows, s->cols),
					  s->rows * ((s->cols + s->unit - 1) / s->unit));
	return 0;
}

TS_API void ts_stream_dist(ts_distribution_stats *out, const ts_stream *s)
{
	ts_stats_acc_finish_dist(out, &s->acc);
}

TS_API void ts_stream_free(ts_stream *s)
{
	if (!s)
		return;
	free(s->codes);
	free(s->scales);
	free(s->pend);
	free(s->tmp);
	free(s->dec);
	free(s);
}

size_t ts__stream_footprint(const ts_stream *s)
{
	return s->footprint;
}
