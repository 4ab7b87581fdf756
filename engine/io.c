/*
 * Choosing, opening and closing the read path's I/O backend (see engine/io.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/env.h"
#include "common/error.h"
#include "engine/handle.h"
#include "engine/io.h"

TS_API const char *ts_io_backend_name(ts_io_backend io)
{
	switch (io) {
	case TS_IO_URING:
		return "uring";
	case TS_IO_PREAD:
		return "pread";
	case TS_IO_MMAP:
		return "mmap";
	case TS_IO_DEFAULT:
		return "default";
	}
	return "?";
}

int ts__io_parse(ts_io_backend *out, const char *name)
{
	static const ts_io_backend all[] = {TS_IO_URING, TS_IO_PREAD, TS_IO_MMAP};

	for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcasecmp(name, ts_io_backend_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	return ts__err(TS_EINVAL, "unknown I/O backend '%s' (expected uring, pread or mmap)",
		       name ? name : "(null)");
}

int ts__io_resolve(ts_io_backend *out, ts_io_backend want)
{
	const char *env;

	*out = want;
	if (want != TS_IO_DEFAULT)
		return 0;
	*out = TS_IO_URING;
	env = ts__env("TSTORE_IO");
	if (env && ts__io_parse(out, env) != 0)
		return ts__env_bad("TSTORE_IO", env, "uring, pread or mmap");
	return 0;
}

static int open_data_file(struct ts__io *io, const char *path)
{
	io->fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (io->fd >= 0) {
		io->direct = 1;
		return 0;
	}
	if (errno != EINVAL)
		return ts__err_errno(errno, "opening '%s' for reading", path);
	/* The file system does not support O_DIRECT (tmpfs): read through the page cache. */
	io->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (io->fd < 0)
		return ts__err_errno(errno, "opening '%s' for reading", path);
	io->direct = 0;
	snprintf(io->note + strlen(io->note), sizeof(io->note) - strlen(io->note),
		 "%sno O_DIRECT on this file system", io->note[0] ? "; " : "");
	return 0;
}

int ts__io_create(struct ts__io **out, const char *path, ts_io_backend want)
{
	struct ts__io *io;
	int rc;

	*out = NULL;
	rc = ts__io_resolve(&want, want);
	if (rc < 0)
		return rc;
	if (want != TS_IO_URING && want != TS_IO_PREAD && want != TS_IO_MMAP)
		return ts__err(TS_EINVAL, "unknown I/O backend %d", (int)want);
	io = calloc(1, sizeof(*io));
	if (!io)
		return ts__err(TS_ENOMEM, "I/O backend: out of memory");
	io->fd = -1;
	io->kind = want;
	if (want != TS_IO_MMAP) {
		rc = open_data_file(io, path);
		if (rc)
			goto fail;
	}
	if (want == TS_IO_URING) {
		rc = ts__io_uring_init(io);
		if (rc == -ENOSYS || rc == -EPERM || rc == -ENOMEM) {
			char tail[sizeof(io->note)];
			snprintf(tail, sizeof(tail), "%s", io->note);
			snprintf(io->note, sizeof(io->note), "io_uring unavailable (%.40s): using pread%s%.60s",
				 strerror(-rc), tail[0] ? "; " : "", tail);
			io->kind = TS_IO_PREAD;
		} else if (rc < 0) {
			rc = ts__err_errno(-rc, "io_uring_queue_init");
			goto fail;
		}
	}
	if (io->kind == TS_IO_PREAD)
		rc = ts__io_pread_init(io);
	else if (io->kind == TS_IO_MMAP)
		rc = ts__io_mmap_init(io);
	if (rc)
		goto fail;
	*out = io;
	return 0;
fail:
	if (io->fd >= 0)
		close(io->fd);
	free(io);
	return rc;
}

void ts__io_free(struct ts__io *io)
{
	if (!io)
		return;
	if (io->ops && io->ops->destroy)
		io->ops->destroy(io);
	if (io->fd >= 0)
		close(io->fd);
	free(io);
}

int ts__io_submit(struct ts__io *io, ts__io_batch *b)
{
	b->next = 0;
	b->inflight = 0;
	b->sync_err = 0;
	b->ring = NULL;
	b->io = io;
	for (size_t i = 0; i < b->n; i++)
		b->reqs[i].res = -EINPROGRESS;
	if (b->n == 0)
		return 0;
	return io->ops->submit(io, b);
}

int ts__io_wait(struct ts__io *io, ts__io_batch *b)
{
	int rc;

	if (b->n == 0)
		return 0;
	rc = io->ops->wait(io, b);
	for (size_t i = 0; i < b->n; i++) {
		if (b->tree) {
			atomic_fetch_add_explicit(&io->tree_reads, b->reqs[i].res > 0,
						  memory_order_relaxed);
		} else if (b->reqs[i].res > 0) {
			atomic_fetch_add_explicit(&io->reads, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&io->bytes, (uint64_t)b->reqs[i].res,
						  memory_order_relaxed);
		}
	}
	return rc;
}

/* -- the store's hooks (called by engine/store.c) ---------------------------------------------- */

int ts__io_open(ts_store *st, ts_io_backend want)
{
	struct ts__io *io;
	int rc = ts__io_create(&io, st->path, want);

	if (rc)
		return rc;
	st->io_ctx = io;
	st->io = io->kind;
	return 0;
}

void ts__io_close(ts_store *st)
{
	if (!st)
		return;
	ts__io_free(st->io_ctx);
	st->io_ctx = NULL;
}

TS_API const char *ts_store_io_detail(const ts_store *st)
{
	return st && st->io_ctx ? st->io_ctx->note : "";
}
