/*
 * tstore import: safetensors files and sharded checkpoints into a store.
 *
 * The command runs in three steps (parse_args, import_plan, import_run).
 *   1. Parse the options.
 *   2. Plan: open and parse every source completely (tools/cli/safetensors.c), resolve ModelOpt
 *      NVFP4 groups, check names against the store. Anything wrong stops the command here,
 *      before the store is touched (it is not even created).
 *   3. Run: tensor by tensor, in name order, every tensor staged in ONE write group
 *      (ts_group_begin): its pages go to the store as they are encoded, but nothing is visible
 *      until the group is published, all at once, at the end. The sources are read ahead by
 *      a thread (tools/cli/srcread.c: O_DIRECT into reused buffers, --read-buffer of them in
 *      all), which also scans each floating-point tensor that may get a lossy codec for its
 *      amax and its non-finite values; the encoder works on one tensor while the next is read,
 *      and the writer commits pages while it encodes the next ones. A tensor larger than half
 *      the buffer is read twice (scan, then encode) when it needs a scan, else streamed, in
 *      pieces of at most SRCREAD_STREAM_PIECE (larger ones would only cost fresh memory).
 *
 * Invariants
 *   1. Atomicity of the whole command: the group is published in one transaction only when
 *      every tensor was written. When writing fails (disk full, I/O error, a codec error, a
 *      tensor with NaN or Inf under a forced lossy codec, a source that cannot be read) or
 *      the publication itself fails, the group is discarded: the store is exactly as it was
 *      before the command, replaced tensors included (their old versions were never touched);
 *      a store the command created is removed. A killed process leaves the old state too (the
 *      staged pages are an interrupted write that the next writer removes).
 *   2. SIGINT (Ctrl-C) stops at the next chunk and discards the group: the store is as it was
 *      before the command. A second SIGINT terminates at once (the same as a kill: nothing of
 *      the command is visible; the next writer cleans up).
 *   3. The policy (see usage()) decides every tensor's codec; the summary prints it. The
 *      decisions are the library's (ts_policy_choose() and ts_policy_next(), codec/policy.c),
 *      which Python's save_file() takes too; the command only runs the analyser on the
 *      sample rows it gathers while reading.
 *   4. ModelOpt NVFP4 groups (x U8 [r, c/2], x_scale F8_E4M3 [r, c/16], x_scale_2 F32 scalar)
 *      are stored as one NVFP4 tensor x [r, c] from their encoded bytes, never requantized;
 *      the tensor scale is exactly x_scale_2.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/modeldir.h"
#include "tools/cli/progress.h"
#include "tools/cli/safetensors.h"
#include "tools/cli/scan.h"
#include "tools/cli/srcread.h"

#define CMD "import"
#define CHUNK_BYTES (4u << 20)
#define READ_BUFFER_DEFAULT (256ull << 20) /* --read-buffer: sources read ahead */

typedef enum plan_kind { P_FLOAT, P_RAW, P_MODELOPT } plan_kind;

typedef struct plan {
	const st_tensor *t;
	const st_tensor *scale, *scale2; /* ModelOpt group */
	plan_kind kind;
	int keep;           /* matched --keep */
	int exists;         /* name already in the store */
	int whole;          /* its bytes come from the reader in one piece */
	int passes;         /* times the reader reads it: 0 (mapping), 1, 2 (scan, then write) */
	float amax;
	uint64_t nonfinite;
} plan;

typedef struct opts {
	int codec; /* -1 auto */
	ts_recipe recipe;
	double max_error;
	char **keep;
	size_t nkeep;
	int jobs;
	int replace, skip_existing;
	int quantize_all; /* --quantize-all: no exact-keeping rules (ts_policy_keep_reason) */
	int no_files;      /* --no-files: a directory's other files are not attached */
	uint64_t max_file; /* --max-file-size */
	uint64_t buffer;   /* --read-buffer */
	int spool;         /* --spool: SPOOL_AUTO, SPOOL_ALWAYS, SPOOL_NEVER */
} opts;

enum { SPOOL_AUTO, SPOOL_ALWAYS, SPOOL_NEVER };

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
	signal(SIGINT, SIG_DFL); /* a second Ctrl-C terminates at once */
}

/* --max-error's default: the library's policy's. */
static double default_max_error(void)
{
	ts_policy_opts po;
	ts_policy_opts_init(&po);
	return po.max_error_pct;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tstore import [OPTIONS] STORE SRC...\n"
		"       tstore import [OPTIONS] STORE DIR\n"
		"Import safetensors files (or a sharded checkpoint's model.safetensors.index.json)\n"
		"into STORE, creating it if needed. A model directory DIR gives its checkpoint (its\n"
		"model.safetensors.index.json, else its one *.safetensors.index.json, else every\n"
		"*.safetensors in it) and attaches every other regular file below it (config,\n"
		"tokenizer, chat template, README; not hidden ones) to the store, byte for byte, in\n"
		"the same transaction: 'tstore export STORE OUT/' gives the directory back. A\n"
		"symbolic link that leads outside DIR is refused (nothing imported).\n\n"
		"Options:\n"
		"  --codec auto|nvfp4|mxfp4|int8|fp8|lossless|raw\n"
		"                      auto (default): per tensor, the codec with the fewest bytes\n"
		"                      whose measured relative RMS error is within --max-error;\n"
		"                      another value forces that codec on every floating-point tensor\n"
		"                      not matched by --keep (a tensor it cannot encode, e.g. one with\n"
		"                      NaN or Inf, is an error and nothing is imported)\n"
		"  --recipe nvidia|best  NVFP4 encoder recipe with --codec nvfp4 (default nvidia);\n"
		"                      auto tries both\n"
		"  --max-error PCT     bound on relative RMS error for auto, percent (default %g);\n"
		"                      0: every floating-point tensor lossless\n"
		"  --keep GLOB         store tensors whose name matches GLOB losslessly (repeatable)\n"
		"  --quantize-all      auto: let the analyser choose for token embeddings, output\n"
		"                      projections and MoE routers too (kept exact by default)\n"
		"  --no-files          DIR: import the checkpoint only, attach no other file\n"
		"  --max-file-size SIZE  DIR: files larger than SIZE are not attached, only listed\n"
		"                      (default 64MiB; units KB MB GB, KiB MiB GiB)\n"
		"  --jobs N            encoder threads (default: all cores)\n"
		"  --read-buffer SIZE  memory for reading the sources ahead (default 256MiB); a\n"
		"                      tensor that needs a scan and is larger than half of it is\n"
		"                      read twice\n"
		"  --spool always|auto|never  when another process writes STORE: encode meanwhile\n"
		"                      into a spool store (always, the default), only while the\n"
		"                      machine has cores to spare (auto), or never (wait idle)\n"
		"  --replace           replace tensors that already exist in STORE\n"
		"  --skip-existing     leave tensors that already exist in STORE as they are\n"
		CLI_WAIT_HELP
		"  -q                  print only errors\n"
		"  --help              this text\n\n"
		"Policy (auto): token embeddings (*embed_tokens*, *wte*, *word_embeddings*), output\n"
		"projections (lm_head*, embed_out*, output.weight) and MoE routers (*.mlp.gate.weight,\n"
		"*router*) are kept exact, as ModelOpt keeps them in high precision (unless\n"
		"--quantize-all); so are tensors that are 1-D, have fewer than %d elements, or hold\n"
		"NaN or Inf (lossless, in their source dtype, or raw where lossless would not be\n"
		"smaller); with --max-error 0 every floating-point tensor is; the others are analysed on a\n"
		"sample of up to %u elements, and if the whole tensor then misses the bound, analysed\n"
		"whole and rewritten. Integer and bool tensors are always stored raw. ModelOpt NVFP4\n"
		"tensors (x U8 + x_scale F8_E4M3 + x_scale_2 F32) are stored as NVFP4 as they are.\n"
		"Names already in STORE are an error unless --replace or --skip-existing.\n\n"
		"Atomicity: sources are parsed and checked before the store is touched; every\n"
		"tensor is then written invisibly and all are published together in one transaction\n"
		"at the end. If anything fails (a tensor that cannot be encoded, a bad source, a full\n"
		"disk), nothing is published: the store is exactly as it was before the command,\n"
		"tensors replaced by --replace included (a store the command created is removed).\n"
		"If another process writes STORE, the import reads ahead and (--spool) encodes\n"
		"and writes meanwhile into a spool store STORE.spool-PID\n"
		"(removed at the end); when STORE is free it moves the spooled pages in and writes\n"
		"the rest directly (--wait bounds the whole wait).\n"
		"Ctrl-C discards what was written and exits with 130: the store is as it was\n"
		"before the command. A killed process leaves it so too; the next writer reclaims\n"
		"the pages it had written.\n",
		default_max_error(), (int)TS_POLICY_TINY_ELEMENTS, TS_POLICY_SAMPLE_ELEMENTS);
}

