/*
 * `tstore calibrate`: measure this machine for the memory-hierarchy model and save the profile
 * next to the store, or show a profile.
 *
 *   tstore calibrate [--seconds S] [--json] STORE          measure, save, print
 *   tstore calibrate --show [--profile blackwell|measured] [--json] [STORE]
 *
 * Invariants
 *   1. Uses only the public API (include/tstore.h) and the shared tools helpers.
 *   2. --show never measures and never writes anything.
 */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/json.h"

#define CMD "calibrate"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tstore calibrate [--seconds S] [--json] STORE\n"
		"       tstore calibrate --show [--profile blackwell|measured] [--json] [STORE]\n\n"
		"Measure this machine for the memory-hierarchy model that prices the cache's\n"
		"residency decisions: cache and RAM bandwidth and latency, storage random-read\n"
		"bandwidth and latency at the store's page size with its I/O backend (O_DIRECT), and\n"
		"the decode throughput of every codec with the kernels in effect. Takes about S\n"
		"seconds (default 2). The profile is saved to STORE-profile (or $TSTORE_PROFILE) and\n"
		"used by every later open of the store; see docs/RESIDENCY.md.\n\n"
		"  --show         print a profile without measuring: the store's (measured), or the\n"
		"                 reference figures (--profile blackwell; no STORE needed)\n"
		"  --profile P    blackwell or measured (with --show)\n"
		"  --seconds S    time budget of the measurement (0.05 .. 600)\n"
		"  --json         print the profile as JSON\n");
}

static const char *human_bytes(char *buf, size_t size, double v)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static const char *human_us(char *buf, size_t size, double us)
{
	if (!isfinite(us))
		snprintf(buf, size, "-");
	else if (us < 1)
		snprintf(buf, size, "%.1f ns", us * 1e3);
	else if (us < 1e4)
		snprintf(buf, size, "%.2f us", us);
	else
		snprintf(buf, size, "%.2f ms", us / 1e3);
	return buf;
}

/* Elements in a page of @p codec holding page_bytes of payload. */
static double page_elements(const ts_hw_profile *p, ts_codec codec)
{
	ts_codec_config cfg = ts_codec_config_default(codec);
	int bits = codec == TS_CODEC_RAW ? 16 : cfg.bits_per_value;
	if (bits <= 0)
		bits = 8;
	double per_block_scale = codec == TS_CODEC_NVFP4 || codec == TS_CODEC_MXFP4 ||
						 codec == TS_CODEC_INT8
					 ? 8.0 * (codec == TS_CODEC_INT8 ? 4 : 1) / cfg.block_size
					 : 0;
	return floor((double)p->page_bytes * 8.0 / ((double)bits + per_block_scale));
}

static void print_table(const ts_hw_profile *p, int measured)
{
	char a[32], b2[32], c[32];
	if (p->calibrated_at) {
		time_t t = (time_t)p->calibrated_at;
		struct tm tm;
		char when[64];
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		printf("profile %s: measured on this machine %s in %.1f s\n", p->name, when,
		       p->calibration_seconds);
		printf("storage read with %s (queue depth %d), decode with kernels %s, pages of %llu "
		       "bytes\n\n",
		       ts_io_backend_name(p->io), p->queue_depth, p->kernel,
		       (unsigned long long)p->page_bytes);
	} else {
		printf("profile %s: %s\n\n", p->name,
		       measured ? "" : "the reference figures (docs/RESIDENCY.md)");
	}
	printf("%-10s %12s %13s %11s %14s  %s\n", "level", "capacity", "bandwidth", "latency",
	       "one page", "figure");
	for (int i = 0; i < TS_MEM_LEVEL_COUNT; i++) {
		const ts_mem_level_info *l = &p->level[i];
		if (!l->capacity_bytes) {
			printf("%-10s %12s %13s %11s %14s  %s\n", ts_mem_level_name((ts_mem_level)i),
			       "absent", "-", "-", "-", "not on this machine");
			continue;
		}
		char bw[32];
		snprintf(bw, sizeof(bw), "%.2f GB/s", l->bandwidth_gbps);
		printf("%-10s %12s %13s %11s %14s  %s\n", ts_mem_level_name((ts_mem_level)i),
		       human_bytes(a, sizeof(a), (double)l->capacity_bytes), bw,
		       human_us(b2, sizeof(b2), l->latency_us),
		       human_us(c, sizeof(c),
				ts_hw_transfer_time_us(p, (ts_mem_level)i, (double)p->page_bytes)),
		       l->measured ? "measured" : "reference");
	}
	printf("\ndecode to F32, one core:\n");
	for (int k = 0; k < TS_CODEC_COUNT; k++) {
		double el = page_elements(p, (ts_codec)k);
		printf("  %-6s %8.3f G elements/s   a page (%.0f elements): %s\n",
		       ts_codec_name((ts_codec)k), p->decode_geps[k], el,
		       human_us(a, sizeof(a), ts_hw_decode_time_us(p, (ts_codec)k, el)));
	}
	double el = page_elements(p, TS_CODEC_NVFP4);
	double dec = ts_hw_decode_time_us(p, TS_CODEC_NVFP4, el);
	double copy = ts_hw_transfer_time_us(p, TS_MEM_RAM, el * 4);
	double rd = ts_hw_transfer_time_us(p, TS_MEM_STORAGE, (double)p->page_bytes);
	printf("\nserving one nvfp4 page as F32, by the form it is held in:\n");
	printf("  decoded     %12s  (copy %s from RAM)\n", human_us(a, sizeof(a), copy),
	       human_bytes(b2, sizeof(b2), el * 4));
	printf("  compressed  %12s  (decode)\n", human_us(a, sizeof(a), dec));
	printf("  storage     %12s  (read %s + decode)\n", human_us(a, sizeof(a), rd + dec),
	       human_bytes(b2, sizeof(b2), (double)p->page_bytes));
}

