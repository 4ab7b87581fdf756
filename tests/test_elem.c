/*
 * Tests of the element formats: E2M1, E4M3, E8M0, BF16 and F16 against their definitions
 * (computed independently here) and against the golden BF16/F16 vectors.
 */
#include "golden.h"

/* The nearest value of a sorted magnitude grid, ties to the even code, saturating. */
static unsigned ref_nearest(double a, const double *grid, unsigned n)
{
	unsigned best = 0;
	for (unsigned c = 1; c < n; c++) {
		double d0 = fabs(a - grid[best]), d1 = fabs(a - grid[c]);
		if (d1 < d0 || (d1 == d0 && (c & 1) == 0))
			best = c;
	}
	return best;
}

static double e4m3_grid[127]; /* codes 0x00..0x7E */
static const double e2m1_grid[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};

static void make_grid(void)
{
	for (unsigned c = 0; c < 127; c++)
		e4m3_grid[c] = ref_e4m3(c);
}

static unsigned ref_to_e4m3(float x)
{
	unsigned sign = signbit(x) ? 0x80 : 0;
	if (isnan(x))
		return sign | 0x7f;
	return sign | ref_nearest(fabs((double)x), e4m3_grid, 127);
}

static unsigned ref_to_e2m1(float x)
{
	unsigned sign = signbit(x) ? 0x8 : 0;
	return sign | ref_nearest(fabs((double)x), e2m1_grid, 8);
}

/* Values around every grid point and midpoint, plus a deterministic random sweep. */
static void probe_values(const double *grid, unsigned n, void (*check)(float))
{
	for (unsigned c = 0; c < n; c++) {
		double pts[3] = {grid[c], c + 1 < n ? (grid[c] + grid[c + 1]) / 2 : grid[c] * 1.1,
				 grid[c] * 2};
		for (int k = 0; k < 3; k++) {
			float f = (float)pts[k];
			float around[5] = {f, nextafterf(f, 0), nextafterf(f, INFINITY), -f,
					   -nextafterf(f, INFINITY)};
			for (int j = 0; j < 5; j++)
				check(around[j]);
		}
	}
	uint32_t s = 12345;
	for (int i = 0; i < 200000; i++) {
		s = s * 1664525u + 1013904223u;
		float f = bits_f32((s & 0x807fffffu) | ((100u + (s >> 24) % 40u) << 23));
		check(f);
	}
}

static void check_e4m3(float x)
{
	cr_assert_eq(ts_f32_to_e4m3(x), ref_to_e4m3(x), "e4m3(%a)", (double)x);
}

static void check_e2m1(float x)
{
	cr_assert_eq(ts_f32_to_e2m1(x), ref_to_e2m1(x), "e2m1(%a)", (double)x);
}

Test(elem, e4m3_decode_matches_the_definition)
{
	for (unsigned b = 0; b < 256; b++) {
		double want = ref_e4m3(b);
		float got = ts_e4m3_to_f32((uint8_t)b);
		if (isnan(want))
			cr_expect(isnan(got), "byte 0x%02x", b);
		else
			cr_expect_eq((double)got, want, "byte 0x%02x", b);
		if (b == 0x80)
			cr_expect(signbit(got));
	}
	cr_expect(signbit(ts_e4m3_to_f32(0xff)));
	cr_expect_eq(ts_e4m3_to_f32(0x7e), 448.0f);
	cr_expect_eq(ts_e4m3_to_f32(0x01), 0x1p-9f);
}

