/*
 * Page keys, the page header, page verification and the deletion of a tensor's pages
 * (engine/page.c).
 */
#ifndef TS_ENGINE_PAGE_H
#define TS_ENGINE_PAGE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/format.h"
#include "engine/handle.h"


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
 *  receives the count. Returns 0 or an LMDB/errno code, for ts__txn_write(). */
int ts__pages_delete(ts_store *st, MDB_txn *txn, uint64_t tensor_id, uint64_t *deleted);

#endif
