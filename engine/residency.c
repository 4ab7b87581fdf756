/*
 * The residency policy: which pages the read cache keeps decoded, compressed, or not at all,
 * within one byte budget over both in-RAM forms (protocol in engine/residency.h).
 *
 * Tiered policy (docs/RESIDENCY.md has the reasoning and the measurements):
 *   - Costs come from the hardware profile (engine/hierarchy.h): serving a page costs
 *     decoded_us from the decoded form, compressed_us (a decode) from the compressed form,
 *     storage_us (a read and a decode) from storage.
 *   - Frequencies come from a count-min sketch (4 rows of 8-bit counters, conservative update)
 *     that is halved every `sample` accesses, so old popularity fades (TinyLFU).
 *   - New pages enter a small LRU admission window, compressed. A page leaving the window is
 *     admitted to the main region only if it is worth more per byte than the pages it would
 *     displace, so a one-pass scan (every page seen once) cannot flush the hot set.
 *   - Worth per byte ("density") of what an entry holds, f being its estimated frequency:
 *       compressed:            f * (storage_us - compressed_us) / compressed_bytes
 *       decoded (the upgrade): f * (compressed_us - decoded_us) / decoded_bytes
 *     A decoded entry keeps its compressed bytes, so giving up the upgrade (demotion) is free
 *     and leaves the page compressed. Room is made by giving up the entry of lowest density
 *     among SAMPLES drawn at random from the main region (demote if decoded, else evict).
 *   - A compressed page in the main region is promoted when its upgrade density beats the
 *     lowest sampled density (or room is free).
 *   - Requests continuing a sequential walk of a tensor get read-ahead of the next pages.
 * decoded-only: the same machinery with decoded entries only (density f * (storage_us -
 * decoded_us) / decoded_bytes). decoded-lru: decoded entries, least recently used evicted.
 *
 * Invariants
 *   1. used == window_used + main_used <= budget after every call; window_used <= window_cap
 *      and main_used <= budget - window_cap after every call.
 *   2. A tiered entry in decoded form also holds its compressed payload; a decoded-only or
 *      decoded-lru entry holds only its decoded payload.
 *   3. Every payload handed to the policy is held by exactly one entry or has been passed to
 *      cfg.drop() exactly once.
 *   4. Decisions depend only on the sequence of calls and cfg.seed (no clock, no addresses).
 */
#include "config.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "engine/residency.h"

#define SAMPLES 8
#define SKETCH_DEPTH 4
#define STREAMS 8
#define READAHEAD_DEFAULT 32

enum { REGION_WINDOW = 1, REGION_MAIN = 2, REGION_LRU = 3 };

typedef struct entry {
	ts__res_page pg;
	ts__page_cost cost;
	void *payload[2]; /* [TS__FORM_DECODED], [TS__FORM_COMPRESSED] */
	uint64_t bytes;   /* charged to the budget */
	uint64_t hash;
	struct entry *hnext;
	struct entry *prev, *next; /* window or LRU list */
	size_t slot;               /* index in main[] */
	uint8_t form;              /* TS__FORM_DECODED or TS__FORM_COMPRESSED */
	uint8_t region;
	uint8_t prefetched;
} entry;

typedef struct stream {
	uint64_t tensor_id;
	uint64_t prev_first; /* first page of the last request */
	uint64_t next;       /* last page of the last request + 1 */
	uint64_t ra_end;     /* read ahead up to here (exclusive) */
	uint64_t used_at;    /* tick of the last request, for replacement */
	uint32_t run;        /* sequential requests in a row */
	int live;
} stream;

struct ts__res {
	ts__res_config cfg;
	entry **buckets;
	size_t nbuckets, count;
	entry list; /* sentinel of the window (tiered, decoded-only) or LRU list: next = MRU */
	uint64_t used, window_used, main_used, window_cap;
	entry **main;
	size_t main_n, main_cap;
	uint8_t *sketch;
	uint64_t sketch_mask, additions, sample;
	uint64_t rng;
	uint64_t max_unit; /* largest entry size offered so far */
	stream streams[STREAMS];
	uint64_t tick;
	uint64_t form_pages[2], form_bytes[2];
	ts_residency_stats st;
	double model_us;
};

