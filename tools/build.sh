#!/usr/bin/env bash
# Configure and build tstore in ./build (out of tree), installing dependencies first.
# Extra arguments go to ./configure. Reconfigures only when needed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./tools/deps.sh
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] ||
	autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
builddir=${TS_BUILDDIR:-$top/build}
mkdir -p "$builddir"
cd "$builddir"
want="$*"
if [ ! -f Makefile ] || [ "$(cat .ts-configure-args 2>/dev/null)" != "$want" ] || [ "$top/configure" -nt Makefile ]; then
	"$top/configure" -q "$@"
	echo "$want" >.ts-configure-args
fi
make -s -j"$(nproc)"
