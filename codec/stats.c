/*
 * Statistics: ts_compression_stats and ts_distribution_stats, accumulated in one streaming
 * pass, chunk by chunk, into a caller-owned ts_stats_acc (no allocation).
 *
 * Method. Each chunk is cut into sub-blocks of SUB elements, widened to float in a stack buffer,
 * and each sub-block goes through one pass of the kernel table's sums (codec/kernels.h).
 * Distribution: a sub-block's finite values give an exact count, their sums of deviations from
 * a shift k (the block's first value) and of their squares, in double; the block's mean is
 * k + c / n and its sum of squared deviations q - c^2 / n (the corrected two-pass formula with k
 * for the first pass's mean: since k is one of the values, n (k - mean)^2 <= n M2, so the
 * subtraction loses at most log2(n) bits), merged into the running figures with Chan's pairwise
 * update; this is as stable as Welford's recurrence without a division per element. Error: a
 * sub-block's sums of |e|, e^2 and x^2 are formed in double and added to the running totals with
 * Neumaier's compensated summation.
 *
 * Invariants
 *   1. A ts_stats_acc holds distribution and error figures in disjoint slots: one accumulator can
 *      take both kinds of chunks in the same pass.
 *   2. Results depend on how the data is chunked only through rounding: every element goes
 *      through the same arithmetic, only the grouping of additions changes.
 *   3. Non-finite elements never enter the sums: the distribution counts them apart; the error
 *      counts an element whose original is non-finite as exact if the approximation is the same
 *      non-finite value, and as an infinite error otherwise.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "codec/codecs.h"
#include "codec/kernels.h"
#include "codec/stats.h"
#include "common/error.h"

#define SUB 1024

/* Slots of ts_stats_acc.s[] and .n[]. */
enum {
	D_MEAN = 0,   /* running mean of finite values */
	D_M2,         /* running sum of squared deviations from the mean */
	D_MIN,        /* min finite value (+Inf when none) */
	D_MAX,        /* max finite value (-Inf when none) */
	D_MAXABS,     /* max finite |x| (0 when none) */
	D_MINNZ,      /* min nonzero finite |x| (+Inf when none) */
	E_ABS, E_ABS_C, /* sum |x - x^| and its compensation */
	E_E2, E_E2_C,   /* sum (x - x^)^2 and its compensation */
	E_X2, E_X2_C,   /* sum x^2 and its compensation */
	E_MAX,          /* max |x - x^| */
	S_SLOTS
};
enum { N_FINITE = 0, N_NONFINITE, N_ZEROS, N_ERR };

_Static_assert(S_SLOTS <= 16, "ts_stats_acc.s is too small");

/* Neumaier: add v to the compensated sum (s[i], s[i+1]). */
static void csum_add(double *s, int i, double v)
{
	double t = s[i] + v;
	if (fabs(s[i]) >= fabs(v))
		s[i + 1] += (s[i] - t) + v;
	else
		s[i + 1] += (v - t) + s[i];
	s[i] = t;
}

static double csum_get(const double *s, int i)
{
	return s[i] + s[i + 1];
}

/* Elements i0 .. i0+n-1 (n <= SUB) of src (F32, BF16 or F16) as floats, exactly: src itself when
 * it is aligned F32, else widened into buf with the kernel table's conversion. */
static const float *load(float *buf, const void *src, ts_dtype dtype, uint64_t i0, size_t n)
{
	const unsigned char *p = (const unsigned char *)src + i0 * ts_dtype_size(dtype);
	ts__convert_fn f;

	if (dtype == TS_F32) {
		if (((uintptr_t)p & 3) == 0)
			return (const float *)(const void *)p;
		memcpy(buf, p, n * 4);
		return buf;
	}
	f = ts__kernels_get()->convert[dtype][TS_F32];
	if (!f)
		f = ts__kernels_scalar()->convert[dtype][TS_F32];
	if ((uintptr_t)p & 1) {
		/* the kernels read uint16_t: realign an odd source */
		uint16_t tmp[SUB];
		memcpy(tmp, p, n * 2);
		f(tmp, n, buf);
	} else {
		f(p, n, buf);
	}
	return buf;
}

/*
 * The sub-block sums below are the kernel table's scalar reference (codec/kernels.h gives their
 * contract): they run in LANES independent lanes, so that a vector kernel (codec/stats_avx2.c)
 * computes the same additions in the same order without reassociating anything (no
 * -ffast-math): sums are formed lane by lane, then the lanes are added. Min/max are selections,
 * exact in float.
 */
