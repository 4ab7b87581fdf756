/*
 * Model directories for `tstore import STORE DIR`: the checkpoint, and every other regular
 * file as an attachment (include/tstore.h, "Attachments").
 *
 * Invariants
 *   1. Everything is decided by modeldir_scan() before the store is touched: a refused
 *      directory (a symlink out of it, an over-long name, several index files, no checkpoint)
 *      leaves the store exactly as it was, not even created.
 *   2. Names are built from directory entries joined with '/', never from file contents, and
 *      entries "." and ".." are never followed: an attachment name is always a clean relative
 *      path. A symlink is followed only when its target (resolved with realpath) lies inside
 *      the directory, and only to a regular file (a symlinked directory is skipped, so the walk
 *      cannot loop).
 *   3. The order is deterministic: entries sorted byte-wise at every level.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/cli/errbuf.h"
#include "tools/cli/modeldir.h"

#define CHUNK (4u << 20)
#define MAX_DEPTH 32

typedef struct scan {
	modeldir *md;
	const char *root; /* realpath of the directory */
	size_t root_len;
	uint64_t max_file;
	int no_files;
	char *err;
	size_t err_size;
	size_t cap_files, cap_skipped, cap_sources;
} scan;

static int seterr(scan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int seterr(scan *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_verrbuf(s->err, s->err_size, fmt, ap);
	va_end(ap);
	return -1;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

int modeldir_is_dir(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int push(md_file **v, size_t *n, size_t *cap, const char *rel, const char *path,
		uint64_t size, const char *why)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 32;
		md_file *nv = realloc(*v, nc * sizeof *nv);
		if (!nv)
			return -1;
		*v = nv;
		*cap = nc;
	}
	md_file *f = &(*v)[*n];
	memset(f, 0, sizeof *f);
	f->rel = strdup(rel);
	f->path = strdup(path);
	if (!f->rel || !f->path) {
		free(f->rel);
		free(f->path);
		return -1;
	}
	f->size = size;
	f->why = why;
	++*n;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of @p path, sorted byte-wise, without "." and "..". */
static char **list_dir(const char *path, size_t *count)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0, cap = 0;
	if (!d)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 32;
			char **nv = realloc(v, nc * sizeof *nv);
			if (!nv)
				goto fail;
			v = nv;
			cap = nc;
		}
		if (!(v[n] = strdup(e->d_name)))
			goto fail;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof *v, cmp_str);
	*count = n;
	return v ? v : calloc(1, sizeof *v);
fail:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return NULL;
}

/* Does the symlink at @p path resolve to something inside the directory? */
static int inside(const scan *s, const char *path)
{
	char real[PATH_MAX];
	if (!realpath(path, real))
		return 0;
	return !strncmp(real, s->root, s->root_len) &&
	       (real[s->root_len] == '/' || (s->root_len == 1 && s->root[0] == '/'));
}

