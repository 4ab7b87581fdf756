#!/usr/bin/env bash
# Build tstore and run its test suite (make check). Extra arguments go to ./configure,
# e.g. ./tools/test.sh --enable-sanitizers
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/build.sh" "$@" || exit 1
cd "${TS_BUILDDIR:-$top/build}" || exit 1
make -s -j"$(nproc)" check 2>&1 | tee check.out
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || cat test-suite.log >&2
pass=$(sed -n 's/^# PASS: *//p' check.out | tail -1)
fail=$(sed -n 's/^# FAIL: *//p' check.out | tail -1)
err=$(sed -n 's/^# ERROR: *//p' check.out | tail -1)
skip=$(sed -n 's/^# SKIP: *//p' check.out | tail -1)
echo "tests: ${pass:-0} passed, $(( ${fail:-0} + ${err:-0} )) failed, ${skip:-0} skipped"
exit "$status"
