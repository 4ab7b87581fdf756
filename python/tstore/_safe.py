"""safetensors' reading and writing API over a store: safe_open, its slices, and the
load_file/save_file that tstore.numpy and tstore.torch expose."""

from __future__ import annotations

import os
from typing import Any

from ._store import Store, _framework, _name_bytes, remove_store


class safe_open:
    """Open the store at @p filename for reading, as safetensors.safe_open does.

    @p framework: "pt" (torch tensors) or "np"/"numpy" (NumPy arrays). @p device: "cpu", or
    for torch any device torch accepts: on a CUDA device ("cuda", "cuda:N") the pages are
    decoded on the GPU (docs/GPU.md; a libtstore built without --with-cuda raises TstoreError
    saying so); on another device the tensor is read on the CPU, then moved (a copy).
    Use as a context manager; every method may be called from any number of threads at once.
    """

    def __init__(self, filename: str | os.PathLike, framework: str, device: Any = "cpu"):
        self._fw_name = framework
        self._fw = _framework(framework)
        self._device = self._fw.device(device)
        self._st = Store(filename, "r")

    def __enter__(self) -> "safe_open":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._st.close()

    def keys(self) -> list[str]:
        """Tensor names, sorted (byte-wise)."""
        return self._st.keys()

    def offset_keys(self) -> list[str]:
        """Tensor names; a store has no file offsets, so this is keys()."""
        return self.keys()

    def metadata(self) -> dict[str, str] | None:
        """The source checkpoint's __metadata__, or None."""
        return self._st.metadata()

    def get_tensor(self, name: str, dtype: Any = None):
        """Tensor @p name, decoded straight into the returned array or tensor. Its dtype is
        the source dtype (NumPy: float32 for BF16 and F8 sources; torch: float32 for F8), or
        @p dtype, another floating-point dtype (float32, float16; torch also bfloat16).
        On a CUDA device, dtype="nvfp4" gives an nvfp4 tensor as ModelOpt's triple (uint8
        codes [rows, cols/2], float8_e4m3fn scales [rows, cols/16], float32 global scale),
        the bytes `tstore export --layout modelopt` writes.
        KeyError if there is no such tensor; TstoreError if a page of it is damaged."""
        return self._fw.to_device(self._st.read(name, (), self._fw_name, dtype, self._device),
                                  self._device)

    def get_rows(self, name: str, rows, dtype: Any = None):
        """Rows @p rows (ints in any order, repeats allowed, negative from the end) of tensor
        @p name's 2-D view [product of leading dims, last dim], as one array or tensor
        [len(rows), last dim]: an embedding lookup, an expert selection. Every page the rows
        touch is read once, in one batch; only the rows asked for are decoded. IndexError for
        a row outside the tensor; KeyError if there is no such tensor."""
        return self._fw.to_device(self._st.read_rows(name, rows, self._fw_name, dtype),
                                  self._device)

    def get_tensors(self, names=None, dtype: Any = None) -> dict:
        """The tensors @p names (all when None), whole, by name: read as one pipeline (the next
        tensor's pages in flight while this one decodes) into memory allocated for the load
        (ts_buffer_alloc: huge pages, populated in parallel). On a CUDA device, one
        get_tensor() per name."""
        names = self.keys() if names is None else list(names)
        if getattr(self._device, "type", "cpu") != "cpu":
            return {k: self.get_tensor(k, dtype) for k in names}
        got = self._st.read_many(names, self._fw_name, dtype)
        return {k: self._fw.to_device(v, self._device) for k, v in got.items()}

    def get_slice(self, name: str) -> "TensorSlice":
        """A lazy view of tensor @p name: index it (NumPy basic indexing) to read a part."""
        return TensorSlice(self, name)

    @property
    def store(self) -> Store:
        """The underlying Store (info(), cache_stats())."""
        return self._st


class TensorSlice:
    """safetensors' PySafeSlice: get_shape(), get_dtype() and NumPy basic indexing (ints,
    negative ints, slices with steps, '...', fewer indices than dimensions). Reading a slice
    reads only the pages that cover its bounding box; with steps of 1 it is decoded straight
    into the result, otherwise into the bounding block, then cut (one copy)."""

    def __init__(self, f: safe_open, name: str):
        self._f = f
        self._name = name
        self._info = f.store.info(name)

    def get_shape(self) -> list[int]:
        return list(self._info.shape)

    def get_dtype(self) -> str:
        """The source dtype in safetensors' spelling ("BF16", "F32", "I64")."""
        return self._info.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self._info.shape

    def __len__(self) -> int:
        if not self._info.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._info.shape[0]

    def __getitem__(self, index: Any):
        f = self._f
        return f._fw.to_device(f.store.read(self._name, index, f._fw_name, device=f._device),
                               f._device)


def load_file(filename: str | os.PathLike, framework: str, device: Any = "cpu") -> dict:
    with safe_open(filename, framework, device) as f:
        if getattr(f._device, "type", None) == "cuda":
            from . import _gpu
            return _gpu.load_all(f._st, f.keys(), f._fw, f._device)
        return f.get_tensors()


def _holds_store(path: str) -> bool:
    """Whether a store is at @p path. A blank file (empty, or LMDB's initial pages alone: the
    library's TS_ENOTFOUND) holds none; anything else that is there (a store, damaged or
    not, one another process writes) counts as one, never to be removed by save_file."""
    if not os.path.lexists(path):
        return False
    try:
        Store(path, "r", cache_bytes=0, threads=1)._release()
    except FileNotFoundError:
        return False
    except Exception:
        return True
    return True


def save_file(tensors: dict, filename: str | os.PathLike, metadata: dict[str, str] | None,
              codec: str, max_error: float, quantize_all: bool, check_type) -> None:
    """Write @p tensors into the store @p filename in ONE write group: all of them and the
    metadata become visible together, or (an exception, a full disk) none and the store is as
    it was; a store this call created is then removed unless another process wrote to it.
    Existing tensors of the same names are replaced; other tensors of the store stay. Waits
    for another writer as Store does, for ever."""
    if not isinstance(tensors, dict):
        raise TypeError(f"tensors must be a dict of name to tensor, not {type(tensors).__name__}")
    for name, t in tensors.items():
        _name_bytes(name)
        check_type(name, t)
    path = os.fspath(filename)
    existed = _holds_store(path)
    st = Store(path, "a")
    try:
        if metadata is not None:
            st.set_metadata(metadata)
        for name in sorted(tensors):
            st.write(name, tensors[name], codec=codec, max_error=max_error,
                     quantize_all=quantize_all)
        st.commit()
    except BaseException:
        st.abort()
        # Still the store's one writer: if it is empty, no other process wrote to it, and one
        # waiting for it finds it gone and creates its own (the library opens again).
        if not existed and st._is_empty():
            remove_store(path)
        raise
    finally:
        st._release()
