/*
 * safetensors: strict reader (single files and sharded checkpoints) and header writer.
 * See tools/cli/safetensors.h for the invariants.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli/errbuf.h"
#include "tools/cli/json.h"
#include "tools/cli/safetensors.h"

static const struct {
	const char *name;
	ts_dtype dtype;
	size_t size;
} st_dtypes[] = {
	{"F64", TS_F64, 8},	      {"F32", TS_F32, 4},	  {"F16", TS_F16, 2},
	{"BF16", TS_BF16, 2},	      {"F8_E4M3", TS_F8_E4M3, 1}, {"F8_E5M2", TS_F8_E5M2, 1},
	{"I64", TS_I64, 8},	      {"I32", TS_I32, 4},	  {"I16", TS_I16, 2},
	{"I8", TS_I8, 1},	      {"U64", TS_U64, 8},	  {"U32", TS_U32, 4},
	{"U16", TS_U16, 2},	      {"U8", TS_U8, 1},		  {"BOOL", TS_BOOL, 1},
};

/* dtypes of the safetensors specification that tstore does not handle */
static const char *const st_unsupported[] = {"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64"};

static size_t dtype_size(ts_dtype d)
{
	for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
		if (st_dtypes[i].dtype == d)
			return st_dtypes[i].size;
	return 0;
}

static const char *dtype_name(ts_dtype d)
{
	for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
		if (st_dtypes[i].dtype == d)
			return st_dtypes[i].name;
	return NULL;
}

/* A name safe to print in one line: control characters and invalid bytes escaped, truncated. */
static void printable(char *dst, size_t dst_size, const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 8 < dst_size; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7F || c >= 0x80)
			n += (size_t)snprintf(dst + n, dst_size - n, "\\x%02x", c);
		else
			dst[n++] = (char)c;
	}
	if (n + 8 >= dst_size && dst_size > 4)
		memcpy(dst + dst_size - 4, "...", 4), n = dst_size - 1;
	dst[n] = '\0';
}

