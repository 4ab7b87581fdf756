#!/usr/bin/env bash
# The import benchmark (make bench-import): wall-clock ratios of `tstore import`, each against a
# baseline measured in the same run, on a generated LLM-shaped BF16 checkpoint (~330 MB):
#   nvfp4, auto     vs an O_DIRECT read of the source (dd iflag=direct bs=8M)
#   raw             vs cp of the source + sync
#   2 and 4 concurrent imports of a 4-shard copy's shards into one store vs one import of the
#   same shards together: with --spool always (the default), and auto and never for comparison
# Every figure includes `sync` and starts with the page cache dropped (echo 3 >
# /proc/sys/vm/drop_caches; as root, else the figures are warm and say so). Each is the minimum
# of REPEATS runs; CPU seconds (user + sys) of the single imports are printed too, the load
# average beside the figures (other work on the machine makes wall times noisy).
#   bench_import.sh [-n REPEATS] [--layers N] [--dir DIR] [--keep]
# DIR (default $TMPDIR or /var/tmp) must not be a tmpfs: the benchmark is of the disk.
set -euo pipefail
B=${TS_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
TSTORE=$B/tools/tstore
GEN=$B/tools/gen_checkpoint
if [ -x "$B/tools/.libs/tstore" ] && [ -e "$B/.libs/libtstore.so" ]; then
	# the program itself, not libtool's wrapper script (which costs ~0.1 s of CPU and more of
	# wall time per run: a concurrent run would pay it once per process, as no installed
	# tstore does)
	TSTORE=$B/tools/.libs/tstore
	export LD_LIBRARY_PATH=$B/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
reps=3 layers=9 base=${TMPDIR:-/var/tmp} keep=0
if [ "${1:-}" = --concurrent ]; then
	# --concurrent SPOOL STORE SRC...: one nvfp4 import per SRC into STORE, all at once
	spool=$2 store=$3
	shift 3
	pids=()
	for s in "$@"; do
		"$TSTORE" import -q --codec nvfp4 --spool "$spool" "$store" "$s" 2>/dev/null &
		pids+=($!)
	done
	rc=0
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	exit $rc
fi
while [ $# -gt 0 ]; do
	case $1 in
	-n) reps=$2; shift 2 ;;
	--layers) layers=$2; shift 2 ;;
	--dir) base=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	*) echo "usage: bench_import.sh [-n REPEATS] [--layers N] [--dir DIR] [--keep]" >&2; exit 2 ;;
	esac
done
[ -x "$TSTORE" ] && [ -x "$GEN" ] || { echo "bench_import: build first ($TSTORE)" >&2; exit 2; }
D=$(mktemp -d "$base/tstore-bench-import.XXXXXX")
[ "$keep" = 1 ] || trap 'rm -rf "$D"' EXIT
src=$D/ck.safetensors
"$GEN" -q --layers "$layers" -o "$src"
mkdir "$D/sh" && "$GEN" -q --layers "$layers" --shards 4 -o "$D/sh"
shards=("$D"/sh/model-0000?-of-00004.safetensors)

cold=1
drop() {
	sync
	if [ "$cold" = 1 ] && ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
		cold=0
		echo "note: cannot drop the page cache (not root): figures are warm" >&2
	fi
}
now() { date +%s.%N; }
clean() { rm -f "$D"/s.tst* "$D/copy"; }

# run NAME CMD...: time CMD + sync from a dropped cache; the minimum per NAME in best[NAME]
declare -A best cpu
run() {
	local name=$1 t0 t1 w c
	shift
	clean
	drop
	t0=$(now)
	{ TIMEFORMAT='%3U %3S'; time "$@" 2>&3; } 3>&2 2>"$D/cpu"
	sync
	t1=$(now)
	w=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
	c=$(awk '{print $1 + $2}' "$D/cpu")
	if [ -z "${best[$name]:-}" ] || awk -v a="$w" -v b="${best[$name]}" 'BEGIN {exit !(a < b)}'; then
		best[$name]=$w
	fi
	if [ -z "${cpu[$name]:-}" ] || awk -v a="$c" -v b="${cpu[$name]}" 'BEGIN {exit !(a < b)}'; then
		cpu[$name]=$c
	fi
}
echo "import benchmark: $(du -m "$src" | cut -f1) MB BF16 checkpoint ($layers layers), $reps runs each," \
	"$(nproc) cores, $("$TSTORE" --version 2>/dev/null | head -1)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$reps"); do
	run dd dd if="$src" of=/dev/null iflag=direct bs=8M status=none
	run cp cp "$src" "$D/copy"
	run nvfp4 "$TSTORE" import -q --codec nvfp4 "$D/s.tst" "$src"
	run auto "$TSTORE" import -q --codec auto "$D/s.tst" "$src"
	run raw "$TSTORE" import -q --codec raw "$D/s.tst" "$src"
	run one2 "$TSTORE" import -q --codec nvfp4 "$D/s.tst" "${shards[@]:0:2}"
	for m in always auto never; do
		run "conc2$m" "$0" --concurrent "$m" "$D/s.tst" "${shards[@]:0:2}"
	done
	run one4 "$TSTORE" import -q --codec nvfp4 "$D/s.tst" "${shards[@]}"
	for m in always auto never; do
		run "conc4$m" "$0" --concurrent "$m" "$D/s.tst" "${shards[@]}"
	done
done
clean
r() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
f() { printf "%.3f" "$1"; }
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)   page cache $([ "$cold" = 1 ] && echo dropped || echo warm)"
printf "%-34s %8s %8s %8s\n" "figure (min of $reps)" "wall s" "ratio" "cpu s"
printf "%-34s %8s %8s\n" "O_DIRECT read of the source (dd)" "$(f "${best[dd]}")" "1"
printf "%-34s %8s %8s\n" "cp of the source + sync" "$(f "${best[cp]}")" "1"
printf "%-34s %8s %8s %8s   (target <= 1.5 x dd)\n" "import --codec nvfp4" "$(f "${best[nvfp4]}")" "$(r "${best[nvfp4]}" "${best[dd]}")" "${cpu[nvfp4]}"
printf "%-34s %8s %8s %8s   (target <= 2 x dd)\n" "import --codec auto" "$(f "${best[auto]}")" "$(r "${best[auto]}" "${best[dd]}")" "${cpu[auto]}"
printf "%-34s %8s %8s %8s   (target <= 1.5 x cp)\n" "import --codec raw" "$(f "${best[raw]}")" "$(r "${best[raw]}" "${best[cp]}")" "${cpu[raw]}"
for k in 2 4; do
	printf "%-34s %8s %8s %8s\n" "one nvfp4 import of $k shards" "$(f "${best[one$k]}")" "1" "${cpu[one$k]}"
	printf "%-34s %8s %8s %8s   (target <= 1.15 x one)\n" "$k concurrent imports, 1 shard each" \
		"$(f "${best[conc${k}always]}")" "$(r "${best[conc${k}always]}" "${best[one$k]}")" "${cpu[conc${k}always]}"
	for m in auto never; do
		printf "%-34s %8s %8s %8s\n" "  the same, --spool $m" "$(f "${best[conc$k$m]}")" \
			"$(r "${best[conc$k$m]}" "${best[one$k]}")" "${cpu[conc$k$m]}"
	done
done
