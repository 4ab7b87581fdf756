#!/usr/bin/env bash
# export --layout modelopt into a directory writes hf_quant_config.json and config.json's
# quantization_config as ModelOpt's unified HF export does (checked field by field): quant_algo,
# group_size 16, kv_cache_quant_algo null, exclude_modules = the modules whose weights stay in
# high precision; the rest of config.json byte-identical; the weight_map names the _scale and
# _scale_2 tensors; the directory imports back to the same NVFP4 bits.
. "${srcdir:-.}/tests/cli/lib.sh"
M="$T/model"
mkdir "$M"
"$GEN" -q --size tiny -o "$M/model.safetensors" || fail gen
printf '{\n  "architectures": ["LlamaForCausalLM"],\n  "rms_norm_eps": 1e-05,\n  "hidden_size": 64\n}\n' \
	>"$M/config.json"
expect 0 "$TSTORE" import -q --codec nvfp4 --keep 'lm_head*' --keep '*embed_tokens*' \
	"$T/s.tst" "$M"
expect 0 "$TSTORE" export --layout modelopt --max-shard-size 100KB "$T/s.tst" "$T/od/"
out_has "hf_quant_config.json written"
out_has "no input_scale"
Q="$T/od/hf_quant_config.json"
get() { "$STCHECK" jsonget "$1" "$2" >"$T/v" 2>"$T/e" || { cat "$T/e"; fail "no $2 in $1"; }; }
is() { [ "$(cat "$T/v")" = "$1" ] || { cat "$T/v"; fail "$2: want '$1'"; }; }
get "$Q" producer/name;                    is tstore producer
get "$Q" quantization/quant_algo;          is NVFP4 quant_algo
get "$Q" quantization/group_size;          is 16 group_size
get "$Q" quantization/kv_cache_quant_algo; is null kv_cache_quant_algo
get "$Q" quantization/exclude_modules;     is "$(printf 'lm_head\nmodel.embed_tokens')" exclude
C="$T/od/config.json"
get "$C" quantization_config/quant_method; is modelopt quant_method
get "$C" quantization_config/quant_algo;   is NVFP4 quant_algo
get "$C" quantization_config/ignore;       is "$(printf 'lm_head\nmodel.embed_tokens')" ignore
get "$C" quantization_config/producer/name; is tstore producer
for part in weights input_activations; do
	get "$C" quantization_config/config_groups/group_0/$part/num_bits;   is 4 num_bits
	get "$C" quantization_config/config_groups/group_0/$part/type;       is float type
	get "$C" quantization_config/config_groups/group_0/$part/group_size; is 16 group_size
	get "$C" quantization_config/config_groups/group_0/$part/dynamic;    is false dynamic
done
get "$C" quantization_config/config_groups/group_0/targets; is Linear targets
get "$C" architectures; is LlamaForCausalLM architectures
grep -q '"rms_norm_eps": 1e-05,' "$C" || fail "config.json's other members were rewritten"
# the tensors: x U8 [r, c/2], x_scale F8_E4M3 [r, c/16], x_scale_2 F32 [], in the weight_map
for s in "$T"/od/model-*.safetensors; do "$STCHECK" info "$s"; done >"$T/info"
grep -qx 'model.layers.0.mlp.up_proj.weight U8 \[176,32\]' "$T/info" || { cat "$T/info"; fail codes; }
grep -qx 'model.layers.0.mlp.up_proj.weight_scale F8_E4M3 \[176,4\]' "$T/info" || fail scales
grep -qx 'model.layers.0.mlp.up_proj.weight_scale_2 F32 \[\]' "$T/info" || fail scale_2
grep -qx 'lm_head.weight BF16 \[512,64\]' "$T/info" || fail "lm_head not kept"
get "$T/od/model.safetensors.index.json" weight_map/model.layers.0.mlp.up_proj.weight_scale_2
grep -q '^model-0000.-of-0000.\.safetensors$' "$T/v" || fail "weight_map of _scale_2"
# back: the same NVFP4 bits
expect 0 "$TSTORE" import -q "$T/back.tst" "$T/od"
expect 0 "$TSTORE" export --layout modelopt "$T/s.tst" "$T/a.safetensors"
expect 0 "$TSTORE" export --layout modelopt "$T/back.tst" "$T/b.safetensors"
expect 0 "$STCHECK" compare "$T/a.safetensors" "$T/b.safetensors" --exact

# weight-only label: no activation quantization in config_groups
expect 0 "$TSTORE" export --layout modelopt --quant-algo W4A16_NVFP4 "$T/s.tst" "$T/w4a16/"
get "$T/w4a16/hf_quant_config.json" quantization/quant_algo; is W4A16_NVFP4 quant_algo
get "$T/w4a16/config.json" quantization_config/config_groups/group_0; is weights$'\n'targets groups
# no config.json attached: hf_quant_config.json only
expect 0 "$TSTORE" import -q --codec nvfp4 "$T/nc.tst" "$M/model.safetensors"
expect 0 "$TSTORE" export --layout modelopt "$T/nc.tst" "$T/nc/"
out_has "no config.json attached"
[ -f "$T/nc/hf_quant_config.json" ] && [ ! -e "$T/nc/config.json" ] || fail "without config.json"
# no NVFP4 tensor: no quantization config at all
expect 0 "$TSTORE" import -q --codec raw "$T/raw.tst" "$M"
expect 0 "$TSTORE" export --layout modelopt "$T/raw.tst" "$T/raw/"
[ -e "$T/raw/hf_quant_config.json" ] && fail "hf_quant_config.json for a store without NVFP4"
cmp -s "$M/config.json" "$T/raw/config.json" || fail "config.json changed without NVFP4"
echo "modelopt_dir: ok"
