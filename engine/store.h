/*
 * The store's private interface: the handle, the tensor record, page keys and headers, page
 * geometry, the thread pool, and the hooks between the write side (store, record, page,
 * geometry, pool, writer, check: engine/{store,record,page,geometry,pool,writer,check}.c) and the
 * read side (reader, I/O backends, cache: engine/{reader,io_*,cache}.c).
 *
 * Invariants
 *   1. Tensor ids are never reused (a counter in the meta database), so a cached page keyed by
 *      (tensor id, page index) can never be served for a different tensor; deletion and
 *      replacement need no cache invalidation for correctness.
 *   2. A tensor record exists in the tensors database only once every one of its pages has been
 *      committed; pages of an unfinished write are listed in the pending database until commit
 *      or cleanup.
 *   3. No pointer into LMDB's map outlives the read transaction it was obtained in.
 *   4. map_base/map_size change only under map_lock held exclusively (map growth); anything that
 *      turns a map address into a file offset holds map_lock shared.
 *   5. Every transaction begun with ts__txn_begin_read/write holds map_lock shared until it ends
 *      in ts__txn_commit or ts__txn_abort (never mdb_txn_commit/abort directly): LMDB may only
 *      remap (mdb_env_set_mapsize) when no transaction of the process is active. Consequently a
 *      thread never begins a write transaction while it holds a read transaction.
 *   6. One writer process per store: a store opened with TS_OPEN_WRITE holds an exclusive flock
 *      on its data file, so entries of the pending database belong to no live writer except
 *      this handle's own (cleanup of interrupted writes is then safe): the active writer's and
 *      the tensors staged in the handle's open write group (st->group), which cleanup skips.
 */
#ifndef TS_ENGINE_STORE_H
#define TS_ENGINE_STORE_H

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

struct ts__io;
struct ts__cache;
struct ts__res;
struct ts__pool;

/* The on-disk format version written in the meta database (docs/FORMAT.md). */
#define TS_FORMAT_VERSION 1u

struct ts_store {
	MDB_env *env;
	MDB_dbi dbi_meta;    /* "meta": format version, creator, created, next tensor id, ... */
	MDB_dbi dbi_tensors; /* "tensors": name -> encoded ts__tensor_rec */
	MDB_dbi dbi_pages;   /* "pages": ts__page_key -> page (header + payload) */
	MDB_dbi dbi_pending; /* "pending": tensor id (BE) -> name: writes in progress */
	char *path;
	unsigned flags;  /* TS_OPEN_* */
	int threads;     /* worker threads, >= 1 */
	ts_io_backend io; /* in effect, never TS_IO_DEFAULT */
	struct ts__io *io_ctx;
	struct ts__cache *cache;
	struct ts__res *res;  /* residency policy of the cache (engine/tiering.c) */
	int profile_measured; /* the residency profile was measured (a profile file) */
	struct ts__pool *pool;

	pthread_mutex_t writer_lock; /* one writer at a time; guards writer_active, group */
	int writer_active;
	struct ts_group *group; /* the open write group, NULL if none (engine/group.c) */

	pthread_rwlock_t map_lock; /* invariant 4 */
	uintptr_t map_base;        /* address of the data file's mapping */
	size_t map_size;
	uint64_t map_max; /* growth limit (ts_open_opts.map_max; 0: address space) */
};

/* -- attach.c ---------------------------------------------------------------------------- */

/** First byte of the keys of the tensors database that are not tensors (docs/FORMAT.md,
 *  section 3.1): never the first byte of valid UTF-8, so no tensor name can take it. Keys with
 *  it sort after every tensor name. */
#define TS__RESERVED_KEY_BYTE 0xFFu

/** ts_writer_begin() without the check that @p name is not reserved (engine/attach.c). */
int ts__writer_begin(ts_writer **out, ts_store *st, const char *name, ts_dtype src_dtype,
		     int ndim, const uint64_t *shape, const ts_codec_config *cfg,
		     const ts_write_opts *opts);

/* -- create.c --------------------------------------------------------------------------- */

