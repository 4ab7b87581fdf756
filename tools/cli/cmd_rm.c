/*
 * tstore rm: remove tensors, and files attached by a directory import, from a store.
 *
 * Invariants
 *   1. Every NAME is looked up before anything is removed: a missing name removes nothing.
 *   2. Each removal is atomic (ts_tensor_delete); readers in progress are unaffected.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"

#define CMD "rm"

static void usage(FILE *f)
{
	fprintf(f, "usage: tstore rm [--file PATH]... STORE [NAME...]\n"
		   "Remove the named tensors, and the attached files named by --file, from STORE.\n"
		   "If any of them is not in STORE, nothing is removed. Use 'tstore compact' to\n"
		   "give the space back to the file system.\n\n"
		   "  --file PATH  an attached file (as 'tstore inspect' lists it; repeatable)\n"
		   CLI_WAIT_HELP
		   "  -q      print only errors\n"
		   "  --help  this text\n");
}

int cmd_rm(int argc, char **argv)
{
	int c, status = CLI_FAIL;
	static const struct option lo[] = {{"file", required_argument, 0, 'f'}, {0, 0, 0, 0}};
	char **files = calloc((size_t)argc + 1, sizeof *files);
	int nfiles = 0;
	cli_opts o;
	if (!files)
		return CLI_FAIL;
	cli_opts_init(&o, CMD, usage, CLI_OPTS_WAIT, NULL, lo, argc, argv);
	while ((c = cli_opts_next(&o)) > 0)
		if (c == 'f')
			files[nfiles++] = optarg;
	if (c < 0) {
		free(files);
		return o.status;
	}
	int first = o.operand;
	if (argc - first < 1 || (argc - first < 2 && !nfiles)) {
		free(files);
		return cli_usage_error(CMD, "need STORE and at least one NAME or --file");
	}
	const char *path = argv[first];
	ts_store *st = NULL;
	int orc = cli_open_store(CMD, &st, path, TS_OPEN_WRITE, 0);
	if (orc < 0) {
		free(files);
		return cli_open_status(orc);
	}
	for (int i = first + 1; i < argc; i++) {
		ts_tensor_info in;
		int rc = ts_tensor_info_get(&in, st, argv[i]);
		if (rc < 0) {
			cli_error_ts(CMD, rc, "tensor '%s'", argv[i]);
			fprintf(stderr, "tstore: rm: nothing removed\n");
			goto out;
		}
	}
	for (int i = 0; i < nfiles; i++) {
		uint64_t size;
		int rc = ts_attachment_size(&size, st, files[i]);
		if (rc < 0) {
			cli_error_ts(CMD, rc, "file '%s'", files[i]);
			fprintf(stderr, "tstore: rm: nothing removed\n");
			goto out;
		}
	}
	int removed = 0, removed_files = 0;
	for (int i = 0; i < nfiles; i++) {
		int rc = ts_attachment_delete(st, files[i]);
		if (rc == TS_ENOTFOUND)
			continue; /* named twice */
		if (rc < 0) {
			cli_error_ts(CMD, rc, "cannot remove file '%s'", files[i]);
			goto out;
		}
		removed_files++;
	}
	for (int i = first + 1; i < argc; i++) {
		int rc = ts_tensor_delete(st, argv[i]);
		if (rc == TS_ENOTFOUND)
			continue; /* named twice */
		if (rc < 0) {
			cli_error_ts(CMD, rc, "cannot remove tensor '%s'", argv[i]);
			goto out;
		}
		removed++;
	}
	if (!cli_quiet && nfiles)
		printf("rm: %d tensor%s and %d file%s removed from %s\n", removed,
		       removed == 1 ? "" : "s", removed_files, removed_files == 1 ? "" : "s", path);
	else if (!cli_quiet)
		printf("rm: %d tensor%s removed from %s\n", removed, removed == 1 ? "" : "s", path);
	status = CLI_OK;
out:
	ts_store_close(st);
	free(files);
	return status;
}
