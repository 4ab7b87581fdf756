/*
 * Attachments (engine/attach.c): files kept with the tensors as raw U8 vectors in a namespace
 * of their own. Bytes come back identical (whole and in ranges, sizes around page boundaries,
 * empty); a tensor and an attachment of the same name coexist; tensor listing never shows an
 * attachment and ts_writer_begin refuses the reserved namespace; names that are not clean
 * relative paths are refused; attachments join write groups (all or nothing) and are replaced
 * and deleted like tensors; a flipped byte in a page is detected; fsck sees them clean.
 */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tstore.h"
#include "storetest.h"

static void put(ts_store *st, ts_group *g, const char *name, const uint8_t *b, uint64_t n,
		unsigned flags)
{
	ts_write_opts o;
	ts_writer *w;
	ts_write_opts_init(&o);
	o.flags = flags;
	o.group = g;
	cr_assert_eq(ts_attachment_begin(&w, st, name, n, &o), 0, "%s", ts_error_last());
	/* in uneven pieces */
	for (uint64_t off = 0; off < n;) {
		uint64_t k = n - off < 7777 ? n - off : 7777;
		cr_assert_eq(ts_writer_append(w, b + off, (size_t)k), 0, "%s", ts_error_last());
		off += k;
	}
	cr_assert_eq(ts_writer_commit(NULL, w), 0, "%s", ts_error_last());
}

static uint8_t *random_bytes(uint64_t n, uint64_t *seed)
{
	uint8_t *b = malloc(n ? n : 1);
	cr_assert_not_null(b);
	for (uint64_t i = 0; i < n; i++)
		b[i] = (uint8_t)st_rand(seed);
	return b;
}

static void expect_bytes(ts_store *st, const char *name, const uint8_t *b, uint64_t n)
{
	uint64_t size = 0;
	uint8_t *got = malloc(n ? n : 1);
	cr_assert_eq(ts_attachment_size(&size, st, name), 0, "%s", ts_error_last());
	cr_assert_eq(size, n, "%s: size %llu, want %llu", name, (unsigned long long)size,
		     (unsigned long long)n);
	cr_assert_eq(ts_attachment_read(got, st, name, 0, (size_t)n), 0, "%s", ts_error_last());
	cr_assert(n == 0 || memcmp(got, b, (size_t)n) == 0, "%s: bytes differ", name);
	free(got);
}

Test(attach, bytes_come_back_identical_at_every_size)
{
	uint64_t seed = st_seed("attach");
	ts_store *st = st_create("a.tst", 2);
	/* empty, one byte, around the 65520-byte raw page, several pages */
	const uint64_t sizes[] = {0, 1, 65519, 65520, 65521, 300001};
	char name[64];
	uint8_t *b[6];
	for (int i = 0; i < 6; i++) {
		b[i] = random_bytes(sizes[i], &seed);
		snprintf(name, sizeof name, "dir/f%d.bin", i);
		put(st, NULL, name, b[i], sizes[i], 0);
	}
	ts_store_close(st);
	ts_open_opts oo;
	ts_open_opts_init(&oo);
	cr_assert_eq(ts_store_open(&st, st_path("a.tst"), &oo), 0);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof name, "dir/f%d.bin", i);
		expect_bytes(st, name, b[i], sizes[i]);
	}
	/* a range in the middle, across a page boundary */
	uint8_t part[1000];
	cr_assert_eq(ts_attachment_read(part, st, "dir/f5.bin", 65000, sizeof part), 0);
	cr_assert(memcmp(part, b[5] + 65000, sizeof part) == 0);
	cr_assert_eq(ts_attachment_read(part, st, "dir/f5.bin", 300000, 2), TS_ERANGE);
	cr_assert_eq(ts_attachment_read(part, st, "dir/nope", 0, 1), TS_ENOTFOUND);
	/* the record under its documented key (docs/FORMAT.md 3.1): pages of about 64 KiB */
	ts_tensor_info info;
	cr_assert_eq(ts_tensor_info_get(&info, st, "\xff" "file/dir/f5.bin"), 0);
	cr_assert_eq(info.page_count, (300001 + 65479) / 65480, "%llu pages",
		     (unsigned long long)info.page_count);
	uint64_t problems = 99;
	cr_assert_eq(ts_store_check(&problems, st, NULL), 0);
	cr_assert_eq(problems, 0);
	ts_store_close(st);
	for (int i = 0; i < 6; i++)
		free(b[i]);
}