/** Create a store with no tensors at @p path so that a kill at any instant leaves no store or
 *  a whole one (engine/create.c): built under a temporary name in the same directory, synced,
 *  then linked into place. Does nothing if a non-empty file is at @p path; replaces an empty
 *  one. 0 or a negative TS_E* code. */
int ts__store_create(const char *path);
/** Remove what killed creations of the store at @p path left (their temporary files; never
 *  one whose creator is alive). Called by every open for writing. Reports nothing. */
void ts__store_remove_stale(const char *path);

/* -- store.c ------------------------------------------------------------------------------ */

/** Open the store's databases in @p txn and check its meta records; with @p create, an empty
 *  environment becomes a store (databases and meta records written in @p txn). */
int ts__store_open_databases(ts_store *st, MDB_txn *txn, int create);

/** Translate an LMDB return code into a TS_E* code with context; sets the last error. */
int ts__err_from_mdb(int rc, const char *what);

/** Begin a read-only transaction (short-lived: end it promptly with ts__txn_abort, or
 *  ts__txn_commit). Holds map_lock shared until it ends (invariant 5); handles MDB_MAP_RESIZED
 *  (another process grew the map). 0 or a negative TS_E* code. */
int ts__txn_begin_read(ts_store *st, MDB_txn **out);

/** Begin a write transaction (holds map_lock shared until it ends). 0 or a negative TS_E* code.
 *  Most callers want ts__store_write(), which also handles map growth. */
int ts__txn_begin_write(ts_store *st, MDB_txn **out);

/** Commit @p txn and release map_lock. Returns 0 or the untranslated LMDB/errno code, so
 *  that the caller can tell MDB_MAP_FULL (grow the map with ts__store_grow_map() and redo the
 *  work) from other failures (translate with ts__err_from_mdb()). */
int ts__txn_commit(ts_store *st, MDB_txn *txn);

/** Abort @p txn (read or write) and release map_lock. NULL accepted. */
void ts__txn_abort(ts_store *st, MDB_txn *txn);

/** Grow the map (double it, within map_max) under map_lock held exclusively and refresh
 *  map_base/map_size. The caller must hold no transaction. 0 or TS_ENOSPC. */
int ts__store_grow_map(ts_store *st);

/** Find the mapping of the data file in /proc/self/maps and set map_base/map_size. Called at
 *  open and under map_lock held exclusively after a remap. */
int ts__store_refresh_map(ts_store *st);

/** 1 if @p rc is one of our TS_E* codes, 0 for an LMDB code (MDB_KEYEXIST..MDB_LAST_ERRCODE,
 *  negative too) or an errno value (positive). */
static inline int ts__is_ts_code(int rc)
{
	return rc < 0 && rc > -1000;
}

/**
 * Run @p fn in a write transaction and commit it. @p fn returns 0 (commit), a TS_E* code
 * (abort, returned as is) or an LMDB or errno code (abort, translated with @p what as
 * context). On MDB_MAP_FULL, from @p fn or from the commit, the map is grown and @p fn runs
 * again from the start, so it must not keep state across calls. The caller holds no transaction.
 * @return 0; TS_ENOSPC when the disk is full or the map cannot grow (the store is unchanged);
 *         the error of @p fn; another negative TS_E* code.
 */
int ts__store_write(ts_store *st, int (*fn)(void *ud, MDB_txn *txn), void *ud, const char *what);

/* -- record.c: the tensor record ---------------------------------------------------------- */

#define TS_RECORD_MAGIC 0x54u /* 'T' */
#define TS_RECORD_VERSION 1u

typedef struct ts__tensor_rec {
	uint64_t id;
	ts_dtype source_dtype;
	int ndim;
	uint64_t shape[TS_MAX_DIMS];
	ts_codec_config codec;
	float amax;
	float tensor_scale;
	uint64_t rows; /* the 2-D view: product of the leading dims (1 for a scalar or 1-D) */
	uint64_t cols; /* the last dim (1 for a scalar) */
	uint64_t tile_rows;
	uint64_t tile_cols; /* a multiple of the codec's block size, or cols */
	uint64_t page_count;
	uint64_t stored_bytes;
	ts_compression_stats error;
	ts_distribution_stats dist;
} ts__tensor_rec;

