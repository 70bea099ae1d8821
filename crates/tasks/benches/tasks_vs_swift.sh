#!/usr/bin/env bash
# Side by side against the local Swift (bash scripts/swift-up.sh first):
#  - export of a 3-layer chain (ALLOC_MIB allocated) vs `swift upload --segment-size`
#    of the already coalesced VHD;
#  - import of a dynamic VHD from Swift vs the slower of (`swift download`, pigz -p 2 pack).
# Prints wall times and peak RSS (GNU time). Usage: tasks_vs_swift.sh [ALLOC_MIB] [VIRT_MIB]
set -euo pipefail
cd "$(dirname "$0")/../../.."
alloc=${1:-1024}
virt=${2:-4096}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p cloudimg-cli
cargo build --release -q -p cloudimg-tasks --example mkchain
bin=$CARGO_TARGET_DIR/release/cloudimg
set -a; . target/swift.env; set +a
w=${BENCH_DIR:-/tmp/cloudimg-tasks-bench}
rm -rf "$w"; mkdir -p "$w/chain" "$w/staging"
tag=$(date +%s)
img=bimg$tag exp=bexp$tag up=bup$tag
cleanup() { for c in "$img" "$exp" "$up" "${up}_segments"; do swift delete "$c" >/dev/null 2>&1 || true; done; rm -rf "$w"; }
trap cleanup EXIT
t() { /usr/bin/time -f "%e s wall, %M KiB max RSS" "$@"; }

"$CARGO_TARGET_DIR/release/examples/mkchain" "$w/chain" "$virt" "$alloc" >/dev/null
cp "$w/chain/leaf.vhd" "$w/staging/0.vhd"; cp "$w/chain/mid.vhd" "$w/staging/1.vhd"; cp "$w/chain/base.vhd" "$w/staging/2.vhd"
tar -c --directory="$w/staging" . | pigz -p 2 -1 > "$w/chain.tgz"
swift post "$exp"; swift post "$up"
id=$("$bin" import --package "$w/chain.tgz" --store "swift://$img" --name bench | sed -n 's/^  "id": "\(.*\)",/\1/p')
"$bin" coalesce "$w/chain/leaf.vhd" "$w/coalesced.vhd" >/dev/null
ls -l "$w/chain" "$w/coalesced.vhd" "$w/chain.tgz"
sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true

echo "== export of the chain into Swift (cloudimg export, default 1,048,576,000-byte segments)"
t "$bin" export --store "swift://$img" --image "$id" --to "swift://$exp" >/dev/null
echo "== swift upload --segment-size 1048576000 of the coalesced VHD"
(cd "$w" && t swift upload --segment-size 1048576000 "$up" coalesced.vhd >/dev/null)

echo "== import of the coalesced dynamic VHD (a DLO in Swift) into a Swift image store"
t "$bin" import --from "swift://$up/coalesced.vhd" --store "swift://$img" >/dev/null
echo "== swift download of the same object"
(cd "$w" && t swift download "$up" coalesced.vhd -o /dev/null)
echo "== pigz -p 2 -6 pack of the same VHD"
t sh -c "tar -c --directory='$w' coalesced.vhd | pigz -p 2 -6 > /dev/null"
