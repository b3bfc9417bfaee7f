"""Measures worker memory per idle keep-alive connection.

Starts waitressd (the binary in $WAITRESSD_BIN, default target/release/waitressd) serving
bench/hello.py on 127.0.0.1, opens N connections, sends one keep-alive request on each and
reads its response, then compares the worker's RSS (and Private_Dirty from smaps_rollup) with
the value before. Loopback only; bounded in time; stops the daemon it started by PID.

    python3 bench/idle_memory.py [N]
"""
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
here = os.path.dirname(os.path.abspath(__file__))
binary = os.environ.get("WAITRESSD_BIN", os.path.join(here, "..", "target", "release", "waitressd"))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, N + 1000), hard))

proc = subprocess.Popen(
    [binary, "--app", "hello:app", "--listen", "127.0.0.1:0", "--threads", "1",
     "--connection-limit", str(N + 100), "--backlog", "4096"],
    cwd=here, stderr=subprocess.PIPE, text=True,
)
deadline = time.time() + 30
port = None
while time.time() < deadline and port is None:
    line = proc.stderr.readline()
    m = re.search(r"Serving on http://127\.0\.0\.1:(\d+)", line)
    if m:
        port = int(m.group(1))
assert port, "daemon did not start"


def worker_pid():
    for _ in range(100):
        kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        if kids:
            return int(kids[0])
        time.sleep(0.1)
    raise SystemExit("no worker")


def mem(pid):
    rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))
    dirty = int(re.search(r"Private_Dirty:\s+(\d+)", open(f"/proc/{pid}/smaps_rollup").read()).group(1))
    return rss, dirty


try:
    w = worker_pid()
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    warm = socket.create_connection(("127.0.0.1", port))
    warm.sendall(req)
    warm.recv(4096)
    time.sleep(0.5)
    before = mem(w)
    conns = []
    for i in range(N):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(10)
        s.sendall(req)
        got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200"), got[:60]
        conns.append(s)
    time.sleep(1.0)
    after = mem(w)
    d_rss, d_dirty = after[0] - before[0], after[1] - before[1]
    print(f"{N} idle keep-alive connections: worker RSS +{d_rss} KiB "
          f"({d_rss * 1024 / N:.0f} B/conn), Private_Dirty +{d_dirty} KiB ({d_dirty * 1024 / N:.0f} B/conn)")
    for s in conns:
        s.close()
finally:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
