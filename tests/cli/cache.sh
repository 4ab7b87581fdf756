#!/usr/bin/env bash
# tstore calibrate and tstore bench cache: the profile file, the reference table, trace
# generation, replay under each policy (JSON fields, request accounting, the optimum for the
# decoded-only policies), reproducibility for a fixed seed, and usage errors.
. "${srcdir:-.}/tests/cli/lib.sh"
make_tiny
S="$T/tiny.safetensors"
M="$T/m.tst"
expect 0 "$TSTORE" import --codec nvfp4 "$M" "$S"

# calibrate: the reference table needs no store; the measured one is saved next to the store
expect 0 "$TSTORE" calibrate --show --profile blackwell
out_has "8000.00 GB/s"
out_has "reference"
expect 1 "$TSTORE" calibrate --show "$M"
err_has "no measured profile"
expect 0 "$TSTORE" calibrate --seconds 0.2 "$M"
[ -s "$M-profile" ] || fail "no profile file $M-profile"
grep -q '^tstore-profile 1$' "$M-profile" || fail "profile file header"
out_has "measured"
expect 0 "$TSTORE" calibrate --show --json "$M"
out_has '"name": "measured"'
out_has '"decode_geps"'
expect 2 "$TSTORE" calibrate --profile blackwell "$M"
expect 2 "$TSTORE" calibrate --seconds 0 "$M"
expect 2 "$TSTORE" calibrate

# traces
for kind in zipf sweep-hot scan; do
	expect 0 "$TSTORE" bench cache --generate "$kind" --requests 300 --budget 262144 \
		--seed 5 -o "$T/$kind.trace" "$M"
	[ "$(grep -vc '^#' "$T/$kind.trace")" -gt 0 ] || fail "$kind trace is empty"
done
[ "$(grep -vc '^#' "$T/zipf.trace")" -eq 300 ] || fail "zipf trace: 300 requests"
grep -q ' hot$' "$T/sweep-hot.trace" || fail "sweep-hot trace tags hot requests"
# the same seed gives the same trace
expect 0 "$TSTORE" bench cache --generate zipf --requests 300 --seed 5 -o "$T/z2.trace" "$M"
cmp -s "$T/zipf.trace" "$T/z2.trace" || fail "zipf trace differs for the same seed"

# replay under each policy
for policy in tiered decoded-lru decoded-only; do
	expect 0 "$TSTORE" bench cache --trace "$T/zipf.trace" --budget 262144 --policy "$policy" \
		--threads 1 --json "$M"
	cp "$T/out" "$T/$policy.json"
	for f in requests served_decoded served_compressed served_storage storage_bytes \
		model_seconds measured_seconds; do
		grep -q "\"$f\"" "$T/$policy.json" || fail "$policy: no $f in $(cat "$T/$policy.json")"
	done
	sum=$(grep -Eo '"served_(decoded|compressed|storage)": [0-9]+' "$T/$policy.json" |
		awk '{ s += $2 } END { print s + 0 }')
	[ "$sum" -eq 300 ] || fail "$policy: served counts add up to $sum, not 300"
done
grep -q '"opt_hit_ratio"' "$T/decoded-lru.json" || fail "decoded-lru: no opt_hit_ratio"
grep -q '"opt_hit_ratio"' "$T/decoded-only.json" || fail "decoded-only: no opt_hit_ratio"
grep -q '"opt_hit_ratio"' "$T/tiered.json" && fail "tiered: opt_hit_ratio is for decoded-only policies"
grep -q '"served_compressed": 0,' "$T/decoded-lru.json" || fail "decoded-lru serves nothing compressed"
# reproducible for a fixed seed: same trace, one thread, same decisions
expect 0 "$TSTORE" bench cache --trace "$T/zipf.trace" --budget 262144 --threads 1 --json "$M"
for f in served_decoded served_compressed served_storage storage_bytes; do
	a=$(grep "\"$f\"" "$T/tiered.json")
	b=$(grep "\"$f\"" "$T/out")
	[ "$a" = "$b" ] || fail "replay not reproducible: $a vs $b"
done
# text output
expect 0 "$TSTORE" bench cache --trace "$T/sweep-hot.trace" --budget 262144 "$M"
out_has "served compressed"
out_has "hot set"

# errors
printf 'no.such.tensor 0:1,:\n' >"$T/bad.trace"
expect 1 "$TSTORE" bench cache --trace "$T/bad.trace" --budget 1M "$M"
err_has "bad.trace:1"
printf 'model.norm.weight 5:1\n' >"$T/bad.trace"
expect 1 "$TSTORE" bench cache --trace "$T/bad.trace" --budget 1M "$M"
err_has "bad range"
expect 2 "$TSTORE" bench cache --trace "$T/zipf.trace" "$M"
expect 2 "$TSTORE" bench cache --trace "$T/zipf.trace" --budget 1M --policy lru "$M"
expect 2 "$TSTORE" bench cache --generate bogus "$M"
exit 0
