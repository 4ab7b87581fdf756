/*
 * stcheck: an independent checker for the command-line tests (no python, no numpy needed).
 *
 *   stcheck info FILE                      print "name dtype [shape]" per tensor, sorted
 *   stcheck compare A B [--max-rel PCT] [--exact] [--subset]
 *        every tensor of A must be in B (and, without --subset, B has no others) with the same
 *        shape; values compared as numbers: relative RMS error 100*|a-b|/|a| at most PCT
 *        (default 0); --exact: same dtype and identical bytes.
 *   stcheck npy OUT.npy SRC.safetensors NAME RANGE [--max-rel PCT]
 *        the .npy holds the slice RANGE of NAME (numpy basic indexing) within PCT.
 *   stcheck json FILE                      FILE is one strict JSON value (tools/cli/json.c)
 *   stcheck jsonget FILE A/B/C             print the value at that path of keys: a string
 *        raw, a number, true/false/null, an array's elements or an object's keys one a line
 *   stcheck flip FILE SRC.safetensors NAME
 *        find the first 64 data bytes of tensor NAME of SRC inside FILE (a store holding it
 *        raw) and flip one bit in the middle of them: a damaged page for fsck tests.
 *   stcheck poke FILE NAME HEX
 *        overwrite the first bytes of tensor NAME's data in FILE with HEX (hex digit pairs).
 *
 * Exit 0 when the check holds, 1 when it does not (with the reason), 2 on usage errors.
 */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli/commands.h"
#include "tools/cli/json.h"
#include "tools/cli/npy.h"
#include "tools/cli/safetensors.h"

static char err[1024];

static int open_or_die(st_file *f, const char *path)
{
	if (st_open(f, path, err, sizeof err) < 0) {
		fprintf(stderr, "stcheck: %s\n", err);
		exit(1);
	}
	return 0;
}

