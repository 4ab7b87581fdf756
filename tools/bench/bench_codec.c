/*
 * `tstore bench codec`: encode and decode throughput of every codec on one core, next to memset
 * and memcpy baselines measured in the same run, so that the ratios mean something on whatever
 * machine (and whatever load) the benchmark runs on.
 *
 * Invariants
 *   1. Uses only the public API (ts_codec_*, ts_kernel_name).
 *   2. Every figure is the best of several timed samples (the least disturbed one); baselines
 *      and codecs are sampled alternately, so that a burst of load elsewhere hits both.
 *   3. Buffers are touched before timing (no page faults in the figures).
 *   4. One thread: the figures are per core.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"

#define CMD "bench codec"

#define MAX_SIZES 8

typedef struct bench_case {
	const char *label; /* "nvfp4/nvidia" */
	ts_codec codec;
	ts_recipe recipe;
	ts_dtype raw_dtype;
} bench_case;

static const bench_case cases[] = {
	{"nvfp4/nvidia", TS_CODEC_NVFP4, TS_RECIPE_NVIDIA, TS_F32},
	{"nvfp4/best", TS_CODEC_NVFP4, TS_RECIPE_BEST, TS_F32},
	{"mxfp4", TS_CODEC_MXFP4, TS_RECIPE_NVIDIA, TS_F32},
	{"int8", TS_CODEC_INT8, TS_RECIPE_NVIDIA, TS_F32},
	{"fp8", TS_CODEC_FP8, TS_RECIPE_NVIDIA, TS_F32},
	{"raw/bf16", TS_CODEC_RAW, TS_RECIPE_NVIDIA, TS_BF16},
	/* lossless encodes from its own dtype: the F32 weights, or their BF16 rounding */
	{"lossless/bf16", TS_CODEC_LOSSLESS, TS_RECIPE_NVIDIA, TS_BF16},
	{"lossless/f32", TS_CODEC_LOSSLESS, TS_RECIPE_NVIDIA, TS_F32},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static ts_codec_config case_config(const bench_case *bc)
{
	ts_codec_config cfg = ts_codec_config_default(bc->codec);
	cfg.recipe = bc->recipe;
	if (bc->codec == TS_CODEC_RAW || bc->codec == TS_CODEC_LOSSLESS) {
		cfg.raw_dtype = bc->raw_dtype;
		cfg.bits_per_value = (int)ts_dtype_size(bc->raw_dtype) * 8;
	}
	return cfg;
}

static const ts_dtype outs[] = {TS_F32, TS_BF16, TS_F16};
#define NOUTS 3

typedef struct opts {
	uint64_t sizes[MAX_SIZES];
	int nsizes;
	int reps;          /* samples per figure; 0 = by size */
	uint64_t cols;     /* row length; 0 = the whole buffer is one row */
	double min_sample; /* seconds: small buffers repeat calls until a sample lasts this long */
	int json;
	int quiet;
	const char *only; /* comma-separated case labels, or NULL for all */
} opts;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tstore bench codec [--size N]... [--reps N] [--cols N] [--codec LIST]\n"
		"                          [--json] [-q]\n\n"
		"Encode (from F32) and decode (to F32, BF16, F16) throughput of every codec on one\n"
		"core, in elements per second, for a cache-resident buffer and a large one, next to\n"
		"memset and memcpy of the output measured in the same run (as elements/s of the output\n"
		"dtype) and the ratio codec / memset. Each figure is the best of several samples.\n"
		"lossless encodes from its own dtype (BF16: the F32 weights rounded) and its rows also\n"
		"give bytes per second (of the source when encoding, of the output when decoding) and\n"
		"the size ratio (source bytes / encoded bytes).\n\n"
		"  --size N      buffer size in elements (repeatable; suffixes K, M, G = 2^10, 2^20,\n"
		"                2^30); default 64K and 64M\n"
		"  --reps N      samples per figure (default 7 below 16M elements, else 3)\n"
		"  --cols N      row length in elements (default: the buffer is one row); the size\n"
		"                is rounded down to whole rows\n"
		"  --codec LIST  comma-separated subset of: nvfp4/nvidia nvfp4/best mxfp4 int8 fp8\n"
		"                raw/bf16 lossless/bf16 lossless/f32 (default all; nvfp4 and lossless\n"
		"                select both of theirs)\n"
		"  --json        one JSON object on stdout instead of the table\n"
		"  -q            no progress on stderr\n\n"
		"The kernel set in use is printed; TSTORE_KERNEL=scalar forces the portable reference.\n");
}

