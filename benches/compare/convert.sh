#!/usr/bin/env bash
# cloudimg convert against qemu-img convert, VHD -> raw and raw -> dynamic VHD,
# run the way a user runs them (see "Runs in turn" in lib.sh): tools in turn,
# one warm-up round then BENCH_RUNS counted rounds, median and min-max.
#
# Inputs: a sparse raw disk of each size in BENCH_SIZES (MiB virtual) with each
# share in BENCH_PCTS of its 2 MiB blocks holding data (mkdisk.py), and the
# dynamic VHD qemu-img makes of it (`qemu-img convert -f raw -O vpc`).
# Cases: each direction, each output (a new path: the previous output removed
# before the run, not timed; or an overwritten one: the previous output left in
# place), each sync mode:
#   --no-sync   cloudimg --no-sync against qemu-img's default (no fsync either)
#   fsync       cloudimg's default (fsync before the rename) against qemu-img's
#               default and against `qemu-img -t writeback` (fdatasync at the end)
# Machine costs users elsewhere may not have are rows of their own, never
# subtracted: touching fresh memory (this VM hands freed memory back to its
# host), filling a new file with the data's bytes (fill.rs: the floor of any
# "new output" row) and removing the previous output (this ext4 is mounted with `discard`:
# freeing blocks waits for the disk), which a user who removes it first pays.
#
# CLOUDIMG_OLD=/path/to/an/older/cloudimg adds that build to the rotation
# ("cloudimg old", run just before cloudimg): a change measured side by side.
#
# bash benches/compare/convert.sh
# BENCH_SIZES="1024 8192" BENCH_PCTS="25 90" BENCH_RUNS=5 bash benches/compare/convert.sh
source "$(dirname "$0")/lib.sh"
need qemu-img cmp python3
CLOUDIMG_BIN="$(cloudimg_bin)"
FILL_BIN="$(fill_bin)"
d="$BENCH_DIR/convert"
mkdir -p "$d"
sizes="${BENCH_SIZES:-$BENCH_SIZE_MB}"
pcts="${BENCH_PCTS:-25 90}"
directions="${BENCH_DIRECTIONS:-vhd2raw raw2vhd}"
outputs="${BENCH_OUTPUTS:-new over}"
syncs="${BENCH_SYNCS:-nosync fsync}"
implemented convert || exit 2

ext() { [ "$1" = vhd2raw ] && echo raw || echo vhd; }

# One run of TOOL for case (DIR, OUT, SYNC) on input IN (raw or VHD) into the
# tool's own output file.
run_tool() {
    local group="$1" tool="$2" dir="$3" out="$4" sync="$5" in="$6"
    local target="$d/$(printf %s "$tool" | tr -c 'a-z' '_').$(ext "$dir")"
    if [ "$out" = new ]; then
        # What the user pays to remove the previous output is a row of its own.
        if [ -e "$target" ]; then
            sync
            timed "$group" "(rm of the previous output)" rm -f "$target"
        fi
    fi
    sync
    local ns=()
    [ "$sync" = nosync ] && ns=(--no-sync)
    case "$tool:$dir" in
    qemu-img:vhd2raw) timed "$group" "$tool" qemu-img convert -f vpc -O raw "$in" "$target" ;;
    qemu-img:raw2vhd) timed "$group" "$tool" qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$in" "$target" ;;
    "qemu-img -t writeback:vhd2raw") timed "$group" "$tool" qemu-img convert -t writeback -f vpc -O raw "$in" "$target" ;;
    "qemu-img -t writeback:raw2vhd") timed "$group" "$tool" qemu-img convert -t writeback -f raw -O vpc -o subformat=dynamic,force_size=on "$in" "$target" ;;
    cloudimg:vhd2raw) timed "$group" "$tool" "$CLOUDIMG_BIN" convert "${ns[@]}" -f vpc -O raw "$in" "$target" ;;
    cloudimg:raw2vhd) timed "$group" "$tool" "$CLOUDIMG_BIN" convert "${ns[@]}" -f raw -O vpc -o subformat=dynamic "$in" "$target" ;;
    "cloudimg old:vhd2raw") timed "$group" "$tool" "$CLOUDIMG_OLD" convert "${ns[@]}" -f vpc -O raw "$in" "$target" ;;
    "cloudimg old:raw2vhd") timed "$group" "$tool" "$CLOUDIMG_OLD" convert "${ns[@]}" -f raw -O vpc -o subformat=dynamic "$in" "$target" ;;
    esac
}

