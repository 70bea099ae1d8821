#!/usr/bin/env bash
# Import and export end to end through the local Swift (scripts/swift-up.sh), measured
# against the yardsticks of issue 6, side by side in one run:
#
#  stores: the image store is the embedded default, a local directory ("local"), and/or
#          a container of the same Swift ("swift"), per BENCH_STORES (default "local swift"
#          up to 2 GiB allocated, "local" above: disk). With a Swift store, export reads
#          the package through Swift as well as writing through it, and import writes the
#          package through it: on 2 shared cores Swift's own CPU time for those extra bytes
#          stands in series with the yardstick's, which does one of the two.
#  export: a 3-layer chain with BENCH_SIZE_MB MiB allocated (virtual BENCH_VIRT_MB,
#          default max(4096, 2 x allocated)) stored as an image, exported by
#          `cloudimg export` as a Cloud Images DLO (1,048,576,000-byte segments),
#          against `swift upload --segment-size 1048576000` of the already coalesced
#          VHD (coalesced beforehand, not timed). Goal: cloudimg <= 1.25 x swift upload.
#          Two images of the same chain: an indexed package (what `cloudimg import`
#          and `cloudimg pack --indexed` write; export reads its layers by range) and
#          a plain `tar | pigz` package as a hypervisor snapshot arrives (export must
#          read it whole and spool the layers before the first segment).
#  import: the exported VHD (the chain's disk as one dynamic VHD, a DLO in Swift),
#          imported by `cloudimg import` (checks, conversion, gzip level $LEVEL package,
#          MD5/SHA-512, stored in the image store), against the slower of
#          `swift download` of that object to a file and `tar -c 0.vhd | pigz -p 2
#          -$LEVEL >/dev/null` of the downloaded file. Goal: cloudimg <= 1.25 x the
#          slower yardstick. `tar | igzip -T 2 -3` (ISA-L) of the same file is shown
#          beside it (issue 19: import <= 1.1 x the slower of download and igzip).
#
# Each round runs every tool once, alternating; BENCH_REPEAT rounds (default 3); the
# table shows the median wall time, the largest peak RSS, the client's CPU seconds
# (user + sys) and the Swift servers' CPU seconds during the command (the 2 cores are
# shared with them). The first round checks the exported VHD against the coalesced one
# with qemu-img compare. Every Swift container made here is deleted at the end; objects
# are removed as soon as they are measured (the disk is shared with Swift).
#
# BENCH_DIR=/work/scratch-x BENCH_SIZE_MB=4096 bash benches/compare/e2e.sh
source "$(dirname "$0")/lib.sh"
need swift qemu-img pigz igzip tar
bash "$bench_root/scripts/swift-up.sh" >/dev/null
set -a
# shellcheck disable=SC1091
source "$bench_root/target/swift.env"
set +a
CLOUDIMG_BIN="$(cloudimg_bin)"
(cd "$bench_root" && cargo build --release --quiet -p cloudimg-tasks --example mkchain >&2)
MKCHAIN="${CARGO_TARGET_DIR:-$bench_root/target}/release/examples/mkchain"
LEVEL=6
alloc="$BENCH_SIZE_MB"
virt="${BENCH_VIRT_MB:-$((alloc * 2 > 4096 ? alloc * 2 : 4096))}"
repeat="${BENCH_REPEAT:-3}"
# Above 2 GiB allocated, spare the disk (Swift shares it): no plain-package export (it
# would store a second package and spool a third copy) and no qemu-img check (it needs
# the coalesced VHD next to the download); BENCH_LEGACY=1 / BENCH_CHECK=1 force them.
big=$((alloc > 2048 ? 1 : 0))
legacy_run="${BENCH_LEGACY:-$((1 - big))}"
check="${BENCH_CHECK:-$((1 - big))}"
if [ "$big" = 1 ]; then stores="${BENCH_STORES:-local}"; else stores="${BENCH_STORES:-local swift}"; fi

d="$BENCH_DIR/e2e"
rm -rf "$d"
mkdir -p "$d/chain" "$d/layers" "$d/out"
tag="$$"
store="e2e-images-$tag" dest="e2e-exports-$tag" up="e2e-upload-$tag" istore="e2e-imported-$tag"
cleanup() {
    for x in "$store" "$dest" "$up" "${up}_segments" "$istore"; do swift delete "$x" >/dev/null 2>&1 || true; done
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$d"
}
# The image store of kind $1: a local directory or a Swift container.
store_url() { if [ "$1" = local ]; then echo "$d/images"; else echo "swift://$store"; fi; }
trap cleanup EXIT

# Inputs, not timed: the chain as an image (package of 0.vhd = leaf .. 2.vhd = base),
# and the coalesced VHD the yardsticks start from.
"$MKCHAIN" "$d/chain" "$virt" "$alloc" >/dev/null
ln "$d/chain/leaf.vhd" "$d/layers/0.vhd"
ln "$d/chain/mid.vhd" "$d/layers/1.vhd"
ln "$d/chain/base.vhd" "$d/layers/2.vhd"
if [ "$legacy_run" = 1 ]; then
    tar -c --directory="$d/layers" 0.vhd 1.vhd 2.vhd | pigz -p 2 -1 >"$d/chain.tgz"
