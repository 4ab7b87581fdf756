/*
 * tstore inspect: describe a store's tensors (codec, pages, size, ratio, error, distribution)
 * and the store (totals, file size, I/O backend and kernels in effect).
 *
 * Invariants
 *   1. --json output is one object whose schema (docs/CLI.md, "inspect --json") is stable:
 *      fields are only ever added, never renamed or removed; "schema" is 1.
 *   2. Non-finite figures (SQNR of an exact codec) are printed as "exact" in text and as null
 *      in JSON.
 */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/json.h"
#include "tools/cli/progress.h"

#define CMD "inspect"

typedef struct ctx {
	int json;
	json_writer w;
	uint64_t files, file_bytes; /* attachments */
	uint64_t n, source_bytes, stored_bytes, pages;
	double worst;
	char worst_name[TS_MAX_NAME + 1];
} ctx;

static void usage(FILE *f)
{
	fprintf(f, "usage: tstore inspect [--json] STORE [NAME...]\n"
		   "Describe the tensors of STORE (all, or the NAMEs given): shape, source dtype,\n"
		   "codec and configuration, pages, stored bytes, ratio, error (relative RMS %%, max\n"
		   "abs, SQNR), distribution statistics; then the files attached to STORE (by\n"
		   "'import STORE DIR') with their sizes; then store totals, the file size, and the\n"
		   "I/O backend and kernels in effect.\n\n"
		   "  --json   one JSON object (schema 1, documented in docs/CLI.md)\n"
		   "  -q       print only errors\n"
		   "  --help   this text\n");
}

static void json_tensor(ctx *c, const char *name, const ts_tensor_info *in)
{
	json_writer *w = &c->w;
	jw_object_begin(w);
	jw_key(w, "name");
	jw_string(w, name);
	jw_key(w, "shape");
	jw_array_begin_inline(w);
	for (int d = 0; d < in->ndim; d++)
		jw_uint(w, in->shape[d]);
	jw_array_end(w);
	jw_key(w, "source_dtype");
	jw_string(w, ts_dtype_name(in->source_dtype));
	jw_key(w, "codec");
	jw_object_begin(w);
	jw_key(w, "name");
	jw_string(w, ts_codec_name(in->codec.codec));
	jw_key(w, "block_size");
	jw_int(w, in->codec.block_size);
	jw_key(w, "bits_per_value");
	jw_int(w, in->codec.bits_per_value);
	jw_key(w, "symmetric");
	jw_bool(w, in->codec.symmetric);
	jw_key(w, "recipe");
	if (in->codec.codec == TS_CODEC_NVFP4)
		jw_string(w, in->codec.recipe == TS_RECIPE_BEST ? "best" : "nvidia");
	else
		jw_null(w);
	jw_key(w, "raw_dtype");
	if (in->codec.codec == TS_CODEC_RAW || in->codec.codec == TS_CODEC_LOSSLESS)
		jw_string(w, ts_dtype_name(in->codec.raw_dtype));
	else
		jw_null(w);
	jw_object_end(w);
	jw_key(w, "amax");
	jw_double(w, in->amax);
	jw_key(w, "tensor_scale");
	jw_double(w, in->tensor_scale);
	jw_key(w, "tile");
	jw_array_begin_inline(w);
	jw_uint(w, in->tile_rows);
	jw_uint(w, in->tile_cols);
	jw_array_end(w);
	jw_key(w, "pages");
	jw_uint(w, in->page_count);
	jw_key(w, "source_bytes");
	jw_uint(w, in->source_bytes);
	jw_key(w, "stored_bytes");
	jw_uint(w, in->stored_bytes);
	jw_key(w, "ratio");
	jw_double(w, in->stored_bytes ? (double)in->source_bytes / (double)in->stored_bytes : 0);
	jw_key(w, "error");
	jw_object_begin(w);
	jw_key(w, "rel_rms_pct");
	jw_double(w, in->error.rel_rms_pct);
	jw_key(w, "max_abs");
	jw_double(w, in->error.max_error);
	jw_key(w, "mean_abs");
	jw_double(w, in->error.mean_error);
	jw_key(w, "sqnr_db");
	jw_double(w, in->error.sqnr_db);
	jw_object_end(w);
	jw_key(w, "distribution");
	jw_object_begin(w);
	jw_key(w, "count");
	jw_uint(w, in->dist.count);
	jw_key(w, "mean");
	jw_double(w, in->dist.mean);
	jw_key(w, "std");
	jw_double(w, in->dist.std);
	jw_key(w, "min");
	jw_double(w, in->dist.min_val);
	jw_key(w, "max");
	jw_double(w, in->dist.max_val);
	jw_key(w, "dynamic_range_bits");
	jw_double(w, in->dist.dynamic_range);
	jw_key(w, "sparsity");
	jw_double(w, in->dist.sparsity);
	jw_key(w, "nonfinite");
	jw_uint(w, in->dist.nonfinite);
	jw_object_end(w);
	jw_object_end(w);
}