static int count_tensors(void *ud, const char *name, const ts_tensor_info *info)
{
	(void)info;
	cr_assert((unsigned char)name[0] != 0xFF, "an attachment was listed as a tensor");
	++*(int *)ud;
	return 0;
}

typedef struct seen {
	char names[8][64];
	uint64_t sizes[8];
	int n;
} seen;

static int list_attachments(void *ud, const char *name, uint64_t size)
{
	seen *s = ud;
	cr_assert_lt(s->n, 8);
	snprintf(s->names[s->n], 64, "%s", name);
	s->sizes[s->n++] = size;
	return 0;
}

Test(attach, namespaces_never_meet)
{
	ts_store *st = st_create("n.tst", 1);
	uint8_t five[5] = {1, 2, 3, 4, 5};
	float x[4] = {1, 2, 3, 4};
	uint64_t shape[1] = {4};
	ts_codec_config raw = st_raw_f32();
	st_write_f32(st, "config.json", 1, shape, &raw, x, 0);
	put(st, NULL, "config.json", five, 5, 0);
	put(st, NULL, "tokenizer/vocab.txt", five, 3, 0);

	int n = 0;
	cr_assert_eq(ts_tensor_foreach(st, count_tensors, &n), 0);
	cr_assert_eq(n, 1);
	seen s = {0};
	cr_assert_eq(ts_attachment_foreach(st, list_attachments, &s), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.names[0], "config.json");
	cr_assert_eq(s.sizes[0], 5);
	cr_assert_str_eq(s.names[1], "tokenizer/vocab.txt");
	cr_assert_eq(s.sizes[1], 3);
	expect_bytes(st, "config.json", five, 5);
	ts_tensor_info info;
	cr_assert_eq(ts_tensor_info_get(&info, st, "config.json"), 0);
	cr_assert_eq(info.codec.raw_dtype, TS_F32);

	/* the reserved first byte is refused for tensors */
	ts_writer *w = NULL;
	cr_assert_eq(ts_writer_begin(&w, st, "\xff" "file/x", TS_F32, 1, shape, &raw, NULL),
		     TS_EINVAL);
	cr_assert_null(w);
	/* deleting one leaves the other */
	cr_assert_eq(ts_attachment_delete(st, "config.json"), 0);
	cr_assert_eq(ts_attachment_delete(st, "config.json"), TS_ENOTFOUND);
	cr_assert_eq(ts_tensor_info_get(&info, st, "config.json"), 0);
	uint64_t size;
	cr_assert_eq(ts_attachment_size(&size, st, "config.json"), TS_ENOTFOUND);
	ts_store_close(st);
}

Test(attach, names_must_be_clean_relative_paths)
{
	ts_store *st = st_create("p.tst", 1);
	static const char *const bad[] = {"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/",
					  "./a", "a/./b", "..", "."};
	char longname[TS_MAX_ATTACHMENT_NAME + 2];
	ts_writer *w;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		w = NULL;
		cr_expect_eq(ts_attachment_begin(&w, st, bad[i], 1, NULL), TS_EINVAL, "'%s'", bad[i]);
		cr_expect_null(w);
	}
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	cr_expect_eq(ts_attachment_begin(&w, st, longname, 1, NULL), TS_EINVAL);
	longname[TS_MAX_ATTACHMENT_NAME] = '\0'; /* the longest allowed */
	put(st, NULL, longname, (const uint8_t *)"z", 1, 0);
	/* dots inside names are fine */
	put(st, NULL, "..a/b..", (const uint8_t *)"z", 1, 0);
	ts_store_close(st);
}