/* A usage or set-up error, reported through the command's one formatter: exit code CLI_USAGE. */
static int bench_error(const char *what, const char *where)
{
	cli_error(CMD, where, "%s", what);
	return CLI_USAGE;
}

static int parse_count(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -1;
	switch (*end) {
	case 'K': case 'k': v <<= 10; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'G': case 'g': v <<= 30; end++; break;
	default: break;
	}
	if (*end || v == 0)
		return -1;
	*out = v;
	return 0;
}

static int case_selected(const opts *o, const char *label)
{
	if (!o->only)
		return 1;
	size_t n = strlen(label);
	for (const char *p = o->only; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, label, n))
			return 1;
		/* "nvfp4" selects both recipes */
		if (!strncmp(p, label, len) && label[len] == '/')
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

/* A deterministic, LLM-weight-like tensor: near-Gaussian (sum of four uniforms) with a small
 * per-row scale drift and rare outliers, so that block scales spread as in real checkpoints. */
static void fill_weights(float *x, uint64_t n, uint64_t cols)
{
	uint64_t s = 0x243f6a8885a308d3ull;
	for (uint64_t i = 0; i < n; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		float u = (float)((s & 0xffff) + ((s >> 16) & 0xffff) + ((s >> 32) & 0xffff) +
				  (s >> 48)) * (1.0f / 65536.0f) - 2.0f;
		float row = 1.0f + 0.25f * (float)((i / cols) % 7);
		float v = u * 0.035f * row;
		if ((s >> 20 & 0x3ff) == 0)
			v *= 12.0f; /* an outlier now and then */
		x[i] = v;
	}
}

/* ---- timing ---------------------------------------------------------------------------------- */

typedef int (*work_fn)(void *ctx);

/* Calls per sample: enough that a sample lasts about min_sample seconds. */
static uint64_t calls_per_sample(work_fn fn, void *ctx, double min_sample, int *rc)
{
	double t = progress_now();
	*rc = fn(ctx);
	t = progress_now() - t;
	if (*rc)
		return 1;
	if (t >= min_sample)
		return 1;
	double k = min_sample / (t > 1e-7 ? t : 1e-7);
	return k > 1e6 ? 1000000 : (uint64_t)k + 1;
}

static double sample(work_fn fn, void *ctx, uint64_t calls, int *rc)
{
	double t = progress_now();
	for (uint64_t i = 0; i < calls && !*rc; i++)
		*rc = fn(ctx);
	return (progress_now() - t) / (double)calls;
}

/* Best seconds per call of @p a and of @p b, sampled alternately. */
static int time_pair(work_fn a, void *ca, work_fn b, void *cb, const opts *o, int reps,
		     double *best_a, double *best_b)
{
	int rc = 0;
	uint64_t ka = calls_per_sample(a, ca, o->min_sample, &rc);
	if (rc)
		return rc;
	uint64_t kb = b ? calls_per_sample(b, cb, o->min_sample, &rc) : 0;
	if (rc)
		return rc;
	*best_a = *best_b = INFINITY;
	for (int r = 0; r < reps; r++) {
		double t = sample(a, ca, ka, &rc);
		if (rc)
			return rc;
		if (t < *best_a)
			*best_a = t;
		if (b) {
			t = sample(b, cb, kb, &rc);
			if (rc)
				return rc;
			if (t < *best_b)
				*best_b = t;
		}
	}
	return 0;
}

/* ---- the work -------------------------------------------------------------------------------- */

typedef struct work {
	ts_codec_config cfg;
	float amax, tensor_scale;
	const void *src;
	ts_dtype src_dtype;
	uint8_t *enc;
	size_t enc_size; /* capacity */
	size_t enc_len;  /* what the last encode wrote */
	void *dst;
	const void *copy_src;
	size_t bytes; /* baselines: bytes to set or copy */
	uint64_t rows, cols;
	ts_dtype out;
} work;

