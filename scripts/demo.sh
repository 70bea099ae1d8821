#!/usr/bin/env bash
# The main job on the embedded default: builds cloudimg and runs it on shipped fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p cloudimg-cli
bin=target/release/cloudimg
for f in fixtures/*.vhd; do
    [ -e "$f" ] || continue
    "$bin" info "$f"
done