/* -- Scanning ----------------------------------------------------------------------------- */

/* Drop the source pages behind us from this process (they stay in the page cache). */
static void release(const void *p, size_t len)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1), b = ((uintptr_t)p + len) & ~(pg - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

static int is_float_src(ts_dtype d)
{
	return d == TS_F32 || d == TS_BF16 || d == TS_F16;
}


/* -- Validation --------------------------------------------------------------------------- */

/* Resolve ModelOpt groups and build the plan. 0 or -1 (reported). */
static int build_plan(const st_checkpoint *ck, const opts *o, plan **out, size_t *count)
{
	plan *p = calloc(ck->count ? ck->count : 1, sizeof *p);
	unsigned char *consumed = calloc(ck->count ? ck->count : 1, 1);
	size_t n = 0;
	char nm[TS_MAX_NAME + 32];
	if (!p || !consumed) {
		cli_error(CMD, NULL, "out of memory");
		free(p);
		free(consumed);
		return -1;
	}
	for (size_t i = 0; i < ck->count; i++) {
		const st_tensor *t = ck->tensors[i];
		if (t->dtype != TS_U8)
			continue;
		snprintf(nm, sizeof nm, "%s_scale", t->name);
		const st_tensor *s = st_checkpoint_find(ck, nm);
		snprintf(nm, sizeof nm, "%s_scale_2", t->name);
		const st_tensor *s2 = st_checkpoint_find(ck, nm);
		if (!s || !s2)
			continue;
		/* A U8 tensor with both companions is a ModelOpt NVFP4 weight: check it strictly. */
		const char *bad = NULL;
		if (t->ndim != 2)
			bad = "the U8 weight is not 2-D";
		else if (s->dtype != TS_F8_E4M3)
			bad = "the _scale tensor is not F8_E4M3";
		else if (s->ndim != 2 || s->shape[0] != t->shape[0] ||
			 s->shape[1] != (2 * t->shape[1] + 15) / 16)
			bad = "the _scale tensor's shape is not [rows, cols/16]";
		else if (s2->dtype != TS_F32 || s2->nelem != 1)
			bad = "the _scale_2 tensor is not an F32 scalar";
		else if (t->shape[1] == 0 || t->shape[0] == 0)
			bad = "the weight is empty";
		if (!bad) {
			float g;
			memcpy(&g, s2->data, 4);
			if (!(g > 0) || !isfinite(g))
				bad = "the _scale_2 value is not a positive finite number";
		}
		if (bad) {
			cli_error(CMD, t->name, "ModelOpt NVFP4 group: %s", bad);
			goto fail;
		}
		for (size_t j = 0; j < ck->count; j++)
			if (ck->tensors[j] == s || ck->tensors[j] == s2)
				consumed[j] = 1;
	}
	for (size_t i = 0; i < ck->count; i++) {
		if (consumed[i])
			continue;
		const st_tensor *t = ck->tensors[i];
		plan *q = &p[n++];
		q->t = t;
		if (t->dtype == TS_U8) {
			snprintf(nm, sizeof nm, "%s_scale", t->name);
			q->scale = st_checkpoint_find(ck, nm);
			snprintf(nm, sizeof nm, "%s_scale_2", t->name);
			q->scale2 = st_checkpoint_find(ck, nm);
			if (q->scale && q->scale2) {
				q->kind = P_MODELOPT;
				continue;
			}
			q->scale = q->scale2 = NULL;
		}
		q->kind = is_float_src(t->dtype) ? P_FLOAT : P_RAW;
		for (size_t k = 0; k < o->nkeep; k++)
			if (fnmatch(o->keep[k], t->name, 0) == 0)
				q->keep = 1;
	}
	free(consumed);
	*out = p;
	*count = n;
	return 0;
fail:
	free(consumed);
	free(p);
	return -1;
}

/* -- Writing ------------------------------------------------------------------------------ */

typedef struct kept_rule {
	const char *reason; /* ts_policy_keep_reason() */
	size_t n;
	char first[TS_MAX_NAME + 1];
} kept_rule;

typedef struct summary {
	kept_rule kept[8]; /* tensors kept exact by the policy's rules, per reason */
	size_t nkept;
	size_t tensors, by_codec[TS_CODEC_COUNT], lossless_1d, lossless_tiny, lossless_nonfinite,
		lossless_keep, lossless_bound, raw_int, modelopt, skipped, rewritten;
	uint64_t bytes_in, bytes_out;
	double worst;
	char worst_name[TS_MAX_NAME + 1];
} summary;

/* The rows auto analyses of tensor @p t: all of them (@p whole), else the policy's sample
 * (ts_policy_sample_rows: evenly spaced rows, row i * rows / srows). */
static uint64_t sample_rows(const st_tensor *t, int whole)
{
	uint64_t cols = t->ndim ? t->shape[t->ndim - 1] : 1, rows = cols ? t->nelem / cols : 0;
	return whole ? rows : ts_policy_sample_rows(rows, cols);
}

/* Copy the bytes of the sample rows (sample_rows()) that lie in @p len bytes at byte @p off of
 * tensor @p t into @p buf (srows rows), so that a tensor read in pieces gives the sample that
 * the whole tensor gives. */
static void sample_gather(uint8_t *buf, const st_tensor *t, uint64_t srows, const uint8_t *data,
			  uint64_t off, uint64_t len)
{
	uint64_t cols = t->ndim ? t->shape[t->ndim - 1] : 1, rows = cols ? t->nelem / cols : 0;
	uint64_t rb = cols * ts_dtype_size(t->dtype);
	for (uint64_t i = 0; i < srows; i++) {
		uint64_t r0 = i * rows / srows * rb, r1 = r0 + rb;
		uint64_t a = r0 > off ? r0 : off, b = r1 < off + len ? r1 : off + len;
		if (a < b)
			memcpy(buf + i * rb + (a - r0), data + (a - off), b - a);
	}
}

/* Analyse a tensor for auto on its sample rows of @p data (the whole tensor's bytes), or on
 * @p sample (its sample rows gathered already) if @p data is NULL: *cfg is the analyser's input
 * that the policy gave (ts_policy_choose, ts_policy_next), and receives its choice. */
static int analyze(const plan *q, const opts *o, int whole, const uint8_t *data,
		   const uint8_t *sample, ts_codec_config *cfg)
{
	const st_tensor *t = q->t;
	uint64_t cols = t->ndim ? t->shape[t->ndim - 1] : 1, rows = cols ? t->nelem / cols : 0;
	uint64_t srows = sample_rows(t, whole);
	ts_codec_config in = *cfg;
	in.recipe = o->recipe;
	if (data && srows == rows)
		return ts_analyze(cfg, NULL, &in, data, t->dtype, rows, cols);
	if (sample)
		return ts_analyze(cfg, NULL, &in, sample, t->dtype, srows, cols);
	uint8_t *buf = malloc(srows * cols * ts_dtype_size(t->dtype));
	if (!buf)
		return TS_ENOMEM;
	sample_gather(buf, t, srows, data, 0, t->end - t->begin);
	int rc = ts_analyze(cfg, NULL, &in, buf, t->dtype, srows, cols);
	free(buf);
	return rc;
}

static int writer_for(ts_writer **w, ts_store *st, ts_group *g, const plan *q,
		      const ts_codec_config *cfg, int replace)
{
	const st_tensor *t = q->t;
	ts_write_opts wo;
	ts_write_opts_init(&wo);
	wo.flags = (replace ? TS_WRITE_REPLACE : 0) | ts_policy_write_flags(t->name);
	wo.group = g;
	wo.amax = q->amax;
	return ts_writer_begin(w, st, t->name, t->dtype, t->ndim, t->shape, cfg, &wo);
}

/* Write a tensor whose bytes are all in memory at @p data: a piece read ahead (appended at
 * once, so that the writer's commits overlap its encoding), or the source's mapping (@p mapped:
 * in CHUNK_BYTES pieces, each dropped from this process behind us). */
static int write_mem(ts_store *st, ts_group *g, const plan *q, const ts_codec_config *cfg,
		     int replace, progress *pr, ts_tensor_info *info, const uint8_t *data, int mapped)
{
	const st_tensor *t = q->t;
	ts_writer *w = NULL;
	int rc = writer_for(&w, st, g, q, cfg, replace);
	if (rc < 0)
		return rc;
	size_t es = ts_dtype_size(t->dtype);
	uint64_t total = t->end - t->begin, chunk = mapped ? CHUNK_BYTES - CHUNK_BYTES % es : total;
	for (uint64_t off = 0; off < total; off += chunk) {
		size_t n = (size_t)(total - off < chunk ? total - off : chunk);
		if (interrupted) {
			ts_writer_abort(w);
			return TS_ECANCELED;
		}
		rc = ts_writer_append(w, data + off, n);
		if (rc < 0) {
			ts_writer_abort(w);
			return rc;
		}
		if (mapped)
			release(data + off, n);
		progress_add(pr, n, t->name);
	}
	if (interrupted) {
		ts_writer_abort(w);
		return TS_ECANCELED;
	}
	return ts_writer_commit(info, w);
}

/* Write a tensor from the reader's next pieces (one pass over it). */
static int write_stream(ts_store *st, ts_group *g, const plan *q, const ts_codec_config *cfg,
			int replace, progress *pr, ts_tensor_info *info, srcread *rd, char *err,
			size_t err_size)
{
	ts_writer *w = NULL;
	sr_piece pc;
	int rc = writer_for(&w, st, g, q, cfg, replace);
	if (rc < 0)
		return rc;
	do {
		if (interrupted) {
			ts_writer_abort(w);
			return TS_ECANCELED;
		}
		if (srcread_next(rd, &pc, err, err_size) < 0) {
			ts_writer_abort(w);
			return TS_EIO;
		}
		rc = ts_writer_append(w, pc.data, pc.bytes);
		if (rc < 0) {
			ts_writer_abort(w);
			return rc;
		}
		progress_add(pr, pc.bytes, q->t->name);
	} while (!pc.last);
	return ts_writer_commit(info, w);
}

/* A ModelOpt NVFP4 group, appended in its encoded form. */
static int write_modelopt(ts_store *st, ts_group *g, const plan *q, int replace, progress *pr,
			  ts_tensor_info *info)
{
	const st_tensor *t = q->t, *s = q->scale;
	uint64_t rows = t->shape[0], ucols = t->shape[1], cols = 2 * ucols;
	uint64_t shape[2] = {rows, cols};
	uint64_t sc = s->shape[1], row_codes = sc * 8; /* code rows padded to whole blocks */
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_NVFP4);
	ts_write_opts wo;
	ts_writer *w = NULL;
	float g2;
	memcpy(&g2, q->scale2->data, 4);
	ts_write_opts_init(&wo);
	wo.flags = TS_WRITE_ENCODED | (replace ? TS_WRITE_REPLACE : 0) | ts_policy_write_flags(t->name);
	wo.tensor_scale = g2; /* exactly as the source stores it (invariant 4) */
	wo.group = g;
	int rc = ts_writer_begin(&w, st, t->name, TS_BF16, 2, shape, &cfg, &wo);
	if (rc < 0)
		return rc;
	uint64_t step = CHUNK_BYTES / row_codes;
	if (step < 1)
		step = 1;
	uint8_t *pad = NULL;
	if (row_codes != ucols) {
		pad = calloc(step, row_codes);
		if (!pad) {
			ts_writer_abort(w);
			return TS_ENOMEM;
		}
	}
	for (uint64_t r = 0; r < rows; r += step) {
		uint64_t k = rows - r < step ? rows - r : step;
		const uint8_t *codes = t->data + r * ucols;
		if (interrupted) {
			rc = TS_ECANCELED;
			break;
		}
		if (pad) {
			for (uint64_t i = 0; i < k; i++)
				memcpy(pad + i * row_codes, codes + i * ucols, ucols);
			codes = pad;
		}
		rc = ts_writer_append_encoded(w, codes, k * row_codes, s->data + r * sc, k * sc, k);
		if (rc < 0)
			break;
		progress_add(pr, k * (ucols + sc), t->name);
	}
	free(pad);
	if (rc < 0 || interrupted) {
		ts_writer_abort(w);
		return rc < 0 ? rc : TS_ECANCELED;
	}
	return ts_writer_commit(info, w);
}

