/*
 * corrupt: the corruption suite. Builds a small store with every codec (some tensors with many
 * small pages, one small enough to live inside an LMDB leaf, one replaced and one deleted so the
 * file holds history), reads every tensor once as the reference, then runs TRIALS trials: copy
 * the file, change 1 to 4 bytes at random offsets — anywhere, inside LMDB's meta pages, inside its
 * branch and leaf pages (LMDB checksums none of these), or inside the overflow pages that hold
 * tstore's own pages — and in a child process (with a timeout, so that a crash or a hang is
 * counted, not fatal):
 *   - open the damaged copy read-only with one of the I/O backends, list the tensors, read every
 *     tensor whole and one random slice of each, and compare with the reference;
 * then, in another child, run `tstore fsck` on the copy.
 *
 * Every read must return exactly the reference data or an error; an error should name the
 * tensor. `tstore fsck` must report a problem iff some tensor no longer reads intact, and must
 * not crash or hang.
 *
 *   corrupt [-n TRIALS] [-s SEED] [-t TIMEOUT_S] [-T TSTORE] [-k] [-v]
 * Prints the outcome counts; exit 1 if any read returned wrong data, a reader or fsck crashed or
 * hung, or fsck called a damaged store clean. The seed is printed so that a run can be repeated.
 * Uses the public API only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tstore.h"

#define MAXT 48
#define PAGE 4096

typedef struct tdef {
	const char *name;
	ts_codec codec;
	ts_dtype src;
	int ndim;
	uint64_t shape[4];
	uint64_t page_bytes;
} tdef;

static const tdef defs[] = {
	{"model.layers.0.mlp.up_proj.weight", TS_CODEC_NVFP4, TS_F32, 2, {256, 512}, 0},
	{"model.layers.0.mlp.down_proj.weight", TS_CODEC_NVFP4, TS_BF16, 2, {96, 640}, 4080},
	{"model.layers.0.self_attn.q_proj.weight", TS_CODEC_MXFP4, TS_F32, 2, {128, 320}, 4080},
	{"model.layers.0.self_attn.k_proj.weight", TS_CODEC_INT8, TS_F32, 2, {200, 300}, 8176},
	{"model.layers.0.self_attn.v_proj.weight", TS_CODEC_FP8, TS_F16, 2, {64, 257}, 0},
	{"model.layers.0.input_layernorm.weight", TS_CODEC_RAW, TS_F32, 1, {5000}, 0},
	{"model.embed_tokens.weight", TS_CODEC_RAW, TS_BF16, 3, {7, 9, 33}, 4080},
	{"model.norm.bias", TS_CODEC_RAW, TS_F32, 2, {4, 4}, 0},
	{"lm_head.weight", TS_CODEC_NVFP4, TS_F32, 4, {3, 5, 7, 48}, 4080},
	/* lossless: pages of a length of their own (planes), a zstd frame inside */
	{"model.layers.0.mlp.gate_proj.weight", TS_CODEC_LOSSLESS, TS_BF16, 2, {96, 700}, 16368},
	{"model.layers.0.self_attn.o_proj.weight", TS_CODEC_LOSSLESS, TS_F32, 2, {40, 300}, 8176},
	/* ~260 small pages: the pages database needs a branch page above several leaves */
	{"model.layers.1.mlp.gate_proj.weight", TS_CODEC_RAW, TS_F32, 2, {256, 1000}, 4080},
	/* enough records that the tensors database has a branch page too */
#define SMALL(i) {"model.layers." #i ".post_attention_layernorm.weight", TS_CODEC_RAW, TS_F32, \
		  1, {24}, 0}
	SMALL(10), SMALL(11), SMALL(12), SMALL(13), SMALL(14), SMALL(15), SMALL(16), SMALL(17),
	SMALL(18), SMALL(19), SMALL(20), SMALL(21), SMALL(22), SMALL(23), SMALL(24), SMALL(25),
	SMALL(26), SMALL(27), SMALL(28), SMALL(29), SMALL(30), SMALL(31), SMALL(32), SMALL(33),
