/*
 * A small strict JSON parser and a streaming JSON writer. See tools/cli/json.h for the invariants.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/errbuf.h"
#include "tools/cli/json.h"

typedef struct parser {
	const char *p;
	const char *end;
	const char *start;
	char *err;
	size_t err_size;
	int failed;
} parser;

/* The parser's first error, "<what> at byte <offset>", through the helpers' one formatter
 * (tools/cli/errbuf.h); later ones are dropped. */
__attribute__((format(printf, 3, 4))) static int fail(parser *ps, const char *at, const char *fmt,
						      ...)
{
	char what[200];
	va_list ap;

	if (ps->failed)
		return -1;
	ps->failed = 1;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return cli_errbuf(ps->err, ps->err_size, "%s at byte %zu", what, (size_t)(at - ps->start));
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static json_value *new_value(parser *ps, json_type t)
{
	json_value *v = calloc(1, sizeof *v);
	if (!v) {
		fail(ps, ps->p, "out of memory");
		return NULL;
	}
	v->type = t;
	v->offset = (size_t)(ps->p - ps->start);
	return v;
}

/* Length of the UTF-8 sequence at s (at most n bytes available), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0; /* continuation byte or overlong 2-byte lead */
	if (c < 0xE0) {
		if (n < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		return 2;
	}
	if (c < 0xF0) {
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0; /* overlong */
		if (c == 0xED && s[1] >= 0xA0)
			return 0; /* surrogate */
		return 3;
	}
	if (c < 0xF5) {
		if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xF4 && s[1] >= 0x90)
			return 0; /* > U+10FFFF */
		return 4;
	}
	return 0;
}