static void note_kept(summary *sm, const char *reason, const char *name)
{
	size_t i = 0;
	while (i < sm->nkept && sm->kept[i].reason != reason)
		i++;
	if (i == sizeof sm->kept / sizeof sm->kept[0])
		return;
	if (i == sm->nkept) {
		sm->nkept++;
		sm->kept[i].reason = reason;
		snprintf(sm->kept[i].first, sizeof sm->kept[i].first, "%s", name);
	}
	sm->kept[i].n++;
}

static void note_result(summary *sm, const plan *q, const ts_tensor_info *info)
{
	sm->tensors++;
	if ((unsigned)info->codec.codec < TS_CODEC_COUNT)
		sm->by_codec[info->codec.codec]++;
	sm->bytes_in += q->kind == P_MODELOPT
				? (q->t->end - q->t->begin) + (q->scale->end - q->scale->begin) + 4
				: q->t->end - q->t->begin;
	sm->bytes_out += info->stored_bytes;
	if (info->codec.codec != TS_CODEC_RAW && info->codec.codec != TS_CODEC_LOSSLESS &&
	    q->kind != P_MODELOPT &&
	    info->error.rel_rms_pct > sm->worst) {
		sm->worst = info->error.rel_rms_pct;
		snprintf(sm->worst_name, sizeof sm->worst_name, "%s", q->t->name);
	}
}

static void print_summary(const summary *sm, const opts *o, const char *store, size_t nfiles,
			  double secs)
{
	char a[32], b[32], r[32];
	if (cli_quiet)
		return;
	printf("import: %zu tensors from %zu file%s into %s in %.1f s (%s/s)\n", sm->tensors,
	       nfiles, nfiles == 1 ? "" : "s", store, secs, progress_size(r, sizeof r, secs > 0 ? (double)sm->bytes_in / secs : 0));
	if (o->codec < 0)
		printf("  policy: auto, fewest bytes with relative RMS error <= %g%%; lossless: %s1-D, "
		       "< %d elements, NaN/Inf, integer/bool%s\n",
		       o->max_error,
		       o->quantize_all ? "" : "embeddings, output projections, MoE routers, ",
		       (int)TS_POLICY_TINY_ELEMENTS, o->nkeep ? ", --keep" : "");
	if (o->codec < 0 && o->max_error == 0)
		printf("  --max-error 0: every floating-point tensor lossless\n");
	else
		printf("  policy: --codec %s%s on floating-point tensors%s; integer/bool raw\n",
		       ts_codec_name((ts_codec)o->codec),
		       o->codec == TS_CODEC_NVFP4
			       ? (o->recipe == TS_RECIPE_BEST ? " (recipe best)" : " (recipe nvidia)")
			       : "",
		       o->nkeep ? " (--keep: lossless)" : "");
	printf("  codecs:");
	for (int c = 0; c < TS_CODEC_COUNT; c++)
		if (sm->by_codec[c])
			printf(" %s %zu", ts_codec_name((ts_codec)c), sm->by_codec[c]);
	if (!sm->tensors)
		printf(" none");
	printf("\n");
	if (sm->lossless_1d + sm->lossless_tiny + sm->lossless_nonfinite + sm->lossless_keep +
	    sm->raw_int)
		printf("  lossless: %zu 1-D, %zu tiny, %zu with NaN/Inf, %zu --keep, %zu integer/bool\n",
		       sm->lossless_1d, sm->lossless_tiny, sm->lossless_nonfinite, sm->lossless_keep,
		       sm->raw_int);
	if (sm->nkept) {
		printf("  kept exact by the default policy (--quantize-all quantizes them):");
		for (size_t i = 0; i < sm->nkept; i++)
			printf("%s %zu %s (%s%s)", i ? "," : "", sm->kept[i].n, sm->kept[i].reason,
			       sm->kept[i].first, sm->kept[i].n > 1 ? ", ..." : "");
		printf("\n");
	}
	if (sm->modelopt)
		printf("  ModelOpt NVFP4 tensors stored as they are: %zu\n", sm->modelopt);
	if (sm->skipped)
		printf("  skipped (already in the store): %zu\n", sm->skipped);
	if (sm->rewritten)
		printf("  re-analysed whole after the sample missed the bound: %zu\n", sm->rewritten);
	printf("  bytes: %s in, %s out, ratio %.2fx\n", progress_size(a, sizeof a, (double)sm->bytes_in),
	       progress_size(b, sizeof b, (double)sm->bytes_out),
	       sm->bytes_out ? (double)sm->bytes_in / (double)sm->bytes_out : 0.0);
	if (sm->worst > 0)
		printf("  worst relative RMS error: %.3f%% (%s)\n", sm->worst, sm->worst_name);
	else
		printf("  worst relative RMS error: 0 (lossless)\n");
}

