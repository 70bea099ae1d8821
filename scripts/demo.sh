#!/usr/bin/env bash
# The main job on the embedded default (a local-directory image store under demo-out/):
# build cloudimg, import shipped VHDs as Glance import tasks, add the shipped 3-layer
# chain as a XenServer package, export images as Cloud Images DLOs, and show that the
# exported disks hold the same bytes as what went in. Then serve the same store through
# the Cloud Images v2 API (`cloudimg serve`: SQLite catalog, static tokens), list the
# images with curl (and `openstack image list` when installed), and stop the server.
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

say "7. the Cloud Images v2 API on the embedded default: cloudimg serve (SQLite catalog and static tokens under $out, the same store)"
owner=$(field owner < "$out/work/chain-record.json")
token=demo-token
printf '{"%s": {"project_id": "%s", "roles": ["cloudImages:admin"]}}\n' "$token" "$owner" > "$out/tokens.json"
# Port 0: the system picks a free port; the server logs the address it listens on.
"$bin" serve --db "sqlite:$out/catalog.db" --store "$store" --auth static --tokens "$out/tokens.json" \
    --listen 127.0.0.1:0 > "$out/work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 1 300); do
    addr=$(sed 's/\x1b\[[0-9;]*m//g' "$out/work/serve.log" | sed -n 's/.*listening.*addr=\(127\.0\.0\.1:[0-9]*\).*/\1/p' | head -n1)
    [ -n "$addr" ] && break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$out/work/serve.log"; echo "cloudimg serve exited"; exit 2; }
    sleep 0.1
done
[ -n "$addr" ] || { cat "$out/work/serve.log"; echo "cloudimg serve did not start"; exit 2; }
api="http://$addr"
echo "listening on $api (log: $out/work/serve.log); token $token for project $owner"
echo "\$ curl -H 'X-Auth-Token: $token' $api/v2/images"
curl -sSf -H "X-Auth-Token: $token" "$api/v2/images" > "$out/work/api-images.json"
# One line per image: id, name, status, size (the JSON is one line; split it on image objects).
sed 's/},{/}\n{/g' "$out/work/api-images.json" | while IFS= read -r img || [ -n "$img" ]; do
    printf '  %s  %-14s %-7s %s bytes\n' \
        "$(printf '%s' "$img" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')" \
        "$(printf '%s' "$img" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')" \
        "$(printf '%s' "$img" | sed -n 's/.*"status":"\([^"]*\)".*/\1/p')" \
        "$(printf '%s' "$img" | sed -n 's/.*"size":\([0-9]*\).*/\1/p')"
done
for id in "$dyn_id" "$chain_id"; do
    grep -q "\"id\":\"$id\"" "$out/work/api-images.json" || { echo "image $id (imported and exported) is missing from the API's list"; exit 1; }
done
echo "the imported and exported images $dyn_id and $chain_id are in the API's list"
if command -v openstack >/dev/null; then
    echo "\$ openstack --os-auth-type admin_token --os-endpoint $api/v2 --os-token $token image list"
    HOME="$PWD/$out/work" openstack --os-auth-type admin_token --os-endpoint "$api/v2" --os-token "$token" image list
fi
kill "$serve_pid"
wait "$serve_pid" || true
trap - EXIT
echo "cloudimg serve stopped"
