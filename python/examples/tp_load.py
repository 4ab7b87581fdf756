"""Tensor-parallel loading from a store, on CPU with the gloo backend.

    torchrun --nproc_per_node 2 python/examples/tp_load.py model.tst

(torch >= 2 also spells it --nproc-per-node. Debian 12's torch 1.13 under Python 3.11 also
needs --redirects 1 --tee 1: its default "0" fails in torchrun's own argument parsing.)

Every rank loads only its shard of each linear weight (a 2-D tensor named *_proj.weight):
column-parallel layers (q/k/v, gate, up: the output features, dim 0) and row-parallel layers
(o, down: the input features, dim 1), each shard read straight from the pages that hold it.
An all_gather then rebuilds every full weight, which each rank checks bit for bit against a
single-process load of the whole tensor. Prints one line per rank; exits 1 on a mismatch.
"""

import os
import sys

import torch
import torch.distributed as dist

import tstore
import tstore.torch

ROW_PARALLEL = ("o_proj.weight", "down_proj.weight")  # shard the input features (dim 1)


def main(path: str) -> int:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    bad, n, read = 0, 0, 0
    with tstore.safe_open(path, framework="pt") as f:
        names = [k for k in f.keys() if k.endswith("_proj.weight")]
        for name in names:
            dim = 1 if name.endswith(ROW_PARALLEL) else 0
            shard = tstore.torch.load_shard(f, name, dim, rank, world)
            read += shard.numel() * shard.element_size()
            # gloo has no bfloat16 (nor int16) collectives: gather the bytes (a view along the
            # last dimension, so concatenating along either dimension keeps rows whole)
            bits = shard.view(torch.uint8) if shard.dtype == torch.bfloat16 else shard
            parts = [torch.empty_like(bits) for _ in range(world)]
            dist.all_gather(parts, bits.contiguous())
            full = torch.cat(parts, dim=dim)
            if shard.dtype == torch.bfloat16:
                full = full.view(torch.bfloat16)
            if not torch.equal(full, f.get_tensor(name)):
                print(f"rank {rank}: {name}: the gathered shards differ from the whole tensor")
                bad += 1
            n += 1
    flag = torch.tensor([bad])
    dist.all_reduce(flag)
    print(f"tp_load: rank {rank} of {world}: {n} linear weights, {read} bytes of shards, "
          f"{'ok' if flag.item() == 0 else 'MISMATCH'}")
    dist.destroy_process_group()
    return 0 if flag.item() == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: torchrun --nproc_per_node N tp_load.py STORE")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main(sys.argv[1]))
