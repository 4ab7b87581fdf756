#!/usr/bin/env bash
# The main job end to end on a small example this script generates itself.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/build.sh"
echo "tstore $(grep -o 'TS_VERSION_STRING "[^"]*"' "$top/include/tstore.h" | cut -d'"' -f2): built in ${TS_BUILDDIR:-$top/build}"
