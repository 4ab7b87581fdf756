/*
 * tools/cli/safetensors.c (strict reader, header writer, sharded index), tools/cli/json.c (strict JSON)
 * and tools/cli/npy.c (.npy header): well-formed inputs parse to what they say, and every kind of
 * hostile input is rejected with a message naming what is wrong.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli/json.h"
#include "tools/cli/npy.h"
#include "tools/cli/safetensors.h"

static uint8_t *img;
static size_t img_size;
static char err[512];
static st_file f;

/* An image: 8-byte LE length, the header text, then data_len bytes of 0x5A. */
static int parse_hdr(const char *header, size_t data_len)
{
	size_t h = strlen(header);
	free(img);
	img_size = 8 + h + data_len;
	img = malloc(img_size);
	for (int i = 0; i < 8; i++)
		img[i] = (uint8_t)((uint64_t)h >> (8 * i));
	memcpy(img + 8, header, h);
	memset(img + 8 + h, 0x5A, data_len);
	memset(&f, 0, sizeof f);
	err[0] = '\0';
	return st_parse_buffer(&f, img, img_size, err, sizeof err);
}

static void cleanup(void)
{
	st_close(&f);
	free(img);
	img = NULL;
}

TestSuite(safetensors, .fini = cleanup);

Test(safetensors, well_formed_file_parses_to_its_header)
{
	const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
			"\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[16,28]},"
			"\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
			"\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[28,36]}}";
	cr_assert_eq(parse_hdr(h, 36), 0, "%s", err);
	cr_assert_eq(f.count, 3);
	cr_assert_str_eq(f.tensors[0].name, "a");
	cr_assert_eq(f.tensors[0].dtype, TS_F32);
	cr_assert_eq(f.tensors[0].ndim, 1);
	cr_assert_eq(f.tensors[0].shape[0], 4);
	cr_assert_str_eq(f.tensors[1].name, "b");
	cr_assert_eq(f.tensors[1].dtype, TS_BF16);
	cr_assert_eq(f.tensors[1].nelem, 6);
	cr_assert_eq(f.tensors[1].data, img + 8 + strlen(h) + 16);
	cr_assert_eq(f.tensors[2].ndim, 0);
	cr_assert_eq(f.tensors[2].nelem, 1);
	cr_assert_eq(f.meta_count, 1);
	cr_assert_str_eq(f.meta[0].key, "format");
	cr_assert_str_eq(f.meta[0].value, "pt");
	cr_assert_not_null(st_find(&f, "s"));
	cr_assert_null(st_find(&f, "nope"));
}

Test(safetensors, too_short_file_is_rejected)
{
	memset(&f, 0, sizeof f);
	uint8_t b[5] = {1, 0, 0, 0, 0};
	cr_assert_eq(st_parse_buffer(&f, b, sizeof b, err, sizeof err), -1);
	cr_assert(strstr(err, "too short"), "%s", err);
}

