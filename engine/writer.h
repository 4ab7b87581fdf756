/*
 * The streaming writer (engine/writer.c): what other modules of the engine call besides the
 * public ts_writer_* functions.
 */
#ifndef TS_ENGINE_WRITER_H
#define TS_ENGINE_WRITER_H

#include "tstore.h"

/** ts_writer_begin() without its refusal of names in the reserved namespace (first byte
 *  TS_RESERVED_KEY_BYTE): how engine/attach.c writes an attachment's key. */
int ts__writer_begin(ts_writer **out, ts_store *st, const char *name, ts_dtype src_dtype,
		     int ndim, const uint64_t *shape, const ts_codec_config *cfg,
		     const ts_write_opts *opts);

#endif
