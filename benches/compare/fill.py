#!/usr/bin/env python3
"""Write MiB bytes into a new file through the page cache, as fast as this
machine lets any program: the floor under every tool's "new output" time.

    fill.py write PATH MIB PROCS   pwrite(2) from one reused 8 MiB buffer
    fill.py mmap  PATH MIB PROCS   memcpy into a shared mapping of the file

PROCS processes each fill an equal share (ext4 takes the inode lock for each
buffered write, so two writers share one lock; two mappings do not). The
bytes are not zero, so nothing can skip them; nothing is read, so the input
side of a conversion costs nothing here.
"""
import mmap
import os
import sys

CHUNK = 8 << 20


def fill(mode, fd, start, end, chunk):
    if mode == "write":
        off = start
        while off < end:
            n = min(CHUNK, end - off)
            os.pwrite(fd, chunk[:n], off)
            off += n
        return
    with mmap.mmap(fd, end - start, offset=start) as m:
        off = 0
        while off < end - start:
            n = min(CHUNK, end - start - off)
            m[off:off + n] = chunk[:n]
            off += n


def main():
    mode, path, mib, procs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode not in ("write", "mmap") or procs < 1:
        sys.exit("usage: fill.py write|mmap PATH MIB PROCS")
    total = mib << 20
    chunk = memoryview(bytes((i * 7 + 1) & 0xFF for i in range(256)) * (CHUNK // 256))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if mode == "mmap":
        os.ftruncate(fd, total)
    share = (total // procs + CHUNK - 1) // CHUNK * CHUNK
    pids = []
    for p in range(procs):
        start, end = p * share, min(total, (p + 1) * share)
        if start >= end:
            break
        if p == procs - 1:
            fill(mode, fd, start, end, chunk)
            break
        pid = os.fork()
        if pid == 0:
            fill(mode, fd, start, end, chunk)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        if os.waitpid(pid, 0)[1] != 0:
            sys.exit("a filling process failed")
    os.close(fd)


if __name__ == "__main__":
    main()
