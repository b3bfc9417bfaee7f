"""Errors before/after start_response, after the write callable, inside a generator
(waitress fixtureapps/error.py behaviour)."""


def app(environ, start_response):
    cl = environ.get("CONTENT_LENGTH", None)
    body = environ["wsgi.input"].read(int(cl) if cl is not None else None)
    cl = str(len(body))
    path = environ["PATH_INFO"]
    if path == "/before_start_response":
        raise ValueError("wrong \u20ac")
    if path == "/in_generator_after_bytes":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def bar():
            yield b"partial"
            raise ValueError("late")

        return bar()
    write = start_response("200 OK", [("Content-Length", cl), ("Content-Type", "text/plain")])
    if path == "/after_write_cb":
        write("abc")
    if path == "/in_generator":

        def foo():
            yield "abc"
            raise ValueError

        return foo()
    raise ValueError("wrong")
