"""PyTorch tensors: tstore.torch.load_file / save_file, as safetensors.torch, and load_shard
for tensor parallelism.

dtypes: a tensor gets its tensor's source dtype (bfloat16, float16, float32, float64; ints and
bool as stored), except F8 sources, which come as float32 (torch 1.13 has no float8); U16, U32
and U64 tensors cannot be loaded as torch tensors (use tstore.numpy). get_tensor(name,
dtype=torch.float32) asks for another float dtype of an F32/BF16/F16 tensor.
"""

from __future__ import annotations

import math
import os
from typing import Any, Union


import torch

from .. import _lib
from .._safe import load_file as _load_file, safe_open, save_file as _save_file
from .._store import F8_DTYPES as _F8, read_dtype, unchanged
from ..numpy import f8_table

_TS_TO_PT = {_lib.F32: torch.float32, _lib.BF16: torch.bfloat16, _lib.F16: torch.float16,
             _lib.F64: torch.float64, _lib.I8: torch.int8, _lib.U8: torch.uint8,
             _lib.I16: torch.int16, _lib.I32: torch.int32, _lib.I64: torch.int64,
             _lib.BOOL: torch.bool}
_PT_TO_TS = {v: k for k, v in _TS_TO_PT.items()}


class _Torch:
    name = "torch"

    @staticmethod
    def read_dtype(info, dtype: Any):
        src = info._dtype_id
        if src not in _TS_TO_PT and src not in _F8:
            raise ValueError(f"tensor '{info.name}' is {info.dtype}: torch has no such dtype "
                             "(read it with framework='np')")
        want = None if dtype is None else _PT_TO_TS.get(dtype, -1)
        dt = read_dtype(info, want, src, (_lib.F32, _lib.F16, _lib.BF16), dtype)
        if dt in _F8:
            return dt, lambda t: torch.from_numpy(f8_table(dt)[t.numpy()])
        return dt, unchanged

    @staticmethod
    def empty(shape, dt: int) -> torch.Tensor:
        return torch.empty(shape, dtype=torch.uint8 if dt in _F8 else _TS_TO_PT[dt])

    @staticmethod
    def view(mem, offset: int, shape, dt: int) -> torch.Tensor:
        """A tensor over @p mem (a ctypes array) at byte @p offset; it keeps @p mem alive."""
        tdt = torch.uint8 if dt in _F8 else _TS_TO_PT[dt]
        return torch.frombuffer(mem, dtype=tdt, count=math.prod(shape),
                                offset=offset).reshape(shape)

    @staticmethod
    def buffer(t: torch.Tensor):
        return t.data_ptr(), t.numel() * t.element_size()

    @staticmethod
    def contiguous(t: torch.Tensor) -> torch.Tensor:
        return t.contiguous()

    @staticmethod
    def flip(t: torch.Tensor, dims):
        return torch.flip(t, dims)

    @staticmethod
    def device(device: Any) -> torch.device:
        return torch.device(device if device is not None else "cpu")

    @staticmethod
    def to_device(t, device: torch.device):
        if isinstance(t, tuple):  # ModelOpt's NVFP4 triple, made on its device
            return t
        return t if device.type == "cpu" else t.to(device)

    @staticmethod
    def as_source(t: torch.Tensor, name: str):
        dt = _PT_TO_TS.get(t.dtype)
        if dt is None:
            raise ValueError(f"tensor '{name}': dtype {t.dtype} cannot be stored")
        t = t.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:  # NumPy has no bfloat16: the same bytes as int16
            return t.view(torch.int16).numpy(), dt
        return t.numpy(), dt


_FRAMEWORK = _Torch()


def _check_type(name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"tensor '{name}': a torch.Tensor, not {type(t).__name__}")


def load_file(filename: str | os.PathLike, device: Any = "cpu") -> dict[str, torch.Tensor]:
    """Every tensor of the store @p filename as a torch tensor on @p device (dtypes: see the
    module). Each is decoded straight into the memory of the tensor returned."""
    return _load_file(filename, "pt", device)


def save_file(tensors: dict[str, torch.Tensor], filename: str | os.PathLike,
              metadata: dict[str, str] | None = None, codec: str = "auto",
              max_error: float = 10.0, quantize_all: bool = False) -> None:
    """Write @p tensors into the store @p filename (created if absent) in one atomic commit,
    with `tstore import`'s codec policy (see tstore.numpy.save_file). Tensors on another
    device are copied to the CPU first; non-contiguous ones are made contiguous."""
    _save_file(tensors, filename, metadata, codec, max_error, quantize_all, _check_type)


def shard_range(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of rank's part of @p size elements split into @p world_size contiguous
    parts, the first size % world_size parts one element longer (torch.tensor_split's rule)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} of world_size {world_size}: need 0 <= rank < world_size")
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def load_shard(path: Union[str, os.PathLike, safe_open], name: str, dim: int, rank: int,
               world_size: int, device: Any = "cpu", dtype: Any = None) -> torch.Tensor:
    """Rank @p rank's contiguous 1/@p world_size of tensor @p name along @p dim (0: rows, a
    row-parallel shard of a linear weight [out, in] is dim 1; column-parallel is dim 0), read
    straight into the returned tensor: only the pages covering the shard are read.
    @p path may be an open safe_open(..., "pt") to load many shards through one handle.
    Uneven sizes split as torch.tensor_split does."""
    if isinstance(path, safe_open):
        return _shard(path, name, dim, rank, world_size, dtype)
    with safe_open(path, "pt", device) as f:
        return _shard(f, name, dim, rank, world_size, dtype)


def _shard(f: safe_open, name: str, dim: int, rank: int, world_size: int, dtype: Any):
    shape = f.store.info(name).shape
    if not -len(shape) <= dim < len(shape):
        raise IndexError(f"dim {dim} of tensor '{name}' of shape {list(shape)}")
    dim %= len(shape)
    start, stop = shard_range(shape[dim], rank, world_size)
    index = tuple(slice(start, stop) if d == dim else slice(None) for d in range(len(shape)))
    return f._fw.to_device(f.store.read(name, index, "pt", dtype), f._device)



