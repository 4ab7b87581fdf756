/*
 * Reading import sources ahead (tools/cli/srcread.h).
 *
 * Why not the mapping: a fresh mapping of a cold source is faulted in 4 KiB at a time, each
 * fault costing microseconds on a virtual machine, on the thread that encodes; here one thread
 * reads with O_DIRECT, in aligned requests of a few MiB straight into the buffers the encoder
 * reads from, while the encoder works on the previous buffer.
 *
 * Why io_uring: with one blocking pread at a time the disk waited while the thread scanned the
 * request it had just read and while the kernel cleared the fresh buffer pages of the next one
 * (the reader was busy 0.31 s for a 0.2 s read of a 319 MB source, and the encoder waited for
 * it); with DEPTH requests in flight the disk reads the next ones meanwhile.
 *
 * Invariants
 *   1. Piece k lives in slot k % NSLOTS; the reader fills a slot only when it is FREE, the
 *      caller reads it only when it is READY; srcread_next() hands the previous slot back.
 *   2. Every read request is aligned to ALIGN in file offset, length and memory (O_DIRECT's
 *      rule); the bytes asked for start at data = buf + (offset % ALIGN).
 *   3. Where O_DIRECT is refused (a file system without it), the caller's descriptor is read
 *      the ordinary way; the pieces are the same. Where io_uring is not available, the
 *      requests are read one at a time with pread; the pieces are the same.
 *   4. A piece's scan covers exactly its elements once: the bytes read are scanned in order,
 *      as far as the requests read so far reach without a gap, in whole elements.
 *   5. No request is in flight when read_piece() returns, whatever happened: a buffer is
 *      never freed or refilled under the kernel.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli/scan.h"
#include "tools/cli/srcread.h"

#define NSLOTS 2
#define ALIGN 4096u
#define REQUEST (8u << 20) /* bytes per read request */
#define DEPTH 4             /* read requests in flight (io_uring) */
#define WAIT_TRIES 1000     /* waits for completions retried after EINTR, EAGAIN, EBUSY */
#define RESEND_MAX 1000     /* short or interrupted requests sent again, per piece */
#define PIECE_MIN (1u << 20)
#define HUGE (2u << 20) /* buffers are aligned to huge pages and asked to use them */

enum { FREE, READY };

typedef struct slot {
	uint8_t *buf;
	size_t cap;
	int state;
	sr_piece piece;
} slot;

typedef struct dfd {
	int fd;  /* the caller's descriptor */
	int dfd; /* the same file opened with O_DIRECT, or -1 */
} dfd;

struct srcread {
	sr_range *ranges;
	size_t n;
	uint64_t budget;    /* bytes of buffers, for srcread_range_piece() */
	uint64_t buf_bytes; /* the largest read request of a piece */
	dfd *fds;
	size_t nfds;
	slot slots[NSLOTS];
	uint64_t next; /* the piece the caller gets next */
	int held;      /* the caller holds piece next - 1 */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int started;
	int stop;
	int failed;
	char err[1024];
	struct io_uring ring; /* the reading thread's, if ring_made */
	int ring_made;
	int ring_ok;          /* made, and nothing left in flight on it (invariant 5) */
};

/* @p cap bytes (a multiple of HUGE) at a HUGE-aligned address, in huge pages where the kernel
 * has them: the scan and the encoder then walk the buffer without a TLB miss every 4 KiB. */
static uint8_t *buf_alloc(size_t cap)
{
	uint8_t *m = mmap(NULL, cap + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	uintptr_t a;

	if (m == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)m + HUGE - 1) / HUGE * HUGE;
	if (a > (uintptr_t)m)
		munmap(m, a - (uintptr_t)m);
	munmap((uint8_t *)a + cap, (uintptr_t)m + HUGE - a);
	(void)madvise((void *)a, cap, MADV_HUGEPAGE);
	return (uint8_t *)a;
}

static void buf_free(slot *s)
{
	if (s->buf)
		munmap(s->buf, s->cap);
	s->buf = NULL;
	s->cap = 0;
}

