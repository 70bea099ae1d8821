#!/usr/bin/env bash
# Starts a PostgreSQL (Debian's package) on loopback for the API tests and benchmarks, and
# writes its URL to target/pg.env (CLOUDIMG_PG_URL=postgres://cloudimg@127.0.0.1:PORT/cloudimg).
#
# The cluster lives in $CLOUDIMG_PG_DIR (default <checkout>/target/pg), owned by the
# `postgres` system user when run as root (PostgreSQL refuses to run as root), with trust
# authentication on 127.0.0.1 only and the C locale (byte order, as SQLite sorts). No
# systemd: pg_ctl runs it in the background; scripts/pg-down.sh stops it.
#
# Idempotent: when a server already answers on the port, it only rewrites the env file.
#
# Environment (all optional):
#   CLOUDIMG_PG_DIR   data directory   (target/pg)
#   CLOUDIMG_PG_PORT  port             (15432)
#   CLOUDIMG_PG_ENV   env file         (target/pg.env)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CLOUDIMG_PG_DIR:-$root/target/pg}"
port="${CLOUDIMG_PG_PORT:-15432}"
envfile="${CLOUDIMG_PG_ENV:-$root/target/pg.env}"
say() { echo "pg-up: $*" >&2; }

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
    say "PostgreSQL is not installed (run scripts/install-deps.sh)"
    exit 2
fi
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
url="postgres://cloudimg@127.0.0.1:$port/cloudimg"
write_env() {
    mkdir -p "$(dirname "$envfile")"
    printf 'CLOUDIMG_PG_URL=%s\n' "$url" >"$envfile"
}

# Databases the API tests made (t_<uuid>) in an earlier run: dropped at each start.
drop_test_dbs() {
    as_pg "$bin/psql" -q -h 127.0.0.1 -p "$port" -U cloudimg -d postgres -tAc \
        "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'" 2>/dev/null |
        while read -r db; do
            [ -n "$db" ] && as_pg "$bin/dropdb" -h 127.0.0.1 -p "$port" -U cloudimg --if-exists "$db" || true
        done
}

if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    drop_test_dbs
    write_env
    say "PostgreSQL already answers at 127.0.0.1:$port"
    exit 0
fi

mkdir -p "$dir"
if [ "$(id -u)" -eq 0 ]; then
    # The postgres user must reach the data directory: a checkout under a private folder
    # (/root/...) is not reachable, so the cluster goes to /tmp instead.
    if ! runuser -u postgres -- test -x "$(dirname "$dir")"; then
        rmdir "$dir" 2>/dev/null || true
        dir="/tmp/cloudimg-pg-$port"
        say "the checkout is not reachable by the postgres user; data in $dir"
        mkdir -p "$dir"
    fi
    chown postgres: "$dir" && chmod 700 "$dir"
fi
if [ ! -f "$dir/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$dir" -A trust -U cloudimg -E UTF8 --locale=C >"$dir.initdb.log" 2>&1 || {
        cat "$dir.initdb.log" >&2
        say "initdb failed"
        exit 2
    }
fi
as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300" start >/dev/null || {
    tail -20 "$dir/server.log" >&2 || true
    say "could not start PostgreSQL"
    exit 2
}
as_pg "$bin/psql" -q -h 127.0.0.1 -p "$port" -U cloudimg -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'cloudimg'" | grep -q 1 ||
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U cloudimg cloudimg
write_env
say "PostgreSQL ready at $url (data in $dir)"
