/*
 * The codec layer's entry points for the engine beyond the public ts_codec_*() (codec/codec.c).
 */
#ifndef TS_CODEC_CODEC_H
#define TS_CODEC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

/*
 * Decode rows r0 .. r0+nr-1 and columns c0 .. c0+nc-1 of a rows x cols page coded with @p cfg
 * into @p dst (element (r0, c0) first, rows @p dst_stride elements apart): the bytes
 * ts_codec_decode() writes there for the whole page, produced from the blocks the rectangle
 * touches only. ts_codec_decode() is this function for the whole page.
 * @return 0; TS_EINVAL if the rectangle leaves the page or an argument is invalid; TS_ENOTSUP for
 *         a lossless page unless the rectangle is the whole page (its planes decode whole); the
 *         errors of ts_codec_decode().
 */
int ts__codec_decode_rect(const ts_codec_config *cfg, float tensor_scale, const void *src,
			  size_t src_size, uint64_t rows, uint64_t cols, uint64_t r0, uint64_t nr,
			  uint64_t c0, uint64_t nc, ts_dtype dtype, void *dst, uint64_t dst_stride);

#endif
