#!/usr/bin/python3
"""Golden payloads of the lossless codec, built without tstore: the planes by the layout of
docs/CODECS.md ("lossless"), the exponent frame by the zstd command-line tool (any valid frame
must decode; this one is not made of literals only). Run here to regenerate:
/usr/bin/python3 make.py. Writes <dtype>.elements (the n elements, little-endian) and
<dtype>.payload for BF16, F16 and F32, n = 96 (a 3 x 32 matrix)."""
import struct, subprocess

def values16():
    v = [0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc1, 0xffff, 0x0001, 0x807f, 0x3f80, 0xbf80,
         0x7f7f, 0x0080, 0x4049, 0xc2f7, 0x3c00, 0x7c00]
    x = 0x1234
    while len(v) < 96:  # weight-like: exponents near 0x78..0x7e, all mantissas
        x = (x * 1103515245 + 12345) & 0x7fffffff
        e = 0x78 + (x >> 16) % 7
        v.append(((x >> 8) & 1) << 15 | e << 7 | (x & 0x7f))
    return v

def values32():
    v = [0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00001, 0xffbfffff, 0x00000001,
         0x807fffff, 0x3f800000, 0x7f7fffff]
    x = 0x9abc
    while len(v) < 96:
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xffffffffffffffff
        e = 0x78 + (x >> 40) % 7
        v.append(((x >> 33) & 1) << 31 | e << 23 | (x & 0x7fffff))
    return v

def zstd(data):
    # --stream-size: the frame header then carries the content size, as the codec requires
    return subprocess.run(["zstd", "-q", "-19", "--no-check", "--stream-size=%d" % len(data),
                           "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout

def write(name, elements, payload):
    open(name + ".elements", "wb").write(elements)
    open(name + ".payload", "wb").write(payload)

for name in ("bf16", "f16"):
    v = values16()
    e = bytes((x >> 7) & 0xff for x in v)
    sm = bytes(((x >> 8) & 0x80) | (x & 0x7f) for x in v)
    f = zstd(e)
    write(name, struct.pack("<96H", *v), bytes([1]) + struct.pack("<I", len(f)) + sm + f)

v = values32()
e = bytes((x >> 23) & 0xff for x in v)
sm = b"".join(struct.pack("<I", ((x >> 8) & 0x800000) | (x & 0x7fffff))[:3] for x in v)
f = zstd(e)
write("f32", struct.pack("<96I", *v), bytes([1]) + struct.pack("<I", len(f)) + sm + f)
