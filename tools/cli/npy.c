/*
 * NumPy .npy writing and reading and a text rendering of small arrays. See tools/cli/npy.h.
 * Element conversions are local (this file must not depend on the library's codecs, so that
 * the test checker can compare values independently).
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/errbuf.h"
#include "tools/cli/npy.h"

const char *npy_descr(ts_dtype dtype)
{
	switch (dtype) {
	case TS_F32: return "<f4";
	case TS_F16: return "<f2";
	case TS_BF16: return "<u2";
	case TS_F64: return "<f8";
	case TS_F8_E4M3: return "|u1";
	case TS_F8_E5M2: return "|u1";
	case TS_I8: return "|i1";
	case TS_U8: return "|u1";
	case TS_I16: return "<i2";
	case TS_U16: return "<u2";
	case TS_I32: return "<i4";
	case TS_U32: return "<u4";
	case TS_I64: return "<i8";
	case TS_U64: return "<u8";
	case TS_BOOL: return "|b1";
	default: return NULL;
	}
}

int npy_write_header(FILE *f, ts_dtype dtype, int ndim, const uint64_t *shape)
{
	const char *descr = npy_descr(dtype);
	char dict[512];
	int n;
	if (!descr || ndim < 0 || ndim > TS_MAX_DIMS)
		return -1;
	n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
	for (int i = 0; i < ndim; i++)
		n += snprintf(dict + n, sizeof dict - (size_t)n, "%llu,%s",
			      (unsigned long long)shape[i], (i + 1 < ndim) ? " " : "");
	if (ndim > 1)
		n--; /* numpy writes (2, 3) but (4,) */
	n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
	size_t total = 10 + (size_t)n + 1;
	size_t padded = (total + 63) & ~(size_t)63;
	size_t hlen = padded - 10;
	unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xFF),
				 (unsigned char)(hlen >> 8)};
	if (fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, (size_t)n, f) != (size_t)n)
		return -1;
	for (size_t i = (size_t)n; i + 1 < hlen; i++)
		if (fputc(' ', f) == EOF)
			return -1;
	return fputc('\n', f) == EOF ? -1 : 0;
}

int npy_parse_header(npy_info *out, const uint8_t *buf, size_t size, char *err, size_t err_size)
{
	memset(out, 0, sizeof *out);
	if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
		return cli_errbuf(err, err_size, "not a .npy file (bad magic)");
	size_t hlen, pre;
	if (buf[6] == 1) {
		hlen = buf[8] | (size_t)buf[9] << 8;
		pre = 10;
	} else if (buf[6] == 2 || buf[6] == 3) {
		if (size < 12)
			return cli_errbuf(err, err_size, "truncated .npy header");
		hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
		pre = 12;
	} else {
		return cli_errbuf(err, err_size, ".npy version %u is not supported", buf[6]);
	}
	if (hlen > size - pre)
		return cli_errbuf(err, err_size, ".npy header runs past the end of the file");
	char h[4096];
	if (hlen >= sizeof h)
		return cli_errbuf(err, err_size, ".npy header too long");
	memcpy(h, buf + pre, hlen);
	h[hlen] = '\0';
	const char *d = strstr(h, "'descr':");
	const char *fo = strstr(h, "'fortran_order':");
	const char *sh = strstr(h, "'shape':");
	if (!d || !fo || !sh)
		return cli_errbuf(err, err_size, ".npy header lacks descr, fortran_order or shape");
	if (sscanf(d, "'descr': '%15[^']'", out->descr) != 1)
		return cli_errbuf(err, err_size, "bad descr in .npy header");
	if (strncmp(fo, "'fortran_order': False", 22) != 0)
		return cli_errbuf(err, err_size, "Fortran-order .npy files are not supported");
	const char *p = strchr(sh, '(');
	if (!p)
		return cli_errbuf(err, err_size, "bad shape in .npy header");
	p++;
	out->nelem = 1;
	while (*p && *p != ')') {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == ')')
			break;
		char *e;
		unsigned long long v = strtoull(p, &e, 10);
		if (e == p || out->ndim >= TS_MAX_DIMS)
			return cli_errbuf(err, err_size, "bad shape in .npy header");
		out->shape[out->ndim++] = v;
		out->nelem *= v;
		p = e;
	}
	out->data_offset = pre + hlen;
	return 0;
}

static float bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static float f16_to_f32(uint16_t h)
{
	uint32_t s = (h >> 15) & 1, e = (h >> 10) & 0x1F, m = h & 0x3FF;
	float v;
	if (e == 0)
		v = ldexpf((float)m, -24);
	else if (e == 31)
		v = m ? NAN : INFINITY;
	else
		v = ldexpf((float)(m | 0x400), (int)e - 25);
	return s ? -v : v;
}