static int do_encode(void *p)
{
	work *w = p;
	return ts_codec_encode_len(&w->enc_len, &w->cfg, w->amax, w->src, w->src_dtype, w->cols,
				   w->rows, w->cols, w->enc, w->enc_size);
}

static int do_decode(void *p)
{
	work *w = p;
	return ts_codec_decode(&w->cfg, w->tensor_scale, w->enc, w->enc_len, w->rows, w->cols,
			       w->out, w->dst, w->cols);
}

static int do_memset(void *p)
{
	work *w = p;
	memset(w->dst, 0x3c, w->bytes);
	__asm__ volatile("" : : "r"(w->dst) : "memory");
	return 0;
}

static int do_memcpy(void *p)
{
	work *w = p;
	memcpy(w->dst, w->copy_src, w->bytes);
	__asm__ volatile("" : : "r"(w->dst) : "memory");
	return 0;
}

/* ---- output ---------------------------------------------------------------------------------- */

/* Baseline classes: memset and memcpy of F32 and of 16-bit elements. */
enum { BASE_SET32, BASE_SET16, BASE_CPY32, BASE_CPY16, NBASE };
static const char *const base_names[NBASE] = {"memset f32", "memset 16-bit", "memcpy f32",
					      "memcpy 16-bit"};

typedef struct result {
	const char *label, *op, *dtype;
	double rate; /* elements/s */
	int base;    /* the baseline it is compared with */
	double bps;  /* lossless: bytes/s (source for encode, output for decode); else 0 */
	double size_ratio; /* lossless encode: source bytes / encoded bytes; else 0 */
} result;

#define MAX_RESULTS (NCASES * (1 + NOUTS) + NBASE)

static const char *dtype_lower(ts_dtype d)
{
	return d == TS_F32 ? "f32" : d == TS_BF16 ? "bf16" : "f16";
}

static void print_row(const opts *o, int first, const result *r, const double *base)
{
	double b = base[r->base];
	if (o->json)
		printf("%s\n      {\"codec\": \"%s\", \"op\": \"%s\", \"dtype\": \"%s\", "
		       "\"elements_per_s\": %.6g, \"baseline\": \"%s\", \"baseline_elements_per_s\": "
		       "%.6g, \"ratio\": %.4f",
		       first ? "" : ",", r->label, r->op, r->dtype, r->rate, base_names[r->base], b,
		       r->rate / b);
	else
		printf("  %-13s %-6s %-5s %8.3f G/s   %-13s %8.3f G/s  %6.2f", r->label, r->op,
		       r->dtype, r->rate * 1e-9, base_names[r->base], b * 1e-9, r->rate / b);
	if (r->bps > 0)
		printf(o->json ? ", \"bytes_per_s\": %.6g" : "  %.2f GB/s", o->json ? r->bps
										  : r->bps * 1e-9);
	if (r->size_ratio > 0)
		printf(o->json ? ", \"size_ratio\": %.4f" : "  size %.3fx", r->size_ratio);
	if (o->json)
		printf("}");
	else
		printf("\n");
}

/* ---- one buffer size ------------------------------------------------------------------------- */

