/*
 * tools/cli/srcread.c: the import's read-ahead. Every piece holds exactly the file's bytes of
 * its range, in order, whatever the alignment; the scan of a scanned range finds the amax and
 * the count of non-finite values that the test planted (worked out here, element by element),
 * including an element that straddles two of the reader's requests; a file that ends before a
 * range is an error naming the file. Both ways of reading are covered: O_DIRECT through
 * io_uring, and plain reads of the caller's descriptor where the file cannot be opened again
 * with O_DIRECT (here: its name is removed once it is open). The plain reads go one request at a
 * time, each scanned as it arrives, so they also check deterministically that the element
 * straddling two requests is scanned once, whole.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli/scan.h"
#include "tools/cli/srcread.h"

#define MIB (1024u * 1024u)
#define FILE_BYTES (45u * MIB + 12345u)

static char path[4096];
static uint8_t *bytes; /* the file's contents */

/* A file of pseudo-random bytes in $TMPDIR or /tmp, kept in `bytes` (the planted values, made
 * again by a second call, stay in `bytes`). */
static void make_file(void)
{
	const char *dir = getenv("TMPDIR");
	uint64_t x = 0x9E3779B97F4A7C15ull;
	FILE *f;

	snprintf(path, sizeof path, "%s/tstore-srcread-%d", dir && *dir ? dir : "/tmp",
		 (int)getpid());
	if (!bytes) {
		bytes = malloc(FILE_BYTES);
		cr_assert_not_null(bytes);
		for (size_t i = 0; i < FILE_BYTES; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			/* every byte 0x00-0x3E or 0x80-0xBE: at whatever alignment, the BF16
			 * elements are finite and below 0.5 in magnitude */
			bytes[i] = (uint8_t)((x % 0x3F) | (x >> 8 & 0x80));
		}
	}
	f = fopen(path, "wb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(bytes, 1, FILE_BYTES, f), FILE_BYTES);
	cr_assert_eq(fclose(f), 0);
}

/* Put BF16 value @p v at file offset @p off (little-endian), in the file and in `bytes`. */
static void plant(uint64_t off, uint16_t v)
{
	int fd = open(path, O_WRONLY);
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, b, 2, (off_t)off), 2);
	close(fd);
	memcpy(bytes + off, b, 2);
}

static void cleanup(void)
{
	unlink(path);
	free(bytes);
	bytes = NULL;
}

/* Read ranges @p r (n of them) with @p budget of buffers; every piece checked against the file,
 * the scan's amax bits and non-finite count of each scanned range returned. */
static void read_all(sr_range *r, size_t n, uint64_t budget, uint32_t *mx, uint64_t *bad,
		     int plain)
{
	srcread *rd;
	char err[512];
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0);
	if (plain)
		unlink(path);
	for (size_t i = 0; i < n; i++) {
		r[i].path = path;
		r[i].fd = fd;
		mx[i] = 0;
		bad[i] = 0;
	}
	cr_assert_eq(srcread_start(&rd, r, n, budget, err, sizeof err), 0, "%s", err);
	for (size_t i = 0; i < n; i++) {
		uint64_t at = 0;
		sr_piece p;
		do {
			cr_assert_eq(srcread_next(rd, &p, err, sizeof err), 0, "%s", err);
			cr_assert_eq(p.range, i);
			cr_assert_eq(p.offset, at, "range %zu: a piece at %llu, expected %llu", i,
				     (unsigned long long)p.offset, (unsigned long long)at);
			cr_assert(memcmp(p.data, bytes + r[i].offset + at, p.bytes) == 0,
				  "range %zu: the piece at %llu differs from the file", i,
				  (unsigned long long)at);
			at += p.bytes;
			mx[i] = p.mx > mx[i] ? p.mx : mx[i];
			bad[i] += p.bad;
		} while (!p.last);
		cr_assert_eq(at, r[i].bytes);
	}
	srcread_stop(rd);
	close(fd);
}