static float e4m3_to_f32(uint8_t b)
{
	uint32_t s = b >> 7, e = (b >> 3) & 0xF, m = b & 7;
	float v;
	if (e == 15 && m == 7)
		v = NAN;
	else if (e == 0)
		v = ldexpf((float)m, -9);
	else
		v = ldexpf((float)(m | 8), (int)e - 10);
	return s ? -v : v;
}

static float e5m2_to_f32(uint8_t b)
{
	return f16_to_f32((uint16_t)(b << 8));
}

double npy_element(const void *data, ts_dtype dtype, uint64_t i)
{
	const uint8_t *p = data;
	switch (dtype) {
	case TS_F32: {
		float f;
		memcpy(&f, p + i * 4, 4);
		return f;
	}
	case TS_F64: {
		double f;
		memcpy(&f, p + i * 8, 8);
		return f;
	}
	case TS_BF16: {
		uint16_t h;
		memcpy(&h, p + i * 2, 2);
		return bf16_to_f32(h);
	}
	case TS_F16: {
		uint16_t h;
		memcpy(&h, p + i * 2, 2);
		return f16_to_f32(h);
	}
	case TS_F8_E4M3: return e4m3_to_f32(p[i]);
	case TS_F8_E5M2: return e5m2_to_f32(p[i]);
	case TS_I8: return (int8_t)p[i];
	case TS_U8: return p[i];
	case TS_BOOL: return p[i] != 0;
	case TS_I16: { int16_t v; memcpy(&v, p + i * 2, 2); return v; }
	case TS_U16: { uint16_t v; memcpy(&v, p + i * 2, 2); return v; }
	case TS_I32: { int32_t v; memcpy(&v, p + i * 4, 4); return v; }
	case TS_U32: { uint32_t v; memcpy(&v, p + i * 4, 4); return v; }
	case TS_I64: { int64_t v; memcpy(&v, p + i * 8, 8); return (double)v; }
	case TS_U64: { uint64_t v; memcpy(&v, p + i * 8, 8); return (double)v; }
	default: return NAN;
	}
}

static void print_elem(FILE *f, const void *data, ts_dtype dtype, uint64_t i)
{
	const uint8_t *p = data;
	switch (dtype) {
	case TS_I64: { int64_t v; memcpy(&v, p + i * 8, 8); fprintf(f, "%lld", (long long)v); return; }
	case TS_U64: { uint64_t v; memcpy(&v, p + i * 8, 8); fprintf(f, "%llu", (unsigned long long)v); return; }
	case TS_BOOL: fputs(p[i] ? " True" : "False", f); return;
	default: break;
	}
	double v = npy_element(data, dtype, i);
	if (ts_dtype_is_float(dtype)) {
		if (isnan(v))
			fprintf(f, "%11s", "nan");
		else if (isinf(v))
			fprintf(f, "%11s", v > 0 ? "inf" : "-inf");
		else
			fprintf(f, "% .4e", v);
	} else {
		fprintf(f, "%.0f", v);
	}
}

static void print_rec(FILE *f, const void *data, ts_dtype dtype, int ndim, const uint64_t *shape,
		      int dim, uint64_t base, int edge)
{
	uint64_t n = shape[dim], stride = 1;
	for (int d = dim + 1; d < ndim; d++)
		stride *= shape[d];
	int cut = edge > 0 && n > 2 * (uint64_t)edge;
	fputc('[', f);
	for (uint64_t i = 0; i < n; i++) {
		if (cut && i == (uint64_t)edge) {
			fputs(dim + 1 == ndim ? "..., " : "...,\n", f);
			if (dim + 1 < ndim)
				for (int s = 0; s <= dim; s++)
					fputc(' ', f);
			i = n - (uint64_t)edge;
		}
		if (dim + 1 == ndim)
			print_elem(f, data, dtype, base + i);
		else
			print_rec(f, data, dtype, ndim, shape, dim + 1, base + i * stride, edge);
		if (i + 1 < n) {
			if (dim + 1 == ndim) {
				fputs(", ", f);
			} else {
				fputs(",\n", f);
				for (int b = 0; b < ndim - dim - 2; b++)
					fputc('\n', f);
				for (int s = 0; s <= dim; s++)
					fputc(' ', f);
			}
		}
	}
	fputc(']', f);
}

void npy_print(FILE *f, const void *data, ts_dtype dtype, int ndim, const uint64_t *shape,
	       int edge)
{
	if (ndim == 0) {
		print_elem(f, data, dtype, 0);
		fputc('\n', f);
		return;
	}
	print_rec(f, data, dtype, ndim, shape, 0, 0, edge);
	fputc('\n', f);
}
