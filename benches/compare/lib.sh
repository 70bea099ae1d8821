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

# release_bin OVERRIDE BIN [CARGO ARGS...]: the path in OVERRIDE when set, else
# binary BIN built (once) with --release.
release_bin() {
    local override="$1" bin="$2"
    shift 2
    if [ -n "$override" ]; then
        echo "$override"
        return
    fi
    (cd "$bench_root" && cargo build --release --quiet "$@" --bin "$bin" >&2)
    echo "${CARGO_TARGET_DIR:-$bench_root/target}/release/$bin"
}

# The cloudimg binary ($CLOUDIMG when set).
cloudimg_bin() { release_bin "${CLOUDIMG:-}" cloudimg; }

# benches/src/bin/fill.rs, the floor of a new output ($FILL when set).
fill_bin() { release_bin "${FILL:-}" fill -p cloudimg-benches; }

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

# make_mixed_vhd OUT MB: issue 19's input, a fixed VHD (qemu-img, force_size) of MB
# MiB whose content alternates 2 MiB of random bytes with 2 MiB of text
# (space-separated 16-hex-digit words from a 5,000-word vocabulary). Kept if present.
make_mixed_vhd() {
    local out="$1" mb="$2"
    [ -f "$out" ] && [ "$(stat -c %s "$out")" = $(((mb << 20) + 512)) ] && return 0
    python3 - "$out.raw" "$mb" <<'EOF'
import os, random, sys
out, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(19)
vocab = ["%016x" % rnd.getrandbits(64) for _ in range(5000)]
with open(out, "wb") as f:
    for i in range(mb // 2):
        if i % 2 == 0:
            f.write(os.urandom(2 << 20))
        else:
            f.write(" ".join(rnd.choice(vocab) for _ in range((2 << 20) // 17 + 1)).encode()[: 2 << 20])
    f.truncate(mb << 20)
EOF
    qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "$out.raw" "$out"
    rm -f "$out.raw"
}

cleanup_bench() {
    if [ "${BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$BENCH_DIR/$1"
    fi
}

# --- Runs in turn (convert.sh, coalesce.sh) -------------------------------------
#
# Tools of one case run in turn (A B A B ...): one warm-up round, then
# BENCH_RUNS counted rounds, so a load that comes and goes hits every tool alike.
# Nothing is primed for the tools: no warm-up file, no cache dropping; the only
# thing between two runs is a `sync` (so one run's dirty pages are not flushed
# during the next) and whatever the case says about the output (removed first
# for a new path, left in place for an overwritten one).
BENCH_RUNS="${BENCH_RUNS:-5}"
turns="$BENCH_DIR/.turns.$$"
: >"$turns"
round=0

# timed GROUP TOOL CMD...: one run of CMD (timeit.py: wall, user, sys, peak RSS,
# minor faults), recorded unless this is the warm-up round 0.
timed() {
    local group="$1" tool="$2" rc=0
    shift 2
    local tf="$BENCH_DIR/.time.$$"
    python3 "$bench_root/benches/compare/timeit.py" "$tf" "$@" >"$BENCH_DIR/.out.$$" 2>"$BENCH_DIR/.err.$$" || rc=$?
    if [ "$rc" != 0 ]; then
        note "$group / $tool: failed (exit $rc):"
        tail -n 5 "$BENCH_DIR/.err.$$" >&2
        return 0
    fi
    if [ "$round" -gt 0 ]; then
        printf '%s\t%s\t%s\t%s\n' "$group" "$tool" "$round" "$(tail -n 1 "$tf")" >>"$turns"
    fi
}

# turns_table TITLE REF...: the recorded runs as a table, one row per group and
# tool: median wall time (min-max), median CPU (user+sys), peak RSS, minor page
# faults, and the speed of each other tool against each REF tool of the same
# group (REF's median wall time / this tool's; above 1: this tool is faster).
# Tools named "(...)" are machine costs shown for reference, without a speed.
turns_table() {
    local title="$1"
    shift
    echo
    echo "### $title"
    echo
    echo "$(date -u '+%F %H:%M') UTC · $(nproc) cores · $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1) · $(uname -sr) · load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    python3 - "$turns" "$BENCH_RUNS" "$@" <<'PY'
import statistics as st, sys
path, runs, refs = sys.argv[1], sys.argv[2], sys.argv[3:]
groups, order = {}, []
for line in open(path):
    g, tool, _round, vals = line.rstrip("\n").split("\t")
    wall, user, sys_, rss, minflt = vals.split()
    if g not in groups:
        groups[g] = {}
        order.append(g)
    groups[g].setdefault(tool, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024, int(minflt)))
ref_cols = "".join(f" speed vs {r} |" for r in refs)
print(f"| case | tool | wall s, median (min-max) of {runs} | CPU s (user+sys) | peak RSS MiB | minor faults |{ref_cols}")
print("|---|---|---:|---:|---:|---:|" + "---:|" * len(refs))
for g in order:
    meds = {t: st.median(w for w, *_ in v) for t, v in groups[g].items()}
    for tool, v in groups[g].items():
        walls = [x[0] for x in v]
        cells = []
        for r in refs:
            show = r in meds and tool not in refs and not tool.startswith("(") and meds[tool] > 0
            cells.append(f"{meds[r] / meds[tool]:.2f}x" if show else "")
        print(f"| {g} | {tool} | {meds[tool]:.3f} ({min(walls):.3f}-{max(walls):.3f}) "
              f"| {st.median(x[1] for x in v):.3f} | {st.median(x[2] for x in v):.0f} "
              f"| {st.median(x[3] for x in v):.0f} |" + "".join(f" {c} |" for c in cells))
PY
    echo
}
