/*
 * The hardware profile file: where a store's profile lives, writing it atomically, and reading
 * it back with every figure checked (docs/RESIDENCY.md, "The profile file"). Names in the file
 * are those of the API: ts_mem_level_name(), ts_codec_name(), ts_io_backend_name().
 *
 * Invariants
 *   1. ts_hw_profile_load() accepts only what the model's invariant 1 allows
 *      (engine/hierarchy.c), with every level and every codec older than the format given, so
 *      the policy never divides by zero or by a figure nobody measured. It names the line of
 *      anything it refuses.
 *   2. ts_hw_profile_save() replaces the file whole or not at all (a synced temporary file
 *      renamed over it).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/env.h"
#include "common/error.h"
#include "tstore.h"

#define PROFILE_FORMAT 1
#define IO_COUNT 4 /* default, uring, pread, mmap */

/* Codecs a profile file must give: those older than the file format (lossless came later; a
 * profile without it models lossless pages as undecodable, +Inf, until recalibrated). */
#define REQUIRED_CODECS ((1u << TS_CODEC_LOSSLESS) - 1)

TS_API int ts_hw_profile_path(char *out, size_t size, const char *store_path)
{
	const char *env = ts__env("TSTORE_PROFILE");
	int n;

	if (!out || !store_path)
		return ts__err(TS_EINVAL, "ts_hw_profile_path: NULL argument");
	if (env)
		n = snprintf(out, size, "%s", env);
	else
		n = snprintf(out, size, "%s-profile", store_path);
	if (n < 0 || (size_t)n >= size)
		return ts__err(TS_ESHORTBUF, "profile path for '%s' needs %d bytes", store_path, n + 1);
	return 0;
}

TS_API int ts_hw_profile_save(const ts_hw_profile *p, const char *path)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd;

	if (!p || !path)
		return ts__err(TS_EINVAL, "ts_hw_profile_save: NULL argument");
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return ts__err(TS_EINVAL, "profile path too long (%s)", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return ts__err_errno(errno, "cannot create %s", tmp);
	fchmod(fd, 0644);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return ts__err_errno(errno, "cannot write %s", tmp);
	}
	fprintf(f, "# tstore hardware profile: see docs/RESIDENCY.md, \"The profile file\"\n");
	fprintf(f, "tstore-profile %d\n", PROFILE_FORMAT);
	fprintf(f, "name %s\n", p->name);
	fprintf(f, "calibrated_at %lld\n", (long long)p->calibrated_at);
	fprintf(f, "calibration_seconds %.17g\n", p->calibration_seconds);
	fprintf(f, "page_bytes %llu\n", (unsigned long long)p->page_bytes);
	fprintf(f, "io %s\n", (unsigned)p->io < IO_COUNT ? ts_io_backend_name(p->io) : "default");
	fprintf(f, "queue_depth %d\n", p->queue_depth);
	fprintf(f, "kernel %s\n", p->kernel[0] ? p->kernel : "?");
	fprintf(f, "# level NAME CAPACITY_BYTES BANDWIDTH_GBPS LATENCY_US MEASURED\n");
	for (int i = 0; i < TS_MEM_LEVEL_COUNT; i++)
		fprintf(f, "level %s %llu %.17g %.17g %d\n", ts_mem_level_name((ts_mem_level)i),
			(unsigned long long)p->level[i].capacity_bytes, p->level[i].bandwidth_gbps,
			p->level[i].latency_us, p->level[i].measured ? 1 : 0);
	fprintf(f, "# decode CODEC G_ELEMENTS_PER_SECOND (to F32, one core)\n");
	for (int c = 0; c < TS_CODEC_COUNT; c++)
		if (p->decode_geps[c] > 0) /* none: a profile loaded from before the codec */
			fprintf(f, "decode %s %.17g\n", ts_codec_name((ts_codec)c), p->decode_geps[c]);
	int bad = ferror(f);
	bad |= fflush(f) != 0;
	bad |= fsync(fileno(f)) != 0;
	bad |= fclose(f) != 0;
	if (bad) {
		int e = errno ? errno : EIO;
		unlink(tmp);
		return ts__err_errno(e, "cannot write %s", tmp);
	}
	if (rename(tmp, path)) {
		int e = errno;
		unlink(tmp);
		return ts__err_errno(e, "cannot rename %s to %s", tmp, path);
	}
	return 0;
}

/* The index i < n whose name(i) is @p s (exactly: the file is written in lower case), or -1. */
static int lookup(const char *(*name)(int i), int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcmp(name(i), s) == 0)
			return i;
	return -1;
}

static const char *level_name(int i)
{
	return ts_mem_level_name((ts_mem_level)i);
}

static const char *codec_name(int i)
{
	return ts_codec_name((ts_codec)i);
}

static const char *io_name(int i)
{
	return ts_io_backend_name((ts_io_backend)i);
}

static int finite_nonneg(double v)
{
	return isfinite(v) && v >= 0;
}

TS_API int ts_hw_profile_load(ts_hw_profile *out, const char *path)
{
	ts_hw_profile p;
	char line[512];
	unsigned seen_level = 0, seen_codec = 0;
	int seen_header = 0, seen_page = 0, lineno = 0, rc = 0;
	FILE *f;

	if (!out || !path)
		return ts__err(TS_EINVAL, "ts_hw_profile_load: NULL argument");
	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return ts__err(TS_ENOTFOUND, "no profile file %s", path);
		return ts__err_errno(errno, "cannot open profile file %s", path);
	}
	memset(&p, 0, sizeof(p));
