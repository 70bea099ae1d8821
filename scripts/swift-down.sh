#!/usr/bin/env bash
# Stops the Swift started by scripts/swift-up.sh, and the Keystone of keystone-up.sh: only
# the processes whose pids they recorded (each leads its own session, so its workers go
# with it). Keeps the data; pass --purge to also remove the state directory and the env file.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CLOUDIMG_SWIFT_DIR:-$root/target/swift}"
envfile="${CLOUDIMG_SWIFT_ENV:-$root/target/swift.env}"
run="$dir/run"
# keystone and ksproxy: started by scripts/keystone-up.sh beside this Swift.
servers=(ksproxy keystone proxy account container object memcached)

[ -d "$run" ] || { echo "swift-down: nothing recorded in $run" >&2; exit 0; }

# Alive and not a zombie (an unreaped child still answers kill -0).
alive() {
    local f="$run/$1.pid" pid state
    [ -f "$f" ] || return 1
    pid="$(cat "$f")"
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(sed -n 's/^[0-9]* ([^)]*) \([A-Z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null || true)"
    [ "$state" != Z ]
}

exec 9>"$dir/.lock"
flock -w 120 9 || { echo "swift-down: could not lock $dir/.lock" >&2; exit 2; }

for s in "${servers[@]}"; do
    f="$run/$s.pid"
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    if alive "$s"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
done
for _ in $(seq 50); do
    any=0
    for s in "${servers[@]}"; do
        alive "$s" && any=1
    done
    [ "$any" = 0 ] && break
    sleep 0.1
done
for s in "${servers[@]}"; do
    f="$run/$s.pid"
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    if alive "$s"; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
done
rm -f "$envfile"
if [ "${1:-}" = "--purge" ]; then
    rm -rf "$dir"
fi
echo "swift-down: stopped" >&2
