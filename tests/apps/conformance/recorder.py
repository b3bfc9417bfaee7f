"""Fixture app for tests/it/hostile.rs: records every request the server hands to the app.

Each request appends one line `METHOD PATH BODYLEN CASE` to the file named by $RECORDER_LOG
(PATH percent-quoted so a hostile target stays on one line; CASE is the X-Case header or `-`)
and returns the same line as the body, with a Content-Length, or streamed without one
(a chunked HTTP/1.1 response) when the path ends in `/stream`. A path ending in `/slow` first
sleeps 0.3 s, so what the client pipelines behind it arrives while the app is busy. A path
ending in `/env` answers with the proxy-related environ keys instead, as JSON.
"""

import json
import os
import threading
import time
from urllib.parse import quote

_LOCK = threading.Lock()


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    if environ.get("PATH_INFO", "").endswith("/slow"):
        time.sleep(0.3)
    path = quote(environ.get("PATH_INFO", ""), safe="/*:@") or "-"
    case = quote(environ.get("HTTP_X_CASE", "-"), safe="/")
    line = "%s %s %d %s\n" % (environ["REQUEST_METHOD"], path, len(body), case)
    log = os.environ.get("RECORDER_LOG")
    if log:
        with _LOCK:
            with open(log, "a", encoding="latin-1") as f:
                f.write(line)
    out = line.encode("latin-1")
    if path.endswith("/env"):
        keys = [k for k in environ if k.startswith("HTTP_")]
        keys += ["REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme"]
        out = json.dumps({k: environ.get(k) for k in keys}, sort_keys=True).encode()
    if path.endswith("/stream"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (part for part in (b"streamed ", out))
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))]
    )
    return [out]
