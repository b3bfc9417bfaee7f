#!/usr/bin/env python3
"""How a pre-fork server's accept strategy splits work and what a worker's exit loses.

Measures the refserver's pre-fork mode (bench/refserver, `--workers 2 --accept ...`) with
2 workers, unpinned, on 127.0.0.1, in each of these modes:

  exclusive         one shared listener, EPOLLIN|EPOLLET|EPOLLEXCLUSIVE in each worker's epoll
  exclusive-rearm   the same, re-registered (DEL + ADD) after each accept batch, as waitressd does
  reuseport/m0      one SO_REUSEPORT listener per worker, net.ipv4.tcp_migrate_req = 0
  reuseport/m1      the same with net.ipv4.tcp_migrate_req = 1

and for each:
  a. burst: `wrk -t2 -c64 -d3s` (64 keep-alive connections opened at once): req/s, how the
     requests and the 64 connections split between the workers (the workers' own counts),
     and the workers' CPU (utime + stime from /proc/PID/stat, before/after) per request;
  b. fresh: 2,000 new connections, 8 at a time (one request each, then close): the split;
  c. exit: both workers SIGSTOPped, 100 connections opened (a request sent on each, so they sit
     in the accept queue(s)), worker 0 SIGKILLed, worker 1 SIGCONTed; of the 100, how many got
     a full 200 response (ok), a reset (rst), an EOF without one (eof) or nothing within 3 s
     (to). Twice: with the parent still holding its copies of the listeners (`held`: killing
     worker 0 closes no listener) and with the parent closing them after forking (`closed`:
     the kill closes worker 0's last reference, which is what tcp_migrate_req is about).

Every server runs in its own process group and is stopped by PID (then its group); every load
is bounded in time; net.ipv4.tcp_migrate_req is restored to its starting value at the end,
also on failure. Needs root (for the sysctl) and wrk. Builds nothing:

    CARGO_TARGET_DIR=bench/refserver/target cargo build --release \\
        --manifest-path bench/refserver/Cargo.toml
    sudo python3 bench/accept_modes.py --refserver bench/refserver/target/release/refserver
"""
import argparse
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req"
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
HELLO = b"Hello, World!"
TICK = os.sysconf("SC_CLK_TCK")
MODES = [  # (label, --accept, tcp_migrate_req)
    ("exclusive", "exclusive", 0),
    ("exclusive-rearm", "exclusive-rearm", 0),
    ("reuseport/m0", "reuseport", 0),
    ("reuseport/m1", "reuseport", 1),
]
RUNNING = []  # Popen objects of servers started here, for the cleanup on failure


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def full_response(buf):
    return buf.startswith(b"HTTP/1.1 200") and buf.endswith(HELLO)


class Server:
    """One refserver in pre-fork mode; `pids[i]` is worker i's PID."""

    def __init__(self, refserver, accept, parent_closes=False):
        self.port = free_port()
        cmd = [refserver, f"127.0.0.1:{self.port}", "--workers", "2", "--accept", accept]
        if parent_closes:
            cmd.append("--parent-closes")
        self.p = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        RUNNING.append(self.p)
        self.out = b""
        self.pids = {}
        deadline = time.monotonic() + 5
        sel = selectors.DefaultSelector()
        sel.register(self.p.stdout, selectors.EVENT_READ)
        while len(self.pids) < 2:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise RuntimeError(f"refserver did not report its workers: {self.out!r}")
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"refserver exited: {self.p.stderr.read()!r}")
            self.out += chunk
            for i, pid in re.findall(rb"worker (\d+) pid (\d+)", self.out):
                self.pids[int(i)] = int(pid)
        sel.close()

    def cpu_ticks(self):
        total = 0
        for pid in self.pids.values():
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total

    def state(self, pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "gone"

    def stop(self):
        """SIGTERM to the parent (it forwards to the workers); returns {worker index: (A, R)}."""
        try:
            os.kill(self.p.pid, signal.SIGTERM)
            out, _ = self.p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            out, _ = self.p.communicate(timeout=5)
        RUNNING.remove(self.p)
        self.out += out
        by_pid = {pid: i for i, pid in self.pids.items()}
        counts = {i: (0, 0) for i in self.pids}
        for pid, a, r in re.findall(rb"worker (\d+) accepted (\d+) requests (\d+)", self.out):
            counts[by_pid[int(pid)]] = (int(a), int(r))
        return counts


def burst(refserver, accept):
    s = Server(refserver, accept)
    try:
        before = s.cpu_ticks()
        wrk = subprocess.run(
            ["wrk", "-t2", "-c64", "-d3s", f"http://127.0.0.1:{s.port}/"],
            capture_output=True, text=True, timeout=20,
        )
        after = s.cpu_ticks()
    finally:
        counts = s.stop()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk.stdout).group(1))
    errors = re.search(r"Socket errors:.*", wrk.stdout)
    reqs = [counts[i][1] for i in (0, 1)]
    conns = [counts[i][0] for i in (0, 1)]
    us = (after - before) / TICK * 1e6 / max(1, sum(reqs))
    return rps, reqs, conns, us, errors.group(0) if errors else ""