/* The files a directory import attached, and those it did not, with the reason. */
static void print_files(const modeldir *md, size_t written, uint64_t bytes)
{
	char a[32];
	printf("  files: %zu attached (%s)%s%s%s\n", written,
	       progress_size(a, sizeof a, (double)bytes), md->index ? "; checkpoint index " : "",
	       md->index ? md->index : "", written < md->nfiles ? "; others already in the store" : "");
	for (size_t i = 0; i < md->nskipped; i++)
		printf("  not attached: %s (%s%s%s)\n", md->skipped[i].rel, md->skipped[i].why,
		       md->skipped[i].size ? ", " : "",
		       md->skipped[i].size ? progress_size(a, sizeof a, (double)md->skipped[i].size)
					   : "");
}

/* Stage the sources' __metadata__ as the store's metadata, published with the tensors: the
 * entries of every file in order, a key's first value kept (shards repeat "format"). Sources
 * without __metadata__ leave the store's metadata as it is. 0 or a negative TS_E* code. */
static int stage_metadata(ts_group *g, const st_checkpoint *ck)
{
	size_t n = 0, len = 0;
	st_meta *all;
	char *text;
	int rc;

	for (size_t f = 0; f < ck->file_count; f++)
		n += ck->files[f].meta_count;
	if (n == 0)
		return 0;
	all = calloc(n, sizeof *all);
	if (!all)
		return TS_ENOMEM;
	n = 0;
	for (size_t f = 0; f < ck->file_count; f++)
		for (size_t i = 0; i < ck->files[f].meta_count; i++) {
			const st_meta *m = &ck->files[f].meta[i];
			size_t k = 0;
			while (k < n && strcmp(all[k].key, m->key))
				k++;
			if (k == n)
				all[n++] = *m;
		}
	text = st_meta_json(all, n, &len);
	free(all); /* borrowed strings */
	if (!text)
		return TS_ENOMEM;
	rc = ts_group_metadata_set(g, text, len);
	free(text);
	return rc;
}

static int count_one(void *ud, const char *name, const ts_tensor_info *info)
{
	(void)name;
	(void)info;
	++*(size_t *)ud;
	return 0;
}

static int count_file(void *ud, const char *name, uint64_t size)
{
	(void)name;
	(void)size;
	++*(size_t *)ud;
	return 0;
}

static void remove_store(const char *path)
{
	char lock[4200];
	unlink(path);
	snprintf(lock, sizeof lock, "%s-lock", path);
	unlink(lock);
}

/* -- Parse ------------------------------------------------------------------------------- */

/* Options into @p o, operands into @p store, @p srcs, @p nsrc. -1 to go on, else the exit status
 * (usage errors, --help). */
static int parse_args(opts *o, const char **store, char ***srcs, size_t *nsrc, int argc,
		      char **argv)
{
	enum { O_CODEC = 256, O_RECIPE, O_MAXERR, O_KEEP, O_REPLACE, O_SKIP, O_QALL, O_NOFILES,
	       O_MAXFILE, O_BUFFER, O_SPOOL };
	static const struct option lo[] = {
		{"codec", required_argument, 0, O_CODEC},     {"recipe", required_argument, 0, O_RECIPE},
		{"max-error", required_argument, 0, O_MAXERR}, {"keep", required_argument, 0, O_KEEP},
		{"jobs", required_argument, 0, 'j'},	      {"replace", no_argument, 0, O_REPLACE},
		{"skip-existing", no_argument, 0, O_SKIP},    {"quantize-all", no_argument, 0, O_QALL},
		{"no-files", no_argument, 0, O_NOFILES},
		{"max-file-size", required_argument, 0, O_MAXFILE},
		{"read-buffer", required_argument, 0, O_BUFFER},
		{"spool", required_argument, 0, O_SPOOL},     {0, 0, 0, 0}};
	cli_opts co;
	int c;
	cli_opts_init(&co, CMD, usage, CLI_OPTS_WAIT, "j:", lo, argc, argv);
	while ((c = cli_opts_next(&co)) > 0) {
		char *e;
		switch (c) {
		case O_CODEC:
			if (!strcmp(optarg, "auto")) {
				o->codec = -1;
			} else {
				ts_codec cd;
				if (ts_codec_parse(&cd, optarg) < 0)
					return cli_usage_error(CMD, "--codec: unknown codec '%s'", optarg);
				o->codec = (int)cd;
			}
			break;
		case O_RECIPE:
			if (!strcmp(optarg, "nvidia"))
				o->recipe = TS_RECIPE_NVIDIA;
			else if (!strcmp(optarg, "best"))
				o->recipe = TS_RECIPE_BEST;
			else
				return cli_usage_error(CMD, "--recipe must be nvidia or best");
			break;
		case O_MAXERR:
			o->max_error = strtod(optarg, &e);
			if (*e || !(o->max_error >= 0) || o->max_error > 100)
				return cli_usage_error(CMD, "--max-error: '%s' is not a percentage in [0, 100]",
						       optarg);
			break;
		case O_KEEP:
			o->keep[o->nkeep++] = optarg;
			break;
		case 'j':
			o->jobs = (int)strtol(optarg, &e, 10);
			if (*e || o->jobs < 1 || o->jobs > 1024)
				return cli_usage_error(CMD, "--jobs: '%s' is not a number of threads", optarg);
			break;
		case O_REPLACE:
			o->replace = 1;
			break;
		case O_SKIP:
			o->skip_existing = 1;
			break;
		case O_QALL:
			o->quantize_all = 1;
			break;
		case O_NOFILES:
			o->no_files = 1;
			break;
		case O_MAXFILE:
			if (cli_parse_size(optarg, &o->max_file) < 0)
				return cli_usage_error(CMD, "--max-file-size: '%s' is not a size", optarg);
			break;
		case O_BUFFER:
			if (cli_parse_size(optarg, &o->buffer) < 0)
				return cli_usage_error(CMD, "--read-buffer: '%s' is not a size", optarg);
			break;
		case O_SPOOL:
			if (!strcmp(optarg, "auto"))
				o->spool = SPOOL_AUTO;
			else if (!strcmp(optarg, "always"))
				o->spool = SPOOL_ALWAYS;
			else if (!strcmp(optarg, "never"))
				o->spool = SPOOL_NEVER;
			else
				return cli_usage_error(CMD, "--spool must be auto, always or never");
			break;
		}
	}
	if (c < 0)
		return co.status;
	if (argc - co.operand < 2)
		return cli_usage_error(CMD, "need STORE and at least one SRC");
	if (o->replace && o->skip_existing)
		return cli_usage_error(CMD, "--replace and --skip-existing exclude each other");
	*store = argv[co.operand];
	*srcs = argv + co.operand + 1;
	*nsrc = (size_t)(argc - co.operand - 1);
	return -1;
}

/* -- Idle cores ---------------------------------------------------------------------------- */

/* The machine's CPU time (/proc/stat, all cores) and this process's, at one moment. */
typedef struct cpu_sample {
	double wall;                    /* progress_now() */
	double own;                     /* this process's CPU seconds, all its threads */
	unsigned long long busy, total; /* clock ticks of all cores: busy, and busy + idle */
	int ok;                         /* /proc/stat was read */
} cpu_sample;

static void cpu_sample_take(cpu_sample *s)
{
	unsigned long long v[8];
	struct timespec ts;
	FILE *f = fopen("/proc/stat", "re");

	memset(s, 0, sizeof *s);
	s->wall = progress_now();
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0)
		s->own = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
	if (!f)
		return;
	/* user nice system idle iowait irq softirq steal: steal is a core the hypervisor gave
	 * to someone else, as busy for us as any */
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		s->busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
		s->total = s->busy + v[3] + v[4];
		s->ok = 1;
	}
	fclose(f);
}

