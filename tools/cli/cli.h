/*
 * The tstore command's conventions, shared by its sub-commands: error messages on stderr as
 * `tstore: <command>: <what> (<where>)`, the exit codes, the global -q, and parsing of the small
 * option values that several commands take.
 *
 * Invariants
 *   1. Every failure a sub-command reports goes through cli_error() or cli_error_ts(): one line,
 *      what and where, on stderr, never on stdout (stdout carries results: tables, JSON, .npy).
 *   2. Exit codes: CLI_OK 0 success; CLI_FAIL 1 failure or problems found; CLI_USAGE 2 usage
 *      error or could not run; CLI_INTERRUPTED 130 stopped by SIGINT.
 */
#ifndef TS_TOOLS_CLI_H
#define TS_TOOLS_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "tstore.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_INTERRUPTED 130

/** Set by the global -q (and by each command's -q): nothing but errors on stderr. */
extern int cli_quiet;

/*
 * The command's own environment variables (docs/CLI.md, "Environment"), each read once, by
 * cli_env_read() before the sub-command runs, with the library's rule (common/env.h): unset or
 * empty means the default; a set one must parse, or the command stops with a usage error
 * naming the variable, its value and what was expected. Test hooks are named TSTORE_TEST_*.
 */
/** TSTORE_MAP_MAX: the most bytes a store opened for writing may grow to; 0 when unset. */
extern uint64_t cli_map_max;
/** TSTORE_PROGRESS_SECONDS: seconds between plain progress lines (0: every update); -1 when
 *  unset. */
extern double cli_progress_seconds;
/** TSTORE_TEST_FSCK_INPROCESS=1 (a test and debugging hook): fsck checks in its own process. */
extern int cli_test_fsck_inprocess;
/** Read the variables above for command @p cmd: CLI_OK, or CLI_USAGE (reported). */
int cli_env_read(const char *cmd);

