/*
 * Tiered residency: the cache policy deciding which pages the read cache holds decoded,
 * compressed, or not at all, within one byte budget (interface in engine/cache_residency.h; the
 * reasoning and the measurements in docs/RESIDENCY.md).
 *
 * Pricing. The hardware profile (engine/hierarchy.h) prices serving a page from each form:
 * decoded_us (copy the decoded bytes out of RAM), compressed_us (decode the page), storage_us
 * (read the aligned run, then decode). The worth per byte ("density") of a cache entry, f being
 * the page's estimated access frequency and `charge` the bytes the entry holds:
 *     compressed entry:                      f * (storage_us - compressed_us) / charge
 *     decoded entry (tiered, an upgrade):    f * (compressed_us - decoded_us) / charge
 *     decoded entry (decoded-only):          f * (storage_us - decoded_us) / charge
 *
 * Frequency. One count-min sketch per store (4 rows of 8-bit counters, conservative update),
 * every counter halved after `sample` accesses (10 per page the budget holds), so that old
 * popularity fades (TinyLFU). Only real accesses count, never read-ahead.
 *
 * Admission and eviction (W-TinyLFU, per cache shard). New pages enter a small LRU admission
 * window (1% of the shard, at least room for a read-ahead burst, at most 1/8): compressed pages
 * in tiered, decoded pages in decoded-only. When room is needed, the window's oldest page either
 * moves to the main region, if the main region has room or the page is denser than the least
 * dense of SAMPLES main entries drawn at random and has been seen at least twice, or leaves the
 * cache. So a one-pass scan (every page seen once) never displaces the main region's pages,
 * however long ago they were hot. A decoded page (tiered) enters the main region directly when
 * the reader, serving a compressed hit, asks for it and admission finds its upgrade denser than
 * what it would displace (promotion); evicting it later leaves the compressed page cached if it
 * still is (demotion).
 *
 * Read-ahead. Requests that continue where the previous one on the same tensor ended (a loader
 * walking a tensor) ask for the next pages, kept compressed, in the same I/O batch.
 *
 * Invariants
 *   1. A shard's window_used and main_used are the charges of the entries in its window and main
 *      region; the cache enforces the shard budget (engine/cache.h invariant 1) and the policy
 *      never refuses to name a victim while its shard holds an evictable entry, except to refuse
 *      a promotion or admission that would displace denser pages.
 *   2. An entry is in exactly one region from inserted() to removed(), recorded in pol_word
 *      (region in bits 0-1, main[] slot in bits 32-63).
 *   3. Decisions depend only on the sequence of calls and the seed (no clock, no addresses).
 *   4. Lock order: shard lock, then r->lock (engine/cache_residency.h).
 */
#include "config.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/env.h"
#include "common/error.h"
#include "common/rng.h"
#include "engine/cache_residency.h"

#define SAMPLES 8
#define SKETCH_DEPTH 4
#define STREAMS 8
#define READAHEAD_MAX 32
#define WINDOW_FRACTION 0.01
#define ENTRY_OVERHEAD 128 /* the cache's entry header, rounded: priced like data */

enum { REGION_NONE = 0, REGION_WINDOW = 1, REGION_MAIN = 2 };

typedef struct tensor_price {
	uint64_t tensor_id;
	ts_codec codec;
	uint64_t io_bytes;
	uint64_t elements;
	int used;
} tensor_price;

typedef struct stream {
	uint64_t tensor_id;
	uint64_t prev_first; /* first page of the last request */
	uint64_t next;       /* last page of the last request + 1 */
	uint64_t ra_end;     /* read ahead up to here (exclusive) */
	uint64_t used_at;
	uint32_t run;        /* sequential requests in a row */
	int live;
} stream;

struct ts__residency {
	pthread_mutex_t lock; /* everything below except the policy copy */
	ts_cache_policy policy;
	ts__cache_policy cache_policy; /* hooks with arg = this */
	ts_hw_profile profile;
	uint64_t budget, seed;
	unsigned shards_created;
	/* frequency sketch */
	uint8_t *sketch;
	uint64_t sketch_mask, additions, sample;
	/* pricing */
	tensor_price *prices;
	size_t prices_mask, prices_n;
	/* read-ahead */
	stream streams[STREAMS];
	uint64_t tick;
	/* counters */
	ts_residency_stats st;
	double model_us;
	uint64_t form_pages[2], form_bytes[2];
};