/* The cores that the rest of the machine left to this process between @p a and @p b: the
 * online cores less what all the others used (the cores' busy time less this process's own),
 * as an average over the interval; -1 where it cannot be told (no /proc/stat, no tick yet). */
static double cpu_spare(const cpu_sample *a, const cpu_sample *b)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	double wall = b->wall - a->wall, busy, own, others;

	if (!a->ok || !b->ok || b->total <= a->total || b->busy < a->busy || !(wall > 0) || n < 1)
		return -1;
	busy = (double)(b->busy - a->busy) / (double)(b->total - a->total) * (double)n;
	own = (b->own - a->own) / wall;
	others = busy > own ? busy - own : 0;
	return (double)n - others;
}

/* -- Plan: validate everything before touching the store ---------------------------------- */

/* One import: what parse and plan found, what run writes. */
typedef struct job {
	opts o;
	const char *store_path;
	char **srcs;
	size_t nsrc;
	int is_dir;
	modeldir md;
	st_checkpoint ck;
	int ck_open;
	plan *pl;
	size_t npl;
	int store_created; /* no store at store_path before the command */
	int spooling;      /* another process held the store: writing into a spool store */
	char spool[4160];  /* its path, while it exists (else empty) */
	ts_store *spool_st; /* the spool store, while open */
	size_t nspooled;   /* tensors written into the spool store (moved in at the switch) */
	double busy_since; /* when the store was found busy (the --wait bound counts from it) */
	double last_try;   /* spooling: when the store was last tried */
	cpu_sample probe;  /* spooling (--spool auto): the cores' use since this sample */
	int pays;          /* ... and whether spooling paid at the last measure (spool_pays()) */
	summary sm;
	double t0;
	char err[2048];
} job;

/* Sources parsed, the plan built, names checked against the store, the codec checked. 0, or the
 * exit status (reported). */
static int import_plan(job *j)
{
	opts *o = &j->o;
	struct stat sb;

	for (size_t i = 0; i < j->nsrc; i++)
		if (modeldir_is_dir(j->srcs[i])) {
			if (j->nsrc > 1)
				return cli_usage_error(CMD, "a model directory (%s) must be the only SRC",
						       j->srcs[i]);
			j->is_dir = 1;
		}
	if (j->is_dir) {
		if (modeldir_scan(&j->md, j->srcs[0], o->max_file, o->no_files, j->err,
				  sizeof j->err) < 0) {
			cli_error(CMD, NULL, "%s; nothing imported", j->err);
			return CLI_FAIL;
		}
		j->srcs = j->md.sources;
		j->nsrc = j->md.nsources;
	}
	if (st_checkpoint_open(&j->ck, j->srcs, j->nsrc, j->err, sizeof j->err) < 0) {
		cli_error(CMD, NULL, "%s%s", j->err, j->is_dir ? "; nothing imported" : "");
		return CLI_FAIL;
	}
	j->ck_open = 1;
	if (j->is_dir) {
		char **shards = malloc((j->ck.file_count + 1) * sizeof *shards);
		if (!shards) {
			cli_error(CMD, NULL, "out of memory");
			return CLI_FAIL;
		}
		for (size_t i = 0; i < j->ck.file_count; i++)
			shards[i] = j->ck.files[i].path;
		modeldir_exclude(&j->md, shards, j->ck.file_count); /* the index's shards */
		free(shards);
		/* and the store itself, should it live in the directory */
		char lock[4200], *self[2] = {(char *)j->store_path, lock};
		snprintf(lock, sizeof lock, "%s-lock", j->store_path);
		modeldir_exclude(&j->md, self, 2);
	}
	if (build_plan(&j->ck, o, &j->pl, &j->npl) < 0)
		return CLI_FAIL;
	/* No store, or a blank file (the library finds no store in it: what a killed creation
	 * or a store removed while a writer opened it leaves): the import creates it. */
	ts_store *ro = NULL;
	j->store_created = stat(j->store_path, &sb) != 0;
	if (!j->store_created) {
		ts_open_opts ro_opts;
		ts_open_opts_init(&ro_opts);
		ro_opts.threads = 1;
		int rc = ts_store_open(&ro, j->store_path, &ro_opts);
		if (rc == TS_ENOTFOUND)
			j->store_created = 1;
		else if (rc < 0) {
			cli_error_ts(CMD, rc, "cannot open store %s", j->store_path);
			return CLI_USAGE;
		}
	}
	if (!j->store_created) {
		/* Check names against the existing store, read-only. */
		int status = CLI_FAIL;
		for (size_t i = 0; i < j->npl; i++) {
			ts_tensor_info ti;
			int rc = ts_tensor_info_get(&ti, ro, j->pl[i].t->name);
			if (rc == 0) {
				j->pl[i].exists = 1;
				if (!o->replace && !o->skip_existing) {
					cli_error(CMD, j->store_path,
						  "tensor '%s' already exists (use --replace or --skip-existing)",
						  j->pl[i].t->name);
					goto close_ro;
				}
			} else if (rc != TS_ENOTFOUND) {
				cli_error_ts(CMD, rc, "cannot look up tensor '%s'", j->pl[i].t->name);
				goto close_ro;
			}
		}
		if (modeldir_lookup(&j->md, ro, CMD) < 0)
			goto close_ro;
		for (size_t i = 0; i < j->md.nfiles; i++)
			if (j->md.files[i].exists && !o->replace && !o->skip_existing) {
				cli_error(CMD, j->store_path,
					  "file '%s' is attached already (use --replace or --skip-existing)",
					  j->md.files[i].rel);
				goto close_ro;
			}
		status = 0;
close_ro:
		ts_store_close(ro);
		if (status)
			return status;
	}
	if (o->codec >= 0) {
		ts_codec_config fc = ts_codec_config_default((ts_codec)o->codec);
		fc.recipe = o->recipe;
		if (o->codec != TS_CODEC_RAW && ts_codec_config_check(&fc) < 0) {
			cli_error_ts(CMD, TS_EINVAL, "--codec %s", ts_codec_name((ts_codec)o->codec));
			return CLI_FAIL;
		}
	}
	return 0;
}

/* -- Run: write every tensor into one group, publish it ------------------------------------ */

/* The library's policy options for tensor @p q under the command's options @p o. */
static ts_policy_opts policy_opts(const plan *q, const opts *o)
{
	ts_policy_opts po;
	ts_policy_opts_init(&po);
	po.codec = o->codec;
	po.max_error_pct = o->max_error;
	po.flags = (o->quantize_all ? TS_POLICY_QUANTIZE_ALL : 0) | (q->keep ? TS_POLICY_KEEP : 0);
	po.nonfinite = q->nonfinite;
	return po;
}

/* 1 if the policy may give tensor @p q a lossy codec: it then needs its amax and its count of
 * non-finite values before it is encoded. */
static int needs_scan(const plan *q, const opts *o)
{
	const st_tensor *t = q->t;
	ts_policy_opts po = policy_opts(q, o);
	ts_policy_rule rule;
	ts_codec_config cfg;
	if (q->kind != P_FLOAT)
		return 0;
	po.nonfinite = 0; /* what the scan finds */
	if (ts_policy_choose(&cfg, &rule, t->name, t->dtype, t->ndim, t->shape, &po) < 0)
		return 1; /* the write reports it */
	return rule == TS_POLICY_ANALYSE || (rule == TS_POLICY_CODEC && cfg.codec != TS_CODEC_RAW &&
					     cfg.codec != TS_CODEC_LOSSLESS);
}

/* The byte ranges the reader reads ahead, in the order the tensors are written (the plan's): a
 * float or integer tensor once, or twice (scan, then write) when it needs a scan and does not
 * fit one piece; ModelOpt groups come from the mapping. *out is malloc'd. */
static int plan_reads(job *j, sr_range **out, size_t *n)
{
	sr_range *r = malloc((2 * j->npl + 1) * sizeof *r);
	size_t k = 0;
	if (!r)
		return -1;
	for (size_t i = 0; i < j->npl; i++) {
		plan *q = &j->pl[i];
		const st_file *f = &j->ck.files[q->t->file_index];
		uint64_t bytes = q->t->end - q->t->begin;
		q->passes = 0;
		if ((q->exists && j->o.skip_existing) || q->kind == P_MODELOPT)
			continue;
		r[k].path = f->path;
		r[k].fd = f->fd;
		r[k].offset = f->data_start + q->t->begin;
		r[k].bytes = bytes;
		r[k].scan = needs_scan(q, &j->o); /* the reading thread scans */
		r[k].dtype = q->t->dtype;
		q->whole = bytes <= srcread_range_piece(j->o.buffer, &r[k]);
		q->passes = !q->whole && r[k].scan ? 2 : 1;
		k++;
		if (q->passes == 2) { /* scanned first, then read again to be written */
			r[k] = r[k - 1];
			r[k].scan = 0;
			k++;
		}
	}
	*out = r;
	*n = k;
	return 0;
}

