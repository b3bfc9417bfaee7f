"""Shows what the app sees of its process: environment, cwd, sys.path, thread name, proxy
results. `envapp:app`, or `envapp:create_app()` (waitress-serve's --call)."""
import json
import os
import sys
import threading
import time


def app(environ, start_response):
    if environ.get("QUERY_STRING") == "sleep":
        time.sleep(0.5)
    if environ.get("QUERY_STRING") == "short":
        # Fewer bytes than the Content-Length: waitress's WARNING, logged on the app thread.
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"abc"]
    body = json.dumps(
        {
            "env": {k: v for k, v in os.environ.items() if k.startswith("SWITCH_")},
            "cwd": os.getcwd(),
            "sys_path": sys.path[:4],
            "thread": threading.current_thread().name,
            "remote_addr": environ.get("REMOTE_ADDR"),
            "url_scheme": environ.get("wsgi.url_scheme"),
            "version": VERSION,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


VERSION = 1


def create_app():
    return app
