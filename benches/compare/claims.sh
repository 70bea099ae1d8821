#!/usr/bin/env bash
# Claim throughput of the task queue: BENCH_TASKS no-op tasks through BENCH_WORKERS
# workers (each its own connection pool, as separate `cloudimg worker` processes), on a
# fresh PostgreSQL database (scripts/pg-up.sh's server) and on a SQLite file, in turn for
# BENCH_ROUNDS rounds. Each run prints tasks/s, the claim statement's latency as a worker
# sees it (p50, p99, max) and how many tasks were claimed twice (must be 0); the summary
# gives medians with min-max. The example program is crates/api/examples/claims.rs.
#
# bash benches/compare/claims.sh      BENCH_TASKS=1000 BENCH_WORKERS=4 BENCH_ROUNDS=5
source "$(dirname "$0")/lib.sh"
need psql python3
tasks="${BENCH_TASKS:-1000}"
workers="${BENCH_WORKERS:-4}"
rounds="${BENCH_ROUNDS:-5}"
if [ -z "${CLOUDIMG_PG_URL:-}" ]; then
    bash "$bench_root/scripts/pg-up.sh" >&2
    # shellcheck disable=SC1091
    source "$bench_root/target/pg.env"
fi
(cd "$bench_root" && cargo build --release --quiet -p cloudimg-api --example claims >&2)
bin="${CARGO_TARGET_DIR:-$bench_root/target}/release/examples/claims"
admin="${CLOUDIMG_PG_URL%/*}/postgres"
out="$BENCH_DIR/claims.jsonl"
: >"$out"
for r in $(seq "$rounds"); do
    db="bench_claims_$$_$r"
    psql "$admin" -X -q -c "CREATE DATABASE $db" >&2
    printf 'postgres\t%s\n' "$("$bin" "${CLOUDIMG_PG_URL%/*}/$db" "$tasks" "$workers")" | tee -a "$out" >&2
    psql "$admin" -X -q -c "DROP DATABASE $db" >&2
    f="$BENCH_DIR/claims_$r.db"
    printf 'sqlite\t%s\n' "$("$bin" "sqlite:$f" "$tasks" "$workers")" | tee -a "$out" >&2
    rm -f "$f" "$f"-*
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    engine, doc = line.rstrip("\n").split("\t", 1)
    rows.setdefault(engine, []).append(json.loads(doc))
print("| engine | tasks x workers | tasks/s | claim p50 ms | claim p99 ms | claim max ms | claimed twice |")
print("|---|---|---:|---:|---:|---:|---:|")
for engine, rs in rows.items():
    def col(k, fmt="{:.0f}"):
        v = [r[k] for r in rs]
        return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"
    print(f"| {engine} | {rs[0]['tasks']} x {rs[0]['workers']} | {col('tasks_per_s')} | "
          f"{col('claim_p50_ms', '{:.1f}')} | {col('claim_p99_ms', '{:.1f}')} | "
          f"{col('claim_max_ms', '{:.1f}')} | {sum(r['claimed_twice'] for r in rs)} |")
PY