static int bench_size(const opts *o, uint64_t n, int first_size)
{
	uint64_t cols = o->cols && o->cols < n ? o->cols : n;
	uint64_t rows = n / cols;
	n = rows * cols;
	int reps = o->reps ? o->reps : (n < ((uint64_t)16 << 20) ? 9 : 3);
	size_t enc_cap = 0;
	for (size_t c = 0; c < NCASES; c++) {
		ts_codec_config cfg = case_config(&cases[c]);
		size_t s = ts_codec_encoded_size(&cfg, rows, cols);
		enc_cap = s > enc_cap ? s : enc_cap;
	}
	size_t fbytes = (n * 4 + 63) / 64 * 64;
	float *src = aligned_alloc(64, fbytes);
	uint16_t *src16 = aligned_alloc(64, fbytes / 2);
	void *dst = aligned_alloc(64, fbytes);
	void *copy_src = aligned_alloc(64, fbytes);
	uint8_t *enc = aligned_alloc(64, (enc_cap + 63) / 64 * 64);
	result res[MAX_RESULTS];
	double base[NBASE] = {0};
	size_t nres = 0;
	int status = 0, rc = 0;
	char where[64];
	snprintf(where, sizeof(where), "%llu elements", (unsigned long long)n);
	if (!src || !src16 || !dst || !copy_src || !enc || !enc_cap) {
		status = bench_error(enc_cap ? "out of memory" : "size too large", where);
		goto out;
	}
	fill_weights(src, n, cols);
	for (uint64_t i = 0; i < n; i++)
		src16[i] = ts_f32_to_bf16(src[i]);
	memset(dst, 0, n * 4); /* fault the pages in */
	memset(copy_src, 0x11, n * 4);
	memset(enc, 0, enc_cap);
	float amax = 0.0f;
	for (uint64_t i = 0; i < n; i++)
		amax = fabsf(src[i]) > amax ? fabsf(src[i]) : amax;

	for (size_t c = 0; c < NCASES; c++) {
		const bench_case *bc = &cases[c];
		if (!case_selected(o, bc->label))
			continue;
		if (!o->quiet && isatty(2))
			fprintf(stderr, "  %llu elements: %s ...\r", (unsigned long long)n, bc->label);
		int lossless = bc->codec == TS_CODEC_LOSSLESS;
		work w = {.cfg = case_config(bc), .src = src, .src_dtype = TS_F32, .enc = enc,
			  .dst = dst, .copy_src = copy_src, .rows = rows, .cols = cols};
		if (lossless && bc->raw_dtype == TS_BF16) {
			w.src = src16;
			w.src_dtype = TS_BF16;
		}
		size_t in_bytes = n * ts_dtype_size(w.src_dtype);
		w.amax = amax;
		w.tensor_scale = ts_codec_tensor_scale(&w.cfg, amax);
		w.enc_size = ts_codec_encoded_size(&w.cfg, rows, cols);
		if (!w.enc_size || w.enc_size > enc_cap) {
			status = bench_error("invalid default configuration", bc->label);
			goto out;
		}

		/* encode, sampled alternately with memcpy of the F32 input */
		w.bytes = n * 4;
		double tenc, tcpy;
		if ((rc = time_pair(do_encode, &w, do_memcpy, &w, o, reps, &tenc, &tcpy)) < 0)
			goto fail;
		res[nres++] = (result){bc->label, "encode", dtype_lower(w.src_dtype), (double)n / tenc,
				       BASE_CPY32, lossless ? (double)in_bytes / tenc : 0,
				       lossless ? (double)in_bytes / (double)w.enc_len : 0};
		base[BASE_CPY32] = fmax(base[BASE_CPY32], (double)n / tcpy);

		/* decode to each output dtype, sampled alternately with memset of the output */
		for (int oi = 0; oi < NOUTS; oi++) {
			w.out = outs[oi];
			w.bytes = n * ts_dtype_size(w.out);
			double tdec, tset;
			if ((rc = time_pair(do_decode, &w, do_memset, &w, o, reps, &tdec, &tset)) < 0)
				goto fail;
			int bi = oi ? BASE_SET16 : BASE_SET32;
			res[nres++] = (result){bc->label, "decode", dtype_lower(w.out),
					       (double)n / tdec, bi,
					       lossless ? (double)w.bytes / tdec : 0, 0};
			base[bi] = fmax(base[bi], (double)n / tset);
		}
	}
	/* the 16-bit memcpy, for the record (the others were sampled above) */
	{
		work w = {.dst = dst, .copy_src = copy_src, .bytes = n * 2};
		double tcpy, tset;
		if ((rc = time_pair(do_memcpy, &w, do_memset, &w, o, reps, &tcpy, &tset)) < 0)
			goto fail;
		base[BASE_CPY16] = (double)n / tcpy;
		base[BASE_SET16] = fmax(base[BASE_SET16], (double)n / tset);
		if (base[BASE_SET32] == 0.0 || base[BASE_CPY32] == 0.0) {
			w.bytes = n * 4;
			if ((rc = time_pair(do_memcpy, &w, do_memset, &w, o, reps, &tcpy, &tset)) < 0)
				goto fail;
			base[BASE_CPY32] = fmax(base[BASE_CPY32], (double)n / tcpy);
			base[BASE_SET32] = fmax(base[BASE_SET32], (double)n / tset);
		}
	}
	if (!o->quiet && isatty(2))
		fprintf(stderr, "%60s\r", "");

	if (o->json) {
		printf("%s\n    {\"elements\": %llu, \"rows\": %llu, \"cols\": %llu, \"reps\": %d, "
		       "\"baselines\": {",
		       first_size ? "" : ",", (unsigned long long)n, (unsigned long long)rows,
		       (unsigned long long)cols, reps);
		for (int b = 0; b < NBASE; b++)
			printf("%s\"%s\": %.6g", b ? ", " : "", base_names[b], base[b]);
		printf("},\n     \"results\": [");
	} else {
		printf("\n%llu elements (%s; %llu x %llu), best of %d samples\n",
		       (unsigned long long)n,
		       n * 4 <= ((uint64_t)1 << 20) ? "cache-resident" : "larger than the caches",
		       (unsigned long long)rows, (unsigned long long)cols, reps);
		printf("  baselines:");
		for (int b = 0; b < NBASE; b++)
			printf("%s %s %.3f G/s", b ? "," : "", base_names[b], base[b] * 1e-9);
		printf("\n  %-13s %-6s %-5s %12s   %-13s %12s  %6s\n", "codec", "op", "dtype",
		       "rate", "baseline", "rate", "ratio");
	}
	for (size_t i = 0; i < nres; i++)
		print_row(o, i == 0, &res[i], base);
	if (o->json)
		printf("\n    ]}");
	fflush(stdout);
	goto out;
fail:
	cli_error(CMD, ts_error_last(), "%s", ts_strerror(rc));
	status = 1;
out:
	free(src);
	free(src16);
	free(dst);
	free(copy_src);
	free(enc);
	return status;
}

