/*
 * I/O backends of the read path: read batches of aligned runs of the data file.
 *
 *   uring  io_uring, O_DIRECT; one submission per batch (queue depth up to TS_IO_QD; a larger
 *          batch goes out in rounds, refilling the ring as completions arrive). Rings come from a
 *          small free list, so any number of threads can read at once without sharing a ring.
 *   pread  O_DIRECT pread(2) on a worker pool of I/O threads (engine/pool.c; TSTORE_IO_THREADS,
 *          default 8; with 1 the calling thread reads one run at a time).
 *   mmap   copies from LMDB's map (req->map_src); no file descriptor.
 *
 * Invariants
 *   1. The backend in effect is io->kind; when it differs from the one asked for, or O_DIRECT was
 *      unavailable, io->note says why (never a silent change).
 *   2. After ts__io_wait() every request of the batch has res set: the bytes read (== len on
 *      success) or a negative errno. The backend never reads outside [offset, offset + len).
 *   3. A batch is owned by one thread from submit to wait; nothing of it is touched after wait.
 */
#ifndef TS_ENGINE_IO_H
#define TS_ENGINE_IO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/pool.h"
#include "tstore.h"

#define TS_IO_ALIGN 4096u
#define TS_IO_QD 32u

typedef struct ts__io_req {
	uint64_t offset;     /* file offset, TS_IO_ALIGN-aligned */
	size_t len;          /* a multiple of TS_IO_ALIGN */
	void *buf;           /* TS_IO_ALIGN-aligned, len bytes */
	const void *map_src; /* mmap backend: the same bytes in the map */
	ssize_t res;         /* after wait: bytes read or -errno */
} ts__io_req;

struct ts__io;

typedef struct ts__io_batch {
	ts__io_req *reqs;
	size_t n;
	int tree; /* LMDB's own pages (the reader's leaves): counted in tree_reads, not reads/bytes */
	/* backend state between submit and wait */
	void *ring;
	size_t next;      /* uring: first request not yet submitted */
	size_t inflight;  /* uring: submitted, not yet completed */
	int sync_err;
	struct ts__io *io;  /* the backend it was submitted to */
	ts__pool_job job;   /* pread: the reads, on the backend's pool */
} ts__io_batch;

struct ts__io_ops {
	int (*submit)(struct ts__io *io, ts__io_batch *b);
	int (*wait)(struct ts__io *io, ts__io_batch *b);
	void (*destroy)(struct ts__io *io);
};

struct ts__io {
	ts_io_backend kind;
	const struct ts__io_ops *ops;
	int fd;          /* the data file (O_DIRECT when direct), -1 for mmap */
	int direct;      /* 1 if fd has O_DIRECT */
	int depth;       /* reads in flight at once: TS_IO_QD (uring), the pread threads, 1 (mmap) */
	char note[160];  /* invariant 1 */
	void *priv;      /* backend state */
	atomic_uint_fast64_t reads;         /* runs read from storage */
	atomic_uint_fast64_t bytes;         /* bytes read from storage */
	atomic_uint_fast64_t map_fallbacks; /* pages copied from the map instead */
	atomic_uint_fast64_t tree_reads;    /* LMDB leaf pages read (batches with tree set) */
};

/** Parse "uring", "pread", "mmap" (case-insensitive). 0 or TS_EINVAL. */
int ts__io_parse(ts_io_backend *out, const char *name);

/** The backend @p want stands for: itself, or for TS_IO_DEFAULT the one TSTORE_IO names (uring
 *  when unset). 0 or TS_EINVAL (a malformed TSTORE_IO). */
int ts__io_resolve(ts_io_backend *out, ts_io_backend want);

/**
 * Create a backend reading @p path (opened O_RDONLY|O_DIRECT; without O_DIRECT, noted, if the
 * file system refuses it). @p want TS_IO_DEFAULT resolves TSTORE_IO, else uring. The uring backend
 * falls back to pread when io_uring_queue_init fails with ENOSYS, EPERM or ENOMEM, noted.
 * For tests, TSTORE_TEST_URING_FAIL=<errno number> in the environment simulates that failure.
 */
int ts__io_create(struct ts__io **out, const char *path, ts_io_backend want);
void ts__io_free(struct ts__io *io);

/** Start reading the batch (the mmap backend copies at once). */
int ts__io_submit(struct ts__io *io, ts__io_batch *b);
/** Wait until every request of the batch is complete (invariant 2). 0, or the first error of the
 *  machinery itself (per-request failures are in req->res). */
int ts__io_wait(struct ts__io *io, ts__io_batch *b);

/* Backend constructors (io_uring.c, io_pread.c, io_mmap.c): fill io->ops and io->priv.
 * ts__io_uring_init returns -errno of io_uring_queue_init on failure. */
int ts__io_uring_init(struct ts__io *io);
int ts__io_pread_init(struct ts__io *io);
int ts__io_mmap_init(struct ts__io *io);

/** Set up the store's I/O backend @p want (TS_IO_DEFAULT resolves TSTORE_IO, then uring with the
 *  pread fallback on ENOSYS/EPERM/ENOMEM); sets st->io to the backend in effect. */
int ts__io_open(ts_store *st, ts_io_backend want);
void ts__io_close(ts_store *st);

#endif
