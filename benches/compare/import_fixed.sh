#!/usr/bin/env bash
# Issue 19 item 3: `cloudimg import` of a fixed VHD (issue 19's data, make_mixed_vhd)
# from the local store and from the local Swift (scripts/swift-up.sh), against the
# yardsticks: the object's download (python-swiftclient's `swift download`, and
# `cloudimg download`) and `tar -c | igzip -T 2 -3` of the file. Goal: each import at
# most 1.1x the slower yardstick (speed vs igzip at least 0.91x here, where igzip is the
# slower one).
#
# Tools in turn (lib.sh's "Runs in turn"), one warm-up round then BENCH_RUNS rounds;
# every import writes a new image store (removed after it). The Swift servers run on the
# same 2 cores: their CPU seconds during each command (from /proc) are listed after the
# table, since the client's CPU column does not hold them. CLOUDIMG_OLD adds a second
# build's Swift import to the rotation.
#
# BENCH_SIZE_MB=4096 BENCH_RUNS=3 bash benches/compare/import_fixed.sh
source "$(dirname "$0")/lib.sh"
need swift igzip tar qemu-img python3 cmp
bash "$bench_root/scripts/swift-up.sh" >&2
while IFS='=' read -r k v; do
    export "$k=$v"
done < <(grep -E '^(ST_AUTH|ST_USER|ST_KEY)=' "$bench_root/target/swift.env")
CLOUDIMG_BIN="$(cloudimg_bin)"
BENCH_SIZE_MB="${BENCH_SIZE_MB:-4096}"
BENCH_RUNS="${BENCH_RUNS:-3}"
d="$BENCH_DIR/import_fixed"
mkdir -p "$d/src/c"
make_mixed_vhd "$d/src/c/big.vhd" "$BENCH_SIZE_MB"
c="bench-import-$$"
swift post "$c" >/dev/null
"$CLOUDIMG_BIN" upload "$d/src/c/big.vhd" "swift://$c/big.vhd" >/dev/null
cpu_file="$BENCH_DIR/.swiftcpu.$$"
: >"$cpu_file"

# CPU seconds (user + sys) of the Swift servers so far.
swift_cpu() {
    local tot=0 p f
    for p in $(pgrep -f 'swift-(proxy|object|container|account)-server'); do
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        set -- $f
        tot=$((tot + ${12} + ${13}))
    done
    echo "$tot"
}

run() {
    local tool="$1" a b
    shift
    rm -rf "$d/store" "$d/dl.vhd"
    sync
    a=$(swift_cpu)
    timed "$group" "$tool" "$@"
    b=$(swift_cpu)
    [ "$round" -gt 0 ] && printf '%s\t%s\n' "$tool" "$(((b - a) * 100 / $(getconf CLK_TCK)))" >>"$cpu_file"
    if [ "$round" = 0 ] && [ -f "$d/dl.vhd" ]; then
        cmp -s "$d/dl.vhd" "$d/src/c/big.vhd" && note "$tool: equal to the source" || note "$tool: DIFFERS"
    fi
    rm -rf "$d/store" "$d/dl.vhd"
}

imp() { echo import --from "$1" --store "$d/store" --owner bench --name "r$round"; }

group="import ${BENCH_SIZE_MB} MiB fixed VHD"
for round in $(seq 0 "$BENCH_RUNS"); do
    if [ -n "${CLOUDIMG_OLD:-}" ]; then
        run "old: import, Swift source" "$CLOUDIMG_OLD" $(imp "swift://$c/big.vhd")
    fi
    run "import, Swift source" "$CLOUDIMG_BIN" $(imp "swift://$c/big.vhd")
    run "tar + igzip -T 2 -3" bash -c "tar -C '$d/src/c' -cf - big.vhd | igzip -T 2 -3 -c >/dev/null"
    run "swift download" swift download -o "$d/dl.vhd" "$c" big.vhd
    run "cloudimg download" "$CLOUDIMG_BIN" download "swift://$c/big.vhd" "$d/dl.vhd"
    run "import, local source" "$CLOUDIMG_BIN" $(imp "$d/src/c/big.vhd")
done
swift delete "$c" >/dev/null 2>&1 || true
swift delete "${c}_segments" >/dev/null 2>&1 || true
turns_table "Import of a ${BENCH_SIZE_MB} MiB fixed VHD against download and igzip (issue 19 item 3)" "tar + igzip -T 2 -3" "swift download"
echo "Swift servers' CPU seconds during each command, median of $BENCH_RUNS:"
echo
python3 - "$cpu_file" <<'EOF'
import statistics as st, sys
runs = {}
for line in open(sys.argv[1]):
    tool, cs = line.rstrip("\n").split("\t")
    runs.setdefault(tool, []).append(int(cs) / 100)
for tool, v in runs.items():
    print(f"- {tool}: {st.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")
EOF
rm -f "$cpu_file"
[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$d"
