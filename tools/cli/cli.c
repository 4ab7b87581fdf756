/*
 * The tstore command's conventions: error messages, exit codes, shared option parsing.
 * See tools/cli/cli.h.
 */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tools/cli/cli.h"

int cli_quiet;
int64_t cli_wait_ms = -1;
uint64_t cli_map_max;
double cli_progress_seconds = -1;
int cli_test_fsck_inprocess;

__attribute__((format(printf, 3, 0))) static void verror(const char *cmd, const char *where,
							   const char *fmt, va_list ap)
{
	char what[2048];
	vsnprintf(what, sizeof what, fmt, ap);
	fflush(stdout);
	if (where && *where)
		fprintf(stderr, "tstore: %s: %s (%s)\n", cmd, what, where);
	else
		fprintf(stderr, "tstore: %s: %s\n", cmd, what);
}

void cli_error(const char *cmd, const char *where, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verror(cmd, where, fmt, ap);
	va_end(ap);
}

void cli_error_ts(const char *cmd, int rc, const char *fmt, ...)
{
	char what[1024];
	char where[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(where, sizeof where, "%s", ts_error_last());
	cli_error(cmd, where, "%s: %s", what, ts_strerror(rc));
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char what[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	fprintf(stderr, "tstore: %s: %s\nTry 'tstore %s --help'.\n", cmd, what, cmd);
	return CLI_USAGE;
}

/* The value of @p name, or NULL when it is unset or empty. */
static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int env_bad(const char *cmd, const char *name, const char *value, const char *expected)
{
	cli_error(cmd, NULL, "%s='%s': expected %s", name, value, expected);
	return CLI_USAGE;
}

int cli_env_read(const char *cmd)
{
	const char *v;
	char *e;

	/* a full disk on demand, e.g. for testing what a failing write leaves */
	if ((v = env("TSTORE_MAP_MAX"))) {
		errno = 0;
		cli_map_max = isdigit((unsigned char)*v) ? strtoull(v, &e, 10) : 0;
		if (!cli_map_max || *e || errno)
			return env_bad(cmd, "TSTORE_MAP_MAX", v, "a positive number of bytes");
	}
	if ((v = env("TSTORE_PROGRESS_SECONDS"))) {
		cli_progress_seconds = strtod(v, &e);
		if (*e || !(cli_progress_seconds >= 0 && cli_progress_seconds <= 1e9))
			return env_bad(cmd, "TSTORE_PROGRESS_SECONDS", v,
				       "a number of seconds from 0 to 1e9");
	}
	if ((v = env("TSTORE_TEST_FSCK_INPROCESS"))) {
		if (strcmp(v, "0") && strcmp(v, "1"))
			return env_bad(cmd, "TSTORE_TEST_FSCK_INPROCESS", v, "0 or 1");
		cli_test_fsck_inprocess = *v == '1';
	}
	return CLI_OK;
}

FILE *cli_tmp_create(const char *cmd, char *tmp, size_t size, const char *path)
{
	FILE *f;

	snprintf(tmp, size, "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "wb");
	if (!f) {
		cli_error(cmd, tmp, "cannot create: %s", strerror(errno));
		tmp[0] = '\0';
	}
	return f;
}

int cli_parse_out_dtype(const char *s, int allow_source, int *out)
{
	if (!strcmp(s, "f32"))
		*out = TS_F32;
	else if (!strcmp(s, "bf16"))
		*out = TS_BF16;
	else if (!strcmp(s, "f16"))
		*out = TS_F16;
	else if (allow_source && !strcmp(s, "source"))
		*out = -1;
	else
		return -1;
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {{"", 1},
		     {"B", 1},
		     {"KB", 1000ull},
		     {"MB", 1000000ull},
		     {"GB", 1000000000ull},
		     {"TB", 1000000000000ull},
		     {"KiB", 1ull << 10},
		     {"MiB", 1ull << 20},
		     {"GiB", 1ull << 30},
		     {"TiB", 1ull << 40}};
	char *end;
	errno = 0;
	if (!s || *s < '0' || *s > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || v == 0)
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (!strcmp(end, units[i].unit)) {
			if (v > (1ull << 63) / units[i].mult)
				return -1;
			*out = v * units[i].mult;
			return 0;
		}
	return -1;
}

/* Handle getopt's @p c if it is CLI_OPT_WAIT or CLI_OPT_NO_WAIT: 1 handled, 0 not one of them,
 * -1 a bad --wait value (reported; the caller exits with CLI_USAGE). */
static int cli_wait_option(const char *cmd, int c, const char *arg)
{
	if (c == CLI_OPT_NO_WAIT) {
		cli_wait_ms = 0;
		return 1;
	}
	if (c != CLI_OPT_WAIT)
		return 0;
	char *e;
	errno = 0;
	double v = strtod(arg, &e);
	if (errno || e == arg || *e || !(v >= 0) || v > 1e9) {
		cli_usage_error(cmd, "--wait '%s': not a number of seconds (0 to 1e9)", arg);
		return -1;
	}
	cli_wait_ms = (int64_t)(v * 1000 + 0.5);
	return 1;
}

void cli_opts_init(cli_opts *o, const char *cmd, void (*usage)(FILE *f), unsigned flags,
		   const char *shortopts, const struct option *longopts, int argc, char **argv)
{
	static const struct option common[] = {{"quiet", no_argument, 0, 'q'},
					       {"help", no_argument, 0, 'h'},
					       {"wait", required_argument, 0, CLI_OPT_WAIT},
					       {"no-wait", no_argument, 0, CLI_OPT_NO_WAIT}};
	size_t n = 0;

	memset(o, 0, sizeof(*o));
	o->cmd = cmd;
	o->usage = usage;
	o->flags = flags;
	o->argc = argc;
	o->argv = argv;
	/* "+": stop at each operand, so that cli_opts_next() sees it (and ranges like "-1"). */
	snprintf(o->shortopts, sizeof(o->shortopts), "+%sqh", shortopts ? shortopts : "");
	for (; longopts && longopts[n].name; n++) {
		assert(n < CLI_OPTS_MAX);
		o->longopts[n] = longopts[n];
	}
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		if (i < 2 || (flags & CLI_OPTS_WAIT))
			o->longopts[n++] = common[i];
	optind = 1;
}

/* Reverse argv[a .. b). */
static void reverse_args(char **argv, int a, int b)
{
	for (b--; a < b; a++, b--) {
		char *t = argv[a];
		argv[a] = argv[b];
		argv[b] = t;
	}
}

/* Keep argv[optind] as an operand: move it down to argv[1 + nops] (the slots before optind are
 * parsed already, getopt does not look at them again). */
static void take_operand(cli_opts *o)
{
	char *a = o->argv[optind];

	memmove(o->argv + 2 + o->nops, o->argv + 1 + o->nops,
		(size_t)(optind - 1 - o->nops) * sizeof(char *));
	o->argv[1 + o->nops] = a;
	o->nops++;
	optind++;
}

static int is_dash_operand(const char *a)
{
	return a[0] == '-' && (isdigit((unsigned char)a[1]) || a[1] == ':' || a[1] == ',');
}

int cli_opts_next(cli_opts *o)
{
	while (optind < o->argc) {
		int before = optind, c;

		if ((o->flags & CLI_OPTS_DASH_OPERANDS) && is_dash_operand(o->argv[optind])) {
			take_operand(o);
			continue;
		}
		c = getopt_long(o->argc, o->argv, o->shortopts, o->longopts, NULL);
		if (c == -1) {
			if (optind == before + 1 && !strcmp(o->argv[before], "--")) {
				while (optind < o->argc)
					take_operand(o);
				break;
			}
			if (optind < o->argc)
				take_operand(o);
			continue;
		}
		switch (c) {
		case 'q':
			cli_quiet = 1;
			continue;
		case 'h':
			o->usage(stdout);
			o->status = CLI_OK;
			return -1;
		case '?':
		case ':':
			o->status = cli_usage_error(o->cmd, "bad option");
			return -1;
		case CLI_OPT_WAIT:
		case CLI_OPT_NO_WAIT:
			if (cli_wait_option(o->cmd, c, optarg) < 0) {
				o->status = CLI_USAGE;
				return -1;
			}
			continue;
		default:
			return c;
		}
	}
	/* argv[1 .. 1 + nops) holds the operands, then come the options: swap the two blocks. */
	reverse_args(o->argv, 1, 1 + o->nops);
	reverse_args(o->argv, 1 + o->nops, o->argc);
	reverse_args(o->argv, 1, o->argc);
	o->operand = o->argc - o->nops;
	optind = o->operand;
	return 0;
}

/* The pid of the process holding the flock of the file at @p path, from /proc/locks (Linux:
 * "N: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF", device numbers in hex); 0 if unknown. */
static long flock_holder(const char *path)
{
	struct stat sb;
	FILE *f;
	char line[256];
	long pid = 0;
	if (stat(path, &sb) != 0 || !(f = fopen("/proc/locks", "r")))
		return 0;
	while (!pid && fgets(line, sizeof line, f)) {
		char type[16], mode[16];
		long p;
		unsigned maj, min;
		unsigned long long ino;
		if (strstr(line, "->") ||
		    sscanf(line, "%*s %15s %*s %15s %ld %x:%x:%llu", type, mode, &p, &maj, &min,
			   &ino) != 6)
			continue;
		if (!strcmp(type, "FLOCK") && !strcmp(mode, "WRITE") && ino == sb.st_ino &&
		    maj == major(sb.st_dev) && min == minor(sb.st_dev))
			pid = p;
	}
	fclose(f);
	return pid;
}

void cli_say_waiting(const char *cmd, const char *path)
{
	long pid = flock_holder(path);
	if (cli_quiet)
		return;
	if (pid > 0)
		fprintf(stderr, "tstore: %s: waiting for another writer of %s (pid %ld)\n", cmd, path,
			pid);
	else
		fprintf(stderr, "tstore: %s: waiting for another writer of %s\n", cmd, path);
}

/* The options of every open: @p flags, @p threads, TSTORE_MAP_MAX. */
static void open_opts(ts_open_opts *o, unsigned flags, int threads)
{
	ts_open_opts_init(o);
	o->flags = flags;
	o->threads = threads;
	if (cli_map_max)
		o->map_max = cli_map_max;
}

int cli_open_store_wait(const char *cmd, ts_store **st, const char *path, unsigned flags,
			int threads, int64_t wait_ms)
{
	ts_open_opts o;
	int rc;

	*st = NULL;
	open_opts(&o, flags, threads);
	o.busy_timeout_ms = (flags & TS_OPEN_WRITE) ? wait_ms : 0;
	rc = ts_store_open(st, path, &o);
	if (rc < 0)
		cli_error_ts(cmd, rc, "cannot open store %s", path);
	return rc;
}

int cli_try_open_store(const char *cmd, ts_store **st, const char *path, unsigned flags,
		       int threads, int64_t busy_ms)
{
	ts_open_opts o;
	int rc;

	*st = NULL;
	open_opts(&o, flags, threads);
	o.busy_timeout_ms = (flags & TS_OPEN_WRITE) ? busy_ms : 0;
	rc = ts_store_open(st, path, &o);
	if (rc < 0 && rc != TS_EBUSY)
		cli_error_ts(cmd, rc, "cannot open store %s", path);
	return rc;
}

int cli_open_store(const char *cmd, ts_store **st, const char *path, unsigned flags, int threads)
{
	if (flags & TS_OPEN_WRITE) {
		/* first without waiting, to say once that we wait */
		int rc = cli_try_open_store(cmd, st, path, flags, threads, 0);
		if (rc != TS_EBUSY || cli_wait_ms == 0) {
			if (rc == TS_EBUSY)
				cli_error_ts(cmd, rc, "cannot open store %s", path);
			return rc;
		}
		cli_say_waiting(cmd, path);
	}
	return cli_open_store_wait(cmd, st, path, flags, threads, cli_wait_ms);
}

int cli_open_status(int rc)
{
	return rc == TS_EBUSY ? CLI_FAIL : CLI_USAGE;
}

const char *cli_shape(char *buf, size_t size, int ndim, const uint64_t *shape)
{
	size_t n = (size_t)snprintf(buf, size, "[");
	for (int i = 0; i < ndim && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%llu", i ? ", " : "",
				      (unsigned long long)shape[i]);
	if (n < size)
		snprintf(buf + n, size - n, "]");
	return buf;
}

const char *cli_codec_desc(char *buf, size_t size, const ts_codec_config *cfg)
{
	switch (cfg->codec) {
	case TS_CODEC_RAW:
	case TS_CODEC_LOSSLESS:
		snprintf(buf, size, "%s %s", ts_codec_name(cfg->codec), ts_dtype_name(cfg->raw_dtype));
		break;
	case TS_CODEC_NVFP4:
		snprintf(buf, size, "nvfp4 (block %d, %s)", cfg->block_size,
			 cfg->recipe == TS_RECIPE_BEST ? "best" : "nvidia");
		break;
	case TS_CODEC_INT8:
		snprintf(buf, size, "int8 (block %d, %s)", cfg->block_size,
			 cfg->symmetric ? "symmetric" : "asymmetric");
		break;
	case TS_CODEC_MXFP4:
	case TS_CODEC_FP8:
	default:
		snprintf(buf, size, "%s", ts_codec_name(cfg->codec));
		break;
	}
	return buf;
}
