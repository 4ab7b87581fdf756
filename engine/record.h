/*
 * The tensor record: encoding, decoding and lookup in the tensors database (engine/record.c).
 */
#ifndef TS_ENGINE_RECORD_H
#define TS_ENGINE_RECORD_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/format.h"
#include "engine/handle.h"

/** Upper bound of an encoded record. */
#define TS_RECORD_MAX 512

/** Encode @p rec field by field, little-endian, with a trailing XXH3-64. Returns bytes written. */
size_t ts__tensor_rec_encode(const ts__tensor_rec *rec, uint8_t *buf, size_t cap);

/** Decode and validate (magic, version, checksum, geometry consistent with shape and codec).
 *  TS_ECORRUPT with detail on any inconsistency. Never trusts a length or count unchecked. */
int ts__tensor_rec_decode(ts__tensor_rec *rec, const void *buf, size_t len);

/**
 * What the tensors database stores: the record of ts__tensor_rec_encode() with its trailing
 * checksum XORed with XXH3-64 of the tensor's name (the key it is stored under, @p name_len
 * bytes), so that a record reached under another name — a damaged key in an LMDB leaf or branch
 * page — fails its checksum instead of serving one tensor's data under another's name.
 * ts__tensor_rec_decode_named() undoes the binding (on a copy) and decodes.
 */
size_t ts__tensor_rec_encode_named(const ts__tensor_rec *rec, const char *name, size_t name_len,
				   uint8_t *buf, size_t cap);
int ts__tensor_rec_decode_named(ts__tensor_rec *rec, const char *name, size_t name_len,
				const void *buf, size_t len);

/** Look up tensor @p name in @p txn. 0; TS_ENOTFOUND; TS_ECORRUPT (names the tensor). */
int ts__tensor_lookup(ts_store *st, MDB_txn *txn, const char *name, ts__tensor_rec *out);

/** Whether tensor @p name may be written in @p txn: 0 if no tensor has that name or @p replace;
 *  TS_EEXIST (the message names it) if one has and not @p replace; else LMDB's error. */
int ts__tensor_may_write(ts_store *st, MDB_txn *txn, const char *name, int replace);

/** Fill a public ts_tensor_info from a record. */
void ts__tensor_rec_to_info(const ts__tensor_rec *rec, ts_tensor_info *out);

/** The element count of a shape, or UINT64_MAX if it overflows or exceeds TS_MAX_ELEMENTS. */
uint64_t ts__shape_elements(int ndim, const uint64_t *shape);

#endif
