/*
 * `tstore bench cache`: replay a trace of slice requests against a store's cache under a
 * residency policy, and generate such traces.
 *
 *   tstore bench cache --trace FILE --budget BYTES [--policy P] [--json] STORE
 *   tstore bench cache --generate zipf|sweep-hot|scan [options] [-o FILE] STORE
 *
 * A trace has one request per line: `NAME RANGE [hot]` (RANGE as in `tstore slice`; the optional
 * tag marks requests to the hot set of a sweep-hot trace, reported separately); blank lines and
 * lines starting with '#' are skipped.
 *
 * Invariants
 *   1. Uses only the public API (include/tstore.h) and the shared tools helpers.
 *   2. A request is "served from storage" when the store read at least one page from storage
 *      while serving it (read-ahead included), "served compressed" when it decoded at least one
 *      cached compressed page and read nothing, else "served decoded".
 *   3. The offline optimum (Belady: on a miss, evict the pages whose next use is furthest, or
 *      do not keep the page at all if it is needed later than all of them) is computed on the
 *      page accesses of the same trace with the decoded page sizes and the same budget.
 *   4. Generated traces depend only on the store's tensors and the options (--seed).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/bench/belady.h"
#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"
#include "tools/cli/json.h"

#define CMD "bench cache"

typedef struct tensor {
	char *name;
	ts_tensor_info info;
	uint64_t rows, cols; /* the 2-D view */
	uint64_t tiles_across;
} tensor;

typedef struct request {
	uint32_t tensor;
	int hot;
	uint64_t start[TS_MAX_DIMS], count[TS_MAX_DIMS];
} request;

typedef struct bench {
	ts_store *st;
	tensor *tensors;
	size_t ntensors, cap;
	request *reqs;
	size_t nreqs, reqs_cap;
} bench;

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	uint64_t x = *s;
	x ^= x >> 33;
	x *= 0xFF51AFD7ED558CCDull;
	x ^= x >> 33;
	return x;
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* -- The store's tensors ------------------------------------------------------------------ */

static int collect_cb(void *ud, const char *name, const ts_tensor_info *info)
{
	bench *b = ud;
	if (b->ntensors == b->cap) {
		size_t n = b->cap ? b->cap * 2 : 64;
		tensor *t = realloc(b->tensors, n * sizeof(*t));
		if (!t)
			return TS_ENOMEM;
		b->tensors = t;
		b->cap = n;
	}
	tensor *t = &b->tensors[b->ntensors];
	memset(t, 0, sizeof(*t));
	if (!(t->name = strdup(name)))
		return TS_ENOMEM;
	t->info = *info;
	t->rows = 1;
	for (int i = 0; i + 1 < info->ndim; i++)
		t->rows *= info->shape[i];
	t->cols = info->ndim ? info->shape[info->ndim - 1] : 1;
	uint64_t tc = info->tile_cols ? info->tile_cols : t->cols;
	t->tiles_across = tc ? (t->cols + tc - 1) / tc : 1;
	b->ntensors++;
	return 0;
}

static int load_tensors(bench *b)
{
	int rc = ts_tensor_foreach(b->st, collect_cb, b);
	if (rc) {
		cli_error_ts(CMD, rc, "cannot list the store's tensors");
		return -1;
	}
	if (b->ntensors == 0) {
		cli_error(CMD, NULL, "the store holds no tensors");
		return -1;
	}
	return 0;
}

static int find_tensor(const bench *b, const char *name)
{
	size_t lo = 0, hi = b->ntensors; /* ts_tensor_foreach walks in name order */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(b->tensors[mid].name, name);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < b->ntensors; i++) /* in case the order differs from strcmp's */
		if (!strcmp(b->tensors[i].name, name))
			return (int)i;
	return -1;
}

static void free_bench(bench *b)
{
	for (size_t i = 0; i < b->ntensors; i++)
		free(b->tensors[i].name);
	free(b->tensors);
	free(b->reqs);
}

/* -- Traces ------------------------------------------------------------------------------- */

static int push_request(bench *b, const request *r)
{
	if (b->nreqs == b->reqs_cap) {
		size_t n = b->reqs_cap ? b->reqs_cap * 2 : 1024;
		request *q = realloc(b->reqs, n * sizeof(*q));
		if (!q)
			return -1;
		b->reqs = q;
		b->reqs_cap = n;
	}
	b->reqs[b->nreqs++] = *r;
	return 0;
}