static int cmp_offset(const void *a, const void *b)
{
	const st_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static int cmp_name_ptr(const void *a, const void *b)
{
	const st_tensor *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int parse_tensor(st_tensor *t, const char *where, const char *name, const json_value *v,
			char *err, size_t err_size)
{
	const json_value *dt, *sh, *off;
	if (v->type != JSON_OBJECT)
		return cli_errbuf(err, err_size, "%s: tensor '%s': entry is not an object", where,
				  name);
	for (size_t i = 0; i < v->u.obj.count; i++) {
		const char *k = v->u.obj.members[i].key;
		if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
			return cli_errbuf(err, err_size,
					  "%s: tensor '%s': unexpected field '%.40s'", where, name,
					  k);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(k, v->u.obj.members[j].key))
				return cli_errbuf(err, err_size,
						  "%s: tensor '%s': duplicate field '%s'", where,
						  name, k);
	}
	dt = json_get(v, "dtype");
	sh = json_get(v, "shape");
	off = json_get(v, "data_offsets");
	if (!dt || dt->type != JSON_STRING)
		return cli_errbuf(err, err_size, "%s: tensor '%s': missing or non-string dtype",
				  where, name);
	if (!sh || sh->type != JSON_ARRAY)
		return cli_errbuf(err, err_size, "%s: tensor '%s': missing or non-array shape",
				  where, name);
	if (!off || off->type != JSON_ARRAY || off->u.arr.count != 2)
		return cli_errbuf(err, err_size,
				  "%s: tensor '%s': data_offsets is not [begin, end]", where, name);

	size_t esize = 0;
	for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
		if (!strcmp(dt->u.str.s, st_dtypes[i].name)) {
			t->dtype = st_dtypes[i].dtype;
			esize = st_dtypes[i].size;
		}
	if (!esize) {
		char pd[64];
		printable(pd, sizeof pd, dt->u.str.s, dt->u.str.len);
		for (size_t i = 0; i < sizeof st_unsupported / sizeof st_unsupported[0]; i++)
			if (!strcmp(dt->u.str.s, st_unsupported[i]))
				return cli_errbuf(err, err_size,
						  "%s: tensor '%s': unsupported dtype '%s'", where,
						  name, pd);
		return cli_errbuf(err, err_size, "%s: tensor '%s': unknown dtype '%s'", where, name,
				  pd);
	}

	if (sh->u.arr.count > ST_MAX_DIMS)
		return cli_errbuf(err, err_size, "%s: tensor '%s': %zu dimensions (at most %d)",
				  where, name, sh->u.arr.count, ST_MAX_DIMS);
	t->ndim = (int)sh->u.arr.count;
	uint64_t n = 1;
	int ovf = 0;
	for (int d = 0; d < t->ndim; d++) {
		const json_value *x = sh->u.arr.items[d];
		if (x->type != JSON_NUMBER || !x->u.num.is_uint)
			return cli_errbuf(
				err, err_size,
				"%s: tensor '%s': dimension %d is not a non-negative integer",
				where, name, d);
		t->shape[d] = x->u.num.u;
		if (t->shape[d] && n > UINT64_MAX / t->shape[d])
			ovf = 1;
		else
			n *= t->shape[d];
	}
	if (ovf)
		return cli_errbuf(err, err_size,
				  "%s: tensor '%s': the product of its dimensions overflows", where,
				  name);
	if (n > UINT64_MAX / esize)
		return cli_errbuf(err, err_size, "%s: tensor '%s': its byte size overflows", where,
				  name);
	t->nelem = n;
	for (int i = 0; i < 2; i++) {
		const json_value *x = off->u.arr.items[i];
		if (x->type != JSON_NUMBER || !x->u.num.is_uint)
			return cli_errbuf(
				err, err_size,
				"%s: tensor '%s': data_offsets are not non-negative integers",
				where, name);
	}
	t->begin = off->u.arr.items[0]->u.num.u;
	t->end = off->u.arr.items[1]->u.num.u;
	if (t->end < t->begin)
		return cli_errbuf(err, err_size,
				  "%s: tensor '%s': data_offsets end %llu before begin %llu", where,
				  name, (unsigned long long)t->end, (unsigned long long)t->begin);
	if (t->end - t->begin != n * esize)
		return cli_errbuf(err, err_size,
				  "%s: tensor '%s': shape and dtype give %llu bytes but "
				  "data_offsets span %llu",
				  where, name, (unsigned long long)(n * esize),
				  (unsigned long long)(t->end - t->begin));
	return 0;
}

/* The string members of __metadata__ object @p obj into *out (*count entries; the caller
 * frees them, also after a failure). 0 or -1 with a message in @p err. */
static int meta_from_object(const json_value *obj, st_meta **out, size_t *count,
			    const char *where, char *err, size_t err_size)
{
	size_t mc;

	if (obj->type != JSON_OBJECT)
		return cli_errbuf(err, err_size, "%s: __metadata__ is not an object", where);
	mc = obj->u.obj.count;
	*out = calloc(mc ? mc : 1, sizeof **out);
	if (!*out)
		return cli_errbuf(err, err_size, "%s: out of memory", where);
	for (size_t j = 0; j < mc; j++) {
		const json_member *e = &obj->u.obj.members[j];
		if (e->value->type != JSON_STRING)
			return cli_errbuf(err, err_size,
					  "%s: __metadata__ value of '%.60s' is not a string",
					  where, e->key);
		(*out)[j].key = strdup(e->key);
		(*out)[j].value = strdup(e->value->u.str.s);
		(*count)++;
		if (!(*out)[j].key || !(*out)[j].value)
			return cli_errbuf(err, err_size, "%s: out of memory", where);
	}
	return 0;
}

int st_parse_header(st_file *f, const char *header, size_t header_len, uint64_t data_size,
		    char *err, size_t err_size)
{
	const char *where = f->path ? f->path : "safetensors";
	json_value *root = NULL;
	char jerr[160];
	int rc = -1;

	if (json_parse(&root, header, header_len, jerr, sizeof jerr) < 0)
		return cli_errbuf(err, err_size, "%s: header is not valid JSON: %s", where, jerr);
	if (root->type != JSON_OBJECT) {
		cli_errbuf(err, err_size, "%s: header is not a JSON object", where);
		goto out;
	}
	size_t nt = 0;
	for (size_t i = 0; i < root->u.obj.count; i++)
		if (strcmp(root->u.obj.members[i].key, "__metadata__") != 0)
			nt++;
	f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
	if (!f->tensors) {
		cli_errbuf(err, err_size, "%s: out of memory", where);
		goto out;
	}
	int have_meta = 0;
	for (size_t i = 0; i < root->u.obj.count; i++) {
		const json_member *m = &root->u.obj.members[i];
		char pname[200];
		printable(pname, sizeof pname, m->key, m->key_len);
		if (!strcmp(m->key, "__metadata__") && m->key_len == strlen("__metadata__")) {
			if (have_meta++) {
				cli_errbuf(err, err_size, "%s: duplicate __metadata__", where);
				goto out;
			}
			if (meta_from_object(m->value, &f->meta, &f->meta_count, where, err,
					     err_size) < 0)
				goto out;
			continue;
		}
		if (m->key_len == 0) {
			cli_errbuf(err, err_size, "%s: a tensor has an empty name", where);
			goto out;
		}
		if (memchr(m->key, '\0', m->key_len)) {
			cli_errbuf(err, err_size, "%s: tensor '%s': name contains a NUL character",
				   where, pname);
			goto out;
		}
		if (m->key_len > TS_MAX_NAME) {
			cli_errbuf(err, err_size,
				   "%s: tensor '%.60s...': name longer than %d bytes", where, pname,
				   TS_MAX_NAME);
			goto out;
		}
		/* The JSON parser already rejected invalid UTF-8 and lone surrogates. */
		st_tensor *t = &f->tensors[f->count];
		if (parse_tensor(t, where, pname, m->value, err, err_size) < 0)
			goto out;
		t->name = strdup(m->key);
		if (!t->name) {
			cli_errbuf(err, err_size, "%s: out of memory", where);
			goto out;
		}
		f->count++;
	}
	/* Duplicate names: sort a pointer array by name. */
	if (f->count > 1) {
		st_tensor **by = malloc(f->count * sizeof *by);
		if (!by) {
			cli_errbuf(err, err_size, "%s: out of memory", where);
			goto out;
		}
		for (size_t i = 0; i < f->count; i++)
			by[i] = &f->tensors[i];
		qsort(by, f->count, sizeof *by, cmp_name_ptr);
		for (size_t i = 1; i < f->count; i++)
			if (!strcmp(by[i - 1]->name, by[i]->name)) {
				char pname[200];
				printable(pname, sizeof pname, by[i]->name, strlen(by[i]->name));
				cli_errbuf(err, err_size, "%s: tensor '%s': duplicate name", where,
					   pname);
				free(by);
				goto out;
			}
		free(by);
	}
	/* The tensors must tile the data buffer: no overlap, no gap, nothing past the end. */
	qsort(f->tensors, f->count, sizeof *f->tensors, cmp_offset);
	uint64_t pos = 0;
	for (size_t i = 0; i < f->count; i++) {
		st_tensor *t = &f->tensors[i];
		char pname[200];
		printable(pname, sizeof pname, t->name, strlen(t->name));
		if (t->end > data_size) {
			cli_errbuf(err, err_size,
				   "%s: tensor '%s': data_offsets [%llu, %llu] past the end of the "
				   "data (%llu bytes)",
				   where, pname, (unsigned long long)t->begin,
				   (unsigned long long)t->end, (unsigned long long)data_size);
			goto out;
		}
		if (t->begin < pos) {
			cli_errbuf(err, err_size,
				   "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor "
				   "'%.200s'",
				   where, pname, (unsigned long long)t->begin,
				   (unsigned long long)t->end, f->tensors[i - 1].name);
			goto out;
		}
		if (t->begin > pos) {
			cli_errbuf(err, err_size,
				   "%s: tensor '%s': gap of %llu unused bytes before its data at "
				   "offset %llu",
				   where, pname, (unsigned long long)(t->begin - pos),
				   (unsigned long long)t->begin);
			goto out;
		}
		pos = t->end;
	}
	if (pos != data_size) {
		cli_errbuf(err, err_size,
			   "%s: %llu bytes of data after the last tensor (at %llu of %llu)", where,
			   (unsigned long long)(data_size - pos), (unsigned long long)pos,
			   (unsigned long long)data_size);
		goto out;
	}
	rc = 0;
out:
	json_free(root);
	return rc;
}

static int parse_image(st_file *f, const uint8_t *buf, size_t size, char *err, size_t err_size)
{
	const char *where = f->path ? f->path : "safetensors";
	if (size < 8)
		return cli_errbuf(err, err_size,
				  "%s: %zu bytes: too short for the 8-byte header length", where,
				  size);
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | buf[i];
	if (n > ST_MAX_HEADER)
		return cli_errbuf(err, err_size,
				  "%s: header length %llu exceeds the limit of %u bytes", where,
				  (unsigned long long)n, ST_MAX_HEADER);
	if (n > size - 8)
		return cli_errbuf(
			err, err_size,
			"%s: header length %llu runs past the end of the file (%zu bytes)", where,
			(unsigned long long)n, size);
	if (n < 2)
		return cli_errbuf(err, err_size,
				  "%s: header length %llu is too short for a JSON object", where,
				  (unsigned long long)n);
	f->header_len = n;
	f->data_start = 8 + n;
	if (st_parse_header(f, (const char *)buf + 8, n, size - 8 - n, err, err_size) < 0)
		return -1;
	for (size_t i = 0; i < f->count; i++)
		f->tensors[i].data = buf + f->data_start + f->tensors[i].begin;
	return 0;
}

int st_parse_buffer(st_file *f, const uint8_t *buf, size_t size, char *err, size_t err_size)
{
	int rc = parse_image(f, buf, size, err, err_size);
	if (rc < 0) {
		char *path = f->path;
		f->path = NULL;
		st_close(f);
		f->path = path;
	}
	return rc;
}

int st_open(st_file *f, const char *path, char *err, size_t err_size)
{
	struct stat sb;
	memset(f, 0, sizeof *f);
	f->fd = -1;
	f->path = strdup(path);
	if (!f->path)
		return cli_errbuf(err, err_size, "%s: out of memory", path);
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		cli_errbuf(err, err_size, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(f->fd, &sb) < 0) {
		cli_errbuf(err, err_size, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		cli_errbuf(err, err_size, "%s: not a regular file", path);
		goto fail;
	}
	f->map_size = (size_t)sb.st_size;
	if (f->map_size < 8) {
		cli_errbuf(err, err_size, "%s: %zu bytes: too short for the 8-byte header length",
			   path, f->map_size);
		goto fail;
	}
	void *m = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, f->fd, 0);
	if (m == MAP_FAILED) {
		cli_errbuf(err, err_size, "%s: cannot map: %s", path, strerror(errno));
		goto fail;
	}
	f->map = m;
	if (parse_image(f, f->map, f->map_size, err, err_size) < 0)
		goto fail;
	return 0;
fail:
	st_close(f);
	return -1;
}

void st_close(st_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->count; i++)
		free(f->tensors[i].name);
	free(f->tensors);
	st_meta_free(f->meta, f->meta_count);
	if (f->map && f->fd >= 0)
		munmap((void *)f->map, f->map_size);
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	memset(f, 0, sizeof *f);
	f->fd = -1;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
	for (size_t i = 0; i < f->count; i++)
		if (!strcmp(f->tensors[i].name, name))
			return &f->tensors[i];
	return NULL;
}

