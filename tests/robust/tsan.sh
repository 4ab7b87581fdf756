#!/usr/bin/env bash
# ThreadSanitizer run of the concurrency test: builds the library out of tree in $TSAN_BUILDDIR
# (default build-tsan) with -fsanitize=thread, links tests/test_concurrency.c as a standalone
# program (Criterion's runner crashes under TSan; tests/robust/crshim.h stands in for it) and runs
# it with TSTORE_TEST_CONC_ITERS (default 600) writer operations against 8 readers. Any TSan report fails
# the run (halt_on_error). tests/robust/tsan.supp may list reports inside uninstrumented
# libraries (LMDB, liburing) only, never tstore's own code.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bdir=${TSAN_BUILDDIR:-$top/build-tsan}
TS_BUILDDIR=$bdir "$top/tools/build.sh" CFLAGS="-g -O1 -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	--disable-tests || exit 2
cd "$bdir" || exit 2
./libtool --quiet --mode=link ${CC:-gcc} -std=gnu11 -g -O1 -fsanitize=thread -DTS_CONC_STANDALONE \
	-I"$top/include" -I"$top" -o tests/conc_tsan "$top/tests/test_concurrency.c" \
	libtstore_internal.la -lpthread -lm || exit 2
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$top/tests/robust/tsan.supp ${TSAN_OPTIONS:-}"
TSTORE_TEST_CONC_ITERS=${TSTORE_TEST_CONC_ITERS:-600} ./tests/conc_tsan
