"""Across cores (README "Performance", "Across cores"): waitressd hello-world with workers = 1
and 2, nothing pinned, wrk with two threads; prints server CPU per request, each worker's share
of the requests, and how the listener's wake-ups split: accept4 calls per accepted connection
per worker (strace -c), for a burst of fresh connections (EPOLLEXCLUSIVE: a worker is woken
only when it is idle in epoll_wait; an accept4 returning EAGAIN is a wake-up without work).

    python3 bench/cores.py --waitressd target/release/waitressd --venv .bench-venv [--secs 5]

Loopback only, bounded in time, every process stopped by PID / its own process group.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def worker_pids(srv):
    return [p for p in srv.pids() if p != srv.proc.pid]


def per_pid_ticks(pids):
    out = {}
    for p in pids:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[p] = int(fields[11]) + int(fields[12])
    return out


def run(a, workers):
    port = bench.free_port()
    argv = [a.waitressd, "--app", "apps:hello", "--listen", f"127.0.0.1:{port}",
            "--workers", str(workers), "--backlog", "4096"]
    env = dict(os.environ, VIRTUAL_ENV=a.venv, PYTHONPATH=bench.HERE)
    srv = bench.Server(f"waitressd-w{workers}", argv, port, env=env, cpus=None)
    try:
        if not srv.wait_ready():
            return
        time.sleep(1.0)
        ws = worker_pids(srv)
        subprocess.run(["wrk", "-t2", "-c64", "-d1s", f"http://127.0.0.1:{port}/"], capture_output=True)
        t0 = per_pid_ticks(ws)
        out = subprocess.run(["wrk", "-t2", "-c64", f"-d{a.secs}s", f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True).stdout
        t1 = per_pid_ticks(ws)
        reqs = int(re.search(r"(\d+) requests in", out).group(1))
        cpu = {p: (t1[p] - t0[p]) / bench.HZ for p in ws}
        total = sum(cpu.values())
        split = " / ".join(f"{cpu[p] / total * 100:.0f}%" for p in ws) if total else "-"
        print(f"workers={workers}: {reqs / a.secs:8.0f} req/s, worker CPU {total / reqs * 1e6:5.1f} us/request "
              f"(CPU split {split})", flush=True)
        # Fresh connections, one request each, 8 at a time: how the listener's wake-ups split.
        tr = [subprocess.Popen(["strace", "-c", "-f", "-e", "trace=accept4,epoll_wait", "-p", str(p),
                                "-o", f"/tmp/waitressd-cores-{p}.txt"], stderr=subprocess.DEVNULL)
              for p in ws]
        time.sleep(1.0)
        n = 2000
        req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for _ in range(n // 8):
            socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
            for s in socks:
                s.sendall(req)
            for s in socks:
                while s.recv(4096):
                    pass
                s.close()
        time.sleep(0.5)
        for t in tr:
            t.send_signal(signal.SIGINT)
            t.wait(10)
        parts = []
        for p in ws:
            txt = open(f"/tmp/waitressd-cores-{p}.txt").read()
            os.unlink(f"/tmp/waitressd-cores-{p}.txt")
            m = re.search(r"\s(\d+)\s+(\d+)?\s*accept4", txt)
            calls, errs = (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)
            parts.append(f"{calls - errs} accepted, {errs} empty accept4")
        print(f"  {n} fresh connections: " + "; ".join(parts), flush=True)
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--waitressd", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--secs", type=int, default=5)
    a = ap.parse_args()
    print(f"# {os.cpu_count()} CPUs, nothing pinned; wrk -t2 -c64 shares the CPUs with the server")
    for w in (1, 2):
        run(a, w)


if __name__ == "__main__":
    main()
