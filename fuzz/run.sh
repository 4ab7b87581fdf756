#!/usr/bin/env bash
# Build the libFuzzer targets with clang under ASan+UBSan (out of tree, in $FUZZ_BUILDDIR, default
# build-fuzz) and run each for FUZZ_SECONDS (default 600), one after the other, at low priority.
# New corpus entries go to $FUZZ_BUILDDIR/fuzz-corpus/<target>/ (the committed seeds in
# fuzz/corpus/<target>/ are read, never written); crashers to $FUZZ_BUILDDIR/fuzz-artifacts/.
# Prints executions per target; exits 1 if any target found a crash.
#   FUZZ_TARGETS="safetensors range" FUZZ_SECONDS=60 ./fuzz/run.sh
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bdir=${FUZZ_BUILDDIR:-$top/build-fuzz}
secs=${FUZZ_SECONDS:-600}
targets=${FUZZ_TARGETS:-"safetensors range codec lossless record page store"}
command -v clang >/dev/null || { echo "fuzz: clang is required (apt-get install clang)" >&2; exit 2; }
TS_BUILDDIR=$bdir "$top/tools/build.sh" CC=clang --enable-fuzzing --disable-tests || exit 2
status=0
summary=""
for t in $targets; do
	bin=$bdir/fuzz/fuzz_$t
	[ -x "$bin" ] || { echo "fuzz: no target $t" >&2; status=2; continue; }
	work=$bdir/fuzz-corpus/$t
	art=$bdir/fuzz-artifacts/$t
	mkdir -p "$work" "$art"
	dict=()
	[ -f "$top/fuzz/$t.dict" ] && dict=(-dict="$top/fuzz/$t.dict")
	log=$bdir/fuzz-$t.log
	echo "fuzz: $t for ${secs}s (log $log)"
	nice -n 10 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		"${dict[@]}" -artifact_prefix="$art/" "$work" "$top/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	crashes=$(find "$art" -type f | wc -l)
	summary+=$(printf '%-12s %12s executions  exit %d  artifacts %d' "$t" "${execs:-?}" "$rc" "$crashes")$'\n'
	[ "$rc" -eq 0 ] || status=1
done
printf '\nfuzz summary (%ss per target)\n%s' "$secs" "$summary"
exit "$status"
