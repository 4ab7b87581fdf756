/*
 * Tests of the error module: codes, names, messages and the thread-local last error.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "common/error.h"

Test(error, every_code_has_a_name_and_a_message)
{
	static const int codes[] = {
#define TS_X_CODE(name, value, msg) value,
		TS_ERROR_LIST(TS_X_CODE)
#undef TS_X_CODE
	};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		cr_expect_str_neq(ts_strerror(codes[i]), "unknown error", "code %d", codes[i]);
		cr_expect_str_neq(ts_errname(codes[i]), "TS_E?", "code %d", codes[i]);
	}
	cr_expect_str_eq(ts_errname(TS_ECORRUPT), "TS_ECORRUPT");
	cr_expect_str_eq(ts_strerror(12345), "unknown error");
}

Test(error, codes_are_stable_abi)
{
	cr_expect_eq(TS_EINVAL, -1);
	cr_expect_eq(TS_ECORRUPT, -5);
	cr_expect_eq(TS_EINTERNAL, -18);
}

Test(error, last_error_holds_the_formatted_message)
{
	int rc = ts__err(TS_ECORRUPT, "page %d of tensor '%s': checksum mismatch", 17, "w");
	cr_expect_eq(rc, TS_ECORRUPT);
	cr_expect_str_eq(ts_error_last(), "page 17 of tensor 'w': checksum mismatch");
	ts__err_wrap(TS_ECORRUPT, "reading '%s'", "w");
	cr_expect_str_eq(ts_error_last(), "reading 'w': page 17 of tensor 'w': checksum mismatch");
	ts_error_clear();
	cr_expect_str_eq(ts_error_last(), "");
}

static void *set_error_on_other_thread(void *arg)
{
	(void)arg;
	ts__err(TS_EIO, "other thread");
	return NULL;
}

Test(error, last_error_is_per_thread)
{
	pthread_t t;
	ts__err(TS_EINVAL, "this thread");
	pthread_create(&t, NULL, set_error_on_other_thread, NULL);
	pthread_join(t, NULL);
	cr_expect_str_eq(ts_error_last(), "this thread");
}

Test(error, errno_is_translated_in_one_place)
{
	cr_expect_eq(ts__code_from_errno(ENOSPC), TS_ENOSPC);
	cr_expect_eq(ts__code_from_errno(ENOMEM), TS_ENOMEM);
	cr_expect_eq(ts__code_from_errno(EIO), TS_EIO);
	cr_expect_eq(ts__err_errno(ENOSPC, "writing '%s'", "x"), TS_ENOSPC);
	cr_expect(strstr(ts_error_last(), "writing 'x': ") == ts_error_last());
}

Test(dtype, sizes_and_names_round_trip)
{
	for (int i = 0; i < TS_DTYPE_COUNT; i++) {
		ts_dtype d;
		cr_expect_gt(ts_dtype_size((ts_dtype)i), 0);
		cr_assert_eq(ts_dtype_parse(&d, ts_dtype_name((ts_dtype)i)), 0);
		cr_expect_eq((int)d, i);
	}
	cr_expect_eq(ts_dtype_size(TS_BF16), 2);
	cr_expect_eq(ts_dtype_size(TS_DTYPE_COUNT), 0);
	ts_dtype d;
	cr_expect_eq(ts_dtype_parse(&d, "bf16"), 0);
	cr_expect_eq(d, TS_BF16);
	cr_expect_eq(ts_dtype_parse(&d, "F4"), TS_EINVAL);
}
