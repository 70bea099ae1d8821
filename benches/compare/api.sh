#!/usr/bin/env bash
# The Cloud Images v2 API (`cloudimg serve`) against upstream Glance (Debian's
# python3-glance), side by side in one run, and the API's data path against the CLI.
#
# 1. Seeds BENCH_IMAGES images into three catalogs: cloudimg serve on SQLite, cloudimg
#    serve on PostgreSQL (a fresh database on the server scripts/pg-up.sh starts) and
#    glance-api on SQLite (`glance-manage db_sync`, paste flavor "" = unauthenticated
#    context, file store, workers = 2). Each server first creates one template image
#    through its own API (name, disk/container format, os_distro, os_type, min_disk, a
#    custom property, two tags); api_helper.py then copies that image's rows by SQL
#    (direct inserts, one transaction, ANALYZE): seeding through Glance's API would
#    take minutes.
# 2. wrk (Debian's `wrk`; installed here with apt-get when missing) on
#    GET /v2/images/{id} (random ids out of 1000 sampled from the catalog, Lua) and
#    GET /v2/images?limit=25, CONNS connections, BENCH_SECONDS each, the servers in
#    turn (A B C A B C ...) for BENCH_ROUNDS rounds after a 2 s warm-up of each. Rows:
#    requests/s, p50/p99 latency, errors (socket errors + non-2xx), and CPU in cores
#    (CPU seconds / wall seconds) of wrk, of the server (all its processes), and of
#    everything else on the machine (/proc/stat busy time minus the two). Then a
#    flat perf profile of the SQLite server under the list load (BENCH_PERF=0: none).
# 3. Image data, BENCH_SIZE_MB (default 1024) MiB: PUT /v2/images/{id}/file and
#    GET .../file with curl against `cloudimg upload`/`download` of the same file into
#    the same local store directory with the server's settings (32 MiB segments, 2 jobs;
#    downloads 2 jobs of 8 MiB pieces), BENCH_UPLOAD_RUNS runs in turn, wall and CPU of
#    client and server; every download is compared with the source (cmp) and every
#    upload's MD5 with the image's checksum. Like for like: the server computes what a
#    Glance record carries, MD5 and SHA-512 of the whole image, so the CLI upload row
#    asks for the same digests (`--digest md5,sha512`; its default is MD5 only).
#    Then BENCH_CONCURRENT uploads at once (BENCH_CONCURRENT=0: none):
#    the server's peak RSS (VmHWM, reset through /proc/PID/clear_refs just before)
#    against the bound docs/API.md states, (upload_jobs + 1) x segment per upload.
#
# The load tool, the servers and the clients share the machine's cores: the CPU
# columns say who used them.
#
# bash benches/compare/api.sh
#   BENCH_IMAGES=10000 BENCH_SECONDS=10 BENCH_CONNS=50 BENCH_ROUNDS=3
#   BENCH_SIZE_MB=1024 BENCH_UPLOAD_RUNS=3 BENCH_CONCURRENT=10
#   BENCH_DATA=0 (the load tables only: no image data section)
#   BENCH_ONLY=data (the image data section only: one cloudimg serve on SQLite with an
#     empty catalog; no seeding, no Glance, no PostgreSQL, no wrk)
#   CLOUDIMG_PG_URL (default: scripts/pg-up.sh's server)
source "$(dirname "$0")/lib.sh"
need curl cmp md5sum psql

images="${BENCH_IMAGES:-10000}"
secs="${BENCH_SECONDS:-10}"
conns="${BENCH_CONNS:-50}"
rounds="${BENCH_ROUNDS:-3}"
up_runs="${BENCH_UPLOAD_RUNS:-3}"
concurrent="${BENCH_CONCURRENT:-10}"
py=/usr/bin/python3 # Debian's, where python3-glance lives (not a pyenv shim)
helper="$bench_root/benches/compare/api_helper.py"
only="${BENCH_ONLY:-}"
case "$only" in
    "" | data) ;;
    *)
        note "BENCH_ONLY=$only: only 'data' is known"
        exit 2
        ;;
esac

if [ -z "$only" ] && ! command -v wrk >/dev/null 2>&1; then
    note "wrk is missing: installing Debian's wrk with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2
fi
[ -n "$only" ] || "$py" -c 'import glance' 2>/dev/null || {
    note "python3-glance is missing (apt-get install python3-glance)"
    exit 2
}
CLOUDIMG_BIN="$(cloudimg_bin)"

