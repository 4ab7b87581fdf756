/*
 * Attachments: files stored with the tensors (a model directory's config and tokenizer files).
 *
 * An attachment is a raw U8 tensor of shape [size] whose key in the tensors database is
 * ATTACH_PREFIX followed by its name, so everything a tensor has — checksummed pages, the
 * streaming writer, write groups, deletion, crash cleanup, ts_store_check() — it has too, with
 * no second storage path. The prefix begins with TS_RESERVED_KEY_BYTE (0xFF), which no valid
 * UTF-8 string and (since this module) no tensor name written through ts_writer_begin() starts
 * with: the two namespaces cannot meet (docs/FORMAT.md, section 3.1).
 *
 * Invariants
 *   1. Every key of the tensors database that starts with ATTACH_PREFIX holds an attachment;
 *      its record is raw U8, one dimension. A record that is not is reported as corrupt.
 *   2. An attachment name is a clean relative path (name_check()): whoever writes attachments
 *      out to a directory may join it to the directory without escaping it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "engine/format.h"
#include "engine/handle.h"
#include "engine/lmdbcheck.h"
#include "engine/record.h"
#include "engine/txn.h"
#include "engine/writer.h"

#define ATTACH_PREFIX "\xff" "file/"
#define PREFIX_LEN (sizeof(ATTACH_PREFIX) - 1)

_Static_assert(PREFIX_LEN + TS_MAX_ATTACHMENT_NAME == TS_MAX_NAME, "attachment key length");

/* Invariant 2. */
static int name_check(const char *name)
{
	size_t n;
	const char *c;

	if (!name)
		return ts__err(TS_EINVAL, "attachment name is NULL");
	n = strlen(name);
	if (n == 0 || n > TS_MAX_ATTACHMENT_NAME)
		return ts__err(TS_EINVAL, "attachment name of %zu bytes (1..%d allowed)", n,
			       TS_MAX_ATTACHMENT_NAME);
	for (c = name;;) {
		const char *e = strchr(c, '/');
		size_t len = e ? (size_t)(e - c) : strlen(c);
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return ts__err(TS_EINVAL,
				       "attachment name '%s' is not a relative path (empty, '.' or "
				       "'..' component, or a leading '/')",
				       name);
		if (!e)
			break;
		c = e + 1;
	}
	return 0;
}

/* The key of attachment @p name in @p key (TS_MAX_NAME + 1 bytes). */
static int make_key(char *key, const char *name)
{
	int rc = name_check(name);
	if (rc < 0)
		return rc;
	memcpy(key, ATTACH_PREFIX, PREFIX_LEN);
	strcpy(key + PREFIX_LEN, name);
	return 0;
}

/* Restate an error of the tensor layer in terms of the attachment. */
static int wrap(int rc, const char *name)
{
	if (rc == TS_ENOTFOUND)
		return ts__err(TS_ENOTFOUND, "no attachment named '%s'", name);
	return ts__err_wrap(rc, "attachment '%s'", name);
}

static int check_info(const ts_tensor_info *info, const char *name)
{
	if (info->ndim != 1 || info->codec.codec != TS_CODEC_RAW || info->codec.raw_dtype != TS_U8)
		return ts__err(TS_ECORRUPT, "attachment '%s': its record is not a U8 vector", name);
	return 0;
}

TS_API int ts_attachment_begin(ts_writer **out, ts_store *st, const char *name, uint64_t size,
			       const ts_write_opts *opts)
{
	char key[TS_MAX_NAME + 1];
	ts_codec_config cfg = ts_codec_config_default(TS_CODEC_RAW);
	uint64_t shape[1] = {size};
	int rc;

	if (!out)
		return ts__err(TS_EINVAL, "ts_attachment_begin: out is NULL");
	*out = NULL;
	if (opts && (opts->flags & TS_WRITE_ENCODED))
		return ts__err(TS_EINVAL, "attachment '%s': TS_WRITE_ENCODED does not apply",
			       name ? name : "");
	rc = make_key(key, name);
	if (rc < 0)
		return rc;
	cfg.raw_dtype = TS_U8;
	cfg.bits_per_value = 8;
	rc = ts__writer_begin(out, st, key, TS_U8, 1, shape, &cfg, opts);
	return rc < 0 ? wrap(rc, name) : 0;
}

/* The record of attachment @p name, checked to be a U8 vector (invariant 1). */
static int lookup(ts_tensor_info *info, char *key, ts_store *st, const char *name)
{
	int rc = make_key(key, name);
	if (rc == 0)
		rc = ts_tensor_info_get(info, st, key);
	if (rc < 0)
		return rc == TS_EINVAL ? rc : wrap(rc, name);
	return check_info(info, name);
}

