"""One rank of a distributed-checkpoint job (test_dcp.py runs it under torchrun, gloo on the
CPU, or alone as world size 1 without a process group).

    dcp_job.py save DIR CODECS VERSION   save the state dict of VERSION, sharded, into
                                         DIR/<codec>.tst for each of CODECS (comma-separated)
    dcp_job.py kill DIR CODECS VERSION   the same, rank 1 killing itself (SIGKILL) after
                                         staging two chunks
    dcp_job.py load DIR CODECS VERSION   load at this world size with other shardings than
                                         the save's; check every rank's values; world size 1
                                         saves what it loaded to DIR/<codec>.pt (torch.save)
                                         and larger worlds compare with it bit for bit

The expected values are made here from seeds (torch.Generator), never by tstore. Exit 0 on
success; an assertion names what differs.
"""

import os
import signal
import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.default_planner import DefaultSavePlanner

import tstore._store
import tstore.torch.dcp

try:
    from torch.distributed.tensor import DTensor, Shard
except ImportError:  # torch < 2.4
    from torch.distributed._tensor import DTensor, Shard

# name, shape, dtype, shard dim at save, shard dim at load (None: a plain, replicated tensor)
SPECS = [
    ("model.embed_tokens.weight", (130, 64), torch.bfloat16, 0, 0),
    ("model.layers.0.mlp.up_proj.weight", (256, 96), torch.bfloat16, 0, 1),
    ("model.layers.0.mlp.down_proj.weight", (96, 256), torch.float32, 1, 0),
    ("model.layers.0.norm.weight", (96,), torch.float32, None, None),
    ("model.layers.1.odd", (97, 33), torch.float32, 0, 1),
    ("optim.state.step", (), torch.float32, None, None),
    ("optim.state.ids", (50,), torch.int64, 0, 0),
]
LOSSY_BOUND_PCT = 20.0  # nvfp4's relative RMS error on Gaussian data is about 10 %


def full_tensor(i, shape, dtype, version):
    g = torch.Generator().manual_seed(1000 * version + i)
    if dtype == torch.int64:
        return torch.randint(-2**40, 2**40, shape, generator=g, dtype=dtype)
    if not shape:
        return torch.tensor(float(10 * version + 7), dtype=dtype)
    return torch.randn(shape, generator=g).to(dtype)


def extra(version):
    return {"lr": 10.0 ** -version, "betas": (0.9, 0.95), "name": f"version {version} \u00fc"}


def local_chunk(full, dim, rank, world):
    """Rank's part of @p full sharded along @p dim as DTensor's Shard does (torch.chunk)."""
    parts = list(torch.chunk(full, world, dim))
    if rank < len(parts):
        return parts[rank]
    shape = list(full.shape)
    shape[dim] = 0
    return full.new_empty(shape)


def state_dict(version, which, rank, world, mesh, fill):
    """The state dict of @p version (fill=False: the same layout, zeros), tensors sharded
    along their save (@p which 3) or load (4) dimension."""
    sd = {}
    for i, spec in enumerate(SPECS):
        name, shape, dtype, dim = spec[0], spec[1], spec[2], spec[which]
        full = full_tensor(i, shape, dtype, version)
        if not fill:
            full = torch.zeros_like(full)
        if dim is None or mesh is None:
            sd[name] = full.clone()
        else:
            sd[name] = DTensor.from_local(local_chunk(full, dim, rank, world).clone(), mesh,
                                          [Shard(dim)], run_check=False, shape=full.shape,
                                          stride=full.stride())
    sd["optim.param_groups"] = extra(version if fill else 99)
    return sd


class DyingPlanner(DefaultSavePlanner):
    """Rank 1 kills itself with SIGKILL when asked for its third chunk: two are staged in its
    write group, nothing of it is published."""

    def __init__(self, rank):
        super().__init__()
        self.rank, self.n = rank, 0

    def resolve_data(self, item):
        if self.rank == 1:
            self.n += 1
            if self.n == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().resolve_data(item)


def main():
    mode, folder, codecs, version = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    mesh = None
    if "RANK" in os.environ:
        dist.init_process_group("gloo")
        from torch.distributed.device_mesh import init_device_mesh
        mesh = init_device_mesh("cpu", (world,))
    for codec in codecs.split(","):
        store = os.path.join(folder, f"{codec}.tst")
        if mode in ("save", "kill"):
            sd = state_dict(version, 3, rank, world, mesh, True)
            planner = DyingPlanner(rank) if mode == "kill" else None
            dcp.save(sd, storage_writer=tstore.torch.dcp.Writer(store, codec=codec),
                     planner=planner)
        elif mode == "load":
            sd = state_dict(version, 4, rank, world, mesh, False)
            reads = []
            real_read = tstore._store.Store.read

            def counting_read(self, name, index=(), framework="np", dtype=None):
                out = real_read(self, name, index, framework, dtype)
                if not name.endswith("@bytes"):
                    reads.append(out.numel() if framework == "pt" else out.size)
                return out

            tstore._store.Store.read = counting_read
            dcp.load(sd, storage_reader=tstore.torch.dcp.Reader(store))
            tstore._store.Store.read = real_read
            check(sd, version, codec, rank, world, os.path.join(folder, f"{codec}.pt"),
                  sum(reads))
    if mesh is not None:
        dist.barrier()
        dist.destroy_process_group()
    print(f"rank {rank}/{world}: {mode} {codecs} v{version} ok", flush=True)


def check(sd, version, codec, rank, world, out, elements_read):
    want_elements = 0
    loaded = {}
    exact = codec in ("raw", "lossless")
    for i, (name, shape, dtype, _, dim) in enumerate(SPECS):
        full = full_tensor(i, shape, dtype, version)
        got = sd[name].to_local() if isinstance(sd[name], DTensor) else sd[name]
        want = full if dim is None or world == 1 else local_chunk(full, dim, rank, world)
        assert got.dtype == dtype and got.shape == want.shape, (name, got.shape, want.shape)
        want_elements += want.numel()
        if exact or not dtype.is_floating_point or len(shape) < 2:
            assert torch.equal(got, want), f"{name}: values differ ({codec})"
        elif want.numel():
            err = 100 * float((got.double() - want.double()).norm() / want.double().norm())
            assert err <= LOSSY_BOUND_PCT, f"{name}: {err:.2f} % error under {codec}"
        loaded[name] = got
    assert sd["optim.param_groups"] == extra(version), sd["optim.param_groups"]
    assert elements_read == want_elements, \
        f"rank {rank} read {elements_read} elements for {want_elements} wanted"
    if world == 1:
        torch.save(loaded, out)
    else:  # the same bits at every world size
        one = torch.load(out)
        for i, (name, shape, dtype, _, dim) in enumerate(SPECS):
            ref = one[name] if dim is None else local_chunk(one[name], dim, rank, world)
            assert torch.equal(loaded[name], ref), f"{name}: world {world} differs from world 1"


if __name__ == "__main__":
    main()