static void print_json(const ts_hw_profile *p)
{
	json_writer w;
	jw_init(&w, stdout, 2);
	jw_object_begin(&w);
	jw_key(&w, "name");
	jw_string(&w, p->name);
	jw_key(&w, "calibrated_at");
	jw_int(&w, p->calibrated_at);
	jw_key(&w, "calibration_seconds");
	jw_double(&w, p->calibration_seconds);
	jw_key(&w, "page_bytes");
	jw_uint(&w, p->page_bytes);
	jw_key(&w, "io");
	jw_string(&w, ts_io_backend_name(p->io));
	jw_key(&w, "queue_depth");
	jw_int(&w, p->queue_depth);
	jw_key(&w, "kernel");
	jw_string(&w, p->kernel);
	jw_key(&w, "levels");
	jw_array_begin(&w);
	for (int i = 0; i < TS_MEM_LEVEL_COUNT; i++) {
		const ts_mem_level_info *l = &p->level[i];
		jw_object_begin(&w);
		jw_key(&w, "level");
		jw_string(&w, ts_mem_level_name((ts_mem_level)i));
		jw_key(&w, "capacity_bytes");
		jw_uint(&w, l->capacity_bytes);
		jw_key(&w, "bandwidth_gbps");
		jw_double(&w, l->bandwidth_gbps);
		jw_key(&w, "latency_us");
		jw_double(&w, l->latency_us);
		jw_key(&w, "measured");
		jw_bool(&w, l->measured);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_key(&w, "decode_geps");
	jw_object_begin(&w);
	for (int k = 0; k < TS_CODEC_COUNT; k++) {
		jw_key(&w, ts_codec_name((ts_codec)k));
		jw_double(&w, p->decode_geps[k]);
	}
	jw_object_end(&w);
	jw_object_end(&w);
	jw_finish(&w);
}

int cmd_calibrate(int argc, char **argv)
{
	static const struct option lo[] = {{"show", no_argument, NULL, 'S'},
					   {"profile", required_argument, NULL, 'p'},
					   {"seconds", required_argument, NULL, 's'},
					   {"json", no_argument, NULL, 'j'},
					   {NULL, 0, NULL, 0}};
	int show = 0, json = 0, c, rc, measured = 0;
	const char *prof = NULL;
	double seconds = 2.0;
	ts_hw_profile p;
	ts_store *st = NULL;
	cli_opts co;

	cli_opts_init(&co, CMD, usage, 0, NULL, lo, argc, argv);
	while ((c = cli_opts_next(&co)) > 0) {
		char *end;
		switch (c) {
		case 'S': show = 1; break;
		case 'j': json = 1; break;
		case 'p':
			if (strcmp(optarg, "blackwell") && strcmp(optarg, "measured"))
				return cli_usage_error(CMD, "unknown profile '%s' (blackwell, measured)",
						       optarg);
			prof = optarg;
			break;
		case 's':
			seconds = strtod(optarg, &end);
			if (*end || !(seconds >= 0.05 && seconds <= 600))
				return cli_usage_error(CMD, "bad --seconds '%s' (0.05 .. 600)", optarg);
			break;
		}
	}
	if (c < 0)
		return co.status;
	int first = co.operand;
	if (prof && !show)
		return cli_usage_error(CMD, "--profile goes with --show (only this machine can be "
					    "measured)");
	int need_store = !(show && prof && !strcmp(prof, "blackwell"));
	if (first + (need_store ? 1 : 0) > argc || first + 1 < argc)
		return cli_usage_error(CMD, need_store ? "expected one STORE" : "too many arguments");

	if (show && prof && !strcmp(prof, "blackwell")) {
		ts_hw_profile_builtin(&p, "blackwell");
		json ? print_json(&p) : print_table(&p, 0);
		return CLI_OK;
	}
	if (cli_open_store(CMD, &st, argv[first], 0, 0))
		return CLI_USAGE;
	if (show) {
		ts_store_profile_get(&p, &measured, st);
		if (!measured) {
			char path[4096];
			ts_hw_profile_path(path, sizeof(path), argv[first]);
			cli_error(CMD, path, "no measured profile for this store: run 'tstore "
					     "calibrate %s' (or --profile blackwell)", argv[first]);
			ts_store_close(st);
			return CLI_FAIL;
		}
	} else {
		ts_calibrate_opts o;
		ts_calibrate_opts_init(&o);
		o.seconds = seconds;
		o.page_bytes = 0; /* the store's default */
		o.path = NULL;    /* the store's data file */
		if (!cli_quiet && !json)
			fprintf(stderr, "tstore: calibrate: measuring this machine (about %.1f s)\n",
				seconds);
		if ((rc = ts_store_calibrate(&p, st, &o))) {
			cli_error_ts(CMD, rc, "calibration of '%s'", argv[first]);
			ts_store_close(st);
			return CLI_FAIL;
		}
		measured = 1;
		if (!cli_quiet && !json) {
			char path[4096];
			ts_hw_profile_path(path, sizeof(path), argv[first]);
			fprintf(stderr, "tstore: calibrate: saved to %s\n", path);
		}
	}
	json ? print_json(&p) : print_table(&p, measured);
	ts_store_close(st);
	return CLI_OK;
}
