"""bench/run.sh's driver: starts each server of each row (pinned to CPU 0, in its own session),
loads it with wrk (pinned to CPU 1) or the Python connection client, reads the server's CPU time
and memory from /proc, stops it by its process group, and prints one table.

Loopback only; every load is bounded in time; only processes this script started are stopped.
Run it through bench/run.sh (which builds the binaries and the venv); see --help.
"""
import argparse
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import targets

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HZ = os.sysconf("SC_CLK_TCK")
SERVER_CPU, CLIENT_CPU = "0", "1"
DEFAULT = "waitressd"  # the row's reference line: waitressd with default settings (threads = 4)

# What each row's app is called in bench/apps.py, and the URL path for the non-WSGI servers.
APPS = {"hello": "hello", "flask": "flask_app", "big": "big", "upload": "upload", "stream": "stream"}
STATIC = {"hello": "/hello.txt", "big": "/64k"}
REF_PATH = {"hello": "/", "big": "/64k", "upload": "/", "stream": "/stream"}

ALL_WSGI = ["waitressd", "waitressd-t1", "bjoern", "granian", "gunicorn", "waitress"]
ROWS = [
    # (key, label, app, connections, servers)
    ("hello1", "hello C=1", "hello", 1, ALL_WSGI + ["nginx", "ref"]),
    ("hello16", "hello C=16", "hello", 16, ALL_WSGI + ["nginx", "ref"]),
    ("hello64", "hello C=64", "hello", 64, ALL_WSGI + ["nginx", "ref"]),
    ("flask", "Flask hello C=16", "flask", 16, ALL_WSGI),
    ("big", "64 KiB C=16", "big", 16, ALL_WSGI + ["nginx", "ref"]),
    ("upload", "POST 1 MiB C=16", "upload", 16, ALL_WSGI + ["ref"]),
    ("stream", "100x1 KiB stream C=16", "stream", 16, ALL_WSGI + ["ref"]),
    ("log", "hello+access log C=16", "hello", 16, ["waitressd", "waitressd-log", "gunicorn-log", "nginx-log"]),
    ("idle", "idle keep-alive conns", "hello", 0, ["waitressd", "bjoern", "granian", "nginx", "ref"]),
    ("tls", "hello over TLS C=16", "hello", 16, ["waitressd-tls", "nginx-tls"]),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process group, started pinned to SERVER_CPU in a new session."""

    def __init__(self, name, argv, port, env=None, cwd=HERE, path="/", cpus=SERVER_CPU, tls=False):
        self.name, self.port, self.path, self.tls = name, port, path, tls
        self.log = tempfile.TemporaryFile()
        pin = ["taskset", "-c", cpus] if cpus else []
        self.proc = subprocess.Popen(
            pin + argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=self.log, start_new_session=True,
        )

    def wait_ready(self, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
                    s = raw
                    if self.tls:  # the bench's own self-signed certificate: not verified
                        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                        s = ctx.wrap_socket(raw)
                    s.sendall(f"GET {self.path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
                    if s.recv(64).startswith(b"HTTP/1."):
                        return True
            except OSError:
                time.sleep(0.1)
        self.log.seek(0)
        sys.stderr.write(f"{self.name} did not start:\n{self.log.read().decode(errors='replace')[-2000:]}\n")
        return False

    def pids(self):
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[3]) == self.proc.pid:  # session id
                    out.append(int(d))
        return out

    def cpu_ticks(self):
        t = 0
        for p in self.pids():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                t += int(fields[11]) + int(fields[12])  # utime + stime
            except OSError:
                pass
        return t

    def mem_kib(self, key):
        total = 0
        for p in self.pids():
            try:
                with open(f"/proc/{p}/status") as f:
                    m = re.search(key + r":\s+(\d+)", f.read())
                total += int(m.group(1)) if m else 0
            except OSError:
                pass
        return total

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        # Children that outlived their leader (gunicorn workers) go with the group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Bench:
    def __init__(self, args):
        self.a = args
        self.venv = args.venv
        self.tmp = tempfile.mkdtemp(prefix="waitressd-bench-")
        self.env = dict(os.environ, VIRTUAL_ENV=self.venv, PYTHONPATH=HERE,
                        PATH=f"{self.venv}/bin:" + os.environ["PATH"])
        self.env.pop("PYTHONHOME", None)
        os.makedirs(f"{self.tmp}/www")
        with open(f"{self.tmp}/www/hello.txt", "wb") as f:
            f.write(b"Hello, World!")
        with open(f"{self.tmp}/www/64k", "wb") as f:
            f.write(b"x" * 65536)
        with open(f"{self.tmp}/post.lua", "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = string.rep("x", 1048576)\n'
                    'wrk.headers["Content-Type"] = "application/octet-stream"\n')

    def nginx_argv(self, port, access_log=False, tls=False):
        conf = f"{self.tmp}/nginx-{port}.conf"
        listen = f"127.0.0.1:{port}" + (" ssl" if tls else "")
        tls_lines = (f"ssl_certificate {self.tmp}/cert.pem; ssl_certificate_key {self.tmp}/key.pem;"
                     if tls else "")
        with open(conf, "w") as f:
            f.write(f"""
daemon off; master_process off; worker_processes 1; worker_rlimit_nofile 30000;
pid {self.tmp}/nginx-{port}.pid; error_log {self.tmp}/nginx-error.log;
events {{ worker_connections 25000; }}
http {{
  access_log {f'{self.tmp}/nginx-access.log' if access_log else 'off'};
  client_body_temp_path {self.tmp}/cb; proxy_temp_path {self.tmp}/px;
  fastcgi_temp_path {self.tmp}/fc; uwsgi_temp_path {self.tmp}/uw; scgi_temp_path {self.tmp}/sc;
  keepalive_requests 1000000; keepalive_timeout 300s;
  default_type application/octet-stream;
  server {{ listen {listen}; {tls_lines} root {self.tmp}/www; location / {{ }} }}
}}
""")
        return ["nginx", "-p", self.tmp, "-c", conf, "-e", f"{self.tmp}/nginx-error.log"]

    def start(self, name, app, threads_default=4):
        """The Server for `name` serving `app`, or None when that server cannot serve it."""
        port = free_port()
        mod = APPS.get(app)
        py = f"{self.venv}/bin/python"
        wd = [self.a.waitressd, "--app", f"apps:{mod}", "--listen", f"127.0.0.1:{port}",
              "--connection-limit", "20000", "--backlog", "4096"]
        if name == "waitressd":
            argv = wd
        elif name == "waitressd-t1":
            argv = wd + ["--threads", "1"]
        elif name == "waitressd-log":
            argv = wd + ["--access-log", f"{self.tmp}/waitressd-access.log"]
        elif name == "waitressd-tls":
            self.certificate()
            argv = wd + ["--certfile", f"{self.tmp}/cert.pem", "--keyfile", f"{self.tmp}/key.pem"]
            return Server(name, argv, port, env=self.env, tls=True)
        elif name == "bjoern":
            argv = [py, "-c", f"import bjoern, apps; bjoern.run(apps.{mod}, '127.0.0.1', {port})"]
        elif name == "granian":
            argv = [f"{self.venv}/bin/granian", "--interface", "wsgi", "--host", "127.0.0.1",
                    "--port", str(port), "--workers", "1", "--log-level", "warning",
                    "--blocking-threads", str(threads_default), f"apps:{mod}"]
        elif name in ("gunicorn", "gunicorn-log"):
            argv = [f"{self.venv}/bin/gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", f"apps:{mod}"]
            if name == "gunicorn-log":
                argv[1:1] = ["--access-logfile", f"{self.tmp}/gunicorn-access.log"]
        elif name == "waitress":
            argv = [f"{self.venv}/bin/waitress-serve", "--listen", f"127.0.0.1:{port}",
                    "--threads", str(threads_default), f"apps:{mod}"]
        elif name in ("nginx", "nginx-log", "nginx-tls"):
            if app not in STATIC:
                return None
            tls = name == "nginx-tls"
            if tls:
                self.certificate()
            argv = self.nginx_argv(port, access_log=name == "nginx-log", tls=tls)
            return Server(name, argv, port, env=self.env, path=STATIC[app], tls=tls)
        elif name == "ref":
            if app not in REF_PATH:
                return None
            argv = [self.a.refserver, f"127.0.0.1:{port}"]
            return Server(name, argv, port, env=self.env, path=REF_PATH[app])
        else:
            return None
        return Server(name, argv, port, env=self.env)

    def certificate(self):
        """One self-signed ECDSA P-256 certificate for every TLS server of the run (openssl)."""
        if not os.path.exists(f"{self.tmp}/cert.pem"):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{self.tmp}/key.pem",
                            "-out", f"{self.tmp}/cert.pem", "-days", "2", "-subj", "/CN=localhost"],
                           check=True, capture_output=True, timeout=60)

    def wrk(self, srv, conns, secs, post):
        argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--latency",
                "--timeout", "10s"]
        if post:
            argv += ["-s", f"{self.tmp}/post.lua"]
        argv.append(f"{'https' if srv.tls else 'http'}://127.0.0.1:{srv.port}{srv.path}")
        return subprocess.run(argv, capture_output=True, text=True, timeout=secs + 60).stdout

    def measure(self, name, label, app, conns):
        srv = self.start(name, app)
        if srv is None:
            return None
        try:
            if not srv.wait_ready():
                return {"error": "did not start"}
            post = app == "upload"
            if self.a.warmup:
                self.wrk(srv, conns, self.a.warmup, post)
            before = srv.cpu_ticks()
            out = self.wrk(srv, conns, self.a.secs, post)
            cpu = (srv.cpu_ticks() - before) / HZ
            peak = srv.mem_kib("VmHWM")
        finally:
            srv.stop()
        m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
        if not m:
            return {"error": "wrk: " + out[-200:]}
        reqs = int(m.group(1))
        dur = float(m.group(2)) * (60 if m.group(3) == "m" else 1)
        errs = re.findall(r"(Non-2xx or 3xx responses: \d+|Socket errors: .*)", out)
        return {
            "rps": reqs / dur if dur else 0.0,
            "p50": lat(out, "50%"),
            "p99": lat(out, "99%"),
            "cpu_us": cpu / reqs * 1e6 if reqs else float("nan"),
            "rss": peak / 1024,
            "error": "; ".join(errs),
        }

    def idle(self, name, n):
        """RSS per idle keep-alive connection, and how long a fresh request then takes."""
        srv = self.start(name, "hello")
        if srv is None:
            return None
        conns = []
        try:
            if not srv.wait_ready():
                return {"error": "did not start"}
            req = f"GET {srv.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            fresh(srv.port, req)
            time.sleep(0.3)
            rss0 = srv.mem_kib("VmRSS")
            deadline = time.time() + 60
            err = ""
            for _ in range(n):
                if time.time() > deadline:
                    break
                try:
                    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                    s.sendall(req)
                    got = s.recv(4096)
                except OSError as e:
                    err = f"connection {len(conns) + 1}: {e}"
                    break
                if not got.startswith(b"HTTP/1.1 200"):
                    s.close()
                    err = f"connection {len(conns) + 1}: {got[:40]!r}"
                    break
                conns.append(s)
            time.sleep(0.5)
            rss1 = srv.mem_kib("VmRSS")
            try:
                times = sorted(fresh(srv.port, req) for _ in range(5))
            except OSError as e:
                err = err or f"fresh request: {e}"
                times = [float("nan")]
            # The idle ones still work.
            alive = 0
            for s in conns[:: max(1, len(conns) // 20)]:
                try:
                    s.sendall(req)
                    alive += s.recv(4096).startswith(b"HTTP/1.1 200")
                except OSError:
                    pass
            peak = srv.mem_kib("VmHWM")
        finally:
            for s in conns:
                s.close()
            srv.stop()
        held = len(conns)
        return {
            "held": held,
            "per_conn": (rss1 - rss0) * 1024 / held if held else float("nan"),
            "fresh_ms": times[len(times) // 2] * 1e3,
            "fresh_max_ms": times[-1] * 1e3,
            "rss": peak / 1024,
            "error": f"only {held} of {n} connections held ({err})" if held < n else err,
            "alive": alive,
        }


def fresh(port, req):
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req)
        s.recv(4096)
    return time.perf_counter() - t


def lat(out, pct):
    m = re.search(r"^\s+" + re.escape(pct) + r"\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def flask_per_call(venv, n):
    """CPU µs per call of the Flask app in a plain Python loop (pinned like the servers)."""
    code = f"""
import io, sys, time
sys.path.insert(0, {HERE!r})
import apps
env = {{"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SCRIPT_NAME": "", "QUERY_STRING": "",
       "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
       "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
       "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
       "wsgi.run_once": False, "wsgi.version": (1, 0)}}
def sr(status, headers, exc_info=None): pass
for _ in range(2000): b"".join(apps.flask_app(dict(env), sr))
t = time.process_time()
for _ in range({n}): b"".join(apps.flask_app(dict(env), sr))
print((time.process_time() - t) / {n} * 1e6)
"""
    out = subprocess.run(["taskset", "-c", SERVER_CPU, f"{venv}/bin/python", "-c", code],
                         capture_output=True, text=True, timeout=120)
    try:
        return float(out.stdout.strip())
    except ValueError:
        return float("nan")


def flask_shares(rounds, plain):
    """The Flask row's note: the plain-loop baseline (measured in each round, right after
    waitressd's cell) and each server's share, the median of (its CPU per request minus that
    round's baseline) over the rounds."""
    shares = {}
    for got, base in zip(rounds, plain):
        for s, r in got.items():
            if "cpu_us" in r and base == base:
                shares.setdefault(s, []).append(r["cpu_us"] - base)
    parts = ", ".join(f"{s} {median(v):.1f}" for s, v in shares.items())
    return (f"(Flask app alone in a plain Python loop: {fmt(median(plain), '.1f')} us/call"
            f"{' (median of the rounds)' if len(plain) > 1 else ''}; server's share, us/req: "
            f"{parts or '-'})")


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def reference(got):
    """The round's reference line: waitressd with defaults (the TLS row: waitressd with TLS)."""
    return got.get(DEFAULT) or got.get(f"{DEFAULT}-tls") or {}


def cell_ratios(got):
    """waitressd's req/s and CPU ratios to each server measured in the same round."""
    ref = reference(got)
    out = {}
    for s, r in got.items():
        if "rps" in r and "rps" in ref:
            out[s] = (ref["rps"] / r["rps"] if r["rps"] else float("nan"),
                      ref["cpu_us"] / r["cpu_us"] if r["cpu_us"] else float("nan"))
    return out


def per_round_cpu_ratios(rounds):
    out = {}
    for got in rounds:
        for s, (_, cr) in cell_ratios(got).items():
            if s not in (DEFAULT, f"{DEFAULT}-tls"):
                out.setdefault(s, []).append(cr)
    return out


def combine(rounds):
    """Each server's cells over the rounds: medians (peak RSS: the largest), the first error;
    and the medians of the ratios taken within each round (not ratios of medians)."""
    res, ratios = {}, {}
    names = list(dict.fromkeys(s for got in rounds for s in got))
    for s in names:
        cells = [got[s] for got in rounds if s in got]
        failed = [c for c in cells if "rps" not in c]
        if failed:
            res[s] = failed[0]
            continue
        res[s] = {k: median([c[k] for c in cells]) for k in ("rps", "p50", "p99", "cpu_us")}
        res[s]["rss"] = max(c["rss"] for c in cells)
        res[s]["error"] = next((c["error"] for c in cells if c["error"]), "")
        per = [p for p in (cell_ratios(got).get(s) for got in rounds) if p]
        if per:
            ratios[s] = (median([p[0] for p in per]), median([p[1] for p in per]))
    return res, ratios


def fmt(v, spec):
    return "-" if v is None or v != v else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--waitressd", required=True)
    ap.add_argument("--refserver", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure each row's servers this many times, interleaved (order reversed "
                         "each round), and print medians: for a noisy host")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections of the idle row")
    ap.add_argument("--rows", default="", help="comma-separated row keys (default: all)")
    ap.add_argument("--servers", default="", help="comma-separated server names (default: all)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a server did not start or a waitressd cell saw errors (smoke)")
    a = ap.parse_args()
    rows = [r for r in ROWS if not a.rows or r[0] in a.rows.split(",")]
    only = set(a.servers.split(",")) if a.servers else None
    b = Bench(a)
    failures = []
    done = {}  # row key -> what the targets are judged from
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    tls = "--certfile" in subprocess.run([a.waitressd, "--help"], capture_output=True, text=True).stdout
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {os.uname().nodename}, {os.cpu_count()} CPUs; "
          f"server on CPU {SERVER_CPU}, load on CPU {CLIENT_CPU}; {a.secs}s per cell"
          f" (+{a.warmup}s warm-up); ratios are waitressd (threads=4) / peer", flush=True)
    for key, label, app, conns, servers in rows:
        if only:
            servers = [s for s in servers if s in only or s in (DEFAULT, f"{DEFAULT}-tls")]
        if key == "tls" and not tls:
            print(f"\n## {label}: skipped (this waitressd build has no --certfile)")
            continue
        if key == "idle":
            print(f"\n## {label}: {a.idle} held, then a fresh request")
            print(f"{'server':<14} {'held':>6} {'B/conn':>8} {'fresh ms':>9} {'max ms':>7} "
                  f"{'peak MiB':>8} {'B/conn ratio':>12}")
            res = {s: b.idle(s, a.idle) for s in servers}
            done[key] = {"res": {s: r for s, r in res.items() if r}}
            ref = res.get(DEFAULT) or {}
            for s, r in res.items():
                if r is None:
                    continue
                if "held" not in r or (r["error"] and s.startswith(DEFAULT)):
                    failures.append(f"{label}: {s}: {r['error']}")
                if "held" not in r:
                    print(f"{s:<14} {r['error']}")
                    continue
                ratio = ref.get("per_conn", float("nan")) / r["per_conn"] if r["per_conn"] else float("nan")
                print(f"{s:<14} {r['held']:>6} {fmt(r['per_conn'], '8.0f')} {fmt(r['fresh_ms'], '9.2f')} "
                      f"{fmt(r['fresh_max_ms'], '7.2f')} {fmt(r['rss'], '8.1f')} {fmt(ratio, '12.2f')}"
                      + (f"  {r['error']}" if r["error"] else ""), flush=True)
            continue
        print(f"\n## {label}")
        print(f"{'server':<14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} "
              f"{'peak MiB':>8} {'req/s ratio':>11} {'CPU ratio':>9}")
        rounds, plain = [], []
        for i in range(a.rounds):
            # Every server once per round, the order reversed each round: a host that slows
            # down or speeds up during the row weighs on every server alike.
            got = {}
            for s in servers if i % 2 == 0 else servers[::-1]:
                r = b.measure(s, label, app, conns)
                if r is not None:
                    got[s] = r
                if key == "flask" and s == DEFAULT:
                    # The plain-loop baseline right after waitressd's cell, in every round:
                    # the server's share is a difference of two noisy numbers.
                    plain.append(flask_per_call(a.venv, 2000 if a.secs <= 1 else 20000))
            rounds.append(got)
        res, ratios = combine(rounds)
        done[key] = {"res": res, "ratios": ratios, "rounds": rounds, "plain": plain}
        for s, r in res.items():
            if "rps" not in r or (r["error"] and s.startswith(DEFAULT)):
                failures.append(f"{label}: {s}: {r['error']}")
            if "rps" not in r:
                print(f"{s:<14} {r['error']}")
                continue
            rr, cr = ratios.get(s, (float("nan"), float("nan")))
            print(f"{s:<14} {fmt(r['rps'], '9.0f')} {fmt(r['p50'], '8.2f')} {fmt(r['p99'], '8.2f')} "
                  f"{fmt(r['cpu_us'], '10.1f')} {fmt(r['rss'], '8.1f')} {fmt(rr, '11.2f')} {fmt(cr, '9.2f')}"
                  + (f"  {r['error']}" if r["error"] else ""), flush=True)
        if a.rounds > 1:
            spread = ", ".join(f"{s} {min(v):.2f}-{max(v):.2f}" for s, v in per_round_cpu_ratios(rounds).items())
            print(f"({a.rounds} rounds, medians; CPU ratio in each round: {spread})")
        if key == "flask" and plain:
            print(flask_shares(rounds, plain))
    verdicts = targets.lines(done)
    if verdicts:
        print("\n## Targets (issue 12), judged from this run")
        print("\n".join(verdicts))
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failures and a.strict else 0


if __name__ == "__main__":
    sys.exit(main())
