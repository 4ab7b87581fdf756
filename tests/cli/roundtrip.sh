#!/usr/bin/env bash
# import -> export round trips for every codec and output dtype, values compared with stcheck
# against the source; the auto policy and its summary; inspect (text and --json).
. "${srcdir:-.}/tests/cli/lib.sh"
make_tiny
S="$T/tiny.safetensors"

# Lossless: raw everywhere gives back the exact bytes.
expect 0 "$TSTORE" import --codec raw "$T/raw.tst" "$S"
out_has "24 tensors"
expect 0 "$TSTORE" export "$T/raw.tst" "$T/raw.safetensors"
expect 0 "$STCHECK" compare "$S" "$T/raw.safetensors" --exact
# The source's __metadata__ is the store's metadata, written back by export (FORMAT.md, 2).
head -c 200 "$S" | grep -q '"__metadata__":{"format":"pt","generator":"tstore gen_checkpoint"}' ||
	fail "the generated source lacks the expected __metadata__"
head -c 200 "$T/raw.safetensors" |
	grep -q '"__metadata__":{"format":"pt","generator":"tstore gen_checkpoint"}' ||
	fail "export did not write the source's __metadata__ back"

# Lossless: every bit back, for BF16, F16 and F32 sources, NaN and Inf included; --max-error 0
# is lossless too; slices read the same values as the source.
expect 0 "$TSTORE" import --codec lossless "$T/ll.tst" "$S"
out_has "policy: --codec lossless"
out_has "worst relative RMS error: 0 (lossless)"
expect 0 "$TSTORE" export "$T/ll.tst" "$T/ll.safetensors"
expect 0 "$STCHECK" compare "$S" "$T/ll.safetensors" --exact
expect 0 "$TSTORE" inspect "$T/ll.tst" model.layers.0.self_attn.q_proj.weight
out_has "-> lossless BF16"
for dt in f32 f16; do
	"$GEN" -q --size tiny --dtype $dt --nonfinite lm_head.weight -o "$T/ll-$dt.safetensors" || fail gen
	expect 0 "$TSTORE" import --codec lossless "$T/ll-$dt.tst" "$T/ll-$dt.safetensors"
	expect 0 "$TSTORE" export "$T/ll-$dt.tst" "$T/ll-$dt-back.safetensors"
	expect 0 "$STCHECK" compare "$T/ll-$dt.safetensors" "$T/ll-$dt-back.safetensors" --exact
done
expect 0 "$TSTORE" import --max-error 0 "$T/exact.tst" "$S"
out_has "every floating-point tensor lossless"
expect 0 "$TSTORE" export "$T/exact.tst" "$T/exact.safetensors"
expect 0 "$STCHECK" compare "$S" "$T/exact.safetensors" --exact
expect 0 "$TSTORE" slice -o "$T/q.npy" "$T/exact.tst" model.layers.0.self_attn.q_proj.weight "3:9,5:"
expect 0 "$STCHECK" npy "$T/q.npy" "$S" model.layers.0.self_attn.q_proj.weight "3:9,5:" --max-rel 0

