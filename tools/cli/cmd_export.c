/*
 * tstore export: tensors of a store to a standard safetensors file.
 *
 * Invariants
 *   1. The output is written to "OUT.tmp.<pid>" and renamed over OUT only when complete: a
 *      failed or interrupted export never leaves a partial OUT.
 *   2. Tensors are laid out by decreasing element size, then name, after a header padded to
 *      8 bytes: every tensor starts aligned to its element size (what the official library does).
 *   3. --dtype applies to floating-point tensors; integer, bool and F8 tensors (stored raw)
 *      keep their dtype. "source" (the default) gives back each tensor's source dtype.
 *   4. --layout modelopt writes each NVFP4 tensor x [rows, cols] (2-D, cols a multiple of 16)
 *      as x U8 [rows, cols/2], x_scale F8_E4M3 [rows, cols/16] and x_scale_2 F32 [] from its
 *      encoded bytes (ts_read_encoded), so that importing the file gives back the same bits.
 *   5. Memory is bounded: tensors are read in chunks of whole leading-dimension rows.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/cli/commands.h"
#include "tools/cli/export.h"
#include "tools/cli/progress.h"
#include "tools/cli/safetensors.h"

#define CMD "export"
#define CHUNK_BYTES (8u << 20)

typedef struct list {
	ex_tensor *v;
	size_t n, cap;
} list;

typedef enum part { PART_PLAIN, PART_CODES, PART_SCALES, PART_SCALE2 } part;

typedef struct entry {
	st_out_tensor o;
	char *name;
	size_t src;
	part part;
	uint64_t offset;
} entry;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tstore export [OPTIONS] STORE OUT.safetensors [NAME...]\n"
		"       tstore export [OPTIONS] STORE OUT/\n"
		"Write the tensors of STORE (all, or the NAMEs given) to a safetensors file; or,\n"
		"when OUT is a directory (an existing one, or a path ending in '/'), write a model\n"
		"directory as save_pretrained does: shards model-0000K-of-0000N.safetensors of at\n"
		"most --max-shard-size with model.safetensors.index.json (metadata.total_size,\n"
		"weight_map), or a single model.safetensors when everything fits, and every file\n"
		"attached to STORE (by 'import STORE DIR') byte for byte. The directory is written\n"
		"under a temporary name beside OUT and renamed into place when complete.\n\n"
		"Options:\n"
		"  --dtype f32|bf16|f16|source   element type of floating-point tensors (default\n"
		"                      source: each tensor's dtype in the imported checkpoint);\n"
		"                      integer, bool and F8 tensors keep their dtype\n"
		"  --layout modelopt   write NVFP4 tensors as TensorRT-LLM/vLLM read NVFP4\n"
		"                      checkpoints: x U8 [rows, cols/2] (element 2k in the low nibble),\n"
		"                      x_scale F8_E4M3 [rows, cols/16], x_scale_2 F32 [] (amax/2688);\n"
		"                      bit-exact, and 'tstore import' gives back the same NVFP4 tensor.\n"
		"                      NVFP4 tensors that are not 2-D with cols a multiple of 16 are\n"
		"                      written decoded.\n"
		"  --max-shard-size SIZE  directory: largest shard (default 5GB; KB MB GB are\n"
		"                      powers of 1000, KiB MiB GiB of 1024); a tensor larger than\n"
		"                      SIZE gets a shard of its own\n"
		"  --force             directory: replace OUT even if it is not empty (its old\n"
		"                      contents are deleted once the new directory is in place)\n"
		"  --quant-algo NVFP4|W4A16_NVFP4  directory with --layout modelopt: the quant_algo\n"
		"                      written to hf_quant_config.json and config.json (default NVFP4)\n"
		"  -q                  print only errors\n"
		"  --help              this text\n"
		"\n"
		"With --layout modelopt a directory also gets hf_quant_config.json and the\n"
		"quantization_config entry of config.json (if config.json is attached), as\n"
		"ModelOpt's unified HF export writes them: quant_algo, group_size 16, and\n"
		"exclude_modules listing every module whose weight stays in high precision.\n"
		"A store holds weights only: ModelOpt's NVFP4 (W4A4) checkpoints also carry\n"
		"activation scales (x.input_scale) from calibration, which serving engines such as\n"
		"TensorRT-LLM and vLLM load for NVFP4 layers; tstore cannot know them and writes\n"
		"none. Use a weight-only runtime path (W4A16_NVFP4), or add input scales from a\n"
		"calibration before serving W4A4.\n");
}

static int collect(void *ud, const char *name, const ts_tensor_info *info)
{
	list *l = ud;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		ex_tensor *nv = realloc(l->v, nc * sizeof *nv);
		if (!nv)
			return TS_ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n].name = strdup(name);
	if (!l->v[l->n].name)
		return TS_ENOMEM;
	l->v[l->n].info = *info;
	l->n++;
	return 0;
}

static size_t esize(ts_dtype d)
{
	return ts_dtype_size(d);
}

static int cmp_entry(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	size_t sx = esize(x->o.dtype), sy = esize(y->o.dtype);
	if (sx != sy)
		return sx > sy ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_float_out(ts_dtype d)
{
	return d == TS_F32 || d == TS_BF16 || d == TS_F16;
}

/* The dtype a tensor is read and written as. */
static ts_dtype out_dtype(const ts_tensor_info *info, int want)
{
	if ((info->codec.codec == TS_CODEC_RAW || info->codec.codec == TS_CODEC_LOSSLESS) &&
	    !is_float_out(info->codec.raw_dtype))
		return info->codec.raw_dtype; /* integers, bool, F8, F64: as they are */
	if (want >= 0)
		return (ts_dtype)want;
	return is_float_out(info->source_dtype) ? info->source_dtype : TS_F32;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	const char *p = buf;
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int export_modelopt_ok(const ts_tensor_info *i)
{
	return i->codec.codec == TS_CODEC_NVFP4 && i->ndim == 2 && i->shape[1] % 16 == 0 &&
	       i->shape[0] > 0 && i->shape[1] > 0;
}

/* Write tensors @p v[0..n) to the safetensors file @p out_path (invariants 1, 2, 4, 5);
 * progress goes to @p pr, begun by the caller. 0 or -1 (reported). */
/* The store's metadata as safetensors __metadata__ entries (*meta freed with st_meta_free());
 * a store without metadata gets {"format": "pt"}, what loaders expect. 0 or -1 (reported). */
int export_load_metadata(ts_store *st, const char *store_path, st_meta **meta, size_t *count)
{
	size_t len = 0;
	char *text, err[512];
	int rc = ts_store_metadata_get(NULL, 0, &len, st);

	*meta = NULL;
	*count = 0;
	if (rc < 0 && rc != TS_ESHORTBUF) {
		cli_error_ts(CMD, rc, "cannot read the metadata of %s", store_path);
		return -1;
	}
	if (len == 0) {
		*meta = calloc(1, sizeof **meta);
		if (!*meta || !((*meta)->key = strdup("format")) || !((*meta)->value = strdup("pt"))) {
			st_meta_free(*meta, *meta ? 1 : 0);
			cli_error(CMD, NULL, "out of memory");
			return -1;
		}
		*count = 1;
		return 0;
	}
	text = malloc(len + 1);
	if (!text) {
		cli_error(CMD, NULL, "out of memory");
		return -1;
	}
	rc = ts_store_metadata_get(text, len + 1, &len, st);
	if (rc < 0) {
		free(text);
		cli_error_ts(CMD, rc, "cannot read the metadata of %s", store_path);
		return -1;
	}
	rc = st_meta_parse(meta, count, text, len, err, sizeof err);
	free(text);
	if (rc < 0)
		cli_error(CMD, store_path, "%s", err);
	return rc;
}

uint64_t export_bytes(const ts_tensor_info *in, int want, int modelopt)
{
	uint64_t nelem = 1;
	size_t codes, scales;
	for (int d = 0; d < in->ndim; d++)
		nelem *= in->shape[d];
	if (modelopt && export_modelopt_ok(in) &&
	    ts_read_encoded_size(&codes, &scales, in, 1) == 0)
		return in->shape[0] * (uint64_t)(codes + scales) + 4;
	return nelem * ts_dtype_size(out_dtype(in, want));
}

/*
 * Decoded tensors are written from batches of row pieces read with one ts_read_many() call
 * each, so that the pages of the next pieces (of the next tensors: a model has many small ones)
 * are read while these decode. A batch holds at most BATCH_BYTES (one longer row is a batch of
 * its own) and BATCH_PIECES pieces.
 */
#define BATCH_BYTES (64u << 20)
#define BATCH_PIECES 256

typedef struct piece {
	const char *name;
	int ndim;
	ts_dtype dtype;
	uint64_t start[TS_MAX_DIMS], count[TS_MAX_DIMS];
	uint64_t offset; /* in the output file */
	size_t bytes, at; /* its size, and where it lies in the batch buffer */
} piece;

typedef struct batch {
	piece p[BATCH_PIECES];
	size_t n;
	uint8_t *buf;
	size_t used, cap;
} batch;

/* Room for @p bytes more in @p b's buffer. */
static int batch_room(batch *b, size_t bytes)
{
	size_t need = b->used + bytes + 64;
	if (need <= b->cap)
		return 0;
	if (need < BATCH_BYTES + 64)
		need = BATCH_BYTES + 64;
	uint8_t *q = realloc(b->buf, need);
	if (!q)
		return -1;
	b->buf = q;
	b->cap = need;
	return 0;
}

/* Read and write the pieces of @p b: 0; a negative ts code (*@p failed names the tensor); 1 if
 * writing failed (errno says why). */
static int batch_flush(batch *b, ts_store *st, int fd, progress *pr, const char **failed)
{
	ts_read_request q[BATCH_PIECES];
	int rc;

	if (b->n == 0)
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		piece *p = &b->p[i];
		q[i] = (ts_read_request){p->name, p->ndim, p->start, p->count, p->dtype,
					 b->buf + p->at, p->bytes};
	}
	rc = ts_read_many(st, q, b->n);
	if (rc < 0) {
		/* the tensor to name: the first piece that fails on its own */
		*failed = b->p[0].name;
		for (size_t i = 0; i < b->n; i++) {
			int rc1 = ts_read_slice(st, q[i].name, q[i].ndim, q[i].start, q[i].count,
						q[i].dtype, q[i].dst, q[i].dst_size);
			if (rc1 < 0) {
				*failed = q[i].name;
				return rc1;
			}
		}
		return rc;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (pwrite_all(fd, b->buf + b->p[i].at, b->p[i].bytes, b->p[i].offset) < 0)
			return 1;
		progress_add(pr, b->p[i].bytes, b->p[i].name);
	}
	b->n = 0;
	b->used = 0;
	return 0;
}