static int walk(scan *s, const char *path, const char *rel, int depth)
{
	modeldir *md = s->md;
	size_t n = 0;
	char **names;
	int rc = 0;

	if (depth > MAX_DEPTH)
		return seterr(s, "%s: nested more than %d directories deep", path, MAX_DEPTH);
	names = list_dir(path, &n);
	if (!names)
		return seterr(s, "%s: cannot read the directory: %s", path, strerror(errno));
	for (size_t i = 0; i < n && rc == 0; i++) {
		char p[PATH_MAX], r[PATH_MAX];
		struct stat lb, sb;
		const char *nm = names[i];
		if ((size_t)snprintf(p, sizeof p, "%s/%s", path, nm) >= sizeof p ||
		    (size_t)snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", nm) >= sizeof r) {
			rc = seterr(s, "%s/%s: path too long", path, nm);
			break;
		}
		if (nm[0] == '.') /* hidden: .git, .cache, .gitattributes */
			continue;
		if (lstat(p, &lb) != 0) {
			rc = seterr(s, "%s: %s", p, strerror(errno));
			break;
		}
		sb = lb;
		if (S_ISLNK(lb.st_mode)) {
			if (!inside(s, p)) {
				rc = seterr(s, "%s: a symbolic link that leads outside %s (or nowhere): "
					       "refused",
					    p, md->dir);
				break;
			}
			if (stat(p, &sb) != 0) {
				rc = seterr(s, "%s: %s", p, strerror(errno));
				break;
			}
			if (S_ISDIR(sb.st_mode)) {
				if (push(&md->skipped, &md->nskipped, &s->cap_skipped, r, p, 0,
					 "a symbolic link to a directory") < 0)
					rc = seterr(s, "out of memory");
				continue;
			}
		}
		if (S_ISDIR(sb.st_mode)) {
			rc = walk(s, p, r, depth + 1);
			continue;
		}
		if (!S_ISREG(sb.st_mode)) {
			if (push(&md->skipped, &md->nskipped, &s->cap_skipped, r, p, 0,
				 "not a regular file") < 0)
				rc = seterr(s, "out of memory");
			continue;
		}
		/* A top-level checkpoint file: a source, not an attachment. */
		if (depth == 0 && (ends_with(nm, ".safetensors") || ends_with(nm, ".safetensors.index.json"))) {
			if (s->cap_sources == md->nsources) {
				size_t nc = s->cap_sources ? 2 * s->cap_sources : 8;
				char **nv = realloc(md->sources, nc * sizeof *nv);
				if (!nv) {
					rc = seterr(s, "out of memory");
					break;
				}
				md->sources = nv;
				s->cap_sources = nc;
			}
			if (!(md->sources[md->nsources] = strdup(p))) {
				rc = seterr(s, "out of memory");
				break;
			}
			md->nsources++;
			continue;
		}
		if (s->no_files)
			continue;
		if (strlen(r) > TS_MAX_ATTACHMENT_NAME) {
			rc = seterr(s, "%s: a name of %zu bytes; attachment names are at most %d", p,
				    strlen(r), TS_MAX_ATTACHMENT_NAME);
			break;
		}
		if ((uint64_t)sb.st_size > s->max_file) {
			if (push(&md->skipped, &md->nskipped, &s->cap_skipped, r, p,
				 (uint64_t)sb.st_size, "over the size limit") < 0)
				rc = seterr(s, "out of memory");
			continue;
		}
		if (push(&md->files, &md->nfiles, &s->cap_files, r, p, (uint64_t)sb.st_size, NULL) < 0)
			rc = seterr(s, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* Choose the checkpoint among the top-level sources (invariant 1). */
static int choose_sources(scan *s)
{
	modeldir *md = s->md;
	size_t nidx = 0, k = 0;
	char *idx = NULL, *model_idx = NULL;
	for (size_t i = 0; i < md->nsources; i++)
		if (ends_with(md->sources[i], ".safetensors.index.json")) {
			nidx++;
			idx = md->sources[i];
			if (ends_with(md->sources[i], "/model.safetensors.index.json"))
				model_idx = md->sources[i];
		}
	if (model_idx)
		idx = model_idx;
	else if (nidx > 1)
		return seterr(s, "%s: several *.safetensors.index.json files; import one of them by "
				 "name (or the shards)",
			      md->dir);
	if (!idx) {
		if (md->nsources == 0)
			return seterr(s, "%s: no *.safetensors file and no index in the directory",
				      md->dir);
		return 0; /* every top-level *.safetensors, in name order */
	}
	/* The index alone; the other top-level files become attachments if they are not its
	 * shards (modeldir_exclude() drops those once the index has been read). */
	for (size_t i = 0; i < md->nsources; i++) {
		char *p = md->sources[i];
		if (p == idx) {
			md->sources[k++] = p;
			continue;
		}
		if (ends_with(p, ".safetensors.index.json") || s->no_files) {
			free(p);
			continue;
		}
		struct stat sb;
		const char *rel = strrchr(p, '/') + 1;
		int rc = stat(p, &sb) != 0 ? seterr(s, "%s: %s", p, strerror(errno))
			 : (uint64_t)sb.st_size > s->max_file
				 ? push(&md->skipped, &md->nskipped, &s->cap_skipped, rel, p,
					(uint64_t)sb.st_size, "over the size limit")
				 : push(&md->files, &md->nfiles, &s->cap_files, rel, p,
					(uint64_t)sb.st_size, NULL);
		free(p);
		if (rc < 0) {
			for (size_t j = i + 1; j < md->nsources; j++)
				if (md->sources[j] != idx)
					free(md->sources[j]);
			md->nsources = k;
			if (!s->err[0])
				seterr(s, "out of memory");
			return -1;
		}
	}
	md->nsources = k;
	md->index = strrchr(idx, '/') + 1;
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const md_file *)a)->rel, ((const md_file *)b)->rel);
}

int modeldir_scan(modeldir *md, const char *dir, uint64_t max_file, int no_files, char *err,
		  size_t err_size)
{
	char root[PATH_MAX];
	scan s;
	memset(md, 0, sizeof *md);
	memset(&s, 0, sizeof s);
	s.md = md;
	s.max_file = max_file;
	s.no_files = no_files;
	s.err = err;
	s.err_size = err_size;
	err[0] = '\0';
	md->dir = strdup(dir);
	if (!md->dir)
		return seterr(&s, "out of memory");
	if (!realpath(dir, root))
		return seterr(&s, "%s: %s", dir, strerror(errno));
	s.root = root;
	s.root_len = strlen(root);
	if (walk(&s, dir, "", 0) < 0 || choose_sources(&s) < 0) {
		modeldir_free(md);
		return -1;
	}
	if (md->nfiles)
		qsort(md->files, md->nfiles, sizeof *md->files, cmp_file);
	if (md->nskipped)
		qsort(md->skipped, md->nskipped, sizeof *md->skipped, cmp_file);
	return 0;
}

