#!/usr/bin/env python3
"""tools/integrity_soak.py: a bounded end-to-end integrity soak of a running build.

Starts `waitressd` (the binary given, default target/release/waitressd) with the integrity
fixture app (tests/apps/integrity/integrity.py) at a spill threshold, then for SECONDS runs
CLIENTS threads that each pick a random kind of exchange — download by a route of the fixture
(chunked stream, Content-Length, one bytes object, write(), file_wrapper with and without
Content-Length), HTTP/1.1 or 1.0, a pipelined mix with HEAD, or an upload (Content-Length or
chunked) — of a random size up to --max-size, read at a random pace, and checks every body by
SHA-256 against the app's digest. Optionally sends the master SIGHUP every --hup seconds.
With --chaos SECONDS the failure paths fire in turn meanwhile: SIGHUP, SIGKILL of a worker, a
bad deploy (a syntax error written into the app, HUP, a worker killed so its respawn fails, the
app fixed, HUP), USR2 (the binary re-executed in place), and clients that vanish mid-response,
ending with a TERM while clients are mid-exchange (those exchanges must still complete intact).
With --tls every exchange runs over TLS (a throwaway openssl certificate, `certfile`/`keyfile`);
a close-delimited body must then end with a close_notify: a TLS stream that simply stops (a
"ragged" EOF, which Python's ssl hides by default) counts as a cut, never as a complete body.
Responses cut by a killed worker are counted, not failed (they fail visibly); a complete
response with wrong bytes, or broken framing, always fails the run.
Prints bytes moved and failures; exits 1 on any corrupted or (without --chaos) lost response.
Loopback only; the daemon it started is stopped by its PID (read from its pidfile after USR2).

  tools/integrity_soak.py --seconds 120 --clients 6 --overflow 65536 --hup 10
  tools/integrity_soak.py --seconds 120 --chaos 3
  tools/integrity_soak.py --seconds 60 --chaos 3 --tls
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTES = ["/stream", "/cl", "/once", "/write", "/file", "/filenocl"]
# --tls: the client context (verifies the soak's own certificate); None for plain TCP.
TLS = None


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    if TLS is None:
        return s
    # suppress_ragged_eofs=False: a TLS stream cut without close_notify raises SSLEOFError
    # (counted as a cut) instead of reading as a clean end of the body. Any other TLS error
    # (a bad record, a failed MAC) fails the run like broken framing.
    return TLS.wrap_socket(s, server_hostname="localhost", suppress_ragged_eofs=False)


class Reader:
    def __init__(self, sock, pace):
        self.s, self.pace, self.buf = sock, pace, bytearray()

    def fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed")
        self.buf += d
        if self.pace:
            time.sleep(self.pace)

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n")
        out = bytes(self.buf[:i])
        del self.buf[: i + 2]
        return out

    def take(self, n, h):
        while n > 0:
            if not self.buf:
                self.fill()
            k = min(n, len(self.buf))
            h.update(self.buf[:k])
            del self.buf[:k]
            n -= k

    def rest(self, h):
        try:
            while True:
                h.update(self.buf)
                self.buf.clear()
                self.fill()
        except EOFError:
            pass

    def response(self, method):
        head = []
        while True:
            l = self.line()
            if not l:
                break
            head.append(l.decode("latin-1").lower())
        status = int(head[0].split()[1])
        fields = dict(h.split(":", 1) for h in head[1:])
        h, n0 = hashlib.sha256(), 0
        if method == "HEAD":
            return status, h.hexdigest()
        if "content-length" in fields:
            self.take(int(fields["content-length"]), h)
        elif fields.get("transfer-encoding", "").strip() == "chunked":
            while True:
                size = int(self.line(), 16)
                self.take(size, h)
                if self.line() != b"":
                    raise ValueError("chunk data not followed by CRLF")
                if size == 0:
                    break
        else:
            self.rest(h)
        return status, h.hexdigest()


def digest(port, seed, n):
    with connect(port) as s:
        s.sendall(f"GET /digest?seed={seed}&n={n} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        r = Reader(s, 0)
        head = []
        while True:
            l = r.line()
            if not l:
                break
            head.append(l)
        cl = int([h for h in head if h.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(r.buf) < cl:
            r.fill()
        return bytes(r.buf[:cl]).decode()


def one(port, rng, max_size, stats):
    kind = rng.random()
    pace = rng.choice([0, 0, 0.001, 0.003])
    try:
        s = connect(port)
    except (ConnectionError, ssl.SSLEOFError) as e:  # a handshake cut by a killed worker
        return f"CUT connect: {type(e).__name__}: {e}"
    s.settimeout(120)
    r = Reader(s, pace)
    try:
        if kind < 0.15:  # upload
            n = rng.randint(0, max_size)
            seed = rng.getrandbits(32)
            data = random.Random(seed).randbytes(n)
            if rng.random() < 0.5:
                s.sendall(f"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {n}\r\n\r\n".encode())
                s.sendall(data)
            else:
                s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
                i = 0
                while i < n:
                    k = rng.randint(1, 1 << 20)
                    part = data[i : i + k]
                    s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                    i += k
                s.sendall(b"0\r\n\r\n")
            status, got = r.response("POST")
            # The app answers "LEN SHA256" of what wsgi.input gave it.
            want = f"{n} {hashlib.sha256(data).hexdigest()}".encode()
            if status != 200 or got != hashlib.sha256(want).hexdigest():
                return f"upload seed {seed} n {n}: status {status}, app saw other bytes"
            stats["up"] += n
            return None
        if kind > 0.95:  # a client that vanishes mid-response
            s.sendall(f"GET /stream?seed=1&n={max_size} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            r.fill()
            return None
        if kind < 0.3:  # pipelined mix
            asks = [(rng.choice(["GET", "GET", "HEAD"]), rng.choice(ROUTES),
                     rng.getrandbits(32), rng.randint(0, max_size // 4)) for _ in range(rng.randint(2, 5))]
            s.sendall(b"".join(f"{m} {u}?seed={sd}&n={n} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
                               for m, u, sd, n in asks))
            for m, u, sd, n in asks:
                status, got = r.response(m)
                if status != 200 or (m == "GET" and got != digest(port, sd, n)):
                    return f"pipelined {m} {u} seed {sd} n {n}: status {status}"
                stats["down"] += n if m == "GET" else 0
            return None
        route, seed, n = rng.choice(ROUTES), rng.getrandbits(32), rng.randint(0, max_size)
        version = rng.choice(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"])
        s.sendall(f"GET {route}?seed={seed}&n={n} {version}\r\nHost: t\r\n\r\n".encode())
        status, got = r.response("GET")
        if status != 200 or got != digest(port, seed, n):
            return f"{route} {version} seed {seed} n {n}: status {status}, sha mismatch"
        stats["down"] += n
        return None
    except (EOFError, ConnectionError, socket.timeout, ssl.SSLEOFError) as e:  # visibly cut
        return f"CUT kind {kind:.2f}: {type(e).__name__}: {e}"
    except Exception as e:  # broken framing: wrong bytes on the wire
        return f"kind {kind:.2f}: {type(e).__name__}: {e}"
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/waitressd"))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--overflow", default="65536")
    ap.add_argument("--max-size", type=int, default=32 << 20)
    ap.add_argument("--hup", type=float, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chaos", type=float, default=0)
    ap.add_argument("--tls", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="waitressd-soak-")
    tls_args = []
    if a.tls:
        global TLS
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost"], check=True, capture_output=True)
        TLS = ssl.create_default_context(cafile=cert)
        tls_args = ["--certfile", cert, "--keyfile", key]
    app = os.path.join(tmp, "integrity.py")
    shutil.copy(os.path.join(ROOT, "tests/apps/integrity/integrity.py"), app)
    pidfile = os.path.join(tmp, "master.pid")
    d = subprocess.Popen([a.bin, "--app", "integrity:app", "--listen", "127.0.0.1:0",
                          "--threads", "4", "--workers", "2", "--outbuf-overflow", a.overflow,
                          "--inbuf-overflow", a.overflow, "--pidfile", pidfile, *tls_args],
                         cwd=tmp, env=env, stderr=subprocess.PIPE, text=True)
    port = None
    for line in d.stderr:
        m = re.search(r"Serving on https?://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    threading.Thread(target=lambda: [None for _ in d.stderr], daemon=True).start()
    stats = {"down": 0, "up": 0, "n": 0}
    fails, lock = [], threading.Lock()
    end = time.monotonic() + a.seconds

    def client(i):
        rng = random.Random(a.seed * 1000 + i)
        while time.monotonic() < end and not terminating.is_set():
            err = one(port, rng, a.max_size, stats)
            with lock:
                stats["n"] += 1
                if err:
                    fails.append(err)

    def master():
        try:
            return int(open(pidfile).read().strip())
        except (OSError, ValueError):
            return d.pid

    def kill_a_worker():
        m = master()
        kids = open(f"/proc/{m}/task/{m}/children").read().split()
        if kids:
            os.kill(int(kids[0]), signal.SIGKILL)

    good = open(app).read()

    def bad_deploy():
        with open(app, "w") as f:
            f.write(good + "\ndef broken(:\n")
        os.kill(master(), signal.SIGHUP)  # abandoned: the old workers keep serving
        time.sleep(1)
        kill_a_worker()  # its respawn fails to boot while the sibling serves
        time.sleep(1.5)
        with open(app, "w") as f:
            f.write(good)
        os.kill(master(), signal.SIGHUP)

    actions = [("HUP", lambda: os.kill(master(), signal.SIGHUP)), ("KILL worker", kill_a_worker),
               ("bad deploy", bad_deploy), ("USR2", lambda: os.kill(master(), signal.SIGUSR2))]
    fired = []
    terminating = threading.Event()  # --chaos ends with a TERM while clients are mid-exchange
    ts = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    for t in ts:
        t.start()
    hups = 0
    while any(t.is_alive() for t in ts):
        time.sleep(a.chaos or a.hup or 0.5)
        if a.chaos and not terminating.is_set() and time.monotonic() >= end - 2:
            final = master()
            terminating.set()  # exchanges under way finish (graceful stop); no new ones start
            os.kill(final, signal.SIGTERM)
            fired.append("TERM under load")
            continue
        if time.monotonic() >= end:
            continue
        if a.chaos:
            name, act = actions[len(fired) % len(actions)]
            act()
            fired.append(name)
        elif a.hup:
            d.send_signal(signal.SIGHUP)
            hups += 1
    for t in ts:
        t.join()
    if not terminating.is_set():
        final = master()
        os.kill(final, signal.SIGTERM)
    if final == d.pid:
        if d.wait(60) != 0:
            fails.append(f"master exited with {d.returncode} after TERM")
    else:
        deadline = time.monotonic() + 60
        while os.path.exists(f"/proc/{final}") and time.monotonic() < deadline:
            time.sleep(0.1)
    shutil.rmtree(tmp, ignore_errors=True)
    cuts = [f for f in fails if f.startswith("CUT ")]
    fails = [f for f in fails if not f.startswith("CUT ")] + ([] if a.chaos else cuts)
    if a.chaos:
        counts = {n: fired.count(n) for n in dict.fromkeys(fired)}
        print(f"chaos: {counts}; {len(cuts)} responses cut (visibly) by the failures")
    # Every HUP sent: --hup's, and under --chaos its own plus the two of each bad deploy.
    hups += fired.count("HUP") + 2 * fired.count("bad deploy")
    gib = (stats["down"] + stats["up"]) / (1 << 30)
    print(f"{stats['n']} exchanges, {stats['down'] / (1 << 30):.2f} GiB down, "
          f"{stats['up'] / (1 << 30):.2f} GiB up ({gib:.2f} GiB), {hups} HUPs, "
          f"outbuf_overflow {a.overflow}: {len(fails)} failed")
    for f in fails[:20]:
        print("  " + f)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
