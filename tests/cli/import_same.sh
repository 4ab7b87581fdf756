#!/usr/bin/env bash
# The import pipeline stores what the import of bbc4365 stored: the same tensors, the same codecs
# (auto's choices included) and the same decoded values (tsdigest), for every codec, whatever
# the number of encoder threads; tensors larger than a commit batch (wide-*) included.
. "${srcdir:-.}/tests/cli/lib.sh"
DIGEST="$B/tests/robust/tsdigest"
[ -x "$DIGEST" ] || { echo "SKIP: $DIGEST is not built"; exit 77; }
G="${srcdir:-.}/tests/cli/import_digests"

"$GEN" -q --size small --layers 2 --extras --nonfinite model.layers.1.mlp.up_proj.weight \
	--seed 7 -o "$T/ck.safetensors" || fail gen
"$GEN" -q --layers 1 --hidden 1024 --intermediate 8192 --vocab 256 --kv-dim 256 --seed 11 \
	-o "$T/wide.safetensors" || fail gen
for f in ck:e17c41eded9ad096d49f053dda37318740360e188d41161932699e58fd68ef15 \
	wide:08157690d9c5c93bd9508be89b0ea516a3a53609c727ea62f07a8083ef261eb6; do
	sum=$(sha256sum "$T/${f%%:*}.safetensors" | cut -d' ' -f1)
	[ "$sum" = "${f#*:}" ] || fail "gen_checkpoint no longer makes the checkpoint of the digests (${f%%:*})"
done

# same NAME CODEC SRC JOBS [ARGS...]: import SRC with --codec CODEC, compare with NAME.digest
same() {
	local name=$1 codec=$2 src=$3 jobs=$4
	shift 4
	rm -f "$T/s.tst" "$T/s.tst-lock"
	expect 0 "$TSTORE" import -q --jobs "$jobs" --codec "$codec" "$@" "$T/s.tst" "$src"
	"$DIGEST" "$T/s.tst" >"$T/got" || fail "tsdigest $name"
	diff -u "$G/$name.digest" "$T/got" >&2 || fail "$name (--jobs $jobs): not what bbc4365 stored"
}

keep=(--keep model.layers.1.mlp.up_proj.weight)
for jobs in 1 2; do
	same auto auto "$T/ck.safetensors" $jobs
	same nvfp4 nvfp4 "$T/ck.safetensors" $jobs "${keep[@]}"
	same raw raw "$T/ck.safetensors" $jobs
	same lossless lossless "$T/ck.safetensors" $jobs
	same wide-nvfp4 nvfp4 "$T/wide.safetensors" $jobs
	same wide-raw raw "$T/wide.safetensors" $jobs
done
same mxfp4 mxfp4 "$T/ck.safetensors" 2 "${keep[@]}"
same int8 int8 "$T/ck.safetensors" 2 "${keep[@]}"
same fp8 fp8 "$T/ck.safetensors" 2 "${keep[@]}"
same wide-auto auto "$T/wide.safetensors" 2
exit 0
