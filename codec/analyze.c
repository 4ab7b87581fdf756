/*
 * The analyzer (ts_analyze): pick the configuration with the fewest encoded
 * bytes whose relative RMS error on this very tensor is within the caller's bound, measured by
 * encoding and decoding each candidate.
 *
 * Method. One distribution pass gives amax and the non-finite count (non-finite tensors go
 * lossless). Candidates — nvfp4 (the caller's recipe first, then the other), mxfp4, int8 symmetric and asymmetric at block
 * sizes 16..4096, fp8, raw BF16/F16 for an F32 source — are sorted by ts_codec_encoded_size()
 * and tried cheapest first; the first that meets the bound wins, raw in the source dtype is the
 * fallback. A tensor of more than SAMPLE_MIN (512K) elements is first measured on a deterministic sample
 * of whole, evenly spaced rows encoded with the WHOLE tensor's amax (blocks never straddle rows,
 * so those rows encode to exactly the bytes they get in the full encoding); a candidate that
 * passes the sample (within a small margin) is then verified on the whole tensor before it wins.
 * Measuring works piece by piece (a few rows, or a segment of a long row cut at a multiple of
 * every block size), so scratch memory is bounded whatever the tensor's size.
 *
 * Invariants
 *   1. The chosen configuration's relative RMS error, measured on the whole tensor, is at most
 *      the bound (raw in the source dtype is exact).
 *   2. A bound of 0 admits only exact raw narrowings (F32 -> BF16/F16 where every value
 *      survives), else raw in the source dtype.
 *   3. Results depend only on the tensor's values and the bound (the sample is deterministic).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define PIECE (64u * 1024u)       /* elements per measured piece; a multiple of 4096 */
#define SAMPLE_MIN (512u * 1024u) /* tensors above this many elements are sampled first */
#define SAMPLE_ELEMS (256u * 1024u) /* elements in the sample (whole rows) */
#define SAMPLE_MARGIN 1.05        /* a sample within bound * margin is verified on the whole */
#define MAX_CANDIDATES 40

typedef struct candidate {
	ts_codec_config cfg;
	size_t bytes;
	int order; /* tie-break among equal sizes: lower is preferred */
} candidate;

typedef struct measure_ctx {
	const unsigned char *src;
	ts_dtype dtype;
	size_t esize;
	uint64_t cols;
	float amax;
	float *dec;       /* PIECE floats */
	uint8_t *enc;     /* enc_cap bytes */
	size_t enc_cap;
} measure_ctx;

static int cmp_candidate(const void *a, const void *b)
{
	const candidate *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? -1 : 1;
	return x->order - y->order;
}

static ts_codec_config raw_config(ts_dtype dtype, double bound)
{
	ts_codec_config c = ts_codec_config_default(TS_CODEC_RAW);
	c.raw_dtype = dtype;
	c.bits_per_value = (int)(ts_dtype_size(dtype) * 8);
	c.block_size = 1;
	c.max_error_pct = bound;
	return c;
}

/* Encode and decode one piece of @p n rows x @p w columns starting at element @p first (row
 * stride ctx->cols) and add its error to @p acc. */
static int measure_piece(measure_ctx *m, const ts_codec_config *cfg, uint64_t first, uint64_t n,
			 uint64_t w, ts_stats_acc *acc)
{
	const unsigned char *src = m->src + first * m->esize;
	uint64_t count = n * w;
	int rc;

	size_t need = ts_codec_encoded_size(cfg, n, w);
	if (need == 0)
		return ts__err(TS_EINTERNAL, "analyze: %s has no encoded size for %llu x %llu",
			       ts_codec_name(cfg->codec), (unsigned long long)n,
			       (unsigned long long)w);
	if (need > m->enc_cap) {
		uint8_t *p = realloc(m->enc, need);
		if (!p)
			return ts__err(TS_ENOMEM, "analyze: %zu bytes of scratch", need);
		m->enc = p;
		m->enc_cap = need;
	}
	/* raw narrowings (F32 -> BF16/F16) go through the raw codec's RNE conversion too */
	rc = ts_codec_encode(cfg, m->amax, src, m->dtype, m->cols, n, w, m->enc, need);
	if (rc)
		return ts__err_wrap(rc, "analyze: encoding as %s", ts_codec_name(cfg->codec));
	rc = ts_codec_decode(cfg, ts_codec_tensor_scale(cfg, m->amax), m->enc, need, n, w, TS_F32,
			     m->dec, w);
	if (rc)
		return ts__err_wrap(rc, "analyze: decoding %s", ts_codec_name(cfg->codec));
	/* either whole rows or a segment of one row: contiguous in src either way */
	return ts_stats_acc_add_error(acc, src, m->dtype, m->dec, count);
}

