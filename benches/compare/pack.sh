#!/usr/bin/env bash
# Packing a XenServer chain package (tar of ./0.vhd ./1.vhd, gzipped) with
# cloudimg pack against `tar | gzip -6` and `tar | pigz -6`, and unpacking it
# against `gzip -dc | tar -x` and `pigz -dc | tar -x`; then the same for the
# indexed form (`cloudimg pack --indexed`), which cloudimg unpacks in parallel.
#
# bash benches/compare/pack.sh
source "$(dirname "$0")/lib.sh"
need tar gzip pigz python3
CLOUDIMG_BIN="$(cloudimg_bin)"
d="$BENCH_DIR/pack"
mkdir -p "$d/stage"
python3 "$(dirname "$0")/mkchain.py" "$d/stage/1.vhd" "$d/stage/0.vhd" "$BENCH_SIZE_MB"
bytes=$(($(stat -c %s "$d/stage/1.vhd") + $(stat -c %s "$d/stage/0.vhd")))
jobs="$(nproc)"

section
measure "pack (read limit)" "cat" "$bytes" sh -c "cat '$d/stage/0.vhd' '$d/stage/1.vhd' > /dev/null"
measure "pack -6" "tar + gzip" "$bytes" sh -c "tar -C '$d/stage' -cf - . | gzip -6 > '$d/gzip.tgz'"
measure "pack -6" "tar + pigz -p $jobs" "$bytes" sh -c "tar -C '$d/stage' -cf - . | pigz -6 -p $jobs > '$d/pigz.tgz'"
if implemented pack; then
    measure "pack -6" "cloudimg" "$bytes" "$CLOUDIMG_BIN" pack --level 6 -j "$jobs" "$d/c.tgz" "$d/stage/0.vhd" "$d/stage/1.vhd"
fi

section
mkdir -p "$d/u1" "$d/u2" "$d/u3"
measure "unpack" "gzip -dc + tar" "$bytes" sh -c "gzip -dc '$d/gzip.tgz' | tar -C '$d/u1' -xf -"
measure "unpack" "pigz -dc + tar" "$bytes" sh -c "pigz -dc '$d/gzip.tgz' | tar -C '$d/u2' -xf -"
if implemented unpack; then
    measure "unpack" "cloudimg" "$bytes" "$CLOUDIMG_BIN" unpack "$d/gzip.tgz" "$d/u3"
fi

# The indexed form (cloudimg pack --indexed): every reader sees plain gzip, and
# cloudimg unpack inflates its members on all cores (-j 1: on one, for scale).
section
if implemented pack; then
    measure "pack -6 --indexed" "cloudimg" "$bytes" "$CLOUDIMG_BIN" pack --indexed --level 6 -j "$jobs" "$d/ci.tgz" "$d/stage/0.vhd" "$d/stage/1.vhd"
fi
if [ -f "$d/ci.tgz" ]; then
    section
    mkdir -p "$d/i1" "$d/i2" "$d/i3" "$d/i4"
    measure "unpack indexed" "gzip -dc + tar" "$bytes" sh -c "gzip -dc '$d/ci.tgz' | tar -C '$d/i1' -xf -"
    measure "unpack indexed" "pigz -dc + tar" "$bytes" sh -c "pigz -dc '$d/ci.tgz' | tar -C '$d/i2' -xf -"
    if implemented unpack; then
        measure "unpack indexed" "cloudimg -j 1" "$bytes" "$CLOUDIMG_BIN" unpack -j 1 "$d/ci.tgz" "$d/i3"
        measure "unpack indexed" "cloudimg" "$bytes" "$CLOUDIMG_BIN" unpack -j "$jobs" --output json "$d/ci.tgz" "$d/i4"
        if last_output | grep -q '"parallel_decode": *true'; then
            note "unpack indexed: decompressed in parallel"
        else
            note "unpack indexed: NOT DECOMPRESSED IN PARALLEL"
        fi
        same=1
        for u in i3 i4; do
            for f in 0.vhd 1.vhd; do
                cmp -s "$d/$u/$f" "$d/stage/$f" || { same=0; note "unpack indexed ($u): $f DIFFERS"; }
            done
        done
        if [ "$same" = 1 ]; then note "unpack indexed: every file equal to its input"; fi
    fi
fi

if [ -f "$d/c.tgz" ]; then
    mkdir -p "$d/check"
    gzip -dc "$d/c.tgz" | tar -C "$d/check" -xf - &&
        cmp "$d/check/0.vhd" "$d/stage/0.vhd" && cmp "$d/check/1.vhd" "$d/stage/1.vhd" &&
        note "pack: gzip + tar read back cloudimg's package unchanged" || note "pack: PACKAGE DIFFERS"
fi
for f in "$d"/u3/*; do
    [ -f "$f" ] && { cmp "$f" "$d/stage/$(basename "$f")" && note "unpack: $(basename "$f") equal" || note "unpack: $(basename "$f") DIFFERS"; }
done
for f in "$d"/*.tgz; do note "$(basename "$f"): $(stat -c %s "$f") bytes"; done
print_table "pack/unpack (${BENCH_SIZE_MB} MiB virtual, 2-layer XenServer chain)"
cleanup_bench pack