Test(safetensors, header_length_past_end_of_file_is_rejected)
{
	uint8_t b[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
	memset(&f, 0, sizeof f);
	cr_assert_eq(st_parse_buffer(&f, b, sizeof b, err, sizeof err), -1);
	cr_assert(strstr(err, "past the end"), "%s", err);
}

Test(safetensors, huge_header_length_is_rejected_before_reading)
{
	uint8_t b[16] = {0, 0, 0, 0, 0, 0, 0, 0x7F, '{', '}'};
	memset(&f, 0, sizeof f);
	cr_assert_eq(st_parse_buffer(&f, b, sizeof b, err, sizeof err), -1);
	cr_assert(strstr(err, "exceeds the limit"), "%s", err);
	b[7] = 0;
	b[0] = 0x01;
	b[3] = 0x10; /* 256 MiB + 1 */
	cr_assert_eq(st_parse_buffer(&f, b, sizeof b, err, sizeof err), -1);
	cr_assert(strstr(err, "exceeds the limit"), "%s", err);
}

Test(safetensors, bad_json_is_rejected_with_position)
{
	cr_assert_eq(parse_hdr("{\"a\":{\"dtype\":\"F32\",}}", 0), -1);
	cr_assert(strstr(err, "not valid JSON"), "%s", err);
	cr_assert(strstr(err, "byte"), "%s", err);
	cr_assert_eq(parse_hdr("[1,2]", 0), -1);
	cr_assert(strstr(err, "not a JSON object"), "%s", err);
	cr_assert_eq(parse_hdr("{}  x", 0), -1);
	cr_assert(strstr(err, "trailing"), "%s", err);
}

Test(safetensors, overlapping_offsets_are_rejected)
{
	const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
			"\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}";
	cr_assert_eq(parse_hdr(h, 24), -1);
	cr_assert(strstr(err, "overlap"), "%s", err);
	cr_assert(strstr(err, "'b'"), "%s", err);
}

Test(safetensors, offsets_past_the_end_are_rejected)
{
	const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
	cr_assert_eq(parse_hdr(h, 12), -1);
	cr_assert(strstr(err, "past the end of the data"), "%s", err);
	cr_assert(strstr(err, "'a'"), "%s", err);
}

Test(safetensors, gaps_and_trailing_bytes_are_rejected)
{
	const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
	cr_assert_eq(parse_hdr(h, 8), -1);
	cr_assert(strstr(err, "gap"), "%s", err);
	const char *h2 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
	cr_assert_eq(parse_hdr(h2, 9), -1);
	cr_assert(strstr(err, "after the last tensor"), "%s", err);
}

Test(safetensors, shape_and_byte_size_must_agree)
{
	const char *h = "{\"a\":{\"dtype\":\"F16\",\"shape\":[3,3],\"data_offsets\":[0,16]}}";
	cr_assert_eq(parse_hdr(h, 16), -1);
	cr_assert(strstr(err, "18 bytes"), "%s", err);
	cr_assert(strstr(err, "span 16"), "%s", err);
}

Test(safetensors, unknown_and_unsupported_dtypes_are_rejected)
{
	cr_assert_eq(parse_hdr("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), -1);
	cr_assert(strstr(err, "unknown dtype 'Q4'"), "%s", err);
	cr_assert_eq(parse_hdr("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), -1);
	cr_assert(strstr(err, "unknown dtype"), "%s", err);
	cr_assert_eq(parse_hdr("{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1), -1);
	cr_assert(strstr(err, "unsupported dtype 'F4'"), "%s", err);
}

Test(safetensors, names_that_are_not_utf8_are_rejected)
{
	cr_assert_eq(parse_hdr("{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), -1);
	cr_assert(strstr(err, "UTF-8"), "%s", err);
	/* overlong encoding of '/' */
	cr_assert_eq(parse_hdr("{\"\xc0\xaf\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), -1);
	/* a lone surrogate written as an escape */
	cr_assert_eq(parse_hdr("{\"\\ud800\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), -1);
	cr_assert(strstr(err, "surrogate"), "%s", err);
	/* a NUL inside a name */
	cr_assert_eq(parse_hdr("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), -1);
	cr_assert(strstr(err, "NUL"), "%s", err);
	/* valid multi-byte names are fine */
	cr_assert_eq(parse_hdr("{\"\xc3\xa9\\u00e9\\ud83d\\ude00\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), 0, "%s", err);
	cr_assert_str_eq(f.tensors[0].name, "\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80");
}

Test(safetensors, duplicate_names_are_rejected)
{
	const char *h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
			"\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}";
	cr_assert_eq(parse_hdr(h, 2), -1);
	cr_assert(strstr(err, "duplicate name"), "%s", err);
}

Test(safetensors, dimension_products_that_overflow_are_rejected)
{
	const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]}}";
	cr_assert_eq(parse_hdr(h, 0), -1);
	cr_assert(strstr(err, "overflows"), "%s", err);
	const char *h2 = "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}";
	cr_assert_eq(parse_hdr(h2, 0), -1);
	cr_assert(strstr(err, "overflows"), "%s", err);
	const char *h3 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,0]}}";
	cr_assert_eq(parse_hdr(h3, 0), -1);
	const char *h4 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}";
	cr_assert_eq(parse_hdr(h4, 0), -1);
	cr_assert(strstr(err, "non-negative integer"), "%s", err);
}

Test(safetensors, malformed_entries_are_rejected)
{
	cr_assert_eq(parse_hdr("{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1), -1);
	cr_assert(strstr(err, "data_offsets"), "%s", err);
	cr_assert_eq(parse_hdr("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,0]}}", 1), -1);
	cr_assert_eq(parse_hdr("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 1), -1);
	cr_assert(strstr(err, "unexpected field"), "%s", err);
	cr_assert_eq(parse_hdr("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1), -1);
	cr_assert(strstr(err, "dimensions"), "%s", err);
	cr_assert_eq(parse_hdr("{\"__metadata__\":{\"k\":1}}", 0), -1);
	cr_assert(strstr(err, "not a string"), "%s", err);
	cr_assert_eq(parse_hdr("{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), -1);
	cr_assert(strstr(err, "empty name"), "%s", err);
}

Test(safetensors, empty_tensors_and_empty_files_parse)
{
	cr_assert_eq(parse_hdr("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]}}", 0), 0, "%s", err);
	cr_assert_eq(f.tensors[0].nelem, 0);
	st_close(&f);
	cr_assert_eq(parse_hdr("{}", 0), 0, "%s", err);
	cr_assert_eq(f.count, 0);
}

Test(safetensors, writer_output_parses_back_aligned)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	st_out_tensor t[2] = {{"w\"q", TS_F32, 2, {2, 3}}, {"n", TS_BF16, 1, {3}}};
	st_meta meta[1] = {{"format", "pt"}};
	uint64_t ds, off[2];
	cr_assert_eq(st_write_header(m, t, 2, meta, 1, &ds, off), 0);
	for (int i = 0; i < 24 + 6; i++)
		fputc(i, m);
	fclose(m);
	cr_assert_eq(ds % 8, 0);
	cr_assert_eq(len, ds + 30);
	cr_assert_eq(off[0], 0);
	cr_assert_eq(off[1], 24);
	/* header padded with spaces */
	cr_assert_eq(buf[ds - 1], '}' == buf[ds - 1] ? '}' : ' ');
	memset(&f, 0, sizeof f);
	cr_assert_eq(st_parse_buffer(&f, (uint8_t *)buf, len, err, sizeof err), 0, "%s", err);
	cr_assert_eq(f.count, 2);
	const st_tensor *a = st_find(&f, "w\"q");
	cr_assert_not_null(a);
	cr_assert_eq(a->shape[1], 3);
	cr_assert_eq(a->data, (uint8_t *)buf + ds);
	cr_assert_eq(st_find(&f, "n")->data[0], 24);
	cr_assert_str_eq(f.meta[0].value, "pt");
	st_close(&f);
	free(buf);
}

static void write_file(const char *path, const char *header, size_t data_len)
{
	FILE *o = fopen(path, "wb");
	size_t h = strlen(header);
	uint8_t len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (uint8_t)((uint64_t)h >> (8 * i));
	fwrite(len8, 1, 8, o);
	fwrite(header, 1, h, o);
	for (size_t i = 0; i < data_len; i++)
		fputc(0, o);
	fclose(o);
}

Test(safetensors, sharded_index_opens_every_shard_and_checks_the_map)
{
	char dir[] = "/tmp/ts_st_XXXXXX", p1[256], p2[256], ix[256];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(p1, sizeof p1, "%s/s1.safetensors", dir);
	snprintf(p2, sizeof p2, "%s/s2.safetensors", dir);
	snprintf(ix, sizeof ix, "%s/model.safetensors.index.json", dir);
	write_file(p1, "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
	write_file(p2, "{\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", 3);
	FILE *o = fopen(ix, "w");
	fputs("{\"metadata\":{},\"weight_map\":{\"b\":\"s2.safetensors\",\"a\":\"s1.safetensors\"}}", o);
	fclose(o);
	st_checkpoint ck;
	char *paths[1] = {ix};
	cr_assert_eq(st_checkpoint_open(&ck, paths, 1, err, sizeof err), 0, "%s", err);
	cr_assert_eq(ck.count, 2);
	cr_assert_eq(ck.file_count, 2);
	cr_assert_str_eq(ck.tensors[0]->name, "a");
	cr_assert_eq(st_checkpoint_find(&ck, "b")->shape[0], 3);
	st_checkpoint_close(&ck);

	/* a map entry whose shard does not hold it */
	o = fopen(ix, "w");
	fputs("{\"weight_map\":{\"b\":\"s1.safetensors\",\"a\":\"s1.safetensors\"}}", o);
	fclose(o);
	cr_assert_eq(st_checkpoint_open(&ck, paths, 1, err, sizeof err), -1);
	cr_assert(strstr(err, "'b'"), "%s", err);
	/* a shard outside the directory */
	o = fopen(ix, "w");
	fputs("{\"weight_map\":{\"a\":\"../s1.safetensors\"}}", o);
	fclose(o);
	cr_assert_eq(st_checkpoint_open(&ck, paths, 1, err, sizeof err), -1);
	cr_assert(strstr(err, "outside"), "%s", err);
	/* the same tensor in two inputs */
	char *two[2] = {p1, p1};
	cr_assert_eq(st_checkpoint_open(&ck, two, 2, err, sizeof err), -1);
	write_file(p2, "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", 3);
	char *both[2] = {p1, p2};
	cr_assert_eq(st_checkpoint_open(&ck, both, 2, err, sizeof err), -1);
	cr_assert(strstr(err, "appears in both"), "%s", err);
	/* truncated shard */
	write_file(p2, "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", 2);
	char *one[1] = {p2};
	cr_assert_eq(st_checkpoint_open(&ck, one, 1, err, sizeof err), -1);
	cr_assert(strstr(err, "past the end"), "%s", err);
	cr_assert(strstr(err, p2), "%s", err);
	unlink(p1);
	unlink(p2);
	unlink(ix);
	rmdir(dir);
}

Test(json, strict_grammar)
{
	json_value *v;
	const char *bad[] = {"[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "\"\\x\"", "\"a\tb\"",
			     "tru", "nul", "{\"a\" 1}", "[1 2]", "\"\\ud800\\u0041\"", "\"\\udc00\"",
			     "", "  ", "{", "\"abc", "1e", "+1", "NaN", "/*c*/1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(json_parse(&v, bad[i], strlen(bad[i]), err, sizeof err), -1,
			     "accepted '%s'", bad[i]);
		cr_assert_null(v);
		cr_assert_gt(strlen(err), 0);
	}
	const char *good = " {\"a\": [1, -2.5e3, true, false, null, \"x\\n\\u00e9\"], \"b\": {}} ";
	cr_assert_eq(json_parse(&v, good, strlen(good), err, sizeof err), 0, "%s", err);
	const json_value *a = json_get(v, "a");
	cr_assert_eq(a->u.arr.count, 6);
	cr_assert_eq(a->u.arr.items[0]->u.num.u, 1);
	cr_assert(a->u.arr.items[0]->u.num.is_uint);
	cr_assert_not(a->u.arr.items[1]->u.num.is_uint);
	cr_assert_float_eq(a->u.arr.items[1]->u.num.d, -2500.0, 1e-9);
	cr_assert_str_eq(a->u.arr.items[5]->u.str.s, "x\n\xc3\xa9");
	json_free(v);
	const char *big = "18446744073709551615";
	cr_assert_eq(json_parse(&v, big, strlen(big), err, sizeof err), 0);
	cr_assert(v->u.num.is_uint);
	cr_assert_eq(v->u.num.u, UINT64_MAX);
	json_free(v);
	const char *big2 = "18446744073709551616";
	cr_assert_eq(json_parse(&v, big2, strlen(big2), err, sizeof err), 0);
	cr_assert_not(v->u.num.is_uint);
	json_free(v);
}

Test(json, nesting_is_limited)
{
	char deep[400];
	memset(deep, '[', 200);
	memset(deep + 200, ']', 200);
	json_value *v;
	cr_assert_eq(json_parse(&v, deep, sizeof deep, err, sizeof err), -1);
	cr_assert(strstr(err, "nesting"), "%s", err);
}

Test(json, writer_escapes_and_separates)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	json_writer w;
	jw_init(&w, m, 0);
	jw_object_begin(&w);
	jw_key(&w, "s");
	jw_string(&w, "a\"b\\\n\x01");
	jw_key(&w, "l");
	jw_array_begin(&w);
	jw_uint(&w, 18446744073709551615ull);
	jw_int(&w, -3);
	jw_double(&w, 0.5);
	jw_double(&w, 1.0 / 0.0);
	jw_bool(&w, 1);
	jw_null(&w);
	jw_array_end(&w);
	jw_key(&w, "e");
	jw_object_begin(&w);
	jw_object_end(&w);
	jw_object_end(&w);
	fclose(m);
	cr_assert_str_eq(buf, "{\"s\":\"a\\\"b\\\\\\n\\u0001\",\"l\":[18446744073709551615,-3,0.5,null,true,null],\"e\":{}}");
	free(buf);
}

Test(npy, header_is_what_numpy_writes)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	uint64_t shape[2] = {2, 3};
	cr_assert_eq(npy_write_header(m, TS_F32, 2, shape), 0);
	fclose(m);
	const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
	cr_assert_eq(len, 128);
	cr_assert_eq(memcmp(buf, "\x93NUMPY\x01\x00", 8), 0);
	cr_assert_eq((uint8_t)buf[8] | (uint8_t)buf[9] << 8, 118);
	cr_assert_eq(memcmp(buf + 10, dict, strlen(dict)), 0);
	cr_assert_eq(buf[127], '\n');
	cr_assert_eq(buf[126], ' ');
	npy_info ni;
	cr_assert_eq(npy_parse_header(&ni, (uint8_t *)buf, len, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(ni.descr, "<f4");
	cr_assert_eq(ni.ndim, 2);
	cr_assert_eq(ni.shape[1], 3);
	cr_assert_eq(ni.data_offset, 128);
	free(buf);

	buf = NULL;
	m = open_memstream(&buf, &len);
	uint64_t s1[1] = {7};
	cr_assert_eq(npy_write_header(m, TS_F16, 1, s1), 0);
	fclose(m);
	cr_assert(strstr(buf + 10, "'shape': (7,), }"));
	free(buf);
}

Test(npy, text_rendering_elides_long_dimensions)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	float d[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
	uint64_t shape[1] = {10};
	npy_print(m, d, TS_F32, 1, shape, 3);
	fclose(m);
	cr_assert_str_eq(buf, "[ 0.0000e+00,  1.0000e+00,  2.0000e+00, ...,  7.0000e+00,  8.0000e+00,  9.0000e+00]\n");
	free(buf);
}

Test(json, pretty_printing_with_inline_arrays)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	json_writer w;
	jw_init(&w, m, 2);
	jw_object_begin(&w);
	jw_key(&w, "shape");
	jw_array_begin_inline(&w);
	jw_uint(&w, 2816);
	jw_uint(&w, 1024);
	jw_array_end(&w);
	jw_key(&w, "l");
	jw_array_begin(&w);
	jw_bool(&w, 0);
	jw_array_end(&w);
	jw_object_end(&w);
	fclose(m);
	cr_assert_str_eq(buf, "{\n  \"shape\": [2816, 1024],\n  \"l\": [\n    false\n  ]\n}");
	free(buf);
}
