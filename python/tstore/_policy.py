"""Which codec a tensor is written with: the policy of `tstore import` (tools/cli/cmd_import.c,
docs/CLI.md), so that save_file() and the command store the same tensors the same way.

  - integer and bool tensors (and F64, F8): raw, lossless, in their own dtype;
  - codec "auto" on F32/BF16/F16 tensors: kept exact (the lossless codec in the source dtype,
    or raw where lossless is not smaller) with max_error 0, or if the name is a
    token embedding, output projection or MoE router (the library's ts_policy_keep_reason(),
    which import uses too; not with quantize_all), if 1-D or scalar, under 4096 elements, or holding NaN/Inf;
    otherwise the analyzer's choice (ts_analyze: the fewest bytes within max_error percent
    relative RMS error) measured on at most 1M elements of evenly spaced whole rows,
    the whole tensor re-analysed and rewritten if the written tensor misses the bound;
  - a named codec: that codec on every F32/BF16/F16 tensor (raw: in the source dtype); NaN or
    Inf under a lossy codec is a ValueError.

The amax and non-finite scan works on the bit patterns, as import's does (magnitudes of finite
IEEE values order like integers), in bounded chunks.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from . import _lib
from ._lib import lib

TINY_ELEMENTS = 4096
SAMPLE_ELEMENTS = 1 << 20
SCAN_CHUNK = 1 << 20  # elements per scan step (bounded temporary memory)


def keep_reason(name: str) -> str | None:
    """Why the default policy keeps tensor @p name exact ("token embedding", "output
    projection", "MoE router"), or None: the library's rules (ts_policy_keep_reason), the ones
    `tstore import` applies. python/tests/test_roundtrip.py holds save_file's choices to
    import's."""
    reason = lib.ts_policy_keep_reason(name.encode())
    return reason.decode() if reason is not None else None


_FLOAT_BITS = {  # ts dtype -> (unsigned view, magnitude mask, exponent mask, to float32)
    _lib.F32: (np.uint32, 0x7FFFFFFF, 0x7F800000,
               lambda m: float(np.array([m], np.uint32).view(np.float32)[0])),
    _lib.BF16: (np.uint16, 0x7FFF, 0x7F80,
                lambda m: float(np.array([m << 16], np.uint32).view(np.float32)[0])),
    _lib.F16: (np.uint16, 0x7FFF, 0x7C00,
               lambda m: float(np.array([m], np.uint16).view(np.float16)[0])),
}


@dataclass
class Source:
    """A tensor to write, as a C-contiguous NumPy array sharing the caller's memory (a
    torch BF16 tensor is seen through an int16 view) and its ts dtype."""
    array: np.ndarray
    dtype: int
    shape: tuple[int, ...]
    amax: float = 0.0
    nonfinite: int = 0

    @property
    def is_float(self) -> bool:
        return self.dtype in _FLOAT_BITS

    @property
    def ptr(self) -> int:
        return self.array.ctypes.data

    @property
    def nbytes(self) -> int:
        return self.array.nbytes


def source(tensor, name: str) -> Source:
    """The Source of a NumPy array or torch tensor; TypeError/ValueError for anything else."""
    mod = type(tensor).__module__
    if mod.startswith("torch"):
        from . import torch as fw
    elif isinstance(tensor, np.ndarray):
        from . import numpy as fw
    else:
        raise TypeError(f"tensor '{name}': a numpy.ndarray or torch.Tensor, not "
                        f"{type(tensor).__name__}")
    arr, dt = fw._FRAMEWORK.as_source(tensor, name)
    src = Source(arr, dt, tuple(int(d) for d in tensor.shape))
    if src.is_float:
        src.amax, src.nonfinite = _scan(arr, dt)
    return src


def _scan(arr: np.ndarray, dt: int) -> tuple[float, int]:
    utype, mag_mask, exp_mask, to_float = _FLOAT_BITS[dt]
    flat = arr.reshape(-1).view(utype)
    best, bad = 0, 0
    for i in range(0, flat.size, SCAN_CHUNK):
        mag = flat[i:i + SCAN_CHUNK] & utype(mag_mask)
        nonfinite = mag >= utype(exp_mask)
        n = int(np.count_nonzero(nonfinite))
        if n:
            bad += n
            mag = mag[~nonfinite]
        if mag.size:
            best = max(best, int(mag.max()))
    return to_float(best), bad


def raw_config(dt: int) -> _lib.codec_config:
    cfg = lib.ts_codec_config_default(_lib.CODEC_RAW)
    cfg.raw_dtype = dt
    cfg.bits_per_value = 8 * _lib.dtype_size(dt)
    return cfg


def exact_config(dt: int) -> _lib.codec_config:
    """How a float tensor kept exact is stored: the library's ts_policy_exact_config(), as
    import stores it, the lossless codec in the source dtype (rewritten raw where that is not
    smaller: Plan.next_config)."""
    cfg = _lib.codec_config()
    _lib.check(lib.ts_policy_exact_config(ctypes.byref(cfg), dt))
    return cfg


class Plan:
    """The codec decision for one Source under the (codec, max_error) of a write."""

    def __init__(self, src: Source, codec: str, max_error: float, name: str,
                 quantize_all: bool = False):
        if not (0 <= max_error <= 100):
            raise ValueError(f"max_error {max_error!r}: a percentage in [0, 100] (0: every "
                             "floating-point tensor lossless)")
        self.src, self.max_error = src, max_error
        self.codec = None if codec == "auto" else _lib.codec_id(codec)
        nelem = int(np.prod(src.shape, dtype=np.uint64)) if src.shape else 1
        self.analyse = False
        self.exact = False  # kept exact by the policy: lossless where that is smaller
        if not src.is_float:
            self.cfg = raw_config(src.dtype)
        elif self.codec is not None:
            if self.codec == _lib.CODEC_RAW:
                self.cfg = raw_config(src.dtype)
            elif self.codec == _lib.codec_id("lossless"):
                self.cfg = exact_config(src.dtype)
            else:
                if src.nonfinite:
                    raise ValueError(f"tensor '{name}' holds {src.nonfinite} NaN or Inf values: "
                                     f"codec {codec} cannot encode it (use 'auto' or 'lossless')")
                self.cfg = lib.ts_codec_config_default(self.codec)
        elif max_error == 0 or (not quantize_all and keep_reason(name)) or \
                len(src.shape) <= 1 or nelem < TINY_ELEMENTS or src.nonfinite:
            self.cfg = exact_config(src.dtype)
            self.exact = True
        else:
            self.analyse = True

    def _analyse(self, whole: bool) -> _lib.codec_config:
        src = self.src
        cols = src.shape[-1]
        rows = src.array.size // cols
        m = src.array.reshape(rows, cols)
        if not whole and m.size > SAMPLE_ELEMENTS and rows > 1:
            srows = max(1, SAMPLE_ELEMENTS // cols)
            m = np.ascontiguousarray(m[[i * rows // srows for i in range(srows)]])
        cfg_in = lib.ts_codec_config_default(_lib.CODEC_NVFP4)
        cfg_in.max_error_pct = self.max_error
        out = _lib.codec_config()
        _lib.check(lib.ts_analyze(ctypes.byref(out), None, ctypes.byref(cfg_in), m.ctypes.data,
                                  src.dtype, m.shape[0], cols))
        return out

    def first_config(self) -> _lib.codec_config:
        if not self.analyse:
            return self.cfg
        cfg = self._analyse(False)
        if cfg.codec == _lib.CODEC_RAW and cfg.raw_dtype == self.src.dtype:
            self.exact = True  # no lossy codec within the bound: kept exact
            return exact_config(self.src.dtype)
        return cfg

    def next_config(self, stored_bytes: int, rel_rms_pct: float, cfg: _lib.codec_config):
        """The configuration to write the tensor again with, once written as @p cfg, or None:
        raw when lossless did not pay; the whole tensor's analysis when the sample misled
        the analyser (the written tensor misses the bound)."""
        if self.exact and stored_bytes >= self.src.nbytes:
            return raw_config(self.src.dtype)
        if self.analyse and cfg.codec != _lib.CODEC_RAW and rel_rms_pct > self.max_error:
            return self._analyse(True)
        return None
