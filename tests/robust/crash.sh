#!/usr/bin/env bash
# The crash suite: SIGKILL `tstore import`, `tstore import --replace` and `tstore rm` at random
# moments. After every kill: the store opens, `tstore fsck` is clean, every tensor is absent or
# bit-identical to what a completed command gives (tsdigest: a digest of every tensor read back
# whole), an import shows none or all of its tensors (one write group), and rerunning the
# command completes with the complete result.
#
#   crash.sh [-k IMPORT_KILLS] [-r REPLACE_KILLS] [-m RM_KILLS] [-s tiny|small|demo] [-S SEED]
# make check runs a short version (small data, a few kill points); make check-crash the long one
# (a few hundred MB, >= 50 kill points). Prints the kill points survived per operation.
set -u
B=${TS_BUILDDIR:-$(pwd)}
TSTORE=$B/tools/tstore
GEN=$B/tools/gen_checkpoint
DIGEST=$B/tests/robust/tsdigest
for p in "$TSTORE" "$GEN" "$DIGEST"; do
	[ -x "$p" ] || { echo "SKIP: $p is not built"; exit 77; }
done
kills=3 rkills=1 mkills=1 size=small seed=${CRASH_SEED:-$(( $(date +%s) % 100000 ))}
while getopts k:r:m:s:S: o; do
	case $o in
	k) kills=$OPTARG ;; r) rkills=$OPTARG ;; m) mkills=$OPTARG ;; s) size=$OPTARG ;;
	S) seed=$OPTARG ;; *) exit 2 ;;
	esac
