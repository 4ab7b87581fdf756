/*
 * bench_load: the C baseline of `make bench-python` (python/bench/bench_python.py). Reads every
 * tensor of a store whole with ts_read_slice() into freshly allocated memory, as
 * tstore.numpy.load_file (--dtype f32: float32 for float tensors) or tstore.torch.load_file
 * (--dtype source) do, keeps them all (load_file returns them all), and prints one line
 * (thp: large buffers 2 MiB-aligned with madvise(MADV_HUGEPAGE), as NumPy allocates large
 * arrays; without it plain malloc, as torch.empty):
 *   seconds=S cpu=C bytes=B tensors=N rss_before_kib=K hwm_kib=H
 * (cpu: CPU time of the whole process, every thread, user and system, during the load).
 * Uses only the public API.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tstore.h"

typedef struct out {
	void **bufs;
	size_t n, cap;
	uint64_t bytes;
	int as_source;
	int thp;
	ts_store *st;
	int rc;
} out;

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t k = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, k))
			v = strtol(line + k + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static ts_dtype read_dtype(const ts_tensor_info *i, int as_source)
{
	int is_float = i->source_dtype == TS_F32 || i->source_dtype == TS_BF16 ||
		       i->source_dtype == TS_F16;
	if (!is_float)
		return i->source_dtype;
	return as_source ? i->source_dtype : (i->source_dtype == TS_BF16 ? TS_F32 : i->source_dtype);
}

/* The names, as load_file lists them before reading. */
typedef struct names {
	char **v;
	size_t n, cap;
} names;

static int collect(void *ud, const char *name, const ts_tensor_info *info)
{
	names *l = ud;
	(void)info;
	if (l->n == l->cap && !(l->v = realloc(l->v, (l->cap = 2 * l->cap + 16) * sizeof(char *))))
		return TS_ENOMEM;
	return (l->v[l->n++] = strdup(name)) ? 0 : TS_ENOMEM;
}

/* Read tensor @p name whole into fresh memory kept in @p o. */
static int one(out *o, const char *name)
{
	ts_tensor_info i;
	uint64_t start[TS_MAX_DIMS] = {0}, n = 1;
	int rc = ts_tensor_info_get(&i, o->st, name);
	if (rc < 0)
		return rc;
	ts_dtype dt = read_dtype(&i, o->as_source);
	for (int d = 0; d < i.ndim; d++)
		n *= i.shape[d];
	size_t bytes = (size_t)n * ts_dtype_size(dt);
	void *buf = NULL;
	if (o->thp && bytes >= (4u << 20)) {
		if (posix_memalign(&buf, 2u << 20, bytes) == 0)
			madvise(buf, bytes, MADV_HUGEPAGE);
		else
			buf = NULL;
	} else {
		buf = malloc(bytes ? bytes : 1);
	}
	if (!buf || (o->n == o->cap && !(o->bufs = realloc(o->bufs, (o->cap = 2 * o->cap + 16) *
								       sizeof(void *)))))
		return TS_ENOMEM;
	o->bufs[o->n++] = buf;
	if (n) {
		rc = ts_read_slice(o->st, name, i.ndim, start, i.shape, dt, buf, bytes);
		if (rc < 0)
			return rc;
	}
	o->bytes += bytes;
	return 0;
}

int main(int argc, char **argv)
{
	out o = {0};
	struct timespec a, b, ca, cb;
	long before;
	int rc;

	if (argc == 4 && !strcmp(argv[1], "thp")) {
		o.thp = 1;
		argv++;
		argc--;
	}
	if (argc != 3 || (strcmp(argv[1], "f32") && strcmp(argv[1], "source"))) {
		fprintf(stderr, "usage: bench_load [thp] f32|source STORE\n");
		return 2;
	}
	o.as_source = !strcmp(argv[1], "source");
	before = status_kib("VmRSS:");
	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
	names l = {0};
	rc = ts_store_open(&o.st, argv[2], NULL);
	if (rc == 0)
		rc = ts_tensor_foreach(o.st, collect, &l);
	for (size_t k = 0; rc == 0 && k < l.n; k++)
		rc = one(&o, l.v[k]);
	clock_gettime(CLOCK_MONOTONIC, &b);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
	if (rc < 0) {
		fprintf(stderr, "bench_load: %s: %s\n", argv[2], ts_error_last());
		return 1;
	}
	printf("seconds=%.6f cpu=%.6f bytes=%llu tensors=%zu rss_before_kib=%ld hwm_kib=%ld\n",
	       (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9,
	       (double)(cb.tv_sec - ca.tv_sec) + (double)(cb.tv_nsec - ca.tv_nsec) / 1e9,
	       (unsigned long long)o.bytes, o.n, before, status_kib("VmHWM:"));
	ts_store_close(o.st);
	for (size_t i = 0; i < o.n; i++)
		free(o.bufs[i]);
	free(o.bufs);
	for (size_t k = 0; k < l.n; k++)
		free(l.v[k]);
	free(l.v);
	return 0;
}