/* The codec of float or integer tensor @p q by the library's policy (ts_policy_choose; see
 * usage()), running the analyser where it asks; counts the decision in @p sm. @p data: the
 * tensor's bytes, @p sample: its sample rows (auto), either may be NULL. *rule: the rule that
 * decided. 0, TS_ENONFINITE (a lossy --codec and NaN or Inf), or another negative code. */
static int choose_codec(ts_codec_config *cfg, ts_policy_rule *rule, const plan *q, const opts *o,
			summary *sm, const uint8_t *data, const uint8_t *sample)
{
	const st_tensor *t = q->t;
	ts_policy_opts po = policy_opts(q, o);
	ts_codec_config analysed;
	int rc = ts_policy_choose(cfg, rule, t->name, t->dtype, t->ndim, t->shape, &po);
	if (rc == 0 && *rule == TS_POLICY_ANALYSE) {
		analysed = *cfg;
		rc = analyze(q, o, 0, data ? data : sample ? NULL : t->data, sample, &analysed);
		po.analysed = &analysed;
		if (rc == 0)
			rc = ts_policy_choose(cfg, rule, t->name, t->dtype, t->ndim, t->shape, &po);
	}
	if (rc < 0)
		return rc;
	switch (*rule) {
	case TS_POLICY_RAW_DTYPE:
		sm->raw_int++;
		break;
	case TS_POLICY_KEPT:
		sm->lossless_keep++;
		break;
	case TS_POLICY_CODEC:
		cfg->recipe = o->recipe;
		break;
	case TS_POLICY_EXACT_BOUND:
		sm->lossless_bound++;
		break;
	case TS_POLICY_EXACT_NAME:
		note_kept(sm, ts_policy_keep_reason(t->name), t->name);
		break;
	case TS_POLICY_EXACT_1D:
		sm->lossless_1d++;
		break;
	case TS_POLICY_EXACT_TINY:
		sm->lossless_tiny++;
		break;
	case TS_POLICY_EXACT_NONFINITE:
		sm->lossless_nonfinite++;
		break;
	default:
		break;
	}
	return 0;
}

/* Tensor @p q's amax and non-finite values, from the scan the reading thread made of its piece
 * @p pc (the whole tensor), or of the reader's next pieces (its first pass), gathering auto's
 * sample rows into *sample on the way. 0, TS_ENOMEM or TS_EIO (j->err says why). */
static int scan_tensor(job *j, plan *q, const sr_piece *pc, srcread *rd, uint8_t **sample)
{
	const st_tensor *t = q->t;
	uint32_t mx = 0;
	uint64_t srows = sample_rows(t, 0), cols = t->ndim ? t->shape[t->ndim - 1] : 1;
	sr_piece p;
	if (pc) {
		mx = pc->mx;
		q->nonfinite = pc->bad;
	} else {
		if (j->o.codec < 0 && cols && srows != t->nelem / cols &&
		    !(*sample = malloc(srows * cols * ts_dtype_size(t->dtype))))
			return TS_ENOMEM;
		do {
			if (srcread_next(rd, &p, j->err, sizeof j->err) < 0)
				return TS_EIO;
			mx = p.mx > mx ? p.mx : mx;
			q->nonfinite += p.bad;
			if (*sample)
				sample_gather(*sample, t, srows, p.data, p.offset, p.bytes);
		} while (!p.last);
	}
	q->amax = scan_amax(t->dtype, mx);
	return 0;
}

/* Import float or integer tensor @p q: its bytes from the reader (one piece, pieces, or a scan
 * pass then a write pass), the codec by the policy. 0, TS_ECANCELED, or a negative code;
 * *reported set if the message is printed already. */
static int import_tensor(job *j, ts_store *st, ts_group *g, srcread *rd, plan *q, progress *pr,
			 ts_tensor_info *info, int *reported)
{
	const st_tensor *t = q->t;
	const opts *o = &j->o;
	const uint8_t *data = NULL;
	uint8_t *sample = NULL;
	ts_codec_config cfg, next;
	ts_policy_rule rule;
	ts_policy_opts po;
	int rc = 0, replace = q->exists && o->replace;
	sr_piece pc;

	q->amax = 0;
	q->nonfinite = 0;
	if (q->whole) {
		if (srcread_next(rd, &pc, j->err, sizeof j->err) < 0)
			return TS_EIO;
		data = pc.data;
	}
	if (needs_scan(q, o) && (data || q->passes == 2)) {
		rc = scan_tensor(j, q, data ? &pc : NULL, rd, &sample);
		if (rc < 0)
			goto out;
	}
	rc = choose_codec(&cfg, &rule, q, o, &j->sm, data, sample);
	if (rc == TS_ENONFINITE) {
		progress_clear(pr);
		cli_error(CMD, t->name,
			  "--codec %s cannot encode a tensor holding %llu NaN or Inf values "
			  "(use --keep or --codec auto)",
			  ts_codec_name((ts_codec)o->codec), (unsigned long long)q->nonfinite);
		*reported = 1;
		goto out;
	}
	if (rc < 0)
		goto out;
	rc = data ? write_mem(st, g, q, &cfg, replace, pr, info, data, 0)
		  : write_stream(st, g, q, &cfg, replace, pr, info, rd, j->err, sizeof j->err);
	po = policy_opts(q, o);
	switch (rc == 0 ? ts_policy_next(&next, rule, info, &po) : TS_POLICY_DONE) {
	case TS_POLICY_WRITE_AGAIN:
		/* kept exact, and lossless did not pay: raw, which the new version supersedes with */
		rc = write_mem(st, g, q, &next, replace, pr, info, data ? data : t->data, !data);
		break;
	case TS_POLICY_ANALYSE_WHOLE:
		/* The sample misled the analyser: measure the whole tensor and write it again; the
		 * new version supersedes the one staged in the group. */
		rc = analyze(q, o, 1, data ? data : t->data, NULL, &next);
		if (rc == 0)
			rc = write_mem(st, g, q, &next, replace, pr, info, data ? data : t->data, !data);
		j->sm.rewritten++;
		break;
	default:
		break;
	}
out:
	free(sample);
	return rc;
}

/* -- Spooling: encoding while another process writes the store --------------------------- */

/*
 * When another process holds the store and the command may wait, the import does not simply
 * wait: its reader reads the sources ahead meanwhile (it starts before the store is opened), and
 * the import writes into a spool store of its own beside the destination (STORE.spool-PID,
 * removed at the end whatever happens), encoding and writing every page as it would into the
 * destination. Between tensors it tries the store again (every SPOOL_TRY at most); when the
 * store is free, spool_switch() moves the spooled tensors' stored pages in (nothing encoded
 * again) and the import writes the rest directly, so that only what it spooled costs a copy.
 * That is --spool always, the default: on the 2-core VM it gave the shortest concurrent
 * imports measured, quiet or with other work running (docs/CLI.md, figures). With --spool auto
 * (for a machine shared with other work) it measures, every SPOOL_PROBE, the cores that the
 * other processes leave idle, and spools only while that is at least SPOOL_SPARE of them;
 * otherwise it waits idle (in the library's wait for the store, a SPOOL_PROBE at a time), from
 * the start until it is first seen to pay, and makes its spool store only then: where the others
 * keep the cores busy, the spool's extra work (pages written, read back, checked and written
 * again) takes cores from them. --spool never waits idle.
 */
#define SPOOL_PROBE 0.1  /* seconds over which the cores' use is measured */
#define SPOOL_TRY 0.01   /* spooling: the store is tried at most this often */
/* --spool auto spools while the other processes leave this share of the cores idle (at least
 * one): a spooled tensor costs more CPU than one written directly (its pages written, read
 * back, checked and written again: 0.69 against 0.57 CPU s for four concurrent imports of the
 * benchmark's shards, docs/CLI.md) */
#define SPOOL_SPARE 0.75

