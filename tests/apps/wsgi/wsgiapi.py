"""What the WSGI differential probe against waitress 3.0.2 found apps can do: falsy write()
arguments and body items, a seekable wsgi.input, wsgi.errors as a text stream, a file_wrapper
over a file positioned past its end, a file_wrapper over a decompressing file (gzip, bz2, lzma)
or a proxy of a real file (Django's File). One app, by the first path segment."""
import bz2
import gzip
import io
import json
import lzma
import os
import tempfile

# What /decompressed/<codec> sends: compressible, so the file on disk is far shorter.
PLAIN = b"".join(b"line %05d of the decompressed body\n" % i for i in range(3000))


class FileProxy:
    """A file-like that hands out its file's own methods, as Django's File does."""

    def __init__(self, file):
        self.file = file

    read = property(lambda self: self.file.read)
    fileno = property(lambda self: self.file.fileno)
    seek = property(lambda self: self.file.seek)
    tell = property(lambda self: self.file.tell)
    close = property(lambda self: self.file.close)


def _ops(environ, ops):
    """Evaluates each `|`-separated expression on `inp` (wsgi.input); repr of each result."""
    inp = environ["wsgi.input"]
    out = []
    for op in ops.split("|"):
        try:
            out.append(repr(eval(op, {"inp": inp, "io": io})))
        except Exception as e:
            out.append("%s: %s" % (type(e).__name__, e))
    return out


def app(environ, start_response):
    kind, _, rest = environ["PATH_INFO"][1:].partition("/")
    if kind == "falsy-write":
        # waitress's write() sends nothing for a falsy argument ("", None, 0, []) after
        # putting the head out; the rest of the body follows.
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")
        for v in ("", None, 0, False, []):
            write(v)
        write(b"b")
        return [b"c"]
    if kind == "falsy-item":
        # waitress takes len() of the first item: a one-item [""] is Content-Length 0, and
        # a first item without a length (None) fails before the head goes out (a 500).
        start_response("200 OK", [("Content-Type", "text/plain")])
        return {"empty-str": [""], "none": [None], "empty-then": ["", b"x"]}[rest]
    if kind == "input":
        ops = environ["QUERY_STRING"].replace("%20", " ")
        body = json.dumps(_ops(environ, ops)).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if kind == "errors":
        # Used as the text stream waitress's sys.stderr is (logging.StreamHandler, print).
        e = environ["wsgi.errors"]
        res = []
        for op in ("e.encoding", "e.closed", "e.writable()", "isinstance(e, io.TextIOBase)",
                   "e.fileno() >= 0", "print('from print', file=e)", "e.flush()"):
            try:
                res.append(repr(eval(op, {"e": e, "io": io})))
            except Exception as ex:
                res.append("%s: %s" % (type(ex).__name__, ex))
        body = json.dumps(res).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if kind == "past-end":
        # A file positioned past its end (a Range middleware's bad arithmetic): nothing to send.
        f = open(environ["HTTP_X_FILE"], "rb")
        f.seek(1000)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f)
    if kind == "file":
        # A download (Django's FileResponse(open(path, "rb"))): a real file, sent with sendfile.
        f = open(environ["HTTP_X_FILE"], "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(os.path.getsize(environ["HTTP_X_FILE"])))])
        return environ["wsgi.file_wrapper"](f)
    if kind == "write-then-file":
        # Body bytes through write() (the head goes out, chunked), then a file_wrapper.
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        write(b"prefix;")
        return environ["wsgi.file_wrapper"](open(environ["HTTP_X_FILE"], "rb"))
    if kind == "decompressed":
        # Django's FileResponse(gzip.open(path)): Content-Length from seek/tell (the
        # decompressed size), the file object to wsgi.file_wrapper; its fileno() is the
        # compressed file's.
        codec = {"gzip": gzip, "bz2": bz2, "lzma": lzma, "plain": io, "proxy": io, "named": io}[rest]
        fd, path = tempfile.mkstemp(prefix="waitressd-decompressed-")
        os.close(fd)
        with codec.open(path, "wb") as w:
            w.write(PLAIN)
        f = codec.open(path, "rb")
        os.unlink(path)
        if rest == "named":
            f.close()
            f = tempfile.NamedTemporaryFile()
            f.write(PLAIN)
            f.seek(0)
        if rest == "proxy":
            f = FileProxy(f)
        f.seek(0, 2)
        size = f.tell()
        f.seek(0)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such probe"]
