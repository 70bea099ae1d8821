#!/usr/bin/env bash
# Starts a Keystone (v3, sqlite, fernet tokens) on loopback and a second Swift proxy that
# authenticates with it (authtoken + keystoneauth), in front of the Swift that
# scripts/swift-up.sh started (same rings, same storage servers). Tests of the Keystone v3
# password flow run against these; the connection details are appended to target/swift.env
# as KS_* variables (not OS_*, so a script that sources the file keeps using tempauth).
#
# Debian's keystone runs here under the wsgiref server its `keystone-wsgi-public` script
# offers: fine for tests, never for production (it says so in its log).
#
# Idempotent: when both recorded processes are alive and a token for the test user lists
# the test account through the Keystone proxy, it does nothing.
#
# Environment (all optional; the Swift ones must match what swift-up.sh was given):
#   CLOUDIMG_SWIFT_DIR          Swift state directory       (target/swift)
#   CLOUDIMG_SWIFT_ENV          env file to extend          (target/swift.env)
#   CLOUDIMG_SWIFT_PROXY_PORT   tempauth proxy port         (18080); the Keystone proxy uses +1
#   CLOUDIMG_MEMCACHED_PORT     memcached port              (11311)
#   CLOUDIMG_KEYSTONE_PORT      Keystone port               (15000)
#   CLOUDIMG_IMAGE_PORT         the catalog's image endpoint (19292): cloudimg serve in tests
#   CLOUDIMG_KEYSTONE_TIMEOUT   seconds to wait for health  (60)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CLOUDIMG_SWIFT_DIR:-$root/target/swift}"
envfile="${CLOUDIMG_SWIFT_ENV:-$root/target/swift.env}"
proxy_port="${CLOUDIMG_SWIFT_PROXY_PORT:-18080}"
ks_proxy_port=$((proxy_port + 1))
memcached_port="${CLOUDIMG_MEMCACHED_PORT:-11311}"
ks_port="${CLOUDIMG_KEYSTONE_PORT:-15000}"
# Where the catalog's `image` endpoint points: the API test that drives the clients through
# the catalog serves there.
image_port="${CLOUDIMG_IMAGE_PORT:-19292}"
timeout="${CLOUDIMG_KEYSTONE_TIMEOUT:-60}"
run_user="$(id -un)"
run_group="$(id -gn)"

etc="$dir/etc"
ks="$dir/keystone"
log="$dir/log"
run="$dir/run"
servers=(keystone ksproxy)

ks_url="http://127.0.0.1:$ks_port"
swift_url="http://127.0.0.1:$ks_proxy_port"
image_url="http://127.0.0.1:$image_port"
admin_pw="cloudimg-admin"
project="cloudimg"
user="cloudimg"
password="cloudimg-pw"

say() { echo "keystone-up: $*" >&2; }

for tool in keystone-manage keystone-wsgi-public swift-proxy-server curl setsid flock; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "missing $tool (run scripts/install-deps.sh)"
        exit 2
    fi
done
/usr/bin/python3 -c 'import keystonemiddleware' 2>/dev/null || {
    say "missing python3-keystonemiddleware (run scripts/install-deps.sh)"
    exit 2
}
[ -f "$etc/swift.conf" ] && [ -f "$etc/object.ring.gz" ] || {
    say "no Swift configuration in $etc (run scripts/swift-up.sh first)"
    exit 2
}

mkdir -p "$ks" "$log" "$run"
exec 9>"$dir/.keystone.lock"
flock -w 120 9 || { say "could not lock $dir/.keystone.lock"; exit 2; }

# Scoped password token for user $1/$2 in project $3, or nothing.
token() {
    local body
    body="$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"name":"Default"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"name":"Default"}}}}}' "$1" "$2" "$3")"
    curl -sf -m 10 -o /dev/null -D - -H 'Content-Type: application/json' -d "$body" \
        "$ks_url/v3/auth/tokens" 2>/dev/null | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *//p'
}

json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

project_id() {
    local t="$1"
    curl -sf -m 10 -H "X-Auth-Token: $t" -H "X-Subject-Token: $t" "$ks_url/v3/auth/tokens" |
        json 'd["token"]["project"]["id"]'
}