Test(elem, e4m3_encode_is_nearest_even_and_saturates)
{
	make_grid();
	probe_values(e4m3_grid, 127, check_e4m3);
	cr_expect_eq(ts_f32_to_e4m3(448.0f), 0x7e);
	cr_expect_eq(ts_f32_to_e4m3(463.99f), 0x7e);
	cr_expect_eq(ts_f32_to_e4m3(464.0f), 0x7e);
	cr_expect_eq(ts_f32_to_e4m3(1e30f), 0x7e);
	cr_expect_eq(ts_f32_to_e4m3(INFINITY), 0x7e);
	cr_expect_eq(ts_f32_to_e4m3(-INFINITY), 0xfe);
	cr_expect_eq(ts_f32_to_e4m3(NAN), 0x7f);
	cr_expect_eq(ts_f32_to_e4m3(-NAN), 0xff);
	cr_expect_eq(ts_f32_to_e4m3(-0.0f), 0x80);
	cr_expect_eq(ts_f32_to_e4m3(0x1p-10f), 0x00); /* tie between 0 and 2^-9: even */
	cr_expect_eq(ts_f32_to_e4m3(0x1.8p-9f), 0x02); /* tie between 1 and 2 steps: even */
	cr_expect_eq(ts_f32_to_e4m3(0x1p-149f), 0x00); /* float subnormal */
	for (unsigned b = 0; b < 256; b++) {
		if ((b & 0x7f) == 0x7f)
			continue;
		cr_expect_eq(ts_f32_to_e4m3(ts_e4m3_to_f32((uint8_t)b)), b, "round trip 0x%02x", b);
	}
}

Test(elem, e2m1_encode_is_nearest_even_and_saturates)
{
	probe_values(e2m1_grid, 8, check_e2m1);
	cr_expect_eq(ts_f32_to_e2m1(0.25f), 0x0);
	cr_expect_eq(ts_f32_to_e2m1(0.75f), 0x2);
	cr_expect_eq(ts_f32_to_e2m1(1.25f), 0x2);
	cr_expect_eq(ts_f32_to_e2m1(1.75f), 0x4);
	cr_expect_eq(ts_f32_to_e2m1(2.5f), 0x4);
	cr_expect_eq(ts_f32_to_e2m1(3.5f), 0x6);
	cr_expect_eq(ts_f32_to_e2m1(5.0f), 0x6);
	cr_expect_eq(ts_f32_to_e2m1(100.0f), 0x7);
	cr_expect_eq(ts_f32_to_e2m1(-0.1f), 0x8); /* negative values that round to zero */
	cr_expect_eq(ts_f32_to_e2m1(-0.0f), 0x8);
	cr_expect_eq(ts_f32_to_e2m1(INFINITY), 0x7);
	for (unsigned c = 0; c < 16; c++) {
		cr_expect_eq((double)ts_e2m1_to_f32((uint8_t)c), ref_e2m1(c), "code %u", c);
		cr_expect_eq(ts_f32_to_e2m1(ts_e2m1_to_f32((uint8_t)c)), c, "round trip %u", c);
	}
}

Test(elem, e8m0_is_a_power_of_two)
{
	for (unsigned b = 0; b < 255; b++)
		cr_expect_eq((double)ts_e8m0_to_f32((uint8_t)b), ldexp(1.0, (int)b - 127), "%u", b);
	cr_expect(isnan(ts_e8m0_to_f32(0xff)));
}

Test(elem, bf16_and_f16_match_the_golden_vectors)
{
	for (int f = 0; f < GOLDEN_FOLDERS; f++) {
		size_t nx, nb, nh;
		float *x = golden_load(golden_folders[f], "input.f32", &nx);
		uint16_t *bf = golden_load(golden_folders[f], "bf16.u16", &nb);
		uint16_t *hf = golden_load(golden_folders[f], "f16.u16", &nh);
		size_t n = nx / 4;
		cr_assert_eq(nb, n * 2);
		cr_assert_eq(nh, n * 2);
		for (size_t i = 0; i < n; i++) {
			cr_assert_eq(ts_f32_to_bf16(x[i]), bf[i], "%s[%zu] = %a: bf16",
				     golden_folders[f], i, (double)x[i]);
			cr_assert_eq(ts_f32_to_f16(x[i]), hf[i], "%s[%zu] = %a: f16",
				     golden_folders[f], i, (double)x[i]);
			cr_assert_eq(f32_bits(ts_bf16_to_f32(bf[i])), (uint32_t)bf[i] << 16);
		}
		free(x);
		free(bf);
		free(hf);
	}
}

