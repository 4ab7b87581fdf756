"""Shared fixtures of the Python tests: the command (tstore), the checkpoint generator, a
safetensors reader and writer independent of the package, each test in its own directory."""

from __future__ import annotations

import json
import os
import struct
import subprocess

import numpy as np
import pytest

try:
    import torch
except ImportError:  # the torch tests skip, the NumPy ones run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch (python3-torch) is not installed")


def _tool(env: str, rel: str) -> str:
    path = os.environ.get(env)
    if not path:
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.path.join(top, "build", rel)
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not built (set {env})")
    return path


@pytest.fixture(scope="session")
def cli() -> str:
    return _tool("TSTORE_CLI", "tools/tstore")


@pytest.fixture(scope="session")
def gen() -> str:
    return _tool("TSTORE_GEN", "tools/gen_checkpoint")


def run(*args, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}: {p.stderr}")
    return p


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, gen, cli):
    """A tiny generated BF16 checkpoint (with I64, BOOL and F32 extras) and its import."""
    d = tmp_path_factory.mktemp("ckpt")
    src, store = d / "model.safetensors", d / "model.tst"
    run(gen, "--size", "tiny", "--extras", "-q", "-o", src)
    run(cli, "import", "-q", store, src)
    return src, store


# -- safetensors, read and written here without the package ---------------------------------

NP_OF = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": np.uint16,
         "I8": np.int8, "U8": np.uint8, "I16": np.int16, "U16": np.uint16, "I32": np.int32,
         "U32": np.uint32, "I64": np.int64, "U64": np.uint64, "BOOL": np.bool_}


def read_safetensors(path) -> tuple[dict, dict]:
    """(tensors as (dtype name, NumPy array of the stored bytes; BF16 as uint16), metadata)."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        a = np.frombuffer(data[base + b:base + e], NP_OF[h["dtype"]]).reshape(h["shape"])
        out[name] = (h["dtype"], a)
    return out, meta


def write_safetensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """@p tensors: name -> (dtype name, NumPy array whose bytes are the data)."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dt, a) in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def bf16_bits(t) -> np.ndarray:
    """The bit patterns of a torch bfloat16 tensor, as uint16."""
    return t.contiguous().view(torch.int16).numpy().view(np.uint16)


def rel_rms(x: np.ndarray, y: np.ndarray) -> float:
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    return 100 * float(np.linalg.norm(x - y) / np.linalg.norm(x))
