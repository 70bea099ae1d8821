#!/usr/bin/env bash
# End-to-end import and export through the local Swift: a XenServer chain package
# uploaded to a container, imported into an image, exported back as a Cloud Images
# DLO (<uuid>.vhd + segments). The rival is the same work done by hand with the
# stock tools (tar | pigz, swift upload, swift download, qemu-img), run in the
# same run on the same input.
#
# bash benches/compare/e2e.sh
source "$(dirname "$0")/lib.sh"
need swift qemu-img pigz tar python3
bash "$bench_root/scripts/swift-up.sh"
set -a
# shellcheck disable=SC1091
source "$bench_root/target/swift.env"
set +a
CLOUDIMG_BIN="$(cloudimg_bin)"
d="$BENCH_DIR/e2e"
mkdir -p "$d/stage" "$d/out"
python3 "$(dirname "$0")/mkchain.py" "$d/stage/1.vhd" "$d/stage/0.vhd" "$BENCH_SIZE_MB"
bytes=$(($(stat -c %s "$d/stage/1.vhd") + $(stat -c %s "$d/stage/0.vhd")))
c="e2e-$$"
swift post "$c" >/dev/null
tar -C "$d/stage" -cf - . | pigz -6 >"$d/image.tgz"
swift upload --object-name image.tgz "$c" "$d/image.tgz" >/dev/null

section "import"
# By hand: download, unpack, check the chain, upload the leaf as the image.
measure "import (by hand)" "swift+pigz+tar+qemu-img" "$bytes" sh -c "
    swift download -o - '$c' image.tgz | pigz -dc | tar -C '$d/out' -xf - &&
    qemu-img info -f vpc '$d/out/1.vhd' >/dev/null &&
    swift upload --segment-size 104857600 --object-name imported.vhd '$c' '$d/out/0.vhd' >/dev/null"
if implemented import; then
    measure "import" "cloudimg" "$bytes" "$CLOUDIMG_BIN" import --from "swift://$c/image.tgz"
fi

section "export"
measure "export (by hand)" "qemu-img+swift" "$bytes" sh -c "
    qemu-img convert -f vpc -O vpc -o subformat=dynamic,force_size=on '$d/stage/1.vhd' '$d/out/export.vhd' &&
    swift upload --segment-size 1048576000 --object-name export.vhd '$c' '$d/out/export.vhd' >/dev/null"
if implemented export; then
    measure "export" "cloudimg" "$bytes" "$CLOUDIMG_BIN" export --to "swift://$c"
fi
swift delete "$c" >/dev/null 2>&1 || true
swift delete "${c}_segments" >/dev/null 2>&1 || true
print_table "import/export end to end (${BENCH_SIZE_MB} MiB virtual, 2-layer chain)"
cleanup_bench e2e
