"""Answers the environ facts TLS and the PROXY protocol set, as JSON."""
import json

KEYS = ("wsgi.url_scheme", "HTTPS", "SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN", "REMOTE_ADDR", "REMOTE_PORT")


def app(environ, start_response):
    body = json.dumps({k: environ.get(k) for k in KEYS}).encode()
    start_response("200 OK", [("Content-Length", str(len(body))), ("Content-Type", "application/json")])
    return [body]
