/*
 * tstore export STORE OUT/: a model directory as save_pretrained writes one, with the store's
 * attachments, and with --layout modelopt the quantization configs of ModelOpt's unified HF
 * export.
 *
 * Invariants
 *   1. Everything is written into a fresh directory ".<OUT>.export-XXXXXX" beside OUT (mkdtemp)
 *      and renamed to OUT only when complete; on failure that directory is removed. A failed
 *      export leaves OUT as it was; a killed one leaves at most the hidden temporary directory.
 *   2. An existing OUT must be empty unless --force; with --force the new directory takes OUT's
 *      place in one renameat2(RENAME_EXCHANGE) where the file system has it (else two renames),
 *      and only then is the old one deleted.
 *   3. Shards: tensors in name order; a shard is closed when the next tensor would take it past
 *      max_shard bytes of tensor data (a tensor larger than that gets a shard of its own). One
 *      shard is "model.safetensors" with no index; N > 1 are "model-%05d-of-%05d.safetensors"
 *      with "model.safetensors.index.json": {"metadata": {"total_size"}, "weight_map"} where
 *      total_size is the bytes of tensor data of all shards and weight_map maps every tensor
 *      name written (ModelOpt's x_scale and x_scale_2 included) to its shard, sorted by name.
 *   4. Attachments are written byte for byte (verified pages), at their relative paths. An
 *      attachment whose name is a file this export generates is an error, except config.json
 *      under --layout modelopt, which gets its quantization_config spliced in (the rest of its
 *      bytes unchanged).
 */
#define _GNU_SOURCE /* renameat2 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/cli/export.h"
#include "tools/cli/json.h"

#define CMD "export"
#define CHUNK (4u << 20)

typedef struct att {
	char *name;
	uint64_t size;
} att;

typedef struct att_list {
	att *v;
	size_t n, cap;
	uint64_t bytes;
} att_list;

typedef struct wm_entry {
	char *name;
	size_t shard;
} wm_entry;

int export_is_dir(const char *out)
{
	struct stat sb;
	size_t n = strlen(out);
	return (n && out[n - 1] == '/') || (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode));
}

