#!/usr/bin/env bash
# Starts a one-node, one-replica OpenStack Swift (tempauth + s3api) on loopback for the
# tests and benchmarks, and writes its connection details to target/swift.env.
#
# Everything lives under $CLOUDIMG_SWIFT_DIR (default <checkout>/target/swift): config,
# rings, the devices directory (a plain directory: no mount, mount_check = false), logs
# and pid files. No systemd: the servers run as background processes of their own
# session so swift-down.sh can stop exactly them.
#
# Idempotent: when the recorded processes are alive and Swift answers (healthcheck,
# tempauth token, a probe container), it does nothing. Otherwise it stops whatever a
# previous run recorded and starts afresh (the stored objects are kept).
#
# Environment (all optional):
#   CLOUDIMG_SWIFT_DIR         state directory            (target/swift)
#   CLOUDIMG_SWIFT_ENV         env file to write          (target/swift.env)
#   CLOUDIMG_SWIFT_PROXY_PORT  proxy port                 (18080)
#   CLOUDIMG_SWIFT_PORT_BASE   object port; container +1, account +2 (16010)
#   CLOUDIMG_MEMCACHED_PORT    private memcached port     (11311)
#   CLOUDIMG_SWIFT_TIMEOUT     seconds to wait for health (30)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CLOUDIMG_SWIFT_DIR:-$root/target/swift}"
envfile="${CLOUDIMG_SWIFT_ENV:-$root/target/swift.env}"
proxy_port="${CLOUDIMG_SWIFT_PROXY_PORT:-18080}"
base_port="${CLOUDIMG_SWIFT_PORT_BASE:-16010}"
object_port="$base_port"
container_port=$((base_port + 1))
account_port=$((base_port + 2))
memcached_port="${CLOUDIMG_MEMCACHED_PORT:-11311}"
timeout="${CLOUDIMG_SWIFT_TIMEOUT:-30}"
run_user="$(id -un)"

url="http://127.0.0.1:$proxy_port"
auth_url="$url/auth/v1.0"
user="test:tester"
key="testing"

etc="$dir/etc"
log="$dir/log"
run="$dir/run"
devices="$dir/devices"
servers=(memcached object container account proxy)

say() { echo "swift-up: $*" >&2; }

for tool in swift-proxy-server swift-account-server swift-container-server \
    swift-object-server swift-ring-builder memcached curl setsid flock; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "missing $tool (run scripts/install-deps.sh)"
        exit 2
    fi
done

mkdir -p "$etc" "$log" "$run" "$devices/d1" "$(dirname "$envfile")"

# Two callers at once (parallel test runs) must not both start servers.
exec 9>"$dir/.lock"
flock -w 120 9 || { say "could not lock $dir/.lock"; exit 2; }

# Prints a token, or nothing, for the test user.
token() {
    curl -sf -m 5 -o /dev/null -D - -H "X-Auth-User: $user" -H "X-Auth-Key: $key" \
        "$auth_url" 2>/dev/null | tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: *//p'
}

# Healthy = proxy healthcheck, a tempauth token, a listing (account and container
# servers) and the probe object (object server); start-up creates both.
healthy() {
    curl -sf -m 5 "$url/healthcheck" >/dev/null 2>&1 || return 1
    local t
    t="$(token)"
    [ -n "$t" ] || return 1
    curl -sf -m 5 -o /dev/null -H "X-Auth-Token: $t" \
        "$url/v1/AUTH_test/cloudimg-probe?format=json" 2>/dev/null || return 1
    curl -sf -m 5 -o /dev/null -I -H "X-Auth-Token: $t" \
        "$url/v1/AUTH_test/cloudimg-probe/probe" 2>/dev/null
}

