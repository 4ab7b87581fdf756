#!/usr/bin/env bash
# tstore slice: .npy output compared against the source with stcheck, numpy-style ranges
# (indices squeeze, negatives, missing dims), dtypes, text rendering, errors.
. "${srcdir:-.}/tests/cli/lib.sh"
make_tiny
S="$T/tiny.safetensors"
expect 0 "$TSTORE" import --codec raw "$T/raw.tst" "$S"
expect 0 "$TSTORE" import --codec int8 "$T/int8.tst" "$S"

W=model.layers.1.mlp.down_proj.weight   # [64, 176]
for r in "0:16,:" "5,16:32" "-1" ":,-3" "10:20,100:176" ":" "3,7" "-5:,:-100"; do
	expect 0 "$TSTORE" slice -o "$T/s.npy" "$T/raw.tst" "$W" "$r"
	expect 0 "$STCHECK" npy "$T/s.npy" "$S" "$W" "$r"
	expect 0 "$TSTORE" slice -o "$T/s.npy" "$T/int8.tst" "$W" "$r"
	expect 0 "$STCHECK" npy "$T/s.npy" "$S" "$W" "$r" --max-rel 5
done
# no RANGE: the whole tensor; 1-D tensors; other dtypes
expect 0 "$TSTORE" slice -o "$T/s.npy" "$T/raw.tst" model.norm.weight
expect 0 "$STCHECK" npy "$T/s.npy" "$S" model.norm.weight ""
for dt in bf16 f16; do
	expect 0 "$TSTORE" slice --dtype "$dt" -o "$T/s.npy" "$T/raw.tst" "$W" "0:4,0:50"
	expect 0 "$STCHECK" npy "$T/s.npy" "$S" "$W" "0:4,0:50" --max-rel 0.1
done
# bf16 from a BF16 source is exact
expect 0 "$TSTORE" slice --dtype bf16 -o "$T/s.npy" "$T/raw.tst" "$W" "1:3"
expect 0 "$STCHECK" npy "$T/s.npy" "$S" "$W" "1:3"
# integer and bool tensors come back in their own dtype
expect 0 "$TSTORE" slice -o "$T/s.npy" "$T/raw.tst" model.position_ids "0,10:20"
expect 0 "$STCHECK" npy "$T/s.npy" "$S" model.position_ids "0,10:20"
expect 0 "$TSTORE" slice -o "$T/s.npy" "$T/raw.tst" model.causal_mask
expect 0 "$STCHECK" npy "$T/s.npy" "$S" model.causal_mask ""
# .npy to stdout
"$TSTORE" slice -o - "$T/raw.tst" "$W" "0:2,0:8" >"$T/p.npy" || fail "slice -o -"
expect 0 "$STCHECK" npy "$T/p.npy" "$S" "$W" "0:2,0:8"
# text rendering
expect 0 "$TSTORE" slice "$T/raw.tst" "$W" "0:2,0:3"
grep -q '^\[\[' "$T/out" || fail "text rendering: $(cat "$T/out")"
[ "$(grep -o 'e[-+]' "$T/out" | wc -l)" -eq 6 ] || fail "text rendering shows 6 values"
expect 0 "$TSTORE" slice "$T/raw.tst" "$W"
out_has "..."
expect 0 "$TSTORE" slice "$T/raw.tst" model.position_ids "0,0:5"
grep -qx '\[0, 1, 2, 3, 4\]' "$T/out" || fail "integer rendering: $(cat "$T/out")"
# errors
expect 2 "$TSTORE" slice "$T/raw.tst" "$W" "0:10,200"
err_has "dimension 1"
err_has "out of range"
expect 2 "$TSTORE" slice "$T/raw.tst" "$W" "1,2,3"
err_has "too many indices"
expect 2 "$TSTORE" slice "$T/raw.tst" "$W" "0:10:2"
expect 1 "$TSTORE" slice "$T/raw.tst" no.such "0"
err_has "tstore: slice: tensor 'no.such'"
[ -z "$(ls "$T" | grep tmp)" ] || fail "temporary files left"
echo "slice: ok"