static int collect_att(void *ud, const char *name, uint64_t size)
{
	att_list *l = ud;
	if (l->n == l->cap) {
		size_t nc = l->cap ? 2 * l->cap : 16;
		att *nv = realloc(l->v, nc * sizeof *nv);
		if (!nv)
			return TS_ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	if (!(l->v[l->n].name = strdup(name)))
		return TS_ENOMEM;
	l->v[l->n++].size = size;
	l->bytes += size;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Remove a directory tree this export created (never follows symlinks). */
static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* mkdir -p of the directories of relative path @p rel below @p root. */
static int make_parents(const char *root, const char *rel)
{
	char p[PATH_MAX];
	size_t rl = strlen(root);
	if ((size_t)snprintf(p, sizeof p, "%s/%s", root, rel) >= sizeof p)
		return -1;
	for (char *c = p + rl + 1; (c = strchr(c, '/')) != NULL; c++) {
		*c = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST)
			return -1;
		*c = '/';
	}
	return 0;
}

/* End offset of the JSON value starting at text[off] (the parser has validated the text). */
static size_t value_end(const char *text, size_t len, size_t off)
{
	int depth = 0;
	size_t i = off;
	if (text[i] != '{' && text[i] != '[' && text[i] != '"') {
		while (i < len && !strchr(",}] \t\r\n", text[i]))
			i++;
		return i;
	}
	for (; i < len; i++) {
		char c = text[i];
		if (c == '"') {
			for (i++; i < len && text[i] != '"'; i++)
				if (text[i] == '\\')
					i++;
			if (depth == 0)
				return i + 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (--depth == 0)
				return i + 1;
		}
	}
	return len;
}

/* The modules whose weights stay in high precision: every tensor "<module>.weight" of two or
 * more dimensions that is not written in the ModelOpt NVFP4 layout. */
static void write_excludes(json_writer *w, const ex_tensor *v, size_t n)
{
	jw_array_begin(w);
	for (size_t i = 0; i < n; i++) {
		const char *nm = v[i].name;
		size_t len = strlen(nm);
		if (v[i].info.ndim < 2 || len <= 7 || strcmp(nm + len - 7, ".weight") ||
		    export_modelopt_ok(&v[i].info))
			continue;
		char *mod = strndup(nm, len - 7);
		if (mod)
			jw_string(w, mod);
		free(mod);
	}
	jw_array_end(w);
}

/* "producer": this program (not ModelOpt: no calibration is claimed). */
static void write_producer(json_writer *w)
{
	jw_key(w, "producer");
	jw_object_begin(w);
	jw_key(w, "name");
	jw_string(w, "tstore");
	jw_key(w, "version");
	jw_string(w, ts_version());
	jw_object_end(w);
}

/* hf_quant_config.json, as ModelOpt's export writes it (producer: this program). */
static void write_hf_quant_config(FILE *f, const ex_tensor *v, size_t n, const char *algo)
{
	json_writer w;
	jw_init(&w, f, 2);
	jw_object_begin(&w);
	write_producer(&w);
	jw_key(&w, "quantization");
	jw_object_begin(&w);
	jw_key(&w, "quant_algo");
	jw_string(&w, algo);
	jw_key(&w, "kv_cache_quant_algo");
	jw_null(&w);
	jw_key(&w, "group_size");
	jw_int(&w, 16);
	jw_key(&w, "exclude_modules");
	write_excludes(&w, v, n);
	jw_object_end(&w);
	jw_object_end(&w);
	jw_finish(&w);
}

static void write_quant_group(json_writer *w)
{
	jw_object_begin(w);
	jw_key(w, "dynamic");
	jw_bool(w, 0);
	jw_key(w, "num_bits");
	jw_int(w, 4);
	jw_key(w, "type");
	jw_string(w, "float");
	jw_key(w, "group_size");
	jw_int(w, 16);
	jw_object_end(w);
}

/* config.json's quantization_config: what ModelOpt's convert_hf_quant_config_format() makes of
 * the hf_quant_config above (config_groups, ignore, quant_algo, producer, quant_method). */
static void write_quantization_config(FILE *f, const ex_tensor *v, size_t n, const char *algo)
{
	json_writer w;
	jw_init(&w, f, 2);
	jw_object_begin(&w);
	jw_key(&w, "config_groups");
	jw_object_begin(&w);
	jw_key(&w, "group_0");
	jw_object_begin(&w);
	if (!strcmp(algo, "NVFP4")) { /* W4A4: activations are quantized too (input_scale) */
		jw_key(&w, "input_activations");
		write_quant_group(&w);
	}
	jw_key(&w, "weights");
	write_quant_group(&w);
	jw_key(&w, "targets");
	jw_array_begin_inline(&w);
	jw_string(&w, "Linear");
	jw_array_end(&w);
	jw_object_end(&w);
	jw_object_end(&w);
	jw_key(&w, "ignore");
	write_excludes(&w, v, n);
	jw_key(&w, "quant_algo");
	jw_string(&w, algo);
	write_producer(&w);
	jw_key(&w, "quant_method");
	jw_string(&w, "modelopt");
	jw_object_end(&w);
}

/* Write @p text[0..len) with its top-level "quantization_config" replaced (or inserted first)
 * by ours, to @p f. 0 or -1 (reported). */
static int splice_config(FILE *f, const char *text, size_t len, const ex_tensor *v, size_t n,
			 const char *algo)
{
	json_value *root = NULL;
	char jerr[160], *q = NULL;
	size_t qlen = 0;
	FILE *m;
	if (json_parse(&root, text, len, jerr, sizeof jerr) < 0) {
		cli_error(CMD, "config.json", "not valid JSON (%s): cannot add quantization_config",
			  jerr);
		return -1;
	}
	if (root->type != JSON_OBJECT) {
		json_free(root);
		cli_error(CMD, "config.json", "not a JSON object: cannot add quantization_config");
		return -1;
	}
	m = open_memstream(&q, &qlen);
	if (!m) {
		json_free(root);
		cli_error(CMD, NULL, "out of memory");
		return -1;
	}
	write_quantization_config(m, v, n, algo);
	fclose(m);
	const json_value *old = json_get(root, "quantization_config");
	if (old) {
		size_t a = old->offset, b = value_end(text, len, a);
		fwrite(text, 1, a, f);
		fwrite(q, 1, qlen, f);
		fwrite(text + b, 1, len - b, f);
	} else {
		size_t a = root->offset + 1; /* just after the opening brace */
		fwrite(text, 1, a, f);
		fputs("\n  \"quantization_config\": ", f);
		fwrite(q, 1, qlen, f);
		if (root->u.obj.count)
			fputc(',', f);
		fwrite(text + a, 1, len - a, f);
	}
	free(q);
	json_free(root);
	return 0;
}

static int cmp_wm(const void *a, const void *b)
{
	return strcmp(((const wm_entry *)a)->name, ((const wm_entry *)b)->name);
}

static int write_index(const char *path, const ex_tensor *v, const size_t *shard_of, size_t n,
		       size_t nshards, uint64_t total, int modelopt)
{
	wm_entry *wm = calloc(3 * n + 1, sizeof *wm);
	size_t k = 0;
	char fname[64];
	int rc = -1;
	FILE *f = NULL;
	if (!wm)
		goto out;
	for (size_t i = 0; i < n; i++) {
		static const char *const sfx[3] = {"", "_scale", "_scale_2"};
		int parts = modelopt && export_modelopt_ok(&v[i].info) ? 3 : 1;
		for (int p = 0; p < parts; p++) {
			size_t len = strlen(v[i].name) + 10;
			if (!(wm[k].name = malloc(len)))
				goto out;
			snprintf(wm[k].name, len, "%s%s", v[i].name, sfx[p]);
			wm[k++].shard = shard_of[i];
		}
	}
	qsort(wm, k, sizeof *wm, cmp_wm);
	f = fopen(path, "w");
	if (!f)
		goto out;
	json_writer w;
	jw_init(&w, f, 2);
	jw_object_begin(&w);
	jw_key(&w, "metadata");
	jw_object_begin(&w);
	jw_key(&w, "total_size");
	jw_uint(&w, total);
	jw_object_end(&w);
	jw_key(&w, "weight_map");
	jw_object_begin(&w);
	for (size_t i = 0; i < k; i++) {
		snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", wm[i].shard + 1,
			 nshards);
		jw_key(&w, wm[i].name);
		jw_string(&w, fname);
	}
	jw_object_end(&w);
	jw_object_end(&w);
	jw_finish(&w);
	rc = ferror(f) ? -1 : 0;
out:
	if (f && fclose(f) != 0)
		rc = -1;
	if (wm)
		for (size_t i = 0; i < k; i++)
			free(wm[i].name);
	free(wm);
	if (rc < 0)
		cli_error(CMD, path, "cannot write the index: %s", strerror(errno));
	return rc;
}

