#!/usr/bin/env bash
# Measures server CPU time per request for hello-world: the server pinned to CPU 0, wrk pinned to
# CPU 1, server CPU (utime+stime of every process in its group, from /proc) divided by the number
# of requests wrk completed. Loopback only, bounded in time.
#
#   bench/cpu_per_request.sh waitressd|waitress|granian|gunicorn [seconds] [connections]
#
# Needs wrk (apt-get install wrk) and, for peers, a venv with them: BENCH_VENV (default .bench-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:?server name}; secs=${2:-10}; conns=${3:-32}
venv=${BENCH_VENV:-.bench-venv}
port=$((20000 + RANDOM % 20000))
export PYTHONPATH="$PWD/bench"
case "$server" in
  waitressd) cmd=(target/release/waitressd --app hello:app --listen "127.0.0.1:$port" --threads "${THREADS:-1}") ;;
  waitress)  cmd=("$venv/bin/waitress-serve" --listen "127.0.0.1:$port" --threads "${THREADS:-4}" hello:app) ;;
  granian)   cmd=("$venv/bin/granian" --interface wsgi --host 127.0.0.1 --port "$port" --workers 1 --blocking-threads "${THREADS:-1}" hello:app) ;;
  gunicorn)  cmd=("$venv/bin/gunicorn" -w 1 -b "127.0.0.1:$port" hello:app) ;;
  *) echo "unknown server $server" >&2; exit 2 ;;
esac
export VIRTUAL_ENV="$PWD/$venv"
setsid taskset -c 0 "${cmd[@]}" >/tmp/bench-$server.log 2>&1 &
pid=$!
trap 'kill -TERM -- -$pid 2>/dev/null || true; sleep 0.5; kill -KILL -- -$pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1
done
group_ticks() {  # utime+stime of every process in the session, in clock ticks
  local t=0
  for p in $(pgrep -s "$pid"); do
    read -r -a f < "/proc/$p/stat" || continue
    t=$((t + f[13] + f[14]))
  done
  echo "$t"
}
taskset -c 1 wrk -t1 -c"$conns" -d2s "http://127.0.0.1:$port/" >/dev/null  # warm-up
before=$(group_ticks)
out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/")
after=$(group_ticks)
reqs=$(awk '/requests in/ {print $1}' <<<"$out")
errs=$(awk '/Non-2xx|Socket errors/' <<<"$out")
hz=$(getconf CLK_TCK)
rss=$(for p in $(pgrep -s "$pid"); do awk '/VmRSS/ {print $2}' "/proc/$p/status"; done | paste -sd+ | bc)
python3 - "$server" "$reqs" "$before" "$after" "$hz" "$secs" "$rss" "$errs" <<'PY'
import sys
name, reqs, b, a, hz, secs, rss, errs = sys.argv[1:9]
reqs = int(reqs); cpu = (int(a) - int(b)) / int(hz)
print(f"{name}: {reqs} requests in {secs}s = {reqs/int(secs):.0f} req/s; "
      f"server CPU {cpu:.2f}s = {cpu/reqs*1e6:.1f} us/request; RSS {int(rss)/1024:.1f} MiB"
      + (f"; {errs}" if errs else ""))
PY