/* -- Small helpers ------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 31;
	return x;
}

static uint64_t key_hash(uint64_t tensor_id, uint64_t page)
{
	return mix64(tensor_id * 0x9E3779B97F4A7C15ull ^ mix64(page + 0x632BE59BD9B4E019ull));
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t next_pow2(uint64_t v)
{
	uint64_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

static const char *const policy_names[] = {"default", "tiered", "decoded-lru", "decoded-only"};

TS_API const char *ts_cache_policy_name(ts_cache_policy policy)
{
	if ((unsigned)policy >= sizeof(policy_names) / sizeof(policy_names[0]))
		return "?";
	return policy_names[policy];
}

TS_API int ts_cache_policy_parse(ts_cache_policy *out, const char *name)
{
	for (unsigned i = 0; name && i < sizeof(policy_names) / sizeof(policy_names[0]); i++) {
		if (strcasecmp(name, policy_names[i]) == 0) {
			*out = (ts_cache_policy)i;
			return 0;
		}
	}
	return ts__err(TS_EINVAL, "unknown cache policy '%s' (tiered, decoded-lru, decoded-only)",
		       name ? name : "(null)");
}

ts_cache_policy ts__res_policy_resolve(ts_cache_policy p)
{
	if (p != TS_CACHE_POLICY_DEFAULT)
		return p;
	const char *e = getenv("TSTORE_CACHE_POLICY");
	ts_cache_policy q;
	if (e && *e && ts_cache_policy_parse(&q, e) == 0 && q != TS_CACHE_POLICY_DEFAULT)
		return q;
	return TS_CACHE_POLICY_TIERED;
}

/* -- The frequency sketch ----------------------------------------------------------------- */

static size_t sketch_index(const ts__res *r, uint64_t h, int row)
{
	return (size_t)row * (r->sketch_mask + 1) +
	       (size_t)(mix64(h + (uint64_t)row * 0xD6E8FEB86659FD93ull) & r->sketch_mask);
}

static unsigned sketch_freq(const ts__res *r, uint64_t h)
{
	unsigned f = 255;
	for (int i = 0; i < SKETCH_DEPTH; i++) {
		unsigned c = r->sketch[sketch_index(r, h, i)];
		if (c < f)
			f = c;
	}
	return f;
}

static void sketch_add(ts__res *r, uint64_t h)
{
	unsigned f = sketch_freq(r, h);
	/* conservative update: raise only the counters at the minimum */
	if (f < 255)
		for (int i = 0; i < SKETCH_DEPTH; i++) {
			uint8_t *c = &r->sketch[sketch_index(r, h, i)];
			if (*c == f)
				(*c)++;
		}
	if (++r->additions >= r->sample) {
		size_t n = (size_t)SKETCH_DEPTH * (r->sketch_mask + 1);
		for (size_t i = 0; i < n; i++)
			r->sketch[i] >>= 1;
		r->additions /= 2;
	}
}

/* -- Entries: hash table, lists, main array ------------------------------------------------ */

static entry *find(const ts__res *r, uint64_t tensor_id, uint64_t page, uint64_t h)
{
	for (entry *e = r->buckets[h & (r->nbuckets - 1)]; e; e = e->hnext)
		if (e->pg.tensor_id == tensor_id && e->pg.page == page)
			return e;
	return NULL;
}

static int hash_grow(ts__res *r)
{
	size_t n = r->nbuckets * 2;
	entry **b = calloc(n, sizeof(*b));
	if (!b)
		return -1;
	for (size_t i = 0; i < r->nbuckets; i++) {
		entry *e = r->buckets[i];
		while (e) {
			entry *nx = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = nx;
		}
	}
	free(r->buckets);
	r->buckets = b;
	r->nbuckets = n;
	return 0;
}

static void hash_remove(ts__res *r, entry *e)
{
	entry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	r->count--;
}

