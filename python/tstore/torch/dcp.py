"""torch.distributed.checkpoint (DCP) in one store: a StorageWriter and a StorageReader.

    import torch.distributed.checkpoint as dcp, tstore.torch.dcp
    dcp.save(state_dict, storage_writer=tstore.torch.dcp.Writer("ckpt.tst", codec="lossless"))
    dcp.load(state_dict, storage_reader=tstore.torch.dcp.Reader("ckpt.tst"))

Every rank writes the chunks it owns (its shards of DTensors and sharded tensors, the tensors
the planner gave it, the non-tensor items serialised as bytes) into the one store; loading at
any world size reads, for each chunk a rank needs, only the slice of it that the rank's tensors
overlap (one ts_read_slice: only the pages covering it are read).

A store holds one DCP checkpoint; a save replaces it. How a save stays invisible until done
(docs/PYTHON.md, "Distributed checkpoints"):

  1. Chunks are tensors named "dcp/<save id>/<fqn>@<offsets>" (bytes items "@bytes"; a name
     over the library's 511 bytes is "dcp/<save id>/#<sha256>"), the save id being new for
     every save (made by the coordinator in prepare_global_plan, sent to the ranks in their
     plans). Each rank publishes its chunks in one write group: all of them or none.
  2. The checkpoint is the attachment "dcp/.metadata" (DCP's Metadata, pickled, whose
     storage_data maps every chunk to its tensor name). Only the coordinator's finish()
     writes it, in one write group, after checking that every chunk it names is in the store:
     before that commit a load sees the previous checkpoint whole (or none); after it, the
     new one whole.
  3. After publishing, finish() removes every "dcp/" tensor of another save id: the replaced
     checkpoint and what failed saves left. A rank killed mid-save leaves an interrupted write
     that the store's next writer removes; ranks that had finished leave whole chunks that no
     metadata names, removed by the next save that finishes. `tstore fsck` finds nothing at
     any point.

Ranks write one after another (a store has one writer at a time, tstore.open's rule): each
rank's write_data waits for the store (busy_timeout, for ever by default).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import os
import pickle
import uuid
from typing import Any

import numpy as np
import torch

try:
    from torch.distributed.checkpoint.metadata import Metadata
    from torch.distributed.checkpoint.planner import (LoadItemType, LoadPlan, LoadPlanner,
                                                      SavePlan, SavePlanner, WriteItemType)
    from torch.distributed.checkpoint.storage import StorageReader, StorageWriter, WriteResult
except ImportError as e:  # torch 1.x
    raise ImportError(f"tstore.torch.dcp needs torch.distributed.checkpoint (PyTorch 2.x); "
                      f"PyTorch {torch.__version__} has none ({e})") from None
from torch.futures import Future

from .. import _lib, _policy
from .._store import Store, _name_bytes

PREFIX = "dcp/"
METADATA = "dcp/.metadata"  # an attachment: the published checkpoint
_MAX_NAME = 511


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _chunk_name(save_id: str, item) -> str:
    """The tensor name of write item @p item (invariant 1): injective, since the part after the
    last '@' is "bytes" or digits and commas."""
    if item.type == WriteItemType.BYTE_IO:
        tail = "bytes"
    else:
        tail = ",".join(str(int(o)) for o in item.index.offset or ())
    name = f"{PREFIX}{save_id}/{item.index.fqn}@{tail}"
    if len(name.encode("utf-8", "surrogateescape")) > _MAX_NAME or "\0" in name:
        digest = hashlib.sha256(f"{item.index.fqn}@{tail}".encode("utf-8",
                                                                    "surrogateescape"))
        name = f"{PREFIX}{save_id}/#{digest.hexdigest()}"
    return name


def _future(value) -> Future:
    fut: Future = Future()
    fut.set_result(value)
    return fut


def _path(checkpoint_id) -> str:
    if not isinstance(checkpoint_id, (str, os.PathLike)):
        raise TypeError(f"checkpoint_id: a path to a store, not {type(checkpoint_id).__name__}")
    return os.fspath(checkpoint_id)


def _is_store_path(checkpoint_id) -> bool:
    """A local path that names a file, or a file that may be created (its folder exists)."""
    if not isinstance(checkpoint_id, (str, os.PathLike)) or "://" in str(checkpoint_id):
        return False
    p = os.fspath(checkpoint_id)
    if os.path.exists(p):
        return os.path.isfile(p)
    return os.path.isdir(os.path.dirname(os.path.abspath(p)))


class Writer(StorageWriter):
    """Save a DCP checkpoint into the store at @p path (created if absent), replacing the
    checkpoint it holds when the save finishes, never before.

    @p codec: how floating-point tensor chunks are stored: "auto" (`tstore import`'s policy
    under @p max_error percent relative RMS error, judged by each chunk's tensor name and
    shape), "lossless" (every bit, about 1.5x smaller for BF16), "raw", or a lossy codec
    ("nvfp4", "int8", ...; tstore.codecs()). A lossy codec applies to chunks of at least 2
    dimensions and 4096 elements; smaller float chunks (biases, norms, step counters) are kept
    lossless. Integer and bool tensors are stored raw, non-tensor items as bytes.
    @p busy_timeout: how long each rank waits for the store (None: for ever; tstore.open).
    """

    def __init__(self, path: str | os.PathLike, codec: str = "auto", max_error: float = 10.0,
                 quantize_all: bool = False, busy_timeout: float | None = None):
        super().__init__()
        if codec != "auto":
            _lib.codec_id(codec)  # ValueError for an unknown codec, before any rank writes
        if not (0 <= max_error <= 100):
            raise ValueError(f"max_error {max_error!r}: a percentage in [0, 100]")
        self.path = _path(path)
        self.codec, self.max_error, self.quantize_all = codec, max_error, quantize_all
        self.busy_timeout = busy_timeout
        self.save_id = _new_id()
        self.is_coordinator = False

    # -- DCP's protocol, in the order it calls it --------------------------------------------
    def reset(self, checkpoint_id: str | os.PathLike | None = None) -> None:
        if checkpoint_id:
            self.path = _path(checkpoint_id)
        self.save_id = _new_id()

    def set_up_storage_writer(self, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("use_collectives", True) is False:
            raise ValueError("tstore.torch.dcp.Writer needs the ranks' collectives (the "
                             "coordinator publishes the checkpoint): use_collectives=False "
                             "is not supported")
        self.is_coordinator = is_coordinator

    def prepare_local_plan(self, plan: SavePlan) -> SavePlan:
        return plan

    def prepare_global_plan(self, plans: list[SavePlan]) -> list[SavePlan]:
        # Invariant 1: one save id for every rank, the coordinator's.
        return [dataclasses.replace(p, storage_data=self.save_id) for p in plans]

    def write_data(self, plan: SavePlan, planner: SavePlanner) -> Future:
        save_id = plan.storage_data if isinstance(plan.storage_data, str) else self.save_id
        results = []
        with Store(self.path, "a", busy_timeout=self.busy_timeout) as st:
            if METADATA in st.attachments() and self._published_id(st) == save_id:
                raise ValueError(f"store '{self.path}': save id {save_id} is the published "
                                 "checkpoint's (plans reused from an earlier save): its chunks "
                                 "would be overwritten in place")
            for item in plan.items:
                name = _chunk_name(save_id, item)
                data = planner.resolve_data(item)
                if item.type == WriteItemType.BYTE_IO:
                    src = _policy.source(np.frombuffer(data.getvalue(), np.uint8), name)
                    plan_ = _policy.Plan(src, "raw", self.max_error, name)
                else:
                    src = _policy.source(data.detach(), name)
                    plan_ = _policy.Plan(src, self._codec_for(src), self.max_error,
                                         item.index.fqn, self.quantize_all)
                info = st._write_planned(_name_bytes(name), name, src, plan_, True)
                results.append(WriteResult(index=item.index, size_in_bytes=info.stored_bytes,
                                           storage_data=name))
        return _future(results)  # published: the with block committed the rank's group

    def finish(self, metadata: Metadata, results: list[list[WriteResult]]) -> None:
        storage = {wr.index: wr.storage_data for rank in results for wr in rank}
        metadata.storage_data = storage
        if hasattr(metadata, "storage_meta"):
            metadata.storage_meta = self.storage_meta()
        blob = pickle.dumps(metadata)
        keep = f"{PREFIX}{self.save_id}/"
        with Store(self.path, "a", busy_timeout=self.busy_timeout) as st:
            present = set(st.keys())
            missing = sorted(set(storage.values()) - present)
            if missing:
                raise _lib.TstoreError(_lib.ENOTFOUND, f"store '{self.path}': {len(missing)} "
                                       f"chunks of this save are not in the store (first "
                                       f"'{missing[0]}'): another save into the same store "
                                       "removed them; the previous checkpoint is kept")
            st.write_attachment(METADATA, blob)
            st.commit()  # invariant 2: the checkpoint is published here
            for name in sorted(present):  # invariant 3
                if name.startswith(PREFIX) and not name.startswith(keep):
                    st.delete(name)

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: str | os.PathLike) -> bool:
        return _is_store_path(checkpoint_id)

    def storage_meta(self):
        try:
            from torch.distributed.checkpoint.metadata import StorageMeta
        except ImportError:
            return None
        return StorageMeta(checkpoint_id=self.path, save_id=self.save_id)

    @property
    def checkpoint_id(self) -> str:
        return self.path

    @staticmethod
    def _published_id(st: Store) -> str | None:
        """The save id of the checkpoint @p st holds (from its first chunk's name)."""
        md = pickle.loads(st.read_attachment(METADATA))
        for name in (md.storage_data or {}).values():
            return name[len(PREFIX):].split("/", 1)[0]
        return None

    def _codec_for(self, src: _policy.Source) -> str:
        if self.codec in ("auto", "raw", "lossless") or not src.is_float:
            return self.codec
        return "lossless" if _policy.small_exact(src) else self.codec


class Reader(StorageReader):
    """Load the DCP checkpoint of the store at @p path, at any world size: each rank reads,
    from each chunk its tensors overlap, only that slice (the pages covering it). The
    checkpoint is the one published when read_metadata() ran; a save that replaces it during
    the load makes the load fail (TstoreError naming the chunk), never mix the two."""

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = _path(path)
        self.storage_data: dict = {}

    def reset(self, checkpoint_id: str | os.PathLike | None = None) -> None:
        self.storage_data = {}
        if checkpoint_id:
            self.path = _path(checkpoint_id)

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        with Store(self.path, "r") as st:
            try:
                blob = st.read_attachment(METADATA)
            except KeyError:
                raise FileNotFoundError(errno.ENOENT, "no DCP checkpoint in this store (no "
                                        f"attachment '{METADATA}': none was saved, or no save "
                                        "finished)", self.path) from None
        metadata = pickle.loads(blob)
        if getattr(metadata, "storage_meta", None) is not None and \
                hasattr(metadata.storage_meta, "load_id"):
            metadata.storage_meta.load_id = _new_id()
        return metadata

    def set_up_storage_reader(self, metadata: Metadata, is_coordinator: bool, *args: Any,
                              **kwargs: Any) -> None:
        if not isinstance(metadata.storage_data, dict):
            raise ValueError(f"store '{self.path}': the checkpoint's metadata has no chunk "
                             "table (not written by tstore.torch.dcp.Writer)")
        self.storage_data = metadata.storage_data

    def prepare_local_plan(self, plan: LoadPlan) -> LoadPlan:
        return plan

    def prepare_global_plan(self, plans: list[LoadPlan]) -> list[LoadPlan]:
        return plans

    def read_data(self, plan: LoadPlan, planner: LoadPlanner) -> Future:
        with Store(self.path, "r") as st:
            for req in plan.items:
                name = self.storage_data[req.storage_index]
                try:
                    if req.type == LoadItemType.BYTE_IO:
                        planner.load_bytes(req, io.BytesIO(st.read(name).tobytes()))
                        continue
                    index = tuple(slice(int(o), int(o) + int(n))
                                  for o, n in zip(req.storage_offsets, req.lengths))
                    part = st.read(name, index, "pt")
                except KeyError:
                    raise _lib.TstoreError(_lib.ENOTFOUND, f"store '{self.path}': chunk "
                                           f"'{name}' of the checkpoint is gone (a later save "
                                           "replaced the checkpoint during the load)") from None
                target = planner.resolve_tensor(req).detach()
                if target.shape != part.shape:
                    raise ValueError(f"store '{self.path}': chunk '{name}' gives "
                                     f"{list(part.shape)} where the planner wants "
                                     f"{list(target.shape)}")
                target.copy_(part)
                planner.commit_tensor(req, target)
        return _future(None)

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: str | os.PathLike) -> bool:
        return _is_store_path(checkpoint_id) and os.path.exists(os.fspath(checkpoint_id))

    @property
    def checkpoint_id(self) -> str:
        return self.path
