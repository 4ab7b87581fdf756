"""torch.distributed.checkpoint into one store (tstore.torch.dcp): saved by 4 ranks, loaded
resharded by 2 and 1 (every value bit-identical with raw and lossless, within the codec's
error with nvfp4, each rank reading exactly the elements it needs); saved by 2 and loaded by
4; a rank killed during a save leaves the previous checkpoint whole and the new one invisible,
and the next save reclaims what the failed one left. Ranks are torchrun processes on the CPU
(gloo): python/tests/dcp_job.py. Needs PyTorch 2.x; Debian's torch 1.13 has no DCP and these
tests skip there."""

import os
import subprocess
import sys

import pytest

import tstore
from conftest import run

try:
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint  # noqa: F401
    REASON = None if dist.is_available() and dist.is_gloo_available() else \
        "torch.distributed with gloo is not available"
except ImportError as e:
    REASON = f"PyTorch 2.x with torch.distributed.checkpoint is needed ({e})"

pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dcp_job.py")


def job(world, *args, ok=True):
    """dcp_job.py under torchrun with @p world ranks (1: alone, without a process group)."""
    if world == 1:
        cmd = [sys.executable, JOB]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={world}", JOB]
    p = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if ok:
        assert p.returncode == 0, f"{args} at world {world}: {p.stdout}\n{p.stderr}"
    return p


def chunks(path):
    with tstore.open(path) as st:
        return {n: st.info(n) for n in st.keys()}, st.attachments()


def test_save_at_4_load_at_2_and_1(tmp_path, cli):
    codecs = "raw,lossless,nvfp4"
    job(4, "save", tmp_path, codecs, 1)
    job(1, "load", tmp_path, codecs, 1)
    job(2, "load", tmp_path, codecs, 1)
    for codec in codecs.split(","):
        store = tmp_path / f"{codec}.tst"
        names, files = chunks(store)
        assert list(files) == ["dcp/.metadata"]
        assert len({n.split("/")[1] for n in names}) == 1  # one save
        assert run(cli, "fsck", store).returncode == 0
        by = {n.split("/", 2)[2]: i for n, i in names.items()}
        assert by["optim.state.ids@0"].codec == "raw"
        assert by["optim.state.step@"].codec in ("lossless", "raw")
        up = [i for n, i in by.items() if "up_proj" in n]
        assert len(up) == 4 and all(i.codec == (codec if codec != "raw" else "raw")
                                    for i in up), up


def test_save_at_2_load_at_4_and_a_killed_rank(tmp_path, cli):
    store = tmp_path / "lossless.tst"
    job(2, "save", tmp_path, "lossless", 1)
    job(1, "load", tmp_path, "lossless", 1)
    job(4, "load", tmp_path, "lossless", 1)
    before, _ = chunks(store)
    p = job(2, "kill", tmp_path, "lossless", 2, ok=False)
    assert p.returncode != 0
    job(1, "load", tmp_path, "lossless", 1)  # the previous checkpoint, whole
    fsck = run(cli, "fsck", store)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    job(2, "save", tmp_path, "lossless", 3)
    job(1, "load", tmp_path, "lossless", 3)
    after, _ = chunks(store)
    ids = {n.split("/")[1] for n in after}
    assert len(ids) == 1 and ids != {n.split("/")[1] for n in before}  # the rest reclaimed
    fsck = run(cli, "fsck", store)
    assert fsck.returncode == 0 and "interrupted" not in fsck.stdout + fsck.stderr


def test_a_store_without_a_checkpoint(tmp_path):
    import tstore.torch.dcp
    p = tmp_path / "empty.tst"
    tstore.torch.save_file({"w": torch.zeros(3)}, p)
    with pytest.raises(FileNotFoundError, match="no DCP checkpoint"):
        tstore.torch.dcp.Reader(p).read_metadata()
    with pytest.raises(ValueError):
        tstore.torch.dcp.Writer(p, codec="nope")
