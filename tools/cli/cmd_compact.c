/*
 * tstore compact: write a compacted copy of a store (free pages dropped, pages renumbered)
 * with ts_store_copy_compact().
 *
 * Invariants
 *   1. OUT must not exist; a failed copy leaves no OUT behind.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"

#define CMD "compact"

static void usage(FILE *f)
{
	fprintf(f, "usage: tstore compact STORE OUT\n"
		   "Write a compacted copy of STORE to OUT (which must not exist): the space of\n"
		   "removed and replaced tensors is not copied.\n\n"
		   "  -q      print only errors\n"
		   "  --help  this text\n");
}

int cmd_compact(int argc, char **argv)
{
	cli_opts o;

	cli_opts_init(&o, CMD, usage, 0, NULL, NULL, argc, argv);
	if (cli_opts_next(&o) < 0)
		return o.status; /* no options of its own: only 0 or -1 */
	if (argc - o.operand != 2)
		return cli_usage_error(CMD, "need STORE and OUT");
	const char *path = argv[o.operand], *out = argv[o.operand + 1];
	struct stat sb;
	if (stat(out, &sb) == 0) {
		cli_error(CMD, out, "already exists");
		return CLI_FAIL;
	}
	ts_store *st = NULL;
	if (cli_open_store(CMD, &st, path, 0, 0) < 0)
		return CLI_USAGE;
	double t0 = progress_now();
	int rc = ts_store_copy_compact(st, out);
	ts_store_close(st);
	if (rc < 0) {
		cli_error_ts(CMD, rc, "cannot write a compacted copy to %s", out);
		if (stat(out, &sb) == 0) {
			char lock[4200];
			unlink(out);
			snprintf(lock, sizeof lock, "%s-lock", out);
			unlink(lock);
		}
		return CLI_FAIL;
	}
	if (!cli_quiet) {
		char a[32], b[32];
		struct stat s0;
		stat(path, &s0);
		stat(out, &sb);
		printf("compact: %s (%s) -> %s (%s) in %.1f s\n", path,
		       progress_size(a, sizeof a, (double)s0.st_size), out,
		       progress_size(b, sizeof b, (double)sb.st_size), progress_now() - t0);
	}
	return CLI_OK;
}