for size in $sizes; do
    for pct in $pcts; do
        raw="$d/disk-$size-$pct.raw"
        vhd="$d/disk-$size-$pct.vhd"
        [ -f "$raw" ] || python3 "$(dirname "$0")/mkdisk.py" "$raw" "$size" "$pct"
        [ -f "$vhd" ] || qemu-img convert -f raw -O vpc -o subformat=dynamic "$raw" "$vhd"
        alloc=$(($(du -k "$raw" | cut -f1) / 1024))
        label="$size MiB, $pct % ($alloc MiB data)"

        # The fresh-page cost of this VM: the same bytes through a new buffer
        # of the data's size (every page touched for the first time) or
        # through one reused 2 MiB buffer.
        for round in $(seq 0 "$BENCH_RUNS"); do
            timed "$label: touch $alloc MiB" "new memory" dd if=/dev/zero of=/dev/null bs="${alloc}M" count=1 status=none
            timed "$label: touch $alloc MiB" "reused 2 MiB" dd if=/dev/zero of=/dev/null bs=2M count=$((alloc / 2)) status=none
        done
        # The floor under every "new output" row: the data's bytes written
        # into a new file through the page cache by a program that reads
        # nothing and computes nothing (benches/src/bin/fill.rs; the previous
        # file removed first, not timed), one writer in 2 MiB and 8 MiB
        # writes, two writers, two threads copying into a shared mapping. No
        # tool converting into a new file goes below the fastest of them.
        floor="$d/floor.out"
        for round in $(seq 0 "$BENCH_RUNS"); do
            for how in "write 1 2048" "write 1 8192" "write 2 8192" "mmap 2 8192"; do
                set -- $how
                rm -f "$floor"
                sync
                timed "$label: fill a new file with $alloc MiB" "$1, $2 thread(s), $(($3 / 1024)) MiB pieces" "$FILL_BIN" "$1" "$floor" "$alloc" "$2" "$3"
            done
        done
        rm -f "$floor"

        for dir in $directions; do
            in="$vhd"
            [ "$dir" = raw2vhd ] && in="$raw"
            for sync in $syncs; do
                tools=(qemu-img)
                [ "$sync" = fsync ] && tools+=("qemu-img -t writeback")
                [ -n "${CLOUDIMG_OLD:-}" ] && tools+=("cloudimg old")
                tools+=(cloudimg)
                for out in $outputs; do
                    group="$label: ${dir/2/ -> }, $out output, $sync"
                    for round in $(seq 0 "$BENCH_RUNS"); do
                        for tool in "${tools[@]}"; do
                            run_tool "$group" "$tool" "$dir" "$out" "$sync" "$in"
                        done
                    done
                done
            done
            # Outputs checked once per direction against qemu-img's: byte for
            # byte (raw), or read back by qemu-img (VHD).
            if [ "$dir" = vhd2raw ]; then
                cmp "$d/qemu_img.raw" "$d/cloudimg.raw" >/dev/null && note "$label vhd -> raw: cloudimg and qemu-img outputs are equal" ||
                    note "$label vhd -> raw: OUTPUT DIFFERS"
            else
                qemu-img compare -f vpc -F vpc "$d/qemu_img.vhd" "$d/cloudimg.vhd" >/dev/null &&
                    note "$label raw -> vhd: cloudimg and qemu-img images hold the same disk" ||
                    note "$label raw -> vhd: IMAGES DIFFER"
            fi
            rm -f "$d/qemu_img.$(ext "$dir")" "$d/qemu_img__t_writeback.$(ext "$dir")" "$d/cloudimg.$(ext "$dir")" "$d/cloudimg_old.$(ext "$dir")"
        done
        [ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$raw" "$vhd"
    done
done
refs=(qemu-img "qemu-img -t writeback")
[ -n "${CLOUDIMG_OLD:-}" ] && refs+=("cloudimg old")
turns_table "convert (dynamic VHD made by qemu-img; sizes ${sizes// /, } MiB virtual)" "${refs[@]}"
cleanup_bench convert
