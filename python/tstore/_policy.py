"""Which codec a tensor is written with: the policy of `tstore import` (docs/CLI.md), which
the library decides (ts_policy_choose and ts_policy_next, codec/policy.c) for both, so that
save_file() and the command store the same tensors the same way. What it decides:

  - integer and bool tensors (and F64, F8): raw, lossless, in their own dtype;
  - codec "auto" on F32/BF16/F16 tensors: kept exact (the lossless codec in the source dtype,
    or raw where lossless is not smaller) with max_error 0, or if the name is a
    token embedding, output projection or MoE router (ts_policy_keep_reason(); not with
    quantize_all), if 1-D or scalar, under 4096 elements, or holding NaN/Inf;
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

SCAN_CHUNK = 1 << 20  # elements per scan step (bounded temporary memory)


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


def small_exact(src: Source) -> bool:
    """True if the auto policy keeps @p src exact for its size alone (1-D, scalar, or fewer
    than TS_POLICY_TINY_ELEMENTS elements): the library's rules, as for every other choice."""
    if not src.is_float:
        return False
    plan = Plan(src, "auto", 10.0, "", quantize_all=True)
    return plan.rule in (_lib.POLICY_EXACT_1D, _lib.POLICY_EXACT_TINY)


class Plan:
    """The codec decision for one Source under the (codec, max_error) of a write: the
    library's (ts_policy_choose, then ts_policy_next once it is written)."""

    def __init__(self, src: Source, codec: str, max_error: float, name: str,
                 quantize_all: bool = False):
        if not (0 <= max_error <= 100):
            raise ValueError(f"max_error {max_error!r}: a percentage in [0, 100] (0: every "
                             "floating-point tensor lossless)")
        self.src, self.name, self.codec_name = src, name, codec
        self.opts = _lib.policy_opts()
        lib.ts_policy_opts_init(ctypes.byref(self.opts))
        self.opts.codec = -1 if codec == "auto" else _lib.codec_id(codec)
        self.opts.max_error_pct = max_error
        self.opts.flags = _lib.POLICY_QUANTIZE_ALL if quantize_all else 0
        self.opts.nonfinite = src.nonfinite
        self._analysed = None  # keeps the analyser's choice alive while opts points at it
        self.cfg, self.rule = self._choose()

    def _choose(self) -> tuple[_lib.codec_config, int]:
        src = self.src
        cfg, rule = _lib.codec_config(), ctypes.c_int()
        rc = lib.ts_policy_choose(ctypes.byref(cfg), ctypes.byref(rule), self.name.encode(),
                                  src.dtype, len(src.shape), _lib.u64_array(src.shape),
                                  ctypes.byref(self.opts))
        if rc == _lib.ENONFINITE:
            raise ValueError(f"tensor '{self.name}' holds {src.nonfinite} NaN or Inf values: "
                             f"codec {self.codec_name} cannot encode it (use 'auto' or "
                             "'lossless')")
        _lib.check(rc, self.name)
        return cfg, rule.value

    def _analyse(self, cfg_in: _lib.codec_config, whole: bool) -> _lib.codec_config:
        """ts_analyze() with @p cfg_in (the policy's analyser input) on the policy's sample
        rows (ts_policy_sample_rows), or on the whole tensor."""
        src = self.src
        cols = src.shape[-1]
        rows = src.array.size // cols
        m = src.array.reshape(rows, cols)
        n = rows if whole else lib.ts_policy_sample_rows(rows, cols)
        if n < rows:
            m = np.ascontiguousarray(m[[i * rows // n for i in range(n)]])
        out = _lib.codec_config()
        _lib.check(lib.ts_analyze(ctypes.byref(out), None, ctypes.byref(cfg_in), m.ctypes.data,
                                  src.dtype, m.shape[0], cols))
        return out

    def first_config(self) -> _lib.codec_config:
        if self.rule == _lib.POLICY_ANALYSE:
            self._analysed = self._analyse(self.cfg, False)
            self.opts.analysed = ctypes.pointer(self._analysed)
            self.cfg, self.rule = self._choose()
        return self.cfg

    def next_config(self, written: _lib.tensor_info):
        """The configuration to write the tensor again with, once written as @p written
        describes, or None (ts_policy_next): raw when an exact tensor's lossless did not pay;
        the whole tensor's analysis when the sample misled the analyser."""
        nxt = _lib.codec_config()
        step = _lib.check(lib.ts_policy_next(ctypes.byref(nxt), self.rule,
                                             ctypes.byref(written), ctypes.byref(self.opts)))
        if step == _lib.POLICY_WRITE_AGAIN:
            return nxt
        if step == _lib.POLICY_ANALYSE_WHOLE:
            return self._analyse(nxt, True)
        return None
