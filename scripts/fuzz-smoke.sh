#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target in fuzz/ and runs each for a bounded
# time from the seed corpora, so a parser regression is caught on every change.
# Long campaigns: see fuzz/README.md.
#
# Environment (all optional):
#   FUZZ_SECONDS   seconds per target                     (30)
#   FUZZ_BUDGET    cap on the whole run, in seconds; each target gets
#                  min(FUZZ_SECONDS, FUZZ_BUDGET / targets)  (300)
#   FUZZ_TARGETS   space-separated subset of targets       (all)
#   FUZZ_JOBS      parallel libFuzzer jobs per target       (1)
#   FUZZ_SEED      libFuzzer seed                            (20261123)
#   FUZZ_SANITIZER address | none                           (address)
#   FUZZ_CORPUS    fresh (seeds only, scratch) | keep (grow fuzz/corpus)   (fresh)
#   FUZZ_TOOLCHAIN auto | stable: stable forces RUSTC_BOOTSTRAP even with nightly (auto)
#
# Toolchain: cargo-fuzz needs nightly flags (-Zsanitizer). The nightly toolchain is
# used when rustup has one; otherwise the installed stable compiler is run with
# RUSTC_BOOTSTRAP=1, which unlocks the same flags. cargo-fuzz itself is installed
# once into target/tools (crates.io, --locked) unless it is on PATH already.
#
# Exit status: 0 no crash, 1 a target crashed (artifact paths printed), 2 environment.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

secs="${FUZZ_SECONDS:-30}"
budget="${FUZZ_BUDGET:-300}"
jobs="${FUZZ_JOBS:-1}"
sanitizer="${FUZZ_SANITIZER:-address}"
tools="$root/target/tools"
say() { echo "fuzz-smoke: $*" >&2; }

# ---- toolchain ----------------------------------------------------------------------
toolchain=()
want="${FUZZ_TOOLCHAIN:-auto}"
if [ "$want" != stable ] && command -v rustup >/dev/null 2>&1 &&
    rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=(+nightly)
    say "toolchain: $(rustup run nightly rustc --version)"
else
    export RUSTC_BOOTSTRAP=1
    say "toolchain: $(rustc --version) with RUSTC_BOOTSTRAP=1 (no nightly installed)"
fi

# ---- cargo-fuzz ---------------------------------------------------------------------
if ! cargo fuzz --version >/dev/null 2>&1; then
    export PATH="$tools/bin:$PATH"
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "installing cargo-fuzz into $tools (once)"
        CARGO_TARGET_DIR="$root/target/tools-build" \
            cargo install --locked --root "$tools" cargo-fuzz >&2 ||
            { say "could not install cargo-fuzz"; exit 2; }
        rm -rf "$root/target/tools-build"
    fi
fi

# The fuzz crate has its own target dir (fuzz/target, git-ignored) unless the caller
# points CARGO_TARGET_DIR elsewhere; cargo-fuzz looks for binaries there itself.

