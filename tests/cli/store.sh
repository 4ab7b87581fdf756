#!/usr/bin/env bash
# fsck on clean and damaged stores (exit 0 / 1 / 2, --json, --repair), rm, compact, and the
# atomicity rules of import: existing names, --replace, --skip-existing, a forced codec that
# cannot encode a tensor (nothing imported), Ctrl-C.
. "${srcdir:-.}/tests/cli/lib.sh"
make_tiny
S="$T/tiny.safetensors"
expect 0 "$TSTORE" import --codec raw "$T/a.tst" "$S"
expect 0 "$TSTORE" fsck "$T/a.tst"
out_has "clean"
expect 0 "$TSTORE" fsck --json "$T/a.tst"
cp "$T/out" "$T/f.json"
expect 0 "$STCHECK" json "$T/f.json"
grep -q '"clean": true' "$T/f.json" || fail "fsck --json clean"
expect 2 "$TSTORE" fsck "$T/nothing.tst"
echo "not a store" >"$T/junk.tst"
expect 2 "$TSTORE" fsck "$T/junk.tst"
err_has "tstore: fsck: "

# rm: all names checked first
expect 1 "$TSTORE" rm "$T/a.tst" lm_head.weight no.such
err_has "nothing removed"
expect 0 "$TSTORE" inspect "$T/a.tst" lm_head.weight
expect 0 "$TSTORE" rm "$T/a.tst" lm_head.weight model.norm.weight
out_has "2 tensors removed"
expect 1 "$TSTORE" inspect "$T/a.tst" lm_head.weight
expect 0 "$TSTORE" fsck "$T/a.tst"
# compact: a smaller or equal copy with the same tensors
expect 0 "$TSTORE" compact "$T/a.tst" "$T/c.tst"
expect 1 "$TSTORE" compact "$T/a.tst" "$T/c.tst"
err_has "already exists"
expect 0 "$TSTORE" fsck "$T/c.tst"
expect 0 "$TSTORE" export "$T/c.tst" "$T/c.safetensors"
expect 0 "$STCHECK" compare "$T/c.safetensors" "$S" --exact --subset
[ "$(stat -c %s "$T/c.tst")" -le "$(stat -c %s "$T/a.tst")" ] || fail "compact grew the store"

# existing names
expect 1 "$TSTORE" import "$T/a.tst" "$S"
err_has "already exists"
expect 0 "$TSTORE" import --codec raw --skip-existing "$T/a.tst" "$S"
out_has "skipped (already in the store): 22"
expect 0 "$TSTORE" export "$T/a.tst" "$T/a.safetensors"
expect 0 "$STCHECK" compare "$S" "$T/a.safetensors" --exact
expect 0 "$TSTORE" import --replace --codec int8 "$T/a.tst" "$S"
expect 0 "$TSTORE" inspect "$T/a.tst" lm_head.weight
out_has "int8"
expect 2 "$TSTORE" import --replace --skip-existing "$T/a.tst" "$S"

# a forced lossy codec on a tensor with NaN/Inf: an error naming it, nothing imported
"$GEN" -q --size tiny --nonfinite model.layers.1.mlp.up_proj.weight -o "$T/nan.safetensors" || fail gen
expect 1 "$TSTORE" import --codec nvfp4 "$T/n.tst" "$T/nan.safetensors"
err_has "model.layers.1.mlp.up_proj.weight"
err_has "NaN or Inf"
[ ! -e "$T/n.tst" ] || fail "store created"
# auto stores it losslessly, NaN and Inf intact
expect 0 "$TSTORE" import "$T/n.tst" "$T/nan.safetensors"
out_has "1 with NaN/Inf"
expect 0 "$TSTORE" export "$T/n.tst" "$T/n.safetensors" model.layers.1.mlp.up_proj.weight
expect 0 "$STCHECK" compare "$T/n.safetensors" "$T/nan.safetensors" --exact --subset

# damage: flip a bit inside a page of a raw tensor; fsck finds it (exit 1), reads fail cleanly
expect 0 "$TSTORE" import --codec raw "$T/d.tst" "$S"
expect 0 "$STCHECK" flip "$T/d.tst" "$S" model.layers.0.mlp.up_proj.weight
expect 1 "$TSTORE" fsck "$T/d.tst"
out_has "model.layers.0.mlp.up_proj.weight"
expect 1 "$TSTORE" fsck --json "$T/d.tst"
grep -q '"clean": false' "$T/out" || fail "fsck --json damaged"
expect 1 "$TSTORE" slice -o "$T/x.npy" "$T/d.tst" model.layers.0.mlp.up_proj.weight
err_has "tstore: slice: "
expect 1 "$TSTORE" export "$T/d.tst" "$T/d.safetensors"
[ ! -e "$T/d.safetensors" ] || fail "export of a damaged tensor left a file"
expect 1 "$TSTORE" fsck --repair "$T/d.tst"   # a checksum failure is not repairable
expect 0 "$TSTORE" rm "$T/d.tst" model.layers.0.mlp.up_proj.weight
expect 0 "$TSTORE" fsck "$T/d.tst"

# Ctrl-C: nothing of the command is published; a store the command created is removed
# (tests/cli/atomic.sh checks an existing store under --replace); finished: a complete import.
"$GEN" -q --size small -o "$T/small.safetensors" || fail gen
"$TSTORE" import --codec nvfp4 --recipe best --jobs 1 "$T/i.tst" "$T/small.safetensors" >"$T/out" 2>"$T/err" &
pid=$!
sleep 0.3
kill -INT $pid 2>/dev/null
wait $pid
st=$?
[ $st -eq 130 ] || [ $st -eq 0 ] || { cat "$T/err"; fail "interrupted import exited $st"; }
if [ $st -eq 130 ]; then
	grep -q "interrupted: nothing imported" "$T/err" || fail "no interruption message"
	[ ! -e "$T/i.tst" ] || fail "the store created by an interrupted import is left"
else
	expect 0 "$TSTORE" fsck "$T/i.tst"
	expect 0 "$TSTORE" import --codec nvfp4 --recipe best "$T/j.tst" "$T/small.safetensors"
	expect 0 "$TSTORE" export "$T/i.tst" "$T/i.safetensors"
	expect 0 "$TSTORE" export "$T/j.tst" "$T/j.safetensors"
	expect 0 "$STCHECK" compare "$T/i.safetensors" "$T/j.safetensors" --exact
fi

# SIGKILL mid-import: no tensor is visible (one group); fsck notes the unfinished pages,
# --repair removes them, and then it is clean.
"$TSTORE" import -q --codec nvfp4 --recipe best --jobs 1 "$T/k.tst" "$T/small.safetensors" >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
if [ -e "$T/k.tst" ]; then
	"$TSTORE" fsck "$T/k.tst" >"$T/out" 2>"$T/err"
	st=$?
	[ $st -eq 0 ] || [ $st -eq 1 ] || { cat "$T/err"; fail "fsck after SIGKILL exited $st"; }
	if [ $st -eq 1 ]; then
		grep -q "unfinished\|orphan" "$T/out" || fail "fsck after SIGKILL: $(cat "$T/out")"
	fi
	expect 0 "$TSTORE" fsck --repair "$T/k.tst"
	expect 0 "$TSTORE" fsck "$T/k.tst"
	out_has "clean"
fi
echo "store: ok"
