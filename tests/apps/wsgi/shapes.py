"""Response shapes for the shape matrix (tests/it/wsgi/shapes.rs): GET /<cl|none>/<shape>.

Every body is derived from the route alone: item k of a shape is `piece(shape, k, size)`, the
text "<shape>.<k>|" repeated and cut to `size` bytes (the test computes the same bytes).
`cl` sets a correct Content-Length; `none` sets none.
"""
import io
import tempfile
import time

# shape -> item sizes (a 0 is an empty item).
SIZES = {
    "one": [100],
    "list2": [3, 4],
    "list50": [10] * 50,
    "empties": [0, 5, 0, 0, 7, 0],
    "gen": [5, 6, 7, 8],
    "gen_sleep": [5, 6, 7, 8],
    "write_list": [9, 11, 4],
    "write_only": [6, 8],
    "wrapper_file": [70000],
    "wrapper_bytesio": [5000],
    "empty": [],
    "big": [70000, 70001, 70002],
}


def piece(shape, k, size):
    unit = f"{shape}.{k}|".encode()
    return (unit * (size // len(unit) + 1))[:size]


def app(environ, start_response):
    _, framing, shape = environ["PATH_INFO"].split("/", 2)
    if shape not in SIZES:
        start_response("404 Not Found", [("Content-Length", "0")])
        return []
    items = [piece(shape, k, n) for k, n in enumerate(SIZES[shape])]
    headers = [("Content-Type", "application/octet-stream")]
    if framing == "cl":
        headers.append(("Content-Length", str(sum(map(len, items)))))
    write = start_response("200 OK", headers)
    if shape in ("gen", "gen_sleep"):
        return generate(items, 0.002 if shape == "gen_sleep" else 0)
    if shape == "write_list":
        write(items[0])
        return items[1:]
    if shape == "write_only":
        for item in items:
            write(item)
        return []
    if shape == "wrapper_file":
        f = tempfile.TemporaryFile()
        f.write(items[0])
        f.seek(0)
        return environ["wsgi.file_wrapper"](f, 8192)
    if shape == "wrapper_bytesio":
        return environ["wsgi.file_wrapper"](io.BytesIO(items[0]), 1024)
    return items


def generate(items, pause):
    for item in items:
        if pause:
            time.sleep(pause)
        yield item
