/*
 * The library's version.
 */
#include "config.h"

#include "tstore.h"

TS_API const char *ts_version(void)
{
	return TS_VERSION_STRING;
}