#define LANES TS_STATS_LANES

void ts__stats_scalar(const float *x, const float *a, size_t n, double k, ts__stats_sums *s)
{
	ts__stats_lanes l;
	size_t i = 0;

	ts__stats_lanes_init(&l);
	for (; i + LANES <= n; i += LANES)
		for (int j = 0; j < LANES; j++) {
			ts__dist_step(&l, j, x[i + j], k);
			if (a)
				ts__error_step(&l, j, x[i + j], a[i + j]);
		}
	for (int j = 0; i < n; i++, j++) {
		ts__dist_step(&l, j, x[i], k);
		if (a)
			ts__error_step(&l, j, x[i], a[i]);
	}
	ts__stats_fold(&l, a != NULL, s);
}

static int check_args(const void *acc, const void *src, ts_dtype dtype, uint64_t count,
		      const char *fn)
{
	if (!acc || (!src && count))
		return ts__err(TS_EINVAL, "%s: NULL accumulator or data", fn);
	if (dtype != TS_F32 && dtype != TS_BF16 && dtype != TS_F16)
		return ts__err(TS_EDTYPE, "%s: dtype %s is not F32, BF16 or F16", fn,
			       ts_dtype_name(dtype));
	return 0;
}

TS_API void ts_stats_acc_init(ts_stats_acc *acc)
{
	memset(acc, 0, sizeof(*acc));
	acc->s[D_MIN] = INFINITY;
	acc->s[D_MAX] = -INFINITY;
	acc->s[D_MINNZ] = INFINITY;
}

/* The block's sums, before the kernel runs: nothing summed, @p acc's running extremes. */
static ts__stats_sums sums_start(const ts_stats_acc *acc)
{
	const double *s = acc->s;
	return (ts__stats_sums){.me = s[E_MAX], .mn = s[D_MIN], .mx = s[D_MAX],
				.amax = s[D_MAXABS], .minnz = s[D_MINNZ]};
}

/* The distribution part of sums @p r of k finite values into @p acc. */
static void dist_take(ts_stats_acc *acc, const ts__stats_sums *r, double shift, size_t k)
{
	double *s = acc->s;

	acc->n[N_ZEROS] += r->zeros;
	s[D_MIN] = r->mn;
	s[D_MAX] = r->mx;
	s[D_MAXABS] = r->amax;
	s[D_MINNZ] = r->minnz;
	if (k == 0)
		return;

	/* the corrected two-pass formula about the shift (see Method) */
	double nb = (double)k, mb = shift + r->c / nb, m2 = r->q - r->c * r->c / nb;
	if (m2 < 0)
		m2 = 0;

	/* Chan's merge of (na, mean, M2) with (k, mb, m2) */
	double na = (double)acc->n[N_FINITE], nt = na + nb;
	double delta = mb - s[D_MEAN];
	s[D_MEAN] += delta * (nb / nt);
	s[D_M2] += m2 + delta * delta * (na * nb / nt);
	acc->n[N_FINITE] += k;
}

/* The distribution figures of one sub-block x[0..n) (n <= SUB) whose sums @p r (from the
 * kernel, shift x[0]) are not finite: its finite values again, gathered into @p buf (SUB
 * floats, which may be x itself). */
static void dist_redo(ts_stats_acc *acc, const ts__kernels *kt, const float *x, float *buf,
		      size_t n)
{
	ts__stats_sums r = sums_start(acc);
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (isfinite(x[i]))
			buf[k++] = x[i];
	acc->n[N_NONFINITE] += n - k;
	if (k)
		kt->stats(buf, NULL, k, buf[0], &r);
	dist_take(acc, &r, k ? buf[0] : 0, k);
}

/* The distribution part of the kernel's sums @p r of sub-block x[0..n) (shift x[0]) into
 * @p acc: taken, or (a non-finite element makes them non-finite) the block redone without its
 * non-finite values, gathered into @p buf (SUB floats, which may be x itself). */
static void dist_part(ts_stats_acc *acc, const ts__kernels *kt, const ts__stats_sums *r,
		      const float *x, float *buf, size_t n)
{
	if (isfinite(r->q + r->c))
		dist_take(acc, r, x[0], n);
	else
		dist_redo(acc, kt, x, buf, n);
}

/* The distribution figures of one sub-block x[0..n) (n <= SUB); @p buf (SUB floats) may be x
 * itself or scratch, and is overwritten when the block holds non-finite values. */
