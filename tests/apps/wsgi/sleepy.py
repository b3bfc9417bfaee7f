"""Concurrency across app threads: /wait blocks until /release runs on another thread
(waitress fixtureapps/sleepy.py proves the same with a sleep; an event needs no timing)."""
import threading

released = threading.Event()


def app(environ, start_response):
    if environ["PATH_INFO"] == "/wait":
        body = b"released" if released.wait(timeout=20) else b"timed out"
    else:
        released.set()
        body = b"released the waiter"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
