#!/usr/bin/env bash
# Sharded checkpoints: importing model.safetensors.index.json imports every shard and gives the
# same tensors as the unsharded file; several SRC files at once; a broken index is rejected.
. "${srcdir:-.}/tests/cli/lib.sh"
mkdir "$T/sh"
"$GEN" -q --size tiny --shards 3 -o "$T/sh" || fail gen
"$GEN" -q --size tiny -o "$T/one.safetensors" || fail gen
expect 0 "$TSTORE" import --codec raw "$T/a.tst" "$T/sh/model.safetensors.index.json"
out_has "21 tensors from 3 files"
expect 0 "$TSTORE" export "$T/a.tst" "$T/a.safetensors"
expect 0 "$STCHECK" compare "$T/one.safetensors" "$T/a.safetensors" --exact
# shards named directly
expect 0 "$TSTORE" import --codec int8 "$T/b.tst" "$T"/sh/model-0000*.safetensors
expect 0 "$TSTORE" export "$T/b.tst" "$T/b.safetensors"
expect 0 "$STCHECK" compare "$T/one.safetensors" "$T/b.safetensors" --max-rel 1.5
# a shard missing
mv "$T/sh/model-00002-of-00003.safetensors" "$T/gone"
expect 1 "$TSTORE" import "$T/c.tst" "$T/sh/model.safetensors.index.json"
err_has "model-00002-of-00003.safetensors"
[ ! -e "$T/c.tst" ] || fail "store created by a failing import"
mv "$T/gone" "$T/sh/model-00002-of-00003.safetensors"
# the same tensor twice
expect 1 "$TSTORE" import "$T/c.tst" "$T/sh/model.safetensors.index.json" "$T/one.safetensors"
err_has "appears in both"
[ ! -e "$T/c.tst" ] || fail "store created by a failing import"
# an index without weight_map
echo '{"metadata": {}}' >"$T/sh/bad.index.json"
expect 1 "$TSTORE" import "$T/c.tst" "$T/sh/bad.index.json"
err_has "weight_map"
echo "sharded: ok"
