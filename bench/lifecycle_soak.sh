#!/usr/bin/env bash
# Soak of the worker lifecycle: wrk for SECS seconds against the release binary while workers
# recycle (max_requests + jitter), a stuck request times out (request_timeout, 504), the binary
# is upgraded in place (USR2), the config is reloaded (HUP) and, with KILL=1, a worker is
# SIGKILLed (its open connections are then lost, as any crash loses them). Prints wrk's summary
# (any "Socket errors" or "Non-2xx" line is a failure) and the lifecycle events logged.
# Loopback only, bounded in time; stops only the processes it started (by PID).
#
#   cargo build --release && bench/lifecycle_soak.sh [seconds]
#
# Needs wrk and curl (apt-get install wrk curl) and the test venv (tools/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-40}
port=$((20000 + RANDOM % 20000))
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/soak.ini" <<INI
[app:main]
use = call:supapp:make_app

[server:main]
use = egg:waitress#main
listen = 127.0.0.1:$port
workers = 2
max_requests = 3000
max_requests_jitter = 1000
request_timeout = 3
graceful_timeout = 5
pidfile = $dir/w.pid
INI
export PYTHONPATH="$PWD/tests/apps/supervisor" VIRTUAL_ENV="${VIRTUAL_ENV:-$(tools/venv.sh)}"
target/release/waitressd "$dir/soak.ini" 2>"$dir/server.log" &
for _ in $(seq 50); do [ -s "$dir/w.pid" ] && curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done
wrk -t2 -c16 -d"${secs}s" "http://127.0.0.1:$port/" >"$dir/wrk.txt" 2>&1 &
wrk_pid=$!
step=$((secs / 5))
sleep "$step"
curl -s -o /dev/null -w "stuck request: %{http_code}\n" --max-time 20 "http://127.0.0.1:$port/sleep?600" &
sleep "$step"; kill -USR2 "$(cat "$dir/w.pid")"; echo "USR2 sent"
sleep "$step"
if [ "${KILL:-0}" = 1 ]; then
  m=$(cat "$dir/w.pid"); w=$(awk '{print $1}' "/proc/$m/task/$m/children"); kill -9 "$w"; echo "SIGKILL worker $w"
fi
sleep "$step"; kill -HUP "$(cat "$dir/w.pid")"; echo "HUP sent"
wait "$wrk_pid"
cat "$dir/wrk.txt"
kill -TERM "$(cat "$dir/w.pid")"
for _ in $(seq 100); do [ -e "$dir/w.pid" ] || break; sleep 0.1; done
echo "retirements: $(grep -c 'retiring' "$dir/server.log")"
grep -E 'stopping the old master|upgrade failed|request_timeout:|died unexpectedly|reload complete' "$dir/server.log" | cut -c1-140
