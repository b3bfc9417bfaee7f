"""Which interpreter and packages the embedded Python runs on."""
import json
import sys


def app(environ, start_response):
    try:
        import flask  # noqa: F401  (only installed in the test venv)

        has_flask = True
    except ImportError:
        has_flask = False
    try:
        import math  # noqa: F401  (an extension module of the stdlib)

        has_math = True
    except ImportError:
        has_math = False
    body = json.dumps(
        {
            "prefix": sys.prefix,
            "base_prefix": sys.base_prefix,
            "executable": sys.executable,
            "version": sys.version.split()[0],
            "flask": has_flask,
            "math": has_math,
        }
    ).encode()
    start_response("200 OK", [("Content-Length", str(len(body))), ("Content-Type", "application/json")])
    return [body]
