"""A stream that pauses: /stream yields a few small chunks, then waits (up to 20 s) until a
request to /release arrives, then yields the last chunk. A server that holds small chunks back
to send them together must still deliver the ones before the pause while the app waits."""
import threading

released = threading.Event()


def app(environ, start_response):
    if environ["PATH_INFO"] == "/release":
        released.set()
        start_response("200 OK", [("Content-Length", "8")])
        return [b"released"]

    def stream():
        yield b"first;"
        yield b"second;"
        yield b"third;"
        yield b"waited;" if released.wait(20) else b"timed out;"
        released.clear()

    start_response("200 OK", [("Content-Type", "text/plain")])
    return stream()


def writer(environ, start_response):
    """The same through the legacy write() callable: writes, then waits inside the app call."""
    if environ["PATH_INFO"] == "/release":
        return app(environ, start_response)
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"first;")
    write(b"second;")
    write(b"third;")
    write(b"waited;" if released.wait(20) else b"timed out;")
    released.clear()
    return []