# Alive and not a zombie (an unreaped child still answers kill -0).
alive() {
    local f="$run/$1.pid" pid state
    [ -f "$f" ] || return 1
    pid="$(cat "$f")"
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(sed -n 's/^[0-9]* ([^)]*) \([A-Z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null || true)"
    [ "$state" != Z ]
}

all_alive() {
    local s
    for s in "${servers[@]}"; do alive "$s" || return 1; done
}

write_env() {
    local tmp="$envfile.tmp.$$"
    cat >"$tmp" <<EOF
# Written by scripts/swift-up.sh; read by cloudimg_fixtures::env::swift().
ST_AUTH=$auth_url
ST_USER=$user
ST_KEY=$key
S3_ENDPOINT=$url
S3_ACCESS_KEY=$user
S3_SECRET_KEY=$key
S3_REGION=us-east-1
# A second account for permission tests, and a non-admin user of AUTH_test.
ST_USER2=test2:tester2
ST_KEY2=testing2
ST_USER3=test:tester3
ST_KEY3=testing3
SWIFT_STORAGE_URL=$url/v1/AUTH_test
EOF
    mv "$tmp" "$envfile"
}

if all_alive && healthy; then
    [ -f "$envfile" ] || write_env
    say "already running at $url (state in $dir)"
    exit 0
fi

# Stops the processes a previous run recorded (their whole session), nothing else.
stop_recorded() {
    local s f pid
    for s in "${servers[@]}"; do
        f="$run/$s.pid"
        [ -f "$f" ] || continue
        pid="$(cat "$f")"
        if alive "$s"; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for _ in $(seq 50); do
        local any=0
        for s in "${servers[@]}"; do
            alive "$s" && any=1
        done
        [ "$any" = 0 ] && break
        sleep 0.1
    done
    for s in "${servers[@]}"; do
        f="$run/$s.pid"
        if [ -f "$f" ]; then
            pid="$(cat "$f")"
            if alive "$s"; then
                kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            fi
            rm -f "$f"
        fi
    done
}
stop_recorded

# A port held by someone else would make our server die at bind; say which one.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
for p in "$proxy_port" "$object_port" "$container_port" "$account_port" "$memcached_port"; do
    if port_busy "$p"; then
        if [ "$p" = "$proxy_port" ] && healthy; then
            # A healthy Swift we did not record (e.g. target/ was wiped while it ran):
            # usable as is, and we cannot stop it safely without its pid.
            write_env
            say "a healthy Swift not started from $dir already answers at $url; using it"
            exit 0
        fi
        say "port $p on 127.0.0.1 is in use by another process (set CLOUDIMG_SWIFT_PORT_BASE /"
        say "CLOUDIMG_SWIFT_PROXY_PORT / CLOUDIMG_MEMCACHED_PORT, or stop it)"
        exit 2
    fi
done

# ---- configuration ------------------------------------------------------------------

cat >"$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = cloudimg-test-suffix
swift_hash_path_prefix = cloudimg-test-prefix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
EOF

common() {
    cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 0
user = $run_user
swift_dir = $etc
devices = $devices
mount_check = false
log_name = $2
log_level = INFO
# -v on the command line copies the log to the console, i.e. our log file; keep it out of
# the machine's syslog (a missing socket falls back to UDP, which nothing reads).
log_address = /nonexistent
EOF
}

{
    common "$account_port" account-server
    cat <<EOF

[pipeline:main]
pipeline = healthcheck account-server

[app:account-server]
use = egg:swift#account

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} >"$etc/account-server.conf"

{
    common "$container_port" container-server
    cat <<EOF

[pipeline:main]
pipeline = healthcheck container-server

[app:container-server]
use = egg:swift#container
allow_versions = true

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} >"$etc/container-server.conf"

{
    common "$object_port" object-server
    cat <<EOF

[pipeline:main]
pipeline = healthcheck object-server

[app:object-server]
use = egg:swift#object
# The devices dir shares the root filesystem: do not refuse writes near full.
fallocate_reserve = 0

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} >"$etc/object-server.conf"

{
    common "$proxy_port" proxy-server
    cat <<EOF

[pipeline:main]
# s3api before the auth middleware; slo/dlo after it; proxy-logging twice (client and
# subrequests) as in the upstream sample.
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
# One node: do not wait on handoffs that do not exist.
conn_timeout = 2
node_timeout = 30

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$memcached_port

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
# Path-style requests only (http://127.0.0.1:port/bucket/key).
storage_domain =

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test_tester3 = testing3
user_test2_tester2 = testing2 .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
# The default throttles DLO reads to 1 segment/s after 10 segments: off for tests.
rate_limit_after_segment = 1000000

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true

[filter:symlink]
use = egg:swift#symlink
EOF
} >"$etc/proxy-server.conf"

# ---- rings (rebuilt only when the ports changed) ------------------------------------

stamp="object=$object_port container=$container_port account=$account_port v1"
if [ "$(cat "$etc/rings.stamp" 2>/dev/null)" != "$stamp" ] ||
    [ ! -f "$etc/object.ring.gz" ] || [ ! -f "$etc/container.ring.gz" ] || [ ! -f "$etc/account.ring.gz" ]; then
    for r in object:$object_port container:$container_port account:$account_port; do
        name="${r%%:*}"
        port="${r##*:}"
        rm -f "$etc/$name.builder" "$etc/$name.ring.gz"
        swift-ring-builder "$etc/$name.builder" create 10 1 1 >/dev/null
        swift-ring-builder "$etc/$name.builder" add "r1z1-127.0.0.1:$port/d1" 100 >/dev/null
        # rebalance exits 1 on warnings (e.g. "balance is fine"); the ring file is what counts.
        swift-ring-builder "$etc/$name.builder" rebalance >/dev/null || true
        [ -f "$etc/$name.ring.gz" ] || { say "could not build the $name ring"; exit 2; }
    done
    echo "$stamp" >"$etc/rings.stamp"
fi

# ---- start --------------------------------------------------------------------------

start() {
    local name="$1"
    shift
    # setsid: each server leads its own session, so swift-down.sh can stop it and its
    # children by process group without touching anything else.
    # 9>&-: the lock must not outlive this script in the servers.
    setsid "$@" >>"$log/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$run/$name.pid"
}

dump_logs() {
    local s
    for s in "${servers[@]}"; do
        if [ -f "$log/$s.log" ]; then
            echo "---- $log/$s.log (last lines)" >&2
            tail -n 25 "$log/$s.log" >&2
        fi
    done
}

for s in "${servers[@]}"; do
    echo "==== $(date -u +%FT%TZ) start" >>"$log/$s.log"
done
start memcached memcached -l 127.0.0.1 -p "$memcached_port" -U 0 -m 64 -u "$run_user"
start object swift-object-server "$etc/object-server.conf" -v
start container swift-container-server "$etc/container-server.conf" -v
start account swift-account-server "$etc/account-server.conf" -v
start proxy swift-proxy-server "$etc/proxy-server.conf" -v

deadline=$((SECONDS + timeout))
ready=0
while [ "$SECONDS" -lt "$deadline" ]; do
    for s in "${servers[@]}"; do
        if ! alive "$s"; then
            say "$s exited during start-up"
            dump_logs
            exit 2
        fi
    done
    if curl -sf -m 2 "$url/healthcheck" >/dev/null 2>&1; then
        t="$(token)"
        if [ -n "$t" ] &&
            curl -sf -m 10 -o /dev/null -X PUT -H "X-Auth-Token: $t" "$url/v1/AUTH_test/cloudimg-probe" &&
            curl -sf -m 10 -o /dev/null -X PUT -H "X-Auth-Token: $t" --data-binary probe \
                "$url/v1/AUTH_test/cloudimg-probe/probe" &&
            [ "$(curl -sf -m 10 -H "X-Auth-Token: $t" "$url/v1/AUTH_test/cloudimg-probe/probe")" = probe ]; then
            ready=1
            break
        fi
    fi
    sleep 0.2
done

if [ "$ready" != 1 ]; then
    say "Swift did not become healthy within ${timeout}s"
    dump_logs
    exit 2
fi

write_env
say "Swift ready at $url (tempauth $user/$key; state in $dir; env in $envfile)"
