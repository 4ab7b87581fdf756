/*
 * tstore slice: read a hyperslab of a tensor (RANGE as numpy basic indexing, tools/cli/range.c)
 * and write it as NumPy .npy, or render it as text.
 *
 * Invariants
 *   1. Dimensions given as a single index are dropped from the result's shape, as numpy does.
 *   2. The slice is read in chunks along its first dimension (bounded memory for .npy output).
 *   3. Without -o the slice is rendered as text on stdout, elided like numpy's repr beyond
 *      TEXT_THRESHOLD elements; `-o -` writes .npy to stdout (refused when stdout is a terminal).
 *   4. An -o file is written to a temporary name and renamed when complete.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/npy.h"

#define CMD "slice"
#define CHUNK_BYTES (8u << 20)
#define TEXT_THRESHOLD 1000
#define TEXT_EDGE 3

static void usage(FILE *f)
{
	fprintf(f, "usage: tstore slice [--dtype f32|bf16|f16] [-o OUT.npy|-] STORE NAME [RANGE]\n"
		   "Read a slice of tensor NAME. RANGE is numpy basic indexing, one item per\n"
		   "dimension separated by commas: a:b, a:, :b, : or an index (negative counts from\n"
		   "the end); missing trailing dimensions mean ':'; no RANGE means the whole tensor.\n"
		   "Examples: '0:128,:'  '5,16:32'  '-1'.\n\n"
		   "  --dtype f32|bf16|f16  element type (default f32; integer and bool tensors are\n"
		   "                        read as their own dtype). BF16 .npy files hold the bit\n"
		   "                        patterns as uint16 ('<u2'; view with ml_dtypes.bfloat16).\n"
		   "  -o OUT.npy            write a NumPy .npy file; '-' writes it to stdout\n"
		   "                        without -o: a text rendering on stdout (elided beyond %d\n"
		   "                        elements, like numpy)\n"
		   "  -q                    print only errors\n"
		   "  --help                this text\n",
		   TEXT_THRESHOLD);
}

static int write_all(FILE *f, const void *p, size_t n)
{
	return fwrite(p, 1, n, f) == n ? 0 : -1;
}

int cmd_slice(int argc, char **argv)
{
	int want = -2, c, status = CLI_FAIL;
	const char *out = NULL;
	static const struct option lo[] = {{"dtype", required_argument, 0, 'd'},
					   {"output", required_argument, 0, 'o'},
					   {0, 0, 0, 0}};
	cli_opts o;
	/* A RANGE may start with '-' ("-1", "-5:,:"): an operand, not an option. */
	cli_opts_init(&o, CMD, usage, CLI_OPTS_DASH_OPERANDS, "o:", lo, argc, argv);
	while ((c = cli_opts_next(&o)) > 0) {
		switch (c) {
		case 'd':
			if (cli_parse_out_dtype(optarg, 0, &want) < 0)
				return cli_usage_error(CMD, "--dtype must be f32, bf16 or f16");
			break;
		case 'o':
			out = optarg;
			break;
		}
	}
	if (c < 0)
		return o.status;
	int npos = argc - o.operand;
	char **pos = argv + o.operand;
	if (npos < 2 || npos > 3)
		return cli_usage_error(CMD, "need STORE NAME [RANGE]");
	const char *path = pos[0], *name = pos[1];
	const char *range = npos == 3 ? pos[2] : "";
	if (out && !strcmp(out, "-") && isatty(STDOUT_FILENO))
		return cli_usage_error(CMD, "refusing to write .npy to a terminal (use -o FILE)");

	ts_store *st = NULL;
	ts_tensor_info in;
	uint8_t *buf = NULL;
	FILE *f = NULL;
	char tmp[4200];
	tmp[0] = '\0';
	if (cli_open_store(CMD, &st, path, 0, 0) < 0)
		return CLI_USAGE;
	int rc = ts_tensor_info_get(&in, st, name);
	if (rc < 0) {
		cli_error_ts(CMD, rc, "tensor '%s'", name);
		goto out;
	}
	uint64_t start[TS_MAX_DIMS], count[TS_MAX_DIMS], oshape[TS_MAX_DIMS];
	uint32_t sq;
	char err[256];
	if (range_parse(range, in.ndim, in.shape, start, count, &sq, err, sizeof err) < 0) {
		cli_error(CMD, name, "bad range '%s': %s", range, err);
		status = CLI_USAGE;
		goto out;
	}
	ts_dtype dt;
	if ((in.codec.codec == TS_CODEC_RAW || in.codec.codec == TS_CODEC_LOSSLESS) &&
	    in.codec.raw_dtype != TS_F32 &&
	    in.codec.raw_dtype != TS_BF16 && in.codec.raw_dtype != TS_F16)
		dt = in.codec.raw_dtype; /* integers, bool, F8, F64 */
	else
		dt = want >= 0 ? (ts_dtype)want : TS_F32;
	int ond = 0;
	uint64_t total = 1;
	for (int d = 0; d < in.ndim; d++) {
		total *= count[d];
		if (!(sq & (1u << d)))
			oshape[ond++] = count[d];
	}
	size_t es = ts_dtype_size(dt);
	uint64_t inner = in.ndim ? total / count[0] : 1; /* elements per step of dimension 0 */
	uint64_t step = in.ndim ? CHUNK_BYTES / (inner * es) : 1;
	int text = !out;
	if (text) {
		/* Text renders the whole slice at once; large slices are elided, so read only what
		 * is shown would be an optimisation; a cap keeps memory sane. */
		if (total * es > (256u << 20)) {
			cli_error(CMD, name, "slice of %llu elements is too large to print (use -o)",
				  (unsigned long long)total);
			status = CLI_USAGE;
			goto out;
		}
		step = in.ndim ? count[0] : 1;
	}
	if (step < 1)
		step = 1;
	buf = malloc((size_t)(step * inner * es));
	if (!buf) {
		cli_error(CMD, name, "out of memory");
		goto out;
	}
	if (out && strcmp(out, "-")) {
		f = cli_tmp_create(CMD, tmp, sizeof tmp, out);
		if (!f)
			goto out;
	} else if (out) {
		f = stdout;
	}
	if (f && npy_write_header(f, dt, ond, oshape) < 0) {
		cli_error(CMD, out, "cannot write: %s", strerror(errno));
		goto out;
	}
	uint64_t n0 = in.ndim ? count[0] : 1, s0 = in.ndim ? start[0] : 0;
	for (uint64_t r = 0; r < n0; r += step) {
		uint64_t k = n0 - r < step ? n0 - r : step;
		uint64_t cs[TS_MAX_DIMS], cc[TS_MAX_DIMS];
		memcpy(cs, start, sizeof cs);
		memcpy(cc, count, sizeof cc);
		if (in.ndim) {
			cs[0] = s0 + r;
			cc[0] = k;
		}
		rc = ts_read_slice(st, name, in.ndim, cs, cc, dt, buf, (size_t)(k * inner * es));
		if (rc < 0) {
			cli_error_ts(CMD, rc, "cannot read tensor '%s'", name);
			goto out;
		}
		if (f && write_all(f, buf, (size_t)(k * inner * es)) < 0) {
			cli_error(CMD, out, "write failed: %s", strerror(errno));
			goto out;
		}
	}
	if (text) {
		npy_print(stdout, buf, dt, ond, oshape, total > TEXT_THRESHOLD ? TEXT_EDGE : 0);
	}
	if (f && f != stdout) {
		int e = fclose(f);
		f = NULL;
		if (e != 0 || rename(tmp, out) != 0) {
			cli_error(CMD, out, "write failed: %s", strerror(errno));
			goto out;
		}
		tmp[0] = '\0';
	}
	if (fflush(stdout) != 0) {
		cli_error(CMD, "stdout", "write failed: %s", strerror(errno));
		goto out;
	}
	status = CLI_OK;
out:
	if (f && f != stdout)
		fclose(f);
	if (tmp[0])
		unlink(tmp);
	free(buf);
	ts_store_close(st);
	return status;
}