d="$BENCH_DIR/api"
rm -rf "$d"
mkdir -p "$d"
results="$d/results.tsv"
: >"$results"
token=bench-token
printf '{"%s": {"project_id": "bench", "roles": ["admin"]}}\n' "$token" >"$d/tokens.json"

pg_admin=""
if [ -z "$only" ]; then
    if [ -z "${CLOUDIMG_PG_URL:-}" ]; then
        bash "$bench_root/scripts/pg-up.sh" >&2
        # shellcheck disable=SC1091
        source "$bench_root/target/pg.env"
    fi
    pg_db="bench_api_$$"
    pg_admin="${CLOUDIMG_PG_URL%/*}/postgres"
    pg_url="${CLOUDIMG_PG_URL%/*}/$pg_db"
    psql "$pg_admin" -X -q -c "CREATE DATABASE $pg_db" >&2
fi

server_groups=()
cleanup() {
    local g
    for g in "${server_groups[@]}"; do
        kill -- "-$g" 2>/dev/null || true
    done
    sleep 1
    [ -z "$pg_admin" ] || psql "$pg_admin" -X -q -c "DROP DATABASE IF EXISTS $pg_db" >&2 || true
    cleanup_bench api
}
trap cleanup EXIT

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() {
    local url="$1" i
    for i in $(seq 120); do
        curl -s -o /dev/null "$url" && return 0
        sleep 0.5
    done
    note "no answer from $url"
    exit 2
}

# The pids of a server: its process group (Glance's workers are forks of its master).
group_pids() {
    ps -o pid= -s "$1" | tr -d ' '
}
tck="$(getconf CLK_TCK)"
# CPU ticks (utime + stime) of the processes of group $1.
group_ticks() {
    local p total=0 t
    for p in $(group_pids "$1"); do
        t="$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')" || continue
        [ -n "$t" ] && total=$((total + t))
    done
    echo "$total"
}
# Busy ticks of the whole machine.
machine_ticks() {
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

# start_cloudimg NAME DB_URL: sets $url_NAME and $grp_NAME.
start_cloudimg() {
    local name="$1" db="$2" port
    port="$(free_port)"
    mkdir -p "$d/store"
    setsid "$CLOUDIMG_BIN" serve --db "$db" --store "$d/store" --auth static \
        --tokens "$d/tokens.json" --listen "127.0.0.1:$port" >"$d/$name.log" 2>&1 &
    local pid=$!
    server_groups+=("$pid")
    printf -v "url_$name" '%s' "http://127.0.0.1:$port"
    printf -v "grp_$name" '%s' "$pid"
    wait_http "http://127.0.0.1:$port/"
}

start_glance() {
    local g="$d/glance" port
    port="$(free_port)"
    mkdir -p "$g/store" "$g/staging"
    cat >"$g/glance-api-paste.ini" <<'EOF'
[pipeline:glance-api]
pipeline = versionnegotiation unauthenticated-context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:unauthenticated-context]
paste.filter_factory = glance.api.middleware.context:UnauthenticatedContextMiddleware.factory
EOF
    cat >"$g/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
workers = 2
log_file = $g/glance-api.log
node_staging_uri = file://$g/staging
[database]
connection = sqlite:///$g/glance.db
[paste_deploy]
flavor =
config_file = $g/glance-api-paste.ini
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = $g/store
[oslo_policy]
enforce_new_defaults = false
EOF
    "$py" -m glance.cmd.manage --config-file "$g/glance-api.conf" db_sync >"$g/db_sync.log" 2>&1
    setsid "$py" -m glance.cmd.api --config-file "$g/glance-api.conf" >"$g/api.out" 2>&1 &
    local pid=$!
    server_groups+=("$pid")
    url_glance="http://127.0.0.1:$port"
    grp_glance="$pid"
    wait_http "$url_glance/v2/images"
}

template='{"name": "bench-image", "disk_format": "vhd", "container_format": "bare",
  "os_distro": "ubuntu", "os_type": "linux", "min_disk": 10, "tags": ["bench", "linux"],
  "org.example.build": "42"}'
# post_image URL [BODY]: creates an image, prints its id.
post_image() {
    curl -sS -f -X POST -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
        -d "${2:-$template}" "$1/v2/images" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}

# sample_ids NAME: 1000 random ids of the catalog into $d/ids.NAME.
sample_ids() {
    local name="$1" sql="SELECT id FROM images ORDER BY random() LIMIT 1000"
    case "$name" in
        sqlite) "$py" -c "import sqlite3, sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute('$sql')]" "$d/catalog.db" ;;
        pg) psql "$pg_url" -X -At -c "$sql" ;;
        glance) "$py" -c "import sqlite3, sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute('$sql')]" "$d/glance/glance.db" ;;
    esac >"$d/ids.$name"
}

