/*
 * tstore: the command. Global options, then a sub-command that gets the rest of argv.
 *
 * Invariants
 *   1. The command uses only the public API (include/tstore.h).
 *   2. Exit codes (tools/cli/cli.h): 0 success, 1 failure or problems found, 2 usage error or could
 *      not run, 130 interrupted by SIGINT.
 *   3. Sub-commands written by other parts (bench, calibrate) are linked weakly, so that the
 *      command builds before they exist and says so when one is missing.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"

#pragma weak cmd_bench_codec
#pragma weak cmd_bench_read
#pragma weak cmd_bench_cache
#pragma weak cmd_calibrate

typedef struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} command;

static const command commands[] = {
	{"import", cmd_import, "import safetensors files or a sharded checkpoint into a store"},
	{"export", cmd_export, "write tensors of a store to a safetensors file"},
	{"inspect", cmd_inspect, "describe a store's tensors: codec, size, error, statistics"},
	{"slice", cmd_slice, "read a slice of a tensor as .npy or text"},
	{"fsck", cmd_fsck, "verify a store (and repair orphans and unfinished writes)"},
	{"rm", cmd_rm, "remove tensors from a store"},
	{"compact", cmd_compact, "write a compacted copy of a store"},
	{"bench", NULL, "benchmarks: bench codec | bench read | bench cache"},
	{"calibrate", NULL, "measure this machine for the memory-hierarchy model"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: tstore [-q] [--version] [--help] COMMAND [ARGS]\n\n"
		   "tstore keeps model checkpoints as compressed tensors in one file and reads them\n"
		   "back slice by slice.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nOptions:\n"
		   "  -q          print only errors\n"
		   "  --version   print the version of the command and of the library\n"
		   "  --help      this text; 'tstore COMMAND --help' describes a command\n\n"
		   "Exit status: 0 success; 1 failure, or problems found (fsck); 2 usage error or\n"
		   "could not run; 130 interrupted (Ctrl-C).\n"
		   "Errors are printed on stderr as 'tstore: COMMAND: what (where)'.\n"
		   "See tstore(1) and docs/CLI.md.\n");
}

static int bench(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		FILE *f = argc < 2 ? stderr : stdout;
		fprintf(f, "usage: tstore bench codec|read|cache [ARGS]\n"
			   "  codec   codec encode/decode throughput against memset/memcpy baselines\n"
			   "  read    store read benchmarks (cold load, decode efficiency, amplification)\n"
			   "  cache   trace replay against the tiered cache\n"
			   "'tstore bench KIND --help' describes each.\n");
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	int (*fn)(int, char **) = NULL;
	if (!strcmp(argv[1], "codec"))
		fn = cmd_bench_codec;
	else if (!strcmp(argv[1], "read"))
		fn = cmd_bench_read;
	else if (!strcmp(argv[1], "cache"))
		fn = cmd_bench_cache;
	else
		return cli_usage_error("bench", "unknown benchmark '%s'", argv[1]);
	if (!fn) {
		cli_error("bench", NULL, "'bench %s' is not built into this tstore", argv[1]);
		return CLI_USAGE;
	}
	return fn(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
			cli_quiet = 1;
		} else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf("tstore %s (library %s, kernels %s)\n", TS_VERSION_STRING, ts_version(),
			       ts_kernel_name());
			return CLI_OK;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return CLI_OK;
		} else {
			fprintf(stderr, "tstore: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return CLI_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	const char *name = argv[i];
	if (!strcmp(name, "help")) {
		usage(stdout);
		return CLI_OK;
	}
	if (cli_env_read(name) != CLI_OK)
		return CLI_USAGE;
	if (!strcmp(name, "bench"))
		return bench(argc - i, argv + i);
	if (!strcmp(name, "calibrate")) {
		if (!cmd_calibrate) {
			cli_error("calibrate", NULL, "not built into this tstore");
			return CLI_USAGE;
		}
		return cmd_calibrate(argc - i, argv + i);
	}
	for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
		if (commands[k].fn && !strcmp(commands[k].name, name))
			return commands[k].fn(argc - i, argv + i);
	fprintf(stderr, "tstore: unknown command '%s'\nTry 'tstore --help'.\n", name);
	return CLI_USAGE;
}
