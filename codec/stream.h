/*
 * The streaming encoder's private interface (codec/stream.c): what the tests observe beyond the
 * public API.
 */
#ifndef TS_CODEC_STREAM_H
#define TS_CODEC_STREAM_H

#include <stddef.h>

#include "tstore.h"

/** Bytes the stream allocated at ts_stream_new(); fixed for its whole life. */
size_t ts__stream_footprint(const ts_stream *s);

#endif
