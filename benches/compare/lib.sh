# Shared helpers of the comparison scripts (sourced, not run).
#
# Each script generates its inputs under $BENCH_DIR, runs cloudimg and the rival
# tools on the same input in the same run, checks the outputs agree, and prints a
# table: wall time, throughput, peak RSS (from /usr/bin/time -v) and the ratio of
# each rival's time to cloudimg's (above 1: cloudimg is faster).
#
# Environment: BENCH_DIR (scratch, default target/bench), BENCH_SIZE_MB (input
# size, default 1024), CLOUDIMG (binary; built with --release when unset),
# BENCH_KEEP=1 keeps the scratch files.

set -euo pipefail

bench_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH_DIR="${BENCH_DIR:-$bench_root/target/bench}"
BENCH_SIZE_MB="${BENCH_SIZE_MB:-1024}"
mkdir -p "$BENCH_DIR"

rows=()

note() { echo "# $*" >&2; }

need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || { note "missing $t (scripts/install-deps.sh)"; exit 2; }
    done
}
need /usr/bin/time

# Builds (once) and locates the cloudimg binary.
cloudimg_bin() {
    if [ -n "${CLOUDIMG:-}" ]; then
        echo "$CLOUDIMG"
        return
    fi
    local dir="${CARGO_TARGET_DIR:-$bench_root/target}"
    (cd "$bench_root" && cargo build --release --quiet --bin cloudimg >&2)
    echo "$dir/release/cloudimg"
}

# True when `cloudimg SUB` exists: stubs fail with "not implemented yet" and hide
# their arguments, so their --help lists no option besides --help itself.
implemented() {
    local sub="$1" help
    help="$("$CLOUDIMG_BIN" "$sub" --help 2>&1 || true)"
    if ! echo "$help" | grep -qE -- '--[a-z]' || [ "$(echo "$help" | grep -cE -- '--[a-z]')" -le 1 ]; then
        note "cloudimg $sub: not implemented yet (stub); its rows are skipped"
        return 1
    fi
    return 0
}

# measure LABEL TOOL BYTES CMD...: runs CMD under /usr/bin/time -v, records a row
# of the current section. TOOL must not contain '|'.
measure() {
    local label="$1" tool="$2" bytes="$3"
    shift 3
    local tf="$BENCH_DIR/.time.$$"
    local rc=0
    sync
    /usr/bin/time -v -o "$tf" "$@" >"$BENCH_DIR/.out.$$" 2>"$BENCH_DIR/.err.$$" || rc=$?
    if [ "$rc" != 0 ]; then
        if grep -q "not implemented" "$BENCH_DIR/.err.$$" 2>/dev/null; then
            note "$label / $tool: not implemented yet"
        else
            note "$label / $tool: failed (exit $rc):"
            tail -n 5 "$BENCH_DIR/.err.$$" >&2
        fi
        rows+=("$section_no|$label|$tool|-|-|-")
        return 0
    fi
    local wall rss secs mbs
    wall="$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$tf")"
    rss="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tf")"
    secs="$(echo "$wall" | awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')"
    mbs="$(awk -v b="$bytes" -v s="$secs" 'BEGIN { if (s > 0) printf "%.0f", b / 1048576 / s; else print "inf" }')"
    rows+=("$section_no|$label|$tool|$secs|$mbs|$((rss / 1024))")
    rm -f "$tf"
}

# The output of the last measured command (for commands that print an id).
last_output() {
    cat "$BENCH_DIR/.out.$$" "$BENCH_DIR/.err.$$" 2>/dev/null
}

# Starts a new section; ratios compare rows of one section with its cloudimg row.
section_no=0
section() {
    section_no=$((section_no + 1))
}

print_table() {
    local title="$1"
    echo
    echo "### $title"
    echo
    echo "$(date -u +%F) · $(nproc) cores · $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1) · $(uname -sr)"
    echo
    echo "| operation | tool | seconds | MiB/s | peak RSS MiB | time / cloudimg's |"
    echo "|---|---|---:|---:|---:|---:|"
    local r sec label tool secs mbs rss ci ratio
    for r in "${rows[@]}"; do
        IFS='|' read -r sec label tool secs mbs rss <<<"$r"
        ci="$(printf '%s\n' "${rows[@]}" | awk -F'|' -v s="$sec" '$1 == s && $3 == "cloudimg" && $4 != "-" { print $4; exit }')"
        ratio="-"
        if [ -n "$ci" ] && [ "$secs" != "-" ]; then
            ratio="$(awk -v a="$secs" -v b="$ci" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
        fi
        echo "| $label | $tool | $secs | $mbs | $rss | $ratio |"
    done
    echo
    echo "Above 1 in the last column: the tool took longer than cloudimg on the same input."
    echo
}

# Writes BENCH_SIZE_MB MiB that look like a disk: 1 MiB runs, a third random, a third
# text, a third zeros (runs of zeros stay holes in sparse formats).
make_disk_raw() {
    local out="$1" mb="${2:-$BENCH_SIZE_MB}"
    [ -f "$out" ] && [ "$(stat -c %s "$out")" = $((mb << 20)) ] && return 0
    python3 - "$out" "$mb" <<'EOF'
import os, sys, random
out, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
text = b"".join(rnd.choice([b"kernel ", b"module ", b"/usr/lib/", b"libc.so.6 ", b"\n", b"0x0000 "]) for _ in range(200000))[: 1 << 20]
with open(out, "wb") as f:
    for i in range(mb):
        kind = i % 3
        if kind == 0:
            f.write(os.urandom(1 << 20))
        elif kind == 1:
            f.write(text)
        else:
            f.seek(1 << 20, 1)
    f.truncate(mb << 20)
EOF
}

cleanup_bench() {
    if [ "${BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$BENCH_DIR/$1"
    fi
}