# ---- targets ------------------------------------------------------------------------
mapfile -t all < <(cargo "${toolchain[@]}" fuzz list)
if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    targets=("${all[@]}")
fi
[ "${#targets[@]}" -gt 0 ] || { say "no fuzz targets"; exit 2; }
per=$((budget / ${#targets[@]}))
[ "$per" -lt "$secs" ] && secs="$per"
[ "$secs" -lt 1 ] && secs=1
say "${#targets[@]} targets, ${secs}s each"

build_flags=(-O --debug-assertions -s "$sanitizer")
say "building (cargo fuzz build ${build_flags[*]})"
cargo "${toolchain[@]}" fuzz build "${build_flags[@]}" >&2 || { say "build failed"; exit 2; }
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
host="$(rustc -vV | sed -n 's/^host: //p')"
bindir="$target_dir/$host/release"
for t in "${targets[@]}"; do
    [ -x "$bindir/$t" ] || { say "no binary $bindir/$t after the build"; exit 2; }
done

# ---- seeds --------------------------------------------------------------------------
# The smoke run starts from the seeds alone, in a scratch corpus made afresh each time
# (FUZZ_CORPUS=keep grows fuzz/corpus instead): with the fixed seed below, a local run
# then explores exactly what CI's clean clone explores, only for longer.
if [ "${FUZZ_CORPUS:-fresh}" = keep ]; then
    corpus_root="$root/fuzz/corpus"
else
    corpus_root="$root/fuzz/target/smoke-corpus"
    rm -rf "$corpus_root"
fi
python3 "$root/fuzz/seeds.py" "$corpus_root"

# Read-only extra corpora: small files from the fixtures and the shared interop set,
# linked (never copied) into a scratch directory per target family.
mkdir -p "$root/fuzz/target"
extra="$root/fuzz/target/extra-corpus"
rm -rf "$extra"
mkdir -p "$extra/vhd"
for src in "$root/fixtures/out" "$root/target/fixtures" "$root/../shared/interop/vhd"; do
    [ -d "$src" ] || continue
    while IFS= read -r -d '' f; do
        ln -sf "$f" "$extra/vhd/$(echo "$f" | md5sum | cut -c1-16)"
    done < <(find "$src" -type f -size -1024k \( -name '*.vhd' -o -name '*.vpc' \) -print0 2>/dev/null)
done

dict_for() {
    case "$1" in
    vhd_*) echo "$root/fuzz/dict/vhd.dict" ;;
    tar_* | ova_* | gzip_*) echo "$root/fuzz/dict/tar.dict" ;;
    swift_* | slo_* | task_* | keystone_*) echo "$root/fuzz/dict/json.dict" ;;
    http_*) echo "$root/fuzz/dict/http.dict" ;;
    s3_*) echo "$root/fuzz/dict/xml.dict" ;;
    esac
}

# Inputs bigger than the seeds only slow the mutator down.
maxlen_for() {
    case "$1" in
    vhd_footer) echo 512 ;;
    vhd_header) echo 4096 ;;
    vhd_image | vhd_chain | tar_* | ova_*) echo 131072 ;;
    *) echo 65536 ;;
    esac
}

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$corpus_root/$t" "$root/fuzz/artifacts/$t"
    corpora=("$corpus_root/$t")
    case "$t" in vhd_image | vhd_chain) [ -n "$(ls -A "$extra/vhd")" ] && corpora+=("$extra/vhd") ;; esac
    # A fixed seed makes a run explore the same inputs as any other run of the same
    # length from the same seeds: CI sees a prefix of what a longer local run proved clean.
    args=(-seed="${FUZZ_SEED:-20261123}" -max_total_time="$secs" -max_len="$(maxlen_for "$t")" -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$root/fuzz/artifacts/$t/")
    d="$(dict_for "$t")"
    [ -n "$d" ] && [ -f "$d" ] && args+=(-dict="$d")
    [ "$jobs" -gt 1 ] && args+=(-jobs="$jobs" -workers="$jobs")
    say "run $t for ${secs}s"
    log="$root/fuzz/target/$t.log"
    # The binary built above, run directly: `cargo fuzz run` would rebuild whenever a
    # source file changed since, which in a busy checkout is every time.
    if "$bindir/$t" "${args[@]}" "${corpora[@]}" >"$log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|Done [0-9]+ runs" "$log" |
            sed "s/^/  $t: /" >&2 || true
    else
        failed+=("$t")
        say "$t FAILED; last lines of $log:"
        tail -n 40 "$log" >&2
        say "artifacts: $(ls "$root/fuzz/artifacts/$t" | tr '\n' ' ')"
        say "reproduce: cd fuzz && cargo fuzz run $t artifacts/$t/<file>"
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    say "crashes in: ${failed[*]}"
    exit 1
fi
say "all ${#targets[@]} targets ran ${secs}s without a crash"