static void text_tensor(const char *name, const ts_tensor_info *in)
{
	char sh[160], cd[96], a[32], b[32], sq[32];
	printf("%s  %s %s -> %s\n", name, cli_shape(sh, sizeof sh, in->ndim, in->shape),
	       ts_dtype_name(in->source_dtype), cli_codec_desc(cd, sizeof cd, &in->codec));
	if (isfinite(in->error.sqnr_db))
		snprintf(sq, sizeof sq, "%.1f dB", in->error.sqnr_db);
	else
		snprintf(sq, sizeof sq, "exact");
	printf("    %llu pages of %llux%llu, %s stored of %s (%.2fx); error %.3f%% rms, max abs %.3g, "
	       "SQNR %s\n",
	       (unsigned long long)in->page_count, (unsigned long long)in->tile_rows,
	       (unsigned long long)in->tile_cols, progress_size(a, sizeof a, (double)in->stored_bytes),
	       progress_size(b, sizeof b, (double)in->source_bytes),
	       in->stored_bytes ? (double)in->source_bytes / (double)in->stored_bytes : 0.0,
	       in->error.rel_rms_pct, in->error.max_error, sq);
	printf("    mean %.4g std %.4g min %.4g max %.4g, dynamic range %.1f bits, sparsity %.2f%%%s",
	       in->dist.mean, in->dist.std, in->dist.min_val, in->dist.max_val,
	       in->dist.dynamic_range, 100.0 * in->dist.sparsity,
	       in->dist.nonfinite ? "" : "\n");
	if (in->dist.nonfinite)
		printf(", %llu NaN/Inf\n", (unsigned long long)in->dist.nonfinite);
}

static int each(void *ud, const char *name, const ts_tensor_info *in)
{
	ctx *c = ud;
	c->n++;
	c->source_bytes += in->source_bytes;
	c->stored_bytes += in->stored_bytes;
	c->pages += in->page_count;
	if (in->codec.codec != TS_CODEC_RAW && in->error.rel_rms_pct > c->worst) {
		c->worst = in->error.rel_rms_pct;
		snprintf(c->worst_name, sizeof c->worst_name, "%s", name);
	}
	if (c->json)
		json_tensor(c, name, in);
	else if (!cli_quiet)
		text_tensor(name, in);
	return 0;
}

/* An attachment (a file of a model directory): its name and size. */
static int each_file(void *ud, const char *name, uint64_t size)
{
	ctx *c = ud;
	char a[32];
	c->files++;
	c->file_bytes += size;
	if (c->json) {
		jw_object_begin(&c->w);
		jw_key(&c->w, "name");
		jw_string(&c->w, name);
		jw_key(&c->w, "bytes");
		jw_uint(&c->w, size);
		jw_object_end(&c->w);
	} else if (!cli_quiet) {
		printf("file %s  %s\n", name, progress_size(a, sizeof a, (double)size));
	}
	return 0;
}

