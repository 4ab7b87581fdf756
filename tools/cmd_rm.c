/*
 * tstore rm: remove tensors from a store.
 *
 * Invariants
 *   1. Every NAME is looked up before anything is removed: a missing name removes nothing.
 *   2. Each removal is atomic (ts_tensor_delete); readers in progress are unaffected.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/commands.h"

#define CMD "rm"

static void usage(FILE *f)
{
	fprintf(f, "usage: tstore rm STORE NAME...\n"
		   "Remove the named tensors from STORE. If any NAME is not in STORE, nothing is\n"
		   "removed. Use 'tstore compact' to give the space back to the file system.\n\n"
		   "  -q      print only errors\n"
		   "  --help  this text\n");
}

int cmd_rm(int argc, char **argv)
{
	int c, status = CLI_FAIL;
	static const struct option lo[] = {{"quiet", no_argument, 0, 'q'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (c) {
		case 'q': cli_quiet = 1; break;
		case 'h': usage(stdout); return CLI_OK;
		default: return cli_usage_error(CMD, "bad option");
		}
	}
	if (argc - optind < 2)
		return cli_usage_error(CMD, "need STORE and at least one NAME");
	const char *path = argv[optind];
	ts_store *st = NULL;
	if (cli_open_store(CMD, &st, path, TS_OPEN_WRITE, 0) < 0)
		return CLI_USAGE;
	for (int i = optind + 1; i < argc; i++) {
		ts_tensor_info in;
		int rc = ts_tensor_info_get(&in, st, argv[i]);
		if (rc < 0) {
			cli_error_ts(CMD, rc, "tensor '%s'", argv[i]);
			fprintf(stderr, "tstore: rm: nothing removed\n");
			goto out;
		}
	}
	int removed = 0;
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
	if (!cli_quiet)
		printf("rm: %d tensor%s removed from %s\n", removed, removed == 1 ? "" : "s", path);
	status = CLI_OK;
out:
	ts_store_close(st);
	return status;
}
