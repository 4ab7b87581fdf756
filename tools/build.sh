#!/usr/bin/env bash
# Configure and build tstore in ./build (out of tree), installing dependencies first.
# Extra arguments go to ./configure. Once configured, make's own rules regenerate configure and
# the Makefiles when configure.ac or Makefile.am change, so nothing is redone needlessly.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./tools/deps.sh
[ -x configure ] || autoreconf -fi
builddir=${TS_BUILDDIR:-$top/build}
mkdir -p "$builddir"
cd "$builddir"
want="$*"
if [ ! -f Makefile ] || [ "$(cat .ts-configure-args 2>/dev/null)" != "$want" ]; then
	"$top/configure" -q "$@"
	echo "$want" >.ts-configure-args
fi
make -s -j"$(nproc)"
