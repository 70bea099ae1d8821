#!/usr/bin/env bash
# Upload and download against the local Swift (scripts/swift-up.sh): cloudimg
# against python-swiftclient (`swift upload --segment-threads 10`, SLO and DLO;
# `swift download`) and curl (one PUT / GET, the single-stream limit). Downloads
# are compared with cmp.
#
# Besides wall time, each row records where the CPU went: the client's user+system
# time (/usr/bin/time) and the Swift servers' (utime+stime of the proxy and object
# server processes from /proc, before and after). The dev Swift runs one proxy and
# one object server process (workers = 0) on the same 2 cores as the client, so the
# servers' CPU is part of every tool's budget. Other load on the Swift (other
# users' requests) shows up in the server columns: run on a quiet machine.
#
# bash benches/compare/swift.sh
#   BENCH_SEGMENT_MB=64   segment size
#   BENCH_RUNS=1          alternating rounds (every tool once per round)
source "$(dirname "$0")/lib.sh"
need swift curl cmp python3
bash "$bench_root/scripts/swift-up.sh"
set -a
# shellcheck disable=SC1091
source "$bench_root/target/swift.env"
set +a
CLOUDIMG_BIN="$(cloudimg_bin)"
seg_mb="${BENCH_SEGMENT_MB:-64}"
runs="${BENCH_RUNS:-1}"
d="$BENCH_DIR/swift"
mkdir -p "$d"
src="$d/disk.raw"
make_disk_raw "$src"
bytes=$((BENCH_SIZE_MB << 20))
c="bench-$$"
swift post "$c" >/dev/null
token="$(curl -sf -D - -o /dev/null -H "X-Auth-User: $ST_USER" -H "X-Auth-Key: $ST_KEY" "$ST_AUTH" |
    tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: *//p')"
url="$(curl -sf -D - -o /dev/null -H "X-Auth-User: $ST_USER" -H "X-Auth-Key: $ST_KEY" "$ST_AUTH" |
    tr -d '\r' | sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: *//p')"

run_dir="$bench_root/target/swift/run"
tck="$(getconf CLK_TCK)"
# Sum of utime+stime (seconds) of the Swift processes named by pid files.
srv_cpu() {
    local name pid total=0 t
    for name in "$@"; do
        pid="$(cat "$run_dir/$name.pid" 2>/dev/null || true)"
        [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || continue
        # Fields after the ")" so a command name with spaces cannot shift them.
        t="$(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')"
        total=$((total + t))
    done
    awk -v t="$total" -v k="$tck" 'BEGIN { printf "%.2f", t / k }'
}

cpu_rows=()
# measure_cpu LABEL TOOL BYTES CMD...: like lib.sh's measure, plus CPU accounting.
measure_cpu() {
    local label="$1" tool="$2" bytes="$3"
    shift 3
    local tf="$BENCH_DIR/.time.$$" rc=0 p0 o0 p1 o1
    sync
    p0="$(srv_cpu proxy)"
    o0="$(srv_cpu object container account)"
    /usr/bin/time -v -o "$tf" "$@" >"$BENCH_DIR/.out.$$" 2>"$BENCH_DIR/.err.$$" || rc=$?
    p1="$(srv_cpu proxy)"
    o1="$(srv_cpu object container account)"
    if [ "$rc" != 0 ]; then
        note "$label / $tool: failed (exit $rc):"
        tail -n 5 "$BENCH_DIR/.err.$$" >&2
        rows+=("$section_no|$label|$tool|-|-|-")
        return 0
    fi
    local wall rss secs mbs usr sys
    wall="$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$tf")"
    rss="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tf")"
    usr="$(sed -n 's/.*User time (seconds): //p' "$tf")"
    sys="$(sed -n 's/.*System time (seconds): //p' "$tf")"
    secs="$(echo "$wall" | awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')"
    mbs="$(awk -v b="$bytes" -v s="$secs" 'BEGIN { if (s > 0) printf "%.0f", b / 1048576 / s; else print "inf" }')"
    rows+=("$section_no|$label|$tool|$secs|$mbs|$((rss / 1024))")
    cpu_rows+=("$label|$tool|$secs|$usr|$sys|$(awk -v a="$p0" -v b="$p1" 'BEGIN { printf "%.2f", b - a }')|$(awk -v a="$o0" -v b="$o1" 'BEGIN { printf "%.2f", b - a }')")
    rm -f "$tf"
}

# Objects and outputs are deleted as soon as they are measured, so the disk holds at most
# the source, one uploaded copy, the SLO being read and one download.
drop_object() { swift delete "$c" "$1" >/dev/null 2>&1 || true; }
check_output() {
    cmp "$src" "$d/$1.out" >/dev/null && note "download by $1: equal to the source" || note "download by $1: DIFFERS"
    rm -f "$d/$1.out"
}
for run in $(seq 1 "$runs"); do
    section
    measure_cpu "upload (one PUT)" "curl" "$bytes" curl -sf -o /dev/null -X PUT -H "X-Auth-Token: $token" -T "$src" "$url/$c/curl.raw"
    drop_object curl.raw
    measure_cpu "upload ${seg_mb}M segments (SLO)" "swift" "$bytes" \
        swift upload --use-slo --segment-size "$((seg_mb << 20))" --segment-threads 10 --object-name "swift$run.raw" "$c" "$src"
    measure_cpu "upload ${seg_mb}M segments (DLO)" "swift" "$bytes" \
        swift upload --segment-size "$((seg_mb << 20))" --segment-threads 10 --object-name "swiftdlo$run.raw" "$c" "$src"
    drop_object "swiftdlo$run.raw"
    if implemented upload; then
        measure_cpu "upload ${seg_mb}M segments (auto)" "cloudimg" "$bytes" \
            "$CLOUDIMG_BIN" upload --segment-size "${seg_mb}M" "$src" "swift://$c/cloudimg$run.raw"
        drop_object "cloudimg$run.raw"
    fi

    section
    measure_cpu "download (one GET)" "curl" "$bytes" curl -sf -o "$d/curl.out" -H "X-Auth-Token: $token" "$url/$c/swift$run.raw"
    check_output curl
    measure_cpu "download SLO" "swift" "$bytes" swift download -o "$d/swift.out" "$c" "swift$run.raw"
    check_output swift
    if implemented download; then
        measure_cpu "download SLO (ranged)" "cloudimg" "$bytes" "$CLOUDIMG_BIN" download "swift://$c/swift$run.raw" "$d/cloudimg.out"
        check_output cloudimg
    fi
    drop_object "swift$run.raw"
done
swift delete "$c" >/dev/null 2>&1 || true
swift delete "${c}_segments" >/dev/null 2>&1 || true
print_table "Swift upload/download (${BENCH_SIZE_MB} MiB, local one-node Swift on loopback)"
echo "CPU accounting (seconds): client user and system time, Swift proxy and object/container/account servers."
echo
echo "| operation | tool | wall | client user | client sys | proxy | object+cont+acct | total CPU |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for r in "${cpu_rows[@]}"; do
    IFS='|' read -r label tool secs usr sys px ob <<<"$r"
    echo "| $label | $tool | $secs | $usr | $sys | $px | $ob | $(awk -v a="$usr" -v b="$sys" -v c="$px" -v d="$ob" 'BEGIN { printf "%.2f", a + b + c + d }') |"
done
echo
cleanup_bench swift