int json_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		size_t k = utf8_seq(u + i, len - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

static int hex4(parser *ps, const char *at, unsigned *out)
{
	unsigned v = 0;
	if (ps->end - at < 4)
		return fail(ps, at, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = at[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(ps, at + i, "bad hex digit in \\u escape");
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *d, unsigned cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xC0 | (cp >> 6));
		d[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xE0 | (cp >> 12));
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		d[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | (cp >> 18));
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	d[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Parse a string at ps->p (which is at the opening quote) into a fresh buffer. */
static int parse_string(parser *ps, char **out, size_t *out_len)
{
	const char *q = ps->p + 1;
	/* The decoded string is never longer than the raw text. First find the end. */
	const char *s = q;
	while (s < ps->end && *s != '"') {
		if (*s == '\\')
			s++;
		s++;
	}
	if (s >= ps->end)
		return fail(ps, ps->p, "unterminated string");
	size_t cap = (size_t)(s - q) + 1;
	char *buf = malloc(cap);
	if (!buf)
		return fail(ps, ps->p, "out of memory");
	size_t n = 0;
	while (q < s) {
		unsigned char c = (unsigned char)*q;
		if (c < 0x20) {
			free(buf);
			return fail(ps, q, "control character in string");
		}
		if (c == '\\') {
			char e = q[1];
			switch (e) {
			case '"': buf[n++] = '"'; q += 2; break;
			case '\\': buf[n++] = '\\'; q += 2; break;
			case '/': buf[n++] = '/'; q += 2; break;
			case 'b': buf[n++] = '\b'; q += 2; break;
			case 'f': buf[n++] = '\f'; q += 2; break;
			case 'n': buf[n++] = '\n'; q += 2; break;
			case 'r': buf[n++] = '\r'; q += 2; break;
			case 't': buf[n++] = '\t'; q += 2; break;
			case 'u': {
				unsigned cp, lo;
				if (hex4(ps, q + 2, &cp) < 0) {
					free(buf);
					return -1;
				}
				const char *esc = q;
				q += 6;
				if (cp >= 0xDC00 && cp <= 0xDFFF) {
					free(buf);
					return fail(ps, esc, "lone low surrogate in \\u escape");
				}
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					if (s - q < 6 || q[0] != '\\' || q[1] != 'u' ||
					    hex4(ps, q + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
						free(buf);
						return fail(ps, esc, "lone high surrogate in \\u escape");
					}
					q += 6;
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				}
				/* 6 or 12 escape bytes always hold the at most 4 UTF-8 bytes. */
				n += put_utf8(buf + n, cp);
				break;
			}
			default:
				free(buf);
				return fail(ps, q, "bad escape in string");
			}
			continue;
		}
		size_t k = utf8_seq((const unsigned char *)q, (size_t)(s - q));
		if (!k) {
			free(buf);
			return fail(ps, q, "string is not valid UTF-8");
		}
		memcpy(buf + n, q, k);
		n += k;
		q += k;
	}
	buf[n] = '\0';
	ps->p = s + 1;
	*out = buf;
	*out_len = n;
	return 0;
}

static int parse_number(parser *ps, json_value *v)
{
	const char *q = ps->p;
	const char *b = q;
	int neg = 0, is_int = 1;
	if (q < ps->end && *q == '-') {
		neg = 1;
		q++;
	}
	if (q >= ps->end || !(*q >= '0' && *q <= '9'))
		return fail(ps, b, "bad number");
	if (*q == '0') {
		q++;
		if (q < ps->end && *q >= '0' && *q <= '9')
			return fail(ps, b, "number with a leading zero");
	} else {
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && *q == '.') {
		is_int = 0;
		q++;
		if (q >= ps->end || !(*q >= '0' && *q <= '9'))
			return fail(ps, b, "bad fraction in number");
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		is_int = 0;
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || !(*q >= '0' && *q <= '9'))
			return fail(ps, b, "bad exponent in number");
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	size_t len = (size_t)(q - b);
	char tmp[400];
	if (len >= sizeof tmp)
		return fail(ps, b, "number too long");
	memcpy(tmp, b, len);
	tmp[len] = '\0';
	v->u.num.d = strtod(tmp, NULL);
	v->u.num.is_uint = 0;
	if (is_int && !neg) {
		uint64_t u = 0;
		int ovf = 0;
		for (const char *d = b; d < q; d++) {
			unsigned dig = (unsigned)(*d - '0');
			if (u > (UINT64_MAX - dig) / 10)
				ovf = 1;
			u = u * 10 + dig;
		}
		if (!ovf) {
			v->u.num.u = u;
			v->u.num.is_uint = 1;
		}
	}
	ps->p = q;
	return 0;
}

static int match_lit(parser *ps, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0)
		return fail(ps, ps->p, "unexpected character");
	ps->p += n;
	return 0;
}

static json_value *parse_value(parser *ps, int depth);

static json_value *parse_array(parser *ps, int depth)
{
	json_value *v = new_value(ps, JSON_ARRAY);
	size_t cap = 0;
	if (!v)
		return NULL;
	ps->p++; /* '[' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return v;
	}
	for (;;) {
		json_value *item = parse_value(ps, depth + 1);
		if (!item)
			goto fail;
		if (v->u.arr.count == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			json_value **ni = realloc(v->u.arr.items, ncap * sizeof *ni);
			if (!ni) {
				json_free(item);
				fail(ps, ps->p, "out of memory");
				goto fail;
			}
			v->u.arr.items = ni;
			cap = ncap;
		}
		v->u.arr.items[v->u.arr.count++] = item;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return v;
		}
		fail(ps, ps->p, ps->p < ps->end ? "expected ',' or ']' in array" : "unterminated array");
		goto fail;
	}
fail:
	json_free(v);
	return NULL;
}

static json_value *parse_object(parser *ps, int depth)
{
	json_value *v = new_value(ps, JSON_OBJECT);
	size_t cap = 0;
	if (!v)
		return NULL;
	ps->p++; /* '{' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return v;
	}
	for (;;) {
		char *key;
		size_t key_len;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"') {
			fail(ps, ps->p, ps->p < ps->end ? "expected a string key" : "unterminated object");
			goto fail;
		}
		if (parse_string(ps, &key, &key_len) < 0)
			goto fail;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':') {
			free(key);
			fail(ps, ps->p, "expected ':' after key");
			goto fail;
		}
		ps->p++;
		json_value *item = parse_value(ps, depth + 1);
		if (!item) {
			free(key);
			goto fail;
		}
		if (v->u.obj.count == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			json_member *nm = realloc(v->u.obj.members, ncap * sizeof *nm);
			if (!nm) {
				free(key);
				json_free(item);
				fail(ps, ps->p, "out of memory");
				goto fail;
			}
			v->u.obj.members = nm;
			cap = ncap;
		}
		v->u.obj.members[v->u.obj.count].key = key;
		v->u.obj.members[v->u.obj.count].key_len = key_len;
		v->u.obj.members[v->u.obj.count].value = item;
		v->u.obj.count++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return v;
		}
		fail(ps, ps->p, ps->p < ps->end ? "expected ',' or '}' in object" : "unterminated object");
		goto fail;
	}
fail:
	json_free(v);
	return NULL;
}

static json_value *parse_value(parser *ps, int depth)
{
	json_value *v;
	if (depth > JSON_MAX_DEPTH) {
		fail(ps, ps->p, "nesting deeper than %d", JSON_MAX_DEPTH);
		return NULL;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, ps->p, "unexpected end of text");
		return NULL;
	}
	switch (*ps->p) {
	case '{':
		return parse_object(ps, depth);
	case '[':
		return parse_array(ps, depth);
	case '"':
		v = new_value(ps, JSON_STRING);
		if (v && parse_string(ps, &v->u.str.s, &v->u.str.len) < 0) {
			free(v);
			return NULL;
		}
		return v;
	case 't':
		v = new_value(ps, JSON_TRUE);
		if (v && match_lit(ps, "true") < 0) {
			free(v);
			return NULL;
		}
		return v;
	case 'f':
		v = new_value(ps, JSON_FALSE);
		if (v && match_lit(ps, "false") < 0) {
			free(v);
			return NULL;
		}
		return v;
	case 'n':
		v = new_value(ps, JSON_NULL);
		if (v && match_lit(ps, "null") < 0) {
			free(v);
			return NULL;
		}
		return v;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
			v = new_value(ps, JSON_NUMBER);
			if (v && parse_number(ps, v) < 0) {
				free(v);
				return NULL;
			}
			return v;
		}
		fail(ps, ps->p, "unexpected character 0x%02x", (unsigned char)*ps->p);
		return NULL;
	}
}

int json_parse(json_value **out, const char *text, size_t len, char *err, size_t err_size)
{
	parser ps = {text, text + len, text, err, err_size, 0};
	if (err && err_size)
		err[0] = '\0';
	*out = NULL;
	json_value *v = parse_value(&ps, 0);
	if (!v)
		return -1;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		fail(&ps, ps.p, "trailing characters after the JSON value");
		json_free(v);
		return -1;
	}
	*out = v;
	return 0;
}

void json_free(json_value *v)
{
	if (!v)
		return;
	switch (v->type) {
	case JSON_STRING:
		free(v->u.str.s);
		break;
	case JSON_ARRAY:
		for (size_t i = 0; i < v->u.arr.count; i++)
			json_free(v->u.arr.items[i]);
		free(v->u.arr.items);
		break;
	case JSON_OBJECT:
		for (size_t i = 0; i < v->u.obj.count; i++) {
			free(v->u.obj.members[i].key);
			json_free(v->u.obj.members[i].value);
		}
		free(v->u.obj.members);
		break;
	default:
		break;
	}
	free(v);
}

const json_value *json_get(const json_value *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	size_t kl = strlen(key);
	for (size_t i = 0; i < obj->u.obj.count; i++)
		if (obj->u.obj.members[i].key_len == kl && memcmp(obj->u.obj.members[i].key, key, kl) == 0)
			return obj->u.obj.members[i].value;
	return NULL;
}

/* -- Writer ------------------------------------------------------------------------------- */

void json_write_string(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

void jw_init(json_writer *w, FILE *f, int indent)
{
	memset(w, 0, sizeof *w);
	w->f = f;
	w->indent = indent;
	w->first[0] = 1;
}

static void newline(json_writer *w)
{
	if (!w->indent)
		return;
	fputc('\n', w->f);
	for (int i = 0; i < w->depth * w->indent; i++)
		fputc(' ', w->f);
}

/* Called before every value and key: commas and indentation. */
static void before(json_writer *w)
{
	if (w->after_key) {
		w->after_key = 0;
		return;
	}
	if (w->depth > 0) {
		if (!w->first[w->depth])
			fputs(w->inl[w->depth] && w->indent ? ", " : ",", w->f);
		if (!w->inl[w->depth])
			newline(w);
	}
	w->first[w->depth] = 0;
}

static void open_(json_writer *w, char c, int inl)
{
	before(w);
	fputc(c, w->f);
	if (w->depth < JSON_MAX_DEPTH)
		w->depth++;
	w->first[w->depth] = 1;
	w->inl[w->depth] = inl || w->inl[w->depth - 1];
}

static void close_(json_writer *w, char c)
{
	int empty = w->first[w->depth], inl = w->inl[w->depth];
	if (w->depth > 0)
		w->depth--;
	if (!empty && !inl)
		newline(w);
	fputc(c, w->f);
}

void jw_object_begin(json_writer *w) { open_(w, '{', 0); }
void jw_object_end(json_writer *w) { close_(w, '}'); }
void jw_array_begin(json_writer *w) { open_(w, '[', 0); }
void jw_array_begin_inline(json_writer *w) { open_(w, '[', 1); }
void jw_array_end(json_writer *w) { close_(w, ']'); }

void jw_key(json_writer *w, const char *key)
{
	before(w);
	json_write_string(w->f, key, strlen(key));
	fputs(w->indent ? ": " : ":", w->f);
	w->after_key = 1;
}

void jw_string(json_writer *w, const char *s)
{
	before(w);
	json_write_string(w->f, s, strlen(s));
}

void jw_uint(json_writer *w, uint64_t v)
{
	before(w);
	fprintf(w->f, "%llu", (unsigned long long)v);
}

void jw_int(json_writer *w, int64_t v)
{
	before(w);
	fprintf(w->f, "%lld", (long long)v);
}

void jw_double(json_writer *w, double v)
{
	before(w);
	if (!isfinite(v)) {
		fputs("null", w->f);
		return;
	}
	char buf[40];
	snprintf(buf, sizeof buf, "%.17g", v);
	/* Prefer the shortest of %.Ng that reads back exactly. */
	for (int p = 6; p < 17; p++) {
		char t[40];
		snprintf(t, sizeof t, "%.*g", p, v);
		if (strtod(t, NULL) == v) {
			memcpy(buf, t, sizeof t);
			break;
		}
	}
	fputs(buf, w->f);
}

void jw_bool(json_writer *w, int v)
{
	before(w);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(json_writer *w)
{
	before(w);
	fputs("null", w->f);
}

void jw_finish(json_writer *w)
{
	fputc('\n', w->f);
}
