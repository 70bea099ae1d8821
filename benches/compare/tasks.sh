#!/usr/bin/env bash
# Exports through the task queue against `cloudimg export` run directly, and two workers
# against one, in one run with the tools in turn (lib.sh's `timed`: one warm-up round,
# then BENCH_RUNS counted rounds; medians with min-max).
#
# Input: a dynamic VHD of BENCH_SIZE_MB MiB virtual (`make_disk_raw`: a third random, a
# third text, a third holes; `qemu-img convert -O vpc`), imported once with
# `cloudimg import` into a local image store, which `cloudimg serve` registers at start.
#
# 1. One export: `cloudimg export --store S --image ID --to FILES/bench/exports` against
#    `POST /v2/tasks` (type export) to `cloudimg serve --workers 1 --files FILES`, timed
#    from the POST to the moment `GET /v2/tasks/{id}` says success (polled every 50 ms).
#    The wall time is what the issue compares; the CPU column of the API row is the
#    client's (curl), the server's work is not in it.
# 2. Two exports of the same image into two containers: one `cloudimg worker` doing both
#    against two workers doing one each, timed from the two POSTs to both successes, with
#    the workers' CPU (user+sys) read from /proc before they exit.
#
# bash benches/compare/tasks.sh        BENCH_SIZE_MB=1024 BENCH_RUNS=5
source "$(dirname "$0")/lib.sh"
need curl qemu-img python3
CLOUDIMG_BIN="$(cloudimg_bin)"
d="$BENCH_DIR/tasks"
rm -rf "$d"
mkdir -p "$d/files/bench"
trap 'kill $(jobs -p) 2>/dev/null || true; cleanup_bench tasks' EXIT

make_disk_raw "$d/disk.raw"
qemu-img convert -q -f raw -O vpc "$d/disk.raw" "$d/disk.vhd"
rm -f "$d/disk.raw"
"$CLOUDIMG_BIN" import --from "$d/disk.vhd" --store "$d/store" --owner bench --name disk >&2
image="$(basename "$(ls "$d"/store/images/*.json | head -1)" .json)"
printf '{"bench-token": {"project_id": "bench", "roles": ["admin"]}}\n' >"$d/tokens.json"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
api="http://127.0.0.1:$port"

start_serve() { # $1: embedded workers
    CLOUDIMG_LOG=warn "$CLOUDIMG_BIN" serve --db "sqlite:$d/catalog.db" --store "$d/store" \
        --auth static --tokens "$d/tokens.json" --listen "127.0.0.1:$port" \
        --workers "$1" --files "$d/files" 2>>"$d/serve.log" &
    serve_pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "$api/" && return 0; sleep 0.1; done
    note "serve did not start"; exit 2
}

# The client side of an export through the queue: POST, then poll to success.
cat >"$d/api_export.sh" <<'SH'
set -euo pipefail
api="$1" image="$2"; shift 2
ids=()
for c in "$@"; do
    ids+=("$(curl -sf -H 'X-Auth-Token: bench-token' -H 'Content-Type: application/json' \
        -d "{\"type\": \"export\", \"input\": {\"image_uuid\": \"$image\", \"receiving_swift_container\": \"$c\"}}" \
        "$api/v2/tasks" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
done
for id in "${ids[@]}"; do
    while :; do
        st="$(curl -sf -H 'X-Auth-Token: bench-token' "$api/v2/tasks/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
        [ "$st" = success ] && break
        [ "$st" = failure ] && { echo "task $id failed" >&2; exit 1; }
        sleep 0.05
    done
done
SH

fresh() { rm -rf "$d/files/bench/$1"; mkdir -p "$d/files/bench/$1"; }

start_serve 1
for round in $(seq 0 "$BENCH_RUNS"); do
    fresh exports
    timed "one export" "cloudimg export" "$CLOUDIMG_BIN" export --store "$d/store" \
        --image "$image" --to "$d/files/bench/exports" --owner bench
    fresh exports
    timed "one export" "POST /v2/tasks + 1 worker" bash "$d/api_export.sh" "$api" "$image" exports
done
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

# Two exports: the server runs no worker; worker processes do.
start_serve 0
worker() { CLOUDIMG_LOG=warn "$CLOUDIMG_BIN" worker --db "sqlite:$d/catalog.db" --store "$d/store" --files "$d/files" 2>>"$d/worker.log" & }
cpu_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tck="$(getconf CLK_TCK)"
cpu_rows="$d/cpu.tsv"
: >"$cpu_rows"
for round in $(seq 0 "$BENCH_RUNS"); do
    for n in 1 2; do
        fresh e1; fresh e2
        pids=()
        for _ in $(seq "$n"); do worker; pids+=($!); done
        timed "two exports" "$n worker(s)" bash "$d/api_export.sh" "$api" "$image" e1 e2
        c=0; for p in "${pids[@]}"; do c=$((c + $(cpu_of "$p"))); done
        [ "$round" -gt 0 ] && printf '%s\t%s\n' "$n" "$(python3 -c "print($c / $tck)")" >>"$cpu_rows"
        kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
    done
done
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

turns_table "Exports through the task queue ($BENCH_SIZE_MB MiB virtual dynamic VHD, local store and files)" "cloudimg export" "1 worker(s)"
echo
echo "Workers' CPU (user+sys, seconds) in the two-export rows, median (min-max):"
python3 - "$cpu_rows" <<'PY'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    n, c = l.split()
    rows.setdefault(n, []).append(float(c))
for n, v in sorted(rows.items()):
    print(f"- {n} worker(s): {statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")
PY
