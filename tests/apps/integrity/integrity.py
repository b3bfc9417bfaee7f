"""Response-integrity fixture: deterministic pseudo-random bodies, each checkable by SHA-256.

Query: `seed` (body), `n` (bytes), `max` (largest slice the app hands over, default 1 MiB);
`/digest` answers the hex SHA-256 of the body any route below would produce for the same
`seed` and `n` (of its first `len` bytes when `len` is given), so a client checks every byte
without holding a copy.

Routes (the body is the same for all of them):
  /stream   a generator of random-size slices, no Content-Length (chunked on HTTP/1.1)
  /cl       the same generator with Content-Length
  /once     one bytes object (a one-item list)
  /write    the `write` callable returned by start_response, then an empty iterable
  /file     wsgi.file_wrapper over a real file (sendfile), with Content-Length
  /filenocl the same without Content-Length (the server adds it from the file's size)
  /shrink   wsgi.file_wrapper over a real file that is truncated to n/3 while it is being
            sent (after `delay` ms): the response must end visibly short, never hang
  /upload   reads wsgi.input to the end and answers its length and SHA-256
"""
import hashlib
import os
import random
import tempfile
import threading
from urllib.parse import parse_qs


def body(seed, n):
    return random.Random(seed).randbytes(n)


def slices(data, seed, biggest):
    rng = random.Random(seed ^ 0x5EED)
    i = 0
    while i < len(data):
        k = rng.randint(1, biggest)
        yield data[i : i + k]
        i += k


def real_file(data, keep=False):
    fd, path = tempfile.mkstemp(prefix="waitressd-integrity-")
    # A file object: a write cut short by a full $TMPDIR raises (os.write returns the short
    # count, and the file then held less than its digest says).
    try:
        with open(fd, "wb") as f:
            f.write(data)
    except OSError:
        os.unlink(path)
        raise
    f = open(path, "rb")
    if not keep:
        os.unlink(path)
    return f, path


def shrink(path, size):
    os.truncate(path, size)
    os.unlink(path)


def app(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    seed, n = int(q.get("seed", "1")), int(q.get("n", "0"))
    biggest = int(q.get("max", str(1 << 20)))
    route = environ["PATH_INFO"]
    octets = [("Content-Type", "application/octet-stream")]
    if route == "/digest":
        start_response("200 OK", [("Content-Type", "text/plain")])
        data = body(seed, n)[: int(q.get("len", str(n)))]
        return [hashlib.sha256(data).hexdigest().encode()]
    if route == "/upload":
        h, total = hashlib.sha256(), 0
        inp = environ["wsgi.input"]
        while True:
            block = inp.read(65536)
            if not block:
                break
            h.update(block)
            total += len(block)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{total} {h.hexdigest()}".encode()]
    data = body(seed, n)
    if route == "/stream":
        start_response("200 OK", octets)
        return slices(data, seed, biggest)
    if route == "/cl":
        start_response("200 OK", octets + [("Content-Length", str(n))])
        return slices(data, seed, biggest)
    if route == "/once":
        start_response("200 OK", octets + [("Content-Length", str(n))])
        return [data]
    if route == "/write":
        write = start_response("200 OK", octets)
        for s in slices(data, seed, biggest):
            write(s)
        return []
    if route in ("/file", "/filenocl"):
        headers = octets + ([("Content-Length", str(n))] if route == "/file" else [])
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](real_file(data)[0], 1 << 16)
    if route == "/shrink":
        # By path: the server holds its own descriptor once the wrapper is handed over.
        f, path = real_file(data, keep=True)
        delay = int(q.get("delay", "200")) / 1000
        threading.Timer(delay, shrink, (path, n // 3)).start()
        start_response("200 OK", octets + [("Content-Length", str(n))])
        return environ["wsgi.file_wrapper"](f, 1 << 16)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such route"]