int export_file(ts_store *st, const ex_tensor *v, size_t n, int want, int modelopt,
		const st_meta *meta, size_t nmeta, const char *out_path, progress *pr,
		export_result *res)
{
	entry *ent = NULL;
	size_t nent = 0, n_mo = 0;
	FILE *f = NULL;
	char tmp[4200];
	uint8_t *buf = NULL, *sbuf = NULL;
	batch *bt = calloc(1, sizeof *bt);
	const char *failed = NULL;
	int status = -1;
	tmp[0] = '\0';
	memset(res, 0, sizeof *res);
	if (!bt) {
		cli_error(CMD, NULL, "out of memory");
		return -1;
	}

	ent = calloc(3 * n + 1, sizeof *ent);
	if (!ent) {
		cli_error(CMD, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const ts_tensor_info *in = &v[i].info;
		if (modelopt && export_modelopt_ok(in)) {
			static const char *const suffix[3] = {"", "_scale", "_scale_2"};
			size_t row[2];
			int src = ts_read_encoded_size(&row[0], &row[1], in, 1);
			if (src < 0) {
				cli_error_ts(CMD, src, "tensor '%s'", v[i].name);
				goto out;
			}
			for (int k = 0; k < 3; k++) {
				entry *e = &ent[nent++];
				size_t len = strlen(v[i].name) + 10;
				e->name = malloc(len);
				if (!e->name) {
					cli_error(CMD, NULL, "out of memory");
					goto out;
				}
				snprintf(e->name, len, "%s%s", v[i].name, suffix[k]);
				e->src = i;
				e->part = (part)(PART_CODES + k);
				e->o.name = e->name;
				e->o.dtype = k == 0 ? TS_U8 : k == 1 ? TS_F8_E4M3 : TS_F32;
				e->o.ndim = k == 2 ? 0 : 2;
				e->o.shape[0] = in->shape[0];
				e->o.shape[1] = k == 2 ? 0 : row[k];
			}
			n_mo++;
			continue;
		}
		entry *e = &ent[nent++];
		e->name = strdup(v[i].name);
		if (!e->name) {
			cli_error(CMD, NULL, "out of memory");
			goto out;
		}
		e->src = i;
		e->part = PART_PLAIN;
		e->o.name = e->name;
		e->o.dtype = out_dtype(in, want);
		e->o.ndim = in->ndim;
		memcpy(e->o.shape, in->shape, sizeof e->o.shape);
	}
	qsort(ent, nent, sizeof *ent, cmp_entry);
	{
		/* Names are unique in a store; only the ModelOpt suffixes can clash. */
		char **nm = malloc((nent + 1) * sizeof *nm);
		if (!nm) {
			cli_error(CMD, NULL, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < nent; i++)
			nm[i] = ent[i].name;
		qsort(nm, nent, sizeof *nm, cmp_str);
		for (size_t i = 1; i < nent; i++)
			if (!strcmp(nm[i - 1], nm[i])) {
				cli_error(CMD, nm[i], "the ModelOpt layout would write this name twice");
				free(nm);
				goto out;
			}
		free(nm);
	}

	f = cli_tmp_create(CMD, tmp, sizeof tmp, out_path);
	if (!f)
		goto out;
	st_out_tensor *ot = calloc(nent + 1, sizeof *ot);
	uint64_t *offs = calloc(nent + 1, sizeof *offs);
	uint64_t data_start = 0;
	if (!ot || !offs) {
		free(ot);
		free(offs);
		cli_error(CMD, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nent; i++)
		ot[i] = ent[i].o;
	int wrc = st_write_header(f, ot, nent, meta, nmeta, &data_start, offs);
	for (size_t i = 0; i < nent; i++)
		ent[i].offset = data_start + offs[i];
	free(ot);
	free(offs);
	if (wrc < 0 || fflush(f) != 0) {
		cli_error(CMD, tmp, "cannot write the header: %s", strerror(errno));
		goto out;
	}
	int fd = fileno(f);

	uint64_t total = 0;
	for (size_t i = 0; i < nent; i++) {
		int ovf;
		total += st_tensor_bytes(&ent[i].o, &ovf);
	}
	res->data_bytes = total;
	res->file_bytes = total + data_start;
	res->n_modelopt = n_mo;
	buf = malloc(CHUNK_BYTES);
	sbuf = malloc(CHUNK_BYTES / 8 + 64);
	if (!buf || !sbuf) {
		cli_error(CMD, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nent; i++) {
		entry *e = &ent[i];
		const char *name = v[e->src].name;
		const ts_tensor_info *in = &v[e->src].info;
		int rc = 0;
		if (e->part == PART_SCALES)
			continue; /* written with PART_CODES */
		if (e->part == PART_SCALE2) {
			float g = in->tensor_scale;
			uint8_t b[4];
			uint32_t u;
			memcpy(&u, &g, 4);
			for (int k = 0; k < 4; k++)
				b[k] = (uint8_t)(u >> (8 * k));
			if (pwrite_all(fd, b, 4, e->offset) < 0)
				goto io_fail;
			continue;
		}
		if (e->part == PART_CODES) {
			const entry *se = NULL;
			for (size_t k = 0; k < nent; k++)
				if (ent[k].src == e->src && ent[k].part == PART_SCALES)
					se = &ent[k];
			uint64_t rows = in->shape[0], cb = e->o.shape[1], sb = se->o.shape[1];
			uint64_t step = CHUNK_BYTES / cb;
			if (step < 1)
				step = 1;
			if (cb > CHUNK_BYTES) {
				cli_error(CMD, name, "rows of %llu bytes are too long",
					  (unsigned long long)cb);
				goto out;
			}
			for (uint64_t r = 0; r < rows && !rc; r += step) {
				uint64_t k = rows - r < step ? rows - r : step;
				rc = ts_read_encoded(st, name, r, k, buf, k * cb, sbuf, k * sb);
				if (rc < 0)
					break;
				if (pwrite_all(fd, buf, k * cb, e->offset + r * cb) < 0 ||
				    pwrite_all(fd, sbuf, k * sb, se->offset + r * sb) < 0)
					goto io_fail;
				progress_add(pr, k * (cb + sb), name);
			}
		} else {
			size_t es = esize(e->o.dtype);
			uint64_t nelem = 1;
			for (int d = 0; d < in->ndim; d++)
				nelem *= in->shape[d];
			if (nelem == 0)
				continue;
			uint64_t rows = in->ndim ? in->shape[0] : 1, row_elems = nelem / rows;
			uint64_t row_bytes = row_elems * es;
			uint64_t step = CHUNK_BYTES / row_bytes;
			if (step < 1)
				step = 1;
			for (uint64_t r = 0; r < rows && !rc; r += step) {
				uint64_t k = rows - r < step ? rows - r : step;
				piece *pc;
				if ((bt->n == BATCH_PIECES || bt->used + k * row_bytes > BATCH_BYTES) &&
				    (rc = batch_flush(bt, st, fd, pr, &failed)) != 0)
					break;
				if (batch_room(bt, k * row_bytes) < 0) {
					cli_error(CMD, name, "out of memory for %llu bytes",
						  (unsigned long long)(k * row_bytes));
					goto out;
				}
				pc = &bt->p[bt->n++];
				pc->name = name;
				pc->ndim = in->ndim;
				pc->dtype = e->o.dtype;
				pc->offset = e->offset + r * row_bytes;
				pc->bytes = (size_t)(k * row_bytes);
				pc->at = bt->used;
				bt->used += (pc->bytes + 63) & ~(size_t)63;
				memset(pc->start, 0, sizeof pc->start);
				memcpy(pc->count, in->shape, sizeof pc->count);
				if (in->ndim) {
					pc->start[0] = r;
					pc->count[0] = k;
				}
			}
			if (rc > 0)
				goto io_fail;
			if (rc < 0)
				name = failed;
		}
		if (rc < 0) {
			progress_clear(pr);
			cli_error_ts(CMD, rc, "cannot read tensor '%s'", name);
			goto out;
		}
	}
	{
		int rc = batch_flush(bt, st, fd, pr, &failed);
		if (rc > 0)
			goto io_fail;
		if (rc < 0) {
			progress_clear(pr);
			cli_error_ts(CMD, rc, "cannot read tensor '%s'", failed);
			goto out;
		}
	}
	if (fclose(f) != 0) {
		f = NULL;
		goto io_fail;
	}
	f = NULL;
	if (rename(tmp, out_path) != 0) {
		cli_error(CMD, out_path, "cannot rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	status = 0;
	goto out;
io_fail:
	cli_error(CMD, tmp, "write failed: %s", strerror(errno));
out:
	if (f)
		fclose(f);
	if (tmp[0])
		unlink(tmp);
	free(buf);
	free(sbuf);
	free(bt->buf);
	free(bt);
	for (size_t i = 0; i < nent; i++)
		free(ent[i].name);
	free(ent);
	return status;
}

/* What the command line asks for: the store, OUT and the options (as export_dir() takes them),
 * the NAMEs. */
typedef struct args {
	export_dir_opts o;
	char **names;
	size_t nnames;
	int dir_out; /* OUT is a directory */
} args;

/* What is to be written: the open store, its metadata and the tensors, in the order asked. */
typedef struct plan {
	ts_store *st;
	st_meta *meta;
	size_t nmeta;
	list l;
	uint64_t total; /* tensor data to write (a single file) */
} plan;

/* The command line into @p a: -1 to go on, else the exit status. */
static int parse(args *a, int argc, char **argv)
{
	enum { O_SHARD = 256, O_FORCE, O_ALGO };
	static const struct option lo[] = {{"dtype", required_argument, 0, 'd'},
					   {"layout", required_argument, 0, 'l'},
					   {"max-shard-size", required_argument, 0, O_SHARD},
					   {"force", no_argument, 0, O_FORCE},
					   {"quant-algo", required_argument, 0, O_ALGO},
					   {0, 0, 0, 0}};
	cli_opts co;
	int c;

	memset(a, 0, sizeof(*a));
	a->o.quant_algo = "NVFP4";
	a->o.max_shard = 5000000000ull;
	a->o.want = -1;
	cli_opts_init(&co, CMD, usage, 0, NULL, lo, argc, argv);
	while ((c = cli_opts_next(&co)) > 0) {
		switch (c) {
		case 'd':
			if (cli_parse_out_dtype(optarg, 1, &a->o.want) < 0)
				return cli_usage_error(CMD, "--dtype must be f32, bf16, f16 or source");
			break;
		case 'l':
			if (strcmp(optarg, "modelopt"))
				return cli_usage_error(CMD, "--layout: only 'modelopt' is known");
			a->o.modelopt = 1;
			break;
		case O_SHARD:
			if (cli_parse_size(optarg, &a->o.max_shard) < 0)
				return cli_usage_error(CMD, "--max-shard-size: '%s' is not a size", optarg);
			break;
		case O_FORCE:
			a->o.force = 1;
			break;
		case O_ALGO:
			if (strcmp(optarg, "NVFP4") && strcmp(optarg, "W4A16_NVFP4"))
				return cli_usage_error(CMD, "--quant-algo must be NVFP4 or W4A16_NVFP4");
			a->o.quant_algo = optarg;
			break;
		}
	}
	if (c < 0)
		return co.status;
	if (argc - co.operand < 2)
		return cli_usage_error(CMD, "need STORE and OUT");
	a->o.store_path = argv[co.operand];
	a->o.out = argv[co.operand + 1];
	a->names = argv + co.operand + 2;
	a->nnames = (size_t)(argc - co.operand - 2);
	a->dir_out = export_is_dir(a->o.out);
	if (a->dir_out && a->nnames)
		return cli_usage_error(CMD, "a directory export writes every tensor: no NAMEs");
	return -1;
}

static void plan_free(plan *p)
{
	st_meta_free(p->meta, p->nmeta);
	for (size_t i = 0; i < p->l.n; i++)
		free(p->l.v[i].name);
	free(p->l.v);
	ts_store_close(p->st);
}

/* Open the store and list what to write into @p p (freed by plan_free() in any case): 0, or
 * the exit status of a failure (reported). */
static int plan_export(plan *p, const args *a)
{
	memset(p, 0, sizeof(*p));
	if (cli_open_store(CMD, &p->st, a->o.store_path, 0, 0) < 0)
		return CLI_USAGE;
	if (export_load_metadata(p->st, a->o.store_path, &p->meta, &p->nmeta) < 0)
		return CLI_FAIL;
	if (a->nnames) {
		for (size_t i = 0; i < a->nnames; i++) {
			const char *name = a->names[i];
			ts_tensor_info info;
			int rc = ts_tensor_info_get(&info, p->st, name);
			if (rc < 0) {
				cli_error_ts(CMD, rc, "tensor '%s'", name);
				return CLI_FAIL;
			}
			for (size_t k = 0; k < p->l.n; k++)
				if (!strcmp(p->l.v[k].name, name)) {
					cli_error(CMD, name, "tensor named twice");
					return CLI_FAIL;
				}
			if (collect(&p->l, name, &info) < 0) {
				cli_error(CMD, NULL, "out of memory");
				return CLI_FAIL;
			}
		}
	} else {
		int rc = ts_tensor_foreach(p->st, collect, &p->l);
		if (rc < 0) {
			cli_error_ts(CMD, rc, "cannot list the tensors of %s", a->o.store_path);
			return CLI_FAIL;
		}
	}
	for (size_t i = 0; i < p->l.n; i++)
		p->total += export_bytes(&p->l.v[i].info, a->o.want, a->o.modelopt);
	return 0;
}

/* Write what @p p lists as @p a asks; the exit status. */
static int run(const plan *p, const args *a, double t0)
{
	export_result res;
	progress pr;

	if (a->dir_out)
		return export_dir(p->st, p->l.v, p->l.n, p->meta, p->nmeta, &a->o);
	progress_begin(&pr, "export", p->total, 1, cli_quiet);
	if (export_file(p->st, p->l.v, p->l.n, a->o.want, a->o.modelopt, p->meta, p->nmeta,
			a->o.out, &pr, &res) < 0) {
		progress_clear(&pr);
		return CLI_FAIL;
	}
	progress_end(&pr);
	if (!cli_quiet) {
		char sz[32], r[32];
		double s = progress_now() - t0;
		printf("export: %zu tensors%s to %s: %s in %.1f s (%s/s)\n", p->l.n,
		       res.n_modelopt ? " (ModelOpt NVFP4 layout)" : "", a->o.out,
		       progress_size(sz, sizeof sz, (double)res.file_bytes), s,
		       progress_size(r, sizeof r, s > 0 ? (double)p->total / s : 0));
		if (res.n_modelopt)
			printf("  %zu NVFP4 tensors written as U8 codes + F8_E4M3 scales + F32 scale_2\n",
			       res.n_modelopt);
	}
	return CLI_OK;
}

int cmd_export(int argc, char **argv)
{
	args a;
	plan p;
	int status = parse(&a, argc, argv);

	if (status >= 0)
		return status;
	double t0 = progress_now();
	status = plan_export(&p, &a);
	if (status == 0)
		status = run(&p, &a, t0);
	plan_free(&p);
	return status;
}
