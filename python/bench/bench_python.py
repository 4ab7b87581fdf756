"""make bench-python: the Python package against the C API (issue 10's targets).

  1. tstore.numpy.load_file and tstore.torch.load_file of a ~300 MB BF16 checkpoint stored as
     NVFP4, against bench_load (C: ts_read_slice of every tensor into fresh malloc'd memory,
     as float32 resp. the source dtype), each in a fresh process, alternated, median of
     --repeat runs; target: Python / C <= 1.11.
  2. Peak memory of each load: VmHWM - VmRSS before the load - the bytes returned; target:
     <= 64 MiB.
  3. load_shard of a 4096 x 4096 NVFP4 tensor, world size 8: bytes read from storage by each
     rank's row shard (dim 0) and column shard (dim 1) over the shard's share of the stored
     bytes (worst rank); target: <= 1.3.
The store file is in the page cache for 1 and 2 (both sides alike): they measure the
package's overhead over the library, not the disk. CPU time (every thread of the process) is
printed beside the wall time: on a shared machine it is the steadier of the two.
    TS_BUILDDIR=build python3 python/bench/bench_python.py [--repeat N] [--dir DIR]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

B = os.environ.get("TS_BUILDDIR", os.getcwd())
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, TSTORE_LIBRARY=os.path.join(B, ".libs", "libtstore.so"),
           PYTHONPATH=os.path.join(TOP, "python"), PYTHONDONTWRITEBYTECODE="1",
           LD_LIBRARY_PATH=os.path.join(B, ".libs"))

CHILD = r"""
import sys, time
def kib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
fw, path = sys.argv[1], sys.argv[2]
import numpy
if fw == "torch":
    import torch, tstore.torch as m
else:
    import tstore.numpy as m
before = kib("VmRSS:")
t0, c0 = time.perf_counter(), time.process_time()
d = m.load_file(path)
t, c = time.perf_counter() - t0, time.process_time() - c0
n = sum((v.numel() * v.element_size()) if fw == "torch" else v.nbytes for v in d.values())
print(f"seconds={t:.6f} cpu={c:.6f} bytes={n} tensors={len(d)} rss_before_kib={before} hwm_kib={kib('VmHWM:')}")
"""


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if p.returncode:
        sys.exit(f"bench_python: {cmd[0]} failed: {p.stderr}")
    return p.stdout


def runs(rs):
    return " ".join("%.3f" % r["seconds"] for r in rs)


def parse(line):
    return {k: float(v) for k, v in (f.split("=") for f in line.split())}


def tool(rel):
    real = os.path.join(B, os.path.dirname(rel), ".libs", os.path.basename(rel))
    return real if os.path.exists(real) else os.path.join(B, rel)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--layers", type=int, default=8, help="gen_checkpoint --layers (8: 312 MB)")
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix="tstore-bench-py.")
    os.makedirs(d, exist_ok=True)
    src, store = os.path.join(d, "model.safetensors"), os.path.join(d, "model.tst")
    cli = tool("tools/tstore")
    if not os.path.exists(store):
        run([os.path.join(B, "tools/gen_checkpoint"), "-q", "--layers", str(a.layers), "-o", src])
        run([cli, "import", "-q", "--codec", "nvfp4", store, src])
        os.unlink(src)
    cbench = tool("python/bench/bench_load")
    print(f"store: {store}, {os.path.getsize(store) / 1e6:.1f} MB (import --codec nvfp4: "
          "every float tensor NVFP4)")
    with open(store, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass

    res = {k: [] for k in ("c-f32", "c-f32-thp", "numpy", "c-source", "torch")}
    for _ in range(a.repeat):
        res["c-f32"].append(parse(run([cbench, "f32", store])))
        res["c-f32-thp"].append(parse(run([cbench, "thp", "f32", store])))
        res["numpy"].append(parse(run([sys.executable, "-c", CHILD, "numpy", store])))
        res["c-source"].append(parse(run([cbench, "source", store])))
        res["torch"].append(parse(run([sys.executable, "-c", CHILD, "torch", store])))
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in res.items()}
    cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in res.items()}
    ok = True
    for py, c in (("numpy", "c-f32"), ("numpy", "c-f32-thp"), ("torch", "c-source")):
        ratio = med[py] / med[c]
        ok &= ratio <= 1.11
        gb = res[py][0]["bytes"] / 1e9
        print(f"load_file {py:5s}: {med[py]:.3f} s ({gb / med[py]:.2f} GB/s out) vs {c} "
              f"{med[c]:.3f} s: {ratio:.3f}x (target <= 1.11) "
              f"[runs: {runs(res[py])} | {runs(res[c])}]; CPU time {cpu[py]:.3f} s vs "
              f"{cpu[c]:.3f} s: {cpu[py] / cpu[c]:.3f}x")
    for k in ("numpy", "torch", "c-f32", "c-f32-thp", "c-source"):
        over = max((r["hwm_kib"] - r["rss_before_kib"]) * 1024 - r["bytes"] for r in res[k])
        if k in ("numpy", "torch"):
            ok &= over <= 64 << 20
        print(f"peak memory {k:9s}: tensors {res[k][0]['bytes'] / 2**20:.0f} MiB + "
              f"{over / 2**20:.1f} MiB (target <= 64 MiB for load_file)")

    shard_store = os.path.join(d, "w4096.tst")
    worst = shard_bench(shard_store)
    for dim, r in worst.items():
        ok &= r <= 1.3
        print(f"load_shard 1/8 {'row' if dim == 0 else 'column'} shard of 4096x4096 NVFP4: "
              f"reads {r:.3f}x its share of the stored bytes, worst rank (target <= 1.3)")
    print("bench-python:", "all targets met" if ok else "TARGETS MISSED")


def shard_bench(path):
    sys.path.insert(0, os.path.join(TOP, "python"))
    os.environ.update(TSTORE_LIBRARY=ENV["TSTORE_LIBRARY"])
    import numpy as np
    import torch
    import tstore
    import tstore.torch
    if not os.path.exists(path):
        x = torch.from_numpy(np.random.default_rng(4).standard_normal((4096, 4096), np.float32))
        tstore.torch.save_file({"w": x.to(torch.bfloat16)}, path, codec="nvfp4")
    worst = {}
    for dim in (0, 1):
        for rank in range(8):
            with tstore.safe_open(path, "pt") as f:
                share = f.store.info("w").stored_bytes / 8
                before = f.store.cache_stats()["storage_bytes"]
                tstore.torch.load_shard(f, "w", dim, rank, 8)
                read = f.store.cache_stats()["storage_bytes"] - before
            worst[dim] = max(worst.get(dim, 0), read / share)
    return worst


if __name__ == "__main__":
    t = time.time()
    main()
    print(f"bench-python: {time.time() - t:.0f} s")
