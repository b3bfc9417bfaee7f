"""Every app thread at once: each request waits (GIL released) at a 4-party barrier that only
opens when four requests are inside the app together, so with `threads = 4` all four must be
running concurrently; otherwise they answer "timed out" after 20 s."""
import threading

barrier = threading.Barrier(4, timeout=20)


def app(environ, start_response):
    try:
        barrier.wait()
        body = b"released"
    except threading.BrokenBarrierError:
        barrier.reset()
        body = b"timed out"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