#define BAD(...)                                                                      \
	do {                                                                          \
		char what_[256];                                                      \
		snprintf(what_, sizeof(what_), __VA_ARGS__);                          \
		rc = ts__err(TS_ECORRUPT, "profile file %s, line %d: %s", path, lineno, \
			     what_);                                                  \
		goto out;                                                             \
	} while (0)
	while (fgets(line, sizeof(line), f)) {
		char key[32], a[64];
		lineno++;
		if (!strchr(line, '\n') && !feof(f))
			BAD("line too long");
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (sscanf(line, "%31s", key) != 1)
			BAD("unreadable line");
		if (!seen_header) {
			int v;
			if (strcmp(key, "tstore-profile") != 0 ||
			    sscanf(line, "%*s %d", &v) != 1)
				BAD("not a tstore profile (no 'tstore-profile N' line first)");
			if (v != PROFILE_FORMAT) {
				rc = ts__err(TS_EVERSION, "profile file %s: format %d, this library "
							  "reads format %d", path, v, PROFILE_FORMAT);
				goto out;
			}
			seen_header = 1;
		} else if (strcmp(key, "name") == 0) {
			if (sscanf(line, "%*s %31s", p.name) != 1)
				BAD("no name");
		} else if (strcmp(key, "calibrated_at") == 0) {
			long long t;
			if (sscanf(line, "%*s %lld", &t) != 1 || t < 0)
				BAD("bad calibrated_at");
			p.calibrated_at = t;
		} else if (strcmp(key, "calibration_seconds") == 0) {
			if (sscanf(line, "%*s %lf", &p.calibration_seconds) != 1 ||
			    !finite_nonneg(p.calibration_seconds))
				BAD("bad calibration_seconds");
		} else if (strcmp(key, "page_bytes") == 0) {
			unsigned long long v;
			if (sscanf(line, "%*s %llu", &v) != 1 || v == 0 || v > (1ull << 32))
				BAD("bad page_bytes");
			p.page_bytes = v;
			seen_page = 1;
		} else if (strcmp(key, "io") == 0) {
			int i;
			if (sscanf(line, "%*s %63s", a) != 1 || (i = lookup(io_name, IO_COUNT, a)) < 0)
				BAD("unknown io backend");
			p.io = (ts_io_backend)i;
		} else if (strcmp(key, "queue_depth") == 0) {
			if (sscanf(line, "%*s %d", &p.queue_depth) != 1 || p.queue_depth < 1 ||
			    p.queue_depth > 4096)
				BAD("bad queue_depth");
		} else if (strcmp(key, "kernel") == 0) {
			if (sscanf(line, "%*s %15s", p.kernel) != 1)
				BAD("no kernel");
		} else if (strcmp(key, "level") == 0) {
			unsigned long long cap;
			double bw, lat;
			int measured, i;
			if (sscanf(line, "%*s %63s %llu %lf %lf %d", a, &cap, &bw, &lat,
				   &measured) != 5)
				BAD("level: expected NAME CAPACITY BANDWIDTH LATENCY MEASURED");
			if ((i = lookup(level_name, TS_MEM_LEVEL_COUNT, a)) < 0)
				BAD("unknown level '%s'", a);
			if (!finite_nonneg(bw) || !finite_nonneg(lat) || (measured != 0 && measured != 1))
				BAD("level %s: figures must be finite and not negative", a);
			if (cap > 0 && !(bw > 0))
				BAD("level %s: a present level needs a positive bandwidth", a);
			if (cap == 0 && (bw != 0 || lat != 0))
				BAD("level %s: an absent level (capacity 0) has no figures", a);
			p.level[i] = (ts_mem_level_info){cap, bw, lat, measured};
			seen_level |= 1u << i;
		} else if (strcmp(key, "decode") == 0) {
			double v;
			int c;
			if (sscanf(line, "%*s %63s %lf", a, &v) != 2)
				BAD("decode: expected CODEC RATE");
			if ((c = lookup(codec_name, TS_CODEC_COUNT, a)) < 0)
				BAD("unknown codec '%s'", a);
			if (!isfinite(v) || !(v > 0))
				BAD("decode %s: the rate must be positive and finite", a);
			p.decode_geps[c] = v;
			seen_codec |= 1u << c;
		}
		/* Other keys: written by a newer library of the same format; ignored. */
	}
	if (ferror(f)) {
		rc = ts__err_errno(errno ? errno : EIO, "cannot read profile file %s", path);
		goto out;
	}
	lineno = 0;
	if (!seen_header)
		BAD("empty file");
	if (seen_level != (1u << TS_MEM_LEVEL_COUNT) - 1)
		BAD("not every level is given");
	if ((seen_codec & REQUIRED_CODECS) != REQUIRED_CODECS)
		BAD("not every codec's decode rate is given");
	if (!seen_page || !p.name[0])
		BAD("page_bytes or name missing");
	if (!(p.level[TS_MEM_RAM].capacity_bytes > 0 && p.level[TS_MEM_STORAGE].capacity_bytes > 0))
		BAD("ram and storage must be present");
	*out = p;
#undef BAD
out:
	fclose(f);
	return rc;
}
