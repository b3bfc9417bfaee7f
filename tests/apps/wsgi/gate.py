"""A request waits (GIL released) until the file named by its query string exists, at most
30 s, then answers "through" (or "timed out"): the test holds app threads busy and lets them go."""
import os
import time


def app(environ, start_response):
    gate = environ["QUERY_STRING"]
    end = time.monotonic() + 30
    while not os.path.exists(gate) and time.monotonic() < end:
        time.sleep(0.01)
    body = b"through" if os.path.exists(gate) else b"timed out"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
