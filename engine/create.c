/*
 * Creating a store so that a kill at any instant leaves either no store or a whole one.
 *
 * LMDB initialises a data file in place: mdb_env_open() creates it empty, writes two meta
 * pages that record no transaction, and the first commit builds on them. A process killed in
 * between leaves an empty, blank (those two pages alone) or half-written file at the store's
 * path, which every later open must refuse (it cannot tell a half-written one from a damaged
 * store). So a new store is never built at its path:
 *
 *   1. a temporary file ".<name>.creating-XXXXXX" is made in the same directory (mkstemp) and
 *      locked (flock LOCK_EX on our own descriptor: "a creation is in progress");
 *   2. it is initialised as a store (meta records, four databases) in one LMDB commit, which
 *      LMDB syncs; we fsync it once more;
 *   3. it is linked to the store's path with link(2) — which fails with EEXIST rather than
 *      replace a store another process created meanwhile (that store is then opened as is) —
 *      or, when a blank file is in the way, exchanged with it (renameat2 RENAME_EXCHANGE,
 *      atomic) and checked to have taken out that very file, else put back (replace_blank);
 *   4. the directory is fsynced, so the name survives a power loss, and the temporary name and
 *      its LMDB lock file are removed.
 *
 * Invariants
 *   1. The store's path only ever names a file whose creating transaction committed and was
 *      synced before the name existed: a kill or power loss at any step leaves no store, the
 *      blank file that was there, or a complete store with no tensors.
 *   2. An existing file that is not blank is never touched here, whatever its state: a damaged
 *      store is reported by the open, never re-initialised. Only a BLANK file is replaced, while
 *      we hold its flock, so not under a writer that has it open: an empty one, or exactly
 *      LMDB's two initial meta pages (valid, transaction id 0, no database root: no commit ever
 *      happened in it). Blank files hold no data; they are what LMDB's in-place creation leaves
 *      when killed, and what a writer's mdb_env_open() makes when the store it is opening is
 *      removed at that moment (LMDB opens with O_CREAT; engine/store.c).
 *   3. Temporary files of killed creations are removed by the next open for writing of the
 *      same path: one whose flock can be taken has no live creator (the kernel drops a flock
 *      with its process); one that is a second link of the store itself (a kill between link
 *      and unlink) is only a name. A temporary file is recognised by its name.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "engine/create.h"
#include "engine/lmdbfmt.h"
#include "engine/lockwait.h"
#include "engine/meta.h"
#include "engine/txn.h"

#define TMP_TAG ".creating-"
/* Split @p path into its directory ("." if none) and base name, in @p dir / @p base. */
static int split_path(const char *path, char *dir, size_t dsize, const char **base)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(dir, dsize, ".");
		*base = path;
	} else if (slash == path) {
		snprintf(dir, dsize, "/");
		*base = slash + 1;
	} else {
		if ((size_t)(slash - path) >= dsize)
			return ts__err(TS_EINVAL, "store path '%s' is too long", path);
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		*base = slash + 1;
	}
	if (!**base)
		return ts__err(TS_EINVAL, "store path '%s' names a directory", path);
	return 0;
}

static void unlink_with_lock(const char *path)
{
	char lock[2 * PATH_MAX + 8];
	unlink(path);
	snprintf(lock, sizeof lock, "%s-lock", path);
	unlink(lock);
}

/* Invariant 3: remove the temporary files of creations of @p base whose process is gone. */
static void remove_stale(const char *dir, const char *base)
{
	char prefix[NAME_MAX + 2], p[2 * PATH_MAX];
	size_t plen;
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat sb;
	int store_ino_ok;

	if (!d)
		return;
	store_ino_ok = snprintf(p, sizeof p, "%s/%s", dir, base) < (int)sizeof p && stat(p, &sb) == 0;
	snprintf(prefix, sizeof prefix, ".%s" TMP_TAG, base);
	plen = strlen(prefix);
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n != plen + 6 || strncmp(e->d_name, prefix, plen) != 0)
			continue; /* not ours, or a "-lock" file (removed with its data file) */
		if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
			continue;
		struct stat tb;
		if (lstat(p, &tb) == 0 && tb.st_nlink > 1 && store_ino_ok &&
		    tb.st_ino == sb.st_ino && tb.st_dev == sb.st_dev) {
			/* Killed between link and unlink: a second name of the whole store. */
			unlink_with_lock(p);
			continue;
		}
		int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			unlink_with_lock(p);
		close(fd);
	}
	closedir(d);
}

