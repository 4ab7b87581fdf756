/*
 * The streaming writer (engine/writer.c): what other modules of the engine call besides the
 * public ts_writer_* functions.
 */
#ifndef TS_ENGINE_WRITER_H
#define TS_ENGINE_WRITER_H

#include "engine/format.h"
#include "tstore.h"

/** ts_writer_begin() without its refusal of names in the reserved namespace (first byte
 *  TS_RESERVED_KEY_BYTE): how engine/attach.c writes an attachment's key. */
int ts__writer_begin(ts_writer **out, ts_store *st, const char *name, ts_dtype src_dtype,
		     int ndim, const uint64_t *shape, const ts_codec_config *cfg,
		     const ts_write_opts *opts);

/** A writer of @p name on @p st that takes the stored pages of the tensor that @p src describes
 *  (from another store), unchanged but for their tensor id: its record (codec, geometry,
 *  statistics) is @p src's with a new id. opts: group and TS_WRITE_REPLACE as for
 *  ts_writer_begin(); other fields ignored. Committed or aborted as any writer. */
int ts__writer_begin_copy(ts_writer **out, ts_store *st, const char *name,
			  const ts__tensor_rec *src, const ts_write_opts *opts);

/** Page @p index (the next one: pages come in index order) with @p payload, @p plen bytes,
 *  as the source stored it (verified by the caller); sealed anew with this writer's tensor id
 *  and committed in batches as ts_writer_append() commits. 0 or a negative TS_E* code. */
int ts__writer_put_page(ts_writer *w, uint64_t index, const uint8_t *payload, size_t plen);

/** Take the store's writer slot for a write that is not a ts_writer's (engine/copy.c's
 *  ts_tensor_copy_many()), as ts_writer_begin() takes it: one writer per handle at a time
 *  (TS_EBUSY); @p group, if not NULL, must be the group open on @p st (TS_EINVAL, naming
 *  @p name) and counts the write among its writers; interrupted writes are recovered first.
 *  0 or a negative TS_E* code; ts__writer_slot_give() ends it. */
int ts__writer_slot_take(ts_store *st, ts_group *group, const char *name);
void ts__writer_slot_give(ts_store *st, ts_group *group);

/** Free the batch buffers a finished writer left to the next one (writer.c invariant 8): at
 *  close, with no writer active. */
void ts__writer_spare_free(ts_store *st);

#endif
