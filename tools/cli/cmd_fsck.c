/*
 * tstore fsck: verify a store with ts_store_check() and report every problem with its tensor
 * and page.
 *
 * Invariants
 *   1. Exit 0: the check ran and found nothing but, at most, interrupted writes (reported;
 *      not damage: every tensor reads intact and the next writer removes them); 1: problems found (after --repair: problems
 *      remain that repair cannot fix); 2: the check could not run (no store, not a store,
 *      cannot open for writing).
 *   2. --repair only removes orphan pages and unfinished writes (the library's guarantee); it
 *      reports what it removed, then checks again so the exit status tells the final state.
 *   3. Problems go to stdout (they are the result); errors that stop the check go to stderr.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/json.h"
#include "tools/cli/progress.h"

#define CMD "fsck"

static void usage(FILE *f)
{
	fprintf(f, "usage: tstore fsck [--json] [--repair] STORE\n"
		   "Verify STORE: LMDB's structure, every tensor record, that every page of every\n"
		   "tensor exists exactly once with consistent geometry, every page checksum; find\n"
		   "orphan pages and unfinished tensors (interrupted writes).\n\n"
		   "  --repair  remove orphan pages and unfinished tensors (never touches good data),\n"
		   "            then check again\n"
		   "  --json    one JSON object: {\"store\", \"clean\", \"problems\": [{\"kind\", \"tensor\",\n"
		   "            \"file\" (an attached file, else null),\n"
		   "            \"page\", \"detail\"}], \"repaired\"} (docs/CLI.md)\n"
		   CLI_WAIT_HELP
		   "            (with --repair)\n"
		   "  -q        print only errors\n"
		   "  --help    this text\n\n"
		   "Progress (pages verified, rate, ETA) goes to stderr: a bar on a terminal, plain\n"
		   "lines otherwise (docs/CLI.md); -q silences it.\n"
		   "Interrupted writes (e.g. of a killed import) are reported but are not damage:\n"
		   "the next writer or --repair removes them.\n"
		   "Exit status: 0 clean; 1 problems found (or left after --repair); 2 could not check.\n");
}

static const char *kind_name(ts_problem_kind k)
{
	switch (k) {
	case TS_PROBLEM_RECORD: return "record";
	case TS_PROBLEM_MISSING: return "missing";
	case TS_PROBLEM_CHECKSUM: return "checksum";
	case TS_PROBLEM_GEOMETRY: return "geometry";
	case TS_PROBLEM_ORPHAN: return "orphan";
	case TS_PROBLEM_UNFINISHED: return "unfinished";
	case TS_PROBLEM_STRUCTURE: return "structure";
	default: return "unknown";
	}
}

typedef struct ctx {
	int json;
	json_writer *w;
	uint64_t unfinished; /* interrupted writes: reported, but not damage */
	progress *pr;
} ctx;

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
	ctx *c = ud;
	c->pr->total = total;
	progress_add(c->pr, done - c->pr->done, NULL);
}

static void on_problem(void *ud, const ts_problem *p)
{
	ctx *c = ud;
	/* An attachment's record is keyed 0xFF "file/" + its name (docs/FORMAT.md 3.1). */
	const char *file = p->tensor && !strncmp(p->tensor, "\xff" "file/", 6) ? p->tensor + 6 : NULL;
	const char *tensor = file ? NULL : p->tensor;
	progress_clear(c->pr); /* problems go to stdout, which may be the same terminal */
	if (p->kind == TS_PROBLEM_UNFINISHED)
		c->unfinished++;
	if (c->json) {
		json_writer *w = c->w;
		jw_object_begin(w);
		jw_key(w, "kind");
		jw_string(w, kind_name(p->kind));
		jw_key(w, "tensor");
		if (tensor)
			jw_string(w, tensor);
		else
			jw_null(w);
		jw_key(w, "file");
		if (file)
			jw_string(w, file);
		else
			jw_null(w);
		jw_key(w, "page");
		if (p->page >= 0)
			jw_int(w, p->page);
		else
			jw_null(w);
		jw_key(w, "detail");
		jw_string(w, p->detail ? p->detail : "");
		jw_object_end(w);
		return;
	}
	if (cli_quiet)
		return;
	printf("%s: %s", kind_name(p->kind), p->detail ? p->detail : "");
	if (p->tensor && p->page >= 0)
		printf(" (%s '%s', page %lld)\n", file ? "file" : "tensor", file ? file : tensor,
		       (long long)p->page);
	else if (p->tensor)
		printf(" (%s '%s')\n", file ? "file" : "tensor", file ? file : tensor);
	else if (p->page >= 0)
		printf(" (page %lld)\n", (long long)p->page);
	else
		printf("\n");
}