TS_API int ts_attachment_size(uint64_t *size, ts_store *st, const char *name)
{
	char key[TS_MAX_NAME + 1];
	ts_tensor_info info;
	int rc;

	if (!size || !st)
		return ts__err(TS_EINVAL, "ts_attachment_size: %s is NULL", !size ? "size" : "store");
	rc = lookup(&info, key, st, name);
	if (rc < 0)
		return rc;
	*size = info.shape[0];
	return 0;
}

TS_API int ts_attachment_read(void *dst, ts_store *st, const char *name, uint64_t offset,
			      size_t size)
{
	char key[TS_MAX_NAME + 1];
	ts_tensor_info info;
	uint64_t count = size;
	int rc;

	if (!dst || !st)
		return ts__err(TS_EINVAL, "ts_attachment_read: %s is NULL", !dst ? "dst" : "store");
	rc = lookup(&info, key, st, name);
	if (rc < 0)
		return rc;
	if (offset > info.shape[0] || size > info.shape[0] - offset)
		return ts__err(TS_ERANGE, "attachment '%s': bytes %llu..+%zu past its %llu bytes",
			       name, (unsigned long long)offset, size,
			       (unsigned long long)info.shape[0]);
	if (size == 0)
		return 0;
	rc = ts_read_slice(st, key, 1, &offset, &count, TS_U8, dst, size);
	return rc < 0 ? wrap(rc, name) : 0;
}

typedef struct item {
	char *name;
	uint64_t size;
} item;

TS_API int ts_attachment_foreach(ts_store *st,
				 int (*cb)(void *ud, const char *name, uint64_t size), void *ud)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	item *v = NULL;
	size_t n = 0, cap = 0;
	int rc, mrc;

	if (!st || !cb)
		return ts__err(TS_EINVAL, "ts_attachment_foreach: %s is NULL",
			       !st ? "store" : "callback");
	rc = ts__txn_begin_read(st, &txn);
	if (rc < 0)
		return rc;
	rc = ts__lmdb_check_tree(st, txn, "tensors");
	if (rc < 0) {
		rc = ts__err_wrap(rc, "listing attachments");
		goto out;
	}
	mrc = mdb_cursor_open(txn, st->dbi_tensors, &cur);
	if (mrc) {
		rc = ts__err_from_mdb(mrc, "listing attachments");
		goto out;
	}
	key.mv_data = (void *)ATTACH_PREFIX;
	key.mv_size = PREFIX_LEN;
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		ts__tensor_rec rec;
		size_t nlen;
		if (key.mv_size < PREFIX_LEN || memcmp(key.mv_data, ATTACH_PREFIX, PREFIX_LEN))
			break;
		nlen = key.mv_size - PREFIX_LEN;
		if (nlen == 0 || key.mv_size > TS_MAX_NAME || memchr(key.mv_data, 0, key.mv_size)) {
			rc = ts__err(TS_ECORRUPT, "tensors database holds a malformed attachment key");
			goto out;
		}
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 16;
			item *nv = realloc(v, nc * sizeof *nv);
			if (!nv) {
				rc = ts__err(TS_ENOMEM, "listing attachments: out of memory");
				goto out;
			}
			v = nv;
			cap = nc;
		}
		v[n].name = malloc(nlen + 1);
		if (!v[n].name) {
			rc = ts__err(TS_ENOMEM, "listing attachments: out of memory");
			goto out;
		}
		memcpy(v[n].name, (const char *)key.mv_data + PREFIX_LEN, nlen);
		v[n].name[nlen] = '\0';
		n++;
		rc = ts__tensor_rec_decode_named(&rec, key.mv_data, key.mv_size, val.mv_data,
						 val.mv_size);
		if (rc < 0) {
			rc = ts__err_wrap(rc, "record of attachment '%s'", v[n - 1].name);
			goto out;
		}
		if (rec.ndim != 1 || rec.codec.codec != TS_CODEC_RAW ||
		    rec.codec.raw_dtype != TS_U8) {
			rc = ts__err(TS_ECORRUPT, "attachment '%s': its record is not a U8 vector",
				     v[n - 1].name);
			goto out;
		}
		v[n - 1].size = rec.shape[0];
	}
	if (mrc && mrc != MDB_NOTFOUND) {
		rc = ts__err_from_mdb(mrc, "listing attachments");
		goto out;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	ts__txn_abort(st, txn);
	txn = NULL;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = cb(ud, v[i].name, v[i].size);
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		ts__txn_abort(st, txn);
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	return rc;
}

TS_API int ts_attachment_delete(ts_store *st, const char *name)
{
	char key[TS_MAX_NAME + 1];
	int rc = make_key(key, name);
	if (rc < 0)
		return rc;
	rc = ts_tensor_delete(st, key);
	return rc < 0 ? wrap(rc, name) : 0;
}
