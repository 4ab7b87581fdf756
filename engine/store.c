/*
 * The store: one LMDB environment in one file (MDB_NOSUBDIR), its four named databases, the
 * meta records that make it a tstore store, transactions, and the growth of LMDB's map.
 *
 * Invariants
 *   1. A store file always holds the meta keys "format", "creator", "created" and "next_id"
 *      once its creating transaction has committed; a file without them is not a store.
 *   2. A read-only open creates nothing: no data file, no database, no meta key.
 *   3. Every transaction holds map_lock shared from begin to end (engine/store.h invariant 5);
 *      mdb_env_set_mapsize() runs only with map_lock held exclusively, hence with no
 *      transaction of this process active.
 *   4. map_base is the address at which the data file's first byte is mapped; it is re-read
 *      from /proc/self/maps after every remap, because the reader turns map addresses of LMDB
 *      overflow pages into file offsets with it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "engine/store.h"
#include "engine/tiering.h"

/* Map sizes: the first map is large (it costs address space only, no file space, since we do
 * not use MDB_WRITEMAP) and grows by doubling. */
#define MAP_SIZE_DEFAULT (64ull << 30)
#define MAP_SIZE_MIN (1ull << 20)
#define MAP_ALIGN (1ull << 20)

#define META_FORMAT "format"
#define META_CREATOR "creator"
#define META_CREATED "created"
#define META_NEXT_ID "next_id"
#define FORMAT_MAGIC "TSTR"

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

TS_API void ts_open_opts_init(ts_open_opts *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->flags = 0;
	opts->io = TS_IO_DEFAULT;
	opts->cache_bytes = -1;
	opts->map_size = 0;
	opts->threads = 0;
	opts->map_max = 0;
}

int ts__err_from_mdb(int rc, const char *what)
{
	const char *msg = mdb_strerror(rc);
	int code;

	if (!what)
		what = "store";
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		code = TS_ENOTFOUND;
		break;
	case MDB_KEYEXIST:
		code = TS_EEXIST;
		break;
	case MDB_MAP_FULL:
		code = TS_ENOSPC;
		break;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_INCOMPATIBLE:
	case MDB_BAD_DBI:
		code = TS_ECORRUPT;
		break;
	case MDB_VERSION_MISMATCH:
		code = TS_EVERSION;
		break;
	case MDB_READERS_FULL:
	case MDB_MAP_RESIZED:
	case MDB_BAD_RSLOT:
		code = TS_EBUSY;
		break;
	case MDB_BAD_VALSIZE:
		code = TS_EINVAL;
		break;
	case MDB_PANIC:
		code = TS_EIO;
		break;
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:
	case MDB_DBS_FULL:
	case MDB_TLS_FULL:
	case MDB_BAD_TXN:
		code = TS_EINTERNAL;
		break;
	default:
		code = rc > 0 ? ts__code_from_errno(rc) : TS_EIO;
		break;
	}
	return ts__err(code, "%s: %s", what, msg);
}

/* -- transactions ------------------------------------------------------------------------- */

/* With map_lock held exclusively: adopt the map size another process committed. */
static int adopt_resized_map(ts_store *st)
{
	int rc = mdb_env_set_mapsize(st->env, 0);
	if (rc)
		return ts__err_from_mdb(rc, "remapping the store after another process grew it");
	return ts__store_refresh_map(st);
}

int ts__txn_begin_read(ts_store *st, MDB_txn **out)
{
	*out = NULL;
	for (int attempt = 0; attempt < 8; attempt++) {
		MDB_txn *txn = NULL;
		int rc;

		pthread_rwlock_rdlock(&st->map_lock);
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
		if (rc == 0) {
			*out = txn;
			return 0;
		}
		pthread_rwlock_unlock(&st->map_lock);
		if (rc != MDB_MAP_RESIZED)
			return ts__err_from_mdb(rc, "beginning a read transaction");
		pthread_rwlock_wrlock(&st->map_lock);
		rc = adopt_resized_map(st);
		pthread_rwlock_unlock(&st->map_lock);
		if (rc < 0)
			return rc;
	}
	return ts__err(TS_EBUSY, "beginning a read transaction: the map keeps being resized");
}

