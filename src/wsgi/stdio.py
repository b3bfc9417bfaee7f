"""waitressd's app-facing standard streams (module ``_waitressd_stdio``): ``sys.stdout`` and
``sys.stderr`` that drop what cannot be written instead of raising into the app."""
import io
import os
import sys


class _LossyFd(io.RawIOBase):
    """The raw layer of the app's ``sys.stdout``/``sys.stderr``: writes to fd 1 or 2 and drops
    the bytes when the write fails (a full disk under error_log, a closed pipe, a descriptor
    gone). CPython's own FileIO raises, and an app's ``print(..., file=sys.stderr)`` then turned
    its request into a 500: losing a log line is better than failing the request."""

    def __init__(self, fd, name):
        super().__init__()
        self._fd = fd
        self.name = name
        self.mode = "wb"

    def fileno(self):
        return self._fd  # faulthandler, subprocess and os.write(sys.stderr.fileno()) still work

    def writable(self):
        return True

    def isatty(self):
        try:
            return os.isatty(self._fd)
        except OSError:
            return False

    def write(self, b):
        try:
            return os.write(self._fd, b)
        except BlockingIOError:
            raise  # BufferedWriter keeps the bytes and retries
        except OSError:
            return len(memoryview(b))


def _raw_of(stream):
    """The raw layer under a text stream: its buffer's raw, or the buffer itself when
    unbuffered."""
    buffer = getattr(stream, "buffer", None)
    return getattr(buffer, "raw", buffer)


def lossy_stdio():
    """sys.stdout and sys.stderr (and their __std*__) on _LossyFd, keeping CPython's encoding,
    errors and buffering (stderr: backslashreplace, line-buffered; none under
    PYTHONUNBUFFERED). Run before logging is set up, so basicConfig's and fileConfig's
    StreamHandlers hold the new stream. Idempotent."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        if old is None or isinstance(_raw_of(old), _LossyFd):
            continue  # none to replace, or ours already
        try:
            if old.fileno() != fd:
                continue  # the embedding (or the user) put another stream there: keep it
            old.flush()
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass
        raw = _LossyFd(fd, "<%s>" % name)
        # PYTHONUNBUFFERED (-u): CPython's stream has no BufferedWriter; neither has ours.
        unbuffered = isinstance(getattr(old, "buffer", None), io.RawIOBase)
        new = io.TextIOWrapper(
            raw if unbuffered else io.BufferedWriter(raw),
            encoding=getattr(old, "encoding", None) or "utf-8",
            errors=getattr(old, "errors", None) or "backslashreplace",
            line_buffering=getattr(old, "line_buffering", name == "stderr"),
            write_through=getattr(old, "write_through", False),
        )
        if getattr(sys, "__%s__" % name) is old:
            setattr(sys, "__%s__" % name, new)
        setattr(sys, name, new)
