"""A fixed amount of work for profiling (callgrind, strace -c, perf): N requests of one bench
row, one after another on one keep-alive connection, each response read to its end and checked.

    python3 bench/load.py PORT hello|big|upload|stream N
"""
import socket
import sys

port, kind, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = b"x" * (1 << 20) if kind == "upload" else b""
method = "POST" if body else "GET"
req = (f"{method} /{kind} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
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
