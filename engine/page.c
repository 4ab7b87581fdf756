/*
 * Pages: their keys in the pages database and their 40-byte header (layout in engine/format.h
 * and docs/FORMAT.md, "Pages").
 *
 * Invariants
 *   1. ts__page_verify() checks every header field against the tensor record and its geometry,
 *      and the length of the value against the header, before the checksum is computed over
 *      the payload: no length read from the page is used unchecked.
 *   2. The checksum covers header bytes [0, 32) and the payload, so a page moved to another key
 *      (wrong tensor id or index) is detected as well as a damaged one.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec/checksum.h"
#include "codec/lossless.h"
#include "common/byteorder.h"
#include "common/error.h"
#include "engine/format.h"
#include "engine/geometry.h"
#include "engine/handle.h"
#include "engine/page.h"

void ts__page_key(uint8_t key[TS_PAGE_KEY_SIZE], uint64_t tensor_id, uint64_t page_index)
{
	ts__put_be64(key, tensor_id);
	ts__put_be64(key + 8, page_index);
}

void ts__page_key_parse(const uint8_t key[TS_PAGE_KEY_SIZE], uint64_t *tensor_id,
			uint64_t *page_index)
{
	*tensor_id = ts__get_be64(key);
	*page_index = ts__get_be64(key + 8);
}

static uint64_t page_checksum(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
	return ts__checksum_xxh3(hdr, 32, payload, len);
}

void ts__page_seal(uint8_t *buf, const ts__page_hdr *hdr)
{
	buf[0] = TS_PAGE_TYPE;
	buf[1] = TS_PAGE_VERSION;
	buf[2] = (uint8_t)hdr->codec;
	buf[3] = 0;
	ts__put_le32(buf + 4, hdr->rows);
	ts__put_le32(buf + 8, hdr->cols);
	ts__put_le32(buf + 12, hdr->payload_len);
	ts__put_le64(buf + 16, hdr->tensor_id);
	ts__put_le64(buf + 24, hdr->page_index);
	ts__put_le64(buf + 32, page_checksum(buf, buf + TS_PAGE_HEADER_SIZE, hdr->payload_len));
}

/* Damage found in page @p page_index of tensor @p name, the one formatter of this file's messages:
 * *kind (where asked) @p k, the last error "page N of tensor 'NAME': <what>", TS_ECORRUPT. */
__attribute__((format(printf, 5, 6))) static int damage(ts_problem_kind *kind, ts_problem_kind k,
							uint64_t page_index, const char *name,
							const char *fmt, ...)
{
	char what[512];
	va_list ap;
	if (kind)
		*kind = k;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return ts__err(TS_ECORRUPT, "page %" PRIu64 " of tensor '%s': %s", page_index, name, what);
}