if [ "$only" = data ]; then
    note "BENCH_ONLY=data: one cloudimg serve (SQLite, empty catalog)"
    start_cloudimg sqlite "sqlite:$d/catalog.db"
else
note "starting cloudimg serve (SQLite, PostgreSQL) and glance-api; seeding $images images each"
start_cloudimg sqlite "sqlite:$d/catalog.db"
start_cloudimg pg "$pg_url"
start_glance
# shellcheck disable=SC2154
for s in sqlite pg glance; do
    u="url_$s"
    t0=$(date +%s.%N)
    tpl="$(post_image "${!u}")"
    case "$s" in
        sqlite) n="$("$py" "$helper" clone --sqlite "$d/catalog.db" --template "$tpl" --count $((images - 1)))" ;;
        pg) n="$("$py" "$helper" clone --pg "$pg_url" --template "$tpl" --count $((images - 1)))" ;;
        glance) n="$("$py" "$helper" clone --sqlite "$d/glance/glance.db" --template "$tpl" --count $((images - 1)))" ;;
    esac
    note "$s: $n images seeded in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
    sample_ids "$s"
    # A served image and a full page, before any load.
    curl -sS -f -H "X-Auth-Token: $token" "${!u}/v2/images/$(head -1 "$d/ids.$s")" >/dev/null
    got="$(curl -sS -f -H "X-Auth-Token: $token" "${!u}/v2/images?limit=25" |
        "$py" -c 'import json, sys; print(len(json.load(sys.stdin)["images"]))')"
    [ "$got" = 25 ] || {
        note "$s: a page of limit=25 held $got images"
        exit 1
    }
done