static void list_unlink(entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static void list_push_head(ts__res *r, entry *e)
{
	e->next = r->list.next;
	e->prev = &r->list;
	r->list.next->prev = e;
	r->list.next = e;
}

static entry *list_tail(ts__res *r)
{
	return r->list.prev == &r->list ? NULL : r->list.prev;
}

static int main_push(ts__res *r, entry *e)
{
	if (r->main_n == r->main_cap) {
		size_t n = r->main_cap ? r->main_cap * 2 : 64;
		entry **m = realloc(r->main, n * sizeof(*m));
		if (!m)
			return -1;
		r->main = m;
		r->main_cap = n;
	}
	e->slot = r->main_n;
	r->main[r->main_n++] = e;
	return 0;
}

static void main_remove(ts__res *r, entry *e)
{
	size_t s = e->slot;
	assert(s < r->main_n && r->main[s] == e);
	r->main[s] = r->main[--r->main_n];
	r->main[s]->slot = s;
}

/* Change what @p e is charged by @p delta bytes, in its region and in the total. */
static void charge(ts__res *r, entry *e, int64_t delta)
{
	r->used += (uint64_t)delta;
	if (e->region == REGION_MAIN)
		r->main_used += (uint64_t)delta;
	else if (e->region == REGION_WINDOW)
		r->window_used += (uint64_t)delta;
	e->bytes += (uint64_t)delta;
}

static void form_count(ts__res *r, const entry *e, int sign)
{
	r->form_pages[e->form] += (uint64_t)(int64_t)sign;
	r->form_bytes[e->form] += (uint64_t)((int64_t)sign * (int64_t)e->bytes);
}

/* Remove @p e from whatever region holds it (bytes stay charged to the entry). */
static void region_leave(ts__res *r, entry *e)
{
	if (e->region == REGION_MAIN) {
		main_remove(r, e);
		r->main_used -= e->bytes;
	} else {
		list_unlink(e);
		if (e->region == REGION_WINDOW)
			r->window_used -= e->bytes;
	}
	r->used -= e->bytes;
	e->region = 0;
}

static void region_enter(ts__res *r, entry *e, int region)
{
	e->region = (uint8_t)region;
	if (region == REGION_MAIN) {
		r->main_used += e->bytes; /* the caller has put it in main[] */
	} else {
		list_push_head(r, e);
		if (region == REGION_WINDOW)
			r->window_used += e->bytes;
	}
	r->used += e->bytes;
}

static void drop_payload(ts__res *r, void *p, ts__form form)
{
	if (p && r->cfg.drop)
		r->cfg.drop(r->cfg.ud, p, form);
}

/* Forget @p e, already out of every region, and release its payloads. */
static void destroy(ts__res *r, entry *e)
{
	hash_remove(r, e);
	form_count(r, e, -1);
	drop_payload(r, e->payload[TS__FORM_DECODED], TS__FORM_DECODED);
	drop_payload(r, e->payload[TS__FORM_COMPRESSED], TS__FORM_COMPRESSED);
	free(e);
	r->st.evicted++;
}

static void evict(ts__res *r, entry *e)
{
	region_leave(r, e);
	destroy(r, e);
}

/* -- Values -------------------------------------------------------------------------------- */

static int tiered(const ts__res *r)
{
	return r->cfg.policy == TS_CACHE_POLICY_TIERED;
}

/* Time saved per access per byte by what @p e holds beyond the next form down. */
static double unit_value(const ts__res *r, const entry *e)
{
	if (!tiered(r))
		return (e->cost.storage_us - e->cost.decoded_us) / (double)e->pg.decoded_bytes;
	if (e->form == TS__FORM_DECODED)
		return (e->cost.compressed_us - e->cost.decoded_us) / (double)e->pg.decoded_bytes;
	return (e->cost.storage_us - e->cost.compressed_us) / (double)e->pg.compressed_bytes;
}

static double density(const ts__res *r, const entry *e)
{
	return (double)sketch_freq(r, e->hash) * unit_value(r, e);
}

static double upgrade_density(const ts__res *r, const entry *e)
{
	double saved = e->cost.compressed_us - e->cost.decoded_us;
	if (!(saved > 0))
		return -1;
	return (double)sketch_freq(r, e->hash) * saved / (double)e->pg.decoded_bytes;
}

/* The entry of lowest density among SAMPLES random main entries (all if few), not @p skip. */
static entry *sample_min(ts__res *r, const entry *skip, double *dens)
{
	entry *best = NULL;
	double bd = INFINITY;

	if (r->main_n == 0)
		return NULL;
	size_t n = r->main_n <= SAMPLES ? r->main_n : SAMPLES;
	for (size_t i = 0; i < n; i++) {
		entry *e = r->main_n <= SAMPLES ? r->main[i]
						: r->main[rng_next(&r->rng) % r->main_n];
		if (e == skip)
			continue;
		double d = density(r, e);
		if (d < bd) {
			bd = d;
			best = e;
		}
	}
	*dens = bd;
	return best;
}

/* Give up what @p e holds beyond the next form down: demote a tiered decoded entry, else evict. */
static void shrink(ts__res *r, entry *e)
{
	if (tiered(r) && e->form == TS__FORM_DECODED) {
		form_count(r, e, -1);
		charge(r, e, -(int64_t)e->pg.decoded_bytes);
		e->form = TS__FORM_COMPRESSED;
		form_count(r, e, +1);
		drop_payload(r, e->payload[TS__FORM_DECODED], TS__FORM_DECODED);
		e->payload[TS__FORM_DECODED] = NULL;
		r->st.demoted++;
	} else {
		evict(r, e);
	}
}

static uint64_t main_limit(const ts__res *r)
{
	return r->cfg.budget - r->window_cap;
}

/*
 * Make the main region able to take @p need more bytes by giving up entries of lower density
 * than @p cand, the candidate's, whose frequency is @p cand_freq (all comers if cand < 0). 1 when there is room, 0 when a more valuable entry
 * stands in the way (what was given up until then stays given up: it was worth less).
 */
static int make_room(ts__res *r, uint64_t need, double cand, unsigned cand_freq,
		     const entry *skip)
{
	if (need > main_limit(r))
		return 0;
	while (r->main_used + need > main_limit(r)) {
		double d;
		entry *v = sample_min(r, skip, &d);
		if (!v)
			return 0;
		/* A page seen once has shown no reuse yet: it displaces nothing (a one-pass scan
		 * leaves a full main region as it was, however long ago its pages were hot). */
		if (cand >= 0 && (d >= cand || cand_freq < 2))
			return 0;
		shrink(r, v);
	}
	return 1;
}

static void window_cap_update(ts__res *r, uint64_t unit)
{
	if (unit <= r->max_unit && r->window_cap)
		return;
	if (unit > r->max_unit)
		r->max_unit = unit;
	uint64_t cap = (uint64_t)((double)r->cfg.budget * r->cfg.window_fraction);
	uint64_t want = r->max_unit * (uint64_t)(tiered(r) && r->cfg.readahead_max > 0
							? r->cfg.readahead_max + 2
							: 2);
	uint64_t limit = r->cfg.budget / 8;
	if (want > limit)
		want = limit;
	if (cap < want)
		cap = want;
	r->window_cap = cap;
	/* invariant 1: the window's share grew, the main region gives way unconditionally */
	while (r->main_used > main_limit(r)) {
		double d;
		entry *v = sample_min(r, NULL, &d);
		if (!v)
			break;
		shrink(r, v);
	}
	while (r->window_used > r->window_cap) {
		entry *v = list_tail(r);
		if (!v)
			break;
		evict(r, v);
	}
}

/* A page leaves the window: into the main region if it is worth its room, else out. */
static void window_leave(ts__res *r, entry *e)
{
	region_leave(r, e);
	if (make_room(r, e->bytes, density(r, e), sketch_freq(r, e->hash), NULL) &&
	    main_push(r, e) == 0) {
		region_enter(r, e, REGION_MAIN);
		r->st.admitted++;
		return;
	}
	r->st.rejected++;
	destroy(r, e);
}

/* -- Public side --------------------------------------------------------------------------- */

int ts__res_create(ts__res **out, const ts__res_config *cfg)
{
	ts__res *r = calloc(1, sizeof(*r));
	if (!r)
		return ts__err(TS_ENOMEM, "residency: no memory");
	r->cfg = *cfg;
	r->cfg.policy = ts__res_policy_resolve(cfg->policy);
	if ((unsigned)r->cfg.policy > TS_CACHE_POLICY_DECODED_ONLY) {
		free(r);
		return ts__err(TS_EINVAL, "residency: unknown policy %d", (int)cfg->policy);
	}
	if (!r->cfg.page_bytes_hint)
		r->cfg.page_bytes_hint = 65536;
	if (!(r->cfg.window_fraction > 0 && r->cfg.window_fraction < 0.5))
		r->cfg.window_fraction = 0.01;
	if (r->cfg.readahead_max == 0)
		r->cfg.readahead_max = READAHEAD_DEFAULT;
	if (r->cfg.readahead_max < 0)
		r->cfg.readahead_max = 0;
	r->rng = cfg->seed ? cfg->seed : 0x853C49E6748FEA9Bull;
	r->list.next = r->list.prev = &r->list;

	uint64_t entries = r->cfg.budget / r->cfg.page_bytes_hint;
	if (entries < 64)
		entries = 64;
	uint64_t width = next_pow2(entries * 4);
	if (width < 1024)
		width = 1024;
	if (width > (1u << 22))
		width = 1u << 22;
	r->sketch_mask = width - 1;
	r->sample = entries * 10;
	r->nbuckets = (size_t)next_pow2(entries * 2 > 1u << 20 ? 1u << 20 : entries * 2);
	r->sketch = calloc((size_t)(SKETCH_DEPTH * width), 1);
	r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
	if (!r->sketch || !r->buckets) {
		free(r->sketch);
		free(r->buckets);
		free(r);
		return ts__err(TS_ENOMEM, "residency: no memory for the sketch");
	}
	r->window_cap = 0;
	window_cap_update(r, r->cfg.page_bytes_hint);
	r->st.policy = r->cfg.policy;
	snprintf(r->st.profile, sizeof(r->st.profile), "%s", r->cfg.profile.name);
	r->st.budget_bytes = r->cfg.budget;
	*out = r;
	return 0;
}

void ts__res_clear(ts__res *r)
{
	if (!r)
		return;
	while (r->main_n)
		evict(r, r->main[r->main_n - 1]);
	entry *e;
	while ((e = list_tail(r)))
		evict(r, e);
	memset(r->sketch, 0, (size_t)SKETCH_DEPTH * (r->sketch_mask + 1));
	r->additions = 0;
	memset(r->streams, 0, sizeof(r->streams));
	assert(r->used == 0 && r->count == 0);
}

void ts__res_free(ts__res *r)
{
	if (!r)
		return;
	uint64_t evicted = r->st.evicted;
	ts__res_clear(r);
	r->st.evicted = evicted;
	free(r->main);
	free(r->sketch);
	free(r->buckets);
	free(r);
}

void ts__res_request(ts__res *r, uint64_t tensor_id, uint64_t first, uint64_t last,
		     uint64_t page_count, uint64_t *ra_first, uint64_t *ra_count)
{
	stream *s = NULL, *victim = &r->streams[0];

	*ra_first = *ra_count = 0;
	r->tick++;
	for (int i = 0; i < STREAMS; i++) {
		stream *c = &r->streams[i];
		if (c->live && c->tensor_id == tensor_id && first > c->prev_first &&
		    first <= c->next) {
			s = c;
			break;
		}
		if (!c->live || c->used_at < victim->used_at)
			victim = c;
	}
	if (!s) {
		s = victim;
		*s = (stream){.tensor_id = tensor_id, .run = 0, .live = 1};
	}
	s->run++;
	s->prev_first = first;
	s->next = last + 1;
	s->used_at = r->tick;
	if (!tiered(r) || r->cfg.readahead_max <= 0 || s->run < 2 || last + 1 >= page_count)
		return;
	/* Read ahead up to twice the request (at least 8 pages, at most readahead_max and what
	 * the window can hold until the pages are used), refilled when half is consumed. */
	uint64_t span = last - first + 1;
	uint64_t ahead = span * 2 < 8 ? 8 : span * 2;
	if (ahead > (uint64_t)r->cfg.readahead_max)
		ahead = (uint64_t)r->cfg.readahead_max;
	uint64_t fit = r->max_unit ? r->window_cap / r->max_unit : 0;
	fit = fit > 2 ? fit - 2 : 0;
	if (ahead > fit)
		ahead = fit;
	if (ahead == 0)
		return;
	uint64_t start = s->ra_end > last + 1 ? s->ra_end : last + 1;
	if (start - (last + 1) >= ahead / 2 + 1)
		return; /* enough already in flight */
	uint64_t end = last + 1 + ahead;
	if (end > page_count)
		end = page_count;
	if (end <= start)
		return;
	*ra_first = start;
	*ra_count = end - start;
	s->ra_end = end;
}

void ts__res_access(ts__res *r, const ts__res_page *pg, ts__res_hit *out)
{
	uint64_t h = key_hash(pg->tensor_id, pg->page);
	entry *e;

	memset(out, 0, sizeof(*out));
	if (r->cfg.policy != TS_CACHE_POLICY_DECODED_LRU)
		sketch_add(r, h);
	e = find(r, pg->tensor_id, pg->page, h);
	if (!e) {
		ts__page_cost c;
		ts__hw_page_cost(&r->cfg.profile, pg->codec, pg->elements, pg->io_bytes,
				 pg->decoded_bytes, &c);
		out->form = TS__FORM_STORAGE;
		out->want_compressed = tiered(r);
		out->want_decoded = !tiered(r);
		r->st.served_storage++;
		r->model_us += c.storage_us;
		return;
	}
	if (e->prefetched) {
		e->prefetched = 0;
		r->st.readahead_used++;
	}
	out->form = (ts__form)e->form;
	out->payload = e->payload[e->form];
	if (e->form == TS__FORM_DECODED) {
		out->compressed = e->payload[TS__FORM_COMPRESSED];
		r->st.served_decoded++;
		r->model_us += e->cost.decoded_us;
	} else {
		r->st.served_compressed++;
		r->model_us += e->cost.compressed_us;
	}
	if (e->region != REGION_MAIN) {
		list_unlink(e);
		list_push_head(r, e);
	} else if (tiered(r) && e->form == TS__FORM_COMPRESSED) {
		double up = upgrade_density(r, e), d;
		if (up > 0) {
			if (r->main_used + e->pg.decoded_bytes <= main_limit(r)) {
				out->promote = 1;
			} else {
				entry *v = sample_min(r, e, &d);
				out->promote = v && d < up && sketch_freq(r, e->hash) >= 2;
			}
		}
	}
}

int ts__res_contains(const ts__res *r, uint64_t tensor_id, uint64_t page)
{
	return find(r, tensor_id, page, key_hash(tensor_id, page)) != NULL;
}

ts__form ts__res_form(const ts__res *r, uint64_t tensor_id, uint64_t page)
{
	entry *e = find(r, tensor_id, page, key_hash(tensor_id, page));
	return e ? (ts__form)e->form : TS__FORM_STORAGE;
}

ts__form ts__res_insert(ts__res *r, const ts__res_page *pg, void *compressed, void *decoded,
			int prefetched)
{
	uint64_t h = key_hash(pg->tensor_id, pg->page);
	entry *e;
	ts__form form = tiered(r) ? TS__FORM_COMPRESSED : TS__FORM_DECODED;
	uint64_t bytes = form == TS__FORM_COMPRESSED ? pg->compressed_bytes : pg->decoded_bytes;
	void *keep = form == TS__FORM_COMPRESSED ? compressed : decoded;

	if (prefetched)
		r->st.readahead_pages++;
	if (prefetched) {
		ts__page_cost c;
		ts__hw_page_cost(&r->cfg.profile, pg->codec, pg->elements, pg->io_bytes,
				 pg->decoded_bytes, &c);
		r->model_us += c.storage_us - c.compressed_us; /* the read; the decode comes later */
	}
	if (find(r, pg->tensor_id, pg->page, h) || !keep || bytes == 0 || bytes > r->cfg.budget ||
	    (form == TS__FORM_DECODED && pg->decoded_bytes == 0) ||
	    (tiered(r) && pg->compressed_bytes == 0))
		goto drop_all;
	if (r->count + 1 > r->nbuckets && hash_grow(r))
		goto drop_all;
	if (!(e = calloc(1, sizeof(*e))))
		goto drop_all;
	e->pg = *pg;
	e->hash = h;
	e->form = (uint8_t)form;
	e->bytes = bytes;
	e->prefetched = (uint8_t)(prefetched != 0);
	e->payload[form] = keep;
	ts__hw_page_cost(&r->cfg.profile, pg->codec, pg->elements, pg->io_bytes, pg->decoded_bytes,
			 &e->cost);
	/* the form not kept */
	drop_payload(r, form == TS__FORM_COMPRESSED ? decoded : compressed,
		     form == TS__FORM_COMPRESSED ? TS__FORM_DECODED : TS__FORM_COMPRESSED);
	e->hnext = r->buckets[h & (r->nbuckets - 1)];
	r->buckets[h & (r->nbuckets - 1)] = e;
	r->count++;
	form_count(r, e, +1);

	if (r->cfg.policy == TS_CACHE_POLICY_DECODED_LRU) {
		entry *v;
		while (r->used + bytes > r->cfg.budget && (v = list_tail(r)))
			evict(r, v);
		region_enter(r, e, REGION_LRU);
		return form;
	}
	window_cap_update(r, bytes);
	region_enter(r, e, REGION_WINDOW);
	while (r->window_used > r->window_cap) {
		entry *v = list_tail(r);
		assert(v);
		window_leave(r, v);
	}
	assert(r->used <= r->cfg.budget);
	return find(r, pg->tensor_id, pg->page, h) ? form : TS__FORM_STORAGE;

drop_all:
	drop_payload(r, compressed, TS__FORM_COMPRESSED);
	drop_payload(r, decoded, TS__FORM_DECODED);
	return find(r, pg->tensor_id, pg->page, h) ? ts__res_form(r, pg->tensor_id, pg->page)
						   : TS__FORM_STORAGE;
}

int ts__res_promote(ts__res *r, uint64_t tensor_id, uint64_t page, void *decoded)
{
	entry *e = find(r, tensor_id, page, key_hash(tensor_id, page));
	double up;

	if (!decoded)
		return 0;
	if (!tiered(r) || !e || e->form != TS__FORM_COMPRESSED || e->region != REGION_MAIN ||
	    (up = upgrade_density(r, e)) <= 0 ||
	    !make_room(r, e->pg.decoded_bytes, up, sketch_freq(r, e->hash), e)) {
		drop_payload(r, decoded, TS__FORM_DECODED);
		return 0;
	}
	/* make_room() never gives up @p e (skipped), so it is still here */
	form_count(r, e, -1);
	charge(r, e, (int64_t)e->pg.decoded_bytes);
	e->form = TS__FORM_DECODED;
	e->payload[TS__FORM_DECODED] = decoded;
	form_count(r, e, +1);
	r->st.promoted++;
	assert(r->used <= r->cfg.budget);
	return 1;
}

void ts__res_stats(const ts__res *r, ts_residency_stats *out)
{
	*out = r->st;
	out->used_bytes = r->used;
	out->decoded_pages = r->form_pages[TS__FORM_DECODED];
	out->decoded_bytes = r->form_bytes[TS__FORM_DECODED];
	out->compressed_pages = r->form_pages[TS__FORM_COMPRESSED];
	out->compressed_bytes = r->form_bytes[TS__FORM_COMPRESSED];
	out->model_seconds = r->model_us * 1e-6;
}
