#!/usr/bin/python3
"""The order-0 bound of the lossless codec for a safetensors file, computed without
tstore: per tensor, n x (bits of sign+mantissa + entropy of the exponent field) / 8 bytes for
F32 (23 + 1 + H(8-bit exponent)), BF16 (7 + 1 + H(8-bit exponent)) and F16 (10 + 1 + H(5-bit
exponent)); other dtypes count at their size. Prints the bound in bytes and the ratio
source/bound; with --store FILE also the store file's ratio and its distance to the bound.

usage: /usr/bin/python3 tools/bench/entropy_bound.py MODEL.safetensors [--store MODEL.tst]
"""
import json
import os
import struct
import sys

import numpy as np

FIELDS = {"F32": (np.uint32, 23, 8), "BF16": (np.uint16, 7, 8), "F16": (np.uint16, 10, 5)}


def bound_bytes(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    total_bits, source = 0.0, 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        source += b - a
        if t["dtype"] not in FIELDS:
            total_bits += 8 * (b - a)
            continue
        word, mant, ebits = FIELDS[t["dtype"]]
        x = data[a:b].view(word)
        e = (x >> mant) & ((1 << ebits) - 1)
        p = np.bincount(e, minlength=1 << ebits) / max(len(x), 1)
        p = p[p > 0]
        h = float(-(p * np.log2(p)).sum())
        total_bits += len(x) * (1 + mant + h)
    return source, total_bits / 8


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    store = None
    if "--store" in args:
        i = args.index("--store")
        store = args[i + 1]
        del args[i:i + 2]
    source, bound = bound_bytes(args[0])
    file_bytes = os.path.getsize(args[0])
    print(f"source tensors {source} bytes (file {file_bytes}); order-0 bound {bound:.0f} bytes, "
          f"ratio {source / bound:.4f}x")
    if store:
        s = os.path.getsize(store)
        print(f"store file {s} bytes: ratio {source / s:.4f}x, {s / bound:.4f}x the bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
