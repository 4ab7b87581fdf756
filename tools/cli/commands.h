/*
 * The tstore command's sub-commands and the helpers they share. Every sub-command is
 * `int cmd_<name>(int argc, char **argv)` with argv[0] the sub-command's name; it returns the
 * process exit status (0 success, 1 failure or problems found, 2 usage or could not run).
 * The command uses only the public API (include/tstore.h).
 */
#ifndef TS_TOOLS_COMMANDS_H
#define TS_TOOLS_COMMANDS_H

#include <stdint.h>

#include "tstore.h"

int cmd_import(int argc, char **argv);     /* tools/cli/cmd_import.c */
int cmd_export(int argc, char **argv);     /* tools/cli/cmd_export.c */
int cmd_inspect(int argc, char **argv);    /* tools/cli/cmd_inspect.c */
int cmd_slice(int argc, char **argv);      /* tools/cli/cmd_slice.c */
int cmd_fsck(int argc, char **argv);       /* tools/cli/cmd_fsck.c */
int cmd_rm(int argc, char **argv);         /* tools/cli/cmd_rm.c */
int cmd_compact(int argc, char **argv);    /* tools/cli/cmd_compact.c */
int cmd_bench_codec(int argc, char **argv); /* tools/bench/bench_codec.c: `tstore bench codec` */
int cmd_bench_read(int argc, char **argv);  /* tools/bench/bench_read.c:  `tstore bench read` */
int cmd_bench_cache(int argc, char **argv); /* tools/bench/bench_cache.c: `tstore bench cache` */
int cmd_calibrate(int argc, char **argv);   /* tools/cli/cmd_calibrate.c */

/*
 * Parse a numpy-style basic index RANGE ("0:128,:", "5,16:32") against a tensor of @p ndim
 * dimensions and @p shape: per dimension `a:b`, `a:`, `:b`, `:`, or an index (negative values
 * count from the end, as in numpy). Missing trailing dimensions mean `:`.
 * Fills start/count; bit i of *squeezed is set where dimension i was a single index.
 * Returns 0, or -1 with a message in @p err (err_size bytes) naming the offending dimension.
 * tools/cli/range.c.
 */
int range_parse(const char *text, int ndim, const uint64_t *shape, uint64_t *start,
		uint64_t *count, uint32_t *squeezed, char *err, size_t err_size);

#endif
