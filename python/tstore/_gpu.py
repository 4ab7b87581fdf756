"""Reading onto a CUDA device (docs/GPU.md): the library reads the covering pages into pinned
buffers, copies them to the GPU and decodes them there (ts_gpu_read), on the caller's current
torch stream; the CPU decodes nothing. A build of libtstore without the GPU path raises
TstoreError (TS_ENOTSUP) saying so.

Invariants
  1. One ts_gpu_reader per store and device, made at the first read and freed before the store
     closes (Store._release); one thread at a time uses it (its lock).
  2. The tensor returned is allocated by torch on the device and written by the library on
     streams ordered after, and before, torch's current stream: using it on that stream needs
     no synchronisation.
"""

from __future__ import annotations

import ctypes
import threading

import torch

from . import _index, _lib
from ._lib import check, lib

_PT = {_lib.F32: torch.float32, _lib.BF16: torch.bfloat16, _lib.F16: torch.float16,
       _lib.F64: torch.float64, _lib.I8: torch.int8, _lib.U8: torch.uint8,
       _lib.I16: torch.int16, _lib.I32: torch.int32, _lib.I64: torch.int64,
       _lib.BOOL: torch.bool}


class Reader:
    """A ts_gpu_reader of one store on one device (invariant 1)."""

    def __init__(self, h: int, device: torch.device):
        self.device = device
        self.lock = threading.Lock()
        g = ctypes.c_void_p()
        check(lib.ts_gpu_reader_new(ctypes.byref(g), h, device.index or 0, 0, 0))
        self.g = g.value

    def close(self) -> None:
        if self.g is not None:
            lib.ts_gpu_reader_free(self.g)
            self.g = None


def _stream(device: torch.device) -> int:
    return torch.cuda.current_stream(device).cuda_stream


def _rect(shape: tuple[int, ...], start: list[int], count: list[int]):
    """The 2-D rectangle (rows, columns of the tensor's view) bounding a hyperslab whose
    leading dimensions after the first are whole, and the shape of the block it reads."""
    nd = len(shape)
    if nd == 0:
        return 0, 1, 0, 1, ()
    if nd == 1:
        return 0, 1, start[0], count[0], (count[0],)
    inner = 1
    for d in shape[1:-1]:
        inner *= d
    return (start[0] * inner, count[0] * inner, start[-1], count[-1],
            (count[0],) + tuple(shape[1:-1]) + (count[-1],))


def read(store, name: str, nb: bytes, info, index, read_dt: int, device: torch.device):
    """Tensor @p name (or the part @p index selects) decoded on @p device as @p read_dt."""
    rd = store._gpu_reader(device)  # first: a build without the GPU path says so here
    p = _index.plan(index, info.shape)
    if p.empty:
        return torch.empty(p.out_shape, dtype=_PT[read_dt], device=device)
    r0, rn, c0, cn, bshape = _rect(info.shape, p.start, p.count)
    block = torch.empty(bshape, dtype=_PT[read_dt], device=device)
    with rd.lock, store._use():
        check(lib.ts_gpu_read(rd.g, nb, r0, rn, c0, cn, read_dt, block.data_ptr(), max(cn, 1),
                              _stream(device)), name)
    # the middle dimensions were read whole: cut them here (on the device)
    for d in range(1, len(info.shape) - 1):
        if p.count[d] != info.shape[d]:
            block = block.narrow(d, p.start[d], p.count[d])
    if p.direct:
        return block.contiguous().reshape(p.out_shape)
    return _index.finish_view(block, p, lambda t, dims: torch.flip(t, dims)).contiguous()


def load_all(store, names: list[str], fw, device: torch.device) -> dict:
    """Every tensor of @p names, whole, on @p device in its native dtype (@p fw's), read in one
    pipeline (ts_gpu_read_many): the storage reads the next tensors' pages while the GPU
    decodes the pages already read. F8 sources and 0-d tensors go one by one (store.read)."""
    rd = store._gpu_reader(device)
    out, reqs, keep = {}, [], []
    for name in names:
        info = store.info(name)
        read_dt, _ = fw.read_dtype(info, None)
        if read_dt not in _PT or len(info.shape) == 0:
            out[name] = fw.to_device(store.read(name, (), "pt", None, device), device)
            continue
        t = torch.empty(info.shape, dtype=_PT[read_dt], device=device)
        out[name] = t
        if t.numel() == 0:
            continue
        nb = name.encode("utf-8")
        keep.append(nb)
        r0, rn, c0, cn, _ = _rect(info.shape, [0] * len(info.shape), list(info.shape))
        reqs.append(_lib.gpu_request(nb, r0, rn, c0, cn, read_dt, t.data_ptr(), cn))
    if reqs:
        arr = (_lib.gpu_request * len(reqs))(*reqs)
        with rd.lock, store._use():
            check(lib.ts_gpu_read_many(rd.g, arr, len(reqs), _stream(device)))
    return {name: out[name] for name in names}


def read_nvfp4(store, name: str, nb: bytes, info, device: torch.device):
    """ModelOpt's NVFP4 triple of 2-D nvfp4 tensor @p name on @p device: codes uint8
    [rows, cols/2], block scales float8_e4m3fn [rows, cols/16], the float32 global scale."""
    if info.codec != "nvfp4" or len(info.shape) != 2 or info.shape[1] % 16:
        raise ValueError(f"tensor '{name}' ({info.codec}, shape {list(info.shape)}) has no "
                         "ModelOpt NVFP4 form: a 2-D nvfp4 tensor whose columns are a "
                         "multiple of 16")
    rd = store._gpu_reader(device)
    rows, cols = info.shape
    codes = torch.empty((rows, cols // 2), dtype=torch.uint8, device=device)
    scales = torch.empty((rows, cols // 16), dtype=torch.uint8, device=device)
    with rd.lock, store._use():
        check(lib.ts_gpu_read_encoded(rd.g, nb, 0, rows, codes.data_ptr(), scales.data_ptr(),
                                      _stream(device)), name)
    scale2 = torch.tensor(info.tensor_scale, dtype=torch.float32).to(device)
    return codes, scales.view(torch.float8_e4m3fn), scale2