/** Upper bound of an encoded record. */
#define TS_RECORD_MAX 512

/** Encode @p rec field by field, little-endian, with a trailing XXH3-64. Returns bytes written. */
size_t ts__tensor_rec_encode(const ts__tensor_rec *rec, uint8_t *buf, size_t cap);

/** Decode and validate (magic, version, checksum, geometry consistent with shape and codec).
 *  TS_ECORRUPT with detail on any inconsistency. Never trusts a length or count unchecked. */
int ts__tensor_rec_decode(ts__tensor_rec *rec, const void *buf, size_t len);

/**
 * What the tensors database stores: the record of ts__tensor_rec_encode() with its trailing
 * checksum XORed with XXH3-64 of the tensor's name (the key it is stored under, @p name_len
 * bytes), so that a record reached under another name — a damaged key in an LMDB leaf or branch
 * page — fails its checksum instead of serving one tensor's data under another's name.
 * ts__tensor_rec_decode_named() undoes the binding (on a copy) and decodes.
 */
size_t ts__tensor_rec_encode_named(const ts__tensor_rec *rec, const char *name, size_t name_len,
				   uint8_t *buf, size_t cap);
int ts__tensor_rec_decode_named(ts__tensor_rec *rec, const char *name, size_t name_len,
				const void *buf, size_t len);

/** Look up tensor @p name in @p txn. 0; TS_ENOTFOUND; TS_ECORRUPT (names the tensor). */
int ts__tensor_lookup(ts_store *st, MDB_txn *txn, const char *name, ts__tensor_rec *out);

/** Fill a public ts_tensor_info from a record. */
void ts__tensor_rec_to_info(const ts__tensor_rec *rec, ts_tensor_info *out);

/** The element count of a shape, or UINT64_MAX if it overflows or exceeds TS_MAX_ELEMENTS. */
uint64_t ts__shape_elements(int ndim, const uint64_t *shape);

/** The largest tensor, in elements, a record may describe (2^56). */
#define TS_MAX_ELEMENTS (1ull << 56)

/* -- geometry.c: how a tensor is cut into pages ------------------------------------------- */

/* Page sizes: k * 4096 - 16 bytes (header + payload), LMDB's overflow-page run minus its header.
 * The default depends on the codec (ts__geometry_default_page_bytes): the denser the encoding,
 * the smaller the page, so that a tile stays a few dozen rows tall and row slices of a few
 * hundred rows read little more than they need (docs/FORMAT.md, "How the writer chooses the
 * geometry"): TS_PAGE_BYTES_4BIT (k = 4) for nvfp4 and mxfp4, TS_PAGE_BYTES_8BIT (k = 8) for
 * int8 and fp8, TS_PAGE_BYTES_DEFAULT (k = 16) for raw, TS_PAGE_BYTES_LOSSLESS (k = 64) for
 * lossless, whose pages are shorter than that bound by a length the data decides: LMDB rounds each
 * up to whole 4 KiB pages, about 2 KiB lost per page, which must stay small beside the page
 * (docs/FORMAT.md). */
#define TS_PAGE_BYTES_DEFAULT 65520u
#define TS_PAGE_BYTES_LOSSLESS 262128u
#define TS_PAGE_BYTES_8BIT 32752u
#define TS_PAGE_BYTES_4BIT 16368u
#define TS_PAGE_BYTES_MIN 4080u
#define TS_PAGE_BYTES_MAX (16u * 1024 * 1024 - 16)
/* Target tile width in columns for wide tensors, and the most source bytes of one tile-row band
 * the writer buffers (part of the geometry rule: see docs/FORMAT.md). */
#define TS_GEOMETRY_TILE_COLS 1024u
#define TS_GEOMETRY_BAND_BYTES (4u * 1024 * 1024)

/** The page size a tensor of codec configuration @p cfg gets when none is asked for. */
uint64_t ts__geometry_default_page_bytes(const ts_codec_config *cfg);

