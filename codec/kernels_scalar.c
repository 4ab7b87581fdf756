/*
 * The portable reference kernel table: every entry is the plain C implementation in the codec's
 * own file. Vector tables (codec/kernels_avx2.c) must reproduce these bytes exactly.
 *
 * Invariants
 *   1. Every slot is filled: codec/codec.c falls back to this table for any slot another table
 *      leaves NULL.
 */
#include "config.h"

#include "codec/checksum.h"
#include "codec/codecs.h"
#include "codec/lossless.h"

static const ts__kernels scalar_table = {
	.name = "scalar",
	.decode = {
		[TS_CODEC_NVFP4] = {ts__nvfp4_decode_f32_scalar, ts__nvfp4_decode_bf16_scalar,
				    ts__nvfp4_decode_f16_scalar},
		[TS_CODEC_MXFP4] = {ts__mxfp4_decode_f32_scalar, ts__mxfp4_decode_bf16_scalar,
				    ts__mxfp4_decode_f16_scalar},
		[TS_CODEC_INT8] = {ts__int8_decode_f32_scalar, ts__int8_decode_bf16_scalar,
				   ts__int8_decode_f16_scalar},
		[TS_CODEC_FP8] = {ts__fp8_decode_f32_scalar, ts__fp8_decode_bf16_scalar,
				  ts__fp8_decode_f16_scalar},
	},
	.convert = {
		[TS_F32] = {ts__conv_f32_to_f32_scalar, ts__conv_f32_to_bf16_scalar,
			    ts__conv_f32_to_f16_scalar},
		[TS_BF16] = {ts__conv_bf16_to_f32_scalar, ts__conv_b16_copy_scalar,
			     ts__conv_bf16_to_f16_scalar},
		[TS_F16] = {ts__conv_f16_to_f32_scalar, ts__conv_f16_to_bf16_scalar,
			    ts__conv_b16_copy_scalar},
	},
	.nvfp4_encode_nvidia = ts__nvfp4_encode_nvidia_scalar,
	.mxfp4_encode = ts__mxfp4_encode_scalar,
	.decode_int8_asym = {ts__int8_asym_decode_f32_scalar, ts__int8_asym_decode_bf16_scalar,
			     ts__int8_asym_decode_f16_scalar},
	.lossless_join16 = ts__lossless_join16_scalar,
	.lossless_join32 = ts__lossless_join32_scalar,
	.checksum_xxh3 = ts__checksum_xxh3_scalar,
	.stats = ts__stats_scalar,
};

const ts__kernels *ts__kernels_scalar(void)
{
	return &scalar_table;
}
