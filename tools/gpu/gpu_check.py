#!/usr/bin/env python3
"""The GPU path on a CUDA machine (docs/GPU.md): bit-exactness of the GPU decode against the CPU
decode for every codec, output dtype, odd shapes and slices; the NVFP4 triple against
`tstore export --layout modelopt`; the decode kernel's throughput; and the load of a >= 1 GB
BF16 checkpoint stored as NVFP4 against safetensors' load of its source, in the same run.
Prints a short table last. Run by tools/gpu/gpu_check.sh after the build.

    gpu_check.py BUILDDIR WORKDIR [--gb 1.1]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("work")
ap.add_argument("--gb", type=float, default=1.1, help="size of the BF16 source checkpoint")
args = ap.parse_args()
os.environ.setdefault("TSTORE_LIBRARY", os.path.join(args.build, ".libs", "libtstore.so"))

import tstore  # noqa: E402
import tstore.torch  # noqa: E402
from tstore import _lib  # noqa: E402
from safetensors.torch import load_file as st_load, save_file as st_save  # noqa: E402

CLI = os.path.join(args.build, "tools", "tstore")
dev = torch.device("cuda:0")
os.makedirs(args.work, exist_ok=True)
rows_out = []  # (what, result)
failures = []


def note(what, ok, detail=""):
    rows_out.append((what, ("ok " if ok else "FAIL ") + detail))
    if not ok:
        failures.append(what)
    print(f"{'ok  ' if ok else 'FAIL'} {what} {detail}", flush=True)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a, b = a.contiguous(), b.contiguous()
    if a.dtype.is_floating_point:
        iv = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        a, b = a.view(iv), b.view(iv)
    return bool(torch.equal(a.cpu(), b.cpu()))


print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0),
      "| tstore", tstore.__version__, "gpu_available", tstore.gpu_available(), flush=True)

# -- 1. bit-exactness: every codec x dtype, odd shapes, slices -----------------------------------
g = torch.Generator().manual_seed(1234)
shapes = [(1, 15), (1, 17), (3, 33), (15, 17), (7, 1), (33, 1100), (2, 3, 5, 33), (4096,),
          (300, 2048)]
codecs = ["nvfp4", "mxfp4", "int8", "fp8", "raw", "lossless"]
sp = os.path.join(args.work, "codecs.tst")
if os.path.exists(sp):
    subprocess.run(["rm", "-rf", sp], check=True)
with tstore.open(sp, "a") as st:
    for c in codecs:
        for i, shp in enumerate(shapes):
            for src in (torch.bfloat16, torch.float32, torch.float16):
                x = torch.randn(shp, generator=g).to(src)
                if c == "lossless":
                    x = x * (torch.rand(shp, generator=g) < 0.8)  # some zeros: planes mode
                st.write(f"{c}.{i}.{str(src)[6:]}", x, codec=c, quantize_all=True)
names_checked = 0
with tstore.safe_open(sp, "pt") as fc, tstore.safe_open(sp, "pt", device=dev) as fg:
    bad = []
    for name in fc.keys():
        info = fc.store.info(name)
        for dt in (None, torch.float32, torch.bfloat16, torch.float16):
            want = fc.get_tensor(name, dtype=dt)
            got = fg.get_tensor(name, dtype=dt)
            torch.cuda.synchronize()
            if got.device.type != "cuda" or not same_bits(got, want):
                bad.append(f"{name}/{dt}")
            names_checked += 1
        shp = info.shape
        if len(shp) >= 2 and shp[-1] > 2 and shp[0] > 1:  # slices: rows, columns, steps
            sc, sg = fc.get_slice(name), fg.get_slice(name)
            for idx in ((slice(1, None),), (..., slice(1, shp[-1] - 1)),
                        (slice(None, None, 2), ..., slice(shp[-1] // 2, None)), (0,),
                        (slice(None, None, -1),)):
                if not same_bits(sg[idx], sc[idx]):
                    bad.append(f"{name}[{idx}]")
    note(f"GPU decode == CPU decode ({len(codecs)} codecs x 3 sources x {len(shapes)} shapes "
         f"x 4 dtypes, slices)", not bad, f"{names_checked} reads" + (f"; bad: {bad[:6]}"
                                                                        if bad else ""))

# -- 2. the NVFP4 triple vs export --layout modelopt ---------------------------------------------
tp = os.path.join(args.work, "nvfp4.tst")
subprocess.run(["rm", "-rf", tp], check=True)
w = {f"m.{i}.weight": torch.randn(r, c, generator=g).to(torch.bfloat16)
     for i, (r, c) in enumerate([(1, 16), (17, 48), (300, 2048), (1000, 1104)])}
src = os.path.join(args.work, "nvfp4_src.safetensors")
st_save(w, src)
subprocess.run([CLI, "import", "--codec", "nvfp4", tp, src], check=True, stdout=subprocess.DEVNULL)
mo = os.path.join(args.work, "mo.safetensors")
subprocess.run([CLI, "export", "--layout", "modelopt", tp, mo], check=True,
               stdout=subprocess.DEVNULL)
ref = st_load(mo)
bad = []
with tstore.safe_open(tp, "pt", device=dev) as f:
    for n in w:
        codes, scales, s2 = f.get_tensor(n, dtype="nvfp4")
        torch.cuda.synchronize()
        if not (same_bits(codes, ref[n]) and same_bits(scales.view(torch.uint8),
                                                       ref[n + "_scale"].view(torch.uint8))
                and same_bits(s2.reshape(ref[n + "_scale_2"].shape), ref[n + "_scale_2"])):
            bad.append(n)
note("NVFP4 triple == export --layout modelopt", not bad, f"{len(w)} tensors {bad}")

# -- 3. decode kernel throughput: NVFP4 -> BF16 from device memory ------------------------------
lib = _lib.lib
cfg = lib.ts_codec_config_default(_lib.CODEC_NVFP4)
R, C = 16384, 16384
nb = C // 16
payload = torch.empty(R * (C // 2 + nb), dtype=torch.uint8, device=dev)
payload[: R * C // 2].random_(0, 256)
payload[R * C // 2:].random_(0x08, 0x7e)  # normal E4M3 scales
out = torch.empty((R, C), dtype=torch.bfloat16, device=dev)
stream = torch.cuda.current_stream(dev).cuda_stream


def decode_once():
    _lib.check(lib.ts_gpu_decode(ctypes.byref(cfg), ctypes.c_float(0.01), payload.data_ptr(),
                                 payload.numel(), R, C, _lib.BF16, out.data_ptr(), C, stream))


for _ in range(3):
    decode_once()
torch.cuda.synchronize()
times = []
for _ in range(20):
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    decode_once()
    b.record()
    b.synchronize()
    times.append(a.elapsed_time(b) / 1e3)
times.sort()
t = times[len(times) // 2]
moved = payload.numel() + out.numel() * 2
tbps = moved / t / 1e12
# the same payload decoded on the CPU, row block 0..255, must match
cpu = torch.empty((256, C), dtype=torch.bfloat16)
sub = torch.cat([payload[: 256 * C // 2], payload[R * C // 2: R * C // 2 + 256 * nb]]).cpu()
lib.ts_codec_decode.restype = ctypes.c_int
lib.ts_codec_decode.argtypes = [ctypes.POINTER(_lib.codec_config), ctypes.c_float, ctypes.c_void_p,
                                ctypes.c_size_t, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_int,
                                ctypes.c_void_p, ctypes.c_uint64]
_lib.check(lib.ts_codec_decode(ctypes.byref(cfg), 0.01, sub.data_ptr(), sub.numel(), 256, C,
                               _lib.BF16, cpu.data_ptr(), C))
note("decode kernel NVFP4->BF16 16384x16384 (median of 20)", tbps >= 2.5 and
     same_bits(out[:256], cpu), f"{t * 1e3:.3f} ms, {tbps:.2f} TB/s read+written")
decode_tbps = tbps
del payload, out
# the ceiling: a device-to-device copy, bytes read + written
a_, b_ = torch.empty(1 << 31, dtype=torch.uint8, device=dev), torch.empty(1 << 31, dtype=torch.uint8,
                                                                           device=dev)
for _ in range(3):
    b_.copy_(a_)
ev0, ev1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
ev0.record()
for _ in range(10):
    b_.copy_(a_)
ev1.record()
ev1.synchronize()
rows_out.append(("device-to-device copy (the ceiling)",
                 f"{2 * a_.numel() * 10 / (ev0.elapsed_time(ev1) / 1e3) / 1e12:.2f} TB/s"))
del a_, b_

# -- 4. load a >= 1 GB BF16 checkpoint stored as NVFP4 vs safetensors of the source -------------
src = os.path.join(args.work, "big.safetensors")
store = os.path.join(args.work, "big.tst")
per = 4096 * 5504 * 2
n_t = int(args.gb * 1e9 / per) + 1
big = {f"model.layers.{i}.mlp.up_proj.weight": torch.randn(4096, 5504, generator=g)
       .to(torch.bfloat16) for i in range(n_t)}
st_save(big, src)
del big
subprocess.run(["rm", "-rf", store], check=True)
t0 = time.perf_counter()
subprocess.run([CLI, "import", "--codec", "nvfp4", store, src], check=True,
               stdout=subprocess.DEVNULL)
t_import = time.perf_counter() - t0
src_bytes = os.path.getsize(src)
store_bytes = os.path.getsize(store) if os.path.isfile(store) else sum(
    os.path.getsize(os.path.join(store, x)) for x in os.listdir(store))


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    r = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0, r


dropped = drop_caches()
# cold: page cache dropped before each load (tstore reads with O_DIRECT by default, so for it
# "warm" changes nothing: its warm figure is through the page cache, TSTORE_IO=mmap)
results = {"safetensors": [], "tstore": [], "safetensors warm": [], "tstore warm (mmap)": []}
for rep in range(3):
    for which in ("safetensors", "tstore"):
        cold = drop_caches()
        if which == "safetensors":
            dt, r = timed(lambda: st_load(src, device="cuda:0"))
        else:
            dt, r = timed(lambda: tstore.torch.load_file(store, device="cuda:0"))
        results[which].append((dt, cold))
        del r
        torch.cuda.empty_cache()
for rep in range(3):
    dt, r = timed(lambda: st_load(src, device="cuda:0"))
    results["safetensors warm"].append((dt, False))
    del r
    os.environ["TSTORE_IO"] = "mmap"
    dt, r = timed(lambda: tstore.torch.load_file(store, device="cuda:0"))
    del os.environ["TSTORE_IO"]
    results["tstore warm (mmap)"].append((dt, False))
    del r
    torch.cuda.empty_cache()
print("load times (s, cold=page cache dropped):", results, flush=True)


def direct_read(path: str) -> float:
    """Seconds of an O_DIRECT read of @p path (dd iflag=direct bs=8M), page cache dropped."""
    drop_caches()
    t0 = time.perf_counter()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=8M", "iflag=direct"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


if os.path.isfile(store):
    d_store = min(direct_read(store) for _ in range(3))
    d_src = min(direct_read(src) for _ in range(3))
    rows_out.append(("O_DIRECT read (dd bs=8M, min of 3): store | source",
                     f"{d_store:.3f} s ({store_bytes / d_store / 1e9:.2f} GB/s) | {d_src:.3f} s "
                     f"({src_bytes / d_src / 1e9:.2f} GB/s)"))
# bit-exact: every tensor of the checkpoint, GPU decode == CPU decode
bad = 0
with tstore.safe_open(store, "pt") as fc, tstore.safe_open(store, "pt", device=dev) as fg:
    for n in fc.keys():
        if not same_bits(fg.get_tensor(n), fc.get_tensor(n)):
            bad += 1
    n_all = len(fc.keys())
    loaded = tstore.torch.load_file(store, device=dev)  # one ts_gpu_read_many of every tensor
    bad_lf = sum(not same_bits(loaded[n], fc.get_tensor(n)) for n in fc.keys())
    del loaded
note(f"load_file: every tensor of the one-call load == CPU decode ({n_all} tensors)",
     bad_lf == 0, f"{bad_lf} differ")
note(f"checkpoint: every tensor GPU == CPU decode ({n_all} tensors)", bad == 0, f"{bad} differ")
med = {k: sorted(x[0] for x in v)[len(v) // 2] for k, v in results.items()}
cold_ok = all(c for _, c in results["safetensors"] + results["tstore"])
sp_cold = med["safetensors"] / med["tstore"]
note(f"load {src_bytes / 1e9:.2f} GB BF16 (as NVFP4 {store_bytes / 1e9:.2f} GB) to GPU, "
     f"{'page cache dropped' if cold_ok else 'page cache NOT dropped'} (median of 3)",
     sp_cold >= 2.5, f"tstore {med['tstore']:.3f} s, safetensors {med['safetensors']:.3f} s: "
     f"{sp_cold:.2f}x")
sp_warm = med["safetensors warm"] / med["tstore warm (mmap)"]
rows_out.append(("load, both from the page cache (tstore TSTORE_IO=mmap), median of 3",
                 f"tstore {med['tstore warm (mmap)']:.3f} s, safetensors "
                 f"{med['safetensors warm']:.3f} s: {sp_warm:.2f}x"))

print("\n=== tstore GPU check:", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
      torch.cuda.get_device_name(0), "===")
w1 = max(len(a) for a, _ in rows_out)
for a, b in rows_out:
    print(f"{a:<{w1}}  {b}")
print(f"import (CPU, nvfp4) {t_import:.1f} s; drop_caches {'works' if dropped else 'refused'}")
sys.exit(1 if failures else 0)
