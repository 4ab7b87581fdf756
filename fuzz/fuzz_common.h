/*
 * Helpers shared by the engine fuzz targets: a byte reader over the fuzz input and a valid
 * tensor record built from a few input bytes, so that mutations start from something the
 * decoders accept and reach their deep checks.
 */
#ifndef TS_FUZZ_COMMON_H
#define TS_FUZZ_COMMON_H

#include <stdint.h>
#include <string.h>

#include "engine/format.h"
#include "engine/geometry.h"
#include "engine/page.h"
#include "engine/record.h"

typedef struct fz {
	const uint8_t *p;
	size_t n, i;
} fz;

static inline unsigned fz_u8(fz *f)
{
	return f->i < f->n ? f->p[f->i++] : 0;
}

static inline uint32_t fz_u16(fz *f)
{
	return fz_u8(f) | fz_u8(f) << 8;
}

/* A valid record for a small tensor: codec, dtype, shape (1..4 dims) and page size from input. */
static inline int fz_record(fz *f, ts__tensor_rec *rec)
{
	static const uint64_t page_sizes[] = {4080, 8176, 65520, 0};
	memset(rec, 0, sizeof *rec);
	ts_codec codec = (ts_codec)(fz_u8(f) % TS_CODEC_COUNT);
	rec->codec = ts_codec_config_default(codec);
	rec->source_dtype = (ts_dtype)(fz_u8(f) % 3); /* F32, BF16, F16 */
	if (codec == TS_CODEC_RAW) {
		rec->codec.raw_dtype = rec->source_dtype;
		rec->codec.bits_per_value = 8 * (int)ts_dtype_size(rec->source_dtype);
	}
	if (codec == TS_CODEC_INT8) {
		unsigned b = fz_u8(f);
		rec->codec.block_size = 16 << (b % 5);
		rec->codec.symmetric = (int)(b >> 7);
	}
	rec->ndim = 1 + (int)(fz_u8(f) % 4);
	rec->rows = 1;
	for (int i = 0; i < rec->ndim; i++) {
		rec->shape[i] = 1 + fz_u16(f) % (i + 1 == rec->ndim ? 2048 : 64);
		if (i + 1 < rec->ndim)
			rec->rows *= rec->shape[i];
	}
	rec->cols = rec->shape[rec->ndim - 1];
	if (rec->rows * rec->cols > (1u << 20))
		return -1;
	rec->id = 1 + fz_u8(f);
	rec->amax = 3.0f;
	rec->tensor_scale = ts_codec_tensor_scale(&rec->codec, rec->amax);
	{
		uint8_t g = fz_u8(f); /* page size, and whether the tiles span whole rows */
		if (ts__geometry_plan(rec, page_sizes[g % 4], (g >> 2) & 1) < 0)
			return -1;
	}
	return 0;
}

#endif
