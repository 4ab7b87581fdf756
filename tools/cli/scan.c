/*
 * The scan of a floating-point source (tools/cli/scan.h).
 */
#include "config.h"

#include <string.h>

#include "tools/cli/scan.h"

static uint16_t ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* amax and count of non-finite values, on the bit patterns (magnitudes order like integers),
 * accumulated over pieces of a tensor: *mx holds the largest finite magnitude's bits.
 *
 * With the sign bit cleared, magnitudes are non-negative as signed integers, so that SSE2's
 * signed compares order them: the bulk runs on GCC/Clang vector types, 16 bytes at a time, in
 * blocks short enough that a lane's count of non-finite values cannot overflow; loaded in the
 * host's byte order where that is little-endian, else (and for the tail) element by element. */
typedef int16_t scan_v16 __attribute__((vector_size(16)));
typedef int32_t scan_v32 __attribute__((vector_size(16)));
#define SCAN_BLOCK 4096 /* vectors per block: < 2^15, a lane's count fits int16_t */

static void scan16(const uint8_t *p, uint64_t n, uint16_t inf, uint32_t *mx, uint64_t *bad)
{
	uint64_t i = 0, nb = 0;
	uint16_t m = (uint16_t)*mx;
	const scan_v16 sign = (scan_v16){0} + 0x7FFF, vinf = (scan_v16){0} + (int16_t)inf;

	while (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && i + 8 <= n) {
		scan_v16 vm = {0}, vc = {0};
		for (uint64_t k = 0; k < SCAN_BLOCK && i + 8 <= n; k++, i += 8) {
			scan_v16 a, nf, gt;
			memcpy(&a, p + 2 * i, sizeof a);
			a &= sign;
			nf = a >= vinf; /* -1 where not finite */
			vc -= nf;
			a &= ~nf;
			gt = a > vm;
			vm = (a & gt) | (vm & ~gt);
		}
		for (int l = 0; l < 8; l++) {
			nb += (uint16_t)vc[l];
			m = (uint16_t)vm[l] > m ? (uint16_t)vm[l] : m;
		}
	}
	for (; i < n; i++) {
		uint16_t a = ld16(p + 2 * i) & 0x7FFF, f = a >= inf ? 0 : a;
		nb += a >= inf;
		m = f > m ? f : m;
	}
	*mx = m;
	*bad += nb;
}

static void scan32(const uint8_t *p, uint64_t n, uint32_t *mx, uint64_t *bad)
{
	uint64_t i = 0, nb = 0;
	uint32_t m = *mx;
	const scan_v32 sign = (scan_v32){0} + 0x7FFFFFFF, vinf = (scan_v32){0} + 0x7F800000;

	while (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && i + 4 <= n) {
		scan_v32 vm = {0}, vc = {0};
		for (uint64_t k = 0; k < SCAN_BLOCK && i + 4 <= n; k++, i += 4) {
			scan_v32 a, nf, gt;
			memcpy(&a, p + 4 * i, sizeof a);
			a &= sign;
			nf = a >= vinf;
			vc -= nf;
			a &= ~nf;
			gt = a > vm;
			vm = (a & gt) | (vm & ~gt);
		}
		for (int l = 0; l < 4; l++) {
			nb += (uint32_t)vc[l];
			m = (uint32_t)vm[l] > m ? (uint32_t)vm[l] : m;
		}
	}
	for (; i < n; i++) {
		uint32_t a = ld32(p + 4 * i) & 0x7FFFFFFFu, f = a >= 0x7F800000u ? 0 : a;
		nb += a >= 0x7F800000u;
		m = f > m ? f : m;
	}
	*mx = m;
	*bad += nb;
}

void scan_add(const uint8_t *p, uint64_t n, ts_dtype dt, uint32_t *mx, uint64_t *bad)
{
	if (dt == TS_BF16 || dt == TS_F16)
		scan16(p, n, dt == TS_BF16 ? 0x7F80 : 0x7C00, mx, bad);
	else if (dt == TS_F32)
		scan32(p, n, mx, bad);
}

float scan_amax(ts_dtype dt, uint32_t mx)
{
	float f;
	if (dt == TS_BF16)
		return ts_bf16_to_f32((uint16_t)mx);
	if (dt == TS_F16)
		return ts_f16_to_f32((uint16_t)mx);
	memcpy(&f, &mx, 4);
	return dt == TS_F32 ? f : 0;
}