fi
"$CLOUDIMG_BIN" pack --layout xenserver --indexed --level 1 "$d/chain-indexed.tgz" \
    "$d/layers/0.vhd" "$d/layers/1.vhd" "$d/layers/2.vhd" >/dev/null
rm -rf "$d/layers"
for x in "$store" "$dest" "$up"; do swift post "$x" >/dev/null; done
register() {
    "$CLOUDIMG_BIN" import --package "$1" --store "$(store_url "$3")" --name "$2" --owner bench |
        sed -n 's/^  "id": "\(.*\)",/\1/p'
}
# image[KIND] / legacy[KIND]: the chain registered in each store (possibly under the same
# id: ids derive from the task input). Each export writes $dest/<id>.vhd afresh; the first
# store's runs last and stays, as the import's source.
declare -A image legacy
for k in $stores; do
    image[$k]="$(register "$d/chain-indexed.tgz" chain-indexed "$k")"
    [ -n "${image[$k]}" ] || { note "registering the chain in the $k store failed"; exit 1; }
    if [ "$legacy_run" = 1 ]; then
        legacy[$k]="$(register "$d/chain.tgz" chain-legacy "$k")"
        [ -n "${legacy[$k]}" ] || { note "registering the chain (plain package) in the $k store failed"; exit 1; }
    fi
done
rm -f "$d/chain.tgz" "$d/chain-indexed.tgz"
first="${stores%% *}"
export_order="$(echo "$stores" | tr ' ' '\n' | tac | tr '\n' ' ')"
"$CLOUDIMG_BIN" coalesce "$d/chain/leaf.vhd" "$d/coalesced.vhd" >/dev/null
rm -rf "$d/chain"
bytes="$(stat -c %s "$d/coalesced.vhd")"
note "chain: $alloc MiB allocated of $virt MiB virtual; coalesced VHD $bytes bytes; stores: $stores"

# CPU seconds (user + sys) of the running Swift server processes.
swift_cpu() {
    local tck p sum=0 f
    tck="$(getconf CLK_TCK)"
    for p in $(pgrep -f 'swift-(proxy|object|container|account)-server' || true); do
        f="$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null)" || continue
        # Fields after "(comm)": 12 = utime, 13 = stime (stat fields 14 and 15).
        sum=$((sum + $(echo "$f" | awk '{ print $12 + $13 }')))
    done
    awk -v s="$sum" -v t="$tck" 'BEGIN { printf "%.1f", s / t }'
}

# timed KEY CMD...: one run; appends "KEY wall rss_mib cpu swift_cpu" to $d/results.
timed() {
    local key="$1" tf="$d/.time" s0 s1 rc=0
    shift
    sync
    s0="$(swift_cpu)"
    /usr/bin/time -f "%e %M %U %S" -o "$tf" "$@" >"$d/.out" 2>"$d/.err" || rc=$?
    s1="$(swift_cpu)"
    if [ "$rc" != 0 ]; then
        note "$key failed (exit $rc):"
        tail -n 5 "$d/.err" >&2
        exit 1
    fi
    read -r wall rss usr sys <"$tf"
    echo "$key $wall $((rss / 1024)) $(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.1f", u + s }') $(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.1f", b - a }')" >>"$d/results"
    note "$key: $wall s"
}

