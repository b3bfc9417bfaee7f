"""Per-process facts for preload_app: the pid, and the first random() this process drew after
the fork (CPython's at-fork hooks reseed `random` in each child; without them every worker
would draw the same sequence)."""
import os
import random

IMPORTED_IN = os.getpid()
first = None


def app(environ, start_response):
    global first
    if first is None:
        first = random.random()
    body = ("%d %d %r" % (os.getpid(), IMPORTED_IN, first)).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