#undef SMALL
};
#define NT (sizeof defs / sizeof defs[0])

static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static double rndu(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "corrupt: %s: %s (%s)\n", what, ts_strerror(rc), ts_error_last());
	exit(2);
}

static uint64_t nelem(const tdef *d)
{
	uint64_t n = 1;
	for (int i = 0; i < d->ndim; i++)
		n *= d->shape[i];
	return n;
}

/* Source data: heavy-tailed values from a fixed generator, written as the tensor's dtype. */
static void *make_source(const tdef *d, int version, size_t *bytes)
{
	uint64_t n = nelem(d);
	size_t es = ts_dtype_size(d->src);
	uint8_t *p = malloc(n * es);
	uint64_t save = rng_state;
	rng_state = 0x1234 + (uint64_t)version * 977 + (uint64_t)(d - defs) * 7919;
	for (uint64_t i = 0; i < n; i++) {
		double u1 = rndu() + 1e-12, u2 = rndu();
		float v = (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
		if (rnd() % 97 == 0)
			v *= 8;
		if (d->src == TS_F32)
			memcpy(p + 4 * i, &v, 4);
		else {
			uint16_t h = d->src == TS_BF16 ? ts_f32_to_bf16(v) : ts_f32_to_f16(v);
			memcpy(p + 2 * i, &h, 2);
		}
	}
	rng_state = save;
	*bytes = n * es;
	return p;
}

static float amax_of(const tdef *d, const void *src)
{
	float m = 0;
	for (uint64_t i = 0; i < nelem(d); i++) {
		float v;
		if (d->src == TS_F32)
			memcpy(&v, (const uint8_t *)src + 4 * i, 4);
		else {
			uint16_t h;
			memcpy(&h, (const uint8_t *)src + 2 * i, 2);
			v = d->src == TS_BF16 ? ts_bf16_to_f32(h) : ts_f16_to_f32(h);
		}
		if (fabsf(v) > m)
			m = fabsf(v);
	}
	return m;
}

static void write_tensor(ts_store *st, const tdef *d, const char *name, int version, unsigned flags)
{
	size_t bytes;
	void *src = make_source(d, version, &bytes);
	ts_codec_config cfg = ts_codec_config_default(d->codec);
	if (d->codec == TS_CODEC_RAW || d->codec == TS_CODEC_LOSSLESS)
		cfg.raw_dtype = d->src, cfg.bits_per_value = 8 * (int)ts_dtype_size(d->src);
	ts_write_opts wo;
	ts_write_opts_init(&wo);
	wo.flags = flags;
	wo.amax = amax_of(d, src);
	wo.page_bytes = d->page_bytes;
	ts_writer *w;
	int rc = ts_writer_begin(&w, st, name, d->src, d->ndim, d->shape, &cfg, &wo);
	if (rc)
		die(name, rc);
	/* odd chunk sizes: a whole number of elements, never aligned to rows */
	size_t es = ts_dtype_size(d->src), off = 0, chunk = 1237 * es;
	while (off < bytes) {
		size_t k = bytes - off < chunk ? bytes - off : chunk;
		if ((rc = ts_writer_append(w, (uint8_t *)src + off, k)))
			die(name, rc);
		off += k;
	}
	if ((rc = ts_writer_commit(NULL, w)))
		die(name, rc);
	free(src);
}

static ts_dtype read_dtype(const tdef *d)
{
	return d->codec == TS_CODEC_RAW || d->codec == TS_CODEC_LOSSLESS ? d->src : TS_F32;
}

/* Reference contents, read from the undamaged store. */
static uint8_t *ref[MAXT];
static size_t ref_bytes[MAXT];

static int read_all(ts_store *st, const tdef *d, uint8_t *dst, size_t bytes)
{
	uint64_t start[4] = {0};
	return ts_read_slice(st, d->name, d->ndim, start, d->shape, read_dtype(d), dst, bytes);
}

/* Compare a slice read with the reference. */
static int slice_matches(const tdef *d, const uint64_t *start, const uint64_t *count,
			 const uint8_t *got, int ti)
{
	size_t es = ts_dtype_size(read_dtype(d));
	uint64_t idx[4] = {0}, n = 1;
	for (int i = 0; i < d->ndim; i++)
		n *= count[i];
	for (uint64_t k = 0; k < n; k++) {
		uint64_t off = 0;
		for (int i = 0; i < d->ndim; i++)
			off = off * d->shape[i] + start[i] + idx[i];
		if (memcmp(got + k * es, ref[ti] + off * es, es))
			return 0;
		for (int i = d->ndim - 1; i >= 0; i--) {
			if (++idx[i] < count[i])
				break;
			idx[i] = 0;
		}
	}
	return 1;
}

/* -- trial outcomes, in memory shared with the child ----------------------------------------- */

enum { R_NOTRUN = 0, R_INTACT, R_ERROR, R_WRONG };

typedef struct shared {
	int open_rc;
	int listed_unknown;   /* a listed name that the store never held */
	char unknown[200];
	int result[MAXT];     /* R_* per tensor (worst of its reads) */
	int unnamed[MAXT];    /* an error whose message does not name the tensor */
	char msg[MAXT][200];
} shared;

static int listed(void *ud, const char *name, const ts_tensor_info *info);

static void reader_child(shared *sh, const char *path, int io, uint64_t seed)
{
	ts_open_opts o;
	ts_open_opts_init(&o);
	o.io = (ts_io_backend)io;
	o.cache_bytes = (seed & 1) ? 0 : 1 << 20;
	o.threads = 1;
	ts_store *st;
	int rc = ts_store_open(&st, path, &o);
	sh->open_rc = rc;
	if (rc)
		_exit(0);
	rng_state = seed;
	for (size_t i = 0; i < NT; i++) {
		const tdef *d = &defs[i];
		uint8_t *buf = malloc(ref_bytes[i]);
		int res = R_INTACT;
		rc = read_all(st, d, buf, ref_bytes[i]);
		if (rc) {
			res = R_ERROR;
			if (!strstr(ts_error_last(), d->name))
				sh->unnamed[i] = 1;
			snprintf(sh->msg[i], sizeof sh->msg[i], "%s: %s", ts_errname(rc), ts_error_last());
		} else if (memcmp(buf, ref[i], ref_bytes[i])) {
			res = R_WRONG;
		}
		/* a random slice, through the (possibly warm) cache */
		uint64_t start[4], count[4];
		for (int k = 0; k < d->ndim; k++) {
			start[k] = rnd() % d->shape[k];
			count[k] = 1 + rnd() % (d->shape[k] - start[k]);
		}
		rc = ts_read_slice(st, d->name, d->ndim, start, count, read_dtype(d), buf, ref_bytes[i]);
		if (rc) {
			if (res == R_INTACT)
				res = R_ERROR;
			if (!strstr(ts_error_last(), d->name))
				sh->unnamed[i] = 1;
			if (!sh->msg[i][0])
				snprintf(sh->msg[i], sizeof sh->msg[i], "%s: %s", ts_errname(rc),
					 ts_error_last());
		} else if (!slice_matches(d, start, count, buf, (int)i)) {
			res = R_WRONG;
		}
		sh->result[i] = res;
		free(buf);
	}
	/* the listing must not invent tensors */
	ts_tensor_foreach(st, listed, sh);
	ts_store_close(st);
	_exit(0);
}

static int listed(void *ud, const char *name, const ts_tensor_info *info)
{
	shared *sh = ud;
	(void)info;
	for (size_t i = 0; i < NT; i++)
		if (!strcmp(name, defs[i].name))
			return 0;
	if (!sh->listed_unknown++)
		snprintf(sh->unknown, sizeof sh->unknown, "%s", name);
	return 0;
}

/* Run fn in a child with a timeout. Returns 0 exited, 1 crashed (signal), 2 hung. *status gets
 * the exit status. */
static int run_child(void (*fn)(void *), void *arg, int timeout, int *status)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		alarm((unsigned)timeout);
		fn(arg);
		_exit(0);
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(ws))
		return WTERMSIG(ws) == SIGALRM || WTERMSIG(ws) == SIGKILL ? 2 : 1;
	*status = WEXITSTATUS(ws);
	return 0;
}