/* The --json report's start: {"store": PATH, "problems": [ (its problems follow). */
static void json_report_begin(json_writer *w, const char *path)
{
	jw_init(w, stdout, 2);
	jw_object_begin(w);
	jw_key(w, "store");
	jw_string(w, path);
	jw_key(w, "problems");
	jw_array_begin(w);
}

static int fsck_main(int argc, char **argv)
{
	int json = 0, repair = 0, c;
	static const struct option lo[] = {{"json", no_argument, 0, 'j'},
					   {"repair", no_argument, 0, 'r'},
					   {0, 0, 0, 0}};
	cli_opts o;

	cli_opts_init(&o, CMD, usage, CLI_OPTS_WAIT, NULL, lo, argc, argv);
	while ((c = cli_opts_next(&o)) > 0) {
		if (c == 'j')
			json = 1;
		else if (c == 'r')
			repair = 1;
	}
	if (c < 0)
		return o.status;
	if (argc - o.operand != 1)
		return cli_usage_error(CMD, "need STORE");
	const char *path = argv[o.operand];
	ts_store *st = NULL;
	int orc = cli_open_store(CMD, &st, path, repair ? TS_OPEN_WRITE : 0, 0);
	if (orc < 0)
		return cli_open_status(orc);
	json_writer w;
	progress pr;
	ctx cx = {json, &w, 0, &pr};
	uint64_t found = 0, left = 0;
	if (json) {
		json_report_begin(&w, path);
	}
	ts_check_opts co;
	ts_check_opts_init(&co);
	co.flags = repair ? TS_CHECK_REPAIR : 0;
	co.problem = on_problem;
	co.progress = on_progress;
	co.ud = &cx;
	progress_begin(&pr, "fsck", 0, 1, cli_quiet);
	int rc = ts_store_check(&found, st, &co);
	if (rc == 0)
		progress_end(&pr);
	else
		progress_clear(&pr);
	left = found;
	if (rc == 0 && repair) /* what repair could not fix */
		rc = ts_store_check(&left, st, NULL);
	/* An interrupted write (a killed import) leaves pages that no reader can see and that the
	 * next writer (or --repair) removes: it is reported, but it is not damage — every tensor
	 * still reads intact — so on its own it does not make the store unclean. */
	uint64_t notes = repair ? 0 : cx.unfinished;
	if (notes > left)
		notes = left;
	left -= notes;
	found -= notes;
	if (json) {
		jw_array_end(&w);
		jw_key(&w, "checked");
		jw_bool(&w, rc == 0);
		jw_key(&w, "clean");
		jw_bool(&w, rc == 0 && left == 0);
		jw_key(&w, "found");
		jw_uint(&w, found);
		jw_key(&w, "repaired");
		jw_uint(&w, repair && rc == 0 ? found - left : 0);
		jw_key(&w, "remaining");
		jw_uint(&w, left);
		jw_key(&w, "unfinished");
		jw_uint(&w, notes);
		jw_object_end(&w);
		jw_finish(&w);
		fflush(stdout);
	}
	if (rc < 0) {
		cli_error_ts(CMD, rc, "cannot check %s", path);
		ts_store_close(st);
		return CLI_USAGE;
	}
	if (!json && !cli_quiet) {
		if (left == 0 && found == 0 && notes)
			printf("fsck: %s: clean (%llu interrupted write%s to reclaim: the next writer or "
			       "--repair removes %s)\n", path, (unsigned long long)notes,
			       notes == 1 ? "" : "s", notes == 1 ? "it" : "them");
		else if (left == 0 && found == 0)
			printf("fsck: %s: clean\n", path);
		else if (repair)
			printf("fsck: %s: %llu problem%s found, %llu repaired, %llu remain%s\n", path,
			       (unsigned long long)found, found == 1 ? "" : "s",
			       (unsigned long long)(found >= left ? found - left : 0),
			       (unsigned long long)left, left == 1 ? "s" : "");
		else
			printf("fsck: %s: %llu problem%s found\n", path, (unsigned long long)found,
			       found == 1 ? "" : "s");
	}
	ts_store_close(st);
	return left ? CLI_FAIL : CLI_OK;
}