enum { SWITCH_BUSY = 1 }; /* spool_switch(): the store is still held (not waiting) */
enum { SWITCH_WAIT = -1 }; /* spool_switch(): wait for the store, the rest of --wait */

/* What is left of --wait, counted from when the store was found busy; -1: no bound. */
static int64_t wait_left(const job *j)
{
	int64_t ms = cli_wait_ms;
	if (ms > 0) {
		ms -= (int64_t)((progress_now() - j->busy_since) * 1000);
		if (ms <= 0)
			ms = 1;
	}
	return ms;
}

/* Whether spooling pays (--spool auto): the other processes left at least SPOOL_SPARE of the
 * cores (at least one) idle since @p probe, measured once SPOOL_PROBE has passed (then @p probe
 * starts the next interval). Before, and where it cannot be told: 1 (go on as before). */
static int spool_pays(cpu_sample *probe, int *last)
{
	cpu_sample now;
	double spare, need = SPOOL_SPARE * (double)sysconf(_SC_NPROCESSORS_ONLN);

	if (progress_now() - probe->wall < SPOOL_PROBE)
		return *last;
	cpu_sample_take(&now);
	spare = cpu_spare(probe, &now);
	*probe = now;
	if (spare >= 0)
		*last = spare >= (need > 1 ? need : 1);
	return *last;
}

/* The milliseconds of the next idle wait for the store (a SPOOL_PROBE, less where --wait ends
 * sooner); 0 once --wait is used up. */
static int64_t probe_wait_ms(const job *j)
{
	int64_t ms = (int64_t)(SPOOL_PROBE * 1000);

	if (cli_wait_ms > 0) {
		int64_t left = cli_wait_ms - (int64_t)((progress_now() - j->busy_since) * 1000);
		if (left <= 0)
			return 0;
		if (ms > left)
			ms = left;
	}
	return ms;
}

/* Begin spooling: the spool store STORE.spool-PID, made afresh. 0 (*st the spool store), or -1
 * where none is to be had (a directory we may not write, a full disk: the caller waits idle). */
static int spool_open(job *j, ts_store **st)
{
	ts_open_opts so;

	snprintf(j->spool, sizeof j->spool, "%s.spool-%ld", j->store_path, (long)getpid());
	remove_store(j->spool); /* a spool of a killed process that had our pid */
	/* a scratch store: its commits need not reach the disk (and mostly never do) */
	ts_open_opts_init(&so);
	so.flags = TS_OPEN_WRITE | TS_OPEN_CREATE | TS_OPEN_NOSYNC;
	so.threads = j->o.jobs;
	if (ts_store_open(st, j->spool, &so) == 0) {
		j->spooling = 1;
		j->spool_st = *st;
		j->last_try = progress_now();
		return 0;
	}
	remove_store(j->spool);
	j->spool[0] = 0;
	return -1;
}

/*
 * Open the store for writing. When another process holds it and the command may wait: the
 * spool store (--spool, above), or an idle wait. 0 (*st the destination or the spool store,
 * j->spooling saying which) or the library's error (reported).
 */
static int open_or_spool(job *j, ts_store **st)
{
	const unsigned flags = TS_OPEN_WRITE | TS_OPEN_CREATE;
	int rc = cli_try_open_store(CMD, st, j->store_path, flags, j->o.jobs, 0);

	if (rc != TS_EBUSY)
		return rc;
	j->store_created = 0; /* the store exists: its holder has it open */
	if (cli_wait_ms == 0) {
		cli_error_ts(CMD, rc, "cannot open store %s", j->store_path);
		return rc;
	}
	cli_say_waiting(CMD, j->store_path);
	j->busy_since = progress_now();
	if (j->o.spool == SPOOL_NEVER)
		goto idle;
	if (j->o.spool == SPOOL_AUTO) {
		/* the cores' use is measured from here on; the import waits idle (its reader
		 * reading ahead) until the store is free or spooling is seen to pay, which at the
		 * price of a spooled tensor needs most cores idle; the spool store is made only
		 * then (made at once and left unused, it made four concurrent imports 1.19x one
		 * import of their shards, against 1.15x waiting idle without it) */
		cpu_sample_take(&j->probe);
		j->pays = 0;
		for (;;) {
			int64_t try_ms = probe_wait_ms(j);
			if (try_ms == 0)
				goto idle; /* reports the time-out */
			rc = cli_try_open_store(CMD, st, j->store_path, flags, j->o.jobs, try_ms);
			if (rc != TS_EBUSY)
				return rc;
			if (spool_pays(&j->probe, &j->pays))
				break;
		}
	}
	if (spool_open(j, st) == 0)
		return 0;
idle:
	return cli_open_store_wait(CMD, st, j->store_path, flags, j->o.jobs, wait_left(j));
}

/*
 * Stop spooling: open the destination (@p try_ms SWITCH_WAIT: waiting for it, the rest of
 * --wait; else if it is free now or within @p try_ms milliseconds: SWITCH_BUSY if not), begin its write group with the sources' metadata and
 * copy into it the tensors written to the spool store so far (plan entries before @p upto),
 * their pages as they are; then *st and *grp are the destination's, the spool is removed and
 * the import goes on there. Everything is still published at once, or nothing (invariant 1).
 * CLI_OK, SWITCH_BUSY, or the exit status (reported).
 */
