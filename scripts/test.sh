#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs dependencies, starts a local
# Swift, then runs formatting, lint and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/swift-up.sh
# Keystone v3 and a Swift proxy that trusts it, for the Keystone auth tests.
bash scripts/keystone-up.sh
# PostgreSQL on loopback: every API test runs on it and on SQLite.
bash scripts/pg-up.sh
cargo fmt --all -- --check
# No file imports another that imports it back (issue 14); pure python, instant.
python3 scripts/modcycles.py
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# The build without ISA-L (no nasm, another architecture): the deflate engine that
# remains is chosen at build time, and glibc's malloc replaces mimalloc (issue 19). It
# must build clean, and its gzip writers must pass the readers' tests.
cargo clippy -p cloudimg-cli --no-default-features -- -D warnings
cargo test -p cloudimg-ova --no-default-features --test engines --test member_encoders
# Fuzz smoke: every parser target for a bounded time (about 5 minutes in all).
if [ -f scripts/fuzz-smoke.sh ]; then
    bash scripts/fuzz-smoke.sh
fi
