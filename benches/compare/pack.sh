#!/usr/bin/env bash
# Packing a XenServer package (a tar of ./0.vhd, gzipped) with cloudimg pack
# against `tar | igzip`, `tar | pigz` and `tar | gzip`, then unpacking it.
#
# Input (issue 19's): a fixed VHD of BENCH_SIZE_MB MiB (qemu-img convert -O vpc
# -o subformat=fixed,force_size=on) whose content alternates 2 MiB of random
# bytes with 2 MiB of text (space-separated 16-hex-digit words from a
# 5,000-word vocabulary).
#
# Pack: every tool runs once as a warm-up (so all of them read the input from
# the page cache alike; nothing else primes it), then BENCH_RUNS rounds (default
# 5) of all tools in turn (A B C .. A B C ..). Each tool writes a new output
# (removed before the run) and, in a second row, overwrites the output of its
# previous run. Reported: median wall time with min-max, median CPU (user +
# sys of the tool and its children) with min-max, output bytes, peak RSS, and
# wall and CPU over cloudimg's default row. gzip (the slowest by far: one core
# at zlib -6) writes new outputs only; BENCH_GZIP=0 leaves it out.
#
# BENCH_SIZE_MB=256 bash benches/compare/pack.sh
source "$(dirname "$0")/lib.sh"
need tar gzip pigz igzip python3 qemu-img
CLOUDIMG_BIN="$(cloudimg_bin)"
BENCH_RUNS="${BENCH_RUNS:-5}"
BENCH_GZIP="${BENCH_GZIP:-1}"
d="$BENCH_DIR/pack"
mkdir -p "$d/stage"
jobs=2

make_mixed_vhd "$d/stage/0.vhd" "$BENCH_SIZE_MB"
bytes=$(stat -c %s "$d/stage/0.vhd")

# Rows: "label@output file@command[@modes]" (the command writes the output file).
tools=(
    "cloudimg pack -j $jobs (default level 6)@$d/c.tgz@'$CLOUDIMG_BIN' pack -j $jobs '$d/c.tgz' '$d/stage/0.vhd' >/dev/null"
    "cloudimg pack -j $jobs --indexed@$d/ci.tgz@'$CLOUDIMG_BIN' pack -j $jobs --indexed '$d/ci.tgz' '$d/stage/0.vhd' >/dev/null"
    "cloudimg pack -j $jobs --level 1@$d/c1.tgz@'$CLOUDIMG_BIN' pack -j $jobs --level 1 '$d/c1.tgz' '$d/stage/0.vhd' >/dev/null"
    "tar + igzip -T $jobs -3@$d/igzip3.tgz@tar -C '$d/stage' -cf - 0.vhd | igzip -T $jobs -3 -c > '$d/igzip3.tgz'"
    "tar + igzip -T $jobs -1@$d/igzip1.tgz@tar -C '$d/stage' -cf - 0.vhd | igzip -T $jobs -1 -c > '$d/igzip1.tgz'"
    "tar + pigz -p $jobs -6@$d/pigz.tgz@tar -C '$d/stage' -cf - 0.vhd | pigz -p $jobs -6 > '$d/pigz.tgz'"
)
if [ "$BENCH_GZIP" = 1 ]; then
    tools+=("tar + gzip -6@$d/gzip.tgz@tar -C '$d/stage' -cf - 0.vhd | gzip -6 > '$d/gzip.tgz'@new")
fi

runs="$BENCH_DIR/.runs.$$"
: >"$runs"
# one_run ROUND MODE LABEL OUT CMD: MODE new removes OUT first, overwrite keeps it.
one_run() {
    local round="$1" mode="$2" label="$3" out="$4" cmd="$5" tf="$BENCH_DIR/.time.$$"
    [ "$mode" = new ] && rm -f "$out"
    sync
    if ! /usr/bin/time -f "%e %U %S %M" -o "$tf" sh -c "$cmd" >/dev/null 2>"$BENCH_DIR/.err.$$"; then
        note "$label: failed:"
        tail -n 5 "$BENCH_DIR/.err.$$" >&2
        return 0
    fi
    [ "$round" = 0 ] && return 0
    echo "$label|$mode|$(stat -c %s "$out")|$(tail -n 1 "$tf")" >>"$runs"
}
note "pack: $bytes bytes, warm-up then $BENCH_RUNS rounds of ${#tools[@]} tools x (new, overwrite)"
for round in $(seq 0 "$BENCH_RUNS"); do
    for t in "${tools[@]}"; do
        IFS='@' read -r label out cmd modes <<<"$t"
        for mode in ${modes:-new overwrite}; do
            one_run "$round" "$mode" "$label" "$out" "$cmd"
        done
    done
