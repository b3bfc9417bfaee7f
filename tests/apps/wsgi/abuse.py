"""The app the adversarial tests (tests/it/abuse) run under the real binary: a small answer,
a large one, one that never returns, one that raises, one that leaks a file per request, and
one that takes every free file descriptor of its worker (`/hog`, given back by `/unhog`)."""
import threading

_never = threading.Event()
_leaked = []
_hogged = []


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/big":
        # 64 MiB in 64 KiB pieces, no Content-Length (chunked on HTTP/1.1).
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        piece = b"x" * 65536
        return (piece for _ in range(1024))
    if path == "/hang":
        # Never returns while the daemon runs (an app stuck on a dead backend).
        _never.wait(3600)
    if path == "/raise":
        raise RuntimeError("abuse: this app raises on every request")
    if path == "/leak":
        # Keeps an open file and 64 KiB per request forever.
        _leaked.append((open(__file__, "rb"), bytearray(65536)))
    if path == "/hog":
        try:
            while True:
                _hogged.append(open("/dev/null", "rb"))
        except OSError:
            pass
    if path == "/unhog":
        while _hogged:
            _hogged.pop().close()
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    body = b"hello"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
