"""wsgi.file_wrapper with real files, seekable and non-seekable file-likes
(waitress fixtureapps/filewrapper.py behaviour; the data file is made at import)."""
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
    path = environ["PATH_INFO"]
    if path.startswith("/filelike"):
        f = open(FN, "rb")
    elif path.startswith("/notfilelike_iobase"):
        f = UnseekableIOBase(DATA)
    else:
        f = KindaFilelike(DATA)
    headers = [("Content-Type", "application/octet-stream")]
    if path.endswith("_nocl"):
        pass
    elif path.endswith("_shortcl"):
        headers.append(("Content-Length", "1"))
    elif path.endswith("_longcl"):
        headers.append(("Content-Length", str(len(DATA) + 10)))
    else:
        headers.append(("Content-Length", str(len(DATA))))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 8192)
