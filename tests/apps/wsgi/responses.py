"""Length rules (waitress fixtureapps badcl.py, nocl.py, writecb.py), one app by prefix."""


def chunks(body, n):
    for i in range(0, len(body), n):
        yield body[i : i + n]


def app(environ, start_response):
    kind, _, path = environ["PATH_INFO"][1:].partition("/")
    path = "/" + path
    if kind == "status":
        # /status/<code>: the app's own status line, whatever it is (an interim 1xx too).
        start_response(path[1:] + " From The App", [("Content-Length", "5")])
        return [b"hello"]
    if kind == "header":
        # /header/<case>: a header no recipient should have to read.
        header = {
            "/te-space": ("Transfer-Encoding ", "chunked"),
            "/cl-tab": ("Content-Length\t", "3"),
            "/space-name": ("X A", "c"),
            "/empty-name": ("", "c"),
            "/colon-name": ("X-A: b", "c"),
            "/nul-value": ("X-A", "a\x00b"),
            "/del-value": ("X-A", "a\x7fb"),
            "/ok": ("X-A", "a\tb c"),
        }[path]
        start_response("200 OK", [header, ("Content-Length", "10")])
        return [b"0123456789"]
    if kind == "badcl":
        body = b"abcdefghi"
        cl = len(body)
        if path == "/short_body":
            cl += 1
        if path == "/long_body":
            cl -= 1
        start_response("200 OK", [("Content-Length", str(cl)), ("Content-Type", "text/plain")])
        return [body]
    if kind == "nocl":
        cl = environ.get("CONTENT_LENGTH")
        body = environ["wsgi.input"].read(int(cl) if cl is not None else None)
        start_response("200 OK", [("Content-Type", "text/plain")])
        if path == "/list":
            return [body]
        if path == "/list_lentwo":
            return [body[0:1], body[1:]]
        return chunks(body, 10)
    if kind == "writecb":
        headers = [] if path == "/no_content_length" else [("Content-Length", "9")]
        write = start_response("200 OK", headers)
        if path == "/long_body":
            write(b"abcdefghij")
        elif path == "/short_body":
            write(b"abcdefgh")
        else:
            write(b"abcdefghi")
        return []
    if kind == "cl":
        # Lengths as waitress reads them: int() (so "1_0" is 10), the last header winning.
        headers = {
            "/underscore": [("Content-Length", "1_0")],
            "/twice": [("Content-Length", "5"), ("Content-Length", " +10 ")],
        }[path]
        start_response("200 OK", headers)
        return chunks(b"abcdefghij", 5)
    if kind == "bare":
        # bytes returned instead of a list of bytes: iterating it gives ints.
        start_response("200 OK", [("Content-Type", "text/plain")])
        # waitress takes len() of the first item even when it is falsy (a NUL byte, None).
        return {"/": b"oops", "/nul": b"\x00", "/none": [None, b"x"]}[path]
    if kind == "views":
        # memoryview body items and write() arguments: waitress writes them as bytes.
        if path == "/write":
            write = start_response("200 OK", [("Content-Length", "10")])
            write(memoryview(b"hello"))
            return [memoryview(b"world")]
        start_response("200 OK", [])
        return [memoryview(b"helloworld")]
    if kind == "pairs":
        # Headers as two-item lists: waitress unpacks them with `for k, v in headers`.
        if path == "/triple":
            start_response("200 OK", [["X-Pair", "v", "w"]])
            return [b"no"]
        start_response("200 OK", [["Content-Type", "text/plain"], ["X-Pair", "v"]])
        return [b"ok"]
    if kind == "pieces":
        # A Content-Length body in several pieces the app hands over without pausing (a list,
        # write() then a list, a file wrapper over a non-file): the last piece completes it.
        write = start_response("200 OK", [("Content-Length", "10")])
        if path == "/list":
            return [b"hello", b"world"]
        if path == "/write":
            write(b"hello")
            return [b"world"]
        import io

        return environ["wsgi.file_wrapper"](io.BytesIO(b"helloworld"), 3)
    start_response("404 Not Found", [("Content-Length", "0")])
    return []
