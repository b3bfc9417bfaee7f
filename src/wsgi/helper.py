"""waitressd's Python side (module ``_waitressd``): app loading as pserve and waitress-serve do
it, the logging bridge, ``wsgi.errors`` and ``wsgi.file_wrapper`` (the app's standard streams
are stdio.py's).

Only the cold paths live here; the per-request path (environ, start_response, iteration) is Rust.
"""
import contextlib
import faulthandler
import io
import logging
import os
import sys
import threading
import traceback

from _waitressd_stdio import lossy_stdio

logger = logging.getLogger("waitress")


class MissingPasteDeploy(Exception):
    """PasteDeploy is not importable by the interpreter waitressd embeds."""


def _has_loggers_section(path):
    # plaster_pastedeploy's setup_logging: fileConfig only when the file has [loggers].
    import configparser

    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str
    parser.read(path, encoding="utf-8")
    return parser.has_section("loggers")


# True once logging was configured from a file (INI [loggers] or --log-config): waitress's own
# records then go through Python logging.
logging_configured = False


def module_files():
    """The Python files of every imported module outside the standard library (--reload)."""
    import sysconfig

    paths = sysconfig.get_paths()
    stdlib = tuple(os.path.join(paths[k], "") for k in ("stdlib", "platstdlib") if k in paths)
    out = set()
    for m in list(sys.modules.values()):
        f = getattr(m, "__file__", None)
        if not f or not f.endswith(".py"):
            continue
        f = os.path.abspath(f)
        if f.startswith(stdlib) and "site-packages" not in f:
            continue
        if os.path.exists(f):
            out.add(f)
    return sorted(out)


def name_thread(name):
    threading.current_thread().name = name


class LoggingConfigError(Exception):
    """The INI's (or --log-config's) logging sections could not be applied."""


def _file_config(path, defaults):
    global logging_configured
    import logging.config as _logging_config

    try:
        _logging_config.fileConfig(path, defaults, disable_existing_loggers=False)
    except Exception as exc:
        # fileConfig's own errors name neither the file nor the section: a bare KeyError
        # 'formatters' or a FileNotFoundError read as if the app had failed.
        if isinstance(exc, OSError):
            fix = "a log file's directory must exist and be writable by the worker's user"
        else:
            fix = "check the [loggers], [handlers] and [formatters] sections (logging.config.fileConfig's format)"
        raise LoggingConfigError(
            "cannot configure logging from %s: %s: %s; %s" % (path, type(exc).__name__, exc, fix)
        ) from exc
    logging_configured = True


# An app load still running after this many seconds writes its Python stack (every thread)
# to stderr, once: the master reports the worker as not ready at the same moment.
SLOW_LOAD_SECONDS = 10  # supervisor/table.rs SLOW_BOOT_FIRST: the master warns then
# The line before that stack (the master's warning names it).
SLOW_LOAD_HEADER = "Python stack of the app load at %d s (most recent call last):" % SLOW_LOAD_SECONDS


def _stacks_on_crash():
    """From the app load on, a crash (a SIGSEGV in a C extension, an abort) writes every
    thread's Python stack to stderr before the process dies, and the master's log names the
    signal: a crash at import is then a boot failure with its file and line, not a mystery.
    PYTHONFAULTHANDLER does the same in CPython; kept if the user configured it already."""
    if not faulthandler.is_enabled():
        faulthandler.enable(file=2, all_threads=True)


