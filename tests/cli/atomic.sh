#!/usr/bin/env bash
# import is atomic across the whole command, --replace included: a full disk midway (via
# TSTORE_MAP_MAX), a bad source, a tensor the forced codec cannot encode, Ctrl-C — each leaves
# the store exactly as before the command (same tensors, same bytes on export: replaced tensors
# get their old contents back, added ones are gone), fsck clean; and the next import succeeds.
. "${srcdir:-.}/tests/cli/lib.sh"
"$GEN" -q --size small -o "$T/old.safetensors" || fail gen
"$GEN" -q --size small --seed 2 --extras -o "$T/new.safetensors" || fail gen
expect 0 "$TSTORE" import -q --codec raw "$T/a.tst" "$T/old.safetensors"
expect 0 "$TSTORE" export "$T/a.tst" "$T/before.safetensors"
"$STCHECK" info "$T/before.safetensors" >"$T/names.before"

# as_before: the store holds exactly what it held before the command, and fsck is clean
as_before() {
	expect 0 "$TSTORE" export "$T/a.tst" "$T/now.safetensors"
	expect 0 "$STCHECK" compare "$T/before.safetensors" "$T/now.safetensors" --exact
	"$STCHECK" info "$T/now.safetensors" >"$T/names.now"
	cmp -s "$T/names.before" "$T/names.now" || fail "$1: the tensor list changed"
	expect 0 "$TSTORE" fsck "$T/a.tst"
	out_has "clean"
}

# 1. a full disk midway through --replace: the store may grow by half the source only
size=$(stat -c %s "$T/a.tst")
src=$(stat -c %s "$T/new.safetensors")
TSTORE_MAP_MAX=$((size + src / 2)) expect 1 "$TSTORE" import -q --replace --codec raw \
	"$T/a.tst" "$T/new.safetensors"
err_has "no space"
err_has "nothing imported"
# it failed midway: on a tensor after the first, so that some were replaced (staged) first
first=$(head -1 "$T/names.before" | cut -d' ' -f1)
grep -q "cannot import tensor '$first'" "$T/err" && fail "the disk filled at the first tensor"
as_before "full disk"
expect 1 "$TSTORE" inspect "$T/a.tst" model.position_ids  # an added tensor is gone
# the same with auto and the default policy
TSTORE_MAP_MAX=$((size + src / 4)) expect 1 "$TSTORE" import -q --replace "$T/a.tst" \
	"$T/new.safetensors"
as_before "full disk, auto"

# 2. a bad source (a truncated second file): rejected before the store is touched
head -c 5000 "$T/new.safetensors" >"$T/trunc.safetensors"
expect 1 "$TSTORE" import --replace --codec raw "$T/a.tst" "$T/new.safetensors" "$T/trunc.safetensors"
err_has "trunc.safetensors"
as_before "bad source"

# 3. a tensor the forced codec cannot encode (NaN and Inf under nvfp4)
"$GEN" -q --size small --seed 3 --nonfinite model.layers.1.mlp.up_proj.weight \
	-o "$T/nan.safetensors" || fail gen
expect 1 "$TSTORE" import --replace --codec nvfp4 "$T/a.tst" "$T/nan.safetensors"
err_has "model.layers.1.mlp.up_proj.weight"
as_before "forced codec"

# 4. Ctrl-C once the write phase has started: nothing of the command is published
"$GEN" -q --size small --layers 12 --seed 4 -o "$T/big.safetensors" || fail gen
TSTORE_PROGRESS_SECONDS=0 "$TSTORE" import --replace --codec nvfp4 --recipe best --jobs 1 \
	"$T/a.tst" "$T/big.safetensors" >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 200); do
	grep -Eq '^import: +[0-9]+%' "$T/err" && break   # a progress line of the write phase
	sleep 0.05
done
kill -INT $pid 2>/dev/null
wait $pid
st=$?
if [ $st -eq 130 ]; then
	err_has "interrupted: nothing imported"
	as_before "Ctrl-C"
else
	[ $st -eq 0 ] || { cat "$T/err"; fail "interrupted import exited $st"; }
	echo "note: the import finished before Ctrl-C arrived"
fi

# and without a limit the replacement goes through, whole
expect 0 "$TSTORE" import -q --replace --codec raw "$T/a.tst" "$T/new.safetensors"
expect 0 "$TSTORE" inspect "$T/a.tst" model.position_ids
expect 0 "$TSTORE" fsck "$T/a.tst"
out_has "clean"
expect 0 "$TSTORE" export "$T/a.tst" "$T/all.safetensors"
expect 0 "$STCHECK" compare "$T/new.safetensors" "$T/all.safetensors" --exact --subset
echo "atomic: ok"
