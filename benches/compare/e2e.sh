#!/usr/bin/env bash
# Import and export end to end through the local Swift (scripts/swift-up.sh), measured
# against the yardsticks of issue 6, side by side in one run:
#
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
#          MD5/SHA-512, upload into a Swift image store), against the slower of
#          `swift download` of that object to a file and `tar -c 0.vhd | pigz -p 2
#          -$LEVEL >/dev/null` of the downloaded file. Goal: cloudimg <= 1.25 x the
#          slower yardstick.
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
need swift qemu-img pigz tar
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

d="$BENCH_DIR/e2e"
rm -rf "$d"
mkdir -p "$d/chain" "$d/layers" "$d/out"
tag="$$"
store="e2e-images-$tag" dest="e2e-exports-$tag" up="e2e-upload-$tag"
cleanup() {
    for x in "$store" "$dest" "$up" "${up}_segments"; do swift delete "$x" >/dev/null 2>&1 || true; done
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$d"
}
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
    "$CLOUDIMG_BIN" import --package "$1" --store "swift://$store" --name "$2" --owner bench |
        sed -n 's/^  "id": "\(.*\)",/\1/p'
}
image="$(register "$d/chain-indexed.tgz" chain-indexed)"
legacy=""
if [ "$legacy_run" = 1 ]; then
    legacy="$(register "$d/chain.tgz" chain-legacy)"
    [ -n "$legacy" ] || { note "registering the chain (plain package) failed"; exit 1; }
fi
[ -n "$image" ] || { note "registering the chain failed"; exit 1; }
rm -f "$d/chain.tgz" "$d/chain-indexed.tgz"
"$CLOUDIMG_BIN" coalesce "$d/chain/leaf.vhd" "$d/coalesced.vhd" >/dev/null
rm -rf "$d/chain"
bytes="$(stat -c %s "$d/coalesced.vhd")"
note "chain: $alloc MiB allocated of $virt MiB virtual; coalesced VHD $bytes bytes; images $image (indexed), $legacy (legacy)"

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
    # cloudimg exports the chain image.
    swift delete "$up" coalesced.vhd >/dev/null 2>&1 || true
    (cd "$d" && timed swift_upload swift upload --segment-size 1048576000 "$up" coalesced.vhd)
    swift delete "$up" coalesced.vhd >/dev/null 2>&1 || true
    # A fresh export each round (an existing one would be resumed, not redone).
    swift delete "$dest" --prefix "$image.vhd" >/dev/null 2>&1 || true
    timed cloudimg_export "$CLOUDIMG_BIN" export --store "swift://$store" --image "$image" \
        --to "swift://$dest" --owner bench
    if [ "$legacy_run" = 1 ]; then
        swift delete "$dest" --prefix "$legacy.vhd" >/dev/null 2>&1 || true
        timed cloudimg_export_legacy "$CLOUDIMG_BIN" export --store "swift://$store" --image "$legacy" \
            --to "swift://$dest" --owner bench
        swift delete "$dest" --prefix "$legacy.vhd" >/dev/null 2>&1 || true
    fi
    # Import: the exported VHD (the chain's disk as one dynamic VHD) is the source; the
    # yardsticks download it and pack the downloaded file.
    timed swift_download swift download -o "$d/out/0.vhd" "$dest" "$image.vhd"
    if [ "$round" = 1 ] && [ "$check" = 1 ]; then
        if qemu-img compare -q -f vpc -F vpc "$d/coalesced.vhd" "$d/out/0.vhd"; then
            note "export: the exported VHD holds the chain's disk (qemu-img compare)"
        else
            note "export: EXPORTED DISK DIFFERS"
            exit 1
        fi
    fi
    timed pigz_pack sh -c "tar -c --directory='$d/out' 0.vhd | pigz -p 2 -$LEVEL >/dev/null"
    rm -f "$d/out/0.vhd"
    # A distinct name per round: the same input would be the same task (already done).
    timed cloudimg_import "$CLOUDIMG_BIN" import --from "swift://$dest/$image.vhd" \
        --store "swift://$store" --owner bench --name "round-$round" --level "$LEVEL"
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
row export "cloudimg export (3-layer chain, indexed package)" cloudimg_export
if [ "$legacy_run" = 1 ]; then
    row export "cloudimg export (3-layer chain, plain tar.gz package)" cloudimg_export_legacy
fi
row import "swift download (to a file)" swift_download
row import "tar -c 0.vhd | pigz -p 2 -$LEVEL" pigz_pack
row import "cloudimg import" cloudimg_import
echo
ex="$(awk -v a="$(wall cloudimg_export)" -v b="$(wall swift_upload)" 'BEGIN { printf "%.2f", a / b }')"
exl="$(awk -v a="$(wall cloudimg_export_legacy)" -v b="$(wall swift_upload)" 'BEGIN { if (a != "") printf "%.2f", a / b }')"
slower="$(printf '%s\n%s\n' "$(wall swift_download)" "$(wall pigz_pack)" | sort -n | tail -1)"
im="$(awk -v a="$(wall cloudimg_import)" -v b="$slower" 'BEGIN { printf "%.2f", a / b }')"
echo "export (indexed package): cloudimg / swift upload = $ex (goal <= 1.25); peak RSS $(maxrss cloudimg_export) MiB (goal < 256)"
if [ "$legacy_run" = 1 ]; then
    echo "export (plain tar.gz package): cloudimg / swift upload = $exl; peak RSS $(maxrss cloudimg_export_legacy) MiB"
fi
echo "import: cloudimg / slower of (download, pigz) = $im (goal <= 1.25; slower yardstick $slower s)"
echo
echo "Swift CPU counts whatever the shared Swift servers did during the command (other"
echo "users' requests included); client CPU is the command's own user + sys time."
echo
echo "Per round (key wall_s rss_mib client_cpu_s swift_cpu_s):"
sed 's/^/    /' "$d/results"
