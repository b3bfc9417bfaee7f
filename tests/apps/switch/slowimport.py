"""An app whose import takes a while and says when it is done (to order against Serving on)."""
import sys
import time

time.sleep(0.5)
print("SLOWIMPORT done", file=sys.stderr, flush=True)


def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
