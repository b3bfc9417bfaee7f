#!/usr/bin/env bash
# Context switches and CPU per request of one waitressd worker, per thread: the worker pinned to
# CPU 0, `wrk -t1` on CPU 1 for 1 s of warm-up and 4 s measured; voluntary/involuntary switches
# from /proc/PID/task/*/status, CPU (utime + stime) from /proc/PID/task/*/stat.
#
#   bench/switches.sh APP CONNECTIONS [waitressd options...]
#   bench/switches.sh hello 64
#   bench/switches.sh flask_app 16 --threads 1
#
# Uses target/release/waitressd (WAITRESSD_BIN overrides) and .bench-venv (bench/run.sh makes
# both). Loopback only; the server is stopped through its own process group.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
app=$1 conns=$2; shift 2
bin=${WAITRESSD_BIN:-$repo/target/release/waitressd}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
(cd "$repo/bench" && VIRTUAL_ENV="${BENCH_VENV:-$repo/.bench-venv}" exec setsid taskset -c 0 \
   "$bin" --app "apps:$app" --listen "127.0.0.1:$port" "$@" 2>"$work/log") &
pid=$!
trap 'kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 240); do grep -q "worker(s) ready" "$work/log" && break; sleep 0.25; done
w=$(pgrep -P "$pid" | head -1)
snap() {
  for t in /proc/"$w"/task/*; do
    printf '%s %s %s\n' "$(tr ' ' _ <"$t/comm")" \
      "$(awk '/^voluntary_ctxt/ {v=$2} /^nonvoluntary_ctxt/ {n=$2} END {print v, n}' "$t/status")" \
      "$(awk '{print $14 + $15}' "$t/stat")"
  done
}
taskset -c 1 wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null
snap >"$work/a"
out=$(taskset -c 1 wrk -t1 -c"$conns" -d4s "http://127.0.0.1:$port/")
snap >"$work/b"
n=$(awk '/requests in/ {print $1}' <<<"$out")
hz=$(getconf CLK_TCK)
echo "$app C=$conns ${*:-}: $(awk '/Requests\/sec/ {print $2}' <<<"$out") req/s"
paste -d' ' "$work/a" "$work/b" | awk -v n="$n" -v hz="$hz" '
  { v = $6 - $2; i = $7 - $3; c = $8 - $4; tv += v; ti += i; tc += c
    printf "  %-16s voluntary %.3f  involuntary %.3f per request\n", $1, v / n, i / n }
  END { printf "  all threads      voluntary %.3f  involuntary %.3f per request, CPU %.2f us/request\n",
        tv / n, ti / n, tc / hz * 1e6 / n }'
