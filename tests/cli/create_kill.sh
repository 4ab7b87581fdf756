#!/usr/bin/env bash
# Store creation that a kill cannot break (engine/create.c): 20 imports that create a store are
# killed (SIGKILL) 0-100 ms after they start; after each, an import into the same path must
# succeed (--replace: the killed one may have finished) and give a clean store, and no
# temporary file of a creation may be left behind.
# An empty or blank file at the path (what a creation killed by older versions left, or LMDB's
# open of a store removed meanwhile) is replaced; a damaged file is refused and left exactly as
# it is.
. "${srcdir:-.}/tests/cli/lib.sh"
command -v mdb_load >/dev/null && command -v flock >/dev/null ||
	{ echo "SKIP: lmdb-utils (mdb_load) or util-linux (flock) not installed"; exit 77; }
"$GEN" -q --size small -o "$T/src.safetensors" || fail gen
mkdir "$T/d"
seed=${TSTORE_TEST_KILL_SEED:-$$}
echo "create_kill: seed $seed"
RANDOM=$seed
for i in $(seq 20); do
	rm -f "$T/d/s.tst" "$T/d/s.tst-lock"
	ms=$((RANDOM % 101))
	"$TSTORE" import -q "$T/d/s.tst" "$T/src.safetensors" >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '0.%03d' "$ms")"
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	state=absent
	[ -e "$T/d/s.tst" ] && state="$(stat -c %s "$T/d/s.tst") bytes"
	# the path holds no store or a whole one: the next import into it succeeds
	"$TSTORE" import -q --replace --codec raw "$T/d/s.tst" "$T/src.safetensors" >"$T/out" 2>"$T/err" ||
		{ cat "$T/err"; fail "kill $i at $ms ms (left: $state): the next import failed"; }
	left=$(ls -A "$T/d" | grep -v '^s\.tst\(-lock\)\?$')
	[ -z "$left" ] || fail "kill $i at $ms ms: left behind: $left"
done
expect 0 "$TSTORE" fsck "$T/d/s.tst"
out_has clean
expect 0 "$TSTORE" export "$T/d/s.tst" "$T/back.safetensors"
expect 0 "$STCHECK" compare "$T/src.safetensors" "$T/back.safetensors" --exact

# an empty file at the path is replaced by a new store
rm -f "$T/d/s.tst" "$T/d/s.tst-lock"
: >"$T/d/s.tst"
expect 0 "$TSTORE" import -q "$T/d/s.tst" "$T/src.safetensors"
expect 0 "$TSTORE" fsck "$T/d/s.tst"
out_has clean
# so is a blank LMDB file (its two initial meta pages alone: what a writer's open leaves when
# the store is removed meanwhile), which read-only commands report as no store
rm -f "$T/d/s.tst" "$T/d/s.tst-lock"
mdb_load -n -f /dev/null "$T/d/s.tst" || fail "mdb_load"
rm -f "$T/d/s.tst-lock"
[ "$(stat -c %s "$T/d/s.tst")" = 8192 ] || fail "mdb_load made no blank file"
expect 2 "$TSTORE" inspect "$T/d/s.tst"
err_has "no store at"
expect 0 "$TSTORE" import -q "$T/d/s.tst" "$T/src.safetensors"
expect 0 "$TSTORE" fsck "$T/d/s.tst"
out_has clean
# an empty or blank file held by another process's writer (here flock(1) holds it): --no-wait
# fails at once and leaves the file where and as it was (an import once removed it, taking the
# failed creation for its own)
for kind in empty blank; do
	rm -f "$T/d/h.tst" "$T/d/h.tst-lock"
	if [ $kind = empty ]; then : >"$T/d/h.tst"; else mdb_load -n -f /dev/null "$T/d/h.tst"; fi
	ino=$(stat -c %i "$T/d/h.tst")
	cp "$T/d/h.tst" "$T/held"
	flock "$T/d/h.tst" sleep 30 &
	holder=$!
	for _ in $(seq 100); do flock -n "$T/d/h.tst" true || break; sleep 0.05; done
	expect 1 "$TSTORE" import -q --no-wait "$T/d/h.tst" "$T/src.safetensors"
	kill $holder 2>/dev/null; wait $holder 2>/dev/null
	[ "$(stat -c %i "$T/d/h.tst" 2>/dev/null)" = "$ino" ] || fail "a held $kind file was removed or replaced"
	cmp -s "$T/d/h.tst" "$T/held" || fail "a held $kind file was changed"
done
rm -f "$T/d/h.tst" "$T/d/h.tst-lock"
# a damaged store (its first bytes overwritten) is refused and never re-initialised
printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' | dd of="$T/d/s.tst" bs=1 seek=0 conv=notrunc 2>/dev/null
cp "$T/d/s.tst" "$T/damaged"
expect 2 "$TSTORE" import -q "$T/d/s.tst" "$T/src.safetensors"
err_has "is not a tstore store"
cmp -s "$T/d/s.tst" "$T/damaged" || fail "a damaged store was changed"
# a half-written file (fewer bytes than LMDB's two meta pages) likewise
head -c 5000 "$T/damaged" >"$T/d/h.tst"
expect 2 "$TSTORE" import -q "$T/d/h.tst" "$T/src.safetensors"
err_has "is not a tstore store"
[ "$(stat -c %s "$T/d/h.tst")" = 5000 ] || fail "a half-written file was changed"
echo "create_kill: ok"
