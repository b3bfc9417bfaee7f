"""An app wrapped in wsgiref.validate.validator: PEP 3333 checks on every object we pass."""
from wsgiref.validate import validator


def inner(environ, start_response):
    cl = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(cl)
    environ["wsgi.errors"].write("validated app saw %d bytes\n" % len(body))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body) + 3))])
    return [b"ok:", body]


app = validator(inner)
