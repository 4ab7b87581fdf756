"""tstore: read and write tensor stores the way loaders use safetensors.

    from tstore import safe_open            # instead of: from safetensors import safe_open
    with safe_open("model.tst", framework="pt") as f:
        w = f.get_slice("lm_head.weight")[:, :4096]

Modules: tstore.numpy and tstore.torch (load_file, save_file; torch also load_shard).
tstore.open(path, "a") gives a Store for incremental writing in one write group; several
processes may open one store so at once: each waits for the one before it.
Errors: KeyError (no such tensor), IndexError/ValueError (bad index or dtype), TstoreError
(an OSError: damaged data, I/O, a full disk), with the library's message. docs/PYTHON.md.
"""

from __future__ import annotations

import os

from ._lib import TstoreError, codec_names, version as library_version
from ._safe import TensorSlice, safe_open
from ._store import Store, TensorInfo

__version__ = library_version()


def open(path: str | os.PathLike, mode: str = "r", **kwargs) -> Store:  # noqa: A001
    """Open the store at @p path: mode "r" to read, "a" to read and write (created if absent).
    Writes (Store.write, Store.set_metadata) are published together when the ``with`` block
    ends, or discarded if it raises. A store has one writer at a time: mode "a" waits for
    another process's writer to close, for ever by default (``busy_timeout=None``, as the
    ``tstore`` command), at most ``busy_timeout`` seconds otherwise (0: fail at once), then
    raises TstoreError (TS_EBUSY). Keyword arguments: see Store."""
    return Store(path, mode, **kwargs)


def gpu_available() -> bool:
    """True if this libtstore was built with its GPU path (--with-cuda) and a CUDA device is
    usable: then safe_open(..., device="cuda:N") decodes on the GPU (docs/GPU.md)."""
    from ._lib import lib
    return bool(lib.ts_gpu_available())


def codecs() -> list[str]:
    """The codecs this libtstore knows ("raw", "nvfp4", ...), usable as save_file(codec=)."""
    return codec_names()


__all__ = ["safe_open", "open", "Store", "TensorInfo", "TensorSlice", "TstoreError",
           "codecs", "gpu_available", "library_version", "__version__"]