: >"$d/results"
for round in $(seq 1 "$repeat"); do
    # Export: the yardstick uploads the coalesced VHD (removed again at once: disk space);
    # cloudimg exports the chain image from each store.
    swift delete "$up" coalesced.vhd >/dev/null 2>&1 || true
    (cd "$d" && timed swift_upload swift upload --segment-size 1048576000 "$up" coalesced.vhd)
    swift delete "$up" coalesced.vhd >/dev/null 2>&1 || true
    for k in $export_order; do
        # A fresh export each round (an existing one would be resumed, not redone). The
        # first store's export comes last and stays for the import below.
        swift delete "$dest" --prefix "${image[$k]}.vhd" >/dev/null 2>&1 || true
        timed "cloudimg_export_$k" "$CLOUDIMG_BIN" export --store "$(store_url "$k")" \
            --image "${image[$k]}" --to "swift://$dest" --owner bench
        if [ "$legacy_run" = 1 ]; then
            swift delete "$dest" --prefix "${legacy[$k]}.vhd" >/dev/null 2>&1 || true
            timed "cloudimg_export_legacy_$k" "$CLOUDIMG_BIN" export --store "$(store_url "$k")" \
                --image "${legacy[$k]}" --to "swift://$dest" --owner bench
            swift delete "$dest" --prefix "${legacy[$k]}.vhd" >/dev/null 2>&1 || true
        fi
        if [ "$k" != "$first" ]; then
            swift delete "$dest" --prefix "${image[$k]}.vhd" >/dev/null 2>&1 || true
        fi
    done
    src="${image[$first]}.vhd"
    # Import: the exported VHD (the chain's disk as one dynamic VHD) is the source; the
    # yardsticks download it and pack the downloaded file.
    timed swift_download swift download -o "$d/out/0.vhd" "$dest" "$src"
    if [ "$round" = 1 ] && [ "$check" = 1 ]; then
        if qemu-img compare -q -f vpc -F vpc "$d/coalesced.vhd" "$d/out/0.vhd"; then
            note "export: the exported VHD holds the chain's disk (qemu-img compare)"
        else
            note "export: EXPORTED DISK DIFFERS"
            exit 1
        fi
    fi
    timed pigz_pack sh -c "tar -c --directory='$d/out' 0.vhd | pigz -p 2 -$LEVEL >/dev/null"
    timed igzip_pack sh -c "tar -c --directory='$d/out' 0.vhd | igzip -T 2 -3 -c >/dev/null"
    rm -f "$d/out/0.vhd"
    for k in $stores; do
        # A store of its own per import, emptied once measured (disk space).
        if [ "$k" = local ]; then
            into="$d/imported"
        else
            into="swift://$istore"
            swift post "$istore" >/dev/null
        fi
        timed "cloudimg_import_$k" "$CLOUDIMG_BIN" import --from "swift://$dest/$src" \
            --store "$into" --owner bench --name "round-$round" --level "$LEVEL"
        rm -rf "$d/imported"
        swift delete "$istore" >/dev/null 2>&1 || true
    done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$d/results"; }
wall() { col "$1" 2 | median; }
maxrss() { col "$1" 3 | sort -n | tail -1; }
cpu() { col "$1" 4 | median; }
scpu() { col "$1" 5 | median; }

echo
echo "### import/export end to end against the issue's yardsticks (${alloc} MiB allocated, ${virt} MiB virtual, local Swift)"
echo
echo "$(date -u +%F) · $(nproc) cores · $(uname -sr) · $repeat rounds, median wall time · coalesced VHD $bytes bytes"
echo
echo "| operation | tool | seconds | MiB/s | peak RSS MiB | client CPU s | Swift CPU s |"
echo "|---|---|---:|---:|---:|---:|---:|"
row() {
    local w
    w="$(wall "$3")"
    echo "| $1 | $2 | $w | $(awk -v b="$bytes" -v s="$w" 'BEGIN { printf "%.0f", b / 1048576 / s }') | $(maxrss "$3") | $(cpu "$3") | $(scpu "$3") |"
}
row export "swift upload --segment-size 1048576000 (coalesced VHD)" swift_upload
for k in $stores; do
    row export "cloudimg export (3-layer chain, indexed package, $k image store)" "cloudimg_export_$k"
    if [ "$legacy_run" = 1 ]; then
        row export "cloudimg export (3-layer chain, plain tar.gz package, $k image store)" "cloudimg_export_legacy_$k"
    fi
done
row import "swift download (to a file)" swift_download
row import "tar -c 0.vhd | pigz -p 2 -$LEVEL" pigz_pack
row import "tar -c 0.vhd | igzip -T 2 -3" igzip_pack
for k in $stores; do
    row import "cloudimg import ($k image store)" "cloudimg_import_$k"
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.2f", a / b }'; }
slower="$(printf '%s\n%s\n' "$(wall swift_download)" "$(wall pigz_pack)" | sort -n | tail -1)"
for k in $stores; do
    echo "export, $k image store (indexed package): cloudimg / swift upload = $(ratio "$(wall "cloudimg_export_$k")" "$(wall swift_upload)") (goal <= 1.25); peak RSS $(maxrss "cloudimg_export_$k") MiB (goal < 256)"
    if [ "$legacy_run" = 1 ]; then
        echo "export, $k image store (plain tar.gz package): cloudimg / swift upload = $(ratio "$(wall "cloudimg_export_legacy_$k")" "$(wall swift_upload)"); peak RSS $(maxrss "cloudimg_export_legacy_$k") MiB"
    fi
    echo "import, $k image store: cloudimg / slower of (download, pigz) = $(ratio "$(wall "cloudimg_import_$k")" "$slower") (goal <= 1.25; slower yardstick $slower s); peak RSS $(maxrss "cloudimg_import_$k") MiB"
    islower="$(printf '%s\n%s\n' "$(wall swift_download)" "$(wall igzip_pack)" | sort -n | tail -1)"
    echo "import, $k image store: cloudimg / slower of (download, igzip -3) = $(ratio "$(wall "cloudimg_import_$k")" "$islower") (goal <= 1.1; slower yardstick $islower s)"
done
echo
echo "Swift CPU counts whatever the shared Swift servers did during the command (other"
echo "users' requests included); client CPU is the command's own user + sys time."
echo
echo "Per round (key wall_s rss_mib client_cpu_s swift_cpu_s):"
sed 's/^/    /' "$d/results"