done

# Read back: every package is the same tar to gzip, igzip and our reader.
tar -C "$d/stage" -cf - 0.vhd | md5sum >"$d/tar.md5"
mkdir -p "$d/check"
for f in c ci c1; do
    for tool in gzip igzip pigz; do
        $tool -t <"$d/$f.tgz" || note "$f.tgz: $tool -t FAILED"
    done
    gzip -dc "$d/$f.tgz" | tar -C "$d/check" -xf - && cmp -s "$d/check/0.vhd" "$d/stage/0.vhd" &&
        note "$f.tgz: gzip -t, igzip -t, pigz -t pass; gzip + tar read back the input" ||
        note "$f.tgz: PACKAGE DIFFERS"
done

echo
echo "### pack (${BENCH_SIZE_MB} MiB fixed VHD, 2 MiB random / 2 MiB hex words, $jobs jobs)"
echo
echo "$(date -u '+%F %H:%M UTC') · $(nproc) cores · $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1) · $(uname -sr) · load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$runs" "$bytes" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, mode, size, t = line.rstrip("\n").split("|")
    wall, user, sys_, rss = t.split()
    r = rows.setdefault((label, mode), {"wall": [], "cpu": [], "size": int(size), "rss": 0})
    r["wall"].append(float(wall))
    r["cpu"].append(float(user) + float(sys_))
    r["rss"] = max(r["rss"], int(rss))
mib = int(sys.argv[2]) / 1048576
def med(v):
    return statistics.median(v)
def span(v):
    return f"{med(v):.2f} ({min(v):.2f}-{max(v):.2f})"
first = next(iter(rows))[0]
base = {m: rows[(first, m)] for m in ("new", "overwrite")}
print("| tool | output | runs | wall s, median (min-max) | MiB/s | CPU s (user+sys), median (min-max) | output bytes | peak RSS MiB | wall / cloudimg's | CPU / cloudimg's |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for (label, mode), r in rows.items():
    b = base[mode]
    print(f"| {label} | {mode} | {len(r['wall'])} | {span(r['wall'])} | {mib / med(r['wall']):.0f} | {span(r['cpu'])} | "
          f"{r['size']:,} | {r['rss'] // 1024} | {med(r['wall']) / med(b['wall']):.2f} | {med(r['cpu']) / med(b['cpu']):.2f} |")
EOF
echo
echo "Last two columns: the tool's median over cloudimg's default row of the same output mode (above 1: cloudimg was faster / used less CPU)."
echo

# Unpack, once each (inflate is not what this round is about).
section
mkdir -p "$d/u1" "$d/u2" "$d/u3" "$d/u4"
measure "unpack" "gzip -dc + tar" "$bytes" sh -c "gzip -dc '$d/c.tgz' | tar -C '$d/u1' -xf -"
measure "unpack" "pigz -dc + tar" "$bytes" sh -c "pigz -dc '$d/c.tgz' | tar -C '$d/u2' -xf -"
measure "unpack" "igzip -dc + tar" "$bytes" sh -c "igzip -dc '$d/c.tgz' | tar -C '$d/u3' -xf -"
measure "unpack" "cloudimg" "$bytes" "$CLOUDIMG_BIN" unpack "$d/c.tgz" "$d/u4"
cmp -s "$d/u4/0.vhd" "$d/stage/0.vhd" && note "unpack: 0.vhd equal" || note "unpack: 0.vhd DIFFERS"
section
mkdir -p "$d/i1" "$d/i2"
measure "unpack indexed" "igzip -dc + tar" "$bytes" sh -c "igzip -dc '$d/ci.tgz' | tar -C '$d/i1' -xf -"
measure "unpack indexed" "cloudimg" "$bytes" "$CLOUDIMG_BIN" unpack -j "$jobs" "$d/ci.tgz" "$d/i2"
cmp -s "$d/i2/0.vhd" "$d/stage/0.vhd" && note "unpack indexed: 0.vhd equal" || note "unpack indexed: 0.vhd DIFFERS"
print_table "unpack (${BENCH_SIZE_MB} MiB fixed VHD, the default package above)"
rm -f "$runs"
cleanup_bench pack