/* Step 2: make the file at @p tmp a store with no tensors, committed and synced. */
static int init_store_file(const char *tmp)
{
	ts_store st;
	MDB_txn *txn = NULL;
	int rc;

	memset(&st, 0, sizeof st);
	st.path = (char *)tmp;
	rc = mdb_env_create(&st.env);
	if (rc)
		return ts__err_from_mdb(rc, "creating the LMDB environment");
	mdb_env_set_maxdbs(st.env, 8);
	rc = mdb_env_set_mapsize(st.env, 1u << 20);
	if (rc == 0)
		rc = mdb_env_open(st.env, tmp, MDB_NOSUBDIR | MDB_NOTLS | MDB_NORDAHEAD, 0644);
	if (rc == 0)
		rc = mdb_txn_begin(st.env, NULL, 0, &txn);
	if (rc) {
		rc = ts__err_from_mdb(rc, tmp);
		goto out;
	}
	rc = ts__meta_open(&st, txn, 1);
	if (rc < 0) {
		mdb_txn_abort(txn);
		goto out;
	}
	rc = mdb_txn_commit(txn); /* LMDB writes and syncs the meta page here */
	if (rc)
		rc = ts__err_from_mdb(rc, "initialising a new store");
out:
	mdb_env_close(st.env);
	return rc;
}

void ts__store_remove_stale(const char *path)
{
	char dir[PATH_MAX];
	const char *base;
	if (split_path(path, dir, sizeof dir, &base) == 0)
		remove_stale(dir, base);
	ts_error_clear();
}

/* Invariant 2's blank file: empty, or LMDB's two initial meta pages and nothing else. */
int ts__store_file_blank(int fd)
{
	uint8_t m[2][160];
	uint64_t psize;
	struct stat sb;

	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		return 0;
	if (sb.st_size == 0)
		return 1;
	if (pread(fd, m[0], sizeof m[0], 0) != (ssize_t)sizeof m[0])
		return 0;
	psize = ts__lmdb_u32(m[0] + 40); /* the free database's pad field holds the page size */
	if (psize < 512 || psize > 65536 || (psize & (psize - 1)) ||
	    (uint64_t)sb.st_size != 2 * psize ||
	    pread(fd, m[1], sizeof m[1], (off_t)psize) != (ssize_t)sizeof m[1])
		return 0;
	for (int i = 0; i < 2; i++) {
		const uint8_t *p = m[i];
		if (ts__lmdb_u64(p) != (uint64_t)i ||
		    !(ts__lmdb_u16(p + TS_LMDB_PAGEHDR_FLAGS) & TS_LMDB_P_META) ||
		    ts__lmdb_u32(p + 16) != TS_LMDB_MAGIC || ts__lmdb_u32(p + 20) != 1 ||
		    ts__lmdb_u32(p + 40) != psize || ts__lmdb_u64(p + 80) != UINT64_MAX ||
		    ts__lmdb_u64(p + 128) != UINT64_MAX || ts__lmdb_u64(p + 136) != 1 ||
		    ts__lmdb_u64(p + 144) != 0)
			return 0;
	}
	return 1;
}

/*
 * Step 3 with a blank file in the way (invariant 2): exchange the new store and the file at
 * @p path atomically (renameat2 RENAME_EXCHANGE), then check that what came out is the blank
 * file @p blank_fd, which we hold locked. Holding its flock does not keep its name: if the path
 * was unlinked and made anew meanwhile (by a command removing a store it had created, or by
 * hand), the exchange took that file out, and it is put back at once. Where the file system
 * cannot exchange names, rename() after a last check of the path's inode (a narrower window).
 * 1 replaced (@p tmp now names the blank file), 0 not (@p tmp names the new store, or nothing
 * once the file taken out was put back over it), or a negative TS_E* code (@p tmp emptied when
 * it names that other file: nobody's to remove).
 */
static int replace_blank(char *tmp, const char *path, int blank_fd)
{
	struct stat bs, xs;

	if (fstat(blank_fd, &bs) != 0)
		return ts__err_errno(errno, "creating store '%s' (checking the blank file)", path);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
		if (lstat(tmp, &xs) == 0 && xs.st_ino == bs.st_ino && xs.st_dev == bs.st_dev)
			return 1;
		/* put it back over our store (which goes with the rename) */
		if (rename(tmp, path) != 0) {
			char lock[2 * PATH_MAX + 8];
			int rc = ts__err_errno(errno, "creating store '%s': the file made at that "
						      "path meanwhile could not be put back (it is at '%s')",
					       path, tmp);
			snprintf(lock, sizeof lock, "%s-lock", tmp); /* our store's, not that file's */
			unlink(lock);
			tmp[0] = '\0'; /* that file is nobody's to remove */
			return rc;
		}
		return 0;
	}
	if (errno == ENOENT)
		return 0; /* the path went away meanwhile: the open starts over */
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return ts__err_errno(errno, "creating store '%s' (exchange)", path);
	if (lstat(path, &xs) != 0 || xs.st_ino != bs.st_ino || xs.st_dev != bs.st_dev)
		return 0;
	if (rename(tmp, path) != 0)
		return ts__err_errno(errno, "creating store '%s' (rename)", path);
	return 1;
}

