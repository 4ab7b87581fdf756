/*
 * Belady's offline optimum (see tools/bench/belady.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tools/bench/belady.h"

typedef struct heap_item {
	uint64_t next;
	uint64_t slot; /* index into the resident table */
	uint64_t ver;
} heap_item;

typedef struct resident {
	uint64_t key;
	uint64_t next;
	uint64_t bytes;
	uint64_t ver;
	int live;
} resident;

/* open-addressing map key -> slot */
typedef struct kmap {
	uint64_t *keys;
	uint64_t *vals;
	size_t mask;
} kmap;

static int kmap_init(kmap *m, size_t n)
{
	size_t cap = 64;
	while (cap < n * 2)
		cap <<= 1;
	m->keys = malloc(cap * sizeof(uint64_t));
	m->vals = malloc(cap * sizeof(uint64_t));
	m->mask = cap - 1;
	if (!m->keys || !m->vals)
		return -1;
	memset(m->keys, 0xFF, cap * sizeof(uint64_t));
	return 0;
}

static uint64_t *kmap_slot(kmap *m, uint64_t key)
{
	size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & m->mask;
	while (m->keys[i] != UINT64_MAX && m->keys[i] != key)
		i = (i + 1) & m->mask;
	if (m->keys[i] == UINT64_MAX) {
		m->keys[i] = key;
		m->vals[i] = UINT64_MAX;
	}
	return &m->vals[i];
}

static void heap_push(heap_item *h, size_t *n, heap_item it)
{
	size_t i = (*n)++;
	while (i > 0 && h[(i - 1) / 2].next < it.next) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = it;
}

static heap_item heap_pop(heap_item *h, size_t *n)
{
	heap_item top = h[0], last = h[--(*n)];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1].next > h[c].next)
			c++;
		if (h[c].next <= last.next)
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = last;
	return top;
}

/*
 * Belady with bypass on variable page sizes: hits / accesses. A miss is kept only if enough
 * resident pages are needed later than it to make room; those needed furthest are evicted.
 */
int belady_hit_ratio(const belady_access *acc, size_t n, uint64_t budget, double *ratio)
{
	kmap m = {0};
	resident *res = calloc(n ? n : 1, sizeof(*res));
	heap_item *heap = malloc((n + 1) * sizeof(*heap));
	heap_item *popped = malloc((n + 1) * sizeof(*popped));
	size_t nres = 0, nheap = 0;
	uint64_t used = 0, hits = 0;
	int rc = -1;

	if (!res || !heap || !popped || kmap_init(&m, n))
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint64_t *slot = kmap_slot(&m, acc[i].key);
		resident *r = *slot != UINT64_MAX ? &res[*slot] : NULL;
		if (r && r->live) {
			hits++;
			r->next = acc[i].next;
			r->ver++;
			/* the old heap item goes stale (version); at most one push per access */
			heap_push(heap, &nheap, (heap_item){r->next, *slot, r->ver});
			continue;
		}
		uint64_t need = acc[i].bytes, nx = acc[i].next;
		if (nx == UINT64_MAX || need > budget)
			continue; /* never used again, or can never fit: do not keep */
		size_t npop = 0;
		uint64_t freed = 0;
		while (used - freed + need > budget && nheap) {
			heap_item it = heap_pop(heap, &nheap);
			resident *v = &res[it.slot];
			if (!v->live || v->ver != it.ver)
				continue;
			if (it.next <= nx) { /* needed sooner than the new page: keep all */
				heap_push(heap, &nheap, it);
				break;
			}
			popped[npop++] = it;
			freed += v->bytes;
		}
		if (used - freed + need > budget) {
			for (size_t j = 0; j < npop; j++)
				heap_push(heap, &nheap, popped[j]);
			continue;
		}
		for (size_t j = 0; j < npop; j++) {
			res[popped[j].slot].live = 0;
			used -= res[popped[j].slot].bytes;
		}
		if (!r) {
			*slot = nres;
			r = &res[nres++];
		}
		*r = (resident){acc[i].key, nx, need, r->ver + 1, 1};
		used += need;
		heap_push(heap, &nheap, (heap_item){nx, *slot, r->ver});
	}
	*ratio = n ? (double)hits / (double)n : 0;
	rc = 0;
out:
	free(m.keys);
	free(m.vals);
	free(res);
	free(heap);
	free(popped);
	return rc;
}

int belady_link(belady_access *acc, size_t n)
{
	kmap m = {0};
	if (kmap_init(&m, n)) {
		free(m.keys);
		free(m.vals);
		return -1;
	}
	for (size_t i = n; i-- > 0;) {
		uint64_t *s = kmap_slot(&m, acc[i].key);
		acc[i].next = *s;
		*s = i;
	}
	free(m.keys);
	free(m.vals);
	return 0;
}
