/*
 * The scan of a floating-point source before it is encoded: its largest finite magnitude (the
 * amax that nvfp4 and fp8 derive their tensor scale from) and its count of NaN and Inf values
 * (tools/cli/scan.c).
 */
#ifndef TS_TOOLS_SCAN_H
#define TS_TOOLS_SCAN_H

#include <stdint.h>

#include "tstore.h"

/** Fold @p n elements of dtype @p dt (F32, BF16, F16; others are ignored) at @p p into *mx (the
 *  largest finite magnitude's bit pattern so far, 0 to start) and *bad (non-finite count). */
void scan_add(const uint8_t *p, uint64_t n, ts_dtype dt, uint32_t *mx, uint64_t *bad);

/** The amax that scan_add()'s *mx stands for. */
float scan_amax(ts_dtype dt, uint32_t mx);

#endif
