/*
 * libFuzzer target: opening a store file and reading everything in it. The input is written to a
 * file (in $TMPDIR, per process) and opened read-only with the mmap or pread backend (first byte);
 * every tensor is listed, described and read whole (up to 4 M elements) and in one slice.
 * Any outcome but a crash, a hang or a sanitizer report is acceptable: errors are expected.
 * LMDB itself is not instrumented: its out-of-bounds reads show as SEGV, not ASan reports.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[256];

static int each(void *ud, const char *name, const ts_tensor_info *info)
{
	ts_store *st = ud;
	uint64_t n = 1, start[TS_MAX_DIMS] = {0}, count[TS_MAX_DIMS];
	ts_tensor_info again;
	if (ts_tensor_info_get(&again, st, name) != 0)
		return 0;
	for (int i = 0; i < info->ndim; i++) {
		count[i] = info->shape[i];
		if (count[i] && n > (4u << 20) / count[i])
			return 0;
		n *= count[i];
	}
	if (n == 0 || n > (4u << 20))
		return 0;
	float *buf = malloc(n * sizeof *buf);
	if (!buf)
		return 0;
	ts_read_slice(st, name, info->ndim, start, count, TS_F32, buf, n * sizeof *buf);
	if (info->ndim > 0) {
		start[0] = info->shape[0] / 2;
		count[0] = info->shape[0] - start[0];
		ts_read_slice(st, name, info->ndim, start, count, TS_F32, buf, n * sizeof *buf);
	}
	free(buf);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!path[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(path, sizeof path, "%s/fuzz-store-%d.tst", tmp ? tmp : "/tmp", (int)getpid());
	}
	char lock[300];
	snprintf(lock, sizeof lock, "%s-lock", path);
	unlink(lock);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	size_t off = 1;
	while (off < size) {
		ssize_t k = write(fd, data + off, size - off);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	close(fd);
	ts_open_opts o;
	ts_open_opts_init(&o);
	o.io = data[0] & 1 ? TS_IO_PREAD : TS_IO_MMAP;
	o.cache_bytes = data[0] & 2 ? 0 : 1 << 20;
	o.threads = 1;
	ts_store *st;
	if (ts_store_open(&st, path, &o) == 0) {
		ts_tensor_foreach(st, each, st);
		ts_store_close(st);
	}
	unlink(path);
	unlink(lock);
	return 0;
}