int cmd_bench_codec(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"size", required_argument, NULL, 's'},
					   {"reps", required_argument, NULL, 'r'},
					   {"cols", required_argument, NULL, 'c'},
					   {"codec", required_argument, NULL, 'k'},
					   {NULL, 0, NULL, 0}};
	opts o = {.min_sample = 0.02};
	cli_opts co;
	int opt;
	uint64_t x;

	cli_opts_init(&co, CMD, usage, 0, NULL, lo, argc, argv);
	while ((opt = cli_opts_next(&co)) > 0) {
		switch (opt) {
		case 'j':
			o.json = 1;
			break;
		case 'k':
			o.only = optarg;
			break;
		default: /* --size, --reps, --cols: a count */
			if (parse_count(optarg, &x) < 0)
				return bench_error("not a positive count", optarg);
			if (opt == 's') {
				if (o.nsizes == MAX_SIZES)
					return bench_error("too many --size options", optarg);
				o.sizes[o.nsizes++] = x;
			} else if (opt == 'r') {
				o.reps = x > 1000 ? 1000 : (int)x;
			} else {
				o.cols = x;
			}
		}
	}
	if (opt < 0)
		return co.status;
	if (co.operand < argc)
		return cli_usage_error(CMD, "no operands expected ('%s')", argv[co.operand]);
	o.quiet = cli_quiet;
	if (o.only) {
		int any = 0;
		for (size_t c = 0; c < NCASES; c++)
			any |= case_selected(&o, cases[c].label);
		if (!any)
			return bench_error("no such codec", o.only);
	}
	if (!o.nsizes) {
		o.sizes[o.nsizes++] = (uint64_t)64 << 10;
		o.sizes[o.nsizes++] = (uint64_t)64 << 20;
	}

	const char *kernel = ts_kernel_name();
	if (o.json)
		printf("{\"benchmark\": \"codec\", \"kernel\": \"%s\", \"threads\": 1,\n  \"sizes\": [",
		       kernel);
	else
		printf("tstore bench codec: kernels %s (TSTORE_KERNEL=scalar forces the reference), "
		       "1 thread\n"
		       "rates in elements/s; baselines as elements/s of the output dtype; ratio = "
		       "rate / baseline\n",
		       kernel);
	int status = 0;
	for (int s = 0; s < o.nsizes && !status; s++)
		status = bench_size(&o, o.sizes[s], s == 0);
	if (o.json)
		printf("\n  ]}\n");
	return status;
}
