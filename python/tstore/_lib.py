"""The binding of libtstore: finding the library, its C types and function prototypes, and the
translation of its error codes into Python exceptions.

Every function is called through ctypes.CDLL, which releases the GIL for the duration of each
foreign call: threads read in parallel while the library works, and nothing of ours holds a
lock meanwhile. The thread-local last error (ts_error_last) is fetched on the thread that made
the failing call, right after it.

Finding the library, in order:
  1. $TSTORE_LIBRARY, a path to libtstore.so (the test suite and `make bench-python` set it);
  2. the library the package was installed with (_libpath.py, written by `make install`);
  3. in a source checkout, the freshly built one: <top>/build/.libs (tools/build.sh's build
     directory) or <top>/.libs (an in-tree build);
  4. the dynamic linker's search (ctypes.util.find_library("tstore")).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (POINTER, Structure, c_char_p, c_double, c_float, c_int, c_int64,
                    c_size_t, c_uint, c_uint64, c_void_p)

MAX_DIMS = 8
CODEC_COUNT_MAX = 64  # codec ids are probed up to here (ts_codec_name gives "?" past the last)

# Error codes (include/tstore.h, TS_ERROR_LIST; ABI, append only).
EINVAL, ENOMEM, ENOTFOUND, ERANGE, ECORRUPT, EIO = -1, -2, -3, -4, -5, -6
ENOSPC, EEXIST, EBUSY, ENOTSUP, ENONFINITE, ESHORTBUF = -7, -8, -9, -10, -11, -12
EVERSION, ECANCELED, EREADONLY, EDTYPE, EBOUND = -13, -14, -15, -16, -17

# dtypes (include/tstore.h, ts_dtype; on-disk values).
F32, BF16, F16, F64, F8_E4M3, F8_E5M2 = 0, 1, 2, 3, 4, 5
I8, U8, I16, U16, I32, U32, I64, U64, BOOL = 6, 7, 8, 9, 10, 11, 12, 13, 14

OPEN_WRITE, OPEN_CREATE = 0x1, 0x2
WRITE_REPLACE = 0x1
CODEC_RAW, CODEC_NVFP4, CODEC_FP8 = 0, 1, 4

# The import policy (include/tstore.h: ts_policy_opts.flags, ts_policy_rule, ts_policy_step).
POLICY_QUANTIZE_ALL = 0x1
POLICY_EXACT_1D, POLICY_EXACT_TINY, POLICY_ANALYSE = 5, 6, 8
POLICY_WRITE_AGAIN, POLICY_ANALYSE_WHOLE = 1, 2


class TstoreError(OSError):
    """A failure reported by libtstore: a damaged page or store, a full disk, an I/O error.

    Attributes: ``code`` (the library's negative TS_E* code), ``errname`` ("TS_ECORRUPT") and
    ``detail`` (the library's one-line message, ts_error_last(), naming what and where).
    """

    def __init__(self, code: int, detail: str):
        self.code = code
        self.errname = errname(code)
        self.detail = detail
        super().__init__(f"{detail or strerror(code)} [{self.errname}]")

    def __reduce__(self):
        return (type(self), (self.code, self.detail))


class codec_config(Structure):
    _fields_ = [("codec", c_int), ("block_size", c_int), ("bits_per_value", c_int),
                ("symmetric", c_int), ("recipe", c_int), ("raw_dtype", c_int),
                ("max_error_pct", c_double)]


class gpu_request(Structure):
    _fields_ = [("name", c_char_p), ("row_start", c_uint64), ("row_count", c_uint64),
                ("col_start", c_uint64), ("col_count", c_uint64), ("dtype", c_int),
                ("dst", c_void_p), ("dst_stride", c_uint64)]


class compression_stats(Structure):
    _fields_ = [("original_bytes", c_uint64), ("compressed_bytes", c_uint64),
                ("compression_ratio", c_double), ("mean_error", c_double),
                ("max_error", c_double), ("blocks_processed", c_uint64),
                ("rel_rms_pct", c_double), ("sqnr_db", c_double)]


class distribution_stats(Structure):
    _fields_ = [("mean", c_double), ("std", c_double), ("min_val", c_double),
                ("max_val", c_double), ("dynamic_range", c_double), ("sparsity", c_double),
                ("count", c_uint64), ("nonfinite", c_uint64)]


class tensor_info(Structure):
    _fields_ = [("ndim", c_int), ("shape", c_uint64 * MAX_DIMS), ("source_dtype", c_int),
                ("codec", codec_config), ("amax", c_float), ("tensor_scale", c_float),
                ("tile_rows", c_uint64), ("tile_cols", c_uint64), ("page_count", c_uint64),
                ("stored_bytes", c_uint64), ("source_bytes", c_uint64),
                ("error", compression_stats), ("dist", distribution_stats), ("id", c_uint64)]


class open_opts(Structure):
    _fields_ = [("flags", c_uint), ("io", c_int), ("cache_bytes", c_int64),
                ("map_size", c_uint64), ("threads", c_int), ("map_max", c_uint64),
                ("busy_timeout_ms", c_int64)]


class write_opts(Structure):
    _fields_ = [("flags", c_uint), ("amax", c_float), ("page_bytes", c_uint64),
                ("tensor_scale", c_float), ("group", c_void_p)]


class policy_opts(Structure):
    _fields_ = [("codec", c_int), ("max_error_pct", c_double), ("flags", c_uint),
                ("nonfinite", c_uint64), ("analysed", POINTER(codec_config))]


class cache_stats(Structure):
    _fields_ = [("budget_bytes", c_uint64), ("used_bytes", c_uint64), ("hits", c_uint64),
                ("misses", c_uint64), ("evictions", c_uint64), ("storage_reads", c_uint64),
                ("storage_bytes", c_uint64), ("map_fallbacks", c_uint64)]


class read_request(ctypes.Structure):
    """ts_read_request."""
    _fields_ = [("name", c_char_p), ("ndim", c_int), ("start", POINTER(c_uint64)),
                ("count", POINTER(c_uint64)), ("dtype", c_int), ("dst", c_void_p),
                ("dst_size", c_size_t)]


FOREACH_CB = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, POINTER(tensor_info))
ATTACHMENT_CB = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_uint64)

_u64p = POINTER(c_uint64)
_PROTOTYPES = {
    "ts_version": (c_char_p, []),
    "ts_strerror": (c_char_p, [c_int]),
    "ts_errname": (c_char_p, [c_int]),
    "ts_error_last": (c_char_p, []),
    "ts_error_clear": (None, []),
    "ts_dtype_size": (c_size_t, [c_int]),
    "ts_dtype_name": (c_char_p, [c_int]),
    "ts_e4m3_to_f32": (c_float, [ctypes.c_uint8]),
    "ts_codec_name": (c_char_p, [c_int]),
    "ts_codec_parse": (c_int, [POINTER(c_int), c_char_p]),
    "ts_codec_config_default": (codec_config, [c_int]),
    "ts_analyze": (c_int, [POINTER(codec_config), POINTER(compression_stats),
                           POINTER(codec_config), c_void_p, c_int, c_uint64, c_uint64]),
    "ts_policy_keep_reason": (c_char_p, [c_char_p]),
    "ts_policy_write_flags": (c_uint, [c_char_p]),
    "ts_policy_exact_config": (c_int, [POINTER(codec_config), c_int]),
    "ts_policy_opts_init": (None, [POINTER(policy_opts)]),
    "ts_policy_choose": (c_int, [POINTER(codec_config), POINTER(c_int), c_char_p, c_int, c_int,
                                 _u64p, POINTER(policy_opts)]),
    "ts_policy_next": (c_int, [POINTER(codec_config), c_int, POINTER(tensor_info),
                               POINTER(policy_opts)]),
    "ts_policy_sample_rows": (c_uint64, [c_uint64, c_uint64]),
    "ts_open_opts_init": (None, [POINTER(open_opts)]),
    "ts_store_open": (c_int, [POINTER(c_void_p), c_char_p, POINTER(open_opts)]),
    "ts_store_close": (None, [c_void_p]),
    "ts_tensor_info_get": (c_int, [POINTER(tensor_info), c_void_p, c_char_p]),
    "ts_tensor_foreach": (c_int, [c_void_p, FOREACH_CB, c_void_p]),
    "ts_read_slice": (c_int, [c_void_p, c_char_p, c_int, _u64p, _u64p, c_int, c_void_p,
                              c_size_t]),
    "ts_read_many": (c_int, [c_void_p, POINTER(read_request), c_size_t]),
    "ts_read_rows": (c_int, [c_void_p, c_char_p, c_size_t, _u64p, c_int, c_void_p, c_size_t]),
    "ts_buffer_alloc": (c_int, [POINTER(c_void_p), c_void_p, c_size_t]),
    "ts_buffer_free": (None, [c_void_p, c_size_t]),
    "ts_write_opts_init": (None, [POINTER(write_opts)]),
    "ts_writer_begin": (c_int, [POINTER(c_void_p), c_void_p, c_char_p, c_int, c_int, _u64p,
                                POINTER(codec_config), POINTER(write_opts)]),
    "ts_writer_append": (c_int, [c_void_p, c_void_p, c_size_t]),
    "ts_writer_commit": (c_int, [POINTER(tensor_info), c_void_p]),
    "ts_writer_abort": (None, [c_void_p]),
    "ts_tensor_delete": (c_int, [c_void_p, c_char_p]),
    "ts_attachment_begin": (c_int, [POINTER(c_void_p), c_void_p, c_char_p, c_uint64,
                                    POINTER(write_opts)]),
    "ts_attachment_size": (c_int, [_u64p, c_void_p, c_char_p]),
    "ts_attachment_read": (c_int, [c_void_p, c_void_p, c_char_p, c_uint64, c_size_t]),
    "ts_attachment_foreach": (c_int, [c_void_p, ATTACHMENT_CB, c_void_p]),
    "ts_group_begin": (c_int, [POINTER(c_void_p), c_void_p]),
    "ts_group_commit": (c_int, [_u64p, c_void_p]),
    "ts_group_abort": (None, [c_void_p]),
    "ts_group_metadata_set": (c_int, [c_void_p, c_char_p, c_size_t]),
    "ts_store_metadata_get": (c_int, [c_void_p, c_size_t, POINTER(c_size_t), c_void_p]),
    "ts_cache_stats_get": (None, [POINTER(cache_stats), c_void_p]),
    "ts_cache_clear": (None, [c_void_p]),
    "ts_read_encoded_size": (c_int, [POINTER(c_size_t), POINTER(c_size_t), POINTER(tensor_info),
                                     c_uint64]),
    "ts_gpu_available": (c_int, []),
    "ts_gpu_reader_new": (c_int, [POINTER(c_void_p), c_void_p, c_int, c_int, c_size_t]),
    "ts_gpu_reader_free": (None, [c_void_p]),
    "ts_gpu_reader_sync": (c_int, [c_void_p]),
    "ts_gpu_read": (c_int, [c_void_p, c_char_p, c_uint64, c_uint64, c_uint64, c_uint64, c_int,
                            c_void_p, c_uint64, c_void_p]),
    "ts_gpu_read_many": (c_int, [c_void_p, POINTER(gpu_request), c_size_t, c_void_p]),
    "ts_gpu_read_encoded": (c_int, [c_void_p, c_char_p, c_uint64, c_uint64, c_void_p, c_void_p,
                                    c_void_p]),
    "ts_gpu_decode": (c_int, [POINTER(codec_config), c_float, c_void_p, c_size_t, c_uint64,
                              c_uint64, c_int, c_void_p, c_uint64, c_void_p]),
}


def _candidates():
    env = os.environ.get("TSTORE_LIBRARY")
    if env:
        yield env
        return
    try:
        from . import _libpath  # written by `make install`
        yield _libpath.LIBRARY
    except ImportError:
        pass
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for d in (os.path.join(top, "build", ".libs"), os.path.join(top, ".libs")):
        yield os.path.join(d, "libtstore.so")
    found = ctypes.util.find_library("tstore")
    if found:
        yield found


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + " (absent)")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
            continue
        for name, (res, args) in _PROTOTYPES.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        return lib
    raise ImportError("tstore: cannot load libtstore; tried: " + "; ".join(tried or ["nothing"])
                      + " (set TSTORE_LIBRARY to the path of libtstore.so)")


lib = _load()


def text(b: bytes | None) -> str:
    return b.decode("utf-8", "replace") if b else ""


def strerror(code: int) -> str:
    return text(lib.ts_strerror(code))


def errname(code: int) -> str:
    return text(lib.ts_errname(code))


def last_error() -> str:
    return text(lib.ts_error_last())


def error(code: int, key: str | None = None) -> Exception:
    """The exception for a failed call's @p code, with the calling thread's last error.
    @p key: the tensor name a TS_ENOTFOUND is about (KeyError)."""
    detail = last_error()
    if code == ENOTFOUND and key is not None:
        return KeyError(key)
    if code == ERANGE:
        return IndexError(detail or strerror(code))
    if code in (EINVAL, EDTYPE, ENONFINITE, EBOUND):
        return ValueError(f"{detail or strerror(code)} [{errname(code)}]")
    if code == ENOMEM:
        return MemoryError(detail or strerror(code))
    return TstoreError(code, detail)


def check(code: int, key: str | None = None) -> int:
    if code < 0:
        raise error(code, key)
    return code


def version() -> str:
    return text(lib.ts_version())


def codec_names() -> list[str]:
    """Names of the codecs this library knows, in id order."""
    names = []
    for i in range(CODEC_COUNT_MAX):
        n = text(lib.ts_codec_name(i))
        if n == "?":
            break
        names.append(n)
    return names


def codec_id(name: str) -> int:
    out = c_int()
    if lib.ts_codec_parse(ctypes.byref(out), name.encode()) < 0:
        raise ValueError(f"unknown codec {name!r} (known: {', '.join(codec_names())}, auto)")
    return out.value


def dtype_name(dt: int) -> str:
    return text(lib.ts_dtype_name(dt))


def dtype_size(dt: int) -> int:
    return lib.ts_dtype_size(dt)


def u64_array(values) -> ctypes.Array:
    return (c_uint64 * max(1, len(values)))(*values)


__all__ = ["TstoreError", "lib", "check", "error"]
