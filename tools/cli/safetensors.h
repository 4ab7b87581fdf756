/*
 * safetensors files: a strict reader of single files and sharded checkpoints, and a writer.
 *
 * File layout: an 8-byte little-endian header length N, N bytes of JSON header (an object
 * mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional
 * "__metadata__" object of string values), then the data buffer; offsets are relative to the
 * start of the data buffer.
 *
 * Invariants (the reader)
 *   1. Nothing is trusted: N must fit in the file and be at most ST_MAX_HEADER; the header is
 *      strict JSON (tools/cli/json.h) whose names are valid UTF-8, non-empty, unique and without
 *      NUL; every dtype is known; every dimension product and byte size is computed with
 *      overflow checks; end - begin equals the element count times the dtype size; tensors
 *      sorted by offset tile the data buffer exactly, with no overlap, no gap and nothing past
 *      its end (the rule of the official safetensors library).
 *   2. A parsed st_file owns its tensors' names; st_tensor.data points into the file's read-only
 *      mapping and lives until st_close().
 *   3. Every error message names the file and, where one applies, the tensor.
 *
 * The writer lays the data out in the order given (callers sort by alignment), pads the header
 * with spaces so that the data buffer starts 8-byte aligned, and writes "__metadata__" first.
 */
#ifndef TS_TOOLS_SAFETENSORS_H
#define TS_TOOLS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tstore.h"

#define ST_MAX_HEADER (100u * 1000u * 1000u) /* the official library's limit */
#define ST_MAX_DIMS TS_MAX_DIMS

typedef struct st_tensor {
	char *name;
	ts_dtype dtype;
	int ndim;
	uint64_t shape[ST_MAX_DIMS];
	uint64_t nelem;
	uint64_t begin, end;  /* offsets in the data buffer */
	const uint8_t *data;  /* into the mapping (NULL for st_parse_header()) */
	int file_index;       /* which shard (st_checkpoint) */
} st_tensor;

typedef struct st_meta {
	char *key;
	char *value;
} st_meta;

typedef struct st_file {
	char *path;
	int fd;
	const uint8_t *map;
	size_t map_size;
	uint64_t header_len;
	uint64_t data_start; /* 8 + header_len */
	st_tensor *tensors;  /* sorted by offset */
	size_t count;
	st_meta *meta;
	size_t meta_count;
} st_file;

/**
 * Parse a header: @p header (header_len bytes of JSON) describing a data buffer of @p data_size
 * bytes. Fills @p f's tensors and meta (f->path is used in messages and may be NULL).
 * Returns 0 or -1 with a message in @p err.
 */
int st_parse_header(st_file *f, const char *header, size_t header_len, uint64_t data_size,
		    char *err, size_t err_size);

/** Parse a whole file image held in memory (no mapping; tensors' data point into @p buf). */
int st_parse_buffer(st_file *f, const uint8_t *buf, size_t size, char *err, size_t err_size);

/** Open and map @p path read-only and parse it. 0 or -1 with a message in @p err. */
int st_open(st_file *f, const char *path, char *err, size_t err_size);

/** Release everything; @p f may be zeroed or partly filled. */
void st_close(st_file *f);

/** The tensor named @p name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);

/* -- Checkpoints: one file or a sharded checkpoint's index -------------------------------- */

typedef struct st_checkpoint {
	st_file *files;
	size_t file_count;
	st_tensor **tensors; /* every tensor of every file, sorted by name; borrowed from files */
	size_t count;
} st_checkpoint;

/**
 * Open each path: a .safetensors file, or a "*.json" index whose "weight_map" maps tensor
 * names to shard files (relative to the index's directory). Every shard is opened and validated;
 * every weight_map entry must be in its shard and every shard tensor in the weight_map; a name
 * appearing twice across all inputs is an error.
 */
int st_checkpoint_open(st_checkpoint *ck, char *const *paths, size_t npaths, char *err,
		       size_t err_size);
void st_checkpoint_close(st_checkpoint *ck);
/** Binary search by name; NULL if absent. */
const st_tensor *st_checkpoint_find(const st_checkpoint *ck, const char *name);

/* -- Writer ------------------------------------------------------------------------------- */

typedef struct st_out_tensor {
	const char *name;
	ts_dtype dtype;
	int ndim;
	uint64_t shape[ST_MAX_DIMS];
} st_out_tensor;

/** Bytes of data of @p t (elements x dtype size); 0 with *ovf set on overflow. */
uint64_t st_tensor_bytes(const st_out_tensor *t, int *ovf);

/**
 * Write the 8-byte length and the JSON header for @p n tensors laid out contiguously in the
 * given order, with "__metadata__" from @p meta (may be NULL). Sets *data_start to the offset of
 * the data buffer in the file and offsets[i] (may be NULL) to tensor i's begin offset.
 * 0 or -1 with errno set (I/O) or EINVAL/EOVERFLOW.
 */
int st_write_header(FILE *f, const st_out_tensor *t, size_t n, const st_meta *meta,
		    size_t meta_count, uint64_t *data_start, uint64_t *offsets);

/* -- __metadata__ as the JSON text a store keeps (ts_store_metadata_get()) ----------------- */

/** Parse @p len bytes of JSON text, an object of string values, into *out (*count entries,
 *  freed with st_meta_free()). 0 or -1 with a message in @p err. */
int st_meta_parse(st_meta **out, size_t *count, const char *text, size_t len, char *err,
		  size_t err_size);
void st_meta_free(st_meta *meta, size_t count);
/** The JSON object text of @p count entries (malloc'd; *len its length), or NULL (no memory). */
char *st_meta_json(const st_meta *meta, size_t count, size_t *len);

#endif