static int direct_fd(srcread *r, const sr_range *g)
{
	for (size_t i = 0; i < r->nfds; i++)
		if (r->fds[i].fd == g->fd)
			return r->fds[i].dfd;
	dfd *nf = realloc(r->fds, (r->nfds + 1) * sizeof(*nf));
	if (!nf)
		return -1;
	r->fds = nf;
	nf[r->nfds].fd = g->fd;
	nf[r->nfds].dfd = open(g->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	return nf[r->nfds++].dfd;
}

/* The scan of a piece as its bytes arrive (invariant 4). */
typedef struct piece_scan {
	const sr_range *g;
	slot *s;
	uint64_t head;  /* bytes of the buffer before the piece's data */
	uint64_t done;  /* its elements scanned */
} piece_scan;

/* Scan the piece's elements that lie within the first @p have bytes of the buffer. */
static void scan_upto(piece_scan *ps, uint64_t have)
{
	uint64_t esz, n, upto;

	if (!ps->g->scan || have <= ps->head || !(esz = ts_dtype_size(ps->g->dtype)))
		return;
	n = ps->s->piece.bytes / esz;
	upto = (have - ps->head) / esz;
	if (upto > n)
		upto = n;
	if (upto > ps->done)
		scan_add(ps->s->piece.data + ps->done * esz, upto - ps->done, ps->g->dtype,
			 &ps->s->piece.mx, &ps->s->piece.bad);
	ps->done = upto > ps->done ? upto : ps->done;
}

static void say_read_error(srcread *r, const sr_range *g, uint64_t at, size_t ask, int e)
{
	snprintf(r->err, sizeof(r->err), "%s: reading %zu bytes at offset %llu: %s", g->path, ask,
		 (unsigned long long)at, strerror(e));
}

/* The file ends before offset @p at: where it ends (its size, which requests completing out of
 * order may not show), else @p at. */
static void say_truncated(srcread *r, const sr_range *g, uint64_t at)
{
	struct stat sb;

	if (fstat(g->fd, &sb) == 0 && (uint64_t)sb.st_size < at)
		at = (uint64_t)sb.st_size;
	snprintf(r->err, sizeof(r->err), "%s: the file ends at offset %llu, before "
		 "the tensor data it announced (truncated while importing?)",
		 g->path, (unsigned long long)at);
}

/* Bytes [a0 + done, a0 + need) of the file into s->buf (the first @p done read and scanned
 * already), one request at a time with pread: from @p fd (O_DIRECT) where it is not -1, else (or
 * where it refuses) from the caller's descriptor. */
static int read_sync(srcread *r, const sr_range *g, int fd, uint64_t a0, uint64_t need,
		     uint64_t want, piece_scan *ps, uint64_t done)
{
	slot *s = ps->s;

	while (done < need) {
		size_t ask = want - done > REQUEST ? REQUEST : (size_t)(want - done);
		ssize_t k = fd >= 0 ? pread(fd, s->buf + done, ask, (off_t)(a0 + done)) : -1;
		if (k < 0 && (fd < 0 || errno == EINVAL)) /* invariant 3 */
			k = pread(g->fd, s->buf + done, ask, (off_t)(a0 + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			say_read_error(r, g, a0 + done, ask, errno);
			return -1;
		}
		if (k == 0) {
			say_truncated(r, g, a0 + done);
			return -1;
		}
		done += (uint64_t)k;
		scan_upto(ps, done);
	}
	return 0;
}

/* One request of read_uring(): bytes [at, at + len) of the buffer, @p got of them read. */
typedef struct uring_req {
	uint64_t at;
	size_t len, got;
	int done;
} uring_req;

static void uring_send(struct io_uring_sqe *q, int fd, uint64_t a0, uint8_t *buf, uint64_t i,
		       const uring_req *e)
{
	io_uring_prep_read(q, fd, buf + e->at + e->got, (unsigned)(e->len - e->got),
			   a0 + e->at + e->got);
	io_uring_sqe_set_data64(q, i);
}

/* Send the rest of request @p i again (a short read, or one interrupted). 0 or -1. */
static int uring_resend(srcread *r, const sr_range *g, int fd, uint64_t a0, uint8_t *buf,
			uint64_t i, const uring_req *e, unsigned *inflight)
{
	struct io_uring_sqe *q = io_uring_get_sqe(&r->ring);

	if (!q) {
		say_read_error(r, g, a0 + e->at + e->got, e->len - e->got, EBUSY);
		return -1;
	}
	uring_send(q, fd, a0, buf, i, e);
	(*inflight)++;
	return 0;
}

/* Wait for one completion at least, through interruptions and a busy ring; the last error. */
static int uring_wait(srcread *r)
{
	int k = 0;

	for (int tries = 0; tries < WAIT_TRIES; tries++) {
		k = io_uring_submit_and_wait(&r->ring, 1);
		if (k >= 0 || (k != -EINTR && k != -EAGAIN && k != -EBUSY))
			break;
	}
	return k < 0 ? k : 0;
}

/* Invariant 5 for read_uring(): wait for the @p inflight requests still out. If that cannot be
 * done, the slot's buffer is abandoned to the kernel (never freed nor reused) and the ring is
 * not used again. 0, or -1 with r->err set. */
static int uring_drain(srcread *r, const sr_range *g, slot *s, unsigned inflight)
{
	while (inflight > 0) {
		struct io_uring_cqe *c;
		int k = uring_wait(r);
		if (k < 0) {
			snprintf(r->err, sizeof(r->err), "%s: cannot wait for %u reads in flight: %s",
				 g->path, inflight, strerror(-k));
			r->ring_ok = 0;
			s->buf = NULL; /* left mapped: the kernel may still write into it */
			s->cap = 0;
			return -1;
		}
		while (inflight > 0 && io_uring_peek_cqe(&r->ring, &c) == 0) {
			io_uring_cqe_seen(&r->ring, c);
			inflight--;
		}
	}
	return 0;
}

/* The same as read_sync() through io_uring, DEPTH requests in flight on O_DIRECT descriptor
 * @p fd, scanning what has arrived while the rest is read. 0; -1 with r->err set; 1: the
 * descriptor refused a read (EINVAL, invariant 3) or the ring failed: the first *@p resume
 * bytes are read and scanned, read_sync() reads the rest. Returns with nothing in flight
 * (invariant 5). */
static int read_uring(srcread *r, const sr_range *g, int fd, uint64_t a0, uint64_t need,
		      uint64_t want, piece_scan *ps, uint64_t *resume)
{
	uring_req q[DEPTH];
	uint64_t next = 0, lo = 0, hi = 0, prefix = 0; /* requests [lo, hi) issued, not retired */
	unsigned inflight = 0, resent = 0;
	int rc = 0;

	while (rc == 0 && prefix < need) {
		struct io_uring_cqe *c;
		int k;
		while (hi - lo < DEPTH && next < want) {
			struct io_uring_sqe *sq = io_uring_get_sqe(&r->ring);
			uring_req *e = &q[hi % DEPTH];
			if (!sq)
				break;
			e->at = next;
			e->len = want - next > REQUEST ? REQUEST : (size_t)(want - next);
			e->got = 0;
			e->done = 0;
			uring_send(sq, fd, a0, ps->s->buf, hi, e);
			next += e->len;
			hi++;
			inflight++;
		}
		k = uring_wait(r);
		if (k < 0) {
			rc = 1; /* the ring failed: the rest with pread */
			break;
		}
		while (rc == 0 && io_uring_peek_cqe(&r->ring, &c) == 0) {
			uint64_t i = io_uring_cqe_get_data64(c);
			uring_req *e = &q[i % DEPTH];
			int res = c->res;
			io_uring_cqe_seen(&r->ring, c);
			inflight--;
			if (res == -EINVAL) {
				rc = 1; /* invariant 3 */
			} else if (res < 0 && res != -EINTR && res != -EAGAIN) {
				say_read_error(r, g, a0 + e->at + e->got, e->len - e->got, -res);
				rc = -1;
			} else if (res == 0 && e->at + e->got < need) {
				say_truncated(r, g, a0 + e->at + e->got);
				rc = -1;
			} else {
				e->got += res > 0 ? (size_t)res : 0;
				if (res == 0 || e->got == e->len || e->at + e->got >= need)
					e->done = 1;
				else if (res > 0 && e->got % ALIGN) /* the file ends mid-block */
					say_truncated(r, g, a0 + e->at + e->got), rc = -1;
				else if (++resent > RESEND_MAX)
					say_read_error(r, g, a0 + e->at + e->got, e->len - e->got,
						       EAGAIN), rc = -1;
				else
					rc = uring_resend(r, g, fd, a0, ps->s->buf, i, e, &inflight);
			}
		}
		while (lo < hi && q[lo % DEPTH].done) {
			prefix = q[lo % DEPTH].at + q[lo % DEPTH].got;
			lo++;
		}
		if (rc == 0)
			scan_upto(ps, prefix);
	}
	*resume = prefix < need ? prefix : need; /* whole requests: ALIGN-aligned where < need */
	if (uring_drain(r, g, ps->s, inflight) < 0)
		return -1;
	return rc;
}

/* Read @p len bytes at @p off of range @p g into @p s, scanning them if the range asks;
 * 0 or -1 with r->err set. */
static int read_piece(srcread *r, const sr_range *g, uint64_t off, uint64_t len, slot *s)
{
	uint64_t fo = g->offset + off, a0 = fo / ALIGN * ALIGN;
	uint64_t need = fo + len - a0, want = (need + ALIGN - 1) / ALIGN * ALIGN;
	piece_scan ps = {g, s, fo - a0, 0};
	uint64_t done = 0;
	int fd, rc = 1;

	s->piece.offset = off;
	s->piece.bytes = len;
	s->piece.mx = 0;
	s->piece.bad = 0;
	if (len == 0) {
		s->piece.data = s->buf;
		return 0;
	}
	fd = direct_fd(r, g);
	if (want > s->cap) {
		/* once, at the largest piece to come: fresh pages are cleared once, not per growth */
		size_t cap = want > r->buf_bytes ? want : r->buf_bytes;
		cap = (cap + HUGE - 1) / HUGE * HUGE;
		buf_free(s);
		s->buf = buf_alloc(cap);
		if (!s->buf) {
			snprintf(r->err, sizeof(r->err), "%s: out of memory for a read buffer of %zu bytes",
				 g->path, cap);
			return -1;
		}
		s->cap = cap;
	}
	s->piece.data = s->buf + (fo - a0);
	if (fd >= 0 && r->ring_ok)
		rc = read_uring(r, g, fd, a0, need, want, &ps, &done);
	if (rc > 0)
		rc = read_sync(r, g, fd, a0, need, want, &ps, done);
	return rc;
}

static void reader_loop(srcread *r)
{
	uint64_t k = 0;

	for (size_t i = 0; i < r->n; i++) {
		const sr_range *g = &r->ranges[i];
		uint64_t off = 0;
		do {
			uint64_t m = srcread_range_piece(r->budget, g);
			uint64_t len = g->bytes - off < m ? g->bytes - off : m;
			slot *s = &r->slots[k % NSLOTS];
			int rc, stop;

			pthread_mutex_lock(&r->lock);
			while (s->state != FREE && !r->stop)
				pthread_cond_wait(&r->cond, &r->lock);
			stop = r->stop;
			pthread_mutex_unlock(&r->lock);
			if (stop)
				return;
			rc = read_piece(r, g, off, len, s);
			pthread_mutex_lock(&r->lock);
			if (rc < 0) {
				r->failed = 1;
			} else {
				s->piece.range = i;
				s->piece.last = off + len == g->bytes;
				s->state = READY;
			}
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->lock);
			if (rc < 0)
				return;
			off += len;
			k++;
		} while (off < g->bytes);
	}
}

static void *reader_main(void *arg)
{
	srcread *r = arg;

	r->ring_made = r->ring_ok = io_uring_queue_init(DEPTH, &r->ring, 0) == 0;
	reader_loop(r);
	if (r->ring_made)
		io_uring_queue_exit(&r->ring);
	return NULL;
}

int srcread_start(srcread **out, const sr_range *ranges, size_t n, uint64_t budget, char *err,
		  size_t err_size)
{
	srcread *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r || !(r->ranges = malloc((n ? n : 1) * sizeof(*ranges)))) {
		free(r);
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	memcpy(r->ranges, ranges, n * sizeof(*ranges));
	r->n = n;
	r->budget = budget;
	for (size_t i = 0; i < n; i++) {
		uint64_t m = srcread_range_piece(budget, &ranges[i]);
		uint64_t b = ranges[i].bytes < m ? ranges[i].bytes : m;
		if (b + 2 * ALIGN > r->buf_bytes)
			r->buf_bytes = b + 2 * ALIGN;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
		snprintf(err, err_size, "cannot start the reading thread");
		srcread_stop(r);
		return -1;
	}
	r->started = 1;
	*out = r;
	return 0;
}

uint64_t srcread_piece_max(uint64_t budget)
{
	/* one buffer's share, less the alignment slack, in whole ALIGN units */
	uint64_t m = budget / NSLOTS > 2 * ALIGN ? (budget / NSLOTS - 2 * ALIGN) / ALIGN * ALIGN : 0;
	return m < PIECE_MIN ? PIECE_MIN : m;
}

uint64_t srcread_range_piece(uint64_t budget, const sr_range *g)
{
	uint64_t m = srcread_piece_max(budget);

	if (g->scan && g->bytes <= m)
		return m;
	return m < SRCREAD_STREAM_PIECE ? m : SRCREAD_STREAM_PIECE;
}

int srcread_next(srcread *r, sr_piece *p, char *err, size_t err_size)
{
	slot *s = &r->slots[r->next % NSLOTS];
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	if (r->held) {
		r->slots[(r->next - 1) % NSLOTS].state = FREE;
		r->held = 0;
		pthread_cond_broadcast(&r->cond);
	}
	while (s->state != READY && !r->failed)
		pthread_cond_wait(&r->cond, &r->lock);
	if (s->state == READY) {
		*p = s->piece;
		r->next++;
		r->held = 1;
	} else {
		snprintf(err, err_size, "%s", r->err);
		rc = -1;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void srcread_stop(srcread *r)
{
	if (!r)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->lock);
		r->stop = 1;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
	}
	for (size_t i = 0; i < r->nfds; i++)
		if (r->fds[i].dfd >= 0)
			close(r->fds[i].dfd);
	for (int i = 0; i < NSLOTS; i++)
		buf_free(&r->slots[i]);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r->fds);
	free(r->ranges);
	free(r);
}
