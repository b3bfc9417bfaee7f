"""The example app of /etc/waitressd/example.ini: says hello; /stderr writes a line to stderr,
/slow?S answers after S seconds (default 2)."""
import sys
import time


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or 2))
    if environ.get("PATH_INFO") == "/stderr":
        print("waitressd_example: a line on stderr", file=sys.stderr, flush=True)
    body = b"Hello from waitressd\n"
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


def factory(global_conf, **local_conf):
    return app