/* -- Checkpoints -------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static int add_file(st_checkpoint *ck, const char *path, char *err, size_t err_size)
{
	for (size_t i = 0; i < ck->file_count; i++)
		if (!strcmp(ck->files[i].path, path))
			return cli_errbuf(err, err_size, "%s: given more than once", path);
	st_file *nf = realloc(ck->files, (ck->file_count + 1) * sizeof *nf);
	if (!nf)
		return cli_errbuf(err, err_size, "%s: out of memory", path);
	ck->files = nf;
	if (st_open(&ck->files[ck->file_count], path, err, err_size) < 0)
		return -1;
	ck->file_count++;
	return 0;
}

/* Read a whole small file (the index) into memory. */
static char *slurp(const char *path, size_t *len, char *err, size_t err_size)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	if (!fp) {
		cli_errbuf(err, err_size, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(fp, 0, SEEK_END) == 0) {
		long n = ftell(fp);
		if (n < 0 || (unsigned long)n > ST_MAX_HEADER) {
			cli_errbuf(err, err_size, "%s: index file too large", path);
			fclose(fp);
			return NULL;
		}
		rewind(fp);
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, fp) == (size_t)n) {
			*len = (size_t)n;
			buf[n] = '\0';
			fclose(fp);
			return buf;
		}
	}
	cli_errbuf(err, err_size, "%s: cannot read", path);
	free(buf);
	fclose(fp);
	return NULL;
}

