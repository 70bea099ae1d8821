#!/usr/bin/env bash
# cloudimg coalesce of a two-layer chain (dynamic base + differencing child) into one
# dynamic VHD, against `cat` of both layers (the I/O limit: every byte read once
# and written once) and qemu-img converting the base alone (qemu cannot read VHD
# differencing disks, so it is a floor for one layer, not a like-for-like rival).
#
# bash benches/compare/coalesce.sh
source "$(dirname "$0")/lib.sh"
need qemu-img python3
CLOUDIMG_BIN="$(cloudimg_bin)"
d="$BENCH_DIR/coalesce"
mkdir -p "$d"
python3 "$(dirname "$0")/mkchain.py" "$d/1.vhd" "$d/0.vhd" "$BENCH_SIZE_MB"
bytes=$(($(stat -c %s "$d/1.vhd") + $(stat -c %s "$d/0.vhd")))

# Every timed run gets recycled page-cache pages (see warm() in convert.sh:
# on this project's VMs a fresh page costs milliseconds per MiB to touch).
warm() {
    sync
    dd if=/dev/zero of="$d/warm" bs=2M count=$((bytes / (2 << 20) + 1)) status=none
    rm -f "$d/warm"
}

section
warm
measure "chain -> one vhd (I/O limit)" "cat" "$bytes" sh -c "cat '$d/0.vhd' '$d/1.vhd' > '$d/cat.out'"
rm -f "$d/cat.out"
warm
measure "base layer -> vhd" "qemu-img" "$(stat -c %s "$d/1.vhd")" qemu-img convert -f vpc -O vpc -o subformat=dynamic,force_size=on "$d/1.vhd" "$d/q.vhd"
if implemented coalesce; then
    warm
    measure "chain -> one vhd" "cloudimg" "$bytes" "$CLOUDIMG_BIN" coalesce --no-sync -O vpc "$d/0.vhd" "$d/c.vhd"
    if [ -f "$d/c.vhd" ] && implemented convert; then
        # The coalesced image must read like the chain (both through cloudimg's reader,
        # since no rival reads the chain; the chain reader is tested against oracles).
        "$CLOUDIMG_BIN" convert -f vpc -O raw "$d/0.vhd" "$d/chain.raw" >/dev/null 2>&1 &&
            qemu-img convert -f vpc -O raw "$d/c.vhd" "$d/c.raw" &&
            cmp "$d/chain.raw" "$d/c.raw" >/dev/null && note "coalesce: output (read by qemu-img) equals the chain" ||
            note "coalesce: could not verify the output"
    fi
fi
rm -f "$d/cat.out" "$d/chain.raw" "$d/c.raw"
print_table "coalesce (${BENCH_SIZE_MB} MiB virtual, 2-layer chain)"
cleanup_bench coalesce