static int spool_switch(job *j, ts_store **st, ts_group **grp, size_t upto, int64_t try_ms,
			progress *pr)
{
	const opts *o = &j->o;
	ts_store *dst = NULL, *spool = j->spool_st;
	ts_group *g = NULL;
	uint64_t published = 0;
	const char **names = NULL;
	ts_write_opts wo;
	size_t n = 0;
	int rc, status = CLI_FAIL;

	const int wait = try_ms == SWITCH_WAIT;

	if (!wait) {
		rc = cli_try_open_store(CMD, &dst, j->store_path, TS_OPEN_WRITE | TS_OPEN_CREATE,
					o->jobs, try_ms);
		if (rc == TS_EBUSY)
			return SWITCH_BUSY;
		if (rc < 0)
			return CLI_FAIL;
	}
	progress_clear(pr);
	/* the spool's tensors, published in the spool store to be read from it */
	rc = ts_group_commit(&published, *grp);
	*grp = NULL;
	if (rc < 0) {
		cli_error_ts(CMD, rc, "cannot publish the imported tensors in %s", j->spool);
		goto out;
	}
	if (wait && cli_open_store_wait(CMD, &dst, j->store_path, TS_OPEN_WRITE | TS_OPEN_CREATE,
					o->jobs, wait_left(j)) < 0)
		goto out;
	rc = ts_group_begin(&g, dst);
	if (rc == 0)
		rc = stage_metadata(g, &j->ck);
	if (rc < 0) {
		cli_error_ts(CMD, rc, "cannot begin writing to %s", j->store_path);
		goto out;
	}
	names = malloc((upto ? upto : 1) * sizeof(*names));
	if (!names) {
		cli_error(CMD, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < upto; i++)
		if (!(j->pl[i].exists && o->skip_existing))
			names[n++] = j->pl[i].t->name;
	ts_write_opts_init(&wo);
	wo.flags = o->replace ? TS_WRITE_REPLACE : 0;
	wo.group = g;
	/* every spooled tensor in few transactions: a commit per tensor would cost a flush each */
	rc = ts_tensor_copy_many(dst, spool, names, n, &wo);
	if (rc == TS_EEXIST && !o->replace) {
		cli_error_ts(CMD, rc, "cannot move the spooled tensors into %s (another writer added "
			     "one meanwhile; use --replace)", j->store_path);
		goto out;
	}
	if (rc < 0) {
		cli_error_ts(CMD, rc, "cannot move the spooled tensors into %s", j->store_path);
		goto out;
	}
	j->nspooled = n;
	if (interrupted) {
		status = CLI_INTERRUPTED;
		goto out;
	}
	if (!cli_quiet && j->nspooled)
		fprintf(stderr, "tstore: %s: %s is free: %zu spooled tensor%s moved in%s\n", CMD,
			j->store_path, j->nspooled, j->nspooled == 1 ? "" : "s",
			upto < j->npl ? ", the rest written directly" : "");
	ts_store_close(spool);
	j->spool_st = NULL;
	remove_store(j->spool);
	j->spool[0] = 0;
	j->spooling = 0;
	*st = dst;
	*grp = g;
	free(names);
	return CLI_OK;
out:
	free(names);
	ts_group_abort(g);
	ts_store_close(dst);
	return status;
}

/* Spooling, between tensors: switch to the store when it is free; with --spool auto, stop
 * spooling and wait idle while it does not pay (spool_pays()). CLI_OK to
 * go on (spooling or not), else the exit status (reported). */
static int spool_poll(job *j, ts_store **st, ts_group **grp, size_t upto, progress *pr)
{
	double now = progress_now();
	int rc;

	if (now - j->last_try >= SPOOL_TRY) {
		j->last_try = now;
		rc = spool_switch(j, st, grp, upto, 0, pr);
		if (rc != SWITCH_BUSY)
			return rc;
	}
	if (j->o.spool != SPOOL_AUTO || spool_pays(&j->probe, &j->pays))
		return CLI_OK;
	/* the others keep the cores busy: wait idle for the store (the library's wait, woken
	 * when its holder closes it), a probe's time at a time, until it is free or a core is to
	 * spare again */
	for (;;) {
		int64_t try_ms = probe_wait_ms(j);
		if (try_ms == 0)
			return spool_switch(j, st, grp, upto, SWITCH_WAIT,
					    pr); /* reports the time-out */
		if (interrupted)
			return CLI_INTERRUPTED;
		rc = spool_switch(j, st, grp, upto, try_ms, pr);
		if (rc != SWITCH_BUSY)
			return rc;
		if (spool_pays(&j->probe, &j->pays))
			return CLI_OK;
	}
}

static int import_run(job *j)
{
	opts *o = &j->o;
	summary *sm = &j->sm;
	ts_store *st = NULL;
	ts_group *grp = NULL;
	srcread *rd = NULL;
	sr_range *ranges = NULL;
	size_t nranges = 0, nfiles_written = 0;
	uint64_t file_bytes_written = 0, total = 0, published = 0;
	struct sigaction sa, old_sa;
	int status = CLI_FAIL, grc, orc;
	progress pr;

	/* the reader starts first: it reads ahead while the store is waited for */
	if (plan_reads(j, &ranges, &nranges) < 0 ||
	    srcread_start(&rd, ranges, nranges, o->buffer, j->err, sizeof j->err) < 0) {
		cli_error(CMD, NULL, "%s", rd ? j->err : "out of memory");
		free(ranges);
		return CLI_FAIL;
	}
	orc = open_or_spool(j, &st);
	if (orc < 0) {
		/* Nothing to remove: a creation that fails leaves no store (engine/create.c), and
		 * whatever is at the path now is not ours (never unlinked without holding it). */
		srcread_stop(rd);
		free(ranges);
		return cli_open_status(orc);
	}
	if (j->store_created && !j->spooling) {
		/* Another import may have created the store first, and written to it while we
		 * waited: then it is not ours to remove on failure. */
		size_t n = 0;
		if (ts_tensor_foreach(st, count_one, &n) != 0 ||
		    ts_attachment_foreach(st, count_file, &n) != 0 || n > 0)
			j->store_created = 0;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_sa);
	grc = ts_group_begin(&grp, st);
	if (grc < 0) {
		cli_error_ts(CMD, grc, "cannot begin writing to %s", j->store_path);
		goto rollback;
	}
	grc = j->spooling ? 0 : stage_metadata(grp, &j->ck); /* spooled: at the switch */
	if (grc < 0) {
		cli_error_ts(CMD, grc, "cannot store the sources' __metadata__ in %s", j->store_path);
		goto rollback;
	}

	for (size_t i = 0; i < j->npl; i++)
		if (!(j->pl[i].exists && o->skip_existing))
			total += j->pl[i].kind == P_MODELOPT
					 ? j->pl[i].t->end - j->pl[i].t->begin + j->pl[i].scale->end -
						   j->pl[i].scale->begin
					 : j->pl[i].t->end - j->pl[i].t->begin;
	total += j->md.file_bytes;
	progress_begin(&pr, "import", total, 1, cli_quiet);
	for (size_t i = 0; i < j->npl; i++) {
		plan *q = &j->pl[i];
		ts_tensor_info info;
		int rc, reported = 0;
		if (q->exists && o->skip_existing) {
			sm->skipped++;
			continue;
		}
		if (interrupted)
			break;
		if (j->spooling) {
			status = spool_poll(j, &st, &grp, i, &pr);
			if (status == CLI_INTERRUPTED)
				goto discard;
			if (status != CLI_OK)
				goto rollback;
		}
		j->err[0] = 0;
		if (q->kind == P_MODELOPT) {
			rc = write_modelopt(st, grp, q, q->exists && o->replace, &pr, &info);
			if (rc == 0)
				sm->modelopt++;
		} else {
			rc = import_tensor(j, st, grp, rd, q, &pr, &info, &reported);
		}
		if (rc == TS_ECANCELED || interrupted)
			break;
		if (rc < 0) {
			progress_clear(&pr);
			if (j->err[0])
				cli_error(CMD, NULL, "%s", j->err);
			else if (!reported)
				cli_error_ts(CMD, rc, "cannot import tensor '%s'", q->t->name);
			goto rollback;
		}
		note_result(sm, q, &info);
	}
	if (!interrupted && j->spooling) {
		/* everything spooled: wait for the store, move it in */
		status = spool_switch(j, &st, &grp, j->npl, SWITCH_WAIT, &pr);
		if (status == CLI_INTERRUPTED)
			goto discard;
		if (status != CLI_OK)
			goto rollback;
	}
	if (!interrupted && j->md.nfiles) {
		/* A directory's files, in the same group: published with the tensors. */
		int frc = modeldir_write_files(&j->md, st, grp, o->replace, o->skip_existing, &pr,
					       &interrupted, CMD, &nfiles_written,
					       &file_bytes_written);
		if (frc < 0 && frc != TS_ECANCELED)
			goto rollback;
	}
	if (interrupted) {
		/* Invariant 2: nothing of the command is published. */
		progress_clear(&pr);
		status = CLI_INTERRUPTED;
		goto discard;
	}
	progress_end(&pr);
	grc = ts_group_commit(&published, grp);
	grp = NULL;
	if (grc < 0) {
		cli_error_ts(CMD, grc, "cannot publish the imported tensors in %s", j->store_path);
		goto rollback;
	}
	print_summary(sm, o, j->store_path, j->ck.file_count, progress_now() - j->t0);
	if (j->is_dir && !cli_quiet)
		print_files(&j->md, nfiles_written, file_bytes_written);
	status = CLI_OK;
	goto out;

rollback:
	/* Invariant 1: nothing of the command is published. */
	status = CLI_FAIL;
discard:
	ts_group_abort(grp);
	grp = NULL;
	if (j->store_created && !j->spooling) {
		/* while still its writer (holding its flock): a writer waiting for it then
		 * finds it gone and creates its own, and nothing else can have opened it */
		remove_store(j->store_path);
		ts_store_close(st);
		st = NULL;
	}
	fprintf(stderr, "tstore: import: %snothing imported (store %s %s)\n",
		status == CLI_INTERRUPTED ? "interrupted: " : "", j->store_path,
		j->store_created && !j->spooling ? "removed" : "is as it was before the command");
out:
	srcread_stop(rd);
	free(ranges);
	sigaction(SIGINT, &old_sa, NULL);
	ts_group_abort(grp);
	if (st != j->spool_st)
		ts_store_close(st);
	ts_store_close(j->spool_st);
	if (j->spool[0])
		remove_store(j->spool);
	return status;
}

int cmd_import(int argc, char **argv)
{
	job j;
	int status;

	memset(&j, 0, sizeof j);
	j.o.codec = -1;
	j.o.recipe = TS_RECIPE_NVIDIA;
	j.o.max_error = default_max_error();
	j.o.max_file = MD_MAX_FILE_DEFAULT;
	j.o.buffer = READ_BUFFER_DEFAULT;
	j.o.spool = SPOOL_ALWAYS;
	j.t0 = progress_now();
	j.o.keep = calloc((size_t)argc, sizeof *j.o.keep);
	if (!j.o.keep)
		return CLI_FAIL;
	status = parse_args(&j.o, &j.store_path, &j.srcs, &j.nsrc, argc, argv);
	if (status < 0) {
		status = import_plan(&j);
		if (status == 0)
			status = import_run(&j);
	}
	free(j.pl);
	if (j.ck_open)
		st_checkpoint_close(&j.ck);
	modeldir_free(&j.md);
	free(j.o.keep);
	return status;
}
