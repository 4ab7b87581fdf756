/*
 * Errors into a caller's buffer: the command's parsers and helpers (safetensors, npy, ranges,
 * model directories) say what went wrong, and where, in a `char *err` of `err_size` bytes that
 * the command then prints through cli_error() (tools/cli/cli.h). This is their one formatter.
 * Header-only: the helpers are also linked without the command (tests, fuzz targets, the
 * checkpoint generator).
 */
#ifndef TS_TOOLS_ERRBUF_H
#define TS_TOOLS_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/** Format into @p err (truncated to @p err_size; nothing if @p err is NULL or @p err_size 0);
 *  returns -1, the helpers' failure, so that `return cli_errbuf(...)` reports and fails. */
__attribute__((format(printf, 3, 0))) static inline int cli_verrbuf(char *err, size_t err_size,
								    const char *fmt, va_list ap)
{
	if (err && err_size)
		vsnprintf(err, err_size, fmt, ap);
	return -1;
}

__attribute__((format(printf, 3, 4))) static inline int cli_errbuf(char *err, size_t err_size,
								   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_verrbuf(err, err_size, fmt, ap);
	va_end(ap);
	return -1;
}

#endif
