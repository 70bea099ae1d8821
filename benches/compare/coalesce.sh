#!/usr/bin/env bash
# cloudimg coalesce of a 4-deep chain (dynamic base + 3 differencing layers with
# partial bitmaps, mkchain.py --deep) into one dynamic VHD, against `cat` of
# every layer into one file: every allocated byte read once and written once,
# the I/O limit (qemu-img cannot read VHD differencing disks). Run the way a
# user runs them (see "Runs in turn" in lib.sh): new and overwritten outputs;
# `--no-sync` against cat, the default (fsync) against cat followed by
# `sync FILE` (an fsync of cat's output).
#
# bash benches/compare/coalesce.sh        (BENCH_SIZE_MB virtual, default 1024)
source "$(dirname "$0")/lib.sh"
need python3 sync
CLOUDIMG_BIN="$(cloudimg_bin)"
d="$BENCH_DIR/coalesce"
mkdir -p "$d"
[ -f "$d/l3.vhd" ] || python3 "$(dirname "$0")/mkchain.py" --deep 4 "$d" "$BENCH_SIZE_MB"
layers=("$d/l0.vhd" "$d/l1.vhd" "$d/l2.vhd" "$d/l3.vhd")
mib=$(($(cat "${layers[@]}" | wc -c) >> 20))
implemented coalesce || exit 2

for sync in nosync fsync; do
    for out in new over; do
        group="$BENCH_SIZE_MB MiB virtual, 4 layers, $mib MiB in files: $out output, $sync"
        for round in $(seq 0 "$BENCH_RUNS"); do
            for tool in cat cloudimg; do
                target="$d/$tool.out"
                if [ "$out" = new ] && [ -e "$target" ]; then
                    sync
                    timed "$group" "(rm of the previous output)" rm -f "$target"
                fi
                sync
                case "$tool:$sync" in
                cat:nosync) timed "$group" "cat" sh -c 'cat "$@" > "$0"' "$target" "${layers[@]}" ;;
                cat:fsync) timed "$group" "cat + sync FILE" sh -c 'cat "$@" > "$0" && sync "$0"' "$target" "${layers[@]}" ;;
                cloudimg:nosync) timed "$group" "cloudimg" "$CLOUDIMG_BIN" coalesce --no-sync -O vpc "$d/l3.vhd" "$target" ;;
                cloudimg:fsync) timed "$group" "cloudimg" "$CLOUDIMG_BIN" coalesce -O vpc "$d/l3.vhd" "$target" ;;
                esac
            done
        done
    done
done
# The coalesced image, read by qemu-img, must equal the chain read by cloudimg
# (the chain reader is tested against oracles; no rival reads the chain).
if implemented convert; then
    "$CLOUDIMG_BIN" convert -f vpc -O raw "$d/l3.vhd" "$d/chain.raw" >/dev/null 2>&1 &&
        qemu-img convert -f vpc -O raw "$d/cloudimg.out" "$d/c.raw" &&
        cmp "$d/chain.raw" "$d/c.raw" >/dev/null && note "coalesce: output (read by qemu-img) equals the chain" ||
        note "coalesce: OUTPUT DIFFERS or could not be checked"
fi
rm -f "$d/chain.raw" "$d/c.raw" "$d/cat.out" "$d/cloudimg.out"
turns_table "coalesce (4-layer chain, ${BENCH_SIZE_MB} MiB virtual)" cat "cat + sync FILE"
cleanup_bench coalesce