/* Per-shard policy state. */
typedef struct shard_pol {
	ts__residency *r;
	uint64_t budget, window_cap, window_used, main_used, max_charge;
	ts__cache_list win; /* the admission window, most recent first */
	ts__cache_entry **main;
	size_t main_n, main_cap;
	uint64_t rng;
} shard_pol;

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

static uint64_t page_hash(uint64_t tensor_id, uint64_t page)
{
	return mix64(tensor_id * 0x9E3779B97F4A7C15ull ^ mix64(page + 0x632BE59BD9B4E019ull));
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

int ts__residency_policy_resolve(ts_cache_policy *out, ts_cache_policy p)
{
	const char *e;

	*out = p;
	if (p != TS_CACHE_POLICY_DEFAULT)
		return 0;
	*out = TS_CACHE_POLICY_TIERED;
	e = ts__env("TSTORE_CACHE_POLICY");
	if (e && (ts_cache_policy_parse(out, e) != 0 || *out == TS_CACHE_POLICY_DEFAULT))
		return ts__env_bad("TSTORE_CACHE_POLICY", e, "tiered, decoded-lru or decoded-only");
	return 0;
}

static int is_compressed(const ts__cache_key *k)
{
	return k->dtype == TS__CACHE_COMPRESSED;
}

/* -- Frequency sketch (r->lock held) -------------------------------------------------------- */

static size_t sketch_index(const ts__residency *r, uint64_t h, int row)
{
	return (size_t)row * (r->sketch_mask + 1) +
	       (size_t)(mix64(h + (uint64_t)row * 0xD6E8FEB86659FD93ull) & r->sketch_mask);
}

static unsigned sketch_freq(const ts__residency *r, uint64_t h)
{
	unsigned f = 255;
	for (int i = 0; i < SKETCH_DEPTH; i++) {
		unsigned c = r->sketch[sketch_index(r, h, i)];
		if (c < f)
			f = c;
	}
	return f;
}

static void sketch_add(ts__residency *r, uint64_t h)
{
	unsigned f = sketch_freq(r, h);
	if (f < 255) /* conservative update: raise only the counters at the minimum */
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

/* -- Pricing (r->lock held) ------------------------------------------------------------------ */

static tensor_price *price_slot(const ts__residency *r, uint64_t tensor_id)
{
	size_t i = (size_t)mix64(tensor_id) & r->prices_mask;
	while (r->prices[i].used && r->prices[i].tensor_id != tensor_id)
		i = (i + 1) & r->prices_mask;
	return &r->prices[i];
}

static int prices_grow(ts__residency *r)
{
	size_t n = (r->prices_mask + 1) * 2;
	tensor_price *old = r->prices, *p = calloc(n, sizeof(*p));
	size_t oldn = r->prices_mask + 1;
	if (!p)
		return -1;
	r->prices = p;
	r->prices_mask = n - 1;
	for (size_t i = 0; i < oldn; i++)
		if (old[i].used)
			*price_slot(r, old[i].tensor_id) = old[i];
	free(old);
	return 0;
}

/* Costs of the page behind cache entry key @p k holding @p bytes (decoded data or page bytes). */
static void entry_cost(const ts__residency *r, const ts__cache_key *k, size_t bytes, ts__page_cost *c)
{
	const tensor_price *p = price_slot(r, k->tensor_id);
	ts_codec codec = TS_CODEC_NVFP4;
	uint64_t io = r->profile.page_bytes, elements;

	if (p->used) {
		codec = p->codec;
		io = p->io_bytes;
	}
	if (is_compressed(k)) {
		elements = p->used ? p->elements : bytes * 2;
		ts__hw_page_cost(&r->profile, codec, elements, io, elements * 4, c);
	} else {
		size_t esz = ts_dtype_size((ts_dtype)k->dtype);
		elements = esz ? bytes / esz : bytes;
		ts__hw_page_cost(&r->profile, codec, elements, io, bytes, c);
	}
}

/* Density of an entry (see the module comment); r->lock held. */
static double density_of(const ts__residency *r, const ts__cache_key *k, size_t bytes, size_t charge,
			 unsigned *freq)
{
	ts__page_cost c;
	double saved;
	unsigned f = sketch_freq(r, page_hash(k->tensor_id, k->page));

	entry_cost(r, k, bytes, &c);
	if (is_compressed(k))
		saved = c.storage_us - c.compressed_us;
	else if (r->policy == TS_CACHE_POLICY_TIERED)
		saved = c.compressed_us - c.decoded_us;
	else
		saved = c.storage_us - c.decoded_us;
	if (freq)
		*freq = f;
	return (double)f * saved / (double)(charge ? charge : 1);
}

/* -- Per-shard regions (shard lock held) ------------------------------------------------------ */

static int region_of(const ts__cache_entry *e)
{
	return (int)(e->pol_word & 3);
}

static size_t slot_of(const ts__cache_entry *e)
{
	return (size_t)(e->pol_word >> 32);
}

static void set_region(ts__cache_entry *e, int region, size_t slot)
{
	e->pol_word = (uint64_t)region | (uint64_t)slot << 32;
}

static void win_unlink(shard_pol *s, ts__cache_entry *e)
{
	ts__cache_list_unlink(&s->win, e);
	s->window_used -= e->charge;
	set_region(e, REGION_NONE, 0);
}

static void win_push(shard_pol *s, ts__cache_entry *e)
{
	ts__cache_list_push(&s->win, e);
	s->window_used += e->charge;
	set_region(e, REGION_WINDOW, 0);
}

static int main_push(shard_pol *s, ts__cache_entry *e)
{
	if (s->main_n == s->main_cap) {
		size_t n = s->main_cap ? s->main_cap * 2 : 64;
		ts__cache_entry **m = realloc(s->main, n * sizeof(*m));
		if (!m)
			return -1;
		s->main = m;
		s->main_cap = n;
	}
	set_region(e, REGION_MAIN, s->main_n);
	s->main[s->main_n++] = e;
	s->main_used += e->charge;
	return 0;
}

static void main_remove(shard_pol *s, ts__cache_entry *e)
{
	size_t i = slot_of(e);
	assert(i < s->main_n && s->main[i] == e);
	s->main[i] = s->main[--s->main_n];
	set_region(s->main[i], REGION_MAIN, i);
	s->main_used -= e->charge;
	set_region(e, REGION_NONE, 0);
}

static uint64_t main_limit(const shard_pol *s)
{
	return s->budget - s->window_cap;
}

/* The least dense of SAMPLES random main entries (all when few); r->lock held. */
static ts__cache_entry *sample_min(shard_pol *s, double *dens)
{
	ts__cache_entry *best = NULL;
	double bd = INFINITY;
	size_t n = s->main_n <= SAMPLES ? s->main_n : SAMPLES;

	for (size_t i = 0; i < n; i++) {
		ts__cache_entry *e = s->main_n <= SAMPLES
					     ? s->main[i]
					     : s->main[ts__rng_next(&s->rng) % s->main_n];
		double d = density_of(s->r, &e->key, e->bytes, e->charge, NULL);
		if (d < bd) {
			bd = d;
			best = e;
		}
	}
	*dens = bd;
	return best;
}

static void window_cap_update(shard_pol *s, uint64_t charge)
{
	if (charge > s->max_charge)
		s->max_charge = charge;
	uint64_t cap = (uint64_t)((double)s->budget * WINDOW_FRACTION);
	uint64_t burst = s->r->policy == TS_CACHE_POLICY_TIERED ? READAHEAD_MAX + 2 : 2;
	uint64_t want = s->max_charge * burst;
	if (want > s->budget / 8)
		want = s->budget / 8;
	s->window_cap = cap > want ? cap : want;
}

/* Where a new entry goes: promoted decoded pages (tiered) to main, the rest to the window. */
static int to_main(const ts__residency *r, const ts__cache_key *k)
{
	return r->policy == TS_CACHE_POLICY_TIERED && !is_compressed(k);
}

/* -- Cache policy hooks ----------------------------------------------------------------------- */

static void *pol_create(uint64_t shard_budget, void *arg)
{
	ts__residency *r = arg;
	shard_pol *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->r = r;
	s->budget = shard_budget;
	pthread_mutex_lock(&r->lock);
	s->rng = mix64(r->seed + ++r->shards_created);
	s->max_charge = r->profile.page_bytes + ENTRY_OVERHEAD;
	pthread_mutex_unlock(&r->lock);
	window_cap_update(s, 0);
	return s;
}

static void *pol_create_plain(uint64_t shard_budget)
{
	(void)shard_budget;
	return NULL; /* never used: create_arg is set */
}

static void pol_destroy(void *state)
{
	shard_pol *s = state;
	if (!s)
		return;
	free(s->main);
	free(s);
}

static int pol_admit(void *state, const ts__cache_key *key, size_t charge)
{
	shard_pol *s = state;
	ts__residency *r = s->r;
	int ok = 1;

	if (charge > s->budget)
		return 0;
	if (!to_main(r, key))
		return 1; /* the window takes every newcomer; admission happens on leaving it */
	/* a promotion: worth it only if denser than what it displaces */
	pthread_mutex_lock(&r->lock);
	unsigned f;
	double up = density_of(r, key, charge - ENTRY_OVERHEAD, charge, &f), d;
	if (!(up > 0)) {
		ok = 0;
	} else if (s->main_used + charge > main_limit(s)) {
		ts__cache_entry *v = sample_min(s, &d);
		ok = v && d < up && f >= 2;
	}
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static void pol_inserted(void *state, ts__cache_entry *e)
{
	shard_pol *s = state;
	ts__residency *r = s->r;
	int c = is_compressed(&e->key);

	if (to_main(r, &e->key) && main_push(s, e) == 0) {
		/* promoted: sized like decoded pages, which the window never holds (tiered) */
	} else {
		window_cap_update(s, e->charge);
		win_push(s, e);
	}
	pthread_mutex_lock(&r->lock);
	r->form_pages[c ? TS__FORM_COMPRESSED : TS__FORM_DECODED]++;
	r->form_bytes[c ? TS__FORM_COMPRESSED : TS__FORM_DECODED] += e->charge;
	if (to_main(r, &e->key))
		r->st.promoted++;
	pthread_mutex_unlock(&r->lock);
}

static void pol_hit(void *state, ts__cache_entry *e)
{
	shard_pol *s = state;
	if (region_of(e) == REGION_WINDOW && s->win.head != e) {
		win_unlink(s, e);
		win_push(s, e);
	}
}

static void pol_removed(void *state, ts__cache_entry *e)
{
	shard_pol *s = state;
	ts__residency *r = s->r;
	int c = is_compressed(&e->key);

	if (region_of(e) == REGION_WINDOW)
		win_unlink(s, e);
	else if (region_of(e) == REGION_MAIN)
		main_remove(s, e);
	pthread_mutex_lock(&r->lock);
	r->form_pages[c ? TS__FORM_COMPRESSED : TS__FORM_DECODED]--;
	r->form_bytes[c ? TS__FORM_COMPRESSED : TS__FORM_DECODED] -= e->charge;
	if (!c && r->policy == TS_CACHE_POLICY_TIERED)
		r->st.demoted++;
	else
		r->st.evicted++;
	pthread_mutex_unlock(&r->lock);
}

static ts__cache_entry *pol_victim(void *state, const ts__cache_key *incoming, size_t charge)
{
	shard_pol *s = state;
	ts__residency *r = s->r;
	ts__cache_entry *v = NULL;
	double d;

	pthread_mutex_lock(&r->lock);
	if (to_main(r, incoming)) {
		/* making room for a promotion: only pages less dense than it give way */
		unsigned f;
		double up = density_of(r, incoming, charge - ENTRY_OVERHEAD, charge, &f);
		v = sample_min(s, &d);
		if (v && !(d < up && f >= 2))
			v = NULL;
		goto out;
	}
	while (s->win.tail && s->window_used + charge > s->window_cap) {
		ts__cache_entry *w = s->win.tail;
		if (s->main_used + w->charge <= main_limit(s)) {
			win_unlink(s, w);
			if (main_push(s, w)) {
				v = w; /* no memory to track it in main: let it go */
				goto out;
			}
			r->st.admitted++;
			continue;
		}
		unsigned fw;
		double dw = density_of(r, &w->key, w->bytes, w->charge, &fw);
		v = sample_min(s, &d);
		if (v && dw > d && fw >= 2) {
			win_unlink(s, w);
			if (main_push(s, w)) {
				v = w;
				goto out;
			}
			r->st.admitted++;
		} else {
			v = w; /* seen once, or worth less than what it would displace */
			r->st.rejected++;
		}
		goto out;
	}
	v = sample_min(s, &d);
	if (!v)
		v = s->win.tail;
out:
	pthread_mutex_unlock(&r->lock);
	return v;
}

static void cache_policy_init(ts__residency *r);

/* -- The residency state ---------------------------------------------------------------------- */

int ts__residency_create(ts__residency **out, ts_cache_policy policy, uint64_t budget,
		   const ts_hw_profile *profile, uint64_t seed)
{
	ts__residency *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return ts__err(TS_ENOMEM, "residency: out of memory");
	if (ts__residency_policy_resolve(&r->policy, policy) < 0) {
		free(r);
		return TS_EINVAL;
	}
	if ((unsigned)r->policy > TS_CACHE_POLICY_DECODED_ONLY) {
		free(r);
		return ts__err(TS_EINVAL, "residency: unknown cache policy %d", (int)policy);
	}
	pthread_mutex_init(&r->lock, NULL);
	r->profile = *profile;
	r->budget = budget;
	r->seed = seed ? seed : 0x853C49E6748FEA9Bull;
	uint64_t pages = budget / (profile->page_bytes ? profile->page_bytes : 65536);
	if (pages < 64)
		pages = 64;
	uint64_t width = next_pow2(pages * 4);
	if (width < 1024)
		width = 1024;
	if (width > (1u << 22))
		width = 1u << 22;
	r->sketch_mask = width - 1;
	r->sample = pages * 10;
	r->sketch = calloc((size_t)(SKETCH_DEPTH * width), 1);
	r->prices_mask = 63;
	r->prices = calloc(64, sizeof(*r->prices));
	if (!r->sketch || !r->prices) {
		ts__residency_free(r);
		return ts__err(TS_ENOMEM, "residency: out of memory for the frequency sketch");
	}
	cache_policy_init(r);
	r->st.policy = r->policy;
	r->st.budget_bytes = budget;
	*out = r;
	return 0;
}

void ts__residency_free(ts__residency *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->sketch);
	free(r->prices);
	free(r);
}

ts_cache_policy ts__residency_policy(const ts__residency *r)
{
	return r->policy;
}

const ts__cache_policy *ts__residency_cache_policy(ts__residency *r)
{
	return &r->cache_policy;
}

void ts__residency_set_profile(ts__residency *r, const ts_hw_profile *profile)
{
	pthread_mutex_lock(&r->lock);
	r->profile = *profile;
	pthread_mutex_unlock(&r->lock);
}

void ts__residency_get_profile(ts__residency *r, ts_hw_profile *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->profile;
	pthread_mutex_unlock(&r->lock);
}

/* -- the hints (engine/cache.h), with arg = the residency state ------------------------------ */

static void hint_tensor(void *arg, uint64_t tensor_id, ts_codec codec, uint64_t io_bytes,
			uint64_t elements)
{
	ts__residency *r = arg;

	pthread_mutex_lock(&r->lock);
	if ((r->prices_n + 1) * 2 > r->prices_mask + 1 && prices_grow(r)) {
		pthread_mutex_unlock(&r->lock); /* no memory: priced with defaults */
		return;
	}
	tensor_price *p = price_slot(r, tensor_id);
	if (!p->used)
		r->prices_n++;
	*p = (tensor_price){tensor_id, codec, io_bytes, elements, 1};
	pthread_mutex_unlock(&r->lock);
}

static int hint_access(void *arg, uint64_t tensor_id, uint64_t page)
{
	ts__residency *r = arg;
	uint64_t h = page_hash(tensor_id, page);
	unsigned f;

	if (r->policy == TS_CACHE_POLICY_DECODED_LRU)
		return 1;
	pthread_mutex_lock(&r->lock);
	sketch_add(r, h);
	f = sketch_freq(r, h);
	pthread_mutex_unlock(&r->lock);
	return f >= 2;
}

static void hint_served(void *arg, uint64_t tensor_id, ts__form form, uint64_t pages,
			uint64_t elements, uint64_t decoded_bytes)
{
	ts__residency *r = arg;
	ts__page_cost c, c0;
	double more = (double)(pages - 1);

	pthread_mutex_lock(&r->lock);
	const tensor_price *p = price_slot(r, tensor_id);
	ts_codec codec = p->used ? p->codec : TS_CODEC_NVFP4;
	uint64_t io = p->used ? p->io_bytes : r->profile.page_bytes;
	/* each part of a page's cost is affine in its elements and bytes: the pages cost what all
	 * their elements and bytes cost as one page, plus the constant parts once per further page */
	ts__hw_page_cost(&r->profile, codec, elements, io, decoded_bytes, &c);
	ts__hw_page_cost(&r->profile, codec, 0, io, 0, &c0);
	switch (form) {
	case TS__FORM_DECODED:
		r->st.served_decoded += pages;
		r->model_us += c.decoded_us + more * c0.decoded_us;
		break;
	case TS__FORM_COMPRESSED:
		r->st.served_compressed += pages;
		r->model_us += c.compressed_us + more * c0.compressed_us;
		break;
	default:
		r->st.served_storage += pages;
		r->model_us += c.storage_us + more * c0.storage_us;
		break;
	}
	pthread_mutex_unlock(&r->lock);
}

static void hint_prefetched(void *arg, uint64_t n)
{
	ts__residency *r = arg;

	pthread_mutex_lock(&r->lock);
	r->st.readahead_pages += n;
	pthread_mutex_unlock(&r->lock);
}

static void hint_request(void *arg, uint64_t tensor_id, uint64_t first, uint64_t last,
			 uint64_t page_count, uint64_t *ra_first, uint64_t *ra_count)
{
	ts__residency *r = arg;
	stream *s = NULL, *victim;

	*ra_first = *ra_count = 0;
	if (r->policy != TS_CACHE_POLICY_TIERED)
		return;
	pthread_mutex_lock(&r->lock);
	victim = &r->streams[0];
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
		*s = (stream){.tensor_id = tensor_id, .live = 1};
	}
	s->run++;
	s->prev_first = first;
	s->next = last + 1;
	s->used_at = r->tick;
	if (s->run >= 2 && last + 1 < page_count) {
		/* up to twice the request ahead (at least 8 pages, at most READAHEAD_MAX), topped
		 * up when less than half of it is left */
		uint64_t span = last - first + 1;
		uint64_t ahead = span * 2 < 8 ? 8 : span * 2;
		if (ahead > READAHEAD_MAX)
			ahead = READAHEAD_MAX;
		uint64_t start = s->ra_end > last + 1 ? s->ra_end : last + 1;
		uint64_t end = last + 1 + ahead < page_count ? last + 1 + ahead : page_count;
		if (start - (last + 1) < ahead / 2 + 1 && end > start) {
			*ra_first = start;
			*ra_count = end - start;
			s->ra_end = end;
		}
	}
	pthread_mutex_unlock(&r->lock);
}

void ts__residency_stats(ts__residency *r, struct ts__cache *cache, ts_residency_stats *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->st;
	out->decoded_pages = r->form_pages[TS__FORM_DECODED];
	out->decoded_bytes = r->form_bytes[TS__FORM_DECODED];
	out->compressed_pages = r->form_pages[TS__FORM_COMPRESSED];
	out->compressed_bytes = r->form_bytes[TS__FORM_COMPRESSED];
	out->model_seconds = r->model_us * 1e-6;
	snprintf(out->profile, sizeof(out->profile), "%s", r->profile.name);
	pthread_mutex_unlock(&r->lock);
	if (cache) {
		ts_cache_stats cs;
		memset(&cs, 0, sizeof(cs));
		ts__cache_stats(cache, &cs);
		out->budget_bytes = cs.budget_bytes;
		out->used_bytes = cs.used_bytes;
		if (r->policy == TS_CACHE_POLICY_DECODED_LRU) {
			/* the cache's LRU does not report to us: all of it is decoded */
			out->decoded_bytes = cs.used_bytes;
			out->evicted = cs.evictions;
		}
	}
}

/* The plug-in the cache is created with: this policy's shard hooks (decoded-lru: the cache's own
 * LRU, which reports nothing to us) and its hints, all with arg = r. */
static void cache_policy_init(ts__residency *r)
{
	if (r->policy == TS_CACHE_POLICY_DECODED_LRU) {
		r->cache_policy = ts__cache_policy_lru;
	} else {
		r->cache_policy = (ts__cache_policy){
			.name = ts_cache_policy_name(r->policy),
			.create = pol_create_plain,
			.create_arg = pol_create,
			.destroy = pol_destroy,
			.admit = pol_admit,
			.inserted = pol_inserted,
			.hit = pol_hit,
			.removed = pol_removed,
			.victim = pol_victim,
		};
	}
	r->cache_policy.arg = r;
	r->cache_policy.keeps_compressed = r->policy == TS_CACHE_POLICY_TIERED;
	r->cache_policy.tensor = hint_tensor;
	r->cache_policy.access = hint_access;
	r->cache_policy.request = hint_request;
	r->cache_policy.served = hint_served;
	r->cache_policy.prefetched = hint_prefetched;
}
