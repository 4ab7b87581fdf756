/*
 * Reading import sources ahead: a thread reads the byte ranges an import will consume, in the
 * order it will consume them, with O_DIRECT (no page-cache copy, no page faults) into a few
 * reused buffers, and scans what it read for amax and non-finite values where asked, while the
 * caller encodes what was read before (tools/cli/srcread.c).
 *
 * Invariants
 *   1. Pieces come in exactly the order of the ranges given, each range cut into pieces of at
 *      most srcread_range_piece(); a piece never spans two ranges.
 *   2. Memory is bounded by the budget given to srcread_start(), whatever the sources' sizes.
 *   3. A piece's bytes stay valid until the next srcread_next() or srcread_stop().
 */
#ifndef TS_TOOLS_SRCREAD_H
#define TS_TOOLS_SRCREAD_H

#include <stddef.h>
#include <stdint.h>

#include "tstore.h"

/* One byte range of a source file to be read. */
typedef struct sr_range {
	const char *path; /* for opening with O_DIRECT and for messages; borrowed */
	int fd;           /* an open descriptor of it, used when O_DIRECT is refused */
	uint64_t offset, bytes;
	int scan;         /* the reading thread scans each piece (tools/cli/scan.h) ... */
	ts_dtype dtype;   /* ... as elements of this dtype */
} sr_range;

typedef struct sr_piece {
	const uint8_t *data;
	uint64_t offset; /* of data[0] within its range */
	uint64_t bytes;
	size_t range;    /* index of its range */
	int last;        /* the range's last piece */
	uint32_t mx;     /* scan_add() of this piece alone, if its range asked for a scan */
	uint64_t bad;
} sr_piece;

typedef struct srcread srcread;

/** Start reading @p n ranges (copied) with at most @p budget bytes of buffers. 0 or -1 with a
 *  message in @p err. */
int srcread_start(srcread **out, const sr_range *ranges, size_t n, uint64_t budget, char *err,
		  size_t err_size);

/** The next piece, waiting for it; the previous piece's buffer goes back to the reader.
 *  0; -1 with a message in @p err (a read failed, naming the file and offset). */
int srcread_next(srcread *r, sr_piece *p, char *err, size_t err_size);

/** The largest piece with @p budget bytes of buffers (its share of one buffer; at least 1 MiB,
 *  so that a tiny budget still makes progress). */
uint64_t srcread_piece_max(uint64_t budget);

/** The largest piece of range @p g with @p budget bytes of buffers: a range to be scanned that
 *  fits srcread_piece_max() comes whole (one piece); any other range streams in pieces of at
 *  most SRCREAD_STREAM_PIECE (or the piece maximum, if smaller). */
uint64_t srcread_range_piece(uint64_t budget, const sr_range *g);

/* Streamed ranges need no more: larger pieces only cost fresh buffer memory, which the kernel
 * clears page by page at first use (on the development VM, ~1 GB/s: 0.28 s of CPU for the two
 * 128 MiB buffers that whole 125 MiB embeddings asked for). */
#define SRCREAD_STREAM_PIECE (32ull << 20)

/** Stop reading and free everything; @p r may be NULL. */
void srcread_stop(srcread *r);

#endif