/* Is @p name a file this export generates (invariant 4)? */
static int generated(const char *name, size_t nshards, int modelopt_files)
{
	if (modelopt_files && !strcmp(name, "hf_quant_config.json"))
		return 1;
	if (!strcmp(name, "model.safetensors") || !strcmp(name, "model.safetensors.index.json"))
		return 1;
	if (nshards > 1) {
		unsigned a, b;
		char rest[2];
		if (sscanf(name, "model-%5u-of-%5u.safetensors%1s", &a, &b, rest) == 2 &&
		    b == nshards && a >= 1 && a <= nshards)
			return 1;
	}
	return 0;
}

static int write_attachment(ts_store *st, const char *root, const att *a, uint8_t *buf,
			    progress *pr, const ex_tensor *v, size_t n, const char *algo,
			    int splice)
{
	char p[PATH_MAX];
	FILE *f;
	int rc = 0;
	if ((size_t)snprintf(p, sizeof p, "%s/%s", root, a->name) >= sizeof p ||
	    make_parents(root, a->name) < 0) {
		cli_error(CMD, a->name, "cannot create its directory: %s", strerror(errno));
		return -1;
	}
	f = fopen(p, "wbx");
	if (!f) {
		cli_error(CMD, p, "cannot create: %s", strerror(errno));
		return -1;
	}
	if (splice) {
		char *text = malloc(a->size + 1);
		rc = text ? ts_attachment_read(text, st, a->name, 0, (size_t)a->size) : TS_ENOMEM;
		if (rc == 0 && splice_config(f, text, (size_t)a->size, v, n, algo) < 0)
			rc = -1;
		else if (rc < 0)
			cli_error_ts(CMD, rc, "cannot read file '%s'", a->name);
		free(text);
		if (rc == 0)
			progress_add(pr, a->size, a->name);
	} else {
		for (uint64_t off = 0; off < a->size && rc == 0;) {
			size_t k = a->size - off < CHUNK ? (size_t)(a->size - off) : CHUNK;
			rc = ts_attachment_read(buf, st, a->name, off, k);
			if (rc < 0) {
				progress_clear(pr);
				cli_error_ts(CMD, rc, "cannot read file '%s'", a->name);
				break;
			}
			if (fwrite(buf, 1, k, f) != k) {
				rc = -1;
				cli_error(CMD, p, "write failed: %s", strerror(errno));
				break;
			}
			off += k;
			progress_add(pr, k, a->name);
		}
	}
	if (fclose(f) != 0 && rc == 0) {
		cli_error(CMD, p, "write failed: %s", strerror(errno));
		rc = -1;
	}
	return rc < 0 ? -1 : 0;
}