int ts__store_create(const char *path, int64_t timeout_ms)
{
	char dir[PATH_MAX], tmp[2 * PATH_MAX];
	const char *base;
	struct stat sb, tb;
	int fd = -1, dfd = -1, rc, blank_fd = -1;

	rc = split_path(path, dir, sizeof dir, &base);
	if (rc < 0)
		return rc;
	if (snprintf(tmp, sizeof tmp, "%s/.%s" TMP_TAG "XXXXXX", dir, base) >= (int)sizeof tmp)
		return ts__err(TS_EINVAL, "store path '%s' is too long", path);
	remove_stale(dir, base);

	/* Invariant 2: a blank file in the way is replaced only while we hold its flock. */
	if (lstat(path, &sb) == 0) {
		if (!S_ISREG(sb.st_mode))
			return 0; /* not ours to touch: the open decides what it is */
		blank_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (blank_fd < 0)
			return ts__err_errno(errno, "opening '%s'", path);
		if (!ts__store_file_blank(blank_fd)) {
			rc = 0; /* not ours to touch: the open decides what it is */
			goto out;
		}
		rc = ts__flock_wait(blank_fd, timeout_ms);
		if (rc != 0) {
			rc = rc > 0 ? ts__err(TS_EBUSY, "store '%s' is open for writing elsewhere", path)
				    : ts__err_errno(-rc, "locking '%s'", path);
			goto out;
		}
		if (fstat(blank_fd, &sb) != 0 || !ts__store_file_blank(blank_fd) ||
		    stat(path, &tb) != 0 || tb.st_ino != sb.st_ino || tb.st_dev != sb.st_dev) {
			rc = 0; /* it changed meanwhile: someone else made it; the open decides */
			goto out;
		}
	} else if (errno != ENOENT) {
		return ts__err_errno(errno, "creating store '%s'", path);
	}

	/* Step 1: the temporary file, locked; remove_stale() of another process may have removed
	 * it between mkstemp() and flock(), so check that the name still holds our file. */
	for (int tries = 0;; tries++) {
		snprintf(tmp, sizeof tmp, "%s/.%s" TMP_TAG "XXXXXX", dir, base); /* fits: checked */
		fd = mkstemp(tmp);
		if (fd < 0) {
			rc = ts__err_errno(errno, "creating store '%s' (temporary file in '%s')", path,
					   dir);
			goto out;
		}
		if (flock(fd, LOCK_EX) == 0 && fstat(fd, &sb) == 0 && stat(tmp, &tb) == 0 &&
		    sb.st_ino == tb.st_ino && sb.st_dev == tb.st_dev)
			break;
		close(fd);
		fd = -1;
		if (tries == 8) {
			rc = ts__err(TS_EIO, "creating store '%s': temporary files keep vanishing", path);
			goto out;
		}
	}
	{ /* mkstemp gives 0600; a store is created 0644 less the umask, as LMDB would */
		mode_t um = umask(0);
		umask(um);
		fchmod(fd, 0644 & ~um);
	}

	rc = init_store_file(tmp);
	if (rc < 0)
		goto fail;
	if (fsync(fd) != 0) {
		rc = ts__err_errno(errno, "syncing new store '%s'", tmp);
		goto fail;
	}

	/* Step 3. */
	if (blank_fd >= 0) {
		rc = replace_blank(tmp, path, blank_fd);
		if (rc < 0)
			goto fail;
		/* replaced: the temporary name holds the blank file, removed below; not: it
		 * still holds our store, not needed (the path is someone else's: the open
		 * decides what it is) */
	} else if (link(tmp, path) != 0) {
		if (errno != EEXIST) {
			rc = ts__err_errno(errno, "creating store '%s' (link)", path);
			goto fail;
		}
		/* Another process created the store meanwhile: ours is not needed. */
	}

	/* Step 4. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		rc = ts__err_errno(errno, "syncing directory '%s' of new store '%s'", dir, path);
		goto fail;
	}
	rc = 0;
fail:
	if (tmp[0])
		unlink_with_lock(tmp); /* after an exchange: the blank file and our lock file */
out:
	if (dfd >= 0)
		close(dfd);
	if (fd >= 0)
		close(fd);
	if (blank_fd >= 0)
		close(blank_fd);
	return rc;
}
