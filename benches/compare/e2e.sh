#!/usr/bin/env bash
# End-to-end import and export through the local Swift (scripts/swift-up.sh):
# `cloudimg import` of a dynamic VHD object into an image store, then `cloudimg
# export` of that image as a Cloud Images DLO (<uuid>.vhd + 1,048,576,000-byte
# segments) into a receiving container. The rival is the same work by hand with the
# stock tools in the same run: swift download, qemu-img info, swift upload
# (import); swift download, swift upload --segment-size (export). cloudimg's
# import also checks the VHD fully and stores the image as a gzipped XenServer
# package (level 6), which the by-hand path does not.
#
# bash benches/compare/e2e.sh
source "$(dirname "$0")/lib.sh"
need swift qemu-img python3
bash "$bench_root/scripts/swift-up.sh"
set -a
# shellcheck disable=SC1091
source "$bench_root/target/swift.env"
set +a
CLOUDIMG_BIN="$(cloudimg_bin)"
d="$BENCH_DIR/e2e"
mkdir -p "$d/out"
python3 "$(dirname "$0")/mkchain.py" "$d/base.vhd" "$d/child.vhd" "$BENCH_SIZE_MB"
rm -f "$d/child.vhd"
bytes="$(stat -c %s "$d/base.vhd")"
c="e2e-src-$$"
store="e2e-images-$$"
dest="e2e-exports-$$"
for x in "$c" "$store" "$dest"; do swift post "$x" >/dev/null; done
swift upload --object-name base.vhd "$c" "$d/base.vhd" >/dev/null

section
measure "import (one VHD object)" "swift + qemu-img (by hand)" "$bytes" sh -c "
    swift download -o '$d/out/in.vhd' '$c' base.vhd &&
    qemu-img info -f vpc '$d/out/in.vhd' >/dev/null &&
    swift upload --object-name imported.vhd '$store' '$d/out/in.vhd' >/dev/null"
image=""
if implemented import; then
    measure "import (one VHD object)" "cloudimg" "$bytes" \
        "$CLOUDIMG_BIN" import --from "swift://$c/base.vhd" --store "swift://$store" --owner bench --name bench
    # The task record is printed as JSON; the image is its result.image_id.
    image="$(last_output | grep -oE '"image_id": *"[^"]+"' | grep -oE '[0-9a-f-]{36}' | head -1 || true)"
    [ -n "$image" ] && note "imported image $image" || note "import: no image id in its output"
fi

section
measure "export (DLO, 1000 MiB segments)" "swift (by hand)" "$bytes" sh -c "
    swift download -o '$d/out/ex.vhd' '$store' imported.vhd &&
    swift upload --segment-size 1048576000 --object-name by-hand.vhd '$dest' '$d/out/ex.vhd' >/dev/null"
if [ -n "$image" ] && implemented export; then
    measure "export (DLO, 1000 MiB segments)" "cloudimg" "$bytes" \
        "$CLOUDIMG_BIN" export --store "swift://$store" --image "$image" --to "swift://$dest" --owner bench
    if swift download -o "$d/out/exported.vhd" "$dest" "$image.vhd" >/dev/null 2>&1; then
        qemu-img compare -f vpc -F vpc "$d/base.vhd" "$d/out/exported.vhd" >/dev/null &&
            note "export: the exported VHD (read by qemu-img) holds the imported disk" ||
            note "export: EXPORTED DISK DIFFERS"
    fi
fi
for x in "$c" "$store" "$dest" "${dest}_segments"; do swift delete "$x" >/dev/null 2>&1 || true; done
print_table "import/export end to end (${BENCH_SIZE_MB} MiB virtual dynamic VHD, local Swift)"
cleanup_bench e2e