static void pieces_and_scans(int plain)
{
	/* a 44 MiB BF16 range at an odd offset (whole: one piece of six requests, more than are
	 * in flight at once; the element at file offset 16 MiB - 1 straddling two of them), a
	 * streamed one, a tiny one, an empty one, and the first again */
	sr_range r[5] = {
		{.offset = 4093, .bytes = 44u * MIB, .scan = 1, .dtype = TS_BF16},
		{.offset = 12345, .bytes = 9u * MIB + 7, .scan = 0, .dtype = TS_U8},
		{.offset = FILE_BYTES - 100, .bytes = 100, .scan = 1, .dtype = TS_BF16},
		{.offset = 77, .bytes = 0, .scan = 1, .dtype = TS_BF16},
		{.offset = 4093, .bytes = 44u * MIB, .scan = 1, .dtype = TS_BF16},
	};
	uint32_t mx[5];
	uint64_t bad[5];

	make_file();
	plant(16u * MIB - 1, 0x4321);       /* the amax (about 1.0e2), across two requests */
	plant(4093 + 2 * 1000, 0x7F80);     /* +Inf */
	plant(4093 + 2 * 2000, 0xFFC1);     /* a NaN */
	plant(4093 + 44u * MIB - 2, 0x4300); /* the last element: 128, below the amax */
	plant(4093 + 40u * MIB, 0xC320);     /* in the sixth request: -160, below the amax */
	plant(FILE_BYTES - 2, 0xC000);      /* the tiny range's amax, -2 */
	read_all(r, 5, 128u * MIB, mx, bad, plain);
	cr_assert_eq(mx[0], 0x4321, "amax bits %#x", mx[0]);
	cr_assert_eq(bad[0], 2);
	cr_assert_eq(mx[2], 0x4000, "amax bits %#x", mx[2]);
	cr_assert_eq(bad[2], 0);
	cr_assert_eq(mx[4], 0x4321);
	cr_assert_eq(bad[4], 2);

	/* a small budget: the scanned range is read in pieces, each scanned on its own */
	if (plain)
		make_file();
	read_all(r, 1, 4u * MIB, mx, bad, plain);
	cr_assert_eq(mx[0], 0x4321);
	cr_assert_eq(bad[0], 2);
	cleanup();
}

/* A range running @p past bytes beyond the file's end, the file @p size bytes long: an error
 * naming the file and where it ends. */
static void truncated(int plain, uint64_t size, uint64_t past)
{
	sr_range r = {.offset = size + past - 20u * MIB, .bytes = 20u * MIB, .scan = 1,
		      .dtype = TS_BF16};
	srcread *rd;
	sr_piece p;
	char err[512], want[64];
	int fd;

	make_file();
	cr_assert_eq(truncate(path, (off_t)size), 0);
	fd = open(path, O_RDONLY);
	if (plain)
		unlink(path);
	r.path = path;
	r.fd = fd;
	cr_assert_eq(srcread_start(&rd, &r, 1, 64u * MIB, err, sizeof err), 0, "%s", err);
	err[0] = 0;
	cr_assert_eq(srcread_next(rd, &p, err, sizeof err), -1);
	snprintf(want, sizeof want, "the file ends at offset %llu,", (unsigned long long)size);
	cr_assert(strstr(err, path) && strstr(err, want), "message: %s (expected \"%s\")", err,
		  want);
	srcread_stop(rd);
	close(fd);
	cleanup();
}

Test(srcread, pieces_hold_the_files_bytes_and_scans_find_what_was_planted)
{
	pieces_and_scans(0);
}

Test(srcread, without_o_direct_pieces_and_scans_are_the_same)
{
	pieces_and_scans(1);
}

/* Ends mid-block, and on a block boundary with whole requests past it (the requests in
 * flight complete in any order: the message still says where the file ends). */
Test(srcread, a_file_ending_before_its_range_is_an_error_naming_where)
{
	truncated(0, FILE_BYTES, 3u * MIB);
	truncated(0, 40u * MIB, 12u * MIB + 12289);
}

Test(srcread, without_o_direct_a_short_file_is_the_same_error)
{
	truncated(1, FILE_BYTES, 3u * MIB);
	truncated(1, 40u * MIB, 12u * MIB + 12289);
}
