#!/usr/bin/env bash
# Runs every comparison and prints the tables (the body of BENCHMARKS.md).
# BENCH_SIZE_MB=1024 bash benches/compare/all.sh | tee /tmp/bench.md
set -euo pipefail
here="$(dirname "$0")"
for s in convert coalesce pack swift e2e; do
    bash "$here/$s.sh" || echo "# $s.sh failed (exit $?)" >&2
done
