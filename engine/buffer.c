/*
 * Destination memory for loads: ts_buffer_alloc() and ts_buffer_free().
 *
 * A load decodes hundreds of MiB into memory that was never touched. Faulting such memory in
 * 4 KiB at a time costs more than the load itself on some machines (a VM measured ~3 us per
 * fault: 330 MB of fresh memory took 1.1 s to touch, the load 0.3 s). A buffer from here is a
 * private anonymous mapping aligned to 2 MiB with MADV_HUGEPAGE, so that transparent huge pages
 * can back it (512 times fewer faults), and it is populated before it is returned, in 2 MiB
 * pieces spread over the store's worker pool (MADV_POPULATE_WRITE where the kernel has it, else
 * one write per 4 KiB page).
 *
 * Invariants
 *   1. The mapping is size rounded up to 2 MiB, starting at a 2 MiB boundary; the caller's
 *      pointer is its start, so ts_buffer_free() can unmap it from (pointer, size) alone.
 *   2. Every byte is zero when returned (fresh anonymous memory), and every page is present.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "common/error.h"
#include "engine/handle.h"
#include "engine/pool.h"

#define HUGE (2u << 20)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static size_t map_len(size_t size)
{
	return (size + HUGE - 1) & ~(size_t)(HUGE - 1);
}

struct populate {
	uint8_t *base;
	size_t len;
};

static int populate_piece(void *ud, uint64_t i)
{
	struct populate *p = ud;
	uint8_t *a = p->base + i * HUGE;
	size_t n = p->len - i * HUGE < HUGE ? p->len - i * HUGE : HUGE;

	if (madvise(a, n, MADV_POPULATE_WRITE) != 0)
		for (size_t off = 0; off < n; off += 4096)
			((volatile uint8_t *)a)[off] = 0;
	return 0;
}

TS_API int ts_buffer_alloc(void **out, ts_store *st, size_t size)
{
	size_t len, extra;
	uint8_t *m, *p;
	struct populate pop;

	if (!out)
		return ts__err(TS_EINVAL, "ts_buffer_alloc: NULL out");
	*out = NULL;
	if (size == 0)
		return ts__err(TS_EINVAL, "ts_buffer_alloc: size 0");
	len = map_len(size);
	if (len < size || len + HUGE < len)
		return ts__err(TS_ENOMEM, "ts_buffer_alloc: %zu bytes", size);
	/* map one huge page more and trim to a 2 MiB boundary */
	m = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return ts__err_errno(errno, "ts_buffer_alloc: mapping %zu bytes", len);
	p = (uint8_t *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	extra = (size_t)(p - m);
	if (extra)
		munmap(m, extra);
	if (HUGE - extra)
		munmap(p + len, HUGE - extra);
	madvise(p, len, MADV_HUGEPAGE); /* advice: without THP the buffer still works */
	pop.base = p;
	pop.len = len;
	if (st && st->pool)
		ts__pool_run(st->pool, len / HUGE, populate_piece, &pop);
	else
		for (uint64_t i = 0; i < len / HUGE; i++)
			populate_piece(&pop, i);
	*out = p;
	return 0;
}

TS_API void ts_buffer_free(void *buf, size_t size)
{
	if (buf && size)
		munmap(buf, map_len(size));
}
