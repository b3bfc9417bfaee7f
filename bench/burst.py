"""Measures a burst at connection_limit: N keep-alive clients connect at once to one worker with
the default connection_limit (100); each sends one request and keeps its connection. Prints
when every client had its answer, and how long a fresh client then waits.

Starts waitressd (the binary in $WAITRESSD_BIN, default target/release/waitressd) serving
bench/hello.py on 127.0.0.1 with one worker. Loopback only; bounded in time; stops the daemon
it started by PID.

    python3 bench/burst.py [N]
"""
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
here = os.path.dirname(os.path.abspath(__file__))
binary = os.environ.get("WAITRESSD_BIN", os.path.join(here, "..", "target", "release", "waitressd"))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, N + 1000), hard))

proc = subprocess.Popen(
    [binary, "--app", "hello:app", "--listen", "127.0.0.1:0", "--backlog", "4096"],
    cwd=here, stderr=subprocess.PIPE, text=True,
)
deadline = time.time() + 30
port = None
while time.time() < deadline and port is None:
    m = re.search(r"Serving on http://127\.0\.0\.1:(\d+)", proc.stderr.readline())
    if m:
        port = int(m.group(1))
assert port, "daemon did not start"
try:
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    t0 = time.time()
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(N)]
    for s in conns:
        s.sendall(req)
    answered = 0
    for s in conns:
        s.settimeout(60)
        if s.recv(4096).startswith(b"HTTP/1.1 200"):
            answered += 1
    all_done = time.time() - t0
    t1 = time.time()
    fresh = socket.create_connection(("127.0.0.1", port))
    fresh.settimeout(60)
    fresh.sendall(req)
    ok = fresh.recv(4096).startswith(b"HTTP/1.1 200")
    print(f"{answered}/{N} clients answered in {all_done:.2f} s; "
          f"a fresh client then {'served' if ok else 'NOT served'} in {time.time() - t1:.3f} s")
    for s in conns:
        s.close()
finally:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
