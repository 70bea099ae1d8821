#!/usr/bin/env bash
# The main job on the embedded default (a local-directory image store under demo-out/):
# build cloudimg, import shipped VHDs as Glance import tasks, add the shipped 3-layer
# chain as a XenServer package, export images as Cloud Images DLOs, and show that the
# exported disks hold the same bytes as what went in.
set -euo pipefail
cd "$(dirname "$0")/.."

# CLOUDIMG_BIN=path skips the build (e.g. to try a debug binary).
if [ -z "${CLOUDIMG_BIN:-}" ]; then
    cargo build --release -q -p cloudimg-cli
fi
bin=${CLOUDIMG_BIN:-$PWD/target/release/cloudimg}
out=demo-out
rm -rf "$out"
mkdir -p "$out/src/uploads" "$out/dest/exports" "$out/work"
store="$out/store"

say() { printf '\n== %s\n' "$*"; }
field() { sed -n "s/^ *\"$1\": \"\([^\"]*\)\".*/\1/p" | head -n1; }

say "1. import fixtures/dynamic-qemu.vhd (a dynamic VHD) as a Glance import task"
cp fixtures/dynamic-qemu.vhd fixtures/fixed.vhd "$out/src/uploads/"
"$bin" import --from "$out/src/uploads/dynamic-qemu.vhd" --store "$store" --name demo-dynamic \
    | tee "$out/work/import-dynamic.json"
dyn_id=$(field image_id < "$out/work/import-dynamic.json")

say "2. import fixtures/fixed.vhd (a fixed VHD: converted to a sparse dynamic one)"
"$bin" import --from "$out/src/uploads/fixed.vhd" --store "$store" --name demo-fixed \
    | tee "$out/work/import-fixed.json"

say "3. a rejected import: fixtures/chain/leaf.vhd has a parent (code 721, exit 1)"
cp fixtures/chain/leaf.vhd "$out/src/uploads/leaf.vhd"
set +e
"$bin" import --from "$out/src/uploads/leaf.vhd" --store "$store" > "$out/work/import-leaf.json"
rc=$?
set -e
sed -n 's/^ *"\(status\|message\)": \(.*\)/  \1: \2/p' "$out/work/import-leaf.json"
echo "  exit code: $rc"

say "4. add the shipped chain (fixtures/chain: leaf -> mid -> base) as a XenServer package"
mkdir -p "$out/work/staging"
cp fixtures/chain/leaf.vhd "$out/work/staging/0.vhd"
cp fixtures/chain/mid.vhd "$out/work/staging/1.vhd"
cp fixtures/chain/base.vhd "$out/work/staging/2.vhd"
# The os-xenapi command: members ./0.vhd (leaf) .. ./2.vhd (base).
tar -zcf "$out/work/chain.tgz" --directory="$out/work/staging" .
"$bin" import --package "$out/work/chain.tgz" --store "$store" --name demo-chain > "$out/work/chain-record.json"
chain_id=$(field id < "$out/work/chain-record.json")
echo "image $chain_id"; grep -E '"(size|virtual_size|checksum|disk_format|container_format)"' "$out/work/chain-record.json"

say "5. export the chain image into the container $out/dest/exports (one dynamic VHD, a DLO)"
"$bin" export --store "$store" --image "$chain_id" --to "$out/dest/exports"

say "6. export the imported dynamic image"
"$bin" export --store "$store" --image "$dyn_id" --to "$out/dest/exports" > "$out/work/export-dynamic.json"
sed -n 's/^ *"\(status\|result\)": \(.*\)/  \1: \2/p' "$out/work/export-dynamic.json"
grep -A1 '"result"' "$out/work/export-dynamic.json" | tail -n1

say "what is in the image store and the receiving container"
ls -l "$store/images" "$out/dest/exports"

say "the exported chain, reassembled from its segments (what a DLO GET returns)"
cat "$out/dest/exports/$chain_id.vhd-"* > "$out/work/exported-chain.vhd"
"$bin" info "$out/work/exported-chain.vhd"

say "byte comparison of the virtual disks"
"$bin" convert -O raw fixtures/chain/leaf.vhd "$out/work/chain.raw"
"$bin" convert -O raw "$out/work/exported-chain.vhd" "$out/work/exported-chain.raw"
cmp "$out/work/chain.raw" "$out/work/exported-chain.raw" && echo "chain export: identical to the chain's content (cloudimg convert)"
if command -v qemu-img >/dev/null; then
    qemu-img convert -f vpc -O raw "$out/work/exported-chain.vhd" "$out/work/exported-chain.qemu.raw"
    cmp "$out/work/chain.raw" "$out/work/exported-chain.qemu.raw" && echo "chain export: identical as qemu-img reads it"
    cat "$out/dest/exports/$dyn_id.vhd-"* > "$out/work/exported-dynamic.vhd"
    qemu-img convert -f vpc -O raw fixtures/dynamic-qemu.vhd "$out/work/dynamic.raw"
    qemu-img convert -f vpc -O raw "$out/work/exported-dynamic.vhd" "$out/work/exported-dynamic.raw"
    cmp "$out/work/dynamic.raw" "$out/work/exported-dynamic.raw" && echo "import+export of dynamic-qemu.vhd: identical (qemu-img)"
fi
echo
echo "(file checksums differ by design: import and export rewrite the VHD; the disks are equal)"
