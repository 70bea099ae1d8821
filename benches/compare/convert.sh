#!/usr/bin/env bash
# cloudimg convert against qemu-img convert (raw -> dynamic VHD, VHD -> raw), with
# `cat` of the same bytes as the I/O limit. Outputs are compared with cmp.
# cloudimg runs with --no-sync because qemu-img does not fsync its output either.
#
# bash benches/compare/convert.sh      (BENCH_SIZE_MB=1024 by default)
source "$(dirname "$0")/lib.sh"
need qemu-img cmp python3
CLOUDIMG_BIN="$(cloudimg_bin)"
d="$BENCH_DIR/convert"
mkdir -p "$d"
raw="$d/disk.raw"
make_disk_raw "$raw"
bytes=$((BENCH_SIZE_MB << 20))

# On a VM whose free memory goes back to the host (virtio-balloon free page
# reporting, as on this project's machines), the first touch of a page costs
# milliseconds per MiB, several times the copy itself (measured: 2.5 s to touch
# 512 MiB of fresh memory, 0.37 s to touch it again), so a tool that gets fresh
# pages for its output looks several times slower than one that gets recycled
# ones. Writing and deleting an output-sized file right before each timed run
# hands every tool recycled page-cache pages. The sync first makes the one in
# `measure` find nothing to flush, so no time passes in between.
warm() {
    sync
    dd if=/dev/zero of="$d/warm" bs=2M count=$((BENCH_SIZE_MB / 2 + 1)) status=none
    rm -f "$d/warm"
}

section
warm
measure "raw -> vhd (read limit)" "cat" "$bytes" sh -c "cat '$raw' > /dev/null"
warm
measure "raw -> vhd" "qemu-img" "$bytes" qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$raw" "$d/q.vhd"
if implemented convert; then
    warm
    measure "raw -> vhd" "cloudimg" "$bytes" "$CLOUDIMG_BIN" convert --no-sync -f raw -O vpc -o subformat=dynamic "$raw" "$d/c.vhd"
    # Both VHDs must hold the same disk (read back by qemu-img, the independent reader).
    if [ -f "$d/c.vhd" ]; then
        qemu-img compare -f vpc -F vpc "$d/q.vhd" "$d/c.vhd" >/dev/null &&
            note "raw -> vhd: cloudimg and qemu-img images hold the same data" ||
            note "raw -> vhd: IMAGES DIFFER"
    fi
fi

section
warm
measure "vhd -> raw (copy limit)" "cat" "$bytes" sh -c "cat '$raw' > '$d/cat.raw'"
rm -f "$d/cat.raw"
warm
measure "vhd -> raw" "qemu-img" "$bytes" qemu-img convert -f vpc -O raw "$d/q.vhd" "$d/q.raw"
if implemented convert; then
    warm
    measure "vhd -> raw" "cloudimg" "$bytes" "$CLOUDIMG_BIN" convert --no-sync -f vpc -O raw "$d/q.vhd" "$d/c.raw"
    if [ -f "$d/c.raw" ]; then
        cmp -n "$bytes" "$raw" "$d/c.raw" >/dev/null && note "vhd -> raw: cloudimg output equals the input" ||
            note "vhd -> raw: OUTPUT DIFFERS"
    fi
fi
rm -f "$d/cat.raw"
print_table "convert (${BENCH_SIZE_MB} MiB, dynamic VHD)"
cleanup_bench convert
