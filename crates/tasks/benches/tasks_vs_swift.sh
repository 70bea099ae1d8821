#!/usr/bin/env bash
# The issue's speed goals at the issue's sizes, side by side against the local Swift
# (bash scripts/swift-up.sh first): export of a 3-layer chain with ALLOC_MIB allocated
# vs `swift upload --segment-size 1048576000` of the coalesced VHD; import of that disk
# as a dynamic VHD vs the slower of (`swift download`, `tar | pigz -p 2 -6`). This is
# benches/compare/e2e.sh with the issue's defaults; see that script for what it runs.
# Usage: tasks_vs_swift.sh [ALLOC_MIB (4096)] [VIRT_MIB (8192)] [ROUNDS (1)]
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
BENCH_SIZE_MB="${1:-4096}" BENCH_VIRT_MB="${2:-8192}" BENCH_REPEAT="${3:-1}" \
    exec bash "$root/benches/compare/e2e.sh"
