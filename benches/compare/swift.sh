#!/usr/bin/env bash
# Upload and download against the local Swift (scripts/swift-up.sh): cloudimg
# against python-swiftclient (`swift upload --segment-size`, SLO) and curl (one
# PUT / GET, the single-stream limit). Downloads are compared with cmp.
#
# bash benches/compare/swift.sh      (BENCH_SEGMENT_MB=64 by default)
source "$(dirname "$0")/lib.sh"
need swift curl cmp python3
bash "$bench_root/scripts/swift-up.sh"
set -a
# shellcheck disable=SC1091
source "$bench_root/target/swift.env"
set +a
CLOUDIMG_BIN="$(cloudimg_bin)"
seg_mb="${BENCH_SEGMENT_MB:-64}"
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

section
measure "upload (one PUT)" "curl" "$bytes" curl -sf -o /dev/null -X PUT -H "X-Auth-Token: $token" -T "$src" "$url/$c/curl.raw"
measure "upload ${seg_mb}M segments (SLO)" "swift" "$bytes" \
    swift upload --use-slo --segment-size "$((seg_mb << 20))" --segment-threads 4 --object-name swift.raw "$c" "$src"
measure "upload ${seg_mb}M segments (DLO)" "swift" "$bytes" \
    swift upload --segment-size "$((seg_mb << 20))" --segment-threads 4 --object-name swiftdlo.raw "$c" "$src"
if implemented upload; then
    measure "upload ${seg_mb}M segments (auto)" "cloudimg" "$bytes" \
        "$CLOUDIMG_BIN" upload --segment-size "${seg_mb}M" -j 4 "$src" "swift://$c/cloudimg.raw"
fi

section
measure "download (one GET)" "curl" "$bytes" curl -sf -o "$d/curl.out" -H "X-Auth-Token: $token" "$url/$c/swift.raw"
measure "download SLO" "swift" "$bytes" swift download -o "$d/swift.out" "$c" swift.raw
if implemented download; then
    measure "download SLO (ranged, -j 4)" "cloudimg" "$bytes" "$CLOUDIMG_BIN" download -j 4 "swift://$c/swift.raw" "$d/cloudimg.out"
fi
for f in curl swift cloudimg; do
    [ -f "$d/$f.out" ] || continue
    cmp "$src" "$d/$f.out" >/dev/null && note "download by $f: equal to the source" || note "download by $f: DIFFERS"
done
swift delete "$c" >/dev/null 2>&1 || true
swift delete "${c}_segments" >/dev/null 2>&1 || true
print_table "Swift upload/download (${BENCH_SIZE_MB} MiB, local one-node Swift on loopback)"
cleanup_bench swift