int ts__txn_begin_write(ts_store *st, MDB_txn **out)
{
	*out = NULL;
	if (!(st->flags & TS_OPEN_WRITE))
		return ts__err(TS_EREADONLY, "store '%s' is opened read-only", st->path);
	for (int attempt = 0; attempt < 8; attempt++) {
		MDB_txn *txn = NULL;
		int rc;

		pthread_rwlock_rdlock(&st->map_lock);
		rc = mdb_txn_begin(st->env, NULL, 0, &txn);
		if (rc == 0) {
			*out = txn;
			return 0;
		}
		pthread_rwlock_unlock(&st->map_lock);
		if (rc != MDB_MAP_RESIZED)
			return ts__err_from_mdb(rc, "beginning a write transaction");
		pthread_rwlock_wrlock(&st->map_lock);
		rc = adopt_resized_map(st);
		pthread_rwlock_unlock(&st->map_lock);
		if (rc < 0)
			return rc;
	}
	return ts__err(TS_EBUSY, "beginning a write transaction: the map keeps being resized");
}

int ts__txn_commit(ts_store *st, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);
	pthread_rwlock_unlock(&st->map_lock);
	return rc;
}

void ts__txn_abort(ts_store *st, MDB_txn *txn)
{
	if (!txn)
		return;
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->map_lock);
}

int ts__store_write(ts_store *st, int (*fn)(void *ud, MDB_txn *txn), void *ud, const char *what)
{
	for (;;) {
		MDB_txn *txn;
		int rc = ts__txn_begin_write(st, &txn);
		if (rc < 0)
			return rc;
		rc = fn(ud, txn);
		if (rc != 0) {
			ts__txn_abort(st, txn);
		} else {
			rc = ts__txn_commit(st, txn);
			if (rc == 0)
				return 0;
		}
		if (ts__is_ts_code(rc))
			return rc;
		if (rc != MDB_MAP_FULL)
			return ts__err_from_mdb(rc, what);
		rc = ts__store_grow_map(st);
		if (rc < 0)
			return ts__err_wrap(rc, "%s", what);
	}
}

/* -- the map ------------------------------------------------------------------------------ */

int ts__store_refresh_map(ts_store *st)
{
	MDB_txn *txn = NULL;
	MDB_val key = {sizeof(META_FORMAT) - 1, (void *)META_FORMAT}, val;
	MDB_envinfo info;
	mdb_filehandle_t fd;
	struct stat sb;
	FILE *f = NULL;
	char line[4096];
	uintptr_t probe;
	int rc, found = 0;

	/* An address certainly inside the data file's mapping: a value read in a read-only
	 * transaction points into the map (we never use MDB_WRITEMAP, so writes never alias it).
	 * A raw transaction: callers hold map_lock already. */
	rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return ts__err_from_mdb(rc, "locating the store's map");
	rc = mdb_get(txn, st->dbi_meta, &key, &val);
	if (rc) {
		mdb_txn_abort(txn);
		return ts__err_from_mdb(rc, "locating the store's map");
	}
	probe = (uintptr_t)val.mv_data;
	mdb_txn_abort(txn);

	if (mdb_env_info(st->env, &info) || mdb_env_get_fd(st->env, &fd) || fstat(fd, &sb))
		return ts__err(TS_EIO, "locating the map of '%s': cannot query the environment",
			       st->path);
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return ts__err_errno(errno, "locating the map of '%s': /proc/self/maps", st->path);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off, ino;
		unsigned maj, min;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perms, &off, &maj, &min,
			   &ino) != 7)
			continue;
		if (probe < lo || probe >= hi)
			continue;
		if (ino != (unsigned long long)sb.st_ino || maj != major(sb.st_dev) ||
		    min != minor(sb.st_dev) || off > lo)
			break;
		st->map_base = (uintptr_t)(lo - off);
		found = 1;
		break;
	}
	fclose(f);
	if (!found)
		return ts__err(TS_EINTERNAL,
			       "locating the map of '%s': no mapping of the data file holds %#" PRIxPTR,
			       st->path, probe);
	st->map_size = info.me_mapsize;
	return 0;
}

