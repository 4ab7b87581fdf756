"""The CUDA read path from Python, as far as a machine without a GPU can check it: a libtstore
built without --with-cuda says so when a CUDA device is asked for; dtype="nvfp4" is refused off
the GPU. (On a GPU, tools/gpu/gpu_check.sh checks the decoded values bit for bit.)"""

import numpy as np
import pytest

import tstore
import tstore.numpy
import tstore.torch
from conftest import needs_torch, torch


@pytest.fixture
def store(tmp_path):
    p = tmp_path / "s.tst"
    tstore.numpy.save_file({"w": np.linspace(-1, 1, 64 * 32, dtype=np.float32).reshape(64, 32)},
                           p, codec="nvfp4")
    return p


@needs_torch
@pytest.mark.skipif(tstore.gpu_available(), reason="this libtstore has a usable GPU path")
def test_cuda_device_without_gpu_path_says_so(store):
    for call in (lambda f: f.get_tensor("w"), lambda f: f.get_slice("w")[3:5],
                 lambda f: f.get_tensor("w", dtype="nvfp4")):
        with tstore.safe_open(store, "pt", device="cuda:0") as f:
            with pytest.raises(tstore.TstoreError) as e:
                call(f)
        assert e.value.errname == "TS_ENOTSUP"
        assert "no GPU path" in str(e.value) and "--with-cuda" in str(e.value)
    with pytest.raises(tstore.TstoreError, match="no GPU path"):
        tstore.torch.load_file(store, device="cuda")


@needs_torch
def test_nvfp4_triple_needs_a_cuda_device(store):
    with tstore.safe_open(store, "pt") as f:
        with pytest.raises(ValueError, match="CUDA"):
            f.get_tensor("w", dtype="nvfp4")
