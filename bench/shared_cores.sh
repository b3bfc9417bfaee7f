#!/usr/bin/env bash
# Latency when server and load share the cores: waitressd with 2 workers and wrk -t2, nothing
# pinned, 1 s warm-up then 5 s measured; prints req/s, p50 and p99.
#
#   bench/shared_cores.sh BINARY CONNECTIONS [APP]
#   bench/shared_cores.sh target/release/waitressd 64 hello
#
# Uses .bench-venv (bench/run.sh makes it). Loopback only; the server is stopped through its
# own process group.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin=$(realpath "$1") conns=$2 app=${3:-hello}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
(cd "$repo/bench" && VIRTUAL_ENV="${BENCH_VENV:-$repo/.bench-venv}" exec setsid \
   "$bin" --app "apps:$app" --listen "127.0.0.1:$port" --workers 2 2>"$log") &
pid=$!
trap 'kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 240); do grep -q "2 worker(s) ready" "$log" && break; sleep 0.25; done
path=/; [[ $app == flask_app ]] || path=/$app
wrk -t2 -c"$conns" -d1s "http://127.0.0.1:$port$path" >/dev/null
out=$(wrk -t2 -c"$conns" -d5s --latency "http://127.0.0.1:$port$path")
echo "$app C=$conns: $(awk '/Requests\/sec/ {print $2}' <<<"$out") req/s," \
  "p50 $(awk '$1 == "50%" {print $2}' <<<"$out"), p99 $(awk '$1 == "99%" {print $2}' <<<"$out")"