/* Drop from @p v the files that are one of @p paths (same device and inode). */
static void drop_paths(md_file *v, size_t *count, char *const *paths, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < *count; i++) {
		struct stat a, b;
		int drop = 0;
		for (size_t j = 0; j < n && !drop; j++)
			drop = stat(v[i].path, &a) == 0 && stat(paths[j], &b) == 0 &&
			       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
		if (drop) {
			free(v[i].rel);
			free(v[i].path);
			continue;
		}
		v[k++] = v[i];
	}
	*count = k;
}

void modeldir_exclude(modeldir *md, char *const *paths, size_t n)
{
	drop_paths(md->files, &md->nfiles, paths, n);
	drop_paths(md->skipped, &md->nskipped, paths, n);
	md->file_bytes = 0;
	for (size_t i = 0; i < md->nfiles; i++)
		md->file_bytes += md->files[i].size;
}

int modeldir_lookup(modeldir *md, ts_store *st, const char *cmd)
{
	for (size_t i = 0; i < md->nfiles; i++) {
		uint64_t size;
		int rc = ts_attachment_size(&size, st, md->files[i].rel);
		if (rc == 0)
			md->files[i].exists = 1;
		else if (rc != TS_ENOTFOUND) {
			cli_error_ts(cmd, rc, "cannot look up file '%s'", md->files[i].rel);
			return rc;
		}
	}
	return 0;
}

static int write_one(const md_file *f, ts_store *st, ts_group *g, unsigned flags, uint8_t *buf,
		     progress *pr, volatile sig_atomic_t *interrupted, const char *cmd)
{
	ts_write_opts wo;
	ts_writer *w = NULL;
	struct stat sb;
	uint64_t done = 0;
	int rc, fd = open(f->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		cli_error(cmd, f->path, "cannot open: %s", strerror(errno));
		return TS_EIO;
	}
	if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != f->size) {
		cli_error(cmd, f->path, "changed during the import (%llu bytes when scanned)",
			  (unsigned long long)f->size);
		close(fd);
		return TS_EINVAL;
	}
	ts_write_opts_init(&wo);
	wo.flags = flags;
	wo.group = g;
	rc = ts_attachment_begin(&w, st, f->rel, f->size, &wo);
	while (rc == 0 && done < f->size) {
		size_t want = f->size - done < CHUNK ? (size_t)(f->size - done) : CHUNK;
		ssize_t got = read(fd, buf, want);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			progress_clear(pr);
			cli_error(cmd, f->path, "%s", got < 0 ? strerror(errno) : "shorter than scanned");
			ts_writer_abort(w);
			close(fd);
			return TS_EIO;
		}
		if (*interrupted) {
			ts_writer_abort(w);
			close(fd);
			return TS_ECANCELED; /* not an error to report */
		}
		rc = ts_writer_append(w, buf, (size_t)got);
		done += (uint64_t)got;
		progress_add(pr, (uint64_t)got, f->rel);
	}
	close(fd);
	if (rc == 0)
		rc = ts_writer_commit(NULL, w);
	else
		ts_writer_abort(w);
	if (rc < 0) {
		progress_clear(pr);
		cli_error_ts(cmd, rc, "cannot import file '%s'", f->rel);
	}
	return rc;
}

int modeldir_write_files(const modeldir *md, ts_store *st, ts_group *g, int replace,
			 int skip_existing, progress *pr, volatile sig_atomic_t *interrupted,
			 const char *cmd, size_t *written, uint64_t *written_bytes)
{
	uint8_t *buf = malloc(CHUNK);
	int rc = 0;
	*written = 0;
	*written_bytes = 0;
	if (!buf) {
		cli_error(cmd, NULL, "out of memory");
		return TS_ENOMEM;
	}
	for (size_t i = 0; i < md->nfiles && rc == 0; i++) {
		const md_file *f = &md->files[i];
		if (f->exists && skip_existing)
			continue;
		if (*interrupted) {
			rc = TS_ECANCELED;
			break;
		}
		rc = write_one(f, st, g, f->exists && replace ? TS_WRITE_REPLACE : 0, buf, pr,
			       interrupted, cmd);
		if (rc == 0) {
			++*written;
			*written_bytes += f->size;
		}
	}
	free(buf);
	return rc;
}

void modeldir_free(modeldir *md)
{
	for (size_t i = 0; i < md->nsources; i++)
		free(md->sources[i]);
	free(md->sources);
	for (size_t i = 0; i < md->nfiles; i++) {
		free(md->files[i].rel);
		free(md->files[i].path);
	}
	free(md->files);
	for (size_t i = 0; i < md->nskipped; i++) {
		free(md->skipped[i].rel);
		free(md->skipped[i].path);
	}
	free(md->skipped);
	free(md->dir);
	memset(md, 0, sizeof *md);
}
