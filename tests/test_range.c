/*
 * tools/cli/range.c: numpy-style basic index ranges for `tstore slice`.
 * Expected values are worked out by hand from numpy's rules.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tools/cli/commands.h"

static uint64_t st[TS_MAX_DIMS], ct[TS_MAX_DIMS];
static uint32_t sq;
static char err[256];

static int parse(const char *text, int ndim, const uint64_t *shape)
{
	memset(st, 0xAB, sizeof st);
	memset(ct, 0xAB, sizeof ct);
	err[0] = '\0';
	return range_parse(text, ndim, shape, st, ct, &sq, err, sizeof err);
}

Test(range, slices_and_full_dimensions)
{
	uint64_t shape[2] = {256, 64};
	cr_assert_eq(parse("0:128,:", 2, shape), 0, "%s", err);
	cr_assert_eq(st[0], 0);
	cr_assert_eq(ct[0], 128);
	cr_assert_eq(st[1], 0);
	cr_assert_eq(ct[1], 64);
	cr_assert_eq(sq, 0);
}

Test(range, index_squeezes_its_dimension)
{
	uint64_t shape[2] = {10, 64};
	cr_assert_eq(parse("5,16:32", 2, shape), 0, "%s", err);
	cr_assert_eq(st[0], 5);
	cr_assert_eq(ct[0], 1);
	cr_assert_eq(st[1], 16);
	cr_assert_eq(ct[1], 16);
	cr_assert_eq(sq, 1u);
}

Test(range, negative_values_count_from_the_end)
{
	uint64_t shape[3] = {10, 20, 30};
	cr_assert_eq(parse("-1, -5:, :-10", 3, shape), 0, "%s", err);
	cr_assert_eq(st[0], 9);
	cr_assert_eq(ct[0], 1);
	cr_assert_eq(st[1], 15);
	cr_assert_eq(ct[1], 5);
	cr_assert_eq(st[2], 0);
	cr_assert_eq(ct[2], 20);
	cr_assert_eq(sq, 1u);
}

Test(range, missing_trailing_dimensions_mean_all)
{
	uint64_t shape[3] = {4, 5, 6};
	cr_assert_eq(parse("1:3", 3, shape), 0, "%s", err);
	cr_assert_eq(st[0], 1);
	cr_assert_eq(ct[0], 2);
	cr_assert_eq(ct[1], 5);
	cr_assert_eq(ct[2], 6);
	cr_assert_eq(parse("", 3, shape), 0, "%s", err);
	cr_assert_eq(ct[0], 4);
}

Test(range, slice_bounds_are_clipped_like_numpy)
{
	uint64_t shape[1] = {10};
	cr_assert_eq(parse("5:1000", 1, shape), 0, "%s", err);
	cr_assert_eq(st[0], 5);
	cr_assert_eq(ct[0], 5);
	cr_assert_eq(parse("-100:3", 1, shape), 0, "%s", err);
	cr_assert_eq(st[0], 0);
	cr_assert_eq(ct[0], 3);
}

Test(range, out_of_range_index_names_the_dimension)
{
	uint64_t shape[2] = {10, 20};
	cr_assert_eq(parse("3,20", 2, shape), -1);
	cr_assert(strstr(err, "dimension 1"), "%s", err);
	cr_assert(strstr(err, "out of range"), "%s", err);
	cr_assert_eq(parse("-11", 2, shape), -1);
	cr_assert(strstr(err, "dimension 0"), "%s", err);
}

Test(range, empty_selection_is_an_error)
{
	uint64_t shape[1] = {10};
	cr_assert_eq(parse("5:5", 1, shape), -1);
	cr_assert(strstr(err, "selects nothing"), "%s", err);
	cr_assert_eq(parse("7:3", 1, shape), -1);
}

Test(range, too_many_indices_steps_and_garbage_are_rejected)
{
	uint64_t shape[2] = {10, 20};
	cr_assert_eq(parse("1,2,3", 2, shape), -1);
	cr_assert(strstr(err, "too many"), "%s", err);
	cr_assert_eq(parse("0:10:2", 2, shape), -1);
	cr_assert(strstr(err, "steps"), "%s", err);
	cr_assert_eq(parse("a:b", 2, shape), -1);
	cr_assert(strstr(err, "dimension 0"), "%s", err);
	cr_assert_eq(parse("1,x", 2, shape), -1);
	cr_assert(strstr(err, "dimension 1"), "%s", err);
	cr_assert_eq(parse("1,", 2, shape), -1);
	cr_assert_eq(parse("--1", 2, shape), -1);
}

Test(range, huge_numbers_do_not_overflow)
{
	uint64_t shape[1] = {10};
	cr_assert_eq(parse("99999999999999999999999", 1, shape), -1);
	cr_assert(strstr(err, "too large"), "%s", err);
	cr_assert_eq(parse("18446744073709551615", 1, shape), -1);
	cr_assert(strstr(err, "out of range"), "%s", err);
	cr_assert_eq(parse("0:18446744073709551615", 1, shape), 0, "%s", err);
	cr_assert_eq(ct[0], 10);
}

Test(range, scalar_tensor_accepts_only_an_empty_range)
{
	cr_assert_eq(parse("", 0, NULL), 0, "%s", err);
	cr_assert_eq(parse("0", 0, NULL), -1);
	cr_assert(strstr(err, "too many"), "%s", err);
}