done
RANDOM=$seed
T=$(mktemp -d "${TMPDIR:-/tmp}/tstore-crash.XXXXXX")
trap 'rm -rf "$T"' EXIT
export TSTORE_CACHE_BYTES=${TSTORE_CACHE_BYTES:-16777216}
fail() { echo "FAIL: $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
echo "crash: seed $seed (repeat with -S $seed), size $size"

"$GEN" -q --size "$size" --seed 1 -o "$T/a.safetensors" || fail "gen_checkpoint a"
"$GEN" -q --size "$size" --seed 2 -o "$T/b.safetensors" || fail "gen_checkpoint b"

# Reference stores: the completed commands' results.
t0=$(now_ms)
"$TSTORE" import -q "$T/refa.tst" "$T/a.safetensors" || fail "reference import a"
tref=$(( $(now_ms) - t0 ))
"$TSTORE" import -q "$T/refb.tst" "$T/b.safetensors" || fail "reference import b"
"$DIGEST" "$T/refa.tst" >"$T/a.dig" || fail "digest a"
"$DIGEST" "$T/refb.tst" >"$T/b.dig" || fail "digest b"
cat "$T/a.dig" "$T/b.dig" >"$T/ab.dig"
ntensors=$(wc -l <"$T/a.dig")
echo "crash: $ntensors tensors, $(du -m "$T/a.safetensors" | cut -f1) MB source, import takes ${tref} ms"

# run_and_kill ATTEMPT KILLS MAXMS CMD...: start CMD, SIGKILL it after a random delay in stratum
# ATTEMPT mod KILLS of [0, MAXMS] ms (stratified: the kills of a run cover the command's whole
# measured duration evenly instead of clustering). Returns 0 if it was killed while running, 1
# if it had already finished (then not a kill point).
run_and_kill() {
	local a=$1 k=$(( ($1 - 1) % $2 )) n=$2 max=$3 ms pid st
	shift 3
	ms=$(( (k * (max + 1) + (RANDOM * 32768 + RANDOM) % (max + 1)) / n ))
	# every 5th attempt aims at the end of the run, where an import publishes its write group
	# (one transaction) and rm commits its last deletions
	[ $((a % 5)) -eq 0 ] && ms=$(( max * 85 / 100 + (RANDOM * 32768 + RANDOM) % (max * 20 / 100 + 1) ))
	echo "$ms" >"$T/kill_ms"
	"$@" >"$T/cmd.out" 2>&1 &
	pid=$!
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	st=$?
	[ "$st" -eq 137 ] && return 0
	[ "$st" -eq 0 ] || { cat "$T/cmd.out"; fail "'$*' failed with status $st before the kill"; }
	return 1
}

# shrink: a command finished before its kill at $(cat kill_ms) ms, so it takes less than that:
# kill the next ones within 1.1 times that.
shrink() {
	local ms
	ms=$(cat "$T/kill_ms")
	[ $((ms * 11 / 10)) -lt "$span" ] && span=$((ms * 11 / 10))
	return 0
}

# check_after STORE ALLOWED_DIGESTS WHAT: the state after a kill.
check_after() {
	"$TSTORE" fsck "$1" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out" >&2; fail "$3: fsck not clean after the kill"; }
	"$DIGEST" "$1" >"$T/s.dig" 2>"$T/s.err" || { cat "$T/s.err" >&2; fail "$3: a tensor does not read after the kill"; }
	if grep -Fxv -f "$2" "$T/s.dig" >"$T/bad.dig"; then
		cat "$T/bad.dig" >&2
		fail "$3: tensors differ from every completed result"
	fi
	wc -l <"$T/s.dig"
}

survived_import=0 survived_replace=0 survived_rm=0 finished=0 import_all=0 replace_all=0
span=$((tref * 11 / 10))
# -- import ---------------------------------------------------------------------------------
i=0
while [ "$survived_import" -lt "$kills" ]; do
	i=$((i + 1))
	[ "$i" -le $((kills * 3 + 10)) ] || fail "import finished before the kill too often"
	rm -f "$T/s.tst" "$T/s.tst-lock"
	if ! run_and_kill "$i" "$kills" "$span" "$TSTORE" import -q "$T/s.tst" "$T/a.safetensors"; then
		finished=$((finished + 1))
		shrink # it took less than the measured duration (a loaded machine): aim earlier
		continue
	fi
	if [ -e "$T/s.tst" ]; then
		n=$(check_after "$T/s.tst" "$T/a.dig" "import kill $i") || exit 1
		# one write group: none or all of the command's tensors
		[ "$n" -eq 0 ] || [ "$n" -eq "$ntensors" ] ||
			fail "import kill $i: $n of $ntensors tensors visible (the import is not atomic)"
		[ "$n" -eq 0 ] || [ "$n" -eq "$ntensors" ] ||
			fail "import kill $i: $n of $ntensors tensors visible (one group: none or all)"
		"$TSTORE" import -q --skip-existing "$T/s.tst" "$T/a.safetensors" >"$T/cmd.out" 2>&1 ||
			{ cat "$T/cmd.out"; fail "import kill $i: the rerun failed"; }
	else
		n=0 # killed before the store was created
		"$TSTORE" import -q "$T/s.tst" "$T/a.safetensors" >"$T/cmd.out" 2>&1 ||
			{ cat "$T/cmd.out"; fail "import kill $i: the rerun failed"; }
	fi
	"$DIGEST" "$T/s.tst" >"$T/s.dig" || fail "import kill $i: rerun result does not read"
	cmp -s "$T/s.dig" "$T/a.dig" || fail "import kill $i: rerun result differs from a clean import"
	"$TSTORE" fsck -q "$T/s.tst" >/dev/null 2>&1 || fail "import kill $i: fsck after the rerun"
	survived_import=$((survived_import + 1))
	[ "$n" -eq "$ntensors" ] && import_all=$((import_all + 1))
	echo "  import kill $survived_import (at $(cat "$T/kill_ms")/$tref ms): $n of $ntensors tensors committed; rerun completes"
done

# -- replace (import --replace of another checkpoint with the same names) ------------------
cp "$T/refa.tst" "$T/s.tst"
rm -f "$T/s.tst-lock"
t0=$(now_ms)
"$TSTORE" import -q --replace "$T/s.tst" "$T/b.safetensors" >/dev/null 2>&1 || fail "reference replace"
trep=$(( $(now_ms) - t0 ))
echo "crash: import --replace takes ${trep} ms"
span=$((trep * 11 / 10))
i=0
while [ "$survived_replace" -lt "$rkills" ]; do
	i=$((i + 1))
	[ "$i" -le $((rkills * 3 + 10)) ] || fail "replace finished before the kill too often"
	rm -f "$T/s.tst" "$T/s.tst-lock"
	cp "$T/refa.tst" "$T/s.tst"
	if ! run_and_kill "$i" "$rkills" "$span" "$TSTORE" import -q --replace "$T/s.tst" "$T/b.safetensors"; then
		finished=$((finished + 1))
		shrink
		continue
	fi
	n=$(check_after "$T/s.tst" "$T/ab.dig" "replace kill $i") || exit 1
	[ "$n" -eq "$ntensors" ] || fail "replace kill $i: $n of $ntensors tensors left"
	nb=$(grep -Fxc -f "$T/b.dig" "$T/s.dig")
	[ "$nb" -eq 0 ] || [ "$nb" -eq "$ntensors" ] ||
		fail "replace kill $i: $nb of $ntensors tensors replaced (the replace is not atomic)"
	# import publishes its tensors as one group: the old set or the new one, never a mix
	nbonly=$(grep -Fxv -f "$T/a.dig" "$T/b.dig" | grep -Fxc -f - "$T/s.dig")
	[ "$nbonly" -eq 0 ] || [ "$nbonly" -eq "$(grep -Fxvc -f "$T/a.dig" "$T/b.dig")" ] ||
		fail "replace kill $i: a mix of old and new tensors ($nbonly replaced)"
	"$TSTORE" import -q --replace "$T/s.tst" "$T/b.safetensors" >"$T/cmd.out" 2>&1 ||
		{ cat "$T/cmd.out"; fail "replace kill $i: the rerun failed"; }
	"$DIGEST" "$T/s.tst" >"$T/s.dig" || fail "replace kill $i: rerun result does not read"
	cmp -s "$T/s.dig" "$T/b.dig" || fail "replace kill $i: rerun result differs"
	survived_replace=$((survived_replace + 1))
	[ "$nb" -eq "$ntensors" ] && replace_all=$((replace_all + 1))
	echo "  replace kill $survived_replace (at $(cat "$T/kill_ms")/$trep ms): $nb of $ntensors tensors replaced; rerun completes"
done

# -- rm of every tensor --------------------------------------------------------------------
names=$(cut -f1 "$T/a.dig")
t0=$(now_ms)
cp "$T/refa.tst" "$T/s.tst"
rm -f "$T/s.tst-lock"
# shellcheck disable=SC2086
"$TSTORE" rm "$T/s.tst" $names >/dev/null 2>&1 || fail "reference rm"
trm=$(( $(now_ms) - t0 + 20 ))
span=$trm
i=0
while [ "$survived_rm" -lt "$mkills" ]; do
	i=$((i + 1))
	[ "$i" -le $((mkills * 5 + 10)) ] || { echo "  rm finished before the kill $((i - 1)) times (takes ${trm} ms)"; break; }
	rm -f "$T/s.tst" "$T/s.tst-lock"
	cp "$T/refa.tst" "$T/s.tst"
	# shellcheck disable=SC2086
	if ! run_and_kill "$i" "$mkills" "$span" "$TSTORE" rm "$T/s.tst" $names; then
		finished=$((finished + 1))
		shrink
		continue
	fi
	n=$(check_after "$T/s.tst" "$T/a.dig" "rm kill $i") || exit 1
	left=$(cut -f1 "$T/s.dig")
	if [ -n "$left" ]; then
		# shellcheck disable=SC2086
		"$TSTORE" rm "$T/s.tst" $left >"$T/cmd.out" 2>&1 || { cat "$T/cmd.out"; fail "rm kill $i: the rerun failed"; }
	fi
	"$DIGEST" "$T/s.tst" >"$T/s.dig" || fail "rm kill $i: store does not read after the rerun"
	[ ! -s "$T/s.dig" ] || fail "rm kill $i: tensors left after the rerun"
	"$TSTORE" fsck -q "$T/s.tst" >/dev/null 2>&1 || fail "rm kill $i: fsck after the rerun"
	survived_rm=$((survived_rm + 1))
	echo "  rm kill $survived_rm (at $(cat "$T/kill_ms")/$trm ms): $n of $ntensors tensors left; rerun completes"
done
echo "crash: kill points survived: import $survived_import ($import_all with every tensor published), replace $survived_replace ($replace_all with every tensor replaced), rm $survived_rm (commands that finished before their kill: $finished)"
