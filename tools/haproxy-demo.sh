#!/usr/bin/env bash
# HAProxy (Debian's package) in front of three waitressd instances on loopback, with
# packaging/haproxy.cfg: PROXY protocol v2, health checks on each instance's /ready.
#
#   tools/haproxy-demo.sh          start everything, show a few requests, roll every instance
#                                  (HUP, then TERM and start) under a bounded curl load, and
#                                  report how many requests failed (exit 1 if any); then stop.
#   tools/haproxy-demo.sh --hold   the same, then keep running until Ctrl-C.
#
# Everything listens on 127.0.0.1 with random high ports; only processes started here are
# stopped (by PID). Needs a built binary (cargo build) and the test venv (tools/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v haproxy >/dev/null; then
    apt-get install -y haproxy >/dev/null || { apt-get update -qq && apt-get install -y haproxy >/dev/null; }
fi
BIN="${WAITRESSD:-target/debug/waitressd}"
[ -x "$BIN" ] || cargo build --quiet
VIRTUAL_ENV="$(tools/venv.sh)"
export VIRTUAL_ENV
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port() { python3 -c 'import random, socket
while True:
    p = random.randint(10000, 30000); s = socket.socket()
    try: s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()'; }

declare -a W S P
start() { # instance number (1..3)
    local i=$1
    (cd tests/apps/wsgi && exec "$OLDPWD/$BIN" --app tlsenv:app --threads 4 \
        --listen "127.0.0.1:${W[$i]}" --status-listen "127.0.0.1:${S[$i]}" \
        --proxy-protocol --proxy-allow-ips 127.0.0.1) 2>>"$work/w$i.log" &
    P[$i]=$!
    pids+=("${P[$i]}")
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${S[$i]}/ready")" = 200 ] && return
        sleep 0.1
    done
    echo "instance $i did not become ready; see $work/w$i.log" >&2
    exit 1
}

for i in 1 2 3; do W[$i]=$(port); S[$i]=$(port); start "$i"; done
FRONT="127.0.0.1:$(port)"
export FRONT W1="127.0.0.1:${W[1]}" W2="127.0.0.1:${W[2]}" W3="127.0.0.1:${W[3]}" \
    S1="${S[1]}" S2="${S[2]}" S3="${S[3]}"
haproxy -db -f packaging/haproxy.cfg 2>"$work/haproxy.log" &
pids+=("$!")
sleep 1.5
echo "HAProxy on http://$FRONT -> waitressd on ${W[1]} ${W[2]} ${W[3]} (status ${S[1]} ${S[2]} ${S[3]})"
for _ in 1 2 3; do curl -s --interface 127.0.0.2 "http://$FRONT/"; echo; done
echo "(REMOTE_ADDR is the client's 127.0.0.2, from the PROXY v2 header)"

# Bounded load: 4 curl loops for at most 120 s, counting non-200 answers.
stop="$work/stop"
for n in 1 2 3 4; do
    (
        ok=0 bad=0 end=$((SECONDS + 120))
        while [ ! -e "$stop" ] && [ $SECONDS -lt $end ]; do
            c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$FRONT/" || true)
            if [ "$c" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        done
        echo "$ok $bad" >"$work/load$n"
    ) &
done
for i in 1 2 3; do
    echo "instance $i: reload (HUP)"
    kill -HUP "${P[$i]}"
    for _ in $(seq 200); do grep -q "reload complete" "$work/w$i.log" && break; sleep 0.1; done
    sleep 0.5
    echo "instance $i: stop (TERM) and start again"
    kill -TERM "${P[$i]}"
    wait "${P[$i]}" || true
    : >"$work/w$i.log"
    start "$i"
    sleep 1
done
touch "$stop"
wait_for=0
while [ "$(ls "$work"/load? 2>/dev/null | wc -l)" -lt 4 ] && [ $wait_for -lt 150 ]; do sleep 0.2; wait_for=$((wait_for + 1)); done
read -r ok bad < <(cat "$work"/load? | awk '{o += $1; b += $2} END {print o, b}')
echo "rolling restart under load: $ok requests served, $bad failed"
if [ "${1:-}" = "--hold" ]; then
    echo "running; Ctrl-C to stop"
    while true; do sleep 3600; done
fi
[ "$bad" -eq 0 ]
