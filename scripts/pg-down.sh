#!/usr/bin/env bash
# Stops the PostgreSQL that scripts/pg-up.sh started (the data directory is kept).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CLOUDIMG_PG_DIR:-$root/target/pg}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
[ -n "$bin" ] && [ -f "$dir/postmaster.pid" ] || exit 0
if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -m fast stop
else
    "$bin/pg_ctl" -D "$dir" -m fast stop
fi