int ts__store_grow_map(ts_store *st)
{
	MDB_envinfo info;
	uint64_t want;
	void *probe;
	int rc;

	pthread_rwlock_wrlock(&st->map_lock);
	if (mdb_env_info(st->env, &info)) {
		pthread_rwlock_unlock(&st->map_lock);
		return ts__err(TS_EIO, "growing the map of '%s': cannot query the environment",
			       st->path);
	}
	want = (uint64_t)info.me_mapsize * 2;
	if (st->map_max && want > st->map_max)
		want = st->map_max;
	if (want <= info.me_mapsize) {
		pthread_rwlock_unlock(&st->map_lock);
		return ts__err(TS_ENOSPC, "store '%s' is full: its map of %zu bytes may not grow",
			       st->path, info.me_mapsize);
	}
	/* LMDB unmaps before it maps anew and is unusable if the new mapping fails: make sure
	 * the address space is there first. */
	probe = mmap(NULL, want, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (probe == MAP_FAILED) {
		pthread_rwlock_unlock(&st->map_lock);
		return ts__err(TS_ENOSPC, "store '%s' is full: cannot map %" PRIu64 " bytes",
			       st->path, want);
	}
	munmap(probe, want);
	rc = mdb_env_set_mapsize(st->env, want);
	if (rc) {
		pthread_rwlock_unlock(&st->map_lock);
		return ts__err_from_mdb(rc, "growing the store's map");
	}
	rc = ts__store_refresh_map(st);
	pthread_rwlock_unlock(&st->map_lock);
	return rc;
}

/* -- open and close ----------------------------------------------------------------------- */

/* Open the four databases and check (or, when creating, write) the meta records. Runs in a
 * read-only transaction for a read-only open, so that it creates nothing. Also used by
 * engine/create.c to initialise a new store under its temporary name. */
int ts__store_open_databases(ts_store *st, MDB_txn *txn, int create)
{
	static const char *const names[4] = {"meta", "tensors", "pages", "pending"};
	MDB_dbi *dbis[4] = {&st->dbi_meta, &st->dbi_tensors, &st->dbi_pages, &st->dbi_pending};
	MDB_val key, val;
	MDB_stat ms;
	unsigned dbflags = 0;
	int rc;

	rc = mdb_dbi_open(txn, names[0], 0, dbis[0]);
	if (rc == MDB_NOTFOUND) {
		/* No meta database: a new (empty) LMDB environment may become a store; anything
		 * else is some other application's data. */
		MDB_dbi main_dbi;
		if (!create)
			return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (no 'meta' database)",
				       st->path);
		rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
		if (rc == 0)
			rc = mdb_stat(txn, main_dbi, &ms);
		if (rc)
			return ts__err_from_mdb(rc, "opening the store's main database");
		if (ms.ms_entries != 0)
			return ts__err(TS_ECORRUPT,
				       "'%s' is an LMDB file of another application, not a tstore store",
				       st->path);
		dbflags = MDB_CREATE;
	} else if (rc == MDB_INCOMPATIBLE) {
		return ts__err(TS_ECORRUPT, "'%s' is not a tstore store ('meta' is not a database)",
			       st->path);
	} else if (rc) {
		return ts__err_from_mdb(rc, "opening the 'meta' database");
	}
	for (int i = 0; i < 4; i++) {
		rc = mdb_dbi_open(txn, names[i], dbflags, dbis[i]);
		if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
			return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (no '%s' database)",
				       st->path, names[i]);
		if (rc)
			return ts__err_from_mdb(rc, "opening the store's databases");
	}

	key.mv_data = (void *)META_FORMAT;
	key.mv_size = sizeof(META_FORMAT) - 1;
	rc = mdb_get(txn, st->dbi_meta, &key, &val);
	if (rc == MDB_NOTFOUND && dbflags == MDB_CREATE) {
		uint8_t fmt[8], id[8], created[8];
		char creator[64];
		MDB_val v;

		memcpy(fmt, FORMAT_MAGIC, 4);
		put_le32(fmt + 4, TS_FORMAT_VERSION);
		put_le64(id, 1);
		put_le64(created, (uint64_t)time(NULL));
		snprintf(creator, sizeof(creator), "tstore %s", ts_version());
		struct {
			const char *k;
			const void *v;
			size_t n;
		} kv[4] = {{META_FORMAT, fmt, 8},
			   {META_CREATOR, creator, strlen(creator)},
			   {META_CREATED, created, 8},
			   {META_NEXT_ID, id, 8}};
		for (int i = 0; i < 4; i++) {
			key.mv_data = (void *)kv[i].k;
			key.mv_size = strlen(kv[i].k);
			v.mv_data = (void *)kv[i].v;
			v.mv_size = kv[i].n;
			rc = mdb_put(txn, st->dbi_meta, &key, &v, MDB_NOOVERWRITE);
			if (rc)
				return ts__err_from_mdb(rc, "writing the store's meta records");
		}
		return 0;
	}
	if (rc == MDB_NOTFOUND)
		return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (no format record)",
			       st->path);
	if (rc)
		return ts__err_from_mdb(rc, "reading the store's format record");
	if (val.mv_size != 8 || memcmp(val.mv_data, FORMAT_MAGIC, 4) != 0)
		return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (bad format record, %zu bytes)",
			       st->path, val.mv_size);
	uint32_t version = get_le32((const uint8_t *)val.mv_data + 4);
	if (version == 0)
		return ts__err(TS_ECORRUPT, "'%s': format version 0 is invalid", st->path);
	if (version > TS_FORMAT_VERSION)
		return ts__err(TS_EVERSION,
			       "'%s' has store format version %u; this library reads up to %u",
			       st->path, version, TS_FORMAT_VERSION);
	key.mv_data = (void *)META_NEXT_ID;
	key.mv_size = sizeof(META_NEXT_ID) - 1;
	rc = mdb_get(txn, st->dbi_meta, &key, &val);
	if (rc == 0 && val.mv_size != 8)
		rc = MDB_CORRUPTED;
	if (rc == 0 && get_le64(val.mv_data) == 0)
		rc = MDB_CORRUPTED;
	if (rc == MDB_NOTFOUND || rc == MDB_CORRUPTED)
		return ts__err(TS_ECORRUPT, "'%s': the next tensor id record is missing or malformed",
			       st->path);
	if (rc)
		return ts__err_from_mdb(rc, "reading the store's meta records");
	return 0;
}