static int open_index(st_checkpoint *ck, const char *path, char *err, size_t err_size)
{
	size_t len = 0, first = ck->file_count;
	char jerr[160];
	json_value *root = NULL;
	int rc = -1;
	char *text = slurp(path, &len, err, err_size);
	if (!text)
		return -1;
	char *dircopy = strdup(path);
	if (!dircopy) {
		free(text);
		return cli_errbuf(err, err_size, "%s: out of memory", path);
	}
	const char *dir = dirname(dircopy);
	if (json_parse(&root, text, len, jerr, sizeof jerr) < 0) {
		cli_errbuf(err, err_size, "%s: not valid JSON: %s", path, jerr);
		goto out;
	}
	const json_value *wm = json_get(root, "weight_map");
	if (!wm || wm->type != JSON_OBJECT) {
		cli_errbuf(err, err_size, "%s: no \"weight_map\" object", path);
		goto out;
	}
	/* Open each distinct shard once, in order of first mention. */
	for (size_t i = 0; i < wm->u.obj.count; i++) {
		const json_value *v = wm->u.obj.members[i].value;
		if (v->type != JSON_STRING) {
			cli_errbuf(err, err_size,
				   "%s: weight_map entry '%.100s' is not a file name", path,
				   wm->u.obj.members[i].key);
			goto out;
		}
		if (strchr(v->u.str.s, '/') || !strcmp(v->u.str.s, "..") || !v->u.str.s[0]) {
			cli_errbuf(
				err, err_size,
				"%s: weight_map names shard '%.100s' outside the index's directory",
				path, v->u.str.s);
			goto out;
		}
		char shard[4096];
		if ((size_t)snprintf(shard, sizeof shard, "%s/%s", dir, v->u.str.s) >=
		    sizeof shard) {
			cli_errbuf(err, err_size, "%s: shard path too long", path);
			goto out;
		}
		int seen = 0;
		for (size_t j = first; j < ck->file_count; j++)
			if (!strcmp(ck->files[j].path, shard))
				seen = 1;
		if (!seen && add_file(ck, shard, err, err_size) < 0)
			goto out;
	}
	/* Every entry in its shard, and every shard tensor in the map. */
	size_t mapped = 0;
	for (size_t i = 0; i < wm->u.obj.count; i++) {
		const char *name = wm->u.obj.members[i].key;
		char shard[4096];
		snprintf(shard, sizeof shard, "%s/%s", dir, wm->u.obj.members[i].value->u.str.s);
		for (size_t j = first; j < ck->file_count; j++) {
			if (strcmp(ck->files[j].path, shard))
				continue;
			if (!st_find(&ck->files[j], name)) {
				cli_errbuf(err, err_size,
					   "%s: tensor '%.200s' is listed in the weight_map but "
					   "not in %s",
					   path, name, shard);
				goto out;
			}
		}
	}
	for (size_t j = first; j < ck->file_count; j++)
		mapped += ck->files[j].count;
	if (mapped != wm->u.obj.count) {
		cli_errbuf(err, err_size,
			   "%s: the weight_map lists %zu tensors but its shards hold %zu "
			   "(duplicates or unlisted tensors)",
			   path, wm->u.obj.count, mapped);
		goto out;
	}
	rc = 0;
out:
	json_free(root);
	free(dircopy);
	free(text);
	return rc;
}

