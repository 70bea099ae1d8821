#!/usr/bin/env python3
"""Writes a sparse raw disk for the convert benchmarks: SIZE_MB MiB, PCT % of its
2 MiB blocks holding data (spread evenly), the rest holes. A data block is half
random bytes, half text (a compressible half, as in a real disk); no zero pages
inside it, so every tool must copy all of it.

usage: mkdisk.py OUT SIZE_MB PCT"""
import os, random, sys

out, mb, pct = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
BLOCK = 2 << 20
blocks = mb // 2
rnd = random.Random(13)
text = b"".join(
    rnd.choice([b"kernel ", b"module ", b"/usr/lib/", b"libc.so.6 ", b"\n", b"0x0000 "])
    for _ in range(200000)
)[: BLOCK // 2]
with open(out, "wb") as f:
    acc = 0
    for b in range(blocks):
        # Bresenham spread: block b holds data when the running share crosses a step.
        acc += pct
        if acc >= 100:
            acc -= 100
            f.seek(b * BLOCK)
            f.write(os.urandom(BLOCK // 2))
            f.write(text)
    f.truncate(mb << 20)