int cmd_inspect(int argc, char **argv)
{
	ctx c;
	int ch, status = CLI_FAIL;
	static const struct option lo[] = {{"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
	cli_opts o;
	memset(&c, 0, sizeof c);
	cli_opts_init(&o, CMD, usage, 0, NULL, lo, argc, argv);
	while ((ch = cli_opts_next(&o)) > 0)
		if (ch == 'j')
			c.json = 1;
	if (ch < 0)
		return o.status;
	if (argc - o.operand < 1)
		return cli_usage_error(CMD, "need STORE");
	const char *path = argv[o.operand];
	ts_store *st = NULL;
	if (cli_open_store(CMD, &st, path, 0, 0) < 0)
		return CLI_USAGE;
	/* Check the names first so that JSON output is never cut short by a missing name. */
	for (int i = o.operand + 1; i < argc; i++) {
		ts_tensor_info in;
		int rc = ts_tensor_info_get(&in, st, argv[i]);
		if (rc < 0) {
			cli_error_ts(CMD, rc, "tensor '%s'", argv[i]);
			goto out;
		}
	}
	struct stat sb;
	uint64_t file_bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	if (c.json) {
		jw_init(&c.w, stdout, 2);
		jw_object_begin(&c.w);
		jw_key(&c.w, "schema");
		jw_int(&c.w, 1);
		jw_key(&c.w, "store");
		jw_string(&c.w, path);
		jw_key(&c.w, "version");
		jw_string(&c.w, ts_version());
		jw_key(&c.w, "io_backend");
		jw_string(&c.w, ts_io_backend_name(ts_store_io_backend(st)));
		jw_key(&c.w, "kernel");
		jw_string(&c.w, ts_kernel_name());
		jw_key(&c.w, "tensors");
		jw_array_begin(&c.w);
	}
	int rc = 0;
	if (argc - o.operand > 1) {
		for (int i = o.operand + 1; i < argc && rc == 0; i++) {
			ts_tensor_info in;
			rc = ts_tensor_info_get(&in, st, argv[i]);
			if (rc == 0)
				each(&c, argv[i], &in);
		}
	} else {
		rc = ts_tensor_foreach(st, each, &c);
	}
	if (c.json && rc == 0) {
		jw_array_end(&c.w);
		jw_key(&c.w, "attachments");
		jw_array_begin(&c.w);
	}
	if (rc == 0 && argc - o.operand == 1) {
		rc = ts_attachment_foreach(st, each_file, &c);
		if (rc < 0 && c.json) {
			jw_array_end(&c.w);
			jw_object_end(&c.w);
			jw_finish(&c.w);
		}
		if (rc < 0) {
			cli_error_ts(CMD, rc, "cannot list the files of %s", path);
			goto out;
		}
	}
	if (rc < 0) {
		if (c.json) {
			jw_array_end(&c.w);
			jw_object_end(&c.w);
			jw_finish(&c.w);
		}
		cli_error_ts(CMD, rc, "cannot list the tensors of %s", path);
		goto out;
	}
	double ratio = c.stored_bytes ? (double)c.source_bytes / (double)c.stored_bytes : 0;
	if (c.json) {
		jw_array_end(&c.w);
		jw_key(&c.w, "totals");
		jw_object_begin(&c.w);
		jw_key(&c.w, "tensors");
		jw_uint(&c.w, c.n);
		jw_key(&c.w, "pages");
		jw_uint(&c.w, c.pages);
		jw_key(&c.w, "source_bytes");
		jw_uint(&c.w, c.source_bytes);
		jw_key(&c.w, "stored_bytes");
		jw_uint(&c.w, c.stored_bytes);
		jw_key(&c.w, "ratio");
		jw_double(&c.w, ratio);
		jw_key(&c.w, "file_bytes");
		jw_uint(&c.w, file_bytes);
		jw_key(&c.w, "worst_rel_rms_pct");
		jw_double(&c.w, c.worst);
		jw_key(&c.w, "attachments");
		jw_uint(&c.w, c.files);
		jw_key(&c.w, "attachment_bytes");
		jw_uint(&c.w, c.file_bytes);
		jw_object_end(&c.w);
		jw_object_end(&c.w);
		jw_finish(&c.w);
	} else if (!cli_quiet) {
		char a[32], b[32], f[32];
		printf("%s: %llu tensors, %llu pages; %s stored of %s source (%.2fx); file %s\n", path,
		       (unsigned long long)c.n, (unsigned long long)c.pages,
		       progress_size(a, sizeof a, (double)c.stored_bytes),
		       progress_size(b, sizeof b, (double)c.source_bytes), ratio,
		       progress_size(f, sizeof f, (double)file_bytes));
		if (c.files)
			printf("%llu files attached (%s)\n", (unsigned long long)c.files,
			       progress_size(a, sizeof a, (double)c.file_bytes));
		if (c.worst > 0)
			printf("worst relative RMS error %.3f%% (%s)\n", c.worst, c.worst_name);
		printf("I/O backend %s, kernels %s, library %s\n",
		       ts_io_backend_name(ts_store_io_backend(st)), ts_kernel_name(), ts_version());
	}
	status = fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
out:
	ts_store_close(st);
	return status;
}
