#!/usr/bin/env bash
# Installs what the build, the tests and the benchmarks need on a fresh Debian machine.
# Idempotent: skips apt when everything is already there.
# nasm, autoconf, automake, libtool and make build ISA-L (crate isal-sys) for the
# deflate engine; isal brings igzip for the interop tests and benchmarks; rclone is the
# Swift transfer benchmark's anchor (benches/compare/transfer.sh).
set -euo pipefail
pkgs=(swift swift-proxy swift-account swift-container swift-object memcached
      python3-swiftclient libvhdi-utils python3-libvhdi pigz qemu-utils curl time bzip2 strace
      python3-keystone python3-keystonemiddleware python3-keystoneclient
      xz-utils zstd genisoimage
      postgresql python3-glanceclient python3-openstackclient
      isal nasm autoconf automake libtool make rclone)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
