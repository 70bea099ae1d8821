#!/usr/bin/env python3
"""Writes a two-layer VHD chain for the benchmarks: BASE (dynamic) and CHILD
(differencing, parent locators to BASE's file name), 2 MiB blocks, streaming.

usage: mkchain.py BASE CHILD SIZE_MB
       mkchain.py --deep N DIR SIZE_MB   (DIR/l0.vhd base .. DIR/l{N-1}.vhd leaf;
                                          child k holds blocks b % 4 == k % 4)
Base: two blocks in three allocated (random or text data); child: every fourth
block, half of its sectors (alternate 64-sector runs) marked present, so a
coalesce must merge bitmaps. Written from the VHD specification, independently
of cloudimg's own writer."""
import hashlib, os, struct, sys, time

SECTOR, BLOCK = 512, 2 << 20
SPB = BLOCK // SECTOR
BITMAP = 512  # 4096 sectors / 8 = 512 bytes, already sector aligned


def checksum(b, at):
    b = bytearray(b)
    b[at:at + 4] = b"\0\0\0\0"
    return (~sum(b)) & 0xFFFFFFFF


def chs(size):
    sectors = min(size // SECTOR, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        spt, heads, cth = 255, 16, sectors // 255
    else:
        spt = 17
        cth = sectors // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads, cth = 31, 16, sectors // 31
        if cth >= heads * 1024:
            spt, heads, cth = 63, 16, sectors // 63
    return struct.pack(">HBB", cth // heads, heads, spt)


def footer(dtype, size, uid):
    b = bytearray(512)
    b[0:8] = b"conectix"
    struct.pack_into(">IIQI", b, 8, 2, 0x00010000, 512, int(time.time()) - 946684800)
    b[28:32] = b"tap\0"
    struct.pack_into(">I", b, 32, 0x00010003)
    b[36:40] = b"Wi2k"
    struct.pack_into(">QQ", b, 40, size, size)
    b[56:60] = chs(size)
    struct.pack_into(">I", b, 60, dtype)
    b[68:84] = uid
    struct.pack_into(">I", b, 64, checksum(b, 64))
    return bytes(b)


def write(path, size, uid, allocated, bitmap, data_for, parent=None):
    entries = size // BLOCK
    table = 1536
    bat_len = (entries * 4 + SECTOR - 1) // SECTOR * SECTOR
    pos = table + bat_len
    loc, loc_data = [], b""
    if parent:
        puid, pname, pts = parent
        for code, data in ((b"W2ku", ("./" + pname).encode("utf-16-le")),
                           (b"W2ru", ("./" + pname).encode("utf-16-le")),
                           (b"MacX", ("file://./" + pname).encode())):
            space = (len(data) + SECTOR - 1) // SECTOR * SECTOR
            loc.append((code, space, len(data), pos + len(loc_data)))
            loc_data += data.ljust(space, b"\0")
        pos += len(loc_data)
    h = bytearray(1024)
    h[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", h, 8, 0xFFFFFFFFFFFFFFFF, table, 0x00010000, entries, BLOCK)
    if parent:
        h[40:56] = parent[0]
        struct.pack_into(">I", h, 56, parent[2])
        name = parent[1].encode("utf-16-be")
        h[64:64 + len(name)] = name
        for i, (code, space, length, off) in enumerate(loc):
            at = 576 + 24 * i
            h[at:at + 4] = code
            struct.pack_into(">IIIQ", h, at + 4, space, length, 0, off)
    struct.pack_into(">I", h, 36, checksum(h, 36))
    bat = [0xFFFFFFFF] * entries
    for i, blk in enumerate(b for b in range(entries) if allocated(b)):
        bat[blk] = (pos + i * (BITMAP + BLOCK)) // SECTOR
    f_ = footer(4 if parent else 3, size, uid)
    with open(path, "wb") as f:
        f.write(f_ + bytes(h))
        f.write(b"".join(struct.pack(">I", e) for e in bat).ljust(bat_len, b"\xff"))
        f.write(loc_data)
        for blk in range(entries):
            if allocated(blk):
                f.write(bitmap)
                f.write(data_for(blk))
        f.write(f_)


def main():
    if sys.argv[1] == "--deep":
        deep(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        return
    base, child, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
    size = mb << 20
    text = (b"kernel module /usr/lib/libc.so.6 GLIBC_2.2.5\n" * 50000)[:BLOCK]
    buid = hashlib.md5(b"bench-base").digest()
    cuid = hashlib.md5(b"bench-child").digest()
    write(base, size, buid, lambda b: b % 3 != 2, b"\xff" * BITMAP,
          lambda b: os.urandom(BLOCK) if b % 3 == 0 else text)
    half = (b"\xff" * 8 + b"\0" * 8) * (BITMAP // 16)
    write(child, size, cuid, lambda b: b % 4 == 0, half, lambda b: os.urandom(BLOCK),
          parent=(buid, os.path.basename(base), int(time.time()) - 946684800))


def deep(n, d, mb):
    size = mb << 20
    text = (b"kernel module /usr/lib/libc.so.6 GLIBC_2.2.5\n" * 50000)[:BLOCK]
    uids = [hashlib.md5(b"bench-layer-%d" % k).digest() for k in range(n)]
    write(os.path.join(d, "l0.vhd"), size, uids[0], lambda b: b % 3 != 2, b"\xff" * BITMAP,
          lambda b: os.urandom(BLOCK) if b % 3 == 0 else text)
    half = (b"\xff" * 8 + b"\0" * 8) * (BITMAP // 16)
    for k in range(1, n):
        write(os.path.join(d, "l%d.vhd" % k), size, uids[k], lambda b, k=k: b % 4 == k % 4, half,
              lambda b: os.urandom(BLOCK),
              parent=(uids[k - 1], "l%d.vhd" % (k - 1), int(time.time()) - 946684800))


main()
