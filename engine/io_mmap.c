/*
 * The mmap backend: copy each run from LMDB's map (req->map_src, valid while the caller's read
 * transaction is open and map_lock is held shared). No file descriptor, no O_DIRECT. LMDB maps
 * with MADV_RANDOM (MDB_NORDAHEAD), so a cold run would fault in one 4 KiB page at a time: the
 * whole batch is announced with MADV_WILLNEED first, letting the kernel read the runs at once.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/io.h"

static int mmap_submit(struct ts__io *io, ts__io_batch *b)
{
	(void)io;
	for (size_t i = 0; b->n > 1 && i < b->n; i++) {
		uintptr_t a = (uintptr_t)b->reqs[i].map_src & ~(uintptr_t)(TS_IO_ALIGN - 1);
		if (b->reqs[i].map_src)
			madvise((void *)a, (uintptr_t)b->reqs[i].map_src + b->reqs[i].len - a,
				MADV_WILLNEED);
	}
	for (size_t i = 0; i < b->n; i++) {
		ts__io_req *q = &b->reqs[i];
		if (!q->map_src) {
			q->res = -EINVAL;
			continue;
		}
		memcpy(q->buf, q->map_src, q->len);
		q->res = (ssize_t)q->len;
	}
	return 0;
}

static int mmap_wait(struct ts__io *io, ts__io_batch *b)
{
	(void)io;
	(void)b;
	return 0;
}

static const struct ts__io_ops mmap_ops = {
	.submit = mmap_submit,
	.wait = mmap_wait,
	.destroy = NULL,
};

int ts__io_mmap_init(struct ts__io *io)
{
	io->ops = &mmap_ops;
	io->depth = 1;
	return 0;
}
