"""pytest plugin: run waitress 3.0.2's tests/test_functional.py against the waitressd binary.

waitress's `SubprocessTests.start_subprocess(app, **kw)` forks a process running its own server.
Here it starts `waitressd --app tests.fixtureapps.<mod>:<app>` instead, with `kw` translated to
the equivalent waitressd flags, on 127.0.0.1:0 (TCP classes) or a fresh unix socket (Unix
classes), waits (bounded) for the "Serving on" line, and stops the daemon by its PID.

Every test is bounded by an alarm and every test socket by a default timeout, so a server that
hangs makes a test fail instead of the run.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from waitress_functional.xfails import XFAIL, XFAIL_ADD_HOST

BIN = os.environ.get("WAITRESSD_BIN", "target/debug/waitressd")
VENV = os.environ.get("WAITRESSD_FUNCTIONAL_VENV", "")
LOGS = os.environ.get("WAITRESSD_FUNCTIONAL_LOGS") or tempfile.mkdtemp(prefix="wf-logs-")
START_TIMEOUT = 30  # seconds for the daemon to print "Serving on"
STOP_TIMEOUT = 5  # seconds after SIGQUIT before SIGKILL
TEST_TIMEOUT = 60  # seconds per test (SIGALRM)
SOCKET_TIMEOUT = 15  # default timeout of every socket a test creates
XFAIL_SOCKET_TIMEOUT = 3  # same, in expected failures (some show as a read until EOF)

SERVING = re.compile(rb"Serving on http://(\S+)")

_current_test = ["unknown"]


def flags_for(kw):
    """waitress keyword arguments → waitressd setting flags (waitress-serve's spelling)."""
    args = []
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (set, frozenset, list, tuple)):
            args += [flag, " ".join(sorted(str(v) for v in value))]
        else:
            args += [flag, str(value)]
    return args


class Daemon:
    """One waitressd process serving one fixture app; stopped by its PID."""

    def __init__(self, target, unix, kw):
        name = _current_test[0].replace("/", "_").replace(":", "_")
        self.log_path = os.path.join(LOGS, name + ".log")
        self.tmp = tempfile.mkdtemp(prefix="wf-")
        app = "%s:%s" % (target.__module__, target.__qualname__)
        args = [BIN, "--app", app]
        if unix:
            args += ["--unix-socket", os.path.join(self.tmp, "s.sock")]
        else:
            args += ["--listen", "127.0.0.1:0"]
        args += flags_for(kw)
        self.args = args
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if VENV:
            env["VIRTUAL_ENV"] = VENV
        self.log = open(self.log_path, "wb")
        self.log.write(("$ " + " ".join(args) + "\n").encode())
        self.log.flush()
        self.proc = subprocess.Popen(
            args,
            cwd=os.getcwd(),  # the sdist root, so tests.fixtureapps imports
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.exitcode = None
        self.url = self._wait_serving()

    def _wait_serving(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                m = SERVING.search(f.read())
            if m:
                return m.group(1).decode()
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        with open(self.log_path, "rb") as f:
            raise RuntimeError(
                "waitressd did not start:\n" + f.read().decode(errors="replace")
            )

    def bound_to(self):
        if self.url.startswith("unix:"):
            return self.url[len("unix:") :]
        host, port = self.url.rsplit(":", 1)
        return (host, int(port))

    def stop(self):
        if self.proc.poll() is None:
            # SIGQUIT: immediate stop of master and workers (no graceful drain: the tests
            # leave connections open on purpose).
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        self.exitcode = self.proc.returncode
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_subprocess(self, target, **kw):
    self.proc = Daemon(target, self.server.family == socket.AF_UNIX, kw)
    self.bound_to = self.proc.bound_to()
    self.sock = self.create_socket()


REQUEST_LINE = re.compile(rb"(?:^|(?<=\r\n))[A-Z]+ [^ \r\n]+ HTTP/1\.1\r\n")
HOST_LINE = re.compile(rb"\r\nhost:", re.IGNORECASE)


def add_host(data):
    """Inserts `Host: localhost` into every HTTP/1.1 request head in `data` that has none.

    waitress's suite sends many HTTP/1.1 requests without Host, which waitressd rejects with
    400 (RFC 9112 section 3.2, a deliberate difference). With --add-host those tests check
    everything else they were written for.
    """
    out = []
    pos = 0
    for m in REQUEST_LINE.finditer(data):
        if m.start() < pos:
            continue
        end = data.find(b"\r\n\r\n", m.start())
        head = data[m.start() : end + 2 if end >= 0 else len(data)]
        out.append(data[pos : m.end()])
        if not HOST_LINE.search(b"\r\n" + head[m.end() - m.start() :]):
            out.append(b"Host: localhost\r\n")
        pos = m.end()
    out.append(data[pos:])
    return b"".join(out)


class HostAddingSocket(socket.socket):
    """A test socket that adds a Host header to HTTP/1.1 requests lacking one (--add-host)."""

    def send(self, data, flags=0):
        super().sendall(add_host(bytes(data)), flags)
        return len(data)

    def sendall(self, data, flags=0):
        super().sendall(add_host(bytes(data)), flags)


def create_host_adding_socket(self):
    return HostAddingSocket(self.server.family, socket.SOCK_STREAM)


def stop_subprocess(self):
    self.proc.stop()
    self.sock.close()


def pytest_addoption(parser):
    parser.addoption(
        "--add-host",
        action="store_true",
        help="add a Host header to the suite's HTTP/1.1 requests that lack one",
    )


def pytest_collection_modifyitems(session, config, items):
    patched = set()
    seen = set()
    table = XFAIL_ADD_HOST if config.getoption("add_host") else XFAIL
    for item in items:
        mod = item.module
        if mod not in patched and hasattr(mod, "SubprocessTests"):
            mod.SubprocessTests.start_subprocess = start_subprocess
            mod.SubprocessTests.stop_subprocess = stop_subprocess
            if config.getoption("add_host"):
                mod.SubprocessTests.create_socket = create_host_adding_socket
            patched.add(mod)
        key = item.nodeid.split("::", 1)[1]
        reason = table.get(key)
        if reason is not None:
            seen.add(key)
            # strict: a listed test that passes is reported, so the table stays honest.
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    missing = set(table) - seen
    if missing and not config.getoption("keyword") and not config.args[1:]:
        raise pytest.UsageError("xfail table names unknown tests: %s" % sorted(missing))


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout("test exceeded %d s" % TEST_TIMEOUT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current_test[0] = item.nodeid.split("::", 1)[1]
    expected_fail = item.get_closest_marker("xfail") is not None
    socket.setdefaulttimeout(XFAIL_SOCKET_TIMEOUT if expected_fail else SOCKET_TIMEOUT)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
