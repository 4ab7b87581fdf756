#!/usr/bin/env bash
# The GPU path on a CUDA machine (docs/GPU.md): build with --with-cuda, then tools/gpu/gpu_check.py
# (bit-exactness of every codec and dtype, odd shapes, slices, the NVFP4 triple, the decode
# kernel's throughput, a >= 1 GB checkpoint's load against safetensors), a short table last.
#
#   tools/gpu/gpu_check.sh [WORKDIR]
#
# A machine without a package manager: put the Debian packages of the library's dependencies
# (liblmdb0 liblmdb-dev libxxhash0 libxxhash-dev liburing2 liburing-dev libzstd1 libzstd-dev,
# `apt-get download`) in $TS_DEBS (default ./.debs): they are unpacked into $WORKDIR/sysroot.
# The source tree needs a configure script (run autoreconf -fi where autotools exist).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-/tmp/tstore-gpu}
debs=${TS_DEBS:-$top/.debs}
mkdir -p "$work"
sr="$work/sysroot"
if ls "$debs"/*.deb >/dev/null 2>&1; then
	mkdir -p "$sr"
	for d in "$debs"/*.deb; do dpkg -x "$d" "$sr"; done
	lib="$sr/usr/lib/x86_64-linux-gnu"
	# the -dev packages' .so links are absolute; point them into the sysroot
	for l in "$lib"/*.so; do
		[ -L "$l" ] && ln -sf "$(basename "$(readlink "$l")")" "$l"
	done
	export CPPFLAGS="-I$sr/usr/include ${CPPFLAGS:-}" LDFLAGS="-L$lib ${LDFLAGS:-}"
	export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	export PKG_CONFIG_SYSROOT_DIR="$sr" PKG_CONFIG_LIBDIR="$lib/pkgconfig"
fi
[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
b="$work/build"
mkdir -p "$b"
cd "$b"
echo "== configure --with-cuda ($(date -u +%FT%TZ), $(nproc) cores)"
"$top/configure" -q --with-cuda --disable-tests --disable-python
echo "== make"
make -s -j"$(nproc)" >make.log 2>&1 || { tail -40 make.log; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
export PYTHONPATH="$top/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TSTORE_LIBRARY="$b/.libs/libtstore.so"
exec python3 "$top/tools/gpu/gpu_check.py" "$b" "$work" "${@:2}"
