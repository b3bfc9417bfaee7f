#!/usr/bin/env bash
# TLS cost, measured: hello-world through waitressd terminating TLS itself, against waitressd
# in plain HTTP and against nginx terminating TLS (same certificate, an ECDSA P-256 key made
# here) in front of plain waitressd. Servers pinned to CPU 0, wrk to CPU 1; server CPU time
# (utime+stime of each server's processes, from /proc) per request wrk completed. Then new TLS
# connections per second (wrk with Connection: close: one handshake per request).
# Loopback only, every run bounded.
#
#   bench/tls.sh [seconds] [connections]
#
# Needs wrk and nginx (apt-get install wrk nginx-light) and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; conns=${2:-32}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -TERM -- -"$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" \
    -out "$work/cert.pem" -days 2 -subj /CN=localhost 2>/dev/null
export PYTHONPATH="$PWD/bench" VIRTUAL_ENV="${BENCH_VENV:-$(tools/venv.sh)}"
port() { echo $((20000 + RANDOM % 20000)); }
start() { # name, command...
    local name=$1; shift
    setsid taskset -c 0 "$@" >"$work/$name.log" 2>&1 &
    pids+=("$!")
    eval "pid_$name=$!"
}
ticks() { # session leader pid -> utime+stime of its session, in clock ticks
    local t=0
    for p in $(pgrep -s "$1"); do read -r -a f <"/proc/$p/stat" || continue; t=$((t + f[13] + f[14])); done
    echo "$t"
}
wait_up() {
    for _ in $(seq 300); do curl -ksf "$1" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "no answer from $1" >&2; tail -n 5 "$work"/*.log >&2; exit 1
}
hz=$(getconf CLK_TCK)
measure() { # label, url, wrk extra args, session leaders...
    local label=$1 url=$2 extra=$3; shift 3
    taskset -c 1 wrk -t1 -c"$conns" -d2s $extra "$url" >/dev/null
    local b=0 a=0 p
    for p in "$@"; do b=$((b + $(ticks "$p"))); done
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" $extra "$url")
    for p in "$@"; do a=$((a + $(ticks "$p"))); done
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/' <<<"$out" | tr '\n' ' ')
    python3 -c "import sys; r=int(sys.argv[1]); c=(int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4]); print(f'{sys.argv[5]}: {r/int(sys.argv[6]):.0f} req/s, server CPU {c/r*1e6:.1f} us/request {sys.argv[7]}')" \
        "$reqs" "$b" "$a" "$hz" "$label" "$secs" "$errs"
}
pt=$(port); pp=$(port); pn=$(port)
start tls target/release/waitressd --app hello:app --listen "127.0.0.1:$pt" --threads 1 \
    --certfile "$work/cert.pem" --keyfile "$work/key.pem"
start plain target/release/waitressd --app hello:app --listen "127.0.0.1:$pp" --threads 1
cat >"$work/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1; pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    upstream w { server 127.0.0.1:$pp; keepalive 64; }
    server {
        listen 127.0.0.1:$pn ssl;
        ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { proxy_pass http://w; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location = /static { return 200 "Hello, World!"; }
    }
}
NGINX
start nginx nginx -c "$work/nginx.conf" -e "$work/nginx-error.log"
wait_up "https://127.0.0.1:$pt/"; wait_up "http://127.0.0.1:$pp/"; wait_up "https://127.0.0.1:$pn/"
echo "keep-alive, $conns connections, ${secs}s each (shared machine: noisy)"
measure "waitressd plain HTTP        " "http://127.0.0.1:$pp/" "" "$pid_plain"
measure "waitressd TLS               " "https://127.0.0.1:$pt/" "" "$pid_tls"
measure "nginx TLS -> waitressd plain" "https://127.0.0.1:$pn/" "" "$pid_nginx" "$pid_plain"
measure "  (nginx's share alone)     " "https://127.0.0.1:$pn/" "" "$pid_nginx"
echo "new TLS connection per request (Connection: close)"
measure "waitressd TLS               " "https://127.0.0.1:$pt/" "-H Connection:close" "$pid_tls"
measure "nginx TLS, static response  " "https://127.0.0.1:$pn/static" "-H Connection:close" "$pid_nginx"