typedef struct rarg {
	shared *sh;
	const char *path;
	int io;
	uint64_t seed;
} rarg;
static void run_reader(void *p)
{
	rarg *a = p;
	reader_child(a->sh, a->path, a->io, a->seed);
}

typedef struct farg {
	const char *tstore;
	const char *path;
} farg;
static void run_fsck(void *p)
{
	farg *a = p;
	int fd = open("/dev/null", O_WRONLY);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execl(a->tstore, a->tstore, "fsck", "-q", a->path, (char *)NULL);
	_exit(127);
}

static int copy_file(const char *to, const uint8_t *img, size_t n)
{
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < n) {
		ssize_t k = write(fd, img + off, n - off);
		if (k <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)k;
	}
	return close(fd);
}

/* LMDB page classes, from the page headers of the undamaged file: flags at byte 10 (u16),
 * an overflow run's page count at byte 12 (u32). */
enum { C_META, C_BRANCH, C_LEAF, C_OVF, C_OTHER, C_COUNT };
static const char *const cname[C_COUNT] = {"meta", "branch", "leaf", "overflow", "free"};

/* What a trial aims at (t % T_COUNT): anywhere in the file; the fields of a meta page (its
 * first 160 bytes: magic, page size, both tree records, last page, txnid); the used bytes of a
 * branch or a leaf page (header and node index, or the nodes: headers, keys, values, child page
 * numbers); anywhere in a branch or leaf page; an overflow page. */
