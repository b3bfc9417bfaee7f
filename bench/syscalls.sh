#!/usr/bin/env bash
# Syscalls per request of the worker: `strace -c -f` while bench/load.py sends N requests of one
# row (after 5 unmeasured ones). BENCH_SLOW=1 makes the client a slow reader.
#
#   bench/syscalls.sh APP KIND N [waitressd options...]
#   bench/syscalls.sh upload upload 100
#
# Uses target/release/waitressd and .bench-venv (bench/run.sh makes both). Loopback only.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
app=$1 kind=$2 n=$3; shift 3
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
(cd "$repo/bench" && VIRTUAL_ENV="${BENCH_VENV:-$repo/.bench-venv}" exec setsid \
   "$repo/target/release/waitressd" --app "apps:$app" --listen "127.0.0.1:$port" "$@" 2>"$log") &
pid=$!
trap 'kill -TERM -- "-$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "worker(s) ready" "$log" && break; sleep 0.1; done
w=$(pgrep -P "$pid" | head -1)
slow=(); [[ -n "${BENCH_SLOW:-}" ]] && slow=(--slow)
python3 "$repo/bench/load.py" "$port" "$kind" 5
strace -c -f -p "$w" -o "$log.strace" 2>/dev/null &
sp=$!
sleep 0.5
python3 "$repo/bench/load.py" "$port" "$kind" "$n" ${slow[@]+"${slow[@]}"}
sleep 0.3
kill -INT "$sp"; wait "$sp" || true
echo "per request ($n requests of $app/$kind):"
awk -v n="$n" '/^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ {
  calls=$4; err=($6 != "" ? $5 : 0); name=($6 != "" ? $6 : $5);
  printf "  %-14s %8.2f%s\n", name, calls / n, (err ? sprintf("  (%.2f errors)", err / n) : "") }' "$log.strace"
rm -f "$log.strace"
