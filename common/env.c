/*
 * The environment, read with one rule (common/env.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/env.h"
#include "common/error.h"

const char *ts__env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int ts__env_bad(const char *name, const char *value, const char *expected)
{
	return ts__err(TS_EINVAL, "%s='%s': expected %s", name, value, expected);
}

int ts__env_bytes(uint64_t *out, const char *name)
{
	const char *s = ts__env(name);
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-' || *s == '+')
		return ts__env_bad(name, s, "a byte count such as 4096, 64M or 1GiB");
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return ts__env_bad(name, s, "a byte count such as 4096, 64M or 1GiB");
	*out = (uint64_t)v << shift;
	return 1;
}

int ts__env_int(long *out, const char *name, long min, long max)
{
	const char *s = ts__env(name);
	char *end;
	long v;

	if (!s)
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		char want[64];
		snprintf(want, sizeof(want), "an integer from %ld to %ld", min, max);
		return ts__env_bad(name, s, want);
	}
	*out = v;
	return 1;
}