enum { T_ANY, T_META_FIELDS, T_BRANCH_USED, T_LEAF_USED, T_TREE_ANY, T_OVF, T_COUNT };
static const char *const tname[T_COUNT] = {"anywhere", "meta fields", "branch used bytes",
					   "leaf used bytes", "branch/leaf anywhere", "overflow"};

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Mark the pages of the tree under @p pgno live (LMDB 0.9 layout: node index from byte 16 up to
 * `lower` at byte 12; node lo u16, hi u16, flags u16, ksize u16; a branch node's child is
 * lo | hi << 16 | flags << 32; a main-tree leaf node with flag 2 holds a 48-byte database
 * record, root at +40). The file also holds stale copies of branch and leaf pages
 * (copy-on-write): damage there is harmless, so the branch and leaf targets aim at live ones. */
static void mark_live(const uint8_t *img, size_t npages, uint8_t *live, uint64_t pgno, int level)
{
	if (pgno < 2 || pgno >= npages || live[pgno] || level > 16)
		return;
	live[pgno] = 1;
	const uint8_t *h = img + pgno * PAGE;
	unsigned flags = h[10] | h[11] << 8, lower = h[12] | h[13] << 8;
	if (!(flags & 3) || lower < 16 || lower > PAGE)
		return;
	for (unsigned i = 0; i < (lower - 16) / 2; i++) {
		unsigned off = h[16 + 2 * i] | h[17 + 2 * i] << 8;
		if (off + 8 > PAGE)
			continue;
		const uint8_t *n = h + off;
		unsigned nf = n[4] | n[5] << 8, ks = n[6] | n[7] << 8;
		if (flags & 1)
			mark_live(img, npages, live,
				  (uint64_t)(n[0] | n[1] << 8) | (uint64_t)(n[2] | n[3] << 8) << 16 |
					  (uint64_t)nf << 32,
				  level + 1);
		else if ((nf & 2) && off + 8 + ks + 48 <= PAGE)
			mark_live(img, npages, live, le64(n + 8 + ks + 40), 0);
		else if ((nf & 1) && off + 8 + ks + 8 <= PAGE) { /* a big value's overflow run */
			uint64_t ov = le64(n + 8 + ks);
			if (ov >= 2 && ov < npages) {
				const uint8_t *o = img + ov * PAGE;
				uint64_t run = (uint64_t)(o[12] | o[13] << 8) |
					       (uint64_t)(o[14] | o[15] << 8) << 16;
				for (uint64_t k = 0; k < run && ov + k < npages; k++)
					live[ov + k] = 1;
			}
		}
	}
}

