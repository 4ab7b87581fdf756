/*
 * Model directories (tools/cli/modeldir.c): what `tstore import STORE DIR` reads from a directory —
 * the safetensors checkpoint and every other regular file as an attachment — checked before
 * the store is touched, and the writing of the attachments into an import's write group.
 */
#ifndef TS_TOOLS_MODELDIR_H
#define TS_TOOLS_MODELDIR_H

#include <signal.h>
#include <stdint.h>

#include "tools/cli/progress.h"
#include "tstore.h"

#define MD_MAX_FILE_DEFAULT (64ull << 20) /* attachments larger than this are skipped */

typedef struct md_file {
	char *rel;     /* path relative to the directory: the attachment's name */
	char *path;    /* path to open */
	uint64_t size; /* at the scan */
	int exists;    /* an attachment of this name is in the store already */
	const char *why; /* skipped: the reason (static string); NULL for files to store */
} md_file;

typedef struct modeldir {
	char *dir;
	char **sources;   /* for st_checkpoint_open(): the index, or every top-level *.safetensors */
	size_t nsources;
	const char *index; /* the index used (its name in the directory), or NULL */
	md_file *files;   /* attachments to store, sorted by name (byte-wise) */
	size_t nfiles;
	md_file *skipped; /* regular files and others not stored, with the reason */
	size_t nskipped;
	uint64_t file_bytes; /* total size of files[] */
} modeldir;

/** Is @p path a directory (following symlinks)? */
int modeldir_is_dir(const char *path);

/**
 * Scan directory @p dir: its checkpoint (model.safetensors.index.json, else the one
 * *.safetensors.index.json, else every top-level *.safetensors, in name order) and, unless
 * @p no_files, every other regular file below it of at most @p max_file bytes (hidden entries,
 * names beginning with '.', are skipped). Refused, with a message in @p err: a symlink that
 * leads outside @p dir, a name longer than an attachment name may be, several index files,
 * no checkpoint at all. Returns 0 or -1.
 */
int modeldir_scan(modeldir *md, const char *dir, uint64_t max_file, int no_files, char *err,
		  size_t err_size);

/** Drop from the attachments every file whose path is one of the checkpoint's @p n files
 *  (the shards the index names, matched by identity of the file). */
void modeldir_exclude(modeldir *md, char *const *paths, size_t n);

/** Mark the attachments that exist in @p st. 0 or a negative TS_E* code (reported). */
int modeldir_lookup(modeldir *md, ts_store *st, const char *cmd);

/**
 * Write every attachment into write group @p g of @p st (TS_WRITE_REPLACE where @p replace
 * and it exists; skipped where @p skip_existing and it exists), streaming each file in chunks.
 * Stops with TS_ECANCELED when *@p interrupted is set. A file whose size changed since the
 * scan is an error naming it. @p written / @p written_bytes: files and bytes written.
 * 0 or a negative TS_E* code (reported on stderr).
 */
int modeldir_write_files(const modeldir *md, ts_store *st, ts_group *g, int replace,
			 int skip_existing, progress *pr, volatile sig_atomic_t *interrupted,
			 const char *cmd, size_t *written, uint64_t *written_bytes);

void modeldir_free(modeldir *md);

#endif