static int load_trace(bench *b, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned long lineno = 0;
	int rc = 0;

	if (!f) {
		cli_error(CMD, path, "cannot open the trace: %s", strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		char where[64], err[256], *save = NULL;
		lineno++;
		snprintf(where, sizeof(where), "%s:%lu", path, lineno);
		char *p = line + strspn(line, " \t\r\n");
		if (!*p || *p == '#')
			continue;
		char *name = strtok_r(p, " \t\r\n", &save);
		char *range = strtok_r(NULL, " \t\r\n", &save);
		char *tag = strtok_r(NULL, " \t\r\n", &save);
		if (!range || strtok_r(NULL, " \t\r\n", &save) || (tag && strcmp(tag, "hot"))) {
			cli_error(CMD, where, "expected 'NAME RANGE [hot]'");
			rc = -1;
			break;
		}
		int t = find_tensor(b, name);
		if (t < 0) {
			cli_error(CMD, where, "no tensor named '%s' in the store", name);
			rc = -1;
			break;
		}
		request r = {.tensor = (uint32_t)t, .hot = tag != NULL};
		uint32_t squeezed;
		const ts_tensor_info *in = &b->tensors[t].info;
		if (range_parse(range, in->ndim, in->shape, r.start, r.count, &squeezed, err,
				sizeof(err))) {
			cli_error(CMD, where, "bad range '%s': %s", range, err);
			rc = -1;
			break;
		}
		if (push_request(b, &r)) {
			cli_error(CMD, where, "out of memory");
			rc = -1;
			break;
		}
	}
	if (!rc && ferror(f)) {
		cli_error(CMD, path, "cannot read the trace: %s", strerror(errno));
		rc = -1;
	}
	if (!rc && b->nreqs == 0) {
		cli_error(CMD, path, "the trace holds no request");
		rc = -1;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

/* -- Pages of a request ------------------------------------------------------------------- */

/*
 * The pages a request touches, in ascending order, without repeats. Pages tile the tensor's
 * 2-D view [rows, cols] in tile-row-major order: page = tile_row * tiles_across + tile_col
 * (docs/FORMAT.md). Returns the count written to *out (reallocated as needed), or -1.
 */
static long request_pages(const tensor *t, const request *r, uint64_t **out, size_t *cap)
{
	const ts_tensor_info *in = &t->info;
	int nd = in->ndim;
	uint64_t tr = in->tile_rows ? in->tile_rows : 1, tc = in->tile_cols ? in->tile_cols : 1;
	uint64_t c0 = nd ? r->start[nd - 1] : 0, cn = nd ? r->count[nd - 1] : 1;
	uint64_t tc0 = c0 / tc, tc1 = (c0 + cn - 1) / tc;
	size_t n = 0;
	uint64_t last_tile_row = UINT64_MAX;

	/* runs of contiguous 2-D rows: one per index combination of dims 0 .. nd-3 */
	uint64_t idx[TS_MAX_DIMS] = {0};
	int outer = nd >= 2 ? nd - 2 : 0; /* dims iterated one by one */
	for (;;) {
		uint64_t row0 = 0, run = 1;
		if (nd >= 2) {
			for (int i = 0; i < nd - 1; i++) {
				uint64_t v = i < outer ? r->start[i] + idx[i] : r->start[i];
				row0 = row0 * in->shape[i] + v;
			}
			run = r->count[nd - 2];
		}
		for (uint64_t trow = row0 / tr; trow <= (row0 + run - 1) / tr; trow++) {
			if (trow == last_tile_row)
				continue;
			last_tile_row = trow;
			for (uint64_t c = tc0; c <= tc1; c++) {
				if (n == *cap) {
					size_t nc = *cap ? *cap * 2 : 256;
					uint64_t *p = realloc(*out, nc * sizeof(*p));
					if (!p)
						return -1;
					*out = p;
					*cap = nc;
				}
				(*out)[n++] = trow * t->tiles_across + c;
			}
		}
		int i = outer - 1;
		while (i >= 0 && ++idx[i] == r->count[i])
			idx[i--] = 0;
		if (i < 0)
			break;
	}
	/* rows of different outer indices may revisit tile rows out of order: sort and dedupe */
	for (size_t i = 1; i < n; i++) {
		uint64_t v = (*out)[i];
		size_t j = i;
		while (j > 0 && (*out)[j - 1] > v) {
			(*out)[j] = (*out)[j - 1];
			j--;
		}
		(*out)[j] = v;
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (m == 0 || (*out)[m - 1] != (*out)[i])
			(*out)[m++] = (*out)[i];
	return (long)m;
}

/* Decoded (F32) bytes of page @p page of @p t. */
static uint64_t page_decoded_bytes(const tensor *t, uint64_t page)
{
	uint64_t tr = t->info.tile_rows ? t->info.tile_rows : 1;
	uint64_t tc = t->info.tile_cols ? t->info.tile_cols : t->cols;
	uint64_t row = page / t->tiles_across, col = page % t->tiles_across;
	uint64_t nr = t->rows - row * tr < tr ? t->rows - row * tr : tr;
	uint64_t nc = t->cols - col * tc < tc ? t->cols - col * tc : tc;
	return nr * nc * 4;
}

static int trace_accesses(const bench *b, belady_access **out, size_t *nout)
{
	uint64_t *pages = NULL;
	size_t cap = 0, n = 0, acap = 0;
	belady_access *acc = NULL;

	for (size_t i = 0; i < b->nreqs; i++) {
		const tensor *t = &b->tensors[b->reqs[i].tensor];
		long np = request_pages(t, &b->reqs[i], &pages, &cap);
		if (np < 0)
			goto oom;
		for (long k = 0; k < np; k++) {
			if (n == acap) {
				acap = acap ? acap * 2 : 4096;
				belady_access *a = realloc(acc, acap * sizeof(*a));
				if (!a)
					goto oom;
				acc = a;
			}
			acc[n++] = (belady_access){(uint64_t)b->reqs[i].tensor << 40 | pages[k],
						   page_decoded_bytes(t, pages[k]), 0};
		}
	}
	if (belady_link(acc, n))
		goto oom;
	free(pages);
	*out = acc;
	*nout = n;
	return 0;
oom:
	free(pages);
	free(acc);
	return -1;
}

/* -- Replay ------------------------------------------------------------------------------- */

typedef struct result {
	uint64_t requests, served[3], hot_requests, hot_no_storage, storage_bytes, page_accesses;
	uint64_t readahead_pages, promoted;
	double model_seconds, measured_seconds, opt_hit_ratio, hit_ratio;
	int have_opt;
} result;

static uint64_t request_elements(const tensor *t, const request *r)
{
	uint64_t n = 1;
	for (int i = 0; i < t->info.ndim; i++)
		n *= r->count[i];
	return n;
}

static int replay(bench *b, ts_cache_policy policy, int64_t budget, result *res)
{
	ts_residency_stats s0, s1;
	ts_cache_stats c0, c1;
	size_t maxel = 0;
	float *buf;
	int rc;

	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < b->nreqs; i++) {
		uint64_t e = request_elements(&b->tensors[b->reqs[i].tensor], &b->reqs[i]);
		if (e > maxel)
			maxel = e;
	}
	if (!(buf = malloc(maxel * sizeof(float)))) {
		cli_error(CMD, NULL, "out of memory for a %zu-element request", maxel);
		return -1;
	}
	if ((rc = ts_cache_configure(b->st, policy, budget))) {
		cli_error_ts(CMD, rc, "cannot set up the cache");
		free(buf);
		return -1;
	}
	ts_residency_stats_get(&s0, b->st);
	ts_cache_stats_get(&c0, b->st);
	const ts_residency_stats first = s0;
	for (size_t i = 0; i < b->nreqs; i++) {
		const request *r = &b->reqs[i];
		const tensor *t = &b->tensors[r->tensor];
		uint64_t ne = request_elements(t, r);
		double t0 = progress_now();
		rc = ts_read_slice(b->st, t->name, t->info.ndim, r->start, r->count, TS_F32, buf,
				   ne * sizeof(float));
		res->measured_seconds += progress_now() - t0;
		if (rc) {
			char where[64];
			snprintf(where, sizeof(where), "request %zu", i + 1);
			cli_error_ts(CMD, rc, "reading '%s' (%s)", t->name, where);
			free(buf);
			return -1;
		}
		ts_residency_stats_get(&s1, b->st);
		ts_cache_stats_get(&c1, b->st);
		int form = s1.served_storage > s0.served_storage ||
					   c1.storage_reads > c0.storage_reads
				   ? 2
				   : s1.served_compressed > s0.served_compressed ? 1 : 0;
		res->served[form]++;
		if (r->hot) {
			res->hot_requests++;
			res->hot_no_storage += form != 2;
		}
		s0 = s1;
		c0 = c1;
	}
	res->requests = b->nreqs;
	res->storage_bytes = c0.storage_bytes;
	res->model_seconds = s0.model_seconds - first.model_seconds;
	res->page_accesses = (s0.served_decoded + s0.served_compressed + s0.served_storage) -
			     (first.served_decoded + first.served_compressed + first.served_storage);
	res->hit_ratio = res->page_accesses
				 ? (double)(s0.served_decoded - first.served_decoded) /
					   (double)res->page_accesses
				 : 0;
	res->readahead_pages = s0.readahead_pages;
	res->promoted = s0.promoted;
	free(buf);
	return 0;
}

/* -- Trace generation --------------------------------------------------------------------- */

typedef struct item {
	uint32_t tensor;
	uint64_t row0, rows;
} item;

static int make_items(const bench *b, uint64_t rows_opt, item **out, size_t *nout)
{
	size_t n = 0, cap = 0;
	item *it = NULL;
	for (size_t t = 0; t < b->ntensors; t++) {
		const tensor *x = &b->tensors[t];
		const ts_codec_config *cc = &x->info.codec;
		if (x->info.ndim != 2 ||
		    ((cc->codec == TS_CODEC_RAW || cc->codec == TS_CODEC_LOSSLESS) &&
		     cc->raw_dtype != TS_F32 &&
		     cc->raw_dtype != TS_BF16 && cc->raw_dtype != TS_F16))
			continue; /* only tensors that read as F32 */
		uint64_t h = rows_opt ? rows_opt : (x->info.tile_rows ? x->info.tile_rows : 1);
		for (uint64_t r = 0; r < x->rows; r += h) {
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				item *p = realloc(it, cap * sizeof(*p));
				if (!p) {
					free(it);
					return -1;
				}
				it = p;
			}
			it[n++] = (item){(uint32_t)t, r, x->rows - r < h ? x->rows - r : h};
		}
	}
	*out = it;
	*nout = n;
	return 0;
}

static void put_item(FILE *f, const bench *b, const item *it, int hot)
{
	fprintf(f, "%s %llu:%llu,:%s\n", b->tensors[it->tensor].name,
		(unsigned long long)it->row0, (unsigned long long)(it->row0 + it->rows),
		hot ? " hot" : "");
}

static uint64_t item_bytes(const bench *b, const item *it)
{
	return it->rows * b->tensors[it->tensor].cols * 4;
}

static int generate(bench *b, const char *kind, uint64_t nreq, uint64_t rows, double alpha,
		    uint64_t hot, double hot_share, int64_t budget, uint64_t seed, FILE *f)
{
	item *items;
	size_t n;
	uint64_t s = seed;

	if (make_items(b, rows, &items, &n)) {
		cli_error(CMD, NULL, "out of memory");
		return -1;
	}
	if (n == 0) {
		free(items);
		cli_error(CMD, NULL, "the store has no 2-D tensor to slice rows of");
		return -1;
	}
	/* shuffle so that popularity is not tied to position (seeded Fisher-Yates) */
	size_t *perm = malloc(n * sizeof(*perm));
	double *cdf = malloc(n * sizeof(*cdf));
	if (!perm || !cdf) {
		free(items);
		free(perm);
		free(cdf);
		cli_error(CMD, NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rng_next(&s) % (i + 1);
		size_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	fprintf(f, "# tstore bench cache trace: %s, seed %llu, %zu items\n", kind,
		(unsigned long long)seed, n);
	if (!strcmp(kind, "zipf")) {
		double sum = 0;
		for (size_t i = 0; i < n; i++)
			cdf[i] = (sum += pow((double)(i + 1), -alpha));
		for (size_t i = 0; i < n; i++)
			cdf[i] /= sum;
		for (uint64_t k = 0; k < nreq; k++) {
			double u = rng_unit(&s);
			size_t lo = 0, hi = n - 1;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (cdf[mid] < u)
					lo = mid + 1;
				else
					hi = mid;
			}
			put_item(f, b, &items[perm[lo]], 0);
		}
	} else if (!strcmp(kind, "sweep-hot")) {
		if (!hot) {
			/* a hot set about the budget's size in decoded bytes: LRU, holding decoded
			 * pages, cannot keep it across sweeps; a tiered cache holds it compressed */
			uint64_t avg = 0;
			for (size_t i = 0; i < n; i++)
				avg += item_bytes(b, &items[i]);
			avg /= n;
			hot = budget > 0 && avg ? (uint64_t)budget / avg : 16;
			if (hot < 1)
				hot = 1;
		}
		if (hot > n / 4)
			hot = n / 4 ? n / 4 : 1;
		/* the hot set: the first `hot` items of the shuffled order; the sweep walks every
		 * other item in store order, again and again */
		char *is_hot = calloc(n, 1);
		if (!is_hot) {
			free(items);
			free(perm);
			free(cdf);
			cli_error(CMD, NULL, "out of memory");
			return -1;
		}
		for (uint64_t i = 0; i < hot; i++)
			is_hot[perm[i]] = 1;
		size_t pos = 0;
		for (uint64_t k = 0; k < nreq; k++) {
			if (rng_unit(&s) < hot_share) {
				put_item(f, b, &items[perm[rng_next(&s) % hot]], 1);
			} else {
				while (is_hot[pos])
					pos = (pos + 1) % n;
				put_item(f, b, &items[pos], 0);
				pos = (pos + 1) % n;
			}
		}
		free(is_hot);
	} else { /* scan: one pass over every item in store order */
		uint64_t total = nreq ? (nreq < n ? nreq : n) : n;
		for (uint64_t k = 0; k < total; k++)
			put_item(f, b, &items[k], 0);
	}
	free(items);
	free(perm);
	free(cdf);
	return 0;
}

/* -- The command -------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tstore bench cache --trace FILE --budget BYTES [--policy P] [--json] STORE\n"
		"       tstore bench cache --generate zipf|sweep-hot|scan [--requests N] [--rows N]\n"
		"                          [--alpha A] [--hot N] [--hot-share P] [--budget BYTES]\n"
		"                          [--seed S] [-o FILE] STORE\n\n"
		"Replay a trace of slice requests (one 'NAME RANGE [hot]' per line) against the\n"
		"store's cache with BYTES of budget, from a cold cache, and print how requests were\n"
		"served: from decoded pages, from compressed pages (a decode), or from storage;\n"
		"bytes read from storage; modelled time (the store's hardware profile: see\n"
		"'tstore calibrate') and measured time. For decoded-only policies, also the\n"
		"offline optimum hit ratio (Belady) of the same trace and budget.\n\n"
		"  --policy P     tiered (default), decoded-lru, decoded-only\n"
		"  --threads N    decode threads (default: every core); with 1 the replay is\n"
		"                 reproducible decision for decision\n"
		"  --json         one JSON object: requests, served_decoded, served_compressed,\n"
		"                 served_storage, storage_bytes, model_seconds, measured_seconds,\n"
		"                 [opt_hit_ratio], hit_ratio, page_accesses, hot_requests,\n"
		"                 hot_hit_ratio, policy, budget, profile, io, kernel\n\n"
		"Generating (to stdout or -o FILE), over row slices of the store's 2-D tensors\n"
		"(--rows N rows per request; default one page row):\n"
		"  zipf       --requests N (20000) requests, item popularity Zipf(--alpha 1.0)\n"
		"  sweep-hot  repeated sequential sweeps of the store mixed with a hot set of\n"
		"             --hot N items (default: --budget's worth of decoded bytes), a share\n"
		"             --hot-share P (0.5) of the requests; hot requests are tagged 'hot'\n"
		"  scan       one pass over every row slice in store order\n"
		"BYTES accepts K, M, G suffixes (powers of 1024).\n");
}

static int parse_bytes(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -1;
	switch (*end) {
	case 'k': case 'K': v *= 1024.0; end++; break;
	case 'm': case 'M': v *= 1048576.0; end++; break;
	case 'g': case 'G': v *= 1073741824.0; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' && end[1] == 'B' ? 2 : 1;
	if (*end || v > 9.2e18)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *end || errno || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static void print_result(const bench *b, const result *r, ts_cache_policy policy, int64_t budget,
			 int json)
{
	ts_hw_profile p;
	int measured = 0;
	ts_store_profile_get(&p, &measured, b->st);
	uint64_t no_storage = r->served[0] + r->served[1];
	if (json) {
		json_writer w;
		jw_init(&w, stdout, 2);
		jw_object_begin(&w);
		jw_key(&w, "policy");
		jw_string(&w, ts_cache_policy_name(policy));
		jw_key(&w, "budget");
		jw_uint(&w, (uint64_t)budget);
		jw_key(&w, "requests");
		jw_uint(&w, r->requests);
		jw_key(&w, "served_decoded");
		jw_uint(&w, r->served[0]);
		jw_key(&w, "served_compressed");
		jw_uint(&w, r->served[1]);
		jw_key(&w, "served_storage");
		jw_uint(&w, r->served[2]);
		jw_key(&w, "storage_bytes");
		jw_uint(&w, r->storage_bytes);
		jw_key(&w, "model_seconds");
		jw_double(&w, r->model_seconds);
		jw_key(&w, "measured_seconds");
		jw_double(&w, r->measured_seconds);
		if (r->have_opt) {
			jw_key(&w, "opt_hit_ratio");
			jw_double(&w, r->opt_hit_ratio);
		}
		jw_key(&w, "hit_ratio");
		jw_double(&w, r->hit_ratio);
		jw_key(&w, "page_accesses");
		jw_uint(&w, r->page_accesses);
		jw_key(&w, "hot_requests");
		jw_uint(&w, r->hot_requests);
		jw_key(&w, "hot_hit_ratio");
		if (r->hot_requests)
			jw_double(&w, (double)r->hot_no_storage / (double)r->hot_requests);
		else
			jw_null(&w);
		jw_key(&w, "readahead_pages");
		jw_uint(&w, r->readahead_pages);
		jw_key(&w, "promoted");
		jw_uint(&w, r->promoted);
		jw_key(&w, "profile");
		jw_string(&w, measured ? p.name : "blackwell (uncalibrated)");
		jw_key(&w, "io");
		jw_string(&w, ts_io_backend_name(ts_store_io_backend(b->st)));
		jw_key(&w, "kernel");
		jw_string(&w, ts_kernel_name());
		jw_object_end(&w);
		jw_finish(&w);
		return;
	}
	printf("policy %s, budget %lld bytes, %llu requests (%llu page accesses)\n",
	       ts_cache_policy_name(policy), (long long)budget, (unsigned long long)r->requests,
	       (unsigned long long)r->page_accesses);
	printf("  served decoded     %10llu\n", (unsigned long long)r->served[0]);
	printf("  served compressed  %10llu\n", (unsigned long long)r->served[1]);
	printf("  served storage     %10llu\n", (unsigned long long)r->served[2]);
	printf("  without storage    %10llu (%.1f%%)\n", (unsigned long long)no_storage,
	       r->requests ? 100.0 * (double)no_storage / (double)r->requests : 0);
	if (r->hot_requests)
		printf("  hot set            %10.1f%% of %llu hot requests without storage\n",
		       100.0 * (double)r->hot_no_storage / (double)r->hot_requests,
		       (unsigned long long)r->hot_requests);
	printf("  storage bytes      %10llu\n", (unsigned long long)r->storage_bytes);
	printf("  read-ahead pages   %10llu\n", (unsigned long long)r->readahead_pages);
	printf("  page hit ratio     %10.4f (decoded)\n", r->hit_ratio);
	if (r->have_opt)
		printf("  optimum hit ratio  %10.4f (Belady, same trace and budget)\n",
		       r->opt_hit_ratio);
	printf("  model time         %10.3f s (profile %s)\n", r->model_seconds,
	       measured ? p.name : "blackwell: uncalibrated, run 'tstore calibrate'");
	printf("  measured time      %10.3f s (io %s, kernels %s)\n", r->measured_seconds,
	       ts_io_backend_name(ts_store_io_backend(b->st)), ts_kernel_name());
}

int cmd_bench_cache(int argc, char **argv)
{
	static const struct option lo[] = {
		{"trace", required_argument, NULL, 't'},   {"budget", required_argument, NULL, 'b'},
		{"policy", required_argument, NULL, 'p'},  {"json", no_argument, NULL, 'j'},
		{"generate", required_argument, NULL, 'g'}, {"requests", required_argument, NULL, 'n'},
		{"rows", required_argument, NULL, 'r'},    {"alpha", required_argument, NULL, 'a'},
		{"hot", required_argument, NULL, 'H'},     {"hot-share", required_argument, NULL, 'S'},
		{"seed", required_argument, NULL, 's'},
		{"threads", required_argument, NULL, 'T'},
		{NULL, 0, NULL, 0}};
	const char *trace = NULL, *gen = NULL, *outp = NULL;
	int64_t budget = -1;
	ts_cache_policy policy = TS_CACHE_POLICY_TIERED;
	int json = 0, c, status = CLI_FAIL;
	uint64_t nreq = 20000, rows = 0, hot = 0, seed = 1, threads = 0;
	double alpha = 1.0, hot_share = 0.5;
	bench b = {0};
	cli_opts co;

	cli_opts_init(&co, CMD, usage, 0, "o:", lo, argc, argv);
	while ((c = cli_opts_next(&co)) > 0) {
		char *end;
		switch (c) {
		case 't': trace = optarg; break;
		case 'g': gen = optarg; break;
		case 'o': outp = optarg; break;
		case 'j': json = 1; break;
		case 'b':
			if (parse_bytes(optarg, &budget))
				return cli_usage_error(CMD, "bad --budget '%s'", optarg);
			break;
		case 'p':
			if (ts_cache_policy_parse(&policy, optarg) || policy == TS_CACHE_POLICY_DEFAULT)
				return cli_usage_error(CMD, "bad --policy '%s' (tiered, decoded-lru, "
							    "decoded-only)", optarg);
			break;
		case 'n':
			if (parse_u64(optarg, &nreq) || nreq == 0)
				return cli_usage_error(CMD, "bad --requests '%s'", optarg);
			break;
		case 'r':
			if (parse_u64(optarg, &rows) || rows == 0)
				return cli_usage_error(CMD, "bad --rows '%s'", optarg);
			break;
		case 'H':
			if (parse_u64(optarg, &hot) || hot == 0)
				return cli_usage_error(CMD, "bad --hot '%s'", optarg);
			break;
		case 'T':
			if (parse_u64(optarg, &threads) || threads > 1024)
				return cli_usage_error(CMD, "bad --threads '%s'", optarg);
			break;
		case 's':
			if (parse_u64(optarg, &seed))
				return cli_usage_error(CMD, "bad --seed '%s'", optarg);
			break;
		case 'a':
			alpha = strtod(optarg, &end);
			if (*end || !(alpha > 0 && alpha < 10))
				return cli_usage_error(CMD, "bad --alpha '%s'", optarg);
			break;
		case 'S':
			hot_share = strtod(optarg, &end);
			if (*end || !(hot_share > 0 && hot_share < 1))
				return cli_usage_error(CMD, "bad --hot-share '%s' (between 0 and 1)",
						       optarg);
			break;
		}
	}
	if (c < 0)
		return co.status;
	if (co.operand + 1 != argc)
		return cli_usage_error(CMD, "expected one STORE");
	if (!trace == !gen)
		return cli_usage_error(CMD, "give either --trace FILE or --generate KIND");
	if (gen && strcmp(gen, "zipf") && strcmp(gen, "sweep-hot") && strcmp(gen, "scan"))
		return cli_usage_error(CMD, "unknown trace kind '%s' (zipf, sweep-hot, scan)", gen);
	if (trace && budget < 0)
		return cli_usage_error(CMD, "--budget BYTES is required with --trace");

	if (cli_open_store(CMD, &b.st, argv[co.operand], 0, (int)threads))
		return CLI_USAGE;
	if (load_tensors(&b))
		goto out;
	if (gen) {
		FILE *f = outp ? fopen(outp, "w") : stdout;
		if (!f) {
			cli_error(CMD, outp, "cannot create the trace: %s", strerror(errno));
			goto out;
		}
		int rc = generate(&b, gen, nreq, rows, alpha, hot, hot_share, budget, seed, f);
		if (f != stdout && fclose(f) && !rc) {
			cli_error(CMD, outp, "cannot write the trace: %s", strerror(errno));
			rc = -1;
		}
		status = rc ? CLI_FAIL : CLI_OK;
		goto out;
	}
	if (load_trace(&b, trace))
		goto out;
	result r;
	if (replay(&b, policy, budget, &r))
		goto out;
	if (policy != TS_CACHE_POLICY_TIERED) {
		belady_access *acc;
		size_t n;
		if (trace_accesses(&b, &acc, &n) ||
		    belady_hit_ratio(acc, n, (uint64_t)budget, &r.opt_hit_ratio)) {
			cli_error(CMD, NULL, "out of memory computing the optimum");
			goto out;
		}
		free(acc);
		r.have_opt = 1;
	}
	print_result(&b, &r, policy, budget, json);
	status = CLI_OK;
out:
	free_bench(&b);
	ts_store_close(b.st);
	return status;
}