/** "tstore: <cmd>: <what> (<where>)"; @p where may be NULL or empty. */
void cli_error(const char *cmd, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** An error from the library: "tstore: <cmd>: <what>: <ts_strerror(rc)> (<ts_error_last()>)". */
void cli_error_ts(const char *cmd, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Print "tstore: <cmd>: <msg>" and a hint to use --help; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Parse "f32", "bf16", "f16" (and "source" if @p allow_source) into *out (-1 for source). */
int cli_parse_out_dtype(const char *s, int allow_source, int *out);

/** Parse a size in bytes as save_pretrained's max_shard_size does: a number, optionally with
 *  a unit KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. "5GB",
 *  "64MiB", "1000". 0 or -1 (malformed, zero, or past 2^63). */
int cli_parse_size(const char *s, uint64_t *out);

/** How long an open for writing waits for another writer of the store, in milliseconds: -1
 *  (the default) for ever, 0 not at all (--no-wait), else --wait SECONDS. */
extern int64_t cli_wait_ms;

/** The option codes of --wait and --no-wait in cli_opts' table (CLI_OPTS_WAIT), and the lines
 *  of a writing command's --help that describe them. */
#define CLI_OPT_WAIT 0x5701
#define CLI_OPT_NO_WAIT 0x5702
#define CLI_WAIT_HELP                                                                            \
	"  --wait SECONDS  wait at most SECONDS for another writer of STORE (default: wait)\n"    \
	"  --no-wait       fail at once (exit 1, STORE unchanged) if another writer has it\n"

/*
 * A command's option parsing, one loop for every command: getopt_long() over the command's own
 * options plus those every command has, -q/--quiet (sets cli_quiet), -h/--help (prints the
 * command's usage on stdout) and, with CLI_OPTS_WAIT, --wait SECONDS/--no-wait (cli_wait_ms). An
 * unknown option, a missing argument or a bad --wait value is a usage error. Options and
 * operands may come in any order; "--" ends the options.
 *
 *	cli_opts o;
 *	cli_opts_init(&o, CMD, usage, 0, "o:", lo, argc, argv);
 *	while ((c = cli_opts_next(&o)) > 0)
 *		switch (c) { case 'o': out = optarg; break; ... }
 *	if (c < 0)
 *		return o.status;
 *	... argv[o.operand .. argc) are the operands, in the order given ...
 */
#define CLI_OPTS_WAIT 1u          /* a writing command: --wait SECONDS, --no-wait */
#define CLI_OPTS_DASH_OPERANDS 2u /* "-1", "-5:", "-:": an operand (a range), not an option */
#define CLI_OPTS_MAX 32           /* the most long options of one command */

typedef struct cli_opts {
	const char *cmd;
	void (*usage)(FILE *f);
	unsigned flags;
	int argc;
	char **argv;
	int nops;    /* operands seen so far, kept in argv[1 .. nops] while parsing */
	int status;  /* the exit code once cli_opts_next() returned -1 */
	int operand; /* once it returned 0: argv[operand .. argc) are the operands */
	char shortopts[64];
	struct option longopts[CLI_OPTS_MAX + 5];
} cli_opts;

/** Set up parsing of @p argv (argv[0] the command's name) for command @p cmd. @p shortopts and
 *  @p longopts (terminated by a zero entry) are the command's own options, either may be NULL;
 *  @p flags: CLI_OPTS_*. */
void cli_opts_init(cli_opts *o, const char *cmd, void (*usage)(FILE *f), unsigned flags,
		   const char *shortopts, const struct option *longopts, int argc, char **argv);

/** The next of the command's own options (> 0, its argument in optarg); 0 when every argument
 *  is parsed (o->operand set; argv reordered: options first, then the operands); -1 when the
 *  command is to exit with o->status (CLI_OK after --help; CLI_USAGE after a reported usage
 *  error). */
int cli_opts_next(cli_opts *o);

/** Open a store, reporting failure as cli_error_ts(cmd, ...). @p flags: TS_OPEN_*. An open for
 *  writing of a store another process writes waits as cli_wait_ms says, printing once (unless
 *  -q) "waiting for another writer of STORE (pid N)"; the pid is that of the holder of the
 *  store file's flock, as /proc/locks lists it (left out where it cannot be found). TS_EBUSY
 *  when the wait ran out. */
int cli_open_store(const char *cmd, ts_store **st, const char *path, unsigned flags, int threads);

/** cli_open_store() waiting at most @p busy_ms (0: not at all) and without a message when
 *  another process writes the store: TS_EBUSY then (any other failure is reported). */
int cli_try_open_store(const char *cmd, ts_store **st, const char *path, unsigned flags,
		       int threads, int64_t busy_ms);

/** Open with a busy timeout of @p wait_ms (ts_open_opts.busy_timeout_ms); failures reported. */
int cli_open_store_wait(const char *cmd, ts_store **st, const char *path, unsigned flags,
			int threads, int64_t wait_ms);

/** Say once on stderr (unless -q) that @p cmd waits for another writer of @p path, and its pid
 *  where /proc/locks names it. */
void cli_say_waiting(const char *cmd, const char *path);

/** The exit code for a failed cli_open_store(): CLI_FAIL for TS_EBUSY (another writer),
 *  CLI_USAGE otherwise. */
int cli_open_status(int rc);

/** Create "<path>.tmp.<pid>" for writing, its name into @p tmp (@p size bytes): the temporary
 *  output a command renames over @p path once complete (and unlinks otherwise). NULL on failure
 *  (reported; @p tmp then empty). */
FILE *cli_tmp_create(const char *cmd, char *tmp, size_t size, const char *path);

/** "[2816, 1024]" into @p buf. */
const char *cli_shape(char *buf, size_t size, int ndim, const uint64_t *shape);

/** "nvfp4 (block 16, nvidia)", "int8 (block 64, symmetric)", "raw BF16" into @p buf. */
const char *cli_codec_desc(char *buf, size_t size, const ts_codec_config *cfg);

#endif