@contextlib.contextmanager
def _stack_if_slow():
    """Shows where an import that hangs (a database, DNS, a lock) is stuck.

    A thread of ours writes the stacks holding the GIL, so the frames it reads stand still.
    faulthandler's dump_traceback_later read them from a thread without the GIL while the load
    ran Python: the worker died of a SIGSEGV in faulthandler's dump_traceback (under valgrind,
    every time). An import blocked in C with the GIL held gets no stack, only the master's
    warning; one blocked on I/O or a lock releases the GIL, as Python code does every 5 ms."""
    _stacks_on_crash()
    loader = threading.get_ident()
    done = threading.Event()

    def dump():
        if done.wait(SLOW_LOAD_SECONDS):
            return
        frames = sys._current_frames()
        me = threading.get_ident()
        names = {t.ident: t.name for t in threading.enumerate()}
        order = [loader] + [i for i in frames if i not in (loader, me)]
        out = [SLOW_LOAD_HEADER + "\n"]
        for ident in order:
            if ident in frames:
                out.append("Thread %s%s:\n" % (names.get(ident, hex(ident)),
                                               " (loading the app)" if ident == loader else ""))
                out.extend(traceback.format_stack(frames[ident]))
        del frames
        try:
            os.write(2, "".join(out).encode("utf-8", "replace"))
        except OSError:
            pass  # stderr gone: the master's warning still says the load is slow

    watcher = threading.Thread(target=dump, name="waitressd-slow-load", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        # Gone before anything forks (preload_app loads in the master).
        watcher.join()


def lingering_threads():
    """The threads Python's exit will wait for, forever: alive, not daemon, not the main one.
    Each as "NAME at FILE:LINE in FUNCTION" (where it is now)."""
    frames = sys._current_frames()
    out = []
    for t in threading.enumerate():
        if t.daemon or t is threading.main_thread() or not t.is_alive():
            continue
        f = frames.get(t.ident)
        where = " at %s:%d in %s" % (f.f_code.co_filename, f.f_lineno, f.f_code.co_name) if f else ""
        out.append(t.name + where)
    return out


def load_ini(path, name, variables, log_config=None):
    """pserve's order: logging from the INI first, then PasteDeploy's loadapp."""
    lossy_stdio()
    path = os.path.abspath(path)
    defaults = {"__file__": path, "here": os.path.dirname(path)}
    defaults.update(variables)
    if log_config:
        log_config = os.path.abspath(log_config)
        _file_config(log_config, {"__file__": log_config, "here": os.path.dirname(log_config)})
    elif _has_loggers_section(path):
        _file_config(path, defaults)
    else:
        logging.basicConfig()
    try:
        from paste.deploy import loadapp
    except ImportError as exc:
        raise MissingPasteDeploy(_missing_message("PasteDeploy", exc)) from None
    with _stack_if_slow():
        app = loadapp("config:" + path, name=name, global_conf=defaults)
    return _check(app, "config:%s#%s" % (path, name))


def _missing_message(dist, exc):
    """Names the fix: which virtualenv, and how to choose another."""
    if sys.prefix == sys.base_prefix:
        return (
            "%s is not installed for python %s (%s) and no virtualenv is in use: point waitressd "
            "at the app's virtualenv with VIRTUAL_ENV=/path/to/venv, --virtualenv or "
            "virtualenv = in [server:main], or install it with %s -m pip install %s"
            % (dist, sys.version.split()[0], exc, sys.executable, dist)
        )
    return (
        "%s is not installed in the virtualenv %s (%s): %s -m pip install %s, or point "
        "waitressd at another virtualenv with --virtualenv or virtualenv = in [server:main]"
        % (dist, sys.prefix, exc, sys.executable, dist)
    )


def module_hint(exc, ini):
    """A hint for an app that cannot be imported, or None. --chdir helps only --app's mode (the
    cwd goes on sys.path as waitress-serve puts it there; pserve, like an INI start, does not)."""
    if isinstance(exc, ModuleNotFoundError):
        where = "the virtualenv " + sys.prefix if sys.prefix != sys.base_prefix else (
            "python " + sys.version.split()[0] + " (no virtualenv: set VIRTUAL_ENV or --virtualenv)")
        fix = "--pythonpath DIR" if ini else "--pythonpath DIR or --chdir DIR"
        return (
            "module %r is not importable from %s; install it there, or add its directory "
            "with %s" % (exc.name, where, fix)
        )
    return None


def load_module(target, call, log_config=None):
    """waitress-serve's order: logging.basicConfig, cwd appended to sys.path, resolve_name."""
    import pkgutil

    lossy_stdio()

    if log_config:
        log_config = os.path.abspath(log_config)
        _file_config(log_config, {"__file__": log_config, "here": os.path.dirname(log_config)})
    else:
        logging.basicConfig()
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    with _stack_if_slow():
        app = pkgutil.resolve_name(target)
        if call:
            app = app()
    return _check(app, target, factory_hint=not call)


def _check(app, what, factory_hint=False):
    if not callable(app):
        raise TypeError("%s did not give a WSGI application: %r is not callable" % (what, app))
    if factory_hint and _is_factory(app):
        raise TypeError(
            "%s is a factory, not a WSGI application (it takes no arguments): call it with "
            "%s() or --call" % (what, what)
        )
    return app


def _is_factory(obj):
    """A function that can be called with no arguments but not with (environ, start_response)."""
    import inspect

    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind()
    except TypeError:
        return False
    try:
        sig.bind({}, None)
    except TypeError:
        return True
    return False


def report_exception(path, exc):
    """waitress's channel: log on logger `waitress`, return the traceback text."""
    logger.error("Exception while serving %s", path, exc_info=exc)
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def report_disconnect(path):
    logger.info("Client disconnected while serving %s", path)


def format_exception(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class ErrorStream(io.TextIOBase):
    """``wsgi.errors``: a text stream whose lines go to the ``wsgi.errors`` logger (level ERROR),
    so an INI's [loggers] setup decides where they end up. Line-buffered per thread.

    A TextIOBase, as waitress's ``sys.stderr`` is, with its attributes (``encoding``,
    ``closed``, ``writable()``, ``fileno()`` of the process's standard error). One stream serves
    every request, so ``close()`` does nothing (waitress's closed ``sys.stderr`` for good)."""

    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self):
        super().__init__()
        self._local = threading.local()
        self._log = logging.getLogger("wsgi.errors")

    def writable(self):
        return True

    def fileno(self):
        return sys.__stderr__.fileno() if sys.__stderr__ is not None else 2

    def close(self):
        pass

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("wsgi.errors.write() argument must be str, not %s" % type(s).__name__)
        buf = getattr(self._local, "buf", "") + s
        *lines, rest = buf.split("\n")
        for line in lines:
            self._log.error("%s", line)
        self._local.buf = rest
        return len(s)

    def writelines(self, seq):
        for s in seq:
            self.write(s)

    def flush(self):
        rest = getattr(self._local, "buf", "")
        if rest:
            self._local.buf = ""
            self._log.error("%s", rest)

    def isatty(self):
        return False


def _is_seekable(fp):
    if hasattr(fp, "seekable"):
        return fp.seekable()
    return hasattr(fp, "seek") and hasattr(fp, "tell")


# A proxy's methods that must all be its `.file`'s own for the proxy to read as that file.
_PROXIED = ("read", "fileno", "seek", "tell")


def _reads_its_fileno(f):
    """Whether ``f.read()`` returns the bytes of ``f.fileno()`` from ``f.tell()``, so sendfile(2)
    may send them instead: a file object of ``open()`` (FileIO, a Buffered* over one, or a
    TextIOWrapper over that), a NamedTemporaryFile, or a pure proxy of one (Django's ``File``:
    its read, fileno, seek and tell are the wrapped file's own). A gzip, bz2 or lzma file is
    not: its fileno() is the compressed file's, its reads are decompressed; nor is any other
    class, which may transform what it reads."""
    for _ in range(8):
        t = type(f)
        if t is io.FileIO:
            return True
        if t in (io.BufferedReader, io.BufferedRandom):
            return type(f.raw) is io.FileIO
        if t is io.TextIOWrapper:
            f = f.buffer
            continue
        if t is getattr(sys.modules.get("tempfile"), "_TemporaryFileWrapper", None):
            # NamedTemporaryFile: every method is its file's, through a call-through wrapper.
            f = f.file
            continue
        inner = getattr(f, "file", None)
        if inner is None or inner is f:
            return False
        try:
            if not all(getattr(f, m) == getattr(inner, m) for m in _PROXIED):
                return False
        except Exception:
            return False
        f = inner
    return False


class FileWrapper:
    """``wsgi.file_wrapper``: waitress's ReadOnlyFileBasedBuffer. Returned as the app_iter, a
    seekable real file is sent by the event loop with sendfile(2); anything else is iterated in
    ``block_size`` reads."""

    def __init__(self, file, block_size=32768):
        self.file = file
        self.block_size = block_size
        # waitress 2.1.0+: middleware may seek (e.g. for Range requests).
        if _is_seekable(file):
            if hasattr(file, "seekable"):
                self.seekable = file.seekable
            self.seek = file.seek
            self.tell = file.tell

    def prepare(self, size=None):
        """Bytes from the current position to EOF (capped at ``size``), 0 when not seekable
        or positioned at or past the end (waitress sent a negative Content-Length then)."""
        if not _is_seekable(self.file):
            return 0
        start = self.file.tell()
        self.file.seek(0, 2)
        end = self.file.tell()
        self.file.seek(start)
        remain = max(end - start, 0)
        return remain if size is None else min(remain, size)

    def fileno_at(self):
        """(fd, offset) when the file's reads are its OS file's bytes, else None."""
        if not _reads_its_fileno(self.file):
            return None
        try:
            fd = self.file.fileno()
        except Exception:
            return None
        if not isinstance(fd, int) or fd < 0:
            return None
        return fd, self.file.tell()

    def __iter__(self):
        return self

    def __next__(self):
        val = self.file.read(self.block_size)
        if not val:
            raise StopIteration
        return val

    def close(self):
        if hasattr(self.file, "close"):
            self.file.close()
