/*
 * Reading import sources ahead (tools/cli/srcread.h).
 *
 * Why not the mapping: a fresh mapping of a cold source is faulted in 4 KiB at a time, each
 * fault costing microseconds on a virtual machine, on the thread that encodes; here one thread
 * reads with O_DIRECT, in aligned requests of a few MiB straight into the buffers the encoder
 * reads from, while the encoder works on the previous buffer.
 *
 * Invariants
 *   1. Piece k lives in slot k % NSLOTS; the reader fills a slot only when it is FREE, the
 *      caller reads it only when it is READY; srcread_next() hands the previous slot back.
 *   2. Every read request is aligned to ALIGN in file offset, length and memory (O_DIRECT's
 *      rule); the bytes asked for start at data = buf + (offset % ALIGN).
 *   3. Where O_DIRECT is refused (a file system without it), the caller's descriptor is read
 *      the ordinary way; the pieces are the same.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tools/cli/scan.h"
#include "tools/cli/srcread.h"

#define NSLOTS 2
#define ALIGN 4096u
#define REQUEST (8u << 20) /* bytes per read call */
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

/* Read @p len bytes at @p off of range @p g into @p s; 0 or -1 with r->err set. */
static int read_piece(srcread *r, const sr_range *g, uint64_t off, uint64_t len, slot *s)
{
	uint64_t fo = g->offset + off, a0 = fo / ALIGN * ALIGN;
	uint64_t need = fo + len - a0, want = (need + ALIGN - 1) / ALIGN * ALIGN, done = 0;
	int fd;

	if (len == 0) {
		s->piece.data = s->buf;
		s->piece.offset = off;
		s->piece.bytes = 0;
		s->piece.mx = 0;
		s->piece.bad = 0;
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
	while (done < need) {
		size_t ask = want - done > REQUEST ? REQUEST : (size_t)(want - done);
		ssize_t k = fd >= 0 ? pread(fd, s->buf + done, ask, (off_t)(a0 + done)) : -1;
		if (k < 0 && (fd < 0 || errno == EINVAL)) /* invariant 3 */
			k = pread(g->fd, s->buf + done, ask, (off_t)(a0 + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(r->err, sizeof(r->err), "%s: reading %zu bytes at offset %llu: %s",
				 g->path, ask, (unsigned long long)(a0 + done), strerror(errno));
			return -1;
		}
		if (k == 0) {
			snprintf(r->err, sizeof(r->err), "%s: the file ends at offset %llu, before "
				 "the tensor data it announced (truncated while importing?)",
				 g->path, (unsigned long long)(a0 + done));
			return -1;
		}
		done += (uint64_t)k;
	}
	s->piece.data = s->buf + (fo - a0);
	s->piece.offset = off;
	s->piece.bytes = len;
	s->piece.mx = 0;
	s->piece.bad = 0;
	if (g->scan)
		scan_add(s->piece.data, len / ts_dtype_size(g->dtype), g->dtype, &s->piece.mx,
			 &s->piece.bad);
	return 0;
}

static void *reader_main(void *arg)
{
	srcread *r = arg;
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
				return NULL;
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
				return NULL;
			off += len;
			k++;
		} while (off < g->bytes);
	}
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