static void dist_block(ts_stats_acc *acc, const ts__kernels *kt, const float *x, float *buf,
		       size_t n)
{
	ts__stats_sums r = sums_start(acc);

	if (n == 0)
		return;
	kt->stats(x, NULL, n, x[0], &r);
	dist_part(acc, kt, &r, x, buf, n);
}

TS_API int ts_stats_acc_add_dist(ts_stats_acc *acc, const void *src, ts_dtype dtype,
				 uint64_t count)
{
	float buf[SUB];
	const ts__kernels *kt = ts__kernels_get();
	int rc = check_args(acc, src, dtype, count, "ts_stats_acc_add_dist");
	if (rc)
		return rc;

	for (uint64_t i0 = 0; i0 < count; i0 += SUB) {
		size_t n = count - i0 < SUB ? (size_t)(count - i0) : SUB;
		dist_block(acc, kt, load(buf, src, dtype, i0, n), buf, n);
	}
	return 0;
}

TS_API void ts_stats_acc_finish_dist(ts_distribution_stats *out, const ts_stats_acc *acc)
{
	const double *s = acc->s;
	uint64_t nf = acc->n[N_FINITE];

	memset(out, 0, sizeof(*out));
	out->count = nf + acc->n[N_NONFINITE];
	out->nonfinite = acc->n[N_NONFINITE];
	if (nf == 0)
		return;
	out->mean = s[D_MEAN];
	out->std = sqrt(s[D_M2] / (double)nf);
	out->min_val = s[D_MIN];
	out->max_val = s[D_MAX];
	out->sparsity = (double)acc->n[N_ZEROS] / (double)nf;
	if (s[D_MAXABS] > 0)
		out->dynamic_range = log2(s[D_MAXABS] / s[D_MINNZ]);
}

/* The error part of sums @p r of n pairs into @p acc: the sum of x^2 from the deviations about
 * shift @p k (codec/kernels.h; since k is one of the x, n k^2 <= n sum x^2, and the sum loses at
 * most log2(n) bits to cancellation). */
static void error_take(ts_stats_acc *acc, const ts__stats_sums *r, size_t n, double k)
{
	double *s = acc->s, sx = r->q + 2 * k * r->c + (double)n * k * k;

	csum_add(s, E_ABS, r->sa);
	csum_add(s, E_E2, r->se);
	csum_add(s, E_X2, sx < 0 ? 0 : sx);
	s[E_MAX] = r->me;
	acc->n[N_ERR] += n;
}

/* The error figures of one sub-block (originals x[0..n), approximations a[0..n)) holding a
 * non-finite value, element by element (invariant 3). */
static void error_redo(ts_stats_acc *acc, const float *x, const float *a, size_t n)
{
	ts__stats_sums r = sums_start(acc);

	for (size_t i = 0; i < n; i++) {
		double xi = x[i], e;
		if (!isfinite(x[i])) {
			int same = isnan(x[i]) ? isnan(a[i]) : (x[i] == a[i]);
			e = same ? 0 : INFINITY;
			xi = 0;
		} else if (!isfinite(a[i])) {
			e = INFINITY;
		} else {
			e = fabs(xi - (double)a[i]);
		}
		r.sa += e;
		r.se += e * e;
		r.q += xi * xi; /* the sum of x^2 itself: shift 0 */
		r.me = e > r.me ? e : r.me;
	}
	error_take(acc, &r, n, 0);
}

/* The error part of the kernel's sums @p r of originals x[0..n), approximations a[0..n) (shift
 * x[0]) into @p acc: taken, or (finite inputs give finite sums, |e|^2 <= 2^258) the block
 * redone element by element. */
static void error_part(ts_stats_acc *acc, const ts__stats_sums *r, const float *x,
		       const float *a, size_t n)
{
	if (isfinite(r->sa + r->se + r->q + r->c))
		error_take(acc, r, n, x[0]);
	else
		error_redo(acc, x, a, n);
}

/* The error figures of one sub-block: originals x[0..n), approximations a[0..n). */
static void error_block(ts_stats_acc *acc, const ts__kernels *kt, const float *x, const float *a,
			size_t n)
{
	ts__stats_sums r = sums_start(acc);

	if (n == 0)
		return;
	kt->stats(x, a, n, x[0], &r);
	error_part(acc, &r, x, a, n);
}

