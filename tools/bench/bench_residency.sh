#!/usr/bin/env bash
# Evaluate the tiered residency policy against the targets of docs/RESIDENCY.md:
# builds an NVFP4 store from a generated LLM-shaped checkpoint, calibrates, generates the three
# traces (zipf, sweep-hot, scan) and replays each with the three policies at a budget of 1/5 of
# the store, printing one JSON object per run and a summary with the ratios.
#
#   tools/bench/bench_residency.sh [WORKDIR]      (default: a fresh directory under ${TMPDIR:-/tmp})
# Environment: TSTORE (the command, default ./build/tools/tstore), GEN (gen_checkpoint),
#   SIZE (gen_checkpoint preset, default demo), REQUESTS (default 20000), SEED (default 1).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tstore=${TSTORE:-$top/build/tools/tstore}
gen=${GEN:-$top/build/tools/gen_checkpoint}
size=${SIZE:-demo}
requests=${REQUESTS:-20000}
seed=${SEED:-1}
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/tstore-residency-XXXXXX")}
mkdir -p "$work"
store=$work/model.tst

if [ ! -f "$store" ]; then
	"$gen" --size "$size" --seed "$seed" -o "$work/model.safetensors" >&2
	"$tstore" -q import --codec nvfp4 "$store" "$work/model.safetensors" >&2
	rm -f "$work/model.safetensors"
fi
[ -f "$store-profile" ] || "$tstore" calibrate "$store" >&2

stored=$(stat -c %s "$store")
budget=$((stored / 5))
echo "store $store: $stored bytes; budget $budget bytes (1/5)" >&2

for kind in zipf sweep-hot scan; do
	"$tstore" bench cache --generate "$kind" --requests "$requests" --budget "$budget" \
		--seed "$seed" -o "$work/$kind.trace" "$store"
	for policy in tiered decoded-lru decoded-only; do
		"$tstore" bench cache --trace "$work/$kind.trace" --budget "$budget" \
			--policy "$policy" --json "$store" >"$work/$kind.$policy.json"
	done
done

python3 - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
def load(kind, policy):
    return json.load(open(f"{w}/{kind}.{policy}.json"))
print(f"{'trace':10} {'policy':13} {'requests':>8} {'decoded':>8} {'compr.':>8} {'storage':>8} "
      f"{'no-stor%':>8} {'hot%':>6} {'stor MB':>8} {'model s':>8} {'meas. s':>8} {'opt':>6}")
for kind in ("zipf", "sweep-hot", "scan"):
    for policy in ("tiered", "decoded-lru", "decoded-only"):
        r = load(kind, policy)
        ns = r["served_decoded"] + r["served_compressed"]
        hot = r.get("hot_hit_ratio")
        opt = r.get("opt_hit_ratio")
        print(f"{kind:10} {policy:13} {r['requests']:8} {r['served_decoded']:8} "
              f"{r['served_compressed']:8} {r['served_storage']:8} "
              f"{100*ns/r['requests']:8.1f} {'' if hot is None else f'{100*hot:6.1f}':>6} "
              f"{r['storage_bytes']/1e6:8.1f} {r['model_seconds']:8.3f} "
              f"{r['measured_seconds']:8.3f} {'' if opt is None else f'{opt:6.3f}':>6}")
z_t, z_l = load("zipf", "tiered"), load("zipf", "decoded-lru")
ns = lambda r: r["served_decoded"] + r["served_compressed"]
print()
print(f"zipf: tiered serves {ns(z_t)/max(ns(z_l),1):.2f}x the requests without storage of "
      f"decoded-lru (target >= 1.5); measured time {z_t['measured_seconds']/z_l['measured_seconds']:.2f}x "
      f"(target <= 0.7)")
s_t, s_l = load("sweep-hot", "tiered"), load("sweep-hot", "decoded-lru")
print(f"sweep-hot: hot-set hit ratio tiered {100*s_t['hot_hit_ratio']:.1f}% (target > 90%), "
      f"decoded-lru {100*s_l['hot_hit_ratio']:.1f}%")
c_t, c_l = load("scan", "tiered"), load("scan", "decoded-lru")
print(f"scan: tiered {c_t['measured_seconds']:.3f} s vs decoded-lru {c_l['measured_seconds']:.3f} s "
      f"measured ({c_t['measured_seconds']/c_l['measured_seconds']:.2f}x, target <= 1), "
      f"{c_t['storage_bytes']/1e6:.1f} vs {c_l['storage_bytes']/1e6:.1f} MB read")
EOF
