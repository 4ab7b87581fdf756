/*
 * The memory-hierarchy model: levels (registers, L1, L2, HBM, RAM, storage) with capacity,
 * bandwidth and latency, and codec decode rates; the built-in reference profile ("blackwell");
 * what a page costs in each form (engine/hierarchy.h). Calibration (engine/calibrate.c) measures
 * this machine's figures; the profile file (engine/profile.c) keeps them.
 *
 * The model is deliberately simple: moving b bytes from a level costs latency + b / bandwidth,
 * decoding n elements costs n / rate. Everything the residency policy decides is priced with
 * these two formulas (engine/cache_residency.c), so the profile is the one place where this
 * machine's speed enters the policy.
 *
 * Invariants
 *   1. A level with capacity 0 is absent: its bandwidth and latency are 0 and every transfer
 *      from it is +Inf. A present level has bandwidth > 0 and latency >= 0, finite.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "engine/hierarchy.h"
#include "engine/io.h"

static const char *const level_names[TS_MEM_LEVEL_COUNT] = {"registers", "l1", "l2",
							     "hbm",       "ram", "storage"};

TS_API const char *ts_mem_level_name(ts_mem_level level)
{
	if ((unsigned)level >= TS_MEM_LEVEL_COUNT)
		return "?";
	return level_names[level];
}

TS_API int ts_mem_level_parse(ts_mem_level *out, const char *name)
{
	for (int i = 0; name && i < TS_MEM_LEVEL_COUNT; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (ts_mem_level)i;
			return 0;
		}
	}
	return ts__err(TS_EINVAL, "unknown memory level '%s'", name ? name : "(null)");
}

/* -- The reference profile --------------------------------------------------------------- */

/*
 * The reference figures of docs/RESIDENCY.md ("The reference profile"): registers ~10 KB; L1
 * ~128 KB, 100+ GB/s; L2 ~6 MB, 50 GB/s; HBM ~24 GB, 8 TB/s; system RAM ~32 GB, 50 GB/s; NVMe
 * ~1 TB, 7 GB/s; decompression 800 GB/s. Latencies and the register bandwidth are assumptions,
 * documented there too.
 */
TS_API int ts_hw_profile_builtin(ts_hw_profile *out, const char *name)
{
	if (!out || !name)
		return ts__err(TS_EINVAL, "ts_hw_profile_builtin: NULL argument");
	if (strcasecmp(name, "blackwell") != 0)
		return ts__err(TS_ENOTFOUND, "no built-in hardware profile named '%s' (built in: "
					     "blackwell)", name);
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "blackwell");
	static const ts_mem_level_info ref[TS_MEM_LEVEL_COUNT] = {
		[TS_MEM_REGISTERS] = {10240ull, 10000.0, 0.001, 0},
		[TS_MEM_L1] = {128ull << 10, 100.0, 0.02, 0},
		[TS_MEM_L2] = {6ull << 20, 50.0, 0.2, 0},
		[TS_MEM_HBM] = {24ull << 30, 8000.0, 0.5, 0},
		[TS_MEM_RAM] = {32ull << 30, 50.0, 0.1, 0},
		[TS_MEM_STORAGE] = {1000000000000ull, 7.0, 80.0, 0},
	};
	memcpy(out->level, ref, sizeof(ref));
	/* 800 GB/s of decompressed output, read as F32 elements: 200 G elements/s. */
	for (int c = 0; c < TS_CODEC_COUNT; c++)
		out->decode_geps[c] = 200.0;
	out->page_bytes = TS__PROFILE_PAGE_BYTES;
	out->io = TS_IO_URING;
	out->queue_depth = TS_IO_QD;
	snprintf(out->kernel, sizeof(out->kernel), "hardware");
	return 0;
}

/* -- The model --------------------------------------------------------------------------- */

static int level_present(const ts_hw_profile *p, ts_mem_level level)
{
	return p && (unsigned)level < TS_MEM_LEVEL_COUNT && p->level[level].capacity_bytes > 0 &&
	       p->level[level].bandwidth_gbps > 0;
}

TS_API double ts_hw_bandwidth_gbps(const ts_hw_profile *p, ts_mem_level level)
{
	return level_present(p, level) ? p->level[level].bandwidth_gbps : 0.0;
}

TS_API double ts_hw_transfer_time_us(const ts_hw_profile *p, ts_mem_level level, double bytes)
{
	if (!level_present(p, level) || !(bytes >= 0))
		return INFINITY;
	/* bytes / (GB/s * 1e9 B/s) seconds = bytes / (GB/s * 1e3) microseconds */
	return p->level[level].latency_us + bytes / (p->level[level].bandwidth_gbps * 1e3);
}

TS_API double ts_hw_decode_time_us(const ts_hw_profile *p, ts_codec codec, double elements)
{
	if (!p || (unsigned)codec >= TS_CODEC_COUNT || !(p->decode_geps[codec] > 0) ||
	    !(elements >= 0))
		return INFINITY;
	return elements / (p->decode_geps[codec] * 1e3);
}

/* -- Page costs ------------------------------------------------------------------------- */

void ts__hw_page_cost(const ts_hw_profile *p, ts_codec codec, uint64_t elements,
		      uint64_t stored_bytes, uint64_t decoded_bytes, ts__page_cost *out)
{
	double dec = ts_hw_decode_time_us(p, codec, (double)elements);
	double copy = ts_hw_transfer_time_us(p, TS_MEM_RAM, (double)decoded_bytes);
	double read = ts_hw_transfer_time_us(p, TS_MEM_STORAGE, (double)stored_bytes);

	/* Invariant 1 for profiles that passed validation; clamp defensively for hand-made ones. */
	if (!isfinite(dec))
		dec = 0;
	if (!isfinite(copy))
		copy = 0;
	if (!isfinite(read))
		read = 0;
	out->decoded_us = copy;
	out->compressed_us = dec;
	out->storage_us = read + dec;
}