int main(int argc, char **argv)
{
	int trials = 200, timeout = 20, keep = 0, verbose = 0, first = 0;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	const char *tstore = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "n:s:t:T:kvf:")) != -1) {
		switch (opt) {
		case 'n': trials = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 't': timeout = atoi(optarg); break;
		case 'T': tstore = optarg; break;
		case 'k': keep = 1; break;
		case 'v': verbose = 1; break;
		case 'f': first = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: corrupt [-n TRIALS] [-s SEED] [-t TIMEOUT] [-T TSTORE] [-k] [-v] [-f FIRST]\n");
			return 2;
		}
	}
	printf("corrupt: %d trials, seed %" PRIu64 " (repeat with -s %" PRIu64 ")\n", trials, seed,
	       seed);
	fflush(stdout);
	char dir[] = "/tmp/tstore-corrupt.XXXXXX";
	const char *tmp = getenv("TMPDIR");
	char dirbuf[4096];
	if (tmp) {
		snprintf(dirbuf, sizeof dirbuf, "%s/tstore-corrupt.XXXXXX", tmp);
		if (!mkdtemp(dirbuf))
			return perror("mkdtemp"), 2;
	} else {
		if (!mkdtemp(dir))
			return perror("mkdtemp"), 2;
		strcpy(dirbuf, dir);
	}
	char orig[4200], trial[4200], cmd[8600];
	snprintf(orig, sizeof orig, "%s/orig.tst", dirbuf);
	snprintf(trial, sizeof trial, "%s/trial.tst", dirbuf);

	/* The store: every tensor, then one replaced and one deleted (history in the file). */
	ts_open_opts o;
	ts_open_opts_init(&o);
	o.flags = TS_OPEN_CREATE | TS_OPEN_WRITE;
	o.threads = 2;
	ts_store *st;
	int rc = ts_store_open(&st, orig, &o);
	if (rc)
		die(orig, rc);
	for (size_t i = 0; i < NT; i++)
		write_tensor(st, &defs[i], defs[i].name, 0, 0);
	write_tensor(st, &defs[0], "scratch.deleted", 5, 0);
	write_tensor(st, &defs[3], defs[3].name, 1, TS_WRITE_REPLACE);
	if ((rc = ts_tensor_delete(st, "scratch.deleted")))
		die("delete", rc);
	ts_store_close(st);

	/* reference reads */
	if ((rc = ts_store_open(&st, orig, NULL)))
		die(orig, rc);
	for (size_t i = 0; i < NT; i++) {
		ref_bytes[i] = nelem(&defs[i]) * ts_dtype_size(read_dtype(&defs[i]));
		ref[i] = malloc(ref_bytes[i]);
		if ((rc = read_all(st, &defs[i], ref[i], ref_bytes[i])))
			die(defs[i].name, rc);
	}
	ts_store_close(st);

	/* the file and its page map */
	int fd = open(orig, O_RDONLY);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0)
		return perror(orig), 2;
	size_t fsize = (size_t)sb.st_size;
	uint8_t *img = malloc(fsize), *work = malloc(fsize);
	if (pread(fd, img, fsize, 0) != (ssize_t)fsize)
		return perror(orig), 2;
	close(fd);
	size_t npages = fsize / PAGE;
	uint8_t *cls = malloc(npages ? npages : 1);
	uint8_t *live = calloc(1, npages ? npages : 1);
	uint8_t *ovfirst = calloc(1, npages ? npages : 1); /* first page of a live overflow run */
	if (npages >= 2) { /* the meta LMDB uses: the higher txnid, at byte 144 */
		const uint8_t *mm = img + (le64(img + PAGE + 144) > le64(img + 144) ? PAGE : 0);
		/* not the free-page tree: only writers read it, and neither readers nor fsck check
		 * it (docs/TESTING.md, known limits); its pages count as free */
		mark_live(img, npages, live, le64(mm + 88 + 40), 0); /* main tree and its databases */
	}
	size_t ccount[C_COUNT] = {0};
	for (size_t p = 0; p < npages; p++) {
		const uint8_t *h = img + p * PAGE;
		unsigned flags = h[10] | h[11] << 8;
		if (p < 2)
			cls[p] = C_META;
		else if (flags & 4) {
			uint32_t n = h[12] | h[13] << 8 | (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24;
			for (uint32_t k = 0; k < n && p + k < npages; k++)
				cls[p + k] = live[p] ? C_OVF : C_OTHER;
			ovfirst[p] = live[p];
			p += n ? n - 1 : 0;
			continue;
		} else if ((flags & 1) && live[p])
			cls[p] = C_BRANCH;
		else if ((flags & 2) && live[p])
			cls[p] = C_LEAF;
		else
			cls[p] = C_OTHER; /* free: stale copies of tree pages, old overflow runs */
	}
	free(live);
	for (size_t p = 0; p < npages; p++)
		ccount[cls[p]]++;
	printf("corrupt: store of %zu bytes: %zu meta, %zu branch, %zu leaf, %zu overflow, %zu free "
	       "pages\n", fsize, ccount[C_META], ccount[C_BRANCH], ccount[C_LEAF], ccount[C_OVF],
	       ccount[C_OTHER]);
	if (!ccount[C_BRANCH] || !ccount[C_LEAF] || !ccount[C_OVF]) {
		fprintf(stderr, "corrupt: the store lacks branch, leaf or overflow pages\n");
		return 2;
	}

	shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return perror("mmap"), 2;

	uint64_t reads_intact = 0, reads_error = 0, reads_wrong = 0, reads_unnamed = 0;
	uint64_t open_fail = 0, crashes = 0, hangs = 0, fsck_crash = 0, fsck_hang = 0;
	uint64_t fsck_missed = 0, fsck_false = 0, fsck_agree = 0, damaged_trials = 0;
	uint64_t latent_trials = 0;
	uint64_t by_class[C_COUNT] = {0}, damaged_by_class[C_COUNT] = {0};
	uint64_t by_target[T_COUNT] = {0}, damaged_by_target[T_COUNT] = {0};
	uint64_t open_fail_by_target[T_COUNT] = {0};
	static const int ios[3] = {TS_IO_URING, TS_IO_PREAD, TS_IO_MMAP};

	for (int t = first; t < first + trials; t++) {
		/* Each trial's generator starts from a mixed state: seed + t * step alone would make
		 * trial t + k replay trial t's draws shifted by k (the generator adds that step). */
		rng_state = seed ^ ((uint64_t)t * 0xd1b54a32d192ed03ull);
		rng_state = rnd();
		memcpy(work, img, fsize);
		int want = t % T_COUNT;
		size_t page;
		do
			page = rnd() % npages;
		while ((want == T_META_FIELDS && cls[page] != C_META) ||
		       (want == T_BRANCH_USED && cls[page] != C_BRANCH) ||
		       (want == T_LEAF_USED && cls[page] != C_LEAF) ||
		       (want == T_TREE_ANY && cls[page] != C_BRANCH && cls[page] != C_LEAF) ||
		       (want == T_OVF && cls[page] != C_OVF));
		int c = cls[page];
		by_class[c]++;
		by_target[want]++;
		const uint8_t *h = img + page * PAGE;
		unsigned lower = h[12] | h[13] << 8, upper = h[14] | h[15] << 8;
		if (lower < 16 || lower > upper || upper > PAGE)
			lower = 16, upper = 16;
		int nflip = rnd() % 4 == 0 ? 2 + (int)(rnd() % 3) : 1;
		char what[256];
		int wl = snprintf(what, sizeof what, "%s, %s page %zu:", tname[want], cname[c], page);
		/* Latent damage: LMDB fields that readers never need but LMDB's next write trusts —
		 * the page number, flags and page count of a live overflow run's header (freeing the
		 * run), the flags of a live branch or leaf page (P_DIRTY makes a writer modify it in
		 * place). Reads stay intact; fsck must still report it. */
		int latent = 0;
		for (int k = 0; k < nflip; k++) {
			size_t in = rnd() % PAGE;
			if (want == T_META_FIELDS)
				in = rnd() % 160;
			else if ((want == T_BRANCH_USED || want == T_LEAF_USED) && rnd() % 2)
				in = rnd() % lower; /* header and node index */
			else if (want == T_BRANCH_USED || want == T_LEAF_USED)
				in = upper + rnd() % (PAGE - upper + (upper == PAGE)); /* nodes */
			if (in >= PAGE)
				in = PAGE - 1;
			size_t off = page * PAGE + in;
			if ((ovfirst[page] && (in < 8 || (in >= 10 && in < 16))) ||
			    ((c == C_BRANCH || c == C_LEAF) && in >= 10 && in < 12))
				latent = 1;
			uint8_t x = (uint8_t)(1 + rnd() % 255);
			work[off] ^= x;
			if (wl < (int)sizeof what - 24)
				wl += snprintf(what + wl, sizeof what - (size_t)wl, " @%zu^%02x", off, x);
		}
		unlink(trial);
		snprintf(cmd, sizeof cmd, "%s-lock", trial);
		unlink(cmd);
		if (copy_file(trial, work, fsize) < 0)
			return perror(trial), 2;

		memset(sh, 0, sizeof *sh);
		int io = ios[rnd() % 3];
		rarg ra = {sh, trial, io, rnd()};
		int st_status = 0;
		int r = run_child(run_reader, &ra, timeout, &st_status);
		int damaged = 0, wrong = 0;
		if (r == 1)
			crashes++, damaged = 1;
		if (r == 2)
			hangs++, damaged = 1;
		if (sh->open_rc) {
			open_fail++;
			open_fail_by_target[want]++;
			damaged = 1;
		} else {
			for (size_t i = 0; i < NT; i++) {
				switch (sh->result[i]) {
				case R_INTACT: reads_intact++; break;
				case R_ERROR:
					reads_error++, damaged = 1;
					reads_unnamed += (uint64_t)sh->unnamed[i];
					break;
				case R_WRONG: reads_wrong++, damaged = 1, wrong = 1; break;
				default: damaged = 1; break; /* not reached: crashed or hung before */
				}
			}
			if (sh->listed_unknown)
				wrong = 1, damaged = 1, reads_wrong++;
		}
		int fsck_problem = -1;
		if (tstore) {
			farg fa = {tstore, trial};
			int fst = 0;
			int fr = run_child(run_fsck, &fa, timeout * 3, &fst);
			if (fr == 1)
				fsck_crash++;
			else if (fr == 2)
				fsck_hang++;
			else {
				fsck_problem = fst != 0;
				if (fst == 127)
					fprintf(stderr, "corrupt: cannot run %s\n", tstore), exit(2);
				if ((damaged || latent) && !fsck_problem)
					fsck_missed++;
				else if (!damaged && !latent && fsck_problem)
					fsck_false++;
				else
					fsck_agree++;
				if (latent && !damaged)
					latent_trials++;
			}
		}
		damaged_trials += (uint64_t)damaged;
		damaged_by_class[c] += (uint64_t)damaged;
		damaged_by_target[want] += (uint64_t)damaged;
		if (verbose || wrong || r ||
		    (tstore && fsck_problem >= 0 && fsck_problem != (damaged || latent))) {
			printf("trial %d (%s, io %s): %s%s%s%s", t, what,
			       ts_io_backend_name((ts_io_backend)io),
			       r == 1 ? "READER CRASHED " : r == 2 ? "READER HUNG " : "",
			       wrong ? "WRONG DATA " : "", damaged ? "damaged" : "intact",
			       fsck_problem < 0 ? "" : fsck_problem ? ", fsck: problems" : ", fsck: clean");
			if (sh->open_rc)
				printf(" (open: %s)", ts_errname(sh->open_rc));
			if (sh->listed_unknown)
				printf(" (lists a tensor it never held: '%s')", sh->unknown);
			for (size_t i = 0; i < NT; i++)
				if (sh->result[i] == R_WRONG)
					printf(" (wrong data: '%s')", defs[i].name);
			printf("\n");
			for (size_t i = 0; i < NT && verbose; i++)
				if (sh->msg[i][0])
					printf("    %s\n", sh->msg[i]);
			if (keep && (wrong || r)) {
				char kp[4300];
				snprintf(kp, sizeof kp, "%s/trial-%d.tst", dirbuf, t);
				copy_file(kp, work, fsize);
				printf("    kept as %s\n", kp);
			}
		}
	}
	printf("\ncorrupt: %d trials (seed %" PRIu64 "); trials whose damage readers saw / trials, "
	       "by page:", trials, seed);
	for (int k = 0; k < C_COUNT; k++)
		printf(" %s %" PRIu64 "/%" PRIu64, cname[k], damaged_by_class[k], by_class[k]);
	printf("\n  by target (refused at open / seen / trials):");
	for (int k = 0; k < T_COUNT; k++)
		printf("%s %s %" PRIu64 "/%" PRIu64 "/%" PRIu64, k ? ";" : "", tname[k],
		       open_fail_by_target[k], damaged_by_target[k], by_target[k]);
	printf("\n  tensor reads: %" PRIu64 " clean, %" PRIu64 " detected (error; %" PRIu64
	       " not naming the tensor), %" PRIu64 " SILENT WRONG DATA\n",
	       reads_intact, reads_error, reads_unnamed, reads_wrong);
	printf("  stores refused at open: %" PRIu64 "; trials with damage seen by readers: %" PRIu64 "\n",
	       open_fail, damaged_trials);
	printf("  reader crashes: %" PRIu64 ", reader hangs: %" PRIu64 "\n", crashes, hangs);
	if (tstore)
		printf("  fsck: agrees %" PRIu64 " (of which %" PRIu64 " latent: LMDB headers a write "
		       "would trust, reads intact), missed damage %" PRIu64 ", false alarms %" PRIu64
		       ", crashes %" PRIu64 ", hangs %" PRIu64 "\n",
		       fsck_agree, latent_trials, fsck_missed, fsck_false, fsck_crash, fsck_hang);
	if (!keep) {
		unlink(trial);
		snprintf(cmd, sizeof cmd, "%s-lock", trial);
		unlink(cmd);
		unlink(orig);
		snprintf(cmd, sizeof cmd, "%s-lock", orig);
		unlink(cmd);
		rmdir(dirbuf);
	}
	free(img);
	free(work);
	free(cls);
	free(ovfirst);
	for (size_t i = 0; i < MAXT; i++)
		free(ref[i]);
	munmap(sh, sizeof *sh);
	int bad = reads_wrong || crashes || hangs || fsck_crash || fsck_hang || fsck_missed ||
		  fsck_false;
	printf("corrupt: %s\n", bad ? "FAILED" : "passed");
	return bad ? 1 : 0;
}
