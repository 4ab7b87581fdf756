"""NumPy arrays: tstore.numpy.load_file / save_file, as safetensors.numpy.

dtypes: an array gets its tensor's source dtype, except that BF16 and F8 sources come as
float32 (NumPy has neither); get_tensor(name, dtype=np.float16) asks for another float dtype.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from . import _lib
from ._safe import load_file as _load_file, save_file as _save_file
from ._store import F8_DTYPES as _F8, read_dtype, unchanged

_TS_TO_NP = {_lib.F32: np.float32, _lib.F16: np.float16, _lib.F64: np.float64,
             _lib.I8: np.int8, _lib.U8: np.uint8, _lib.I16: np.int16, _lib.U16: np.uint16,
             _lib.I32: np.int32, _lib.U32: np.uint32, _lib.I64: np.int64, _lib.U64: np.uint64,
             _lib.BOOL: np.bool_}
_NP_TO_TS = {np.dtype(v): k for k, v in _TS_TO_NP.items()}
_f8_tables: dict[int, np.ndarray] = {}


def f8_table(dt: int) -> np.ndarray:
    """float32 values of the 256 codes of F8 dtype @p dt (the library's own conversion for
    E4M3; E5M2 is the upper byte of an IEEE binary16)."""
    if dt not in _f8_tables:
        codes = np.arange(256, dtype=np.uint16)
        if dt == _lib.F8_E4M3:
            tab = np.array([_lib.lib.ts_e4m3_to_f32(int(c)) for c in codes], np.float32)
        else:
            tab = (codes << 8).view(np.float16).astype(np.float32)
        _f8_tables[dt] = tab
    return _f8_tables[dt]


class _Numpy:
    name = "numpy"

    @staticmethod
    def read_dtype(info, dtype: Any):
        """(ts dtype to read as, conversion of the array read) for tensor @p info."""
        src = info._dtype_id
        want = None if dtype is None else _NP_TO_TS.get(np.dtype(dtype), -1)
        native = _lib.F32 if src == _lib.BF16 else src
        dt = read_dtype(info, want, native, (_lib.F32, _lib.F16), dtype)
        if dt in _F8:
            return dt, lambda a: f8_table(dt)[a.view(np.uint8)]
        return dt, unchanged

    @staticmethod
    def empty(shape, dt: int) -> np.ndarray:
        return np.empty(shape, np.uint8 if dt in _F8 else _TS_TO_NP[dt])

    @staticmethod
    def view(mem, offset: int, shape, dt: int) -> np.ndarray:
        """An array over @p mem (a ctypes array) at byte @p offset; it keeps @p mem alive."""
        npdt = np.dtype(np.uint8 if dt in _F8 else _TS_TO_NP[dt])
        return np.frombuffer(mem, npdt, math.prod(shape), offset).reshape(shape)

    @staticmethod
    def buffer(a: np.ndarray):
        return a.ctypes.data, a.nbytes

    @staticmethod
    def contiguous(a: np.ndarray) -> np.ndarray:
        return np.array(a, order="C", copy=True)

    @staticmethod
    def flip(a: np.ndarray, dims):
        return np.flip(a, axis=tuple(dims))

    @staticmethod
    def device(device: Any):
        if device not in ("cpu", None):
            raise ValueError(f"device {device!r}: NumPy arrays live on the 'cpu'")
        return "cpu"

    @staticmethod
    def to_device(a, _device):
        return a

    @staticmethod
    def as_source(a: np.ndarray, name: str):
        dt = _NP_TO_TS.get(a.dtype)
        if dt is None:
            raise ValueError(f"tensor '{name}': dtype {a.dtype} cannot be stored (float32/16/64, "
                             "(u)int8..64, bool)")
        return np.ascontiguousarray(a), dt


_FRAMEWORK = _Numpy()


def _check_type(name: str, t) -> None:
    if not isinstance(t, np.ndarray):
        raise TypeError(f"tensor '{name}': a numpy.ndarray, not {type(t).__name__}")


def load_file(filename: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of the store @p filename as a NumPy array (dtypes: see the module)."""
    return _load_file(filename, "np")


def save_file(tensor_dict: dict[str, np.ndarray], filename: str | os.PathLike,
              metadata: dict[str, str] | None = None, codec: str = "auto",
              max_error: float = 10.0, quantize_all: bool = False) -> None:
    """Write @p tensor_dict into the store @p filename (created if absent) in one atomic
    commit, with `tstore import`'s codec policy: @p codec "auto" (the fewest bytes within
    @p max_error percent relative RMS error; lossless for 1-D, tiny, non-finite and integer
    tensors, and for token embeddings, output projections and MoE routers unless
    @p quantize_all) or a codec name for every float tensor. @p metadata (str to str) is
    stored as the store's metadata in the same commit. Existing tensors of the same names are replaced."""
    _save_file(tensor_dict, filename, metadata, codec, max_error, quantize_all, _check_type)