static int getenv_cache_bytes(int64_t *out)
{
	const char *s = getenv("TSTORE_CACHE_BYTES");
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return ts__err(TS_EINVAL, "TSTORE_CACHE_BYTES='%s' is not a byte count", s);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		return ts__err(TS_EINVAL, "TSTORE_CACHE_BYTES='%s' is not a byte count", s);
	*out = (int64_t)(v > INT64_MAX ? INT64_MAX : v);
	return 1;
}

/* Databases the open reads (meta) or walks when opening for writing (pending): checked whole. */
static const char *const open_checked_dbs[2] = {"meta", "pending"};

TS_API int ts_store_open(ts_store **out, const char *path, const ts_open_opts *opts_in)
{
	ts_open_opts opts;
	ts_store *st = NULL;
	MDB_txn *txn = NULL;
	struct stat sb;
	unsigned envflags = MDB_NOSUBDIR | MDB_NORDAHEAD | MDB_NOTLS;
	int64_t cache_bytes;
	int rc, exists, locks_ok = 0;

	if (!out || !path || !*path)
		return ts__err(TS_EINVAL, "ts_store_open: %s is NULL or empty", out ? "path" : "out");
	*out = NULL;
	if (opts_in)
		opts = *opts_in;
	else
		ts_open_opts_init(&opts);
	if (opts.flags & ~(TS_OPEN_WRITE | TS_OPEN_CREATE))
		return ts__err(TS_EINVAL, "ts_store_open('%s'): unknown flags %#x", path, opts.flags);
	if (opts.flags & TS_OPEN_CREATE)
		opts.flags |= TS_OPEN_WRITE;
	if (opts.io < TS_IO_DEFAULT || opts.io > TS_IO_MMAP)
		return ts__err(TS_EINVAL, "ts_store_open('%s'): unknown I/O backend %d", path,
			       (int)opts.io);
	if (opts.threads < 0)
		return ts__err(TS_EINVAL, "ts_store_open('%s'): threads is %d", path, opts.threads);

	exists = stat(path, &sb) == 0;
	if (!exists && errno != ENOENT)
		return ts__err_errno(errno, "opening store '%s'", path);
	if (!exists && !(opts.flags & TS_OPEN_CREATE))
		return ts__err(TS_ENOTFOUND, "no store at '%s'", path);
	if (exists && !S_ISREG(sb.st_mode))
		return ts__err(TS_EINVAL, "'%s' is not a regular file", path);
	if ((opts.flags & TS_OPEN_CREATE) && (!exists || sb.st_size == 0)) {
		/* Never initialise in place: a kill would leave a file no open accepts. */
		rc = ts__store_create(path);
		if (rc < 0)
			return rc;
		exists = stat(path, &sb) == 0;
		if (!exists)
			return ts__err_errno(errno, "opening new store '%s'", path);
	}
	if (exists && sb.st_size == 0)
		return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (empty file)", path);
	if (exists && sb.st_size > 0 && sb.st_size < 2 * 4096)
		return ts__err(TS_ECORRUPT, "'%s' is not a tstore store (%lld bytes)", path,
			       (long long)sb.st_size);

	/* LMDB trusts its meta, branch and leaf pages: check what the open will follow first. */
	if (exists && sb.st_size > 0 &&
	    (rc = ts__lmdb_check_file(path, (uint64_t)sb.st_size, open_checked_dbs, 2)) < 0)
		return rc;

	st = calloc(1, sizeof(*st));
	if (!st)
		return ts__err(TS_ENOMEM, "opening store '%s': out of memory", path);
	st->path = strdup(path);
	if (!st->path) {
		free(st);
		return ts__err(TS_ENOMEM, "opening store '%s': out of memory", path);
	}
	st->flags = opts.flags;
	st->map_max = opts.map_max;
	st->io = TS_IO_MMAP;
	if (pthread_mutex_init(&st->writer_lock, NULL) ||
	    pthread_rwlock_init(&st->map_lock, NULL)) {
		free(st->path);
		free(st);
		return ts__err(TS_ENOMEM, "opening store '%s': cannot create locks", path);
	}
	locks_ok = 1;

	rc = mdb_env_create(&st->env);
	if (rc) {
		rc = ts__err_from_mdb(rc, "creating the LMDB environment");
		goto fail;
	}
	mdb_env_set_maxdbs(st->env, 8);
	mdb_env_set_maxreaders(st->env, 512);
	if (opts.flags & TS_OPEN_WRITE) {
		uint64_t size = opts.map_size ? opts.map_size : MAP_SIZE_DEFAULT;
		if (exists && (uint64_t)sb.st_size * 2 > size && !opts.map_size)
			size = (uint64_t)sb.st_size * 2;
		if (size < MAP_SIZE_MIN)
			size = MAP_SIZE_MIN;
		if (opts.map_max && size > opts.map_max)
			size = opts.map_max < MAP_SIZE_MIN ? MAP_SIZE_MIN : opts.map_max;
		size = (size + MAP_ALIGN - 1) / MAP_ALIGN * MAP_ALIGN;
		rc = mdb_env_set_mapsize(st->env, size);
		if (rc) {
			rc = ts__err_from_mdb(rc, "setting the map size");
			goto fail;
		}
	} else {
		envflags |= MDB_RDONLY;
	}
	rc = mdb_env_open(st->env, path, envflags, 0644);
	if (rc) {
		if (rc == MDB_INVALID)
			rc = ts__err(TS_ECORRUPT, "'%s' is not a tstore store (not an LMDB file)",
				     path);
		else if (rc == MDB_VERSION_MISMATCH)
			rc = ts__err(TS_EVERSION, "'%s' was written by an incompatible LMDB version",
				     path);
		else if (rc == ENOENT && !exists)
			rc = ts__err(TS_ENOTFOUND, "no store at '%s'", path);
		else
			rc = ts__err_from_mdb(rc, path);
		goto fail;
	}

	if (opts.flags & TS_OPEN_WRITE) {
		mdb_filehandle_t fd;
		if (mdb_env_get_fd(st->env, &fd) == 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
			rc = errno == EWOULDBLOCK
				     ? ts__err(TS_EBUSY, "store '%s' is open for writing elsewhere", path)
				     : ts__err_errno(errno, "locking store '%s' for writing", path);
			goto fail;
		}
		rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	} else {
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
	}
	if (rc) {
		rc = ts__err_from_mdb(rc, "opening the store");
		goto fail;
	}
	rc = ts__store_open_databases(st, txn, (opts.flags & TS_OPEN_CREATE) != 0);
	if (rc < 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	if (rc) {
		rc = ts__err_from_mdb(rc, "opening the store");
		goto fail;
	}
	rc = ts__store_refresh_map(st);
	if (rc < 0)
		goto fail;

	st->threads = opts.threads;
	if (st->threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		st->threads = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
	}
	rc = ts__pool_create(&st->pool, st->threads);
	if (rc < 0)
		goto fail;

	if (opts.flags & TS_OPEN_WRITE) {
		ts__store_remove_stale(path);
		rc = ts__writer_cleanup_pending(st, NULL);
		if (rc < 0)
			goto fail;
	}

	cache_bytes = opts.cache_bytes;
	if (cache_bytes < 0) {
		cache_bytes = 256ll << 20;
		rc = getenv_cache_bytes(&cache_bytes);
		if (rc < 0)
			goto fail;
	}
	rc = ts__tier_open(st, cache_bytes); /* the cache with its residency policy */
	if (rc < 0)
		goto fail;
	rc = ts__io_open(st, opts.io);
	if (rc < 0)
		goto fail;
	*out = st;
	return 0;

fail:
	ts__tier_close(st);
	if (st->pool)
		ts__pool_free(st->pool);
	if (st->env)
		mdb_env_close(st->env);
	if (locks_ok) {
		pthread_mutex_destroy(&st->writer_lock);
		pthread_rwlock_destroy(&st->map_lock);
	}
	free(st->path);
	free(st);
	return rc;
}

TS_API void ts_store_close(ts_store *st)
{
	if (!st)
		return;
	ts__io_close(st);
	ts__tier_close(st);
	ts__pool_free(st->pool);
	/* Closing the environment closes the data file, which releases the writer's flock. */
	mdb_env_close(st->env);
	pthread_mutex_destroy(&st->writer_lock);
	pthread_rwlock_destroy(&st->map_lock);
	free(st->path);
	free(st);
}

TS_API ts_io_backend ts_store_io_backend(const ts_store *st)
{
	return st ? st->io : TS_IO_DEFAULT;
}