/** Elements per block along a row for the geometry of @p cfg (1 for raw and fp8). */
uint64_t ts__geometry_block(const ts_codec_config *cfg);

/** Choose tile_rows/tile_cols/page_count for @p rec (rows, cols and codec set) so that a full
 *  page (header + payload) is at most @p page_bytes (0: the codec's default) and as close to it
 *  as the geometry allows. */
int ts__geometry_plan(ts__tensor_rec *rec, uint64_t page_bytes);

/** The rectangle of page @p page: rows [*r0, *r0 + *nr), cols [*c0, *c0 + *nc). */
void ts__geometry_page_rect(const ts__tensor_rec *rec, uint64_t page, uint64_t *r0,
			    uint64_t *nr, uint64_t *c0, uint64_t *nc);

/** Number of tile columns (pages per tile row). */
uint64_t ts__geometry_tiles_across(const ts__tensor_rec *rec);

/* -- page.c: page keys and the page header ------------------------------------------------ */

/* Key: tensor id (8 bytes big-endian) then page index (8 bytes big-endian). */
#define TS_PAGE_KEY_SIZE 16

/* Page header, little-endian, 40 bytes, followed by the codec payload:
 *   0  u8   type  TS_PAGE_TYPE ('P')
 *   1  u8   format version TS_PAGE_VERSION
 *   2  u8   codec (ts_codec)
 *   3  u8   reserved, 0
 *   4  u32  rows in this page
 *   8  u32  cols in this page
 *   12 u32  payload length in bytes
 *   16 u64  tensor id
 *   24 u64  page index
 *   32 u64  XXH3-64 of bytes [0, 32) followed by the payload
 */
#define TS_PAGE_TYPE 0x50u
#define TS_PAGE_VERSION 1u
#define TS_PAGE_HEADER_SIZE 40

typedef struct ts__page_hdr {
	unsigned codec;
	uint32_t rows;
	uint32_t cols;
	uint32_t payload_len;
	uint64_t tensor_id;
	uint64_t page_index;
	uint64_t checksum;
} ts__page_hdr;

void ts__page_key(uint8_t key[TS_PAGE_KEY_SIZE], uint64_t tensor_id, uint64_t page_index);
void ts__page_key_parse(const uint8_t key[TS_PAGE_KEY_SIZE], uint64_t *tensor_id,
			uint64_t *page_index);

/** Write the header for @p hdr in front of a payload already at buf + TS_PAGE_HEADER_SIZE,
 *  computing the checksum. */
void ts__page_seal(uint8_t *buf, const ts__page_hdr *hdr);

/**
 * Verify a page: type, version, lengths, checksum, and that it is page @p page_index of tensor
 * @p rec with the rows, cols, codec and payload length its geometry implies.
 * @return 0; TS_ECORRUPT naming tensor @p name and the page, with what is wrong.
 */
int ts__page_verify(const void *buf, size_t len, const ts__tensor_rec *rec, const char *name,
		    uint64_t page_index);

/** As ts__page_verify(), also saying what kind of problem was found: TS_PROBLEM_CHECKSUM or
 *  TS_PROBLEM_GEOMETRY (header fields that disagree with the record). @p kind may be NULL. */
int ts__page_verify_kind(const void *buf, size_t len, const ts__tensor_rec *rec,
			 const char *name, uint64_t page_index, ts_problem_kind *kind);

/** Delete every page of tensor @p tensor_id in write transaction @p txn; *deleted (may be NULL)
 *  receives the count. Returns 0 or an LMDB/errno code, for ts__store_write(). */
int ts__pages_delete(ts_store *st, MDB_txn *txn, uint64_t tensor_id, uint64_t *deleted);

/** Tensor @p name (@p len bytes) is being replaced in write transaction @p txn: delete the pages
 *  of its old version, whose stored record is @p old_record. A damaged old record cannot name its
 *  pages: they stay, as orphans that ts_store_check() finds and repairs. Returns 0 or an
 *  LMDB/errno code, for ts__store_write(). */
int ts__pages_delete_replaced(ts_store *st, MDB_txn *txn, const char *name, size_t len,
			      const MDB_val *old_record);

