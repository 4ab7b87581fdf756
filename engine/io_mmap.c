/*
 * The mmap backend: copy each run from LMDB's map (req->map_src, valid while the caller's read
 * transaction is open and map_lock is held shared). No file descriptor, no O_DIRECT.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "engine/io.h"

static int mmap_submit(struct ts__io *io, ts__io_batch *b)
{
	(void)io;
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
	return 0;
}
