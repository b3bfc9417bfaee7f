#!/usr/bin/env bash
# Worker CPU per request for fixed work: the server pinned to CPU 0, bench/load.py sending N
# requests of one row from CPU 1, three passes, the lowest printed (a loaded host only adds).
# Compare two builds by running them alternately.
#
#   bench/fixed_cpu.sh BINARY APP KIND N [waitressd options...]
#   bench/fixed_cpu.sh target/release/waitressd upload upload 400
#
# Uses .bench-venv (bench/run.sh makes it). Loopback only; the server is stopped through its
# own process group.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin=$(realpath "$1") app=$2 kind=$3 n=$4; shift 4
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
(cd "$repo/bench" && VIRTUAL_ENV="${BENCH_VENV:-$repo/.bench-venv}" exec setsid taskset -c 0 \
   "$bin" --app "apps:$app" --listen "127.0.0.1:$port" "$@" 2>"$log") &
pid=$!
trap 'kill -TERM -- "-$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "worker(s) ready" $log && break; sleep 0.1; done
w=$(pgrep -P $pid | head -1)
hz=$(getconf CLK_TCK)
ticks() { local t=0; for s in /proc/$w/task/*/stat; do t=$((t + $(awk '{print $14+$15}' $s))); done; echo $t; }
taskset -c 1 python3 "$repo/bench/load.py" $port $kind 20
best=999999
for p in 1 2 3; do
  a=$(ticks); taskset -c 1 python3 "$repo/bench/load.py" $port $kind $n; b=$(ticks)
  v=$(( (b - a) * 1000000 / hz / n )); if [ $v -lt $best ]; then best=$v; fi
done
echo "$(basename "$bin") $app/$kind: $best us/request (lowest of 3 passes of $n)"