/* -- pool.c: the worker pool -------------------------------------------------------------- */

/** Create a pool of @p threads workers. */
int ts__pool_create(struct ts__pool **out, int threads);
void ts__pool_free(struct ts__pool *pool);

/** Run fn(ud, i) for i in [0, n) on the pool's workers and the calling thread; return the first
 *  non-zero result (by lowest i), or 0. Safe to call from several threads at once. */
int ts__pool_run(struct ts__pool *pool, uint64_t n, int (*fn)(void *ud, uint64_t i), void *ud);

/* -- writer.c ----------------------------------------------------------------------------- */

/** Delete the pages and pending entries of interrupted writes (ids in the pending database).
 *  Called at open for writing and at ts_writer_begin(). *removed (may be NULL) receives the
 *  number of interrupted writes cleaned. 0 or a negative TS_E* code. */
int ts__writer_cleanup_pending(ts_store *st, uint64_t *removed);

/* -- group.c: write groups -------------------------------------------------------------- */

/* A tensor staged in a write group: pages and pending entry committed, record held here. */
typedef struct ts__staged {
	char *name; /* owned */
	ts__tensor_rec rec;
	int replace; /* TS_WRITE_REPLACE was set */
} ts__staged;

struct ts_group {
	ts_store *st;
	ts__staged *items; /* sorted by rec.id, ascending */
	size_t n, cap;
	int writers; /* writers of this group not yet committed or aborted (under writer_lock) */
};

/** 1 if tensor id @p id is staged in write group @p g (0 if @p g is NULL). The caller holds
 *  the writer slot, so that no tensor is staged meanwhile. */
int ts__group_owns(const ts_group *g, uint64_t id);

/** Index of the tensor staged under @p name in @p g, or -1. */
ptrdiff_t ts__group_find(const ts_group *g, const char *name);

/** Room for one more staged tensor, so that ts__group_add() cannot fail. 0 or TS_ENOMEM. */
int ts__group_reserve(ts_group *g);

/** Record tensor @p name (malloc'd; the group takes it) with record @p rec as staged, after
 *  the transaction that committed its last pages and, for a name staged before, deleted the
 *  earlier version's pages and pending entry; the earlier item is dropped. @p rec's id must be
 *  above every staged id. */
void ts__group_add(ts_group *g, char *name, const ts__tensor_rec *rec, int replace);

/* -- read side: reader.c, io_*.c, cache.c (called by store.c) ----------------------------- */

/** Set up the I/O backend @p want (TS_IO_DEFAULT resolves TSTORE_IO, then uring with the pread
 *  fallback on ENOSYS/EPERM/ENOMEM); sets st->io to the backend in effect. */
int ts__io_open(ts_store *st, ts_io_backend want);
void ts__io_close(ts_store *st);

/** Create the decoded-page cache with @p budget bytes (0: off). */
int ts__cache_create(struct ts__cache **out, uint64_t budget);
void ts__cache_free(struct ts__cache *cache);

/* -- lmdbcheck.c: LMDB's structure checked before LMDB follows it (issue 6) ----------------- */

/** At open, before LMDB sees the file (pread only): both meta pages, every page of the main
 *  tree, and every page of the databases named in @p full (@p nfull names). 0; TS_ECORRUPT
 *  saying which page is damaged and how; an errno code if the file cannot be opened. */
int ts__lmdb_check_file(const char *path, uint64_t file_size, const char *const *full,
			int nfull);

/** In read transaction @p txn: the pages LMDB visits to look up @p key in database @p dbname
 *  ("tensors", "pages", ...), so that mdb_get() cannot leave the file. 0 (also for a write
 *  transaction, which is not checked) or TS_ECORRUPT naming the database and the page. */
int ts__lmdb_check_key(ts_store *st, MDB_txn *txn, const char *dbname, const void *key,
		       size_t klen);

/** In read transaction @p txn: every page of database @p dbname (before a cursor walks it),
 *  including key order across pages. 0 or TS_ECORRUPT. */
int ts__lmdb_check_tree(ts_store *st, MDB_txn *txn, const char *dbname);

#endif