TS_API int ts_stats_acc_add_error(ts_stats_acc *acc, const void *orig, ts_dtype dtype,
				  const float *approx, uint64_t count)
{
	float buf[SUB];
	const ts__kernels *kt = ts__kernels_get();
	int rc = check_args(acc, orig, dtype, count, "ts_stats_acc_add_error");
	if (rc)
		return rc;
	if (!approx && count)
		return ts__err(TS_EINVAL, "ts_stats_acc_add_error: NULL approximation");

	for (uint64_t i0 = 0; i0 < count; i0 += SUB) {
		size_t n = count - i0 < SUB ? (size_t)(count - i0) : SUB;
		error_block(acc, kt, load(buf, orig, dtype, i0, n), approx + i0, n);
	}
	return 0;
}

int ts__stats_acc_add_both(ts_stats_acc *acc, const void *src, ts_dtype dtype,
			   const float *approx, uint64_t count)
{
	float buf[SUB];
	const ts__kernels *kt = ts__kernels_get();
	int rc = check_args(acc, src, dtype, count, "ts__stats_acc_add_both");
	if (rc)
		return rc;

	for (uint64_t i0 = 0; i0 < count; i0 += SUB) {
		size_t n = count - i0 < SUB ? (size_t)(count - i0) : SUB;
		const float *x = load(buf, src, dtype, i0, n);
		ts__stats_sums r = sums_start(acc);
		if (!approx) {
			acc->n[N_ERR] += n;
			dist_block(acc, kt, x, buf, n);
			continue;
		}
		/* one pass for both, each part taken as error_block() and dist_block() take it
		 * (invariant 1: disjoint slots, so neither part's figures depend on the other's) */
		kt->stats(x, approx + i0, n, x[0], &r);
		error_part(acc, &r, x, approx + i0, n);
		dist_part(acc, kt, &r, x, buf, n);
	}
	return 0;
}

TS_API void ts_stats_acc_merge(ts_stats_acc *into, const ts_stats_acc *from)
{
	double *s = into->s;
	const double *f = from->s;

	if (from->n[N_FINITE]) {
		double na = (double)into->n[N_FINITE], nb = (double)from->n[N_FINITE];
		double nt = na + nb, delta = f[D_MEAN] - s[D_MEAN];
		s[D_MEAN] += delta * (nb / nt);
		s[D_M2] += f[D_M2] + delta * delta * (na * nb / nt);
	}
	s[D_MIN] = f[D_MIN] < s[D_MIN] ? f[D_MIN] : s[D_MIN];
	s[D_MAX] = f[D_MAX] > s[D_MAX] ? f[D_MAX] : s[D_MAX];
	s[D_MAXABS] = f[D_MAXABS] > s[D_MAXABS] ? f[D_MAXABS] : s[D_MAXABS];
	s[D_MINNZ] = f[D_MINNZ] < s[D_MINNZ] ? f[D_MINNZ] : s[D_MINNZ];
	for (int i = E_ABS; i <= E_X2; i += 2) {
		csum_add(s, i, f[i]);
		s[i + 1] += f[i + 1];
	}
	s[E_MAX] = f[E_MAX] > s[E_MAX] ? f[E_MAX] : s[E_MAX];
	for (int i = 0; i < 4; i++)
		into->n[i] += from->n[i];
}

TS_API void ts_stats_acc_finish_error(ts_compression_stats *out, const ts_stats_acc *acc,
				      uint64_t original_bytes, uint64_t compressed_bytes,
				      uint64_t blocks)
{
	const double *s = acc->s;
	uint64_t n = acc->n[N_ERR];
	/* an infinite term leaves Inf - Inf = NaN in the compensation: read the sum alone then */
	double e2 = isinf(s[E_E2]) ? INFINITY : csum_get(s, E_E2);
	double x2 = csum_get(s, E_X2);
	double sa = isinf(s[E_ABS]) ? INFINITY : csum_get(s, E_ABS);

	memset(out, 0, sizeof(*out));
	out->original_bytes = original_bytes;
	out->compressed_bytes = compressed_bytes;
	out->compression_ratio =
		compressed_bytes ? (double)original_bytes / (double)compressed_bytes : 0;
	out->blocks_processed = blocks;
	out->mean_error = n ? sa / (double)n : 0;
	out->max_error = s[E_MAX];
	if (e2 == 0) {
		out->rel_rms_pct = 0;
		out->sqnr_db = INFINITY;
	} else if (x2 == 0) {
		out->rel_rms_pct = INFINITY;
		out->sqnr_db = -INFINITY;
	} else {
		out->rel_rms_pct = 100.0 * sqrt(e2 / x2);
		out->sqnr_db = 10.0 * log10(x2 / e2);
	}
}