int st_checkpoint_open(st_checkpoint *ck, char *const *paths, size_t npaths, char *err,
		       size_t err_size)
{
	memset(ck, 0, sizeof *ck);
	for (size_t i = 0; i < npaths; i++) {
		int rc = ends_with(paths[i], ".json") ? open_index(ck, paths[i], err, err_size)
						      : add_file(ck, paths[i], err, err_size);
		if (rc < 0)
			goto fail;
	}
	size_t total = 0;
	for (size_t i = 0; i < ck->file_count; i++)
		total += ck->files[i].count;
	ck->tensors = malloc((total ? total : 1) * sizeof *ck->tensors);
	if (!ck->tensors) {
		cli_errbuf(err, err_size, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < ck->file_count; i++)
		for (size_t j = 0; j < ck->files[i].count; j++) {
			ck->files[i].tensors[j].file_index = (int)i;
			ck->tensors[ck->count++] = &ck->files[i].tensors[j];
		}
	qsort(ck->tensors, ck->count, sizeof *ck->tensors, cmp_name_ptr);
	for (size_t i = 1; i < ck->count; i++)
		if (!strcmp(ck->tensors[i - 1]->name, ck->tensors[i]->name)) {
			cli_errbuf(err, err_size, "tensor '%.200s' appears in both %s and %s",
				   ck->tensors[i]->name,
				   ck->files[ck->tensors[i - 1]->file_index].path,
				   ck->files[ck->tensors[i]->file_index].path);
			goto fail;
		}
	return 0;
fail:
	st_checkpoint_close(ck);
	return -1;
}

void st_checkpoint_close(st_checkpoint *ck)
{
	for (size_t i = 0; i < ck->file_count; i++)
		st_close(&ck->files[i]);
	free(ck->files);
	free(ck->tensors);
	memset(ck, 0, sizeof *ck);
}

const st_tensor *st_checkpoint_find(const st_checkpoint *ck, const char *name)
{
	size_t lo = 0, hi = ck->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ck->tensors[mid]->name, name);
		if (!c)
			return ck->tensors[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* -- Writer ------------------------------------------------------------------------------- */

uint64_t st_tensor_bytes(const st_out_tensor *t, int *ovf)
{
	uint64_t n = dtype_size(t->dtype);
	*ovf = 0;
	for (int d = 0; d < t->ndim; d++) {
		if (t->shape[d] && n > UINT64_MAX / t->shape[d]) {
			*ovf = 1;
			return 0;
		}
		n *= t->shape[d];
	}
	return n;
}

/* @p count entries as a JSON object of strings. */
static void write_meta(FILE *m, const st_meta *meta, size_t count)
{
	fputc('{', m);
	for (size_t i = 0; i < count; i++) {
		if (i)
			fputc(',', m);
		json_write_string(m, meta[i].key, strlen(meta[i].key));
		fputc(':', m);
		json_write_string(m, meta[i].value, strlen(meta[i].value));
	}
	fputc('}', m);
}

int st_write_header(FILE *f, const st_out_tensor *t, size_t n, const st_meta *meta,
		    size_t meta_count, uint64_t *data_start, uint64_t *offsets)
{
	char *hdr = NULL;
	size_t hlen = 0;
	FILE *m = open_memstream(&hdr, &hlen);
	if (!m)
		return -1;
	uint64_t pos = 0;
	int ovf = 0;
	fputc('{', m);
	int first = 1;
	if (meta_count) {
		fputs("\"__metadata__\":", m);
		write_meta(m, meta, meta_count);
		first = 0;
	}
	for (size_t i = 0; i < n; i++) {
		const char *dn = dtype_name(t[i].dtype);
		uint64_t b = st_tensor_bytes(&t[i], &ovf);
		if (!dn || ovf || b > UINT64_MAX - pos) {
			fclose(m);
			free(hdr);
			errno = dn ? EOVERFLOW : EINVAL;
			return -1;
		}
		if (!first)
			fputc(',', m);
		first = 0;
		json_write_string(m, t[i].name, strlen(t[i].name));
		fprintf(m, ":{\"dtype\":\"%s\",\"shape\":[", dn);
		for (int d = 0; d < t[i].ndim; d++)
			fprintf(m, "%s%llu", d ? "," : "", (unsigned long long)t[i].shape[d]);
		fprintf(m, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)pos,
			(unsigned long long)(pos + b));
		if (offsets)
			offsets[i] = pos;
		pos += b;
	}
	fputc('}', m);
	if (fclose(m) != 0) {
		free(hdr);
		return -1;
	}
	/* Pad with spaces so that the data buffer starts 8-byte aligned. */
	size_t padded = (hlen + 7) & ~(size_t)7;
	uint8_t len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
	int rc = 0;
	if (fwrite(len8, 1, 8, f) != 8 || fwrite(hdr, 1, hlen, f) != hlen)
		rc = -1;
	for (size_t i = hlen; rc == 0 && i < padded; i++)
		if (fputc(' ', f) == EOF)
			rc = -1;
	free(hdr);
	if (data_start)
		*data_start = 8 + padded;
	return rc;
}

int st_meta_parse(st_meta **out, size_t *count, const char *text, size_t len, char *err,
		  size_t err_size)
{
	json_value *root = NULL;
	char jerr[160];
	int rc;

	*out = NULL;
	*count = 0;
	if (json_parse(&root, text, len, jerr, sizeof jerr) < 0)
		return cli_errbuf(err, err_size, "the store's metadata is not valid JSON: %s",
				  jerr);
	rc = meta_from_object(root, out, count, "the store's metadata", err, err_size);
	json_free(root);
	if (rc < 0) {
		st_meta_free(*out, *count);
		*out = NULL;
		*count = 0;
	}
	return rc;
}

void st_meta_free(st_meta *meta, size_t count)
{
	for (size_t i = 0; meta && i < count; i++) {
		free(meta[i].key);
		free(meta[i].value);
	}
	free(meta);
}

char *st_meta_json(const st_meta *meta, size_t count, size_t *len)
{
	char *text = NULL;
	FILE *m = open_memstream(&text, len);

	if (!m)
		return NULL;
	write_meta(m, meta, count);
	if (fclose(m) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