# Every lossy codec: bounded error, integer/bool tensors exact, shapes and names preserved.
for spec in nvfp4:14 mxfp4:20 int8:1.5 fp8:7; do
	codec=${spec%%:*} bound=${spec#*:}
	expect 0 "$TSTORE" import --codec "$codec" "$T/$codec.tst" "$S"
	out_has "policy: --codec $codec"
	out_has "$codec "
	for dt in f32 bf16 f16 source; do
		expect 0 "$TSTORE" export --dtype "$dt" "$T/$codec.tst" "$T/$codec-$dt.safetensors"
		expect 0 "$STCHECK" compare "$S" "$T/$codec-$dt.safetensors" --max-rel "$bound"
	done
	"$STCHECK" info "$T/$codec-f32.safetensors" | grep -q "model.position_ids I64 \[1,64\]" ||
		fail "$codec: integer tensor lost its dtype"
	"$STCHECK" info "$T/$codec-f32.safetensors" | grep -q "lm_head.weight F32 \[512,64\]" ||
		fail "$codec: --dtype f32 not applied"
	"$STCHECK" info "$T/$codec-source.safetensors" | grep -q "lm_head.weight BF16 \[512,64\]" ||
		fail "$codec: --dtype source not BF16"
done
# NVFP4 best recipe: also within bound.
expect 0 "$TSTORE" import --codec nvfp4 --recipe best "$T/best.tst" "$S"
expect 0 "$TSTORE" export "$T/best.tst" "$T/best.safetensors"
expect 0 "$STCHECK" compare "$S" "$T/best.safetensors" --max-rel 14

# F32 and F16 sources.
"$GEN" -q --size tiny --dtype f32 -o "$T/f32.safetensors" || fail gen
expect 0 "$TSTORE" import --codec int8 "$T/f32.tst" "$T/f32.safetensors"
expect 0 "$TSTORE" export "$T/f32.tst" "$T/f32-back.safetensors"
expect 0 "$STCHECK" compare "$T/f32.safetensors" "$T/f32-back.safetensors" --max-rel 1.5
"$STCHECK" info "$T/f32-back.safetensors" | grep -q "lm_head.weight F32" || fail "source F32"
"$GEN" -q --size tiny --dtype f16 -o "$T/f16.safetensors" || fail gen
expect 0 "$TSTORE" import "$T/f16.tst" "$T/f16.safetensors"
expect 0 "$TSTORE" export "$T/f16.tst" "$T/f16-back.safetensors"
expect 0 "$STCHECK" compare "$T/f16.safetensors" "$T/f16-back.safetensors" --max-rel 14

# Auto policy: within the bound; 1-D and tiny tensors lossless; summary printed.
expect 0 "$TSTORE" import --max-error 5 "$T/auto.tst" "$S"
out_has "policy: auto, fewest bytes with relative RMS error <= 5%"
out_has "lossless:"
out_has "ratio"
out_has "worst relative RMS error"
expect 0 "$TSTORE" export "$T/auto.tst" "$T/auto.safetensors"
expect 0 "$STCHECK" compare "$S" "$T/auto.safetensors" --max-rel 5
expect 0 "$TSTORE" inspect "$T/auto.tst" model.layers.0.input_layernorm.weight
out_has "-> lossless BF16"
# --keep stores matched tensors losslessly.
expect 0 "$TSTORE" import --codec nvfp4 --keep 'lm_head.*' --keep '*embed*' "$T/keep.tst" "$S"
expect 0 "$TSTORE" export "$T/keep.tst" "$T/keep.safetensors" lm_head.weight model.embed_tokens.weight
expect 0 "$STCHECK" compare "$T/keep.safetensors" "$S" --exact --subset
# --jobs
expect 0 "$TSTORE" import --jobs 1 --codec fp8 "$T/jobs.tst" "$S"

# Export of named tensors only; unknown name is an error and leaves no file.
expect 0 "$TSTORE" export "$T/raw.tst" "$T/two.safetensors" lm_head.weight model.norm.weight
"$STCHECK" info "$T/two.safetensors" | wc -l | grep -qx 2 || fail "export NAME... wrote other tensors"
expect 1 "$TSTORE" export "$T/raw.tst" "$T/bad.safetensors" no.such.tensor
err_has "no.such.tensor"
[ ! -e "$T/bad.safetensors" ] || fail "failed export left a file"

# inspect: text and JSON.
expect 0 "$TSTORE" inspect "$T/nvfp4.tst"
out_has "-> nvfp4 (block 16, nvidia)"
out_has "I/O backend"
out_has "24 tensors"
expect 0 "$TSTORE" inspect --json "$T/nvfp4.tst"
cp "$T/out" "$T/inspect.json"
expect 0 "$STCHECK" json "$T/inspect.json"
for k in '"schema": 1' '"io_backend"' '"kernel"' '"tensors"' '"totals"' '"rel_rms_pct"' \
	'"sqnr_db"' '"distribution"' '"stored_bytes"' '"source_dtype": "BF16"' '"name": "nvfp4"'; do
	grep -qF "$k" "$T/inspect.json" || fail "inspect --json lacks $k"
done
expect 1 "$TSTORE" inspect "$T/nvfp4.tst" no.such.tensor
err_has "tstore: inspect: tensor 'no.such.tensor'"
echo "roundtrip: ok"
