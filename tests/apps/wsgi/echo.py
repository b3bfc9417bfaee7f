"""Echo of the environ and body (waitress fixtureapps/echo.py behaviour)."""
import json


def app(environ, start_response):
    cl = environ.get("CONTENT_LENGTH", None)
    body = environ["wsgi.input"].read(int(cl) if cl is not None else None)
    meta = {
        "method": environ["REQUEST_METHOD"],
        "path_info": environ["PATH_INFO"],
        "script_name": environ["SCRIPT_NAME"],
        "query_string": environ["QUERY_STRING"],
        "request_uri": environ["REQUEST_URI"],
        "content_length": environ.get("CONTENT_LENGTH"),
        "content_type": environ.get("CONTENT_TYPE"),
        "body_length": len(body),
        "scheme": environ["wsgi.url_scheme"],
        "remote_addr": environ["REMOTE_ADDR"],
        "remote_host": environ["REMOTE_HOST"],
        "remote_port": environ["REMOTE_PORT"],
        "server_port": environ["SERVER_PORT"],
        "server_name": environ["SERVER_NAME"],
        "server_protocol": environ["SERVER_PROTOCOL"],
        "server_software": environ["SERVER_SOFTWARE"],
        "input_terminated": environ["wsgi.input_terminated"],
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
        "run_once": environ["wsgi.run_once"],
        "version": list(environ["wsgi.version"]),
        "client_disconnected": environ["waitress.client_disconnected"](),
        "headers": {k[5:]: v for k, v in environ.items() if k.startswith("HTTP_")},
        "str_keys": all(type(k) is str for k in environ),
    }
    response = json.dumps(meta).encode("utf8") + b"\r\n\r\n" + body
    start_response(
        "200 OK",
        [("Content-Length", str(len(response))), ("Content-Type", "text/plain")],
    )
    return [response]


def lines(environ, start_response):
    """The body read back line by line (readline/iteration over a spilled body)."""
    inp = environ["wsgi.input"]
    first = inp.readline()
    rest = list(inp)
    out = b"%d %d %d" % (len(first), len(rest), sum(map(len, rest)))
    start_response("200 OK", [("Content-Length", str(len(out)))])
    return [out]