/* Measure rows [r0, r1) piece by piece. */
static int measure_rows(measure_ctx *m, const ts_codec_config *cfg, uint64_t r0, uint64_t r1,
			ts_stats_acc *acc)
{
	int rc = 0;
	if (m->cols <= PIECE) {
		uint64_t g = PIECE / m->cols;
		for (uint64_t r = r0; r < r1 && !rc; r += g) {
			uint64_t n = r1 - r < g ? r1 - r : g;
			rc = measure_piece(m, cfg, r * m->cols, n, m->cols, acc);
		}
		return rc;
	}
	for (uint64_t r = r0; r < r1 && !rc; r++) {
		for (uint64_t c = 0; c < m->cols && !rc; c += PIECE) {
			uint64_t w = m->cols - c < PIECE ? m->cols - c : PIECE;
			rc = measure_piece(m, cfg, r * m->cols + c, 1, w, acc);
		}
	}
	return rc;
}

/* The relative RMS error of @p cfg on the sample (nsample evenly spaced rows) or, when nsample is
 * 0, on the whole tensor. */
static int measure(measure_ctx *m, const ts_codec_config *cfg, uint64_t rows, uint64_t nsample,
		   ts_stats_acc *acc)
{
	int rc = 0;
	ts_stats_acc_init(acc);
	if (nsample == 0)
		return measure_rows(m, cfg, 0, rows, acc);
	for (uint64_t i = 0; i < nsample && !rc; i++) {
		uint64_t r = (uint64_t)(((double)i + 0.5) * (double)rows / (double)nsample);
		if (r >= rows)
			r = rows - 1;
		rc = measure_rows(m, cfg, r, r + 1, acc);
	}
	return rc;
}

static double rel_rms(const ts_stats_acc *acc)
{
	ts_compression_stats st;
	ts_stats_acc_finish_error(&st, acc, 0, 0, 0);
	return st.rel_rms_pct;
}

static uint64_t blocks_of(const ts_codec_config *cfg, uint64_t rows, uint64_t cols)
{
	uint64_t bs = cfg->block_size > 0 ? (uint64_t)cfg->block_size : 1;
	return rows * ((cols + bs - 1) / bs);
}

static int add_candidate(candidate *c, int *n, ts_codec_config cfg, uint64_t rows, uint64_t cols,
			 size_t raw_bytes)
{
	size_t bytes = ts_codec_encoded_size(&cfg, rows, cols);
	if (bytes == 0 || bytes >= raw_bytes || *n >= MAX_CANDIDATES)
		return 0;
	c[*n].cfg = cfg;
	c[*n].bytes = bytes;
	c[*n].order = *n;
	(*n)++;
	return 1;
}

static int build_candidates(candidate *c, const ts_codec_config *in, ts_dtype dtype,
			    uint64_t rows, uint64_t cols, size_t raw_bytes)
{
	int n = 0;
	double bound = in->max_error_pct;
	ts_codec_config cfg;

	if (bound > 0) {
		/* both recipes, the caller's first: equal sizes are tried in insertion order */
		ts_recipe pref = in->recipe == TS_RECIPE_BEST ? TS_RECIPE_BEST : TS_RECIPE_NVIDIA;
		cfg = ts_codec_config_default(TS_CODEC_NVFP4);
		cfg.recipe = pref;
		add_candidate(c, &n, cfg, rows, cols, raw_bytes);
		cfg.recipe = pref == TS_RECIPE_BEST ? TS_RECIPE_NVIDIA : TS_RECIPE_BEST;
		add_candidate(c, &n, cfg, rows, cols, raw_bytes);
		add_candidate(c, &n, ts_codec_config_default(TS_CODEC_MXFP4), rows, cols,
			      raw_bytes);
		for (int sym = 1; sym >= 0; sym--) {
			/* blocks wider than the row only add padding: stop at the first >= cols */
			for (int bs = 16; bs <= 4096; bs *= 2) {
				cfg = ts_codec_config_default(TS_CODEC_INT8);
				cfg.block_size = bs;
				cfg.symmetric = sym;
				add_candidate(c, &n, cfg, rows, cols, raw_bytes);
				if ((uint64_t)bs >= cols)
					break;
			}
		}
		add_candidate(c, &n, ts_codec_config_default(TS_CODEC_FP8), rows, cols, raw_bytes);
	}
	if (dtype == TS_F32) {
		add_candidate(c, &n, raw_config(TS_BF16, bound), rows, cols, raw_bytes);
		add_candidate(c, &n, raw_config(TS_F16, bound), rows, cols, raw_bytes);
	}
	for (int i = 0; i < n; i++)
		c[i].cfg.max_error_pct = bound;
	qsort(c, (size_t)n, sizeof(*c), cmp_candidate);
	return n;
}