/* Every half-precision value decodes to its definition and encodes back to itself. */
Test(elem, f16_every_value_round_trips)
{
	for (uint32_t h = 0; h < 65536; h++) {
		float f = ts_f16_to_f32((uint16_t)h);
		unsigned e = (h >> 10) & 31, m = h & 1023;
		if (e == 31 && m) {
			cr_assert(isnan(f), "0x%04x", h);
			cr_assert(isnan(ts_f16_to_f32(ts_f32_to_f16(f))));
			continue;
		}
		double want = e == 31 ? INFINITY : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, (int)e - 25);
		if (h & 0x8000)
			want = -want;
		cr_assert_eq((double)f, want, "0x%04x", h);
		cr_assert_eq(signbit(f) != 0, (h & 0x8000) != 0);
		cr_assert_eq(ts_f32_to_f16(f), h, "0x%04x", h);
	}
}

Test(elem, bf16_every_value_round_trips)
{
	for (uint32_t h = 0; h < 65536; h++) {
		float f = ts_bf16_to_f32((uint16_t)h);
		cr_assert_eq(f32_bits(f), h << 16);
		if (isnan(f))
			cr_assert(isnan(ts_bf16_to_f32(ts_f32_to_bf16(f))));
		else
			cr_assert_eq(ts_f32_to_bf16(f), h, "0x%04x", h);
	}
}

Test(elem, f16_special_values)
{
	cr_expect_eq(ts_f32_to_f16(65504.0f), 0x7bff);
	cr_expect_eq(ts_f32_to_f16(65519.99f), 0x7bff);
	cr_expect_eq(ts_f32_to_f16(65520.0f), 0x7c00); /* overflow: Inf */
	cr_expect_eq(ts_f32_to_f16(-1e10f), 0xfc00);
	cr_expect_eq(ts_f32_to_f16(INFINITY), 0x7c00);
	cr_expect_eq(ts_f32_to_f16(-INFINITY), 0xfc00);
	cr_expect_eq(ts_f32_to_f16(-0.0f), 0x8000);
	cr_expect_eq(ts_f32_to_f16(0x1p-24f), 0x0001);
	cr_expect_eq(ts_f32_to_f16(0x1p-25f), 0x0000);  /* tie: even */
	cr_expect_eq(ts_f32_to_f16(0x1.8p-24f), 0x0002); /* tie: even */
	cr_expect_eq(ts_f32_to_f16(0x1.ffcp-15f), 0x0400); /* rounds up to the smallest normal */
	uint16_t h = ts_f32_to_f16(NAN);
	cr_expect((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
	cr_expect(isinf(ts_f16_to_f32(0x7c00)));
}

Test(elem, bf16_special_values)
{
	cr_expect_eq(ts_f32_to_bf16(INFINITY), 0x7f80);
	cr_expect_eq(ts_f32_to_bf16(-INFINITY), 0xff80);
	cr_expect_eq(ts_f32_to_bf16(FLT_MAX), 0x7f80); /* rounds past the largest finite bf16 */
	cr_expect_eq(ts_f32_to_bf16(bits_f32(0x7f7f0000u)), 0x7f7f);
	cr_expect_eq(ts_f32_to_bf16(-0.0f), 0x8000);
	cr_expect_eq(ts_f32_to_bf16(bits_f32(0x3f808000u)), 0x3f80); /* tie: even */
	cr_expect_eq(ts_f32_to_bf16(bits_f32(0x3f818000u)), 0x3f82); /* tie: even */
	cr_expect_eq(ts_f32_to_bf16(bits_f32(0x00000001u)), 0x0000); /* tiny subnormal */
	cr_expect_eq(ts_f32_to_bf16(bits_f32(0x00010000u)), 0x0001); /* subnormal kept */
	uint16_t h = ts_f32_to_bf16(bits_f32(0x7f800001u)); /* signalling NaN with a low payload */
	cr_expect(isnan(ts_bf16_to_f32(h)));
	cr_expect(isnan(ts_bf16_to_f32(ts_f32_to_bf16(-NAN))));
}