static const char *dname(ts_dtype d)
{
	static const char *n[] = {"F32", "BF16", "F16", "F64", "F8_E4M3", "F8_E5M2", "I8", "U8",
				  "I16", "U16", "I32", "U32", "I64", "U64", "BOOL"};
	return (unsigned)d < sizeof n / sizeof n[0] ? n[d] : "?";
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int info(const char *path)
{
	st_file f;
	open_or_die(&f, path);
	qsort(f.tensors, f.count, sizeof *f.tensors, cmp_name);
	for (size_t i = 0; i < f.count; i++) {
		printf("%s %s [", f.tensors[i].name, dname(f.tensors[i].dtype));
		for (int d = 0; d < f.tensors[i].ndim; d++)
			printf("%s%llu", d ? "," : "", (unsigned long long)f.tensors[i].shape[d]);
		printf("]\n");
	}
	st_close(&f);
	return 0;
}

/* Relative RMS error in percent of b against a over n elements; NaN must match NaN. */
static double rel_rms(const void *a, ts_dtype da, const void *b, ts_dtype db, uint64_t n,
		      double *maxabs, int *nan_mismatch)
{
	double num = 0, den = 0;
	*maxabs = 0;
	*nan_mismatch = 0;
	for (uint64_t i = 0; i < n; i++) {
		double x = npy_element(a, da, i), y = npy_element(b, db, i);
		if (!isfinite(x) || !isfinite(y)) {
			if (!(isnan(x) && isnan(y)) && x != y)
				(*nan_mismatch)++;
			continue;
		}
		double e = x - y;
		num += e * e;
		den += x * x;
		if (fabs(e) > *maxabs)
			*maxabs = fabs(e);
	}
	if (num == 0)
		return 0;
	return den > 0 ? 100.0 * sqrt(num / den) : INFINITY;
}

static int compare(const char *pa, const char *pb, double max_rel, int exact, int subset)
{
	st_file a, b;
	int bad = 0;
	open_or_die(&a, pa);
	open_or_die(&b, pb);
	if (!subset && a.count != b.count) {
		fprintf(stderr, "stcheck: %s has %zu tensors, %s has %zu\n", pa, a.count, pb, b.count);
		bad = 1;
	}
	double worst = 0;
	for (size_t i = 0; i < a.count; i++) {
		const st_tensor *x = &a.tensors[i], *y = st_find(&b, x->name);
		if (!y) {
			fprintf(stderr, "stcheck: '%s' is missing from %s\n", x->name, pb);
			bad = 1;
			continue;
		}
		if (x->ndim != y->ndim || memcmp(x->shape, y->shape, sizeof x->shape)) {
			fprintf(stderr, "stcheck: '%s': shapes differ\n", x->name);
			bad = 1;
			continue;
		}
		if (exact) {
			if (x->dtype != y->dtype || x->end - x->begin != y->end - y->begin ||
			    memcmp(x->data, y->data, x->end - x->begin)) {
				fprintf(stderr, "stcheck: '%s': not bit-identical (%s vs %s)\n", x->name,
					dname(x->dtype), dname(y->dtype));
				bad = 1;
			}
			continue;
		}
		double m;
		int nm;
		double r = rel_rms(x->data, x->dtype, y->data, y->dtype, x->nelem, &m, &nm);
		if (nm) {
			fprintf(stderr, "stcheck: '%s': %d non-finite values differ\n", x->name, nm);
			bad = 1;
		}
		if (r > worst)
			worst = r;
		if (!(r <= max_rel)) {
			fprintf(stderr, "stcheck: '%s': relative RMS error %.4f%% > %.4f%% (max abs %g)\n",
				x->name, r, max_rel, m);
			bad = 1;
		}
	}
	if (!bad)
		printf("stcheck: %zu tensors agree (worst relative RMS error %.4f%%)\n", a.count, worst);
	st_close(&a);
	st_close(&b);
	return bad;
}

static int npy_check(const char *npy, const char *src, const char *name, const char *range,
		     double max_rel)
{
	st_file f;
	open_or_die(&f, src);
	const st_tensor *t = st_find(&f, name);
	if (!t) {
		fprintf(stderr, "stcheck: no tensor '%s' in %s\n", name, src);
		return 1;
	}
	uint64_t start[TS_MAX_DIMS], count[TS_MAX_DIMS];
	uint32_t sq;
	if (range_parse(range, t->ndim, t->shape, start, count, &sq, err, sizeof err) < 0) {
		fprintf(stderr, "stcheck: %s\n", err);
		return 2;
	}
	int fd = open(npy, O_RDONLY);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size < 10) {
		fprintf(stderr, "stcheck: cannot read %s\n", npy);
		return 1;
	}
	uint8_t *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	npy_info ni;
	if (m == MAP_FAILED || npy_parse_header(&ni, m, (size_t)sb.st_size, err, sizeof err) < 0) {
		fprintf(stderr, "stcheck: %s: %s\n", npy, err);
		return 1;
	}
	/* Expected shape: count without the squeezed dimensions. */
	int nd = 0;
	uint64_t total = 1;
	for (int d = 0; d < t->ndim; d++) {
		total *= count[d];
		if (sq & (1u << d))
			continue;
		if (nd >= ni.ndim || ni.shape[nd] != count[d]) {
			fprintf(stderr, "stcheck: %s: shape does not match the range\n", npy);
			return 1;
		}
		nd++;
	}
	if (nd != ni.ndim) {
		fprintf(stderr, "stcheck: %s: %d dimensions, expected %d\n", npy, ni.ndim, nd);
		return 1;
	}
	ts_dtype nt;
	if (!strcmp(ni.descr, "<f4"))
		nt = TS_F32;
	else if (!strcmp(ni.descr, "<f2"))
		nt = TS_F16;
	else if (!strcmp(ni.descr, "<u2"))
		nt = t->dtype == TS_U16 ? TS_U16 : TS_BF16; /* bf16 bit patterns */
	else if (!strcmp(ni.descr, "<i8"))
		nt = TS_I64;
	else if (!strcmp(ni.descr, "|b1"))
		nt = TS_BOOL;
	else if (!strcmp(ni.descr, "<i4"))
		nt = TS_I32;
	else {
		fprintf(stderr, "stcheck: %s: descr %s not handled\n", npy, ni.descr);
		return 1;
	}
	if ((size_t)sb.st_size != ni.data_offset + total * ts_dtype_size(nt)) {
		fprintf(stderr, "stcheck: %s: size does not match its header\n", npy);
		return 1;
	}
	/* Gather the expected slice from the source into F64. */
	double *want = malloc((total ? total : 1) * sizeof *want);
	uint64_t idx[TS_MAX_DIMS] = {0};
	for (uint64_t k = 0; k < total; k++) {
		uint64_t off = 0;
		for (int d = 0; d < t->ndim; d++)
			off = off * t->shape[d] + start[d] + idx[d];
		want[k] = npy_element(t->data, t->dtype, off);
		for (int d = t->ndim - 1; d >= 0; d--) {
			if (++idx[d] < count[d])
				break;
			idx[d] = 0;
		}
	}
	double mx;
	int nm;
	double r = rel_rms(want, TS_F64, m + ni.data_offset, nt, total, &mx, &nm);
	free(want);
	munmap(m, (size_t)sb.st_size);
	close(fd);
	st_close(&f);
	if (nm || !(r <= max_rel)) {
		fprintf(stderr, "stcheck: %s: relative RMS error %.4f%% > %.4f%% (%d non-finite differ)\n",
			npy, r, max_rel, nm);
		return 1;
	}
	printf("stcheck: %s matches %s[%s] (%llu values, relative RMS error %.4f%%)\n", npy, name,
	       range, (unsigned long long)total, r);
	return 0;
}

