#!/bin/sh
# make check: the Python package's tests (pytest) against the library, the command and the
# generator of this build. Skips (77) when Python, NumPy or pytest is missing.
: "${PYTHON:=python3}"
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${TS_BUILDDIR:-$PWD}
if ! "$PYTHON" -c 'import numpy, pytest' 2>/dev/null; then
	echo "SKIP: $PYTHON lacks numpy or pytest (python3-numpy, python3-pytest)"
	exit 77
fi
# The real binary rather than libtool's wrapper script (most of a second per call when loaded).
cli="$b/tools/tstore"
if [ -x "$b/tools/.libs/tstore" ]; then
	cli="$b/tools/.libs/tstore"
	export LD_LIBRARY_PATH="$b/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export TSTORE_LIBRARY="$b/.libs/libtstore.so" TSTORE_CLI="$cli" TSTORE_CACHE_BYTES=16777216 \
	TSTORE_GEN="$b/tools/gen_checkpoint" PYTHONPATH="$top/python${PYTHONPATH:+:$PYTHONPATH}" \
	PYTHONDONTWRITEBYTECODE=1
# A library built with sanitizers needs their runtimes loaded first (Python is not built
# with them); leaks are Python's own business.
if [ -n "$TS_SANITIZERS" ]; then
	LD_PRELOAD="$($CC -print-file-name=libasan.so) $($CC -print-file-name=libubsan.so)"
	export LD_PRELOAD ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi
t=$(mktemp -d "${TMPDIR:-/tmp}/tstore-py.XXXXXX") || exit 1
trap 'rm -rf "$t"' EXIT
"$PYTHON" -m pytest -q -p no:cacheprovider --basetemp="$t/pytest" "$top/python/tests" "$@"
