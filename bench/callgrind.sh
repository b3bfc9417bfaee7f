#!/usr/bin/env bash
# Instructions per request of the worker (user space; repeatable on a noisy machine):
# runs waitressd under callgrind twice, with 5 and with 5 + N requests of one row from
# bench/load.py, and prints (Ir(5 + N) - Ir(5)) / N.
#
#   bench/callgrind.sh APP KIND N [waitressd options...]
#   bench/callgrind.sh upload upload 20
#   bench/callgrind.sh hello hello 2000 --access-log /tmp/access.log
#
# Uses target/release/waitressd and .bench-venv (bench/run.sh makes both). Loopback only.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
app=$1 kind=$2 n=$3; shift 3
run() {  # run COUNT [options] -> the worker's total Ir
  local count=$1; shift
  local port out pid w
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  out=$(mktemp -d)
  (cd "$out" && PYTHONPATH="$repo/bench" VIRTUAL_ENV="${BENCH_VENV:-$repo/.bench-venv}" \
     exec setsid valgrind --tool=callgrind --trace-children=yes "$repo/target/release/waitressd" \
     --app "apps:$app" --listen "127.0.0.1:$port" "$@" 2>"$out/log") &
  pid=$!
  for _ in $(seq 240); do grep -q "worker(s) ready" "$out/log" && break; sleep 0.5; done
  w=$(pgrep -P "$pid" | head -1)
  python3 "$repo/bench/load.py" "$port" "$kind" 5
  if ((count > 0)); then python3 "$repo/bench/load.py" "$port" "$kind" "$count"; fi
  kill -TERM -- "-$pid"; wait "$pid" || true
  callgrind_annotate "$out/callgrind.out.$w" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}'
  rm -rf "$out"
}
a=$(run 0 "$@"); b=$(run "$n" "$@")
echo "$app/$kind ${*:-}: $(( (b - a) / n )) instructions per request"
