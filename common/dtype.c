/*
 * Element types: sizes and names (the safetensors spellings).
 */
#include "config.h"

#include <strings.h>

#include "common/error.h"

static const struct {
	const char *name;
	size_t size;
	int is_float;
} dtype_table[TS_DTYPE_COUNT] = {
	[TS_F32] = {"F32", 4, 1},	  [TS_BF16] = {"BF16", 2, 1},
	[TS_F16] = {"F16", 2, 1},	  [TS_F64] = {"F64", 8, 1},
	[TS_F8_E4M3] = {"F8_E4M3", 1, 1}, [TS_F8_E5M2] = {"F8_E5M2", 1, 1},
	[TS_I8] = {"I8", 1, 0},		  [TS_U8] = {"U8", 1, 0},
	[TS_I16] = {"I16", 2, 0},	  [TS_U16] = {"U16", 2, 0},
	[TS_I32] = {"I32", 4, 0},	  [TS_U32] = {"U32", 4, 0},
	[TS_I64] = {"I64", 8, 0},	  [TS_U64] = {"U64", 8, 0},
	[TS_BOOL] = {"BOOL", 1, 0},
};

static int dtype_known(ts_dtype dtype)
{
	return (unsigned)dtype < TS_DTYPE_COUNT;
}

TS_API size_t ts_dtype_size(ts_dtype dtype)
{
	return dtype_known(dtype) ? dtype_table[dtype].size : 0;
}

TS_API const char *ts_dtype_name(ts_dtype dtype)
{
	return dtype_known(dtype) ? dtype_table[dtype].name : "?";
}

TS_API int ts_dtype_is_float(ts_dtype dtype)
{
	return dtype_known(dtype) && dtype_table[dtype].is_float;
}

TS_API int ts_dtype_parse(ts_dtype *out, const char *name)
{
	for (int i = 0; i < TS_DTYPE_COUNT; i++) {
		if (name && strcasecmp(name, dtype_table[i].name) == 0) {
			*out = (ts_dtype)i;
			return 0;
		}
	}
	return ts__err(TS_EINVAL, "unknown dtype '%s'", name ? name : "(null)");
}