/* Invariant 2: put @p tmp in @p out's place. 0 or -1 (reported). */
static int move_into_place(const char *tmp, const char *out, int exists, const char *old_tmpl)
{
	if (!exists || dir_is_empty(out) == 1) {
		if (rename(tmp, out) == 0)
			return 0;
		cli_error(CMD, out, "cannot rename %s into place: %s", tmp, strerror(errno));
		return -1;
	}
#ifdef RENAME_EXCHANGE
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) == 0) {
		rm_tree(tmp); /* now the old OUT */
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
		cli_error(CMD, out, "cannot exchange %s with it: %s", tmp, strerror(errno));
		return -1;
	}
#endif
	char old[PATH_MAX];
	snprintf(old, sizeof old, "%s", old_tmpl);
	if (!mkdtemp(old) || rmdir(old) != 0 || rename(out, old) != 0) {
		cli_error(CMD, out, "cannot move it aside: %s", strerror(errno));
		return -1;
	}
	if (rename(tmp, out) != 0) {
		cli_error(CMD, out, "cannot rename %s into place: %s (the old directory is %s)", tmp,
			  strerror(errno), old);
		return -1;
	}
	rm_tree(old);
	return 0;
}

int export_dir(ts_store *st, const ex_tensor *v, size_t n, const st_meta *meta, size_t nmeta,
	       const export_dir_opts *o)
{
	char out[PATH_MAX], tmp[PATH_MAX], old[PATH_MAX], path[PATH_MAX + 64];
	char *outcopy = NULL, *outcopy2 = NULL;
	att_list al = {0};
	size_t *shard_of = NULL, nshards = 0, n_mo = 0;
	uint64_t *bytes = NULL, total = 0;
	uint8_t *buf = NULL;
	int status = CLI_FAIL, exists, have_tmp = 0;
	struct stat sb;

	/* OUT without trailing slashes. */
	if ((size_t)snprintf(out, sizeof out, "%s", o->out) >= sizeof out)
		return cli_usage_error(CMD, "OUT is too long");
	for (size_t l = strlen(out); l > 1 && out[l - 1] == '/'; l--)
		out[l - 1] = '\0';
	exists = stat(out, &sb) == 0;
	if (exists && !S_ISDIR(sb.st_mode)) {
		cli_error(CMD, out, "exists and is not a directory");
		return CLI_FAIL;
	}
	if (exists && !o->force && dir_is_empty(out) != 1) {
		cli_error(CMD, out, "the directory is not empty (--force replaces it)");
		return CLI_FAIL;
	}
	outcopy = strdup(out);
	outcopy2 = strdup(out);
	if (!outcopy || !outcopy2) {
		cli_error(CMD, NULL, "out of memory");
		goto out;
	}
	const char *parent = dirname(outcopy), *base = basename(outcopy2);
	if (!strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/")) {
		cli_error(CMD, o->out, "name the directory itself (not '.', '..' or '/')");
		goto out;
	}
	snprintf(tmp, sizeof tmp, "%s/.%s.export-XXXXXX", parent, base);
	snprintf(old, sizeof old, "%s/.%s.old-XXXXXX", parent, base);
	if (!mkdtemp(tmp)) {
		cli_error(CMD, tmp, "cannot create: %s", strerror(errno));
		goto out;
	}
	have_tmp = 1;
	{ /* mkdtemp gives 0700; a model directory is 0777 less the umask, as mkdir gives */
		mode_t um = umask(0);
		umask(um);
		chmod(tmp, 0777 & ~um);
	}

	int rc = ts_attachment_foreach(st, collect_att, &al);
	if (rc < 0) {
		cli_error_ts(CMD, rc, "cannot list the files of %s", o->store_path);
		goto out;
	}

	/* Invariant 3: the shards. */
	bytes = calloc(n + 1, sizeof *bytes);
	shard_of = calloc(n + 1, sizeof *shard_of);
	buf = malloc(CHUNK);
	if (!bytes || !shard_of || !buf) {
		cli_error(CMD, NULL, "out of memory");
		goto out;
	}
	uint64_t cur = 0;
	for (size_t i = 0; i < n; i++) {
		bytes[i] = export_bytes(&v[i].info, o->want, o->modelopt);
		if (i == 0 || (cur > 0 && cur + bytes[i] > o->max_shard)) {
			if (i > 0)
				nshards++;
			cur = 0;
		}
		shard_of[i] = nshards;
		cur += bytes[i];
		total += bytes[i];
		if (o->modelopt && export_modelopt_ok(&v[i].info))
			n_mo++;
	}
	nshards = n ? nshards + 1 : 0;
	int modelopt_files = o->modelopt && n_mo > 0;
	for (size_t i = 0; i < al.n; i++)
		if (generated(al.v[i].name, nshards ? nshards : 1, modelopt_files)) {
			cli_error(CMD, al.v[i].name,
				  "an attached file has the name of a file the export writes");
			goto out;
		}

	progress pr;
	progress_begin(&pr, "export", total + al.bytes, 1, cli_quiet);
	for (size_t s = 0, i = 0; s < nshards; s++) {
		size_t j = i;
		export_result res;
		while (j < n && shard_of[j] == s)
			j++;
		if (nshards == 1)
			snprintf(path, sizeof path, "%s/model.safetensors", tmp);
		else
			snprintf(path, sizeof path, "%s/model-%05zu-of-%05zu.safetensors", tmp, s + 1,
				 nshards);
		if (export_file(st, v + i, j - i, o->want, o->modelopt, meta, nmeta, path, &pr,
				&res) < 0) {
			progress_clear(&pr);
			goto out;
		}
		i = j;
	}
	if (nshards > 1) {
		snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmp);
		if (write_index(path, v, shard_of, n, nshards, total, o->modelopt) < 0) {
			progress_clear(&pr);
			goto out;
		}
	}
	int spliced = 0;
	for (size_t i = 0; i < al.n; i++) {
		int splice = modelopt_files && !strcmp(al.v[i].name, "config.json");
		if (write_attachment(st, tmp, &al.v[i], buf, &pr, v, n, o->quant_algo, splice) < 0) {
			progress_clear(&pr);
			goto out;
		}
		spliced |= splice;
	}
	if (modelopt_files) {
		snprintf(path, sizeof path, "%s/hf_quant_config.json", tmp);
		FILE *f = fopen(path, "wx");
		if (!f) {
			progress_clear(&pr);
			cli_error(CMD, path, "cannot create: %s", strerror(errno));
			goto out;
		}
		write_hf_quant_config(f, v, n, o->quant_algo);
		if (ferror(f) | (fclose(f) != 0)) {
			progress_clear(&pr);
			cli_error(CMD, path, "write failed");
			goto out;
		}
	}
	progress_end(&pr);
	if (move_into_place(tmp, out, exists, old) < 0)
		goto out;
	have_tmp = 0;
	if (!cli_quiet) {
		char a[32], b[32];
		printf("export: %zu tensors in %zu shard%s (%s) and %zu files (%s) to %s/\n", n,
		       nshards, nshards == 1 ? "" : "s", progress_size(a, sizeof a, (double)total),
		       al.n, progress_size(b, sizeof b, (double)al.bytes), out);
		if (o->modelopt)
			printf("  ModelOpt NVFP4 layout: %zu tensors as U8 codes + F8_E4M3 scales + F32 "
			       "scale_2%s%s\n",
			       n_mo, modelopt_files ? "; hf_quant_config.json written" : "",
			       !modelopt_files ? " (no NVFP4 tensor: no quantization config written)"
			       : spliced ? ", quantization_config added to config.json"
					 : "; no config.json attached: quantization_config not written");
		if (modelopt_files && !strcmp(o->quant_algo, "NVFP4"))
			printf("  note: no input_scale (activation scales) in a store: NVFP4 (W4A4) "
			       "runtimes need them from a calibration (see --help)\n");
	}
	status = CLI_OK;
out:
	if (have_tmp)
		rm_tree(tmp);
	for (size_t i = 0; i < al.n; i++)
		free(al.v[i].name);
	free(al.v);
	free(bytes);
	free(shard_of);
	free(buf);
	free(outcopy);
	free(outcopy2);
	return status;
}
