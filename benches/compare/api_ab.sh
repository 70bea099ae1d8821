#!/usr/bin/env bash
# Two builds of `cloudimg serve` in turn on the same catalogs: the server's CPU per
# request, requests/s and p99 of a list page, for a change whose effect is CPU (an
# allocator, a query): the whole of api.sh (Glance, image data) is not needed for that.
#
# bash benches/compare/api_ab.sh OLD_BINARY NEW_BINARY
#   BENCH_IMAGES=10000 BENCH_SECONDS=5 BENCH_ROUNDS=3 BENCH_CONNS=50
#   BENCH_PATH='/v2/images?limit=25' (the request wrk repeats)
#
# Each build gets its own two catalogs (a SQLite file, a fresh PostgreSQL database on
# scripts/pg-up.sh's server), seeded alike through its own API and api_helper.py's clone,
# so the builds may differ in schema. Each round runs OLD then NEW on SQLite then
# PostgreSQL, with a 2 s warm-up of each server. "ms CPU/req" is the server process's user+sys over the
# requests wrk counted: comparable on a busy machine, where requests/s and p99 are not.
source "$(dirname "$0")/lib.sh"
need curl psql wrk bc
[ $# -eq 2 ] || { note "usage: api_ab.sh OLD_BINARY NEW_BINARY"; exit 2; }
images="${BENCH_IMAGES:-10000}"
secs="${BENCH_SECONDS:-5}"
rounds="${BENCH_ROUNDS:-3}"
conns="${BENCH_CONNS:-50}"
path="${BENCH_PATH:-/v2/images?limit=25}"
py=/usr/bin/python3
helper="$bench_root/benches/compare/api_helper.py"
d="$BENCH_DIR/api_ab"
rm -rf "$d"
mkdir -p "$d/store"
token=bench-token
printf '{"%s": {"project_id": "bench", "roles": ["admin"]}}\n' "$token" >"$d/tokens.json"
if [ -z "${CLOUDIMG_PG_URL:-}" ]; then
    bash "$bench_root/scripts/pg-up.sh" >&2
    # shellcheck disable=SC1091
    source "$bench_root/target/pg.env"
fi
pg_admin="${CLOUDIMG_PG_URL%/*}/postgres"
pg_url() { echo "${CLOUDIMG_PG_URL%/*}/bench_ab_$$_${1,,}"; }
for which in OLD NEW; do
    psql "$pg_admin" -X -q -c "CREATE DATABASE bench_ab_$$_${which,,}" >&2
done
spid=
cleanup() {
    if [ -n "$spid" ]; then kill -- "-$spid" 2>/dev/null || true; fi
    sleep 1
    for which in OLD NEW; do
        psql "$pg_admin" -X -q -c "DROP DATABASE IF EXISTS bench_ab_$$_${which,,}" >&2 || true
    done
    cleanup_bench api_ab
}
trap cleanup EXIT
tck="$(getconf CLK_TCK)"
template='{"name": "bench-image", "disk_format": "vhd", "container_format": "bare",
  "os_distro": "ubuntu", "os_type": "linux", "min_disk": 10, "tags": ["bench", "linux"],
  "org.example.build": "42"}'

# start BINARY DB_URL: sets $spid and $url.
start() {
    local port i
    port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    setsid "$1" serve --db "$2" --store "$d/store" --auth static --tokens "$d/tokens.json" \
        --listen "127.0.0.1:$port" >"$d/serve.log" 2>&1 &
    spid=$!
    url="http://127.0.0.1:$port"
    for i in $(seq 100); do
        curl -s -o /dev/null "$url/" && return 0
        sleep 0.2
    done
    note "no answer from $url"
    exit 2
}
stop() {
    kill -- "-$spid"
    wait "$spid" 2>/dev/null || true
    spid=
}
ticks() { sed 's/.*) //' "/proc/$spid/stat" | awk '{ print $12 + $13 }'; }

# binary WHICH: the build under test.
binary() { if [ "$1" = OLD ]; then echo "$old"; else echo "$new"; fi; }
old="$1"
new="$2"
for which in OLD NEW; do
    for db in "sqlite:$d/catalog-$which.db" "$(pg_url "$which")"; do
        start "$(binary "$which")" "$db"
        id="$(curl -sS -f -X POST -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
            -d "$template" "$url/v2/images" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
        stop
        case "$db" in
        sqlite:*) "$py" "$helper" clone --sqlite "${db#sqlite:}" --template "$id" --count "$images" >&2 ;;
        *) "$py" "$helper" clone --pg "$db" --template "$id" --count "$images" >&2 ;;
        esac
    done
done

echo "$(date -u '+%F %H:%M UTC') · $(nproc) cores · $images images · wrk -t 2 -c $conns, ${secs} s · GET $path · load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | build | engine | requests/s | p99 | server ms CPU/req | server cores |"
echo "|---:|---|---|---:|---:|---:|---:|"
for r in $(seq "$rounds"); do
    for which in OLD NEW; do
        for db in "sqlite:$d/catalog-$which.db" "$(pg_url "$which")"; do
            start "$(binary "$which")" "$db"
            wrk -t 2 -c "$conns" -d 2s -H "X-Auth-Token: $token" "$url$path" >/dev/null
            t0="$(ticks)"
            s0="$(date +%s.%N)"
            out="$(wrk -t 2 -c "$conns" -d "${secs}s" --latency -H "X-Auth-Token: $token" "$url$path")"
            t1="$(ticks)"
            s1="$(date +%s.%N)"
            stop
            rps="$(awk '/Requests\/sec/ { print $2 }' <<<"$out")"
            p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
            n="$(awk '/requests in/ { print $1 }' <<<"$out")"
            cpu="$(bc -l <<<"($t1 - $t0) * 1000 / $tck / $n")"
            cores="$(bc -l <<<"($t1 - $t0) / $tck / ($s1 - $s0)")"
            printf '| %s | %s | %s | %s | %s | %.3f | %.2f |\n' "$r" "$which" "${db%%:*}" "$rps" "$p99" "$cpu" "$cores"
        done
    done
done