cat >"$d/show.lua" <<'EOF'
local ids = {}
init = function(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
end
request = function()
  return wrk.format("GET", "/v2/images/" .. ids[math.random(#ids)])
end
EOF

# to_ms VALUE: wrk's "1.23ms" / "456.00us" / "1.02s" in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

# settle: waits (at most 20 s) until the machine is idle (under half a core busy over
# 0.5 s). Glance answers the last of a run's 50 requests for up to a second after wrk
# stops (its p99 is that long): without this, the next server's run shared the cores
# with it and its p99 showed Glance's tail, not its own.
settle() {
    local i a b
    for i in $(seq 40); do
        a="$(machine_ticks)"
        sleep 0.5
        b="$(machine_ticks)"
        [ "$(((b - a) * 4))" -lt "$tck" ] && return 0
    done
    note "the machine did not settle: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# load ENDPOINT SERVER [record]: one wrk run, on an idle machine; with "record", a row
# in results.tsv.
load() {
    local ep="$1" s="$2" rec="${3:-}" dur="$secs"
    settle
    local u="url_$s" g="grp_$s" args=()
    [ -z "$rec" ] && dur=3
    case "$ep" in
        show) args=(-s "$d/show.lua" "${!u}/v2/images/x" -- "$d/ids.$s") ;;
        list) args=("${!u}/v2/images?limit=25") ;;
    esac
    local s0 m0 s1 m1 out="$d/wrk.out" tf="$d/wrk.time"
    s0="$(group_ticks "${!g}")"
    m0="$(machine_ticks)"
    /usr/bin/time -f '%e %U %S' -o "$tf" wrk -t 2 -c "$conns" -d "${dur}s" --timeout 10s \
        --latency -H "X-Auth-Token: $token" "${args[@]}" >"$out"
    s1="$(group_ticks "${!g}")"
    m1="$(machine_ticks)"
    [ -z "$rec" ] && return 0
    local rps p50 p99 errs non2xx wall usr sys
    rps="$(sed -n 's/^Requests\/sec: *//p' "$out")"
    p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
    errs="$(sed -n 's/.*Socket errors: //p' "$out" | tr -cs '0-9' ' ' | awk '{ for (i = 1; i <= NF; i++) t += $i; print t + 0 }')"
    non2xx="$(sed -n 's/.*Non-2xx or 3xx responses: *//p' "$out")"
    read -r wall usr sys <"$tf"
    local row
    row="$(awk -v ep="$ep" -v s="$s" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v e="$((errs + ${non2xx:-0}))" \
        -v w="$wall" -v u="$usr" -v y="$sys" -v s0="$s0" -v s1="$s1" -v m0="$m0" -v m1="$m1" -v k="$tck" \
        'BEGIN { srv = (s1 - s0) / k; tool = u + y; all = (m1 - m0) / k;
                 oth = all - srv - tool; if (oth < 0) oth = 0;
                 printf "load\t%s\t%s\t%s\t%s\t%s\t%d\t%.2f\t%.2f\t%.2f\n", ep, s, rps, p50, p99, e, tool / w, srv / w, oth / w }')"
    echo "$row" >>"$results"
    note "$(echo "$row" | cut -f2-)"
}

note "load: wrk -t 2 -c $conns, ${secs} s per run, $rounds rounds (servers in turn)"
note "machine before the load runs: $(cut -d' ' -f1-3 /proc/loadavg) load average"
for ep in show list; do
    for s in sqlite glance pg; do load "$ep" "$s"; done
done
for r in $(seq "$rounds"); do
    for ep in show list; do
        for s in sqlite glance pg; do load "$ep" "$s" record; done
    done
done
# Where cloudimg's CPU goes under the list load: a flat perf profile of the SQLite server.
if [ "${BENCH_PERF:-1}" = 1 ] && command -v perf >/dev/null 2>&1; then
    wrk -t 2 -c "$conns" -d 6s --timeout 10s -H "X-Auth-Token: $token" "$url_sqlite/v2/images?limit=25" >/dev/null &
    wpid=$!
    sleep 0.5
    perf record -q -F 499 -o "$d/perf.data" -p "$grp_sqlite" -- sleep 5 2>/dev/null || true
    wait "$wpid"
    perf report -q -i "$d/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 1.5 2>/dev/null |
        sed -e 's/[ -]*$//' | grep -v '^$' | head -25 >"$d/perf.txt" || true
fi
# The load rows say sqlite/pg/glance; the tables name the servers.
sed -i -e 's/\tsqlite\t/\tcloudimg (SQLite)\t/' -e 's/\tpg\t/\tcloudimg (PostgreSQL)\t/' \
    -e 's/\tglance\t/\tGlance 25.1 (SQLite)\t/' \
    -e 's/^load\tshow\t/load\tGET \/v2\/images\/{id}\t/' -e 's/^load\tlist\t/load\tGET \/v2\/images?limit=25\t/' "$results"

if [ "${BENCH_DATA:-1}" = 0 ]; then
    echo
    echo "### Cloud Images v2 API against Glance (benches/compare/api.sh, BENCH_DATA=0: no image data)"
    echo
    echo "$(date -u '+%F %H:%M UTC') · $(nproc) cores · $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1) · $(uname -sr) · $images images per catalog · wrk -t 2 -c $conns, $secs s × $rounds rounds · load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    "$py" "$helper" summary "$results"
    if [ -s "$d/perf.txt" ]; then
        echo '```'
        cat "$d/perf.txt"
        echo '```'
    fi
    exit 0
fi
fi # BENCH_ONLY

# --- image data through the API and through the CLI, same store -------------------
for s in pg glance; do
    g="grp_$s"
    [ -z "${!g:-}" ] || kill -- "-${!g}" 2>/dev/null || true
done
src="$d/disk.raw"
make_disk_raw "$src"
bytes=$((BENCH_SIZE_MB << 20))
md5="$(md5sum "$src" | cut -d' ' -f1)"
u="$url_sqlite"
spid="$grp_sqlite"

# xfer OP TOOL CMD...: one timed transfer; client CPU from /usr/bin/time, server's from /proc.
xfer() {
    local op="$1" tool="$2" tf="$d/xfer.time" s0 s1
    shift 2
    sync
    s0="$(group_ticks "$spid")"
    /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$d/xfer.out" 2>"$d/xfer.err" || {
        note "$op / $tool failed:"
        tail -5 "$d/xfer.err" >&2
        exit 1
    }
    s1="$(group_ticks "$spid")"
    local wall usr sys rss srv=0
    read -r wall usr sys rss <"$tf"
    [ "$tool" = "API (curl)" ] && srv="$(awk -v a="$s0" -v b="$s1" -v k="$tck" 'BEGIN { printf "%.2f", (b - a) / k }')"
    printf 'xfer\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\n' "$op" "$tool" "$bytes" "$wall" "$(awk -v a="$usr" -v b="$sys" 'BEGIN { print a + b }')" "$srv" "$rss" >>"$results"
    note "$op / $tool: $wall s (client CPU $usr+$sys s, server CPU $srv s)"
}
image_md5() {
    curl -sS -f -H "X-Auth-Token: $token" "$u/v2/images/$1" |
        "$py" -c 'import json, sys; j = json.load(sys.stdin); print(j["status"], j.get("checksum"))'
}

note "image data: $BENCH_SIZE_MB MiB, $up_runs runs"
for r in $(seq "$up_runs"); do
    id="$(post_image "$u" '{"name": "data", "disk_format": "raw", "container_format": "bare"}')"
    xfer "upload" "API (curl)" curl -sS -f -X PUT -H "X-Auth-Token: $token" \
        -H 'Content-Type: application/octet-stream' -T "$src" "$u/v2/images/$id/file"
    [ "$(image_md5 "$id")" = "active $md5" ] || {
        note "upload through the API: $(image_md5 "$id"), expected active $md5"
        exit 1
    }
    xfer "upload" "cloudimg CLI" "$CLOUDIMG_BIN" upload --segment-size 32M -j 2 --digest md5,sha512 "$src" "$d/store/cli/disk-$r.img"
    grep -q "$md5" "$d/xfer.out" || {
        note "upload through the CLI: no MD5 $md5 in its summary"
        exit 1
    }
    xfer "download" "API (curl)" curl -sS -f -H "X-Auth-Token: $token" -o "$d/out.raw" "$u/v2/images/$id/file"
    cmp "$src" "$d/out.raw"
    rm -f "$d/out.raw"
    xfer "download" "cloudimg CLI" "$CLOUDIMG_BIN" download -j 2 --piece-size 8M "$d/store/cli/disk-$r.img" "$d/out.raw"
    cmp "$src" "$d/out.raw"
    rm -rf "$d/out.raw" "$d/store/cli"
    curl -sS -f -X DELETE -H "X-Auth-Token: $token" "$u/v2/images/$id"
done

conc_line=""
if [ "$concurrent" -gt 0 ]; then
note "$concurrent concurrent uploads of $BENCH_SIZE_MB MiB"
ids=()
for i in $(seq "$concurrent"); do
    ids+=("$(post_image "$u" '{"name": "data", "disk_format": "raw", "container_format": "bare"}')")
done
sync
rss0="$(awk '/^VmRSS/ { print $2 }' "/proc/$spid/status")"
echo 5 >"/proc/$spid/clear_refs" # resets VmHWM to the current RSS
t0=$(date +%s.%N)
cpids=()
for id in "${ids[@]}"; do
    curl -sS -f -X PUT -H "X-Auth-Token: $token" -H 'Content-Type: application/octet-stream' \
        -T "$src" "$u/v2/images/$id/file" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p"; done
t1=$(date +%s.%N)
hwm="$(awk '/^VmHWM/ { print $2 }' "/proc/$spid/status")"
for id in "${ids[@]}"; do
    [ "$(image_md5 "$id")" = "active $md5" ] || {
        note "concurrent upload $id: $(image_md5 "$id")"
        exit 1
    }
    curl -sS -f -X DELETE -H "X-Auth-Token: $token" "$u/v2/images/$id"
done
conc_wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
conc_line="$concurrent concurrent uploads of $BENCH_SIZE_MB MiB: $conc_wall s ($(awk -v n="$concurrent" -v m="$BENCH_SIZE_MB" -v s="$conc_wall" 'BEGIN { printf "%.0f", n * m / s }') MiB/s in all), all active with the right MD5; server RSS before $((rss0 / 1024)) MiB, peak (VmHWM) $((hwm / 1024)) MiB; bound $concurrent x (2 + 1) x 32 MiB = $((concurrent * 96)) MiB above the idle server."
fi

echo
machine="$(date -u '+%F %H:%M UTC') · $(nproc) cores · $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1) · $(uname -sr) · load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$only" = data ]; then
    echo "### Cloud Images v2 API, image data against the CLI (benches/compare/api.sh, BENCH_ONLY=data)"
    echo
    echo "$machine · $BENCH_SIZE_MB MiB × $up_runs runs"
else
    echo "### Cloud Images v2 API against Glance (benches/compare/api.sh)"
    echo
    echo "$machine · $images images per catalog · wrk -t 2 -c $conns, $secs s × $rounds rounds"
fi
echo
"$py" "$helper" summary "$results"
if [ -n "$conc_line" ]; then
    echo "$conc_line"
    echo
fi
if [ -s "$d/perf.txt" ]; then
    echo "perf (cloudimg serve, SQLite, under GET /v2/images?limit=25, 5 s at 499 Hz; % of its samples):"
    echo
    echo '```'
    cat "$d/perf.txt"
    echo '```'
    echo
fi
echo "Raw rows: $results (kept with BENCH_KEEP=1)."
