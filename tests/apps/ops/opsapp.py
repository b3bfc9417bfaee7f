"""Fixture app for tests/it/ops: `/stderr?TEXT` prints TEXT to sys.stderr (as an app's
traceback or print would), `/auth` answers 200 with a custom header, anything else `ok`."""
import sys


def app(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/stderr":
        print(environ.get("QUERY_STRING"), file=sys.stderr, flush=True)
    if path == "/boom":
        raise RuntimeError("boom")
    body = b"ok"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("X-Out", "o1")],
    )
    return [body]


def factory(global_conf, **local_conf):
    """PasteDeploy `call:` factory."""
    return app


def make(global_conf, **settings):
    """PasteDeploy app factory (`use = call:opsapp:make`) for the INI tests."""
    return app
