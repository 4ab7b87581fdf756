/*
 * The RANGE of `tstore slice` and `tstore bench cache` traces: numpy basic indexing, one item
 * per dimension separated by commas: `a:b`, `a:`, `:b`, `:`, or an index. See tools/cli/commands.h.
 *
 * Invariants
 *   1. Like numpy: negative values count from the end; slice bounds are clipped to the
 *      dimension; an index must lie inside the dimension. Unlike numpy, a slice that selects
 *      nothing is an error (a store read of zero elements is never what the user meant), and
 *      steps (`a:b:c`) are refused.
 *   2. Every number is parsed with overflow checks; on success start[i] + count[i] <= shape[i]
 *      and count[i] >= 1 for every i < ndim.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tools/cli/commands.h"
#include "tools/cli/errbuf.h"

static const char *skip_sp(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Parse an optional signed integer in [p, end); *present is 0 if the text is only spaces. */
static int parse_int(const char *p, const char *end, int *present, int *neg, uint64_t *mag)
{
	p = skip_sp(p, end);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*present = 0;
	*neg = 0;
	*mag = 0;
	if (p == end)
		return 0;
	if (*p == '-' || *p == '+') {
		*neg = *p == '-';
		p++;
	}
	if (p == end)
		return -1;
	uint64_t v = 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	*present = 1;
	*mag = v;
	return 0;
}

/* Resolve a possibly negative slice bound against dim, clipped to [0, dim]. */
static uint64_t clip_bound(int neg, uint64_t mag, uint64_t dim)
{
	if (neg)
		return mag >= dim ? 0 : dim - mag;
	return mag > dim ? dim : mag;
}

int range_parse(const char *text, int ndim, const uint64_t *shape, uint64_t *start,
		uint64_t *count, uint32_t *squeezed, char *err, size_t err_size)
{
	if (!text)
		return cli_errbuf(err, err_size, "no range given");
	if (ndim < 0 || ndim > TS_MAX_DIMS)
		return cli_errbuf(err, err_size, "tensor has %d dimensions", ndim);
	*squeezed = 0;
	for (int i = 0; i < ndim; i++) {
		start[i] = 0;
		count[i] = shape[i];
	}
	const char *p = text, *end = text + strlen(text);
	if (skip_sp(p, end) == end) {
		/* An empty range selects everything. */
		for (int i = 0; i < ndim; i++)
			if (shape[i] == 0)
				return cli_errbuf(err, err_size, "dimension %d is empty", i);
		return 0;
	}
	int dim = 0;
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *item_end = comma ? comma : end;
		if (dim >= ndim)
			return cli_errbuf(err, err_size,
					  "too many indices: the tensor has %d dimension%s", ndim,
					  ndim == 1 ? "" : "s");
		const char *colon = memchr(p, ':', (size_t)(item_end - p));
		uint64_t d = shape[dim];
		int present, neg, rc;
		uint64_t mag;
		if (!colon) {
			rc = parse_int(p, item_end, &present, &neg, &mag);
			if (rc == -2)
				return cli_errbuf(err, err_size, "dimension %d: number too large",
						  dim);
			if (rc < 0 || !present)
				return cli_errbuf(err, err_size,
						  "dimension %d: '%.*s' is not an index or a:b",
						  dim, (int)(item_end - p), p);
			if ((neg && mag > d) || (!neg && mag >= d) || (neg && mag == 0 && d == 0))
				return cli_errbuf(
					err, err_size,
					"dimension %d: index %s%llu out of range for size %llu",
					dim, neg ? "-" : "", (unsigned long long)mag,
					(unsigned long long)d);
			if (neg && mag == 0)
				start[dim] = 0; /* -0 is 0 */
			else
				start[dim] = neg ? d - mag : mag;
			count[dim] = 1;
			*squeezed |= 1u << dim;
		} else {
			if (memchr(colon + 1, ':', (size_t)(item_end - colon - 1)))
				return cli_errbuf(err, err_size,
						  "dimension %d: steps (a:b:c) are not supported",
						  dim);
			uint64_t a = 0, b = d;
			rc = parse_int(p, colon, &present, &neg, &mag);
			if (rc == -2)
				return cli_errbuf(err, err_size, "dimension %d: number too large",
						  dim);
			if (rc < 0)
				return cli_errbuf(err, err_size, "dimension %d: bad start '%.*s'",
						  dim, (int)(colon - p), p);
			if (present)
				a = clip_bound(neg, mag, d);
			rc = parse_int(colon + 1, item_end, &present, &neg, &mag);
			if (rc == -2)
				return cli_errbuf(err, err_size, "dimension %d: number too large",
						  dim);
			if (rc < 0)
				return cli_errbuf(err, err_size, "dimension %d: bad stop '%.*s'",
						  dim, (int)(item_end - colon - 1), colon + 1);
			if (present)
				b = clip_bound(neg, mag, d);
			if (b <= a)
				return cli_errbuf(
					err, err_size,
					"dimension %d: '%.*s' selects nothing (size %llu)", dim,
					(int)(item_end - p), p, (unsigned long long)d);
			start[dim] = a;
			count[dim] = b - a;
		}
		dim++;
		if (!comma)
			break;
		p = comma + 1;
	}
	for (int i = dim; i < ndim; i++)
		if (shape[i] == 0)
			return cli_errbuf(err, err_size, "dimension %d is empty", i);
	return 0;
}
