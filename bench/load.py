"""A fixed amount of work for profiling (callgrind, strace -c, perf): N requests of one bench
row, one after another on one keep-alive connection, each response read to its end and checked.
--slow: a slow client (4 KiB receive buffer, 1 KiB reads 0.2 ms apart), so output waits for it.

    python3 bench/load.py PORT hello|flask|big|upload|stream N [--slow]

flask asks for / (the Flask app's one route); the others ask for /KIND (any path serves them).
"""
import socket
import sys
import time

port, kind, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
slow = "--slow" in sys.argv[4:]
body = b"x" * (1 << 20) if kind == "upload" else b""
method = "POST" if body else "GET"
path = "/" if kind == "flask" else f"/{kind}"
req = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
s = socket.socket()
if slow:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))


class Slow:
    """File-like reads that take 1 KiB at a time with a pause, as a slow client does."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _more(self):
        time.sleep(0.0002)
        got = self.sock.recv(1024)
        assert got, "connection closed"
        self.buf += got

    def readline(self):
        while b"\n" not in self.buf:
            self._more()
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read(self, k):
        while len(self.buf) < k:
            self._more()
        out, self.buf = self.buf[:k], self.buf[k:]
        return out


f = Slow(s) if slow else s.makefile("rb")
for _ in range(n):
    s.sendall(req)
    status = f.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    length, chunked = None, False
    while (line := f.readline()) not in (b"\r\n", b""):
        k, _, v = line.partition(b":")
        if k.lower() == b"content-length":
            length = int(v)
        elif k.lower() == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        while (size := int(f.readline().split(b";")[0], 16)) > 0:
            f.read(size + 2)
        f.readline()
    else:
        f.read(length)
s.close()