int ts__page_verify_kind(const void *vbuf, size_t len, const ts__tensor_rec *rec, const char *name,
			 uint64_t page_index, ts_problem_kind *kind)
{
	const uint8_t *buf = vbuf;
	uint64_t r0, nr, c0, nc, want_len, id, index, sum;
	uint32_t rows, cols, plen;

	if (page_index >= rec->page_count)
		return damage(kind, TS_PROBLEM_GEOMETRY, page_index, name,
			      "beyond its %" PRIu64 " pages", rec->page_count);
	if (len < TS_PAGE_HEADER_SIZE)
		return damage(kind, TS_PROBLEM_GEOMETRY, page_index, name,
			      "%zu bytes, shorter than a page header", len);
	if (buf[0] != TS_PAGE_TYPE || buf[1] != TS_PAGE_VERSION || buf[3] != 0)
		return damage(kind, TS_PROBLEM_CHECKSUM, page_index, name,
			      "bad header (type %#x, version %u)", buf[0], buf[1]);
	ts__geometry_page_rect(rec, page_index, &r0, &nr, &c0, &nc);
	want_len = ts_codec_encoded_size(&rec->codec, nr, nc);
	rows = ts__get_le32(buf + 4);
	cols = ts__get_le32(buf + 8);
	plen = ts__get_le32(buf + 12);
	id = ts__get_le64(buf + 16);
	index = ts__get_le64(buf + 24);
	sum = ts__get_le64(buf + 32);
	/* A flipped bit in the header is still damage, not a geometry problem: the checksum
	 * (which covers the header) decides which it is before the fields are judged. */
	if ((uint64_t)plen + TS_PAGE_HEADER_SIZE == len &&
	    sum != page_checksum(buf, buf + TS_PAGE_HEADER_SIZE, plen))
		return damage(kind, TS_PROBLEM_CHECKSUM, page_index, name, "checksum mismatch");
	if ((uint64_t)plen + TS_PAGE_HEADER_SIZE != len)
		return damage(kind, TS_PROBLEM_CHECKSUM, page_index, name,
			      "header says %u payload bytes, the page holds %zu", plen,
			      len - TS_PAGE_HEADER_SIZE);
	if (buf[2] != (unsigned)rec->codec.codec)
		return damage(kind, TS_PROBLEM_GEOMETRY, page_index, name,
			      "codec %u, the tensor's is %u", buf[2], (unsigned)rec->codec.codec);
	if (id != rec->id || index != page_index)
		return damage(kind, TS_PROBLEM_GEOMETRY, page_index, name,
			      "header names page %" PRIu64 " of tensor id %" PRIu64
			      ", expected id %" PRIu64,
			      index, id, rec->id);
	if (rows != nr || cols != nc)
		return damage(kind, TS_PROBLEM_GEOMETRY, page_index, name,
			      "%u x %u elements, the geometry says %" PRIu64 " x %" PRIu64, rows,
			      cols, nr, nc);
	if (rec->codec.codec == TS_CODEC_LOSSLESS) {
		/* a length the data decides: at most the codec's bound, and what its header says */
		uint64_t says = ts__lossless_payload_size(buf + TS_PAGE_HEADER_SIZE, plen,
							  rec->codec.raw_dtype, nr * nc);
		if (plen > want_len || says != plen)
			return damage(kind, TS_PROBLEM_GEOMETRY, page_index, name,
				      "lossless payload of %u bytes, its header says %" PRIu64
				      " (at most %" PRIu64 ")",
				      plen, says, want_len);
	} else if (plen != want_len) {
		return damage(kind, TS_PROBLEM_GEOMETRY, page_index, name,
			      "payload of %u bytes, %" PRIu64 " expected", plen, want_len);
	}
	if (kind)
		*kind = TS_PROBLEM_GEOMETRY;
	return 0;
}

int ts__page_verify(const void *buf, size_t len, const ts__tensor_rec *rec, const char *name,
		    uint64_t page_index)
{
	return ts__page_verify_kind(buf, len, rec, name, page_index, NULL);
}

int ts__pages_delete(ts_store *st, MDB_txn *txn, uint64_t tensor_id, uint64_t *deleted)
{
	uint8_t kb[TS_PAGE_KEY_SIZE];
	MDB_cursor *cur;
	MDB_val key, val;
	uint64_t n = 0;
	int rc;

	if (deleted)
		*deleted = 0;
	rc = mdb_cursor_open(txn, st->dbi_pages, &cur);
	if (rc)
		return rc;
	ts__page_key(kb, tensor_id, 0);
	key.mv_data = kb;
	key.mv_size = sizeof(kb);
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0) {
		if (key.mv_size < 8 || ts__get_be64(key.mv_data) != tensor_id)
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc)
			break;
		n++;
		/* Seek again rather than trust the cursor's position after a delete. */
		key.mv_data = kb;
		key.mv_size = sizeof(kb);
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	}
	mdb_cursor_close(cur);
	if (deleted)
		*deleted = n;
	return rc == MDB_NOTFOUND ? 0 : rc;
}
