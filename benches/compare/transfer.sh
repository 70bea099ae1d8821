#!/usr/bin/env bash
# Swift upload and download: cloudimg against rclone (the anchor: Debian's package,
# swift backend, `--transfers 4`, the same segment size) and python-swiftclient
# (`swift upload --use-slo --segment-threads 10`, `swift download`), run the way a user
# runs them (see "Runs in turn" in lib.sh): tools in turn, one warm-up round then
# BENCH_RUNS counted rounds, median and min-max, CPU (user+sys) and peak RSS.
#
# Each tool runs with its defaults besides the segment size: `cloudimg upload` computes
# the whole-object MD5 and checks every segment's MD5 against its ETag; rclone checks
# each segment's MD5 against its ETag. Downloads are compared with cmp once per size.
# The local one-node Swift shares the 2 cores with the client: its CPU is in every
# tool's wall time (not in the CPU column).
#
# bash benches/compare/transfer.sh
# BENCH_SIZES="1024 4096" BENCH_RUNS=5 bash benches/compare/transfer.sh
#   BENCH_SEGMENT_MB=64   segment size
source "$(dirname "$0")/lib.sh"
need swift rclone cmp python3
bash "$bench_root/scripts/swift-up.sh" >&2
# Only the tempauth lines: the file also holds lists that are not shell words.
while IFS='=' read -r k v; do
    export "$k=$v"
done < <(grep -E '^(ST_AUTH|ST_USER|ST_KEY)=' "$bench_root/target/swift.env")
CLOUDIMG_BIN="$(cloudimg_bin)"
implemented upload || exit 2
seg_mb="${BENCH_SEGMENT_MB:-64}"
sizes="${BENCH_SIZES:-$BENCH_SIZE_MB}"
BENCH_RUNS="${BENCH_RUNS:-5}"
d="$BENCH_DIR/transfer"
mkdir -p "$d"
c="bench-$$"
swift post "$c" >/dev/null

# rclone's remote, from the same credentials (no config file).
export RCLONE_CONFIG_BENCH_TYPE=swift
export RCLONE_CONFIG_BENCH_AUTH="$ST_AUTH"
export RCLONE_CONFIG_BENCH_USER="$ST_USER"
export RCLONE_CONFIG_BENCH_KEY="$ST_KEY"
rclone_flags=(--config /dev/null --transfers 4 --swift-chunk-size "${seg_mb}M" -q)

up() {
    local tool="$1" src="$2" name="$3"
    case "$tool" in
    cloudimg) timed "$group" "$tool" "$CLOUDIMG_BIN" upload --segment-size "${seg_mb}M" "$src" "swift://$c/$name" ;;
    rclone) timed "$group" "$tool" rclone "${rclone_flags[@]}" copyto "$src" "bench:$c/$name" ;;
    swift) timed "$group" "$tool" swift upload --use-slo --segment-size "$((seg_mb << 20))" --segment-threads 10 --object-name "$name" "$c" "$src" ;;
    esac
}

down() {
    local tool="$1" name="$2" out="$3"
    rm -f "$out"
    sync
    case "$tool" in
    cloudimg) timed "$group" "$tool" "$CLOUDIMG_BIN" download "swift://$c/$name" "$out" ;;
    rclone) timed "$group" "$tool" rclone "${rclone_flags[@]}" copyto "bench:$c/$name" "$out" ;;
    swift) timed "$group" "$tool" swift download -o "$out" "$c" "$name" ;;
    esac
}

drop() { swift delete "$c" "$1" >/dev/null 2>&1 || true; }

tools=(rclone cloudimg swift)
for size in $sizes; do
    src="$d/disk-$size.raw"
    make_disk_raw "$src" "$size"
    group="upload $size MiB, ${seg_mb}M segments"
    for round in $(seq 0 "$BENCH_RUNS"); do
        for tool in "${tools[@]}"; do
            up "$tool" "$src" "$tool-$size"
            drop "$tool-$size"
        done
    done
    # One object written by each tool's own upload, read back by the same tool.
    for tool in "${tools[@]}"; do
        round=0 up "$tool" "$src" "$tool-$size"
    done
    # One output at a time (each tool's first download is compared, then every output
    # is removed), so a 4 GiB run needs the source, three objects and one output.
    group="download $size MiB (each tool's own upload)"
    for round in $(seq 0 "$BENCH_RUNS"); do
        for tool in "${tools[@]}"; do
            down "$tool" "$tool-$size" "$d/out"
            if [ "$round" = 0 ]; then
                cmp "$src" "$d/out" >/dev/null && note "$size MiB download by $tool: equal to the source" ||
                    note "$size MiB download by $tool: DIFFERS"
            fi
            rm -f "$d/out"
        done
    done
    for tool in "${tools[@]}"; do
        drop "$tool-$size"
    done
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$src"
done
swift delete "$c" >/dev/null 2>&1 || true
swift delete "${c}_segments" >/dev/null 2>&1 || true
turns_table "Swift upload and download (local one-node Swift; sizes ${sizes// /, } MiB; ${seg_mb} MiB segments)" rclone swift
cleanup_bench transfer
