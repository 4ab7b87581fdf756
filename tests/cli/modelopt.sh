#!/usr/bin/env bash
# ModelOpt NVFP4 layout: export --layout modelopt writes x U8 [r, c/2], x_scale F8_E4M3
# [r, c/16], x_scale_2 F32 []; importing that file gives back bit-identical NVFP4 tensors
# (checked by exporting both stores again, encoded and decoded, and comparing bytes).
. "${srcdir:-.}/tests/cli/lib.sh"
make_tiny
S="$T/tiny.safetensors"
expect 0 "$TSTORE" import --codec nvfp4 "$T/a.tst" "$S"
expect 0 "$TSTORE" export --layout modelopt "$T/a.tst" "$T/mo.safetensors"
out_has "ModelOpt"
"$STCHECK" info "$T/mo.safetensors" >"$T/info"
grep -qx 'model.layers.0.mlp.down_proj.weight U8 \[64,88\]' "$T/info" || fail "codes: $(cat "$T/info")"
grep -qx 'model.layers.0.mlp.down_proj.weight_scale F8_E4M3 \[64,11\]' "$T/info" || fail "scales"
grep -qx 'model.layers.0.mlp.down_proj.weight_scale_2 F32 \[\]' "$T/info" || fail "scale_2"
grep -qx 'model.position_ids I64 \[1,64\]' "$T/info" || fail "integer tensor"
# import the ModelOpt file: NVFP4 again, without requantizing
expect 0 "$TSTORE" import "$T/b.tst" "$T/mo.safetensors"
out_has "ModelOpt NVFP4 tensors stored as they are"
expect 0 "$TSTORE" inspect "$T/b.tst" model.layers.0.mlp.down_proj.weight
out_has "[64, 176]"
out_has "nvfp4"
expect 0 "$TSTORE" export --layout modelopt "$T/b.tst" "$T/mo2.safetensors"
expect 0 "$STCHECK" compare "$T/mo.safetensors" "$T/mo2.safetensors" --exact
# decoded, the 2-D NVFP4 tensors are the same values (1-D ones went through BF16)
N2="lm_head.weight model.embed_tokens.weight model.layers.0.mlp.down_proj.weight model.layers.1.self_attn.q_proj.weight"
expect 0 "$TSTORE" export --dtype f32 "$T/a.tst" "$T/a32.safetensors" $N2
expect 0 "$TSTORE" export --dtype f32 "$T/b.tst" "$T/b32.safetensors" $N2
expect 0 "$STCHECK" compare "$T/a32.safetensors" "$T/b32.safetensors" --exact
# the decoded values are those of the original within NVFP4's error
expect 0 "$STCHECK" compare "$T/b32.safetensors" "$S" --subset --max-rel 14
# the tensor scale is stored exactly as weight_scale_2, even a value that no amax gives
# (0x3a51b719 = 0.000800000096: no float32 a has fl(a / 2688) equal to it)
cp "$T/mo.safetensors" "$T/g.safetensors"
expect 0 "$STCHECK" poke "$T/g.safetensors" model.layers.0.mlp.down_proj.weight_scale_2 19b7513a
expect 0 "$TSTORE" import "$T/g.tst" "$T/g.safetensors"
expect 0 "$TSTORE" export --layout modelopt "$T/g.tst" "$T/g2.safetensors"
expect 0 "$STCHECK" compare "$T/g.safetensors" "$T/g2.safetensors" --exact
expect 0 "$TSTORE" inspect --json "$T/g.tst" model.layers.0.mlp.down_proj.weight
out_has '"tensor_scale": 0.000800000096'
# a broken group is rejected before anything is written
expect 0 "$TSTORE" export --layout modelopt "$T/a.tst" "$T/part.safetensors" lm_head.weight
"$STCHECK" info "$T/part.safetensors" | wc -l | grep -qx 3 || fail "one NVFP4 tensor gives three"
echo "modelopt: ok"
