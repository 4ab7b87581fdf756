/*
 * The few Criterion macros tests/test_concurrency.c uses, as plain C, so that the same test can
 * run as a standalone program under ThreadSanitizer (Criterion's runner itself crashes under
 * TSan). Used by tests/robust/tsan.sh only.
 */
#ifndef TS_TESTS_CRSHIM_H
#define TS_TESTS_CRSHIM_H
#include <stdio.h>
#include <stdlib.h>

#define CRS_FAIL(...)                                                                        \
	do {                                                                                 \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                         \
		fprintf(stderr, "" __VA_ARGS__);                                             \
		fprintf(stderr, "\n");                                                       \
		exit(1);                                                                     \
	} while (0)
#define cr_assert(c, ...)                                                                    \
	do {                                                                                 \
		if (!(c))                                                                    \
			CRS_FAIL(__VA_ARGS__);                                               \
	} while (0)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL, __VA_ARGS__)
#define cr_log_info(...) (printf(__VA_ARGS__), printf("\n"))
#define Test(suite, name, ...) static void crs_test(void)
#endif
