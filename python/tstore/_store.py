"""The store handle: one open libtstore store, read by any number of threads, written through
one write group at a time.

Invariants
  1. The C handle is used only between _use()'s enter and exit; close() waits until no call is
     in flight, so a thread still reading never meets a freed handle (it gets ValueError if it
     starts after close()).
  2. Every read is ONE library call into the memory of the arrays or tensors returned:
     ts_read_slice() (or, for a stepped or reversed slice, into the bounding block it is then
     cut from), ts_read_many() for read_many() (and load_file), ts_read_rows() for
     read_rows(). ctypes releases the GIL for each call.
  5. The arrays of one read_many() view one ts_buffer_alloc() buffer; the buffer is freed when
     the last of them is gone (each holds the ctypes array that owns it).
  3. Writes go to one write group, begun at the first write: nothing is visible to readers
     until commit() (the end of a `with` block), and abort() (an exception in it) leaves the
     store as it was.
  4. A handle of mode "a" is the store's one writer from open to close (the library's flock);
     another process's open waits for it in slices of WAIT_SLICE_MS, so that Ctrl-C and other
     signals are served while it waits (a wait inside one library call would defer them).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from . import _index, _lib, _policy
from ._lib import TstoreError, check, lib


@dataclass(frozen=True)
class TensorInfo:
    """What the store records about a tensor (ts_tensor_info)."""
    name: str
    shape: tuple[int, ...]
    dtype: str            # the source dtype, safetensors spelling ("BF16", "F32", "I64", ...)
    codec: str            # "raw", "nvfp4", ...
    raw_dtype: str        # raw codec: the stored dtype
    stored_bytes: int     # sum of the encoded pages
    source_bytes: int     # elements x source dtype size
    page_count: int
    tile_rows: int
    tile_cols: int
    rel_rms_pct: float    # relative RMS error of the encoding, percent (0: exact)
    tensor_scale: float = 1.0  # the codec's per-tensor decode scale (nvfp4, fp8)
    _dtype_id: int = 0
    _raw_id: int = 0


F8_DTYPES = (_lib.F8_E4M3, _lib.F8_E5M2)
WAIT_SLICE_MS = 200
FLOAT_SOURCES = (_lib.F32, _lib.BF16, _lib.F16)


def unchanged(x):
    """The conversion of an array read in the dtype it is returned in (read_dtype's callers)."""
    return x


def read_dtype(info: TensorInfo, want: int | None, native: int, floats: tuple[int, ...],
               asked) -> int:
    """The ts dtype to read tensor @p info as, for a framework whose own dtype for it is
    @p native and which offers the float dtypes @p floats: @p want (a ts dtype, None: native)
    if the library can decode the tensor to it. An F8 tensor is read as its own bytes (the
    framework widens them to float32). ValueError naming @p asked otherwise."""
    src = info._dtype_id
    if src in F8_DTYPES:
        if want not in (None, _lib.F32):
            raise ValueError(f"tensor '{info.name}' ({info.dtype}) is read as float32, not "
                             f"{asked}")
        return src
    if want is None or want == native:
        return native
    if want in floats and src in FLOAT_SOURCES:
        return want
    raise ValueError(f"tensor '{info.name}' ({info.dtype}) cannot be read as {asked}: an "
                     "F32/BF16/F16 tensor as a float dtype, any other as its own dtype")


class _Memory:
    """Owner of one ts_buffer_alloc() buffer (invariant 5): freed when collected."""

    def __init__(self, h: int, size: int):
        p = ctypes.c_void_p()
        check(lib.ts_buffer_alloc(ctypes.byref(p), h, size))
        self.addr = p.value
        weakref.finalize(self, lib.ts_buffer_free, p.value, size)


def _memory(h: int, size: int) -> tuple[ctypes.Array, int]:
    """A ctypes array over a fresh ts_buffer_alloc() buffer of @p size bytes that keeps the
    buffer alive (arrays and tensors made from it hold it), and its address."""
    mem = _Memory(h, size)
    arr = (ctypes.c_uint8 * size).from_address(mem.addr)
    arr._owner = mem  # no cycle: the buffer goes with the last view
    return arr, mem.addr


def _elems(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _name_bytes(name: str) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"tensor names are str, not {type(name).__name__}")
    b = name.encode("utf-8", "surrogateescape")
    if not b or len(b) > 511 or b"\0" in b:
        raise ValueError(f"bad tensor name {name!r}: 1..511 bytes of UTF-8 without NUL")
    return b


def _framework(name: str):
    if name in ("np", "numpy"):
        from . import numpy as fw
    elif name in ("pt", "torch"):
        from . import torch as fw
    else:
        raise ValueError(f"framework {name!r} is not supported: use 'pt' or 'np'/'numpy'")
    return fw._FRAMEWORK


class Store:
    """An open store. ``mode`` "r": read-only; "a": read and write, created if absent.

    Reading: keys(), metadata(), info(name), read(name, index, framework, dtype).
    Writing ("a"): write(name, tensor), set_metadata(dict): staged in one write group and
    published together by commit() (or at the end of a ``with`` block), discarded by abort()
    (or by an exception in the ``with`` block). Any number of threads may read at once;
    writes are serialised.

    Several processes: a store has one writer at a time. A handle of mode "a" is that writer
    from open to close(); opening another one, in this or another process, waits until it is
    closed (or its process dies: its unpublished writes are then removed), as `tstore import`
    does: @p busy_timeout None (the default) waits for ever, a number of seconds bounds the
    wait (then TstoreError TS_EBUSY, the store unchanged), 0 fails at once. Processes that
    create the same new store at once end with one store. Readers ("r") never wait.
    """

    def __init__(self, path: str | os.PathLike, mode: str = "r", *, cache_bytes: int = -1,
                 threads: int = 0, busy_timeout: float | None = None):
        if mode not in ("r", "a"):
            raise ValueError(f"mode {mode!r}: 'r' (read) or 'a' (read and write)")
        if busy_timeout is not None and not (isinstance(busy_timeout, (int, float)) and
                                             0 <= busy_timeout <= 1e9):
            raise ValueError(f"busy_timeout {busy_timeout!r}: None (wait for ever) or a "
                             "number of seconds from 0 to 1e9")
        self.path = os.fspath(path)
        self.mode = mode
        opts = _lib.open_opts()
        lib.ts_open_opts_init(ctypes.byref(opts))
        opts.flags = (_lib.OPEN_WRITE | _lib.OPEN_CREATE) if mode == "a" else 0
        opts.cache_bytes = cache_bytes
        opts.threads = threads
        h = ctypes.c_void_p()
        rc = self._open(h, opts, busy_timeout)
        if rc == _lib.ENOTFOUND:
            raise FileNotFoundError(errno.ENOENT, _lib.last_error() or "no such store",
                                    self.path)
        check(rc)
        self._h = h.value
        self._cv = threading.Condition()
        self._busy = 0
        self._wlock = threading.Lock()
        self._group = None
        self._gpu: dict = {}  # device -> tstore._gpu.Reader (docs/GPU.md)

    def _open(self, h: ctypes.c_void_p, opts, busy_timeout: float | None) -> int:
        """ts_store_open(), waiting for another writer up to @p busy_timeout seconds (None:
        for ever) in slices (invariant 4)."""
        path = os.fsencode(self.path)
        deadline = None if busy_timeout is None else \
            time.monotonic() + busy_timeout
        while True:
            left_ms = WAIT_SLICE_MS if deadline is None else \
                max(0, min(WAIT_SLICE_MS, int((deadline - time.monotonic()) * 1000 + 0.5)))
            opts.busy_timeout_ms = left_ms
            rc = lib.ts_store_open(ctypes.byref(h), path, ctypes.byref(opts))
            if rc != _lib.EBUSY or (deadline is not None and time.monotonic() >= deadline):
                return rc

    # -- the handle's lifetime (invariant 1) ------------------------------------------------
    @contextmanager
    def _use(self) -> Iterator[int]:
        with self._cv:
            if self._h is None:
                raise ValueError(f"store '{self.path}' is closed")
            self._busy += 1
        try:
            yield self._h
        finally:
            with self._cv:
                self._busy -= 1
                if self._busy == 0:
                    self._cv.notify_all()

    def close(self) -> None:
        """Publish what was written (as commit()), then close. Idempotent."""
        if self._h is None:
            return
        try:
            self.commit()
        finally:
            self._release()

    def _release(self) -> None:
        with self._cv:
            if self._h is None:
                return
            h, self._h = self._h, None
            while self._busy:
                self._cv.wait()
        lib.ts_group_abort(self._group)
        self._group = None
        for rd in self._gpu.values():
            rd.close()
        self._gpu.clear()
        lib.ts_store_close(h)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
            self._release()

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            self.abort()
            self._release()

    # -- reading ---------------------------------------------------------------------------
    def keys(self) -> list[str]:
        """Tensor names in byte-wise order (one walk of the store's records)."""
        names: list[str] = []

        def cb(_ud, name, _info):
            names.append(name.decode("utf-8", "surrogateescape"))
            return 0

        with self._use() as h:
            check(lib.ts_tensor_foreach(h, _lib.FOREACH_CB(cb), None))
        return names

    def info(self, name: str) -> TensorInfo:
        """The record of tensor @p name; KeyError if there is none."""
        ti = _lib.tensor_info()
        with self._use() as h:
            check(lib.ts_tensor_info_get(ctypes.byref(ti), h, _name_bytes(name)), name)
        return self.info_from(name, ti)

    def __contains__(self, name: str) -> bool:
        try:
            self.info(name)
        except KeyError:
            return False
        return True

    def metadata(self) -> dict[str, str] | None:
        """The source checkpoint's __metadata__ (a dict of strings), or None if the store has
        none."""
        size = ctypes.c_size_t()
        with self._use() as h:
            while True:
                buf = ctypes.create_string_buffer(size.value + 1)
                rc = lib.ts_store_metadata_get(buf, len(buf), ctypes.byref(size), h)
                if rc != _lib.ESHORTBUF:
                    break
            check(rc)
        if size.value == 0:
            return None
        try:
            meta = json.loads(buf.raw[:size.value].decode("utf-8"))
        except ValueError as e:
            raise TstoreError(_lib.ECORRUPT, f"store '{self.path}': its metadata is not "
                              f"JSON ({e})") from None
        return meta

    def _gpu_reader(self, device):
        """The GPU reader of this store for torch @p device, made at first use."""
        from . import _gpu
        key = device.index or 0
        with self._cv:
            rd = self._gpu.get(key)
        if rd is None:
            with self._use() as h:
                rd = _gpu.Reader(h, device)
            with self._cv:
                if key in self._gpu:
                    rd.close()
                else:
                    self._gpu[key] = rd
                rd = self._gpu[key]
        return rd

    def read(self, name: str, index: Any = (), framework: str = "np", dtype: Any = None,
             device: Any = None):
        """Tensor @p name, or the part of it that NumPy basic @p index selects, as an array of
        @p framework; only the pages covering the selection are read (invariant 2). For torch
        and a CUDA @p device the pages are decoded on the GPU (docs/GPU.md), and @p dtype
        "nvfp4" gives ModelOpt's triple (codes, scales, global scale) of an nvfp4 tensor."""
        fw = _framework(framework)
        nb = _name_bytes(name)
        info = self.info(name)
        cuda = fw.name == "torch" and getattr(device, "type", None) == "cuda"
        if isinstance(dtype, str) and dtype.lower() == "nvfp4":
            if not cuda:
                raise ValueError("dtype='nvfp4' (ModelOpt's triple) is read onto a CUDA device")
            from . import _gpu
            return _gpu.read_nvfp4(self, name, nb, info, device)
        read_dt, out = fw.read_dtype(info, dtype)
        if cuda and read_dt not in F8_DTYPES:
            from . import _gpu
            return _gpu.read(self, name, nb, info, index, read_dt, device)
        p = _index.plan(index, info.shape)
        if p.empty:
            return out(fw.empty(p.out_shape, read_dt))
        block = fw.empty(p.read_shape, read_dt)
        ptr, nbytes = fw.buffer(block)
        start, count = _lib.u64_array(p.start), _lib.u64_array(p.count)
        with self._use() as h:
            check(lib.ts_read_slice(h, nb, len(p.start), start, count, read_dt, ptr, nbytes),
                  name)
        if p.direct:
            res = block.reshape(p.out_shape)
        else:
            res = fw.contiguous(_index.finish_view(block, p, fw.flip))
        return out(res)

    def read_many(self, names, framework: str = "np", dtype: Any = None) -> dict:
        """The tensors @p names (whole), by name, as arrays of @p framework on the CPU (dtypes
        as read()): one ts_read_many() call, so that the next tensor's pages are read while
        this one's decode, into one buffer of ts_buffer_alloc() (2 MiB aligned, huge pages,
        populated in parallel) that the arrays share (invariant 5). KeyError for a missing
        tensor; TstoreError if a page is damaged (the message names tensor and page)."""
        fw = _framework(framework)
        plans, total = [], 0
        for name in names:
            nb = _name_bytes(name)
            info = self.info(name)
            read_dt, out = fw.read_dtype(info, dtype)
            nbytes = _elems(info.shape) * lib.ts_dtype_size(read_dt)
            plans.append((name, nb, info, read_dt, out, total, nbytes))
            total += (nbytes + 63) & ~63
        result: dict = {}
        if not plans:
            return result
        reqs = (_lib.read_request * len(plans))()
        with self._use() as h:
            arr, addr = _memory(h, total) if total else (None, 0)
            for r, (_n, nb, _i, read_dt, _o, off, nbytes) in zip(reqs, plans):
                r.name = nb
                r.dtype = read_dt
                r.dst = addr + off if nbytes else None
                r.dst_size = nbytes
            rc = lib.ts_read_many(h, reqs, len(plans))
        if rc == _lib.ENOTFOUND:
            raise KeyError(_lib.last_error())
        check(rc)
        for name, _nb, info, read_dt, out, off, nbytes in plans:
            t = fw.view(arr, off, info.shape, read_dt) if nbytes else \
                fw.empty(info.shape, read_dt)
            result[name] = out(t)
        return result

    def read_rows(self, name: str, rows, framework: str = "np", dtype: Any = None):
        """Rows @p rows (a sequence of ints, any order, repeats allowed) of tensor @p name's
        2-D view (rows = product of the leading dimensions) as an array [len(rows), last
        dimension]: one ts_read_rows() call, which reads every page the rows touch once, in
        one batch, and decodes only those rows. Negative rows count from the end. IndexError
        for a row outside the tensor (nothing is read); KeyError for a missing tensor."""
        fw = _framework(framework)
        nb = _name_bytes(name)
        info = self.info(name)
        read_dt, out = fw.read_dtype(info, dtype)
        cols = info.shape[-1] if info.shape else 1
        nrows = _elems(info.shape[:-1]) if info.shape else 1
        idx = []
        for r in rows:
            r = int(r)
            if r < -nrows or r >= nrows:
                raise IndexError(f"row {r} of tensor '{name}', which has {nrows} rows")
            idx.append(r + nrows if r < 0 else r)
        res = fw.empty((len(idx), cols), read_dt)
        if not idx or cols == 0:
            return out(res)
        ptr, nbytes = fw.buffer(res)
        with self._use() as h:
            check(lib.ts_read_rows(h, nb, len(idx), _lib.u64_array(idx), read_dt, ptr, nbytes),
                  name)
        return out(res)

    def attachments(self) -> dict[str, int]:
        """Attachments (files stored with the tensors: `tstore import`'s config.json and
        tokenizer files, a DCP checkpoint's metadata) by name, with their sizes in bytes."""
        out: dict[str, int] = {}

        def cb(_ud, name, size):
            out[name.decode("utf-8", "surrogateescape")] = size
            return 0

        with self._use() as h:
            check(lib.ts_attachment_foreach(h, _lib.ATTACHMENT_CB(cb), None))
        return out

    def read_attachment(self, name: str) -> bytes:
        """The bytes of attachment @p name, every page verified; KeyError if there is none."""
        nb = _name_bytes(name)
        size = ctypes.c_uint64()
        with self._use() as h:
            check(lib.ts_attachment_size(ctypes.byref(size), h, nb), name)
            buf = ctypes.create_string_buffer(max(1, size.value))
            if size.value:
                check(lib.ts_attachment_read(buf, h, nb, 0, size.value), name)
        return buf.raw[:size.value]

    def cache_stats(self) -> dict[str, int]:
        """The read counters of the store's cache (ts_cache_stats): storage_bytes is what was
        read from storage since the store was opened."""
        cs = _lib.cache_stats()
        with self._use() as h:
            lib.ts_cache_stats_get(ctypes.byref(cs), h)
        return {f: getattr(cs, f) for f, _ in cs._fields_}

    # -- writing (invariant 3) -------------------------------------------------------------
    def _group_handle(self, h) -> int:
        if self.mode != "a":
            raise TstoreError(_lib.EREADONLY, f"store '{self.path}' is opened read-only "
                              "(mode 'r')")
        if self._group is None:
            g = ctypes.c_void_p()
            check(lib.ts_group_begin(ctypes.byref(g), h))
            self._group = g.value
        return self._group

    def write(self, name: str, tensor, *, codec: str = "auto", max_error: float = 10.0,
              quantize_all: bool = False, replace: bool = True) -> TensorInfo:
        """Stage @p tensor (a NumPy array or torch tensor) as @p name in this handle's write
        group, encoded by @p codec ("auto": the import policy under @p max_error percent
        relative RMS error, token embeddings, output projections and MoE routers kept exact
        unless @p quantize_all; or a codec name, for floating-point tensors). A token embedding
        is written with tiles of whole rows (ts_policy_write_flags(): one page per gathered
        row). Visible at commit().
        A name staged twice keeps the last. @p replace False: the commit fails if @p name
        exists in the store."""
        nb = _name_bytes(name)
        src = _policy.source(tensor, name)
        plan = _policy.Plan(src, codec, max_error, name, quantize_all)
        return self._write_planned(nb, name, src, plan, replace)

    def _write_planned(self, nb: bytes, name: str, src: "_policy.Source", plan: "_policy.Plan",
                       replace: bool) -> TensorInfo:
        """write() with the codec decision made by the caller (tstore.torch.dcp decides by a
        chunk's tensor name, not the chunk's)."""
        with self._wlock, self._use() as h:
            g = self._group_handle(h)
            cfg = plan.first_config()
            ti = self._write_one(h, g, nb, name, src, cfg, replace)
            cfg = plan.next_config(ti)
            if cfg is not None:
                ti = self._write_one(h, g, nb, name, src, cfg, replace)
        return self.info_from(name, ti)

    def write_attachment(self, name: str, data: bytes) -> None:
        """Stage @p data as attachment @p name (a relative path: components separated by '/',
        none empty, "." or ".."), replacing one of that name, in this handle's write group:
        published with the group's tensors at commit()."""
        nb = _name_bytes(name)
        data = bytes(data)
        with self._wlock, self._use() as h:
            wo = _lib.write_opts()
            lib.ts_write_opts_init(ctypes.byref(wo))
            wo.flags = _lib.WRITE_REPLACE
            wo.group = self._group_handle(h)
            w = ctypes.c_void_p()
            check(lib.ts_attachment_begin(ctypes.byref(w), h, nb, len(data), ctypes.byref(wo)),
                  name)
            if data:
                rc = lib.ts_writer_append(w, data, len(data))
                if rc < 0:
                    err = _lib.error(rc, name)
                    lib.ts_writer_abort(w)
                    raise err
            check(lib.ts_writer_commit(None, w), name)

    def delete(self, name: str) -> None:
        """Remove tensor @p name and its pages now, in a transaction of its own (not part of
        the write group); KeyError if there is none."""
        nb = _name_bytes(name)
        with self._wlock, self._use() as h:
            if self.mode != "a":
                raise TstoreError(_lib.EREADONLY, f"store '{self.path}' is opened read-only "
                                  "(mode 'r')")
            check(lib.ts_tensor_delete(h, nb), name)

    def _is_empty(self) -> bool:
        """No tensor, attachment or metadata: what a new store holds."""
        return not self.keys() and not self.attachments() and self.metadata() is None

    @staticmethod
    def info_from(name: str, ti) -> TensorInfo:
        return TensorInfo(name=name, shape=tuple(ti.shape[:ti.ndim]),
                          dtype=_lib.dtype_name(ti.source_dtype),
                          codec=_lib.text(lib.ts_codec_name(ti.codec.codec)),
                          raw_dtype=_lib.dtype_name(ti.codec.raw_dtype),
                          stored_bytes=ti.stored_bytes, source_bytes=ti.source_bytes,
                          page_count=ti.page_count, tile_rows=ti.tile_rows,
                          tile_cols=ti.tile_cols, rel_rms_pct=ti.error.rel_rms_pct,
                          tensor_scale=ti.tensor_scale,
                          _dtype_id=ti.source_dtype, _raw_id=ti.codec.raw_dtype)

    @staticmethod
    def _write_one(h, g, nb, name, src, cfg, replace):
        wo = _lib.write_opts()
        lib.ts_write_opts_init(ctypes.byref(wo))
        wo.flags = (_lib.WRITE_REPLACE if replace else 0) | lib.ts_policy_write_flags(nb)
        wo.group = g
        if src.is_float:
            wo.amax = src.amax
        shape = _lib.u64_array(src.shape)
        w = ctypes.c_void_p()
        check(lib.ts_writer_begin(ctypes.byref(w), h, nb, src.dtype, len(src.shape), shape,
                                  ctypes.byref(cfg), ctypes.byref(wo)), name)
        if src.nbytes:
            rc = lib.ts_writer_append(w, src.ptr, src.nbytes)
            if rc < 0:
                err = _lib.error(rc, name)
                lib.ts_writer_abort(w)
                raise err
        ti = _lib.tensor_info()
        check(lib.ts_writer_commit(ctypes.byref(ti), w), name)
        return ti

    def set_metadata(self, metadata: dict[str, str] | None) -> None:
        """Stage @p metadata (str keys and values, like safetensors' __metadata__) as the
        store's metadata, published with the group's tensors; None removes it."""
        if metadata is None:
            text = b""
        else:
            if not isinstance(metadata, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
                raise ValueError("metadata must be a dict of str keys and str values")
            text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()
        with self._wlock, self._use() as h:
            check(lib.ts_group_metadata_set(self._group_handle(h), text, len(text)))

    def commit(self) -> int:
        """Publish everything written since the last commit, in one transaction. Returns the
        number of tensors published."""
        with self._wlock:
            if self._group is None:
                return 0
            n = ctypes.c_uint64()
            g, self._group = self._group, None
            with self._use():
                check(lib.ts_group_commit(ctypes.byref(n), g))
            return n.value

    def abort(self) -> None:
        """Discard everything written since the last commit."""
        with self._wlock:
            g, self._group = self._group, None
            lib.ts_group_abort(g)


def remove_store(path: str) -> None:
    for p in (path, path + "-lock"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
