/*
 * Statistics: ts_compression_stats and ts_distribution_stats, accumulated in one streaming
 * pass, chunk by chunk, into a caller-owned ts_stats_acc (no allocation).
 *
 * Method. Each chunk is cut into sub-blocks of SUB elements, widened to float in a stack buffer.
 * Distribution: a sub-block's finite values give an exact-count, two-pass (corrected) mean and
 * sum of squared deviations, merged into the running figures with Chan's pairwise update; this
 * is as stable as Welford's recurrence without a division per element. Error: a sub-block's sums
 * of |e|, e^2 and x^2 are formed in double and added to the running totals with Neumaier's
 * compensated summation.
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

/* Sum, extremes and zero count of n finite floats, folded into the running extremes. */
void ts__stats_moments_scalar(const float *x, size_t n, double *sum, double *mn, double *mx,
			      double *amax, double *minnz, uint64_t *zeros)
{
	ts__moment_lanes l;
	size_t i = 0;

	ts__moment_lanes_init(&l);
	for (; i + LANES <= n; i += LANES)
		for (int j = 0; j < LANES; j++)
			ts__moment_step(&l, j, x[i + j]);
	for (int j = 0; i < n; i++, j++)
		ts__moment_step(&l, j, x[i]);
	ts__moment_fold(&l, sum, mn, mx, amax, minnz, zeros);
}

/* Sum of (x - m)^2 and of (x - m) over n floats. */
void ts__stats_deviations_scalar(const float *x, size_t n, double m, double *m2, double *c)
{
	ts__deviation_lanes l = {{0}, {0}};
	size_t i = 0;

	for (; i + LANES <= n; i += LANES)
		for (int j = 0; j < LANES; j++)
			ts__deviation_step(&l, j, x[i + j], m);
	for (int j = 0; i < n; i++, j++)
		ts__deviation_step(&l, j, x[i], m);
	ts__deviation_fold(&l, m2, c);
}

/* Sums of |x - a|, (x - a)^2, x^2 and max |x - a| over n finite pairs. */
void ts__stats_errors_scalar(const float *x, const float *a, size_t n, double *sa, double *se,
			     double *sx, double *me)
{
	ts__error_lanes l = {{0}, {0}, {0}, {0}};
	size_t i = 0;

	for (; i + LANES <= n; i += LANES)
		for (int j = 0; j < LANES; j++)
			ts__error_step(&l, j, x[i + j], a[i + j]);
	for (int j = 0; i < n; i++, j++)
		ts__error_step(&l, j, x[i], a[i]);
	ts__error_fold(&l, sa, se, sx, me);
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

/* The distribution figures of one sub-block x[0..n) (n <= SUB); @p buf (SUB floats) may be x
 * itself or scratch, and is overwritten when the block holds non-finite values. */
static void dist_block(ts_stats_acc *acc, const ts__kernels *kt, const float *x, float *buf,
		       size_t n)
{
	double *s = acc->s;
	size_t k = 0;
	double sum = 0, mn = s[D_MIN], mx = s[D_MAX], amax = s[D_MAXABS], minnz = s[D_MINNZ];
	uint64_t zeros = 0;

	/* a non-finite element makes the sum non-finite: then redo the block without it */
	kt->stats_moments(x, n, &sum, &mn, &mx, &amax, &minnz, &zeros);
	k = n;
	if (!isfinite(sum)) {
		mn = s[D_MIN], mx = s[D_MAX], amax = s[D_MAXABS], minnz = s[D_MINNZ];
		zeros = 0;
		k = 0;
		for (size_t i = 0; i < n; i++)
			if (isfinite(x[i]))
				buf[k++] = x[i];
		x = buf;
		if (k)
			kt->stats_moments(x, k, &sum, &mn, &mx, &amax, &minnz, &zeros);
	}
	acc->n[N_NONFINITE] += n - k;
	acc->n[N_ZEROS] += zeros;
	s[D_MIN] = mn;
	s[D_MAX] = mx;
	s[D_MAXABS] = amax;
	s[D_MINNZ] = minnz;
	if (k == 0)
		return;

	/* corrected two-pass sum of squared deviations about the block mean */
	double mb = sum / (double)k, m2, c;
	kt->stats_deviations(x, k, mb, &m2, &c);
	m2 -= c * c / (double)k;
	if (m2 < 0)
		m2 = 0;
	mb += c / (double)k;

	/* Chan's merge of (na, mean, M2) with (k, mb, m2) */
	double na = (double)acc->n[N_FINITE], nb = (double)k, nt = na + nb;
	double delta = mb - s[D_MEAN];
	s[D_MEAN] += delta * (nb / nt);
	s[D_M2] += m2 + delta * delta * (na * nb / nt);
	acc->n[N_FINITE] += k;
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

/* The error figures of one sub-block: originals x[0..n), approximations a[0..n). */
static void error_block(ts_stats_acc *acc, const ts__kernels *kt, const float *x, const float *a,
			size_t n)
{
	double *s = acc->s;
	double sa = 0, se = 0, sx = 0, me = s[E_MAX];

	/* finite inputs give finite sums (|e|^2 <= 2^258): otherwise redo the block slowly */
	kt->stats_errors(x, a, n, &sa, &se, &sx, &me);
	if (!isfinite(sa + se + sx)) {
		sa = se = sx = 0;
		me = s[E_MAX];
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
			sa += e;
			se += e * e;
			sx += xi * xi;
			me = e > me ? e : me;
		}
	}
	csum_add(s, E_ABS, sa);
	csum_add(s, E_E2, se);
	csum_add(s, E_X2, sx);
	s[E_MAX] = me;
	acc->n[N_ERR] += n;
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
		/* errors first: dist_block() may overwrite buf (invariant 1: disjoint slots, so the
		 * order of the two makes no difference to either) */
		if (approx)
			error_block(acc, kt, x, approx + i0, n);
		else
			acc->n[N_ERR] += n;
		dist_block(acc, kt, x, buf, n);
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
