/*
 * libFuzzer target: the lossless codec both ways. Input: 4 bytes of parameters, then bytes.
 *   1. The bytes as elements of a dtype (F32, BF16, F16, or I32 for the stored path) encode to
 *      at most ts_codec_encoded_size() bytes and decode to exactly the same bits.
 *   2. The bytes as a payload decode to rows x cols elements or fail with TS_ECORRUPT (or
 *      TS_EDTYPE for a conversion it refuses, TS_ESHORTBUF for an empty payload), never reading
 *      outside the payload (exactly sized, so ASan sees any overread) nor writing outside the
 *      output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ts_dtype dtypes[4] = {TS_F32, TS_BF16, TS_F16, TS_I32};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	ts_dtype dt = dtypes[data[0] & 3];
	ts_dtype out = (data[0] & 4) ? dtypes[(data[0] >> 3) & 3] : dt;
	size_t es = ts_dtype_size(dt), n = (size - 4) / es;
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_LOSSLESS);
	cfg.raw_dtype = dt;
	cfg.bits_per_value = (int)(8 * es);
	const uint8_t *in = data + 4;

	/* 1. round trip */
	if (n > 0) {
		uint64_t cols = 1 + data[1] % 64;
		if (cols > n)
			cols = n;
		uint64_t rows = n / cols;
		size_t bound = ts_codec_encoded_size(&cfg, rows, cols), len = 0;
		uint8_t *src = malloc(rows * cols * es), *enc = malloc(bound), *dec = malloc(rows * cols * es);
		memcpy(src, in, rows * cols * es);
		if (ts_codec_encode_len(&len, &cfg, 0, src, dt, cols, rows, cols, enc, bound) != 0 ||
		    len == 0 || len > bound)
			abort();
		if (ts_codec_decode(&cfg, 1, enc, len, rows, cols, dt, dec, cols) != 0 ||
		    memcmp(src, dec, rows * cols * es) != 0)
			abort();
		free(src);
		free(enc);
		free(dec);
	}

	/* 2. arbitrary payload */
	{
		uint64_t rows = 1 + data[2] % 16, cols = 1 + data[3] % 128;
		size_t plen = size - 4, os = ts_dtype_size(out);
		uint8_t *p = malloc(plen ? plen : 1), *dst = malloc(rows * cols * os);
		memcpy(p, in, plen);
		int rc = ts_codec_decode(&cfg, 1, p, plen, rows, cols, out, dst, cols);
		if (rc != 0 && rc != TS_ECORRUPT && rc != TS_EDTYPE &&
		    !(rc == TS_ESHORTBUF && plen == 0))
			abort();
		free(p);
		free(dst);
	}
	return 0;
}
