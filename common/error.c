/*
 * Error codes, their names and messages, and the thread-local last-error message.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

#define LAST_ERROR_CAP 1024

static _Thread_local char last_error[LAST_ERROR_CAP];

TS_API const char *ts_strerror(int code)
{
	switch (code) {
#define TS_X_MSG(name, value, msg) \
	case value:                \
		return msg;
		TS_ERROR_LIST(TS_X_MSG)
#undef TS_X_MSG
	}
	return "unknown error";
}

TS_API const char *ts_errname(int code)
{
	switch (code) {
#define TS_X_NAME(name, value, msg) \
	case value:                 \
		return #name;
		TS_ERROR_LIST(TS_X_NAME)
#undef TS_X_NAME
	}
	return "TS_E?";
}

TS_API const char *ts_error_last(void)
{
	return last_error;
}

TS_API void ts_error_clear(void)
{
	last_error[0] = '\0';
}

int ts__err(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return code;
}

int ts__err_wrap(int code, const char *fmt, ...)
{
	char prefix[LAST_ERROR_CAP];
	char old[LAST_ERROR_CAP];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, last_error, sizeof(old));
	if (old[0])
		snprintf(last_error, sizeof(last_error), "%.400s: %.600s", prefix, old);
	else
		snprintf(last_error, sizeof(last_error), "%.400s: %s", prefix, ts_strerror(code));
	return code;
}

int ts__code_from_errno(int err)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return TS_ENOSPC;
	case ENOMEM:
		return TS_ENOMEM;
	case ENOENT:
		return TS_ENOTFOUND;
	case EEXIST:
		return TS_EEXIST;
	case EINVAL:
		return TS_EINVAL;
	case EACCES:
	case EPERM:
	case EROFS:
		return TS_EREADONLY;
	case EBUSY:
	case EAGAIN:
		return TS_EBUSY;
	case ENOSYS:
	case EOPNOTSUPP:
		return TS_ENOTSUP;
	case EINTR:
	case ECANCELED:
		return TS_ECANCELED;
	default:
		return TS_EIO;
	}
}

int ts__err_errno(int err, const char *fmt, ...)
{
	char what[LAST_ERROR_CAP / 2];
	va_list ap;
	int code = ts__code_from_errno(err);

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(last_error, sizeof(last_error), "%s: %s", what, strerror(err));
	return code;
}
