/*
 * libFuzzer target: the page verifier and decoder, as the reader uses them: a valid record is
 * built from input bytes; a page of it is sealed with an input-chosen payload, then changed at
 * input-chosen offsets (header fields included), resized, and — in half the cases — given a
 * correct checksum again; ts__page_verify() judges it, and a page it accepts must decode with
 * ts_codec_decode() into a buffer of exactly the page's rectangle. A verified page that fails to
 * decode, or a decode that touches memory outside the page or the rectangle, is a finding.
 */
#include <stdlib.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz f = {data, size, 0};
	ts__tensor_rec rec;
	if (fz_record(&f, &rec) < 0 || rec.page_count == 0)
		return 0;
	uint64_t page = fz_u16(&f) % rec.page_count;
	uint64_t r0, nr, c0, nc;
	ts__geometry_page_rect(&rec, page, &r0, &nr, &c0, &nc);
	size_t plen = ts_codec_encoded_size(&rec.codec, nr, nc);
	size_t cap = TS_PAGE_HEADER_SIZE + plen + 64;
	uint8_t *buf = calloc(1, cap);
	for (size_t i = 0; i < plen; i++)
		buf[TS_PAGE_HEADER_SIZE + i] = f.n ? f.p[(f.i + i) % f.n] : 0;
	ts__page_hdr h = {(unsigned)rec.codec.codec, (uint32_t)nr, (uint32_t)nc, (uint32_t)plen,
			  rec.id, page, 0};
	ts__page_seal(buf, &h);
	size_t len = TS_PAGE_HEADER_SIZE + plen;
	unsigned fix = fz_u8(&f) & 1;
	while (f.i + 1 < f.n) {
		unsigned o = fz_u8(&f), x = fz_u8(&f);
		if (o == 0xFF) /* resize */
			len = x & 0x80 ? len + (x & 63) : (len > (x & 63) ? len - (x & 63) : 0);
		if (len > cap)
			len = cap;
		else if (o < 0x40)
			buf[o % TS_PAGE_HEADER_SIZE] ^= (uint8_t)x; /* the header */
		else if (len > TS_PAGE_HEADER_SIZE)
			buf[TS_PAGE_HEADER_SIZE + (o * 131u + x) % (len - TS_PAGE_HEADER_SIZE)] ^= (uint8_t)x;
	}
	if (fix && len >= TS_PAGE_HEADER_SIZE) {
		XXH3_state_t s;
		XXH3_64bits_reset(&s);
		XXH3_64bits_update(&s, buf, 32);
		XXH3_64bits_update(&s, buf + TS_PAGE_HEADER_SIZE, len - TS_PAGE_HEADER_SIZE);
		uint64_t sum = XXH3_64bits_digest(&s);
		for (int i = 0; i < 8; i++)
			buf[32 + i] = (uint8_t)(sum >> (8 * i));
	}
	uint8_t *exact = malloc(len ? len : 1);
	memcpy(exact, buf, len);
	free(buf);
	if (ts__page_verify(exact, len, &rec, "fuzz", page) == 0) {
		float *dst = malloc(nr * nc * sizeof *dst);
		int rc = ts_codec_decode(&rec.codec, rec.tensor_scale, exact + TS_PAGE_HEADER_SIZE,
					 len - TS_PAGE_HEADER_SIZE, nr, nc, TS_F32, dst, nc);
		if (rc)
			abort(); /* verified but undecodable */
		free(dst);
	}
	free(exact);
	return 0;
}