static uint8_t *map_file(const char *path, size_t *size, int writable)
{
	int fd = open(path, writable ? O_RDWR : O_RDONLY);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		fprintf(stderr, "stcheck: cannot open %s\n", path);
		exit(1);
	}
	*size = (size_t)sb.st_size;
	uint8_t *m = mmap(NULL, *size ? *size : 1, PROT_READ | (writable ? PROT_WRITE : 0),
			  MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		fprintf(stderr, "stcheck: cannot map %s\n", path);
		exit(1);
	}
	return m;
}

static int json_check(const char *path)
{
	size_t n;
	uint8_t *m = map_file(path, &n, 0);
	json_value *v;
	int rc = json_parse(&v, (const char *)m, n, err, sizeof err);
	munmap(m, n ? n : 1);
	if (rc < 0) {
		fprintf(stderr, "stcheck: %s: %s\n", path, err);
		return 1;
	}
	json_free(v);
	return 0;
}

/* Print one JSON value: strings raw, numbers as parsed, true/false/null, arrays one element
 * per line, objects as their keys one per line. */
static void print_value(const json_value *v)
{
	switch (v->type) {
	case JSON_NULL: printf("null\n"); break;
	case JSON_TRUE: printf("true\n"); break;
	case JSON_FALSE: printf("false\n"); break;
	case JSON_NUMBER:
		if (v->u.num.is_uint)
			printf("%llu\n", (unsigned long long)v->u.num.u);
		else
			printf("%.17g\n", v->u.num.d);
		break;
	case JSON_STRING: printf("%s\n", v->u.str.s); break;
	case JSON_ARRAY:
		for (size_t i = 0; i < v->u.arr.count; i++)
			print_value(v->u.arr.items[i]);
		break;
	case JSON_OBJECT:
		for (size_t i = 0; i < v->u.obj.count; i++)
			printf("%s\n", v->u.obj.members[i].key);
		break;
	}
}

/* stcheck jsonget FILE A/B/C: the value at that path of object keys (exit 1 if absent). */
static int json_get_path(const char *path, const char *keys)
{
	size_t n;
	uint8_t *m = map_file(path, &n, 0);
	json_value *root;
	int rc = json_parse(&root, (const char *)m, n, err, sizeof err);
	munmap(m, n ? n : 1);
	if (rc < 0) {
		fprintf(stderr, "stcheck: %s: %s\n", path, err);
		return 1;
	}
	char *copy = strdup(keys), *save = NULL;
	const json_value *v = root;
	for (char *k = strtok_r(copy, "/", &save); k && v; k = strtok_r(NULL, "/", &save))
		v = v->type == JSON_OBJECT ? json_get(v, k) : NULL;
	free(copy);
	if (!v) {
		fprintf(stderr, "stcheck: %s: no value at '%s'\n", path, keys);
		json_free(root);
		return 1;
	}
	print_value(v);
	json_free(root);
	return 0;
}

