/*
 * tsdigest: one line per tensor of a store — name, shape, codec and a 64-bit FNV-1a digest of
 * its whole contents read back through ts_read_slice() (as F32, or as its own dtype for raw
 * tensors) — in name order. Two stores hold the same data iff their digests are equal; the crash
 * and hostile-input suites compare digests before and after. A tensor that cannot be read prints
 * "ERROR <code>" in place of its digest and makes the exit status 1.
 *   tsdigest STORE
 * Uses the public API only. Reads in row bands of at most 16 MiB.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tstore.h"

typedef struct ctx {
	ts_store *st;
	int bad;
} ctx;

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int digest_one(ctx *c, const char *name, const ts_tensor_info *info, uint64_t *out)
{
	ts_dtype dt = info->codec.codec == TS_CODEC_RAW ? info->codec.raw_dtype : TS_F32;
	size_t es = ts_dtype_size(dt);
	uint64_t start[TS_MAX_DIMS] = {0}, count[TS_MAX_DIMS];
	uint64_t inner = 1, lead = 1;
	int nd = info->ndim;
	for (int i = 0; i < nd; i++)
		count[i] = info->shape[i];
	for (int i = 1; i < nd; i++)
		inner *= info->shape[i];
	if (nd > 0)
		lead = info->shape[0];
	uint64_t h = 0xcbf29ce484222325ull;
	if (nd > 0 && (lead == 0 || inner == 0)) {
		*out = h;
		return 0;
	}
	uint64_t band = (16u << 20) / (inner * es);
	if (band < 1)
		band = 1;
	uint64_t maxrows = nd > 0 ? (band < lead ? band : lead) : 1;
	size_t cap = (size_t)(maxrows * inner * es);
	uint8_t *buf = malloc(cap ? cap : 1);
	if (!buf)
		return TS_ENOMEM;
	int rc = 0;
	for (uint64_t r = 0; r < lead; r += maxrows) {
		uint64_t n = lead - r < maxrows ? lead - r : maxrows;
		if (nd > 0) {
			start[0] = r;
			count[0] = n;
		}
		size_t bytes = (size_t)(n * inner * es);
		rc = ts_read_slice(c->st, name, nd, start, count, dt, buf, bytes);
		if (rc)
			break;
		h = fnv(h, buf, bytes);
	}
	free(buf);
	*out = h;
	return rc;
}

static int each(void *ud, const char *name, const ts_tensor_info *info)
{
	ctx *c = ud;
	uint64_t h = 0;
	printf("%s\t", name);
	for (int i = 0; i < info->ndim; i++)
		printf("%s%" PRIu64, i ? "x" : "", info->shape[i]);
	printf("\t%s", ts_codec_name(info->codec.codec));
	int rc = digest_one(c, name, info, &h);
	if (rc) {
		printf("\tERROR %s\n", ts_errname(rc));
		fprintf(stderr, "tsdigest: %s: %s\n", name, ts_error_last());
		c->bad = 1;
	} else {
		printf("\t%016" PRIx64 "\n", h);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: tsdigest STORE\n");
		return 2;
	}
	ctx c = {0};
	int rc = ts_store_open(&c.st, argv[1], NULL);
	if (rc) {
		fprintf(stderr, "tsdigest: %s: %s (%s)\n", argv[1], ts_strerror(rc), ts_error_last());
		return 2;
	}
	rc = ts_tensor_foreach(c.st, each, &c);
	if (rc) {
		fprintf(stderr, "tsdigest: %s: listing: %s (%s)\n", argv[1], ts_strerror(rc),
			ts_error_last());
		c.bad = 1;
	}
	ts_store_close(c.st);
	return c.bad ? 1 : 0;
}
