"""The WSGI apps of bench/run.sh's rows (the same module for every server).

hello: 13 bytes with Content-Length; flask_app: Flask's hello; big: 64 KiB; upload: reads
wsgi.input to the end, answers hello; stream: 100 x 1 KiB from a generator without
Content-Length (chunked on HTTP/1.1).
"""

HELLO = b"Hello, World!"
TEXT = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]
BIG = b"x" * 65536
BIG_HEADERS = [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BIG)))]
CHUNK = b"x" * 1024


def hello(environ, start_response):
    start_response("200 OK", TEXT)
    return [HELLO]


def big(environ, start_response):
    start_response("200 OK", BIG_HEADERS)
    return [BIG]


def upload(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(n)
    if len(data) != n:
        start_response("400 Bad Request", TEXT)
        return [HELLO]
    start_response("200 OK", TEXT)
    return [HELLO]


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (CHUNK for _ in range(100))


try:
    from flask import Flask
except ImportError:  # the Flask row is skipped without it
    flask_app = None
else:
    flask_app = Flask(__name__)

    @flask_app.route("/")
    def index():
        return "Hello, World!"
