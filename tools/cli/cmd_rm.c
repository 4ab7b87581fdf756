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
	static const struct option lo[] = {{"file", required_argument, 0, 'f'},
					   {"quiet", no_argument, 0, 'q'},
					   {"help", no_argument, 0, 'h'},
					   CLI_WAIT_OPTIONS,
					   {0, 0, 0, 0}};
	char **files = calloc((size_t)argc + 1, sizeof *files);
	int nfiles = 0;
	if (!files)
		return CLI_FAIL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			files[nfiles++] = optarg;
			break;
		case 'q': cli_quiet = 1; break;
		case 'h':
			free(files);
			usage(stdout);
			return CLI_OK;
		default:
			if (cli_wait_option(CMD, c, optarg) > 0)
				break;
			free(files);
			return c == CLI_OPT_WAIT ? CLI_USAGE : cli_usage_error(CMD, "bad option");
		}
	}
	if (argc - optind < 1 || (argc - optind < 2 && !nfiles)) {
		free(files);
		return cli_usage_error(CMD, "need STORE and at least one NAME or --file");
	}
	const char *path = argv[optind];
	ts_store *st = NULL;
	int orc = cli_open_store(CMD, &st, path, TS_OPEN_WRITE, 0);
	if (orc < 0) {
		free(files);
		return cli_open_status(orc);
	}
	for (int i = optind + 1; i < argc; i++) {
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
	for (int i = optind + 1; i < argc; i++) {
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