Test(attach, groups_publish_all_or_nothing_and_replace)
{
	ts_store *st = st_create("g.tst", 1);
	uint8_t a[3] = {1, 2, 3}, b[4] = {9, 8, 7, 6};
	ts_group *g;
	put(st, NULL, "config.json", a, 3, 0);

	cr_assert_eq(ts_group_begin(&g, st), 0);
	put(st, g, "config.json", b, 4, TS_WRITE_REPLACE);
	put(st, g, "new.txt", b, 4, 0);
	expect_bytes(st, "config.json", a, 3); /* nothing visible before the commit */
	uint64_t size;
	cr_assert_eq(ts_attachment_size(&size, st, "new.txt"), TS_ENOTFOUND);
	ts_group_abort(g);
	expect_bytes(st, "config.json", a, 3);
	cr_assert_eq(ts_attachment_size(&size, st, "new.txt"), TS_ENOTFOUND);

	cr_assert_eq(ts_group_begin(&g, st), 0);
	put(st, g, "config.json", b, 4, TS_WRITE_REPLACE);
	put(st, g, "new.txt", b, 4, 0);
	cr_assert_eq(ts_group_commit(NULL, g), 0, "%s", ts_error_last());
	expect_bytes(st, "config.json", b, 4);
	expect_bytes(st, "new.txt", b, 4);

	/* without REPLACE an existing name is refused */
	ts_writer *w;
	int rc = ts_attachment_begin(&w, st, "new.txt", 1, NULL);
	if (rc == 0) {
		cr_assert_eq(ts_writer_append(w, "x", 1), 0);
		rc = ts_writer_commit(NULL, w);
	}
	cr_assert_eq(rc, TS_EEXIST);
	uint64_t problems = 99;
	cr_assert_eq(ts_store_check(&problems, st, NULL), 0);
	cr_assert_eq(problems, 0);
	ts_store_close(st);
}

Test(attach, a_damaged_page_is_detected)
{
	uint64_t seed = st_seed("attach-damage");
	ts_store *st = st_create("d.tst", 1);
	uint8_t *b = random_bytes(100000, &seed);
	/* a recognisable run to find in the file */
	memcpy(b + 70000, "ATTACHMENT-MARKER-0123456789", 28);
	put(st, NULL, "blob.bin", b, 100000, 0);
	ts_store_close(st);
	size_t len;
	uint8_t *file = st_read_file(st_path("d.tst"), &len);
	uint8_t *hit = memmem(file, len, "ATTACHMENT-MARKER-0123456789", 28);
	cr_assert_not_null(hit);
	FILE *f = fopen(st_path("d.tst"), "r+b");
	cr_assert_not_null(f);
	fseek(f, (long)(hit - file) + 5, SEEK_SET);
	fputc(hit[5] ^ 0x10, f);
	fclose(f);
	free(file);

	ts_open_opts oo;
	ts_open_opts_init(&oo);
	cr_assert_eq(ts_store_open(&st, st_path("d.tst"), &oo), 0);
	uint8_t *got = malloc(100000);
	cr_assert_eq(ts_attachment_read(got, st, "blob.bin", 0, 100000), TS_ECORRUPT);
	cr_assert(strstr(ts_error_last(), "blob.bin") != NULL, "%s", ts_error_last());
	/* the first page is intact */
	cr_assert_eq(ts_attachment_read(got, st, "blob.bin", 0, 1000), 0);
	cr_assert(memcmp(got, b, 1000) == 0);
	uint64_t problems = 0;
	cr_assert_eq(ts_store_check(&problems, st, NULL), 0);
	cr_assert_eq(problems, 1);
	ts_store_close(st);
	free(got);
	free(b);
}
