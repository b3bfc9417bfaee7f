"""pytest plugin: waitress's functional tests start the waitressd binary instead of forking a
waitress server. Each `start_subprocess(app, **adjustments)` becomes
`waitressd --app module:app --<adjustment>=<value> ...` on 127.0.0.1:0 (or a unix socket for
the Unix* classes); the "Serving on" line gives the address the tests connect to."""
import os
import socket
import subprocess
import tempfile
import threading

BIN = os.environ["WAITRESSD_BIN"]
# waitressd answers an HTTP/1.1 request without Host with 400 (RFC 9112 §3.2, a deliberate
# difference); waitress's suite sends many such requests. With WAITRESSD_SUITE_ADD_HOST=1 the
# test sockets add `Host: localhost` to them, so every other behaviour is still compared.
ADD_HOST = os.environ.get("WAITRESSD_SUITE_ADD_HOST", "1") == "1"

# Tests that check a behaviour waitressd deliberately changes (README, "Where waitressd
# deliberately differs"): expected to fail, strictly (an unexpected pass fails the run).
DELIBERATE = {
    "test_http11_generator": "HTTP/1.1 stays alive after a chunked response",
    "test_http11_listlentwo": "HTTP/1.1 stays alive after a chunked response",
    "test_notfilelike_nocl_http11": "HTTP/1.1 stays alive after a chunked response",
    "test_request_body_too_large_chunked_encoding": (
        "a chunk extension without a name (`20;`) is a 400 (RFC 9112 §7.1.1), before the size "
        "limit is reached"
    ),
}


class _HostSocket(socket.socket):
    def _fix(self, data):
        data = bytes(data)
        first, sep, rest = data.partition(b"\r\n")
        if sep and first.endswith(b" HTTP/1.1") and b" " in first:
            head = rest.split(b"\r\n\r\n", 1)[0].lower()
            if not head.startswith(b"host:") and b"\r\nhost:" not in head:
                return first + b"\r\nHost: localhost\r\n" + rest
        return data

    def send(self, data, *args):
        super().sendall(self._fix(data), *args)
        return len(data)

    def sendall(self, data, *args):
        return super().sendall(self._fix(data), *args)


def create_socket(self):
    return _HostSocket(self.server.family, socket.SOCK_STREAM)


def _flags(kw):
    out = []
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is False:
            out.append("--no-" + key.replace("_", "-"))
        elif isinstance(value, (set, frozenset, list, tuple)):
            out.append("%s=%s" % (flag, " ".join(sorted(value))))
        else:
            out.append("%s=%s" % (flag, value))
    return out


def start_subprocess(self, target, **kw):
    unix = getattr(self.server, "family", socket.AF_INET) == getattr(socket, "AF_UNIX", None)
    args = [BIN, "--app", "%s:%s" % (target.__module__, target.__name__)] + _flags(kw)
    if unix:
        self._wd_sock = os.path.join(tempfile.mkdtemp(prefix="wd-suite-"), "s.sock")
        args += ["--unix-socket", self._wd_sock]
    else:
        args += ["--listen", "127.0.0.1:0"]
    self.proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = None
    seen = []
    for raw in self.proc.stderr:
        line = raw.decode("utf-8", "replace")
        seen.append(line)
        if "Serving on " in line:
            url = line.split("Serving on ", 1)[1].strip()
            break
    if url is None:
        raise RuntimeError("waitressd did not start: %s" % "".join(seen))
    threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
    hostport = url[len("http://"):]
    if unix:
        self.bound_to = hostport[len("unix:"):]
    else:
        host, port = hostport.rsplit(":", 1)
        self.bound_to = (host, int(port))
    self.sock = self.create_socket()


def stop_subprocess(self):
    if self.proc.poll() is None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
    self.sock.close()


def pytest_collection_modifyitems(config, items):
    import pytest

    if not ADD_HOST:
        return
    for item in items:
        reason = DELIBERATE.get(item.name)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def pytest_sessionstart(session):
    import tests.test_functional as tf

    # A test that waits for a close waitressd deliberately does not do (keep-alive after a
    # chunked response) fails after this instead of hanging.
    socket.setdefaulttimeout(10)

    tf.SubprocessTests.start_subprocess = start_subprocess
    tf.SubprocessTests.stop_subprocess = stop_subprocess
    if ADD_HOST:
        tf.SubprocessTests.create_socket = create_socket
    if hasattr(tf, "UnixTests"):
        # UnixTests.stop_subprocess also removes the socket file: waitressd does it itself.
        tf.UnixTests.stop_subprocess = stop_subprocess
