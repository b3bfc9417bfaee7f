"""Concurrency across app threads (waitress fixtureapps/sleepy.py proves it with a sleep):
/wait and /release meet at a 2-party barrier, which only opens if both requests are inside
the app at once. With a single free app thread it times out instead."""
import threading

barrier = threading.Barrier(2, timeout=20)


def app(environ, start_response):
    try:
        barrier.wait()
        met = True
    except threading.BrokenBarrierError:
        barrier.reset()
        met = False
    if environ["PATH_INFO"] == "/wait":
        body = b"released" if met else b"timed out"
    else:
        body = b"released the waiter" if met else b"timed out"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
