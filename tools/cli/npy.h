/*
 * NumPy .npy (format version 1.0) writing and reading, and a numpy-like text rendering of
 * small arrays for terminals.
 *
 * Invariants
 *   1. A written header is "\x93NUMPY" 1 0, a little-endian uint16 length, and a Python dict
 *      literal {'descr': ..., 'fortran_order': False, 'shape': (...), } padded with spaces and
 *      ended by '\n' so that the data starts at a multiple of 64 bytes.
 *   2. BF16 has no NumPy dtype: it is written as '<u2' (the raw bit patterns; view them with
 *      ml_dtypes.bfloat16). F8 types are written as '|u1' bit patterns.
 *   3. The reader accepts exactly what numpy writes for C-order little-endian arrays (v1.0 and
 *      v2.0 headers) and rejects everything else with a message.
 */
#ifndef TS_TOOLS_NPY_H
#define TS_TOOLS_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tstore.h"

/** The NumPy descr of @p dtype ("<f4"), or NULL if none. */
const char *npy_descr(ts_dtype dtype);

/** Write a v1.0 header for a C-order array of @p dtype and @p shape (ndim 0: a scalar). */
int npy_write_header(FILE *f, ts_dtype dtype, int ndim, const uint64_t *shape);

typedef struct npy_info {
	char descr[16];
	int ndim;
	uint64_t shape[TS_MAX_DIMS];
	uint64_t nelem;
	size_t data_offset;
} npy_info;

/** Parse the header of a .npy image of @p size bytes. 0 or -1 with a message. */
int npy_parse_header(npy_info *out, const uint8_t *buf, size_t size, char *err, size_t err_size);

/**
 * Print @p data (C order, @p dtype, @p shape) like numpy's repr with at most @p edge items at
 * each end of a dimension longer than 2 * @p edge ("..." between); whole if edge is 0.
 */
void npy_print(FILE *f, const void *data, ts_dtype dtype, int ndim, const uint64_t *shape,
	       int edge);

/** One element of @p data as a double (F32, BF16, F16, F64, integers, bool, F8). */
double npy_element(const void *data, ts_dtype dtype, uint64_t i);

#endif
