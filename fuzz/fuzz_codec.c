/*
 * libFuzzer target: the codec decoders (ts_codec_decode) on arbitrary payloads, for every codec
 * and output dtype, with the scalar and the SIMD kernel table (TSTORE_KERNEL is read once per
 * process, so the SIMD path is what runs here; make check runs the replay both ways).
 * Input: 8 bytes of parameters, then the payload. The payload buffer is exactly the input's
 * size, so ASan catches any read past it; the output buffer is exactly rows x cols elements.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	ts_codec codec = (ts_codec)(data[0] % (TS_CODEC_COUNT + 1)); /* one past: invalid */
	ts_codec_config cfg = ts_codec_config_default(codec < TS_CODEC_COUNT ? codec : TS_CODEC_RAW);
	cfg.codec = codec;
	if (codec == TS_CODEC_INT8) {
		cfg.block_size = 16 << (data[1] & 7); /* 16 .. 2048, and 4096 below */
		if ((data[1] & 0x38) == 0x38)
			cfg.block_size = 4096;
		cfg.symmetric = data[1] >> 7;
	}
	if (codec == TS_CODEC_RAW || codec == TS_CODEC_LOSSLESS) {
		cfg.raw_dtype = (ts_dtype)(data[1] % (TS_DTYPE_COUNT + 1));
		cfg.bits_per_value = 8 * (int)ts_dtype_size(cfg.raw_dtype);
	}
	uint64_t rows = 1 + data[2] % 48, cols = 1 + (data[3] | (uint64_t)(data[4] & 15) << 8);
	ts_dtype out = (ts_dtype)(data[5] % 4); /* F32, BF16, F16, F64 (refused for lossy) */
	if ((codec == TS_CODEC_RAW || codec == TS_CODEC_LOSSLESS) && (data[5] & 0x80))
		out = cfg.raw_dtype;
	static const float scales[8] = {1.0f, 0.5f, 1e-30f, 3e38f, 0.0f, -2.0f, NAN, INFINITY};
	float scale = scales[data[6] & 7];
	uint64_t stride = cols + (data[7] & 3);
	const uint8_t *payload = data + 8;
	size_t plen = size - 8;
	uint8_t *src = malloc(plen ? plen : 1);
	memcpy(src, payload, plen);
	size_t es = ts_dtype_size(out);
	size_t dst_bytes = es ? (size_t)((rows - 1) * stride + cols) * es : 1;
	uint8_t *dst = malloc(dst_bytes);
	int rc = ts_codec_decode(&cfg, scale, src, plen, rows, cols, out, dst, stride);
	size_t need = ts_codec_encoded_size(&cfg, rows, cols);
	if (rc == 0 && need > plen && codec != TS_CODEC_LOSSLESS)
		abort(); /* decoded from fewer bytes than the format needs (lossless: its most) */
	if (rc == 0 && es) {
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < dst_bytes; i += 64)
			sink ^= dst[i]; /* MSan-style touch; ASan checks bounds */
		(void)sink;
	}
	free(dst);
	free(src);
	return 0;
}
