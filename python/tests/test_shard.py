"""load_shard: rank's contiguous part along a dimension, equal to the same part of the whole
tensor, reading only its pages; the torchrun example (2 processes, gloo, CPU)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import tstore
from conftest import needs_torch, read_safetensors, run, torch

pytestmark = needs_torch
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "examples", "tp_load.py")


@pytest.fixture(scope="module")
def wstore(tmp_path_factory, cli):
    import tstore.torch
    d = tmp_path_factory.mktemp("shard")
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((600, 2048)).astype(
        np.float32)).to(torch.bfloat16)
    p = d / "w.tst"
    tstore.torch.save_file({"w": x, "v": torch.arange(35).reshape(5, 7)}, p, codec="nvfp4")
    run(cli, "export", "-q", p, d / "w.safetensors")
    full = read_safetensors(d / "w.safetensors")[0]
    return p, {"w": torch.from_numpy(full["w"][1].view(np.int16).copy()).view(torch.bfloat16),
               "v": torch.from_numpy(full["v"][1].copy())}


@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_shards_are_the_parts_of_the_whole(wstore, world, dim):
    import tstore.torch
    p, full = wstore
    for name in ("w", "v"):
        want = torch.tensor_split(full[name], world, dim=dim)
        for rank in range(world):
            got = tstore.torch.load_shard(p, name, dim, rank, world)
            assert got.dtype == full[name].dtype
            assert torch.equal(got, want[rank]), (name, rank)


def test_bad_shard_arguments(wstore):
    import tstore.torch
    p, _ = wstore
    with pytest.raises(ValueError):
        tstore.torch.load_shard(p, "w", 0, 2, 2)
    with pytest.raises(IndexError):
        tstore.torch.load_shard(p, "w", 2, 0, 2)
    with pytest.raises(KeyError):
        tstore.torch.load_shard(p, "nope", 0, 0, 2)


def test_a_row_shard_reads_about_its_share(wstore):
    """1/8 of the rows reads its tile rows only (tiles of 28 rows here), not the tensor."""
    import tstore.torch
    p, _ = wstore
    with tstore.safe_open(p, "pt") as f:
        share = f.store.info("w").stored_bytes / 8
        f.store.read("w", (slice(0, 0),), "pt")
        before = f.store.cache_stats()["storage_bytes"]
        tstore.torch.load_shard(f, "w", 0, 3, 8)
        read = f.store.cache_stats()["storage_bytes"] - before
    assert 0 < read <= 1.3 * share, (read, share)


def test_torchrun_example(checkpoint, tmp_path):
    _, store = checkpoint
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # --redirects 1 --tee 1: the defaults ("0") crash Debian 12's torchrun 1.13 under Python
    # 3.11 (its IntFlag Std.NONE is no longer iterated); the output lines then carry a prefix.
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node", "2", "--redirects", "1", "--tee", "1", EXAMPLE,
                        str(store)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [ln for ln in p.stdout.splitlines() if "tp_load: rank" in ln]
    assert len(lines) == 2 and all(ln.endswith("ok") for ln in lines), p.stdout
    assert all("14 linear weights" in ln for ln in lines), p.stdout
