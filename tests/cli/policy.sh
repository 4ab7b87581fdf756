#!/usr/bin/env bash
# The default auto policy keeps token embeddings and the output projection exact (lossless, bit
# for bit) and says so in the summary; --quantize-all lets the analyser quantize them as before.
. "${srcdir:-.}/tests/cli/lib.sh"
"$GEN" -q --size tiny -o "$T/plain.safetensors" || fail gen
expect 0 "$TSTORE" import "$T/a.tst" "$T/plain.safetensors"
out_has "kept exact by the default policy"
out_has "output projection (lm_head.weight)"
out_has "token embedding (model.embed_tokens.weight)"
for n in lm_head.weight model.embed_tokens.weight; do
	expect 0 "$TSTORE" inspect "$T/a.tst" "$n"
	out_has "BF16 -> lossless BF16"
done
expect 0 "$TSTORE" export "$T/a.tst" "$T/back.safetensors" lm_head.weight model.embed_tokens.weight
expect 0 "$STCHECK" compare "$T/back.safetensors" "$T/plain.safetensors" --exact --subset
# a projection of the blocks is still quantized
expect 0 "$TSTORE" inspect "$T/a.tst" model.layers.0.mlp.up_proj.weight
grep -qE -- "-> (raw|lossless)" "$T/out" && fail "up_proj was kept exact"

expect 0 "$TSTORE" import --quantize-all "$T/q.tst" "$T/plain.safetensors"
grep -q "kept exact by the default policy" "$T/out" && fail "--quantize-all kept tensors"
for n in lm_head.weight model.embed_tokens.weight; do
	expect 0 "$TSTORE" inspect "$T/q.tst" "$n"
	grep -qE -- "-> (raw|lossless)" "$T/out" && fail "--quantize-all: $n kept exact"
done
# the policy is auto's: a forced codec applies to them as before
expect 0 "$TSTORE" import --codec int8 "$T/f.tst" "$T/plain.safetensors"
expect 0 "$TSTORE" inspect "$T/f.tst" lm_head.weight
out_has "-> int8"
echo "policy: ok"
