/*
 * What tstore relies on of LMDB's file layout (liblmdb 0.9, mdb.c): page and node headers and
 * their flags, as the reader (which reads overflow runs itself) and lmdbcheck (which checks the
 * tree before LMDB follows it) both need them. Constants and host-order field reads only.
 * LMDB writes its structures in the byte order of the host that wrote them.
 */
#ifndef TS_ENGINE_LMDBFMT_H
#define TS_ENGINE_LMDBFMT_H

#include <stdint.h>
#include <string.h>

/* The page size of the stores tstore writes (LMDB's default on Linux: the OS page size). */
#define TS_LMDB_PAGE 4096u

/* Page header: pgno u64, pad u16, flags u16, then lower u16 and upper u16 (branch and leaf
 * pages) or a page count u32 (the first page of an overflow run). */
#define TS_LMDB_PAGEHDR 16u
#define TS_LMDB_PAGEHDR_FLAGS 10u
#define TS_LMDB_PAGEHDR_PAGES 12u
#define TS_LMDB_NODEHDR 8u /* lo u16, hi u16, flags u16, ksize u16 */

/* Page flags. */
#define TS_LMDB_P_BRANCH 0x01u
#define TS_LMDB_P_LEAF 0x02u
#define TS_LMDB_P_OVERFLOW 0x04u
#define TS_LMDB_P_META 0x08u
#define TS_LMDB_P_LEAF2 0x20u
#define TS_LMDB_P_SUBP 0x40u
#define TS_LMDB_P_KIND                                                                             \
	(TS_LMDB_P_BRANCH | TS_LMDB_P_LEAF | TS_LMDB_P_OVERFLOW | TS_LMDB_P_META |                 \
	 TS_LMDB_P_LEAF2 | TS_LMDB_P_SUBP)

/* Node flags. */
#define TS_LMDB_F_BIGDATA 0x01u
#define TS_LMDB_F_SUBDATA 0x02u
#define TS_LMDB_F_DUPDATA 0x04u

#define TS_LMDB_DB_SIZE 48u /* MDB_db: pad u32, flags u16, depth u16, 4 x u64 counts, root u64 */
#define TS_LMDB_MAGIC 0xBEEFC0DEu

static inline uint16_t ts__lmdb_u16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static inline uint32_t ts__lmdb_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t ts__lmdb_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

#endif
