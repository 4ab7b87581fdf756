/*
 * gen_hostile DIR: writes malformed safetensors files (and a few sharded-index cases) into DIR,
 * one file per case, named after what is wrong with it, plus "good.safetensors", a valid file
 * used to prepare the store the hostile imports must leave unchanged. tests/robust/hostile.sh
 * imports each and expects exit status 1, a one-line error and an unchanged store.
 * Generated at test time so that no binary test data is committed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

static FILE *create(const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "gen_hostile: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return f;
}

static void put_len(FILE *f, uint64_t n)
{
	for (int i = 0; i < 8; i++)
		fputc((int)(n >> (8 * i)) & 0xff, f);
}

/* A file: header length field @p claimed (or the real length when 0), header bytes, then
 * @p data_len bytes of data (a ramp). */
static void file3(const char *name, const char *hdr, size_t hdr_len, uint64_t claimed,
		  size_t data_len)
{
	FILE *f = create(name);
	put_len(f, claimed ? claimed : hdr_len);
	fwrite(hdr, 1, hdr_len, f);
	for (size_t i = 0; i < data_len; i++)
		fputc((int)(i * 37 + 11) & 0xff, f);
	fclose(f);
}

static void file(const char *name, const char *hdr, size_t data_len)
{
	file3(name, hdr, strlen(hdr), 0, data_len);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_hostile DIR\n");
		return 2;
	}
	dir = argv[1];

	/* the valid file: two F32 matrices; the ramp gives finite values (exponent bytes vary) */
	{
		FILE *f = create("good.safetensors");
		const char *h = "{\"good.a\":{\"dtype\":\"F32\",\"shape\":[16,32],\"data_offsets\":[0,2048]},"
				"\"good.b\":{\"dtype\":\"BF16\",\"shape\":[8,64],\"data_offsets\":[2048,3072]}}";
		put_len(f, strlen(h));
		fputs(h, f);
		for (int i = 0; i < 512; i++) {
			float v = (float)((i * 7919) % 1000 - 500) / 250.0f;
			fwrite(&v, 4, 1, f);
		}
		for (int i = 0; i < 512; i++) {
			float v = (float)((i * 104729) % 1000 - 500) / 125.0f;
			uint32_t b;
			memcpy(&b, &v, 4);
			uint16_t h16 = (uint16_t)(b >> 16);
			fwrite(&h16, 2, 1, f);
		}
		fclose(f);
	}

	const char *ok1 = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
	file3("header_length_past_eof.safetensors", ok1, strlen(ok1), 4096, 16);
	file3("header_length_2e63.safetensors", ok1, strlen(ok1), (uint64_t)1 << 63, 16);
	file3("header_length_max.safetensors", ok1, strlen(ok1), UINT64_MAX, 16);
	file3("header_length_zero.safetensors", ok1, strlen(ok1), 0xFFFFFFFFull + 1, 16);
	{
		FILE *f = create("too_short.safetensors");
		fwrite("\x10\0\0", 1, 3, f);
		fclose(f);
	}
	{
		/* a header just over the 100 MB limit, padded with spaces (real bytes: not sparse) */
		FILE *f = create("header_huge.safetensors");
		size_t n = 100u * 1000u * 1000u + 8;
		put_len(f, n);
		fputs(ok1, f);
		static char sp[1 << 16];
		memset(sp, ' ', sizeof sp);
		for (size_t left = n - strlen(ok1); left;) {
			size_t k = left < sizeof sp ? left : sizeof sp;
			fwrite(sp, 1, k, f);
			left -= k;
		}
		for (int i = 0; i < 16; i++)
			fputc(0, f);
		fclose(f);
	}
	file("header_not_json.safetensors", "{\"x\":{\"dtype\":\"F32\",", 16);
	file("header_not_object.safetensors", "[1,2,3]   ", 0);
	file("header_trailing_garbage.safetensors",
	     "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}xyz", 16);
	file("overlapping_offsets.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	     "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
	     24);
	file("same_offsets.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	     "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
	     16);
	file("offsets_past_end.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	     "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}",
	     20);
	file("offsets_huge.safetensors",
	     "{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[18446744073709551600,18446744073709551615]}}",
	     16);
	file("offsets_end_before_begin.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}}", 16);
	file("offsets_negative.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-16,0]}}", 16);
	file("offsets_fractional.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16.0]}}", 16);
	file("offsets_gap.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
	file("data_truncated.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[64,64],\"data_offsets\":[0,16384]}}", 1000);
	file("shape_bytes_disagree.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,60]}}", 60);
	file("shape_bytes_disagree_dtype.safetensors",
	     "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4,4],\"data_offsets\":[0,64]}}", 64);
	file("dtype_unknown.safetensors",
	     "{\"a\":{\"dtype\":\"F33\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
	file("dtype_unsupported.safetensors",
	     "{\"a\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16);
	file("dtype_not_string.safetensors",
	     "{\"a\":{\"dtype\":4,\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
	file("dtype_missing.safetensors", "{\"a\":{\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
	file("name_not_utf8.safetensors",
	     "{\"w\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
	file("name_overlong_utf8.safetensors",
	     "{\"\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
	file("name_lone_surrogate.safetensors",
	     "{\"\\ud800x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
	file("name_with_nul.safetensors",
	     "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
	file("name_empty.safetensors", "{\"\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
	     16);
	{
		char *h = malloc(8192);
		char name[2100];
		memset(name, 'n', 2000);
		name[2000] = '\0';
		snprintf(h, 8192, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
			 name);
		file("name_too_long.safetensors", h, 16);
		free(h);
	}
	file("names_duplicate.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	     "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
	     16);
	file("names_duplicate_escaped.safetensors",
	     "{\"ab\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	     "\"a\\u0062\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
	     16);
	file("dims_product_overflows.safetensors",
	     "{\"a\":{\"dtype\":\"U8\",\"shape\":[4611686018427387904,8],\"data_offsets\":[0,0]}}", 0);
	file("dims_near_2e63.safetensors",
	     "{\"a\":{\"dtype\":\"U8\",\"shape\":[9223372036854775807,2],\"data_offsets\":[0,2]}}", 2);
	file("dims_bytes_overflow.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0);
	file("dims_wrap_to_small.safetensors",
	     "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,1],\"data_offsets\":[0,0]}}", 0);
	file("dims_too_many.safetensors",
	     "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1);
	file("dims_negative.safetensors",
	     "{\"a\":{\"dtype\":\"U8\",\"shape\":[-4],\"data_offsets\":[0,4]}}", 4);
	file("dims_huge_number.safetensors",
	     "{\"a\":{\"dtype\":\"U8\",\"shape\":[99999999999999999999999],\"data_offsets\":[0,4]}}", 4);
	file("entry_not_object.safetensors", "{\"a\":[1,2]}", 0);
	file("metadata_not_strings.safetensors",
	     "{\"__metadata__\":{\"k\":{\"nested\":1}},"
	     "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
	     16);
	{
		/* 200000 nested arrays: a recursive parser without a depth limit overflows its stack */
		size_t depth = 200000;
		char *h = malloc(2 * depth + 64);
		size_t n = (size_t)sprintf(h, "{\"__metadata__\":");
		memset(h + n, '[', depth);
		memset(h + n + depth, ']', depth);
		strcpy(h + n + 2 * depth, "}");
		file("deep_nesting.safetensors", h, 0);
		free(h);
	}
	file("unexpected_field.safetensors",
	     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16],\"extra\":1}}", 16);
	{
		/* F32 with a NaN while --codec nvfp4 is forced: refused before anything is written */
		FILE *f = create("nan_forced_lossy.safetensors");
		const char *h = "{\"fine\":{\"dtype\":\"F32\",\"shape\":[4,16],\"data_offsets\":[0,256]},"
				"\"nan\":{\"dtype\":\"F32\",\"shape\":[4,16],\"data_offsets\":[256,512]}}";
		put_len(f, strlen(h));
		fputs(h, f);
		for (int i = 0; i < 128; i++) {
			float v = i == 100 ? __builtin_nanf("") : (float)(i % 13) - 6.0f;
			fwrite(&v, 4, 1, f);
		}
		fclose(f);
	}
	/* sharded checkpoints: an index naming a missing shard, and one escaping the directory */
	{
		FILE *f = create("index_missing_shard.safetensors.index.json");
		fputs("{\"metadata\":{},\"weight_map\":{\"a\":\"nowhere-00001.safetensors\"}}", f);
		fclose(f);
		f = create("index_escapes_dir.safetensors.index.json");
		fputs("{\"weight_map\":{\"a\":\"../good.safetensors\"}}", f);
		fclose(f);
		f = create("index_not_json.safetensors.index.json");
		fputs("{\"weight_map\":{\"a\":", f);
		fclose(f);
	}
	return 0;
}
