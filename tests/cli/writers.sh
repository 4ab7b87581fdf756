#!/usr/bin/env bash
# Several writers of one store: a writing command waits for another process that
# has the store open for writing (here flock(1) holding the store file's lock, as a writer
# does), saying so once with the holder's pid; --no-wait fails at once (exit 1, store
# unchanged); --wait SECONDS bounds the wait. Concurrent imports into one store, and into one
# NEW store (20 rounds of 4), all succeed: one store with every tensor, fsck clean. A waiting
# import encodes and writes meanwhile (into its spool store), in bounded memory, and moves the
# pages in when the holder lets go, or as soon as the store is free, writing the rest directly;
# --spool never waits idle.
. "${srcdir:-.}/tests/cli/lib.sh"
mkdir "$T/ck" && "$GEN" -q --size tiny --shards 4 -o "$T/ck" || fail gen
shards=("$T"/ck/model-0000?-of-00004.safetensors)
[ ${#shards[@]} -eq 4 ] || fail "gen_checkpoint made ${#shards[@]} shards"
all=0
for s in "${shards[@]}"; do
	n=$("$STCHECK" info "$s" | wc -l)
	[ "$n" -gt 0 ] || fail "shard $s has no tensors"
	all=$((all + n))
done
first=$("$STCHECK" info "${shards[0]}" | head -1 | cut -d' ' -f1)

# count_tensors STORE: the number of tensors STORE exports
count_tensors() {
	"$TSTORE" export "$1" "$T/x.safetensors" >/dev/null 2>&1 || fail "export $1"
	"$STCHECK" info "$T/x.safetensors" | wc -l
}

expect 0 "$TSTORE" import -q --codec raw "$T/a.tst" "${shards[0]}"

# hold_store: another process holds the store's writer lock until $T/release exists
hold_store() {
	rm -f "$T/release"
	flock "$T/a.tst" sh -c "while [ ! -e '$T/release' ]; do sleep 0.05; done" &
	holder=$!
	for _ in $(seq 200); do
		flock -n "$T/a.tst" true || return 0
		sleep 0.02
	done
	fail "the holder did not take the lock"
}

# 1. --no-wait: exit 1 at once, nothing removed
hold_store
expect 1 "$TSTORE" rm --no-wait "$T/a.tst" "$first"
err_has "open for writing elsewhere"
expect 1 "$TSTORE" import --no-wait --codec raw "$T/a.tst" "${shards[1]}"
expect 1 "$TSTORE" fsck --repair --no-wait "$T/a.tst"
expect 0 "$TSTORE" fsck "$T/a.tst"   # a check without --repair needs no writer lock
expect 0 "$TSTORE" inspect "$T/a.tst" "$first"

# 2. --wait 0.5: gives up after about half a second
t0=$(date +%s%N)
expect 1 "$TSTORE" rm --wait 0.5 "$T/a.tst" "$first"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge 450 ] || fail "--wait 0.5 gave up after $ms ms"
[ "$ms" -lt 5000 ] || fail "--wait 0.5 took $ms ms"
err_has "waiting for another writer of $T/a.tst (pid $holder)"
expect 0 "$TSTORE" inspect "$T/a.tst" "$first"
expect 2 "$TSTORE" rm --wait soon "$T/a.tst" "$first"

# 3. the default waits, and proceeds when the holder lets go
"$TSTORE" import --codec raw "$T/a.tst" "${shards[1]}" >"$T/imp.out" 2>"$T/imp.err" &
imp=$!
sleep 0.3
kill -0 "$imp" 2>/dev/null || { cat "$T/imp.err" >&2; fail "import did not wait"; }
touch "$T/release"
wait "$holder"
wait "$imp" || { cat "$T/imp.err" >&2; fail "the waiting import failed"; }
[ "$(grep -c "waiting for another writer" "$T/imp.err")" -eq 1 ] || fail "said it waits not once"
grep -qF "(pid $holder)" "$T/imp.err" || { cat "$T/imp.err" >&2; fail "no holder pid"; }

# 4. concurrent imports into an existing store: & + wait
"$TSTORE" import -q --codec raw "$T/a.tst" "${shards[2]}" &
p1=$!
"$TSTORE" import -q --codec raw "$T/a.tst" "${shards[3]}" &
p2=$!
wait "$p1" || fail "concurrent import 1"
wait "$p2" || fail "concurrent import 2"
[ "$(count_tensors "$T/a.tst")" -eq "$all" ] || fail "concurrent imports lost tensors"
expect 0 "$TSTORE" fsck "$T/a.tst"

# 4b. four concurrent nvfp4 imports into one store hold what one import of all four holds:
#     every tensor with the same decoded values (tsdigest), fsck clean
DIGEST="$B/tests/robust/tsdigest"
if [ -x "$DIGEST" ]; then
	expect 0 "$TSTORE" import -q --codec nvfp4 "$T/one.tst" "${shards[@]}"
	pids=()
	for k in 0 1 2 3; do
		"$TSTORE" import -q --codec nvfp4 "$T/four.tst" "${shards[$k]}" 2>"$T/four$k.err" &
		pids+=($!)
	done
	for k in 0 1 2 3; do
		wait "${pids[$k]}" || { cat "$T/four$k.err" >&2; fail "concurrent nvfp4 import $k"; }
	done
	"$DIGEST" "$T/one.tst" >"$T/one.dig" || fail "tsdigest one"
	"$DIGEST" "$T/four.tst" >"$T/four.dig" || fail "tsdigest four"
	diff -u "$T/one.dig" "$T/four.dig" >&2 || fail "four concurrent imports differ from one"
	[ "$(wc -l <"$T/four.dig")" -eq "$all" ] || fail "four concurrent imports lost tensors"
	expect 0 "$TSTORE" fsck "$T/four.tst"
	out_has "clean"
fi

# 6. a waiting import encodes and writes its pages meanwhile (by default): its spool store (STORE.spool-PID)
#    holds every tensor while the holder still holds the store; then the pages move in. The
#    store holds what one import of both sources holds (tsdigest), fsck clean, no spool left,
#    and the waiting import's peak anonymous memory stays well below its source's size (the
#    spool store's pages that it maps to copy them are file pages: cache the kernel reclaims).
if [ -x "$DIGEST" ]; then
	"$GEN" -q --layers 1 --hidden 1024 --intermediate 8192 --vocab 256 --kv-dim 256 --seed 11 \
		-o "$T/wide.safetensors" || fail gen
	src_kb=$(($(stat -c %s "$T/wide.safetensors") / 1024))
	nwide=$("$STCHECK" info "$T/wide.safetensors" | wc -l)
	# shards[2] holds layer 1 only: no name in common with wide.safetensors
	expect 0 "$TSTORE" import -q --codec nvfp4 "$T/both.tst" "${shards[2]}" "$T/wide.safetensors"
	expect 0 "$TSTORE" import -q --codec nvfp4 "$T/w.tst" "${shards[2]}"
	rm -f "$T/release"
	flock "$T/w.tst" sh -c "while [ ! -e '$T/release' ]; do sleep 0.05; done" &
	holder=$!
	for _ in $(seq 200); do flock -n "$T/w.tst" true || break; sleep 0.02; done
	# no --spool: the default spools (always)
	"$TSTORE" import --read-buffer 4MiB --codec nvfp4 "$T/w.tst" \
		"$T/wide.safetensors" >"$T/w.out" 2>"$T/w.err" &
	imp=$!
	peak=0
	spooled=0
	for _ in $(seq 1200); do
		h=$(awk '/^RssAnon/ {print $2}' "/proc/$imp/status" 2>/dev/null)
		[ -n "$h" ] && [ "$h" -gt "$peak" ] && peak=$h
		sp="$T/w.tst.spool-$imp"
		if [ -e "$sp" ] && [ "$("$DIGEST" "$sp" 2>/dev/null | wc -l)" -eq "$nwide" ]; then
			spooled=1
			break
		fi
		kill -0 "$imp" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$imp" 2>/dev/null || { cat "$T/w.err" >&2; fail "the waiting import ended"; }
	[ "$spooled" = 1 ] || { touch "$T/release"; fail "nothing spooled while waiting"; }
	[ "$("$DIGEST" "$T/w.tst" | wc -l)" -eq "$("$STCHECK" info "${shards[2]}" | wc -l)" ] ||
		fail "the store changed while its holder held it"
	touch "$T/release"
	wait "$holder"
	while kill -0 "$imp" 2>/dev/null; do
		h=$(awk '/^RssAnon/ {print $2}' "/proc/$imp/status" 2>/dev/null)
		[ -n "$h" ] && [ "$h" -gt "$peak" ] && peak=$h
		sleep 0.01
	done
	wait "$imp" || { cat "$T/w.err" >&2; fail "the spooling import failed"; }
	grep -q "waiting for another writer" "$T/w.err" || fail "did not say it waits"
	"$DIGEST" "$T/both.tst" >"$T/both.dig" || fail "tsdigest both"
	"$DIGEST" "$T/w.tst" >"$T/w.dig" || fail "tsdigest w"
	diff -u "$T/both.dig" "$T/w.dig" >&2 || fail "spooled import differs from one import"
	expect 0 "$TSTORE" fsck "$T/w.tst"
	out_has "clean"
	ls -a "$T" | grep -q spool && fail "spool store left behind"
	echo "spooling import: peak anonymous ${peak} kB for a source of ${src_kb} kB"
	sanitized=0
	grep -q '^SANITIZER_CFLAGS = .*sanitize' "$B/Makefile" 2>/dev/null && sanitized=1
	[ "$sanitized" = 1 ] || [ "$peak" -lt $((src_kb / 2)) ] ||
		fail "spooling import: peak anonymous memory $peak kB, the source is $src_kb kB"
fi

# 7. the store freed while an import spools: the import moves in what it spooled and writes the
#    rest directly ("the rest written directly"), the store as one import of both sources
#    (tsdigest), fsck clean, no spool left. The holder lets go as soon as the spool exists; the
#    import is stopped meanwhile (SIGSTOP) so that it cannot have spooled every tensor yet.
if [ -x "$DIGEST" ]; then
	mkdir "$T/many" && "$GEN" -q --layers 8 --hidden 512 --intermediate 2048 --vocab 256 \
		--kv-dim 128 --seed 12 --shards 2 -o "$T/many" || fail gen
	m1="$T/many/model-00001-of-00002.safetensors" m2="$T/many/model-00002-of-00002.safetensors"
	nmany=$("$STCHECK" info "$m2" | wc -l)
	expect 0 "$TSTORE" import -q --codec nvfp4 "$T/both7.tst" "$m1" "$m2"
	expect 0 "$TSTORE" import -q --codec nvfp4 "$T/m.tst" "$m1"
	rm -f "$T/release"
	flock "$T/m.tst" sh -c "while [ ! -e '$T/release' ]; do sleep 0.01; done" &
	holder=$!
	for _ in $(seq 200); do flock -n "$T/m.tst" true || break; sleep 0.02; done
	"$TSTORE" import --spool always --jobs 1 --codec nvfp4 "$T/m.tst" "$m2" \
		>"$T/m.out" 2>"$T/m.err" &
	imp=$!
	for _ in $(seq 1000); do
		[ -e "$T/m.tst.spool-$imp" ] && break
		kill -0 "$imp" 2>/dev/null || break
		sleep 0.005
	done
	kill -STOP "$imp" 2>/dev/null
	[ -e "$T/m.tst.spool-$imp" ] || { kill -CONT "$imp"; cat "$T/m.err" >&2; fail "no spool"; }
	touch "$T/release"
	wait "$holder"
	kill -CONT "$imp"
	wait "$imp" || { cat "$T/m.err" >&2; fail "the spooling import failed"; }
	grep -q "m.tst is free: .* spooled tensors\? moved in, the rest written directly" "$T/m.err" ||
		{ cat "$T/m.err" >&2; fail "did not switch to the store while spooling"; }
	"$DIGEST" "$T/both7.tst" >"$T/both7.dig" || fail "tsdigest both7"
	"$DIGEST" "$T/m.tst" >"$T/m.dig" || fail "tsdigest m"
	diff -u "$T/both7.dig" "$T/m.dig" >&2 || fail "switched import differs from one import"
	expect 0 "$TSTORE" fsck "$T/m.tst"
	out_has "clean"
	ls -a "$T" | grep -q spool && fail "spool store left behind"

	# --spool never: no spool store while waiting; the import proceeds when the holder lets go
	rm -f "$T/release"
	expect 0 "$TSTORE" import -q --codec nvfp4 "$T/n.tst" "$m1"
	flock "$T/n.tst" sh -c "while [ ! -e '$T/release' ]; do sleep 0.01; done" &
	holder=$!
	for _ in $(seq 200); do flock -n "$T/n.tst" true || break; sleep 0.02; done
	"$TSTORE" import --spool never --codec nvfp4 "$T/n.tst" "$m2" \
		>"$T/n.out" 2>"$T/n.err" &
	imp=$!
	for _ in $(seq 40); do
		grep -qs "waiting for another writer" "$T/n.err" && break
		sleep 0.05
	done
	sleep 0.3
	kill -0 "$imp" 2>/dev/null || { cat "$T/n.err" >&2; fail "--spool never did not wait"; }
	ls -a "$T" | grep -q "n.tst.spool" && fail "--spool never made a spool store"
	touch "$T/release"
	wait "$holder"
	wait "$imp" || { cat "$T/n.err" >&2; fail "--spool never: the import failed"; }
	grep -q "is free" "$T/n.err" && fail "--spool never: spooled"
	"$DIGEST" "$T/n.tst" >"$T/n.dig" || fail "tsdigest n"
	diff -u "$T/both7.dig" "$T/n.dig" >&2 || fail "--spool never: differs from one import"
	[ "$(wc -l <"$T/n.dig")" -gt "$nmany" ] || fail "--spool never: tensors lost"
	expect 0 "$TSTORE" fsck "$T/n.tst"
	out_has "clean"
fi
expect 2 "$TSTORE" import --spool sometimes "$T/a.tst" "${shards[0]}"
err_has "--spool must be auto, always or never"

# 5. creation races: 4 imports create the same new store at once, 20 times
for round in $(seq 20); do
	s="$T/new$round.tst"
	pids=()
	for k in 0 1 2 3; do
		"$TSTORE" import -q --codec raw "$s" "${shards[$k]}" 2>"$T/race$k.err" &
		pids+=($!)
	done
	for k in 0 1 2 3; do
		wait "${pids[$k]}" || { cat "$T/race$k.err" >&2; fail "round $round: import $k failed"; }
	done
	[ "$(count_tensors "$s")" -eq "$all" ] || fail "round $round: tensors lost"
	expect 0 "$TSTORE" fsck "$s"
	out_has "clean"
	rm -f "$s" "$s-lock"
done
ls -a "$T" | grep -q creating && fail "temporary files left behind"
exit 0
