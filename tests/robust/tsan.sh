#!/usr/bin/env bash
# ThreadSanitizer run of the concurrency test: builds out of tree in $TSAN_BUILDDIR (default
# build-tsan) with -fsanitize=thread and runs tests/test_concurrency with TS_CONC_ITERS (default
# 600) writer operations against 8 readers. Any TSan report fails the run (halt_on_error).
# LMDB and liburing are not instrumented; tests/robust/tsan.supp lists the reports that are
# theirs (none of tstore's code may be suppressed).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bdir=${TSAN_BUILDDIR:-$top/build-tsan}
TS_BUILDDIR=$bdir "$top/tools/build.sh" CFLAGS="-g -O1 -fsanitize=thread" LDFLAGS="-fsanitize=thread" || exit 2
cd "$bdir" && make -s tests/test_concurrency || exit 2
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$top/tests/robust/tsan.supp ${TSAN_OPTIONS:-}"
TS_CONC_ITERS=${TS_CONC_ITERS:-600} ./tests/test_concurrency --verbose=1 -j1