/*
 * LMDB follows its own page pointers unchecked: a store damaged in a way the library's open
 * checks cannot see may make the check itself die of SIGSEGV or SIGBUS. So the check runs in a
 * child process whose output the parent collects: a check that dies is reported as a structure
 * problem (exit 1) instead of taking fsck down with it. TSTORE_TEST_FSCK_INPROCESS=1 runs it in
 * process (for debuggers and tests).
 */
int cmd_fsck(int argc, char **argv)
{
	int fds[2], json = 0;
	const char *path = argc > 1 ? argv[argc - 1] : "";

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
			cli_quiet = 1;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return fsck_main(argc, argv);
	}
	fflush(stdout);
	fflush(stderr);
	if (cli_test_fsck_inprocess || pipe(fds) < 0)
		return fsck_main(argc, argv);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return fsck_main(argc, argv);
	}
	if (pid == 0) {
		close(fds[0]);
		if (dup2(fds[1], STDOUT_FILENO) < 0)
			_exit(CLI_USAGE);
		close(fds[1]);
		int rc = fsck_main(argc, argv);
		fflush(stdout);
		_exit(rc);
	}
	close(fds[1]);
	char *out = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 65536;
			char *n = realloc(out, ncap);
			if (!n)
				break;
			out = n;
			cap = ncap;
		}
		ssize_t k = read(fds[0], out + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	close(fds[0]);
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(ws)) {
		if (len)
			fwrite(out, 1, len, stdout);
		free(out);
		return WEXITSTATUS(ws);
	}
	int sig = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
	char detail[160];
	snprintf(detail, sizeof(detail),
		 "the check died of signal %d (%s): LMDB's own structure is damaged", sig,
		 strsignal(sig));
	if (json) {
		/* the child's partial JSON is dropped: one complete object instead */
		json_writer w;
		json_report_begin(&w, path);
		jw_object_begin(&w);
		jw_key(&w, "kind");
		jw_string(&w, "structure");
		jw_key(&w, "tensor");
		jw_null(&w);
		jw_key(&w, "page");
		jw_null(&w);
		jw_key(&w, "detail");
		jw_string(&w, detail);
		jw_object_end(&w);
		jw_array_end(&w);
		jw_key(&w, "checked");
		jw_bool(&w, 0);
		jw_key(&w, "clean");
		jw_bool(&w, 0);
		jw_key(&w, "found");
		jw_uint(&w, 1);
		jw_key(&w, "repaired");
		jw_uint(&w, 0);
		jw_key(&w, "remaining");
		jw_uint(&w, 1);
		jw_object_end(&w);
		jw_finish(&w);
	} else {
		if (len)
			fwrite(out, 1, len, stdout);
		if (!cli_quiet) {
			printf("structure: %s\n", detail);
			printf("fsck: %s: 1 problem found\n", path);
		}
	}
	fflush(stdout);
	free(out);
	return CLI_FAIL;
}
