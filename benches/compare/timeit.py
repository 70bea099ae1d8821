#!/usr/bin/env python3
"""Runs CMD and writes "wall user sys maxrss_kib minflt" (seconds to the
microsecond, from wait4's rusage of CMD alone) to OUT; exits with CMD's status.
/usr/bin/time rounds to 10 ms, too coarse for runs of 50 ms.

usage: timeit.py OUT CMD..."""
import os, subprocess, sys, time

out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
p = subprocess.Popen(cmd, stdout=sys.stdout, stderr=sys.stderr)
_, status, ru = os.wait4(p.pid, 0)
wall = time.perf_counter() - t0
with open(out, "w") as f:
    f.write(f"{wall:.6f} {ru.ru_utime:.6f} {ru.ru_stime:.6f} {ru.ru_maxrss} {ru.ru_minflt}\n")
sys.exit(os.waitstatus_to_exitcode(status))
