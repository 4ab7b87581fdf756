/*
 * libFuzzer target: the tensor record decoder (ts__tensor_rec_decode).
 * Mode (first byte % 3): 0 the input as a record; 1 the same with its trailing XXH3-64 made
 * right, so that the fuzzer gets past the checksum; 2 a valid record built from input bytes,
 * encoded, then changed at input-chosen offsets, and its checksum made right.
 * On success the record's invariant 1 must hold (checked here independently): every page
 * rectangle lies inside the 2-D view and fits the page format; and invariant 2: re-encoding gives
 * the same bytes.
 */
#include <stdlib.h>
#include <xxhash.h>

#include "fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fix_sum(uint8_t *b, size_t n)
{
	if (n < 8)
		return;
	uint64_t h = XXH3_64bits(b, n - 8);
	for (int i = 0; i < 8; i++)
		b[n - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void check(const ts__tensor_rec *rec, const uint8_t *buf, size_t len)
{
	uint8_t again[TS_RECORD_MAX];
	size_t n = ts__tensor_rec_encode(rec, again, sizeof again);
	if (n != len || memcmp(again, buf, len))
		abort(); /* decode and encode are not inverses */
	uint64_t rows = 1, cols = 1;
	if (rec->ndim >= 1) {
		cols = rec->shape[rec->ndim - 1];
		for (int i = 0; i + 1 < rec->ndim; i++)
			rows *= rec->shape[i];
	}
	if (rows != rec->rows || cols != rec->cols)
		abort();
	if (rec->page_count == 0)
		return;
	uint64_t probe[4] = {0, rec->page_count / 2, rec->page_count - 1,
			     rec->page_count > 1 ? 1 : 0};
	for (int k = 0; k < 4; k++) {
		uint64_t r0, nr, c0, nc;
		ts__geometry_page_rect(rec, probe[k], &r0, &nr, &c0, &nc);
		if (nr < 1 || nc < 1 || r0 + nr > rec->rows || c0 + nc > rec->cols)
			abort();
		size_t pl = ts_codec_encoded_size(&rec->codec, nr, nc);
		if (pl == 0 || pl + TS_PAGE_HEADER_SIZE > TS_PAGE_BYTES_MAX)
			abort();
	}
	ts_tensor_info info;
	ts__tensor_rec_to_info(rec, &info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0] % 3;
	uint8_t buf[4096];
	size_t len;
	ts__tensor_rec rec;
	if (mode < 2) {
		len = size - 1 < sizeof buf ? size - 1 : sizeof buf;
		memcpy(buf, data + 1, len);
		if (mode == 1)
			fix_sum(buf, len);
	} else {
		fz f = {data, size, 1};
		ts__tensor_rec src;
		if (fz_record(&f, &src) < 0)
			return 0;
		len = ts__tensor_rec_encode(&src, buf, sizeof buf);
		/* (offset, xor) pairs, or (0xFF, n): change the length */
		while (f.i + 1 < f.n) {
			unsigned o = fz_u8(&f), x = fz_u8(&f);
			if (o == 0xFF)
				len = x < len ? len - x % 16 : len;
			else if (len)
				buf[o % len] ^= (uint8_t)x;
		}
		fix_sum(buf, len);
	}
	uint8_t *exact = malloc(len ? len : 1);
	memcpy(exact, buf, len);
	if (ts__tensor_rec_decode(&rec, exact, len) == 0)
		check(&rec, exact, len);
	free(exact);
	return 0;
}