TS_API int ts_analyze(ts_codec_config *out, ts_compression_stats *stats,
		      const ts_codec_config *cfg_in, const void *src, ts_dtype src_dtype,
		      uint64_t rows, uint64_t cols)
{
	candidate cand[MAX_CANDIDATES];
	measure_ctx m = {0};
	ts_stats_acc acc;
	ts_distribution_stats dist;
	ts_codec_config chosen;
	size_t esize = ts_dtype_size(src_dtype);
	int rc = 0, found = 0;

	if (!out || !cfg_in)
		return ts__err(TS_EINVAL, "ts_analyze: NULL configuration");
	if (esize == 0)
		return ts__err(TS_EINVAL, "ts_analyze: unknown source dtype %d", (int)src_dtype);
	double bound = cfg_in->max_error_pct;
	if (!(bound >= 0))
		return ts__err(TS_EINVAL, "ts_analyze: max_error_pct %g is not a bound >= 0", bound);
	if (rows && cols && (rows > UINT64_MAX / cols || rows * cols > SIZE_MAX / esize))
		return ts__err(TS_EINVAL, "ts_analyze: %llu x %llu elements overflow",
			       (unsigned long long)rows, (unsigned long long)cols);
	uint64_t total = rows * cols;
	if (!src && total)
		return ts__err(TS_EINVAL, "ts_analyze: NULL data");

	size_t raw_bytes = (size_t)total * esize;
	chosen = raw_config(src_dtype, bound);
	ts_stats_acc_init(&acc); /* raw in the source dtype: exact */

	int lossy_ok = total > 0 &&
		       (src_dtype == TS_F32 || src_dtype == TS_BF16 || src_dtype == TS_F16);
	if (lossy_ok) {
		ts_stats_acc dacc;
		ts_stats_acc_init(&dacc);
		rc = ts_stats_acc_add_dist(&dacc, src, src_dtype, total);
		if (rc)
			return rc;
		ts_stats_acc_finish_dist(&dist, &dacc);
		lossy_ok = dist.nonfinite == 0;
	}
	if (lossy_ok) {
		int nc = build_candidates(cand, cfg_in, src_dtype, rows, cols, raw_bytes);
		uint64_t nsample = 0;
		if (total > SAMPLE_MIN && rows > 1) {
			nsample = SAMPLE_ELEMS / cols;
			if (nsample < 1)
				nsample = 1;
			if (nsample * 2 > rows)
				nsample = 0; /* the sample would be most of the tensor */
		}
		m.src = src;
		m.dtype = src_dtype;
		m.esize = esize;
		m.cols = cols;
		m.amax = (float)fmax(fabs(dist.min_val), fabs(dist.max_val));
		m.dec = malloc(PIECE * sizeof(float));
		if (!m.dec) {
			rc = ts__err(TS_ENOMEM, "ts_analyze: %zu bytes of scratch",
				     PIECE * sizeof(float));
			goto out;
		}
		for (int i = 0; i < nc && !found; i++) {
			const ts_codec_config *c = &cand[i].cfg;
			if (nsample) {
				rc = measure(&m, c, rows, nsample, &acc);
				if (rc)
					goto out;
				if (rel_rms(&acc) > bound * SAMPLE_MARGIN)
					continue;
			}
			rc = measure(&m, c, rows, 0, &acc);
			if (rc)
				goto out;
			if (rel_rms(&acc) <= bound) {
				chosen = *c;
				found = 1;
			}
		}
		if (!found)
			ts_stats_acc_init(&acc);
	}
	*out = chosen;
	if (stats)
		ts_stats_acc_finish_error(stats, &acc, raw_bytes,
					  ts_codec_encoded_size(&chosen, rows, cols),
					  blocks_of(&chosen, rows, cols));
out:
	free(m.dec);
	free(m.enc);
	return rc;
}
