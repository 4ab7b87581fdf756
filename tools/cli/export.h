/*
 * The export side of the tstore command: one safetensors file (tools/cli/cmd_export.c) and a
 * model directory in the layout of save_pretrained (tools/cli/export_dir.c).
 */
#ifndef TS_TOOLS_EXPORT_H
#define TS_TOOLS_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "tools/cli/progress.h"
#include "tools/cli/safetensors.h"
#include "tstore.h"

typedef struct ex_tensor {
	char *name;
	ts_tensor_info info;
} ex_tensor;

typedef struct export_result {
	uint64_t data_bytes; /* tensor data written */
	uint64_t file_bytes; /* the whole file */
	size_t n_modelopt;   /* tensors written in the ModelOpt NVFP4 layout */
} export_result;

/** Is @p info written as x / x_scale / x_scale_2 under --layout modelopt? (NVFP4, 2-D, columns
 *  a multiple of 16.) */
int export_modelopt_ok(const ts_tensor_info *info);

/** The bytes of tensor data @p info takes in the output file (the three ModelOpt tensors
 *  together where they apply). @p want: an output dtype or -1 (source). */
uint64_t export_bytes(const ts_tensor_info *info, int want, int modelopt);

/** Write tensors @p v[0..n) of @p st to the safetensors file @p out_path with __metadata__
 *  @p meta: under a temporary name, renamed when complete. Progress to @p pr (begun by the
 *  caller). 0 or -1 (reported). */
int export_file(ts_store *st, const ex_tensor *v, size_t n, int want, int modelopt,
		const st_meta *meta, size_t nmeta, const char *out_path, progress *pr,
		export_result *res);

/** The store's metadata as safetensors __metadata__ entries (freed with st_meta_free()); a
 *  store without metadata gets {"format": "pt"}. 0 or -1 (reported). */
int export_load_metadata(ts_store *st, const char *store_path, st_meta **meta, size_t *count);

typedef struct export_dir_opts {
	const char *store_path;
	const char *out;     /* the directory to write */
	int want;            /* output dtype or -1 */
	int modelopt;        /* --layout modelopt */
	const char *quant_algo; /* hf_quant_config.json's quant_algo: "NVFP4" or "W4A16_NVFP4" */
	uint64_t max_shard;  /* --max-shard-size */
	int force;           /* replace a non-empty OUT */
} export_dir_opts;

/** `tstore export STORE OUT/`: tensors @p v[0..n) (all the store's, in name order; every shard
 *  with __metadata__ @p meta) and every attachment, as a model directory. Returns the exit status (CLI_OK, CLI_FAIL, CLI_USAGE). */
int export_dir(ts_store *st, const ex_tensor *v, size_t n, const st_meta *meta, size_t nmeta,
	       const export_dir_opts *o);

/** Does @p out name a directory export: an existing directory, or a path ending in '/'? */
int export_is_dir(const char *out);

#endif