def fresh(refserver, accept, total=2000, parallel=8):
    s = Server(refserver, accept)
    failures = []
    deadline = time.monotonic() + 30

    def client(n):
        for _ in range(n):
            if time.monotonic() > deadline:
                failures.append("deadline")
                return
            try:
                with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
                    c.sendall(REQUEST)
                    buf = b""
                    while not full_response(buf):
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
                    if not full_response(buf):
                        failures.append("short")
            except OSError as e:
                failures.append(type(e).__name__)

    try:
        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(total // parallel,)) for _ in range(parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        elapsed = time.monotonic() - t0
    finally:
        counts = s.stop()
    return [counts[i][0] for i in (0, 1)], len(failures), elapsed


def exit_case(refserver, accept, parent_closes, n=100, wait=3.0):
    s = Server(refserver, accept, parent_closes)
    socks = []
    result = {"ok": 0, "rst": 0, "eof": 0, "to": 0, "connect": 0}
    try:
        w0, w1 = s.pids[0], s.pids[1]
        os.kill(w0, signal.SIGSTOP)
        os.kill(w1, signal.SIGSTOP)
        end = time.monotonic() + 2
        while time.monotonic() < end and not (s.state(w0) == "T" and s.state(w1) == "T"):
            time.sleep(0.01)
        for _ in range(n):
            try:
                c = socket.create_connection(("127.0.0.1", s.port), timeout=2)
                c.sendall(REQUEST)
                socks.append(c)
            except OSError:
                result["connect"] += 1
        time.sleep(0.3)
        os.kill(w0, signal.SIGKILL)
        end = time.monotonic() + 2
        while time.monotonic() < end and s.state(w0) not in ("Z", "gone"):
            time.sleep(0.01)
        time.sleep(0.2)
        os.kill(w1, signal.SIGCONT)
        sel = selectors.DefaultSelector()
        bufs = {}
        for c in socks:
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
            bufs[c] = b""
        deadline = time.monotonic() + wait
        while bufs and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                c = key.fileobj
                try:
                    chunk = c.recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    result["rst"] += 1
                    chunk = None
                if chunk:
                    bufs[c] += chunk
                    if not full_response(bufs[c]):
                        continue
                    result["ok"] += 1
                elif chunk == b"":
                    result["eof"] += 1
                sel.unregister(c)
                del bufs[c]
        result["to"] = len(bufs)
        sel.close()
    finally:
        for c in socks:
            c.close()
        for pid in s.pids.values():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        counts = s.stop()
    result["w1_accepted"] = counts[1][0]
    return result


def set_migrate(v):
    with open(MIGRATE, "w") as f:
        f.write(f"{v}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refserver", required=True, help="path of the built refserver binary")
    ap.add_argument("--modes", default=",".join(m[0] for m in MODES), help="comma-separated labels")
    args = ap.parse_args()
    wanted = args.modes.split(",")
    with open(MIGRATE) as f:
        original = f.read().strip()
    rows, notes = [], []
    try:
        for label, accept, migrate in MODES:
            if label not in wanted:
                continue
            set_migrate(migrate)
            rps, reqs, conns, us, err = burst(args.refserver, accept)
            if err:
                notes.append(f"{label} burst: wrk {err}")
            fr, fails, el = fresh(args.refserver, accept)
            if fails:
                notes.append(f"{label} fresh: {fails} of 2000 failed")
            ex = [exit_case(args.refserver, accept, pc) for pc in (False, True)]
            for name, e in zip(("held", "closed"), ex):
                if e["connect"]:
                    notes.append(f"{label} exit/{name}: {e['connect']} connects failed")
            rows.append((label, rps, reqs, conns, us, fr, el, ex))
            print(f"  done {label}", file=sys.stderr, flush=True)
    finally:
        set_migrate(original)
        for p in list(RUNNING):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    pct = lambda a, b: f"{100 * a / max(1, a + b):.0f}/{100 * b / max(1, a + b):.0f}%"
    exf = lambda e: f"{e['ok']}/{e['rst']}/{e['eof']}/{e['to']} (w1 {e['w1_accepted']})"
    print(f"2 workers, unpinned, 127.0.0.1; tcp_migrate_req restored to {original}")
    print(f"{'mode':<16} {'burst req/s':>11} {'req w0/w1':>9} {'conn w0/w1':>10} {'us/req':>6} "
          f"{'fresh w0/w1':>11} {'conn/s':>6}  {'exit held ok/rst/eof/to':<26} {'exit closed ok/rst/eof/to':<26}")
    for label, rps, reqs, conns, us, fr, el, ex in rows:
        print(f"{label:<16} {rps:>11,.0f} {pct(*reqs):>9} {f'{conns[0]}/{conns[1]}':>10} {us:>6.2f} "
              f"{f'{fr[0]}/{fr[1]}':>11} {2000 / el:>6,.0f}  {exf(ex[0]):<26} {exf(ex[1]):<26}")
    for n in notes:
        print("note:", n)


if __name__ == "__main__":
    main()