healthy() {
    local t pid
    t="$(token "$user" "$password" "$project")"
    [ -n "$t" ] || return 1
    pid="$(project_id "$t")" || return 1
    curl -sf -m 10 -o /dev/null -H "X-Auth-Token: $t" "$swift_url/v1/AUTH_$pid?format=json"
}

alive() {
    local f="$run/$1.pid" pid state
    [ -f "$f" ] || return 1
    pid="$(cat "$f")"
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(sed -n 's/^[0-9]* ([^)]*) \([A-Z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null || true)"
    [ "$state" != Z ]
}

write_env() {
    local tmp="$envfile.ks.$$"
    { grep -v '^KS_\|^# Keystone' "$envfile" 2>/dev/null || true
      cat <<EOF
# Keystone v3 and its Swift proxy, written by scripts/keystone-up.sh.
KS_AUTH_URL=$ks_url/v3
KS_USERNAME=$user
KS_PASSWORD=$password
KS_PROJECT_NAME=$project
KS_SWIFT_URL=$swift_url
# Keystone's admin (role admin): the Cloud Images API tests' service identity and caller.
KS_ADMIN_USERNAME=admin
KS_ADMIN_PASSWORD=$admin_pw
KS_ADMIN_PROJECT_NAME=admin
# Customers (role admin in their own project): user, password (<user>-pw), project.
KS_CUSTOMERS=alice:customer-a bob:customer-b
# The catalog's image endpoint (nothing listens there until a test serves on it).
KS_IMAGE_URL=$image_url
EOF
    } >"$tmp"
    mv "$tmp" "$envfile"
}

# Bumped when the bootstrapped users change: a running Keystone of an older stamp restarts.
stamp="keystone=$ks_port swift=$ks_proxy_port image=$image_port v3"
if alive keystone && alive ksproxy && healthy && [ "$(cat "$ks/bootstrapped" 2>/dev/null)" = "$stamp" ]; then
    write_env
    say "already running at $ks_url (Swift proxy $swift_url)"
    exit 0
fi

for s in "${servers[@]}"; do
    f="$run/$s.pid"
    [ -f "$f" ] || continue
    if alive "$s"; then
        pid="$(cat "$f")"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        sleep 0.5
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$f"
done

for p in "$ks_port" "$ks_proxy_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        say "port $p on 127.0.0.1 is in use by another process (set CLOUDIMG_KEYSTONE_PORT /"
        say "CLOUDIMG_SWIFT_PROXY_PORT, or stop it)"
        exit 2
    fi
done

# ---- Keystone ---------------------------------------------------------------------------

cat >"$ks/keystone.conf" <<EOF
[DEFAULT]
log_dir = $log
log_file = keystone.log
use_stderr = false

[database]
# timeout: wait for sqlite's lock instead of failing the request at once.
connection = sqlite:///$ks/keystone.db?timeout=30

[token]
provider = fernet
expiration = 3600

[fernet_tokens]
key_repository = $ks/fernet-keys

[fernet_receipts]
key_repository = $ks/fernet-keys

[credential]
key_repository = $ks/credential-keys
EOF

# keystone-manage prints eventlet noise at interpreter exit; its exit code is what counts.
manage() { keystone-manage --config-file "$ks/keystone.conf" "$@" >>"$log/keystone-manage.out" 2>&1; }
if [ "$(cat "$ks/bootstrapped" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$ks/keystone.db" "$ks/fernet-keys" "$ks/credential-keys"
    manage db_sync || { say "keystone-manage db_sync failed (see $log/keystone-manage.out)"; exit 2; }
    manage fernet_setup --keystone-user "$run_user" --keystone-group "$run_group"
    manage credential_setup --keystone-user "$run_user" --keystone-group "$run_group"
    manage bootstrap --bootstrap-password "$admin_pw" \
        --bootstrap-admin-url "$ks_url/v3" --bootstrap-public-url "$ks_url/v3" \
        --bootstrap-internal-url "$ks_url/v3" --bootstrap-region-id RegionOne ||
        { say "keystone-manage bootstrap failed (see $log/keystone-manage.out)"; exit 2; }
    # The test user: a member (not admin) of its own project.
    manage bootstrap --bootstrap-username "$user" --bootstrap-password "$password" \
        --bootstrap-project-name "$project" --bootstrap-role-name member ||
        { say "keystone-manage bootstrap of $user failed (see $log/keystone-manage.out)"; exit 2; }
    # Two customers of the image service, each the admin of its own project (Cloud
    # Images' task-creating role): their tasks read and write their own Cloud Files
    # accounts through trusts to the service user (admin).
    for c in "alice customer-a" "bob customer-b"; do
        set -- $c
        manage bootstrap --bootstrap-username "$1" --bootstrap-password "$1-pw" \
            --bootstrap-project-name "$2" --bootstrap-role-name admin ||
            { say "keystone-manage bootstrap of $1 failed (see $log/keystone-manage.out)"; exit 2; }
    done
    # The object-store catalog entry, written offline through Keystone's own catalog API
    # as bootstrap writes the identity one: through the REST API, sqlite under the
    # single-threaded wsgiref server answers "database is locked" between writes.
    /usr/bin/python3 - "$ks/keystone.conf" "$swift_url/v1/AUTH_\$(project_id)s" "$image_url" \
        >>"$log/keystone-manage.out" 2>&1 <<'PY' ||
import sys
import uuid

import keystone.conf
from keystone.common import provider_api
from keystone.common import sql
from keystone.server import backends

keystone.conf.configure()
sql.initialize()
keystone.conf.CONF(args=[], project="keystone", default_config_files=[sys.argv[1]])
backends.load_backends()
catalog = provider_api.ProviderAPIs.catalog_api
for name, kind, url in (("swift", "object-store", sys.argv[2]), ("glance", "image", sys.argv[3])):
    sid = uuid.uuid4().hex
    catalog.create_service(sid, {"id": sid, "name": name, "type": kind, "enabled": True})
    for interface in ("public", "internal", "admin"):
        eid = uuid.uuid4().hex
        catalog.create_endpoint(eid, {"id": eid, "interface": interface, "url": url,
                                      "service_id": sid, "region_id": "RegionOne", "enabled": True})
PY
        { say "could not register the object-store and image endpoints (see $log/keystone-manage.out)"; exit 2; }
    echo "$stamp" >"$ks/bootstrapped"
fi

start() {
    local name="$1"
    shift
    setsid "$@" >>"$log/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$run/$name.pid"
}

echo "==== $(date -u +%FT%TZ) start" >>"$log/keystone.log"
OS_KEYSTONE_CONFIG_DIR="$ks" OS_KEYSTONE_CONFIG_FILES=keystone.conf \
    start keystone keystone-wsgi-public --host 127.0.0.1 --port "$ks_port"

deadline=$((SECONDS + timeout))
admin_token=""
while [ "$SECONDS" -lt "$deadline" ]; do
    alive keystone || { say "keystone exited during start-up"; tail -n 30 "$log/keystone.log" >&2; exit 2; }
    admin_token="$(token admin "$admin_pw" admin)" || true
    [ -n "$admin_token" ] && break
    sleep 0.3
done
[ -n "$admin_token" ] || { say "keystone did not answer within ${timeout}s"; tail -n 30 "$log/keystone.log" >&2; exit 2; }

# ---- the Keystone-authenticated Swift proxy ---------------------------------------------

cat >"$etc/proxy-keystone.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $ks_proxy_port
workers = 0
user = $run_user
swift_dir = $etc
log_name = proxy-keystone
log_level = INFO
log_address = /nonexistent

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats authtoken keystoneauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
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

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $ks_url/v3
auth_url = $ks_url
auth_type = password
user_domain_name = Default
project_domain_name = Default
project_name = admin
username = admin
password = $admin_pw
delay_auth_decision = True
memcached_servers = 127.0.0.1:$memcached_port

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
rate_limit_after_segment = 1000000
EOF

echo "==== $(date -u +%FT%TZ) start" >>"$log/ksproxy.log"
start ksproxy swift-proxy-server "$etc/proxy-keystone.conf" -v

while [ "$SECONDS" -lt "$deadline" ]; do
    alive ksproxy || { say "the Keystone Swift proxy exited during start-up"; tail -n 30 "$log/ksproxy.log" >&2; exit 2; }
    if healthy; then
        write_env
        say "Keystone ready at $ks_url/v3 (user $user/$password, project $project); Swift proxy $swift_url"
        exit 0
    fi
    sleep 0.3
done
say "not healthy within ${timeout}s"
tail -n 30 "$log/keystone.log" "$log/ksproxy.log" >&2
exit 2
