"""wsgi.file_wrapper with real files, seekable and non-seekable file-likes (waitress
fixtureapps/filewrapper.py behaviour; the data file is made at import).

Path `/<kind>/<cl>`: kind is `file` (a real file, sendfile), `file_at_100` (the same, positioned
at byte 100), `bytesio` (seekable, not a real file), `kinda` (only `read`), `iobase` (an io
object that says it is not seekable); cl is `exact`, `short`, `long` or `nocl` (the app's
Content-Length). Used by the wsgi unit tests (include_str!) and the integration tests.
"""
import io
import os
import tempfile

DATA = bytes(range(256)) * 300  # 76800 bytes, several sendfile/read blocks
_fd, FN = tempfile.mkstemp(prefix="waitressd-filewrapper-")
os.write(_fd, DATA)
os.close(_fd)


class KindaFilelike:
    def __init__(self, data):
        self.data = data

    def read(self, n):
        out, self.data = self.data[:n], self.data[n:]
        return out


class UnseekableIOBase(io.RawIOBase):
    def __init__(self, data):
        self.buf = io.BytesIO(data)

    def readable(self):
        return True

    def seekable(self):
        return False

    def read(self, n):
        return self.buf.read(n)


def app(environ, start_response):
    kind, _, cl = environ["PATH_INFO"][1:].partition("/")
    if kind == "file":
        f = open(FN, "rb")
    elif kind == "file_at_100":
        f = open(FN, "rb")
        f.seek(100)
    elif kind == "bytesio":
        f = io.BytesIO(DATA)
    elif kind == "kinda":
        f = KindaFilelike(DATA)
    else:
        f = UnseekableIOBase(DATA)
    headers = [("Content-Type", "application/octet-stream")]
    if cl == "exact":
        headers.append(("Content-Length", str(len(DATA))))
    elif cl == "short":
        headers.append(("Content-Length", "1"))
    elif cl == "long":
        headers.append(("Content-Length", str(len(DATA) + 10)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 8192)
