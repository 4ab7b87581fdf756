/*
 * libFuzzer target: the RANGE parser of `tstore slice` (tools/cli/range.c).
 * Input: byte 0 gives ndim (mod TS_MAX_DIMS + 1), then ndim dimensions of 1 byte each chosen
 * among small, edge and huge sizes, then the RANGE text. On success the parser's invariant 2 must
 * hold: start + count <= shape (without overflow) and count >= 1 in every dimension.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t dim_of(uint8_t b)
{
	static const uint64_t edge[] = {0, 1, 2, 3, 15, 16, 17, 4096, UINT32_MAX,
					(uint64_t)1 << 62, INT64_MAX, (uint64_t)INT64_MAX + 1,
					UINT64_MAX - 1, UINT64_MAX};
	if (b < sizeof edge / sizeof edge[0])
		return edge[b];
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int ndim = data[0] % (TS_MAX_DIMS + 2) - 1; /* -1 .. TS_MAX_DIMS: -1 must be refused */
	size_t off = 1;
	uint64_t shape[TS_MAX_DIMS] = {0};
	for (int i = 0; i < ndim; i++) {
		if (off >= size)
			return 0;
		shape[i] = dim_of(data[off++]);
	}
	char *text = malloc(size - off + 1);
	if (!text)
		return 0;
	memcpy(text, data + off, size - off);
	text[size - off] = '\0';
	uint64_t start[TS_MAX_DIMS], count[TS_MAX_DIMS];
	uint32_t sq = 0;
	char err[256];
	err[0] = '\0';
	int rc = range_parse(text, ndim, shape, start, count, &sq, err, sizeof err);
	if (rc == 0) {
		if (ndim < 0)
			abort();
		for (int i = 0; i < ndim; i++) {
			if (count[i] < 1 || start[i] > shape[i] || count[i] > shape[i] - start[i])
				abort();
			if ((sq >> i & 1) && count[i] != 1)
				abort();
		}
	} else if (rc != -1 || !err[0]) {
		abort();
	}
	free(text);
	return 0;
}