static int flip(const char *path, const char *src, const char *name)
{
	st_file f;
	open_or_die(&f, src);
	const st_tensor *t = st_find(&f, name);
	if (!t || t->end - t->begin < 64) {
		fprintf(stderr, "stcheck: no tensor '%s' of at least 64 bytes in %s\n", name, src);
		return 2;
	}
	size_t n;
	uint8_t *m = map_file(path, &n, 1);
	uint8_t *hit = memmem(m, n, t->data, 64);
	if (!hit) {
		fprintf(stderr, "stcheck: the data of '%s' is not in %s\n", name, path);
		return 1;
	}
	hit[32] ^= 0x10;
	msync(m, n, MS_SYNC);
	printf("stcheck: flipped a bit at offset %zu of %s\n", (size_t)(hit + 32 - m), path);
	munmap(m, n);
	st_close(&f);
	return 0;
}

/* Overwrite the first bytes of tensor @p name's data in @p path with @p hex (pairs of hex
 * digits), e.g. to give a ModelOpt weight_scale_2 a chosen value. */
static int poke(const char *path, const char *name, const char *hex)
{
	st_file f;
	size_t nb = strlen(hex) / 2;
	open_or_die(&f, path);
	const st_tensor *t = st_find(&f, name);
	if (!t || strlen(hex) % 2 || nb == 0 || nb > t->end - t->begin) {
		fprintf(stderr, "stcheck: poke: no tensor '%s' of at least %zu bytes in %s, or bad "
			"hex '%s'\n", name, nb, path, hex);
		return 2;
	}
	size_t off = (size_t)(f.data_start + t->begin), n;
	st_close(&f);
	uint8_t *m = map_file(path, &n, 1);
	for (size_t i = 0; i < nb; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "stcheck: poke: bad hex '%s'\n", hex);
			return 2;
		}
		m[off + i] = (uint8_t)v;
	}
	msync(m, n, MS_SYNC);
	munmap(m, n);
	return 0;
}

int main(int argc, char **argv)
{
	double max_rel = 0;
	int exact = 0, subset = 0, n = 0;
	char *pos[8];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--max-rel") && i + 1 < argc)
			max_rel = atof(argv[++i]);
		else if (!strcmp(argv[i], "--exact"))
			exact = 1;
		else if (!strcmp(argv[i], "--subset"))
			subset = 1;
		else if (n < 8)
			pos[n++] = argv[i];
	}
	if (n == 2 && !strcmp(pos[0], "info"))
		return info(pos[1]);
	if (n == 2 && !strcmp(pos[0], "json"))
		return json_check(pos[1]);
	if (n == 3 && !strcmp(pos[0], "jsonget"))
		return json_get_path(pos[1], pos[2]);
	if (n == 4 && !strcmp(pos[0], "flip"))
		return flip(pos[1], pos[2], pos[3]);
	if (n == 4 && !strcmp(pos[0], "poke"))
		return poke(pos[1], pos[2], pos[3]);
	if (n == 3 && !strcmp(pos[0], "compare"))
		return compare(pos[1], pos[2], max_rel, exact, subset);
	if (n == 5 && !strcmp(pos[0], "npy"))
		return npy_check(pos[1], pos[2], pos[3], pos[4], max_rel);
	fprintf(stderr, "usage: stcheck info FILE | compare A B [--max-rel PCT] [--exact] [--subset] |"
			" npy OUT.npy SRC NAME RANGE [--max-rel PCT] | json FILE | jsonget FILE A/B |"
			" flip FILE SRC NAME |"
			" poke FILE NAME HEX\n");
	return 2;
}
