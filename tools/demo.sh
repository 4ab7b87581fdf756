#!/usr/bin/env bash
# The main job end to end on an example this script generates itself: build, generate an
# LLM-shaped BF16 checkpoint (~270 MB; TS_DEMO_SIZE=tiny|small|demo), import it into a store,
# inspect it, read slices, fsck, export it back, and print what a newcomer needs to see.
# Work files go to $TS_DEMO_DIR (default: <builddir>/demo); the checkpoint is generated once.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/build.sh"
B=${TS_BUILDDIR:-$top/build}
D=${TS_DEMO_DIR:-$B/demo}
size=${TS_DEMO_SIZE:-demo}
TSTORE="$B/tools/tstore"
STCHECK="$B/tests/cli/stcheck"
mkdir -p "$D"
echo "== $("$TSTORE" --version)"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
mb() { awk -v n="$(stat -L -c %s "$1")" 'BEGIN { printf "%.1f MB", n / 1e6 }'; }

src="$D/model-$size.safetensors"
if [ ! -s "$src" ]; then
	echo "== generating an LLM-shaped example checkpoint ($size)"
	"$B/tools/gen_checkpoint" --size "$size" -o "$src"
fi
store="$D/model.tst"
rm -f "$store" "$store-lock" "$D/export.safetensors" "$D/q.npy"

echo
echo "== tstore import $store $src"
t0=$(now)
"$TSTORE" import "$store" "$src"
t_import=$(secs "$t0" "$(now)")

echo
echo "== tstore inspect $store (two tensors and the totals)"
"$TSTORE" inspect "$store" model.layers.0.self_attn.q_proj.weight model.layers.0.input_layernorm.weight
"$TSTORE" inspect "$store" | tail -3

q=model.layers.0.self_attn.q_proj.weight
echo
echo "== tstore slice $store $q 0:2,0:6   (text)"
"$TSTORE" slice "$store" "$q" "0:2,0:6"
echo "== tstore slice -o q.npy $store $q 0:128,:   (NumPy .npy, checked against the source)"
"$TSTORE" slice -o "$D/q.npy" "$store" "$q" "0:128,:"
"$STCHECK" npy "$D/q.npy" "$src" "$q" "0:128,:" --max-rel 100
"$TSTORE" slice -o "$D/row.npy" "$store" model.embed_tokens.weight "-1"
"$STCHECK" npy "$D/row.npy" "$src" model.embed_tokens.weight "-1" --max-rel 100

echo
echo "== tstore fsck $store"
t0=$(now)
fsck_out=$("$TSTORE" fsck "$store") && fsck_ok=clean || fsck_ok="NOT CLEAN"
echo "$fsck_out"
t_fsck=$(secs "$t0" "$(now)")

echo
echo "== tstore export $store export.safetensors   (back to BF16 safetensors)"
t0=$(now)
"$TSTORE" export "$store" "$D/export.safetensors"
t_export=$(secs "$t0" "$(now)")
cmp_out=$("$STCHECK" compare "$src" "$D/export.safetensors" --max-rel 100)
echo "$cmp_out"

worst=$("$TSTORE" inspect --json "$store" | sed -n 's/.*"worst_rel_rms_pct": *\([0-9.eE+-]*\).*/\1/p')
echo
echo "================================================================================"
echo " source checkpoint  $(mb "$src")   ($src)"
echo " tstore store       $(mb "$store")   ($store)"
awk -v a="$(stat -L -c %s "$src")" -v b="$(stat -L -c %s "$store")" \
	'BEGIN { printf " size ratio         %.2fx smaller on disk\n", a / b }'
printf ' worst error        %.2f%% relative RMS (per tensor, bounded by --max-error)\n' "${worst:-0}"
echo " import             $t_import s;  export $t_export s;  fsck $t_fsck s"
echo " fsck               $fsck_ok"
echo " round trip         ${cmp_out#stcheck: }"
echo "================================================================================"
[ "$fsck_ok" = clean ]
