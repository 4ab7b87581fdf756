/*
 * A small strict JSON parser (RFC 8259) and a streaming JSON writer, for the tstore command:
 * safetensors headers, sharded-checkpoint index files, and the --json outputs.
 *
 * Invariants
 *   1. The parser accepts exactly RFC 8259 JSON: one value, optional surrounding whitespace, no
 *      trailing commas, no comments, no leading zeros, strings valid UTF-8 with no raw control
 *      characters and no lone surrogates (also when written as \u escapes).
 *   2. Nesting is limited to JSON_MAX_DEPTH; every allocation is checked; a parse failure frees
 *      everything it built and reports the byte offset of the problem.
 *   3. Numbers keep their text: integers are available exactly as uint64 when they fit
 *      (json_value.is_uint), doubles otherwise.
 *   4. Strings are NUL-terminated copies with their byte length (they may contain U+0000, which
 *      the safetensors parser rejects in names).
 */
#ifndef TS_TOOLS_JSON_H
#define TS_TOOLS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 64

typedef enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
} json_type;

typedef struct json_value json_value;

typedef struct json_member {
	char *key;
	size_t key_len;
	json_value *value;
} json_member;

struct json_value {
	json_type type;
	size_t offset; /* byte offset of the value in the parsed text */
	union {
		struct {
			double d;
			uint64_t u;
			int is_uint; /* a non-negative integer that fits uint64 */
		} num;
		struct {
			char *s;
			size_t len;
		} str;
		struct {
			json_value **items;
			size_t count;
		} arr;
		struct {
			json_member *members;
			size_t count;
		} obj;
	} u;
};

/**
 * Parse @p len bytes of @p text. On success *out is a tree the caller frees with json_free().
 * On failure returns -1, *out is NULL and @p err holds "what at byte N".
 */
int json_parse(json_value **out, const char *text, size_t len, char *err, size_t err_size);
void json_free(json_value *v);

/** The first member named @p key of object @p obj, or NULL. */
const json_value *json_get(const json_value *obj, const char *key);

/** 1 if the @p len bytes at @p s are valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int json_utf8_valid(const char *s, size_t len);

/* -- Writer ------------------------------------------------------------------------------- */

/**
 * A streaming writer to a FILE with automatic commas. Pretty-prints with @p indent spaces per
 * level (0: compact, one line). Errors of the FILE are the caller's to check (ferror).
 */
typedef struct json_writer {
	FILE *f;
	int indent;
	int depth;
	int first[JSON_MAX_DEPTH + 1]; /* no member yet at this depth */
	int inl[JSON_MAX_DEPTH + 1];   /* this depth is written on one line */
	int after_key;
} json_writer;

void jw_init(json_writer *w, FILE *f, int indent);
void jw_object_begin(json_writer *w);
void jw_object_end(json_writer *w);
void jw_array_begin(json_writer *w);
void jw_array_end(json_writer *w);
/** An array written on one line even when pretty-printing ("shape": [2816, 1024]). */
void jw_array_begin_inline(json_writer *w);
void jw_key(json_writer *w, const char *key);
void jw_string(json_writer *w, const char *s);
void jw_uint(json_writer *w, uint64_t v);
void jw_int(json_writer *w, int64_t v);
/** Finite doubles with 17 significant digits trimmed; NaN and Inf become null (JSON has none). */
void jw_double(json_writer *w, double v);
void jw_bool(json_writer *w, int v);
void jw_null(json_writer *w);
/** Terminate the document with a newline. */
void jw_finish(json_writer *w);

/** Write @p s as a JSON string literal (with quotes) to @p f. */
void json_write_string(FILE *f, const char *s, size_t len);

#endif
