#!/bin/sh
# The layering, checked from the sources' `#include "..."` lines (docs/ARCHITECTURE.md):
#   include/tstore.h <- common/ <- codec/ <- engine/ <- gpu/, tools/, python/
# every arrow pointing down; the command (tools/cli/), the benchmarks (tools/bench/) and the
# Python package's C programs use only tstore.h (and the command's own helpers); and no include
# cycle among engine modules (a module is engine/NAME.c with engine/NAME.h; io_uring, io_pread
# and io_mmap are backends of io).
# Usage: tools/includes.sh [SOURCE_TREE]; run by make check. Exit 0 clean, 1 with a list.
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 99
status=0
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

# Every quoted include as "file included", tstore.h normalised to include/tstore.h.
for f in include/*.h common/*.[ch] codec/*.[ch] engine/*.[ch] gpu/*.[ch] gpu/*.cu \
	tools/cli/*.[ch] tools/bench/*.[ch] python/bench/*.c; do
	[ -f "$f" ] || continue
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
		while read -r inc; do
			case $inc in
			tstore.h) inc=include/tstore.h ;;
			esac
			echo "$f $inc"
		done
done >"$tmp/edges"

# allowed DIR PATTERN...: the includes of files under DIR must match one of the patterns.
allowed() {
	dir=$1
	shift
	while read -r f inc; do
		case $f in
		"$dir"/*) ;;
		*) continue ;;
		esac
		ok=0
		for p in "$@"; do
			# shellcheck disable=SC2254
			case $inc in
			$p) ok=1 ;;
			esac
		done
		if [ $ok = 0 ]; then
			echo "layering: $f includes \"$inc\" (allowed from $dir/: $*)"
			status=1
		fi
	done <"$tmp/edges" >"$tmp/out"
	if [ -s "$tmp/out" ]; then
		cat "$tmp/out"
		status=1
	fi
}
allowed include 'nothing'
allowed common config.h include/tstore.h 'common/*'
allowed codec config.h include/tstore.h 'common/*' 'codec/*'
allowed engine config.h include/tstore.h 'common/*' 'codec/*' 'engine/*'
allowed gpu config.h include/tstore.h 'common/*' 'codec/*' 'engine/*' 'gpu/*'
allowed tools/cli config.h include/tstore.h 'tools/cli/*'
allowed tools/bench config.h include/tstore.h 'tools/cli/*' 'tools/bench/*'
allowed python config.h include/tstore.h

# Include cycles among engine modules: tsort fails on a loop and names its members.
module() {
	m=${1#engine/}
	m=${m%.[ch]}
	case $m in
	io_uring | io_pread | io_mmap) m=io ;;
	esac
	echo "$m"
}
while read -r f inc; do
	case $f in engine/*) ;; *) continue ;; esac
	case $inc in engine/*) ;; *) continue ;; esac
	a=$(module "$f")
	b=$(module "$inc")
	[ "$a" = "$b" ] || echo "$a $b"
done <"$tmp/edges" >"$tmp/modules"
if ! tsort "$tmp/modules" >/dev/null 2>"$tmp/tsort"; then
	echo "engine: include cycle among modules:"
	sed 's/^/  /' "$tmp/tsort"
	status=1
fi

n=$(wc -l <"$tmp/edges")
[ $status = 0 ] && echo "includes: $n include lines, layering and engine module graph clean"
exit $status
