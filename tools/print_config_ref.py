"""Reference for `waitressd --print-config`: what waitress 3.0.2 + PasteDeploy 3.1.0 make of
an INI file's server section, as the same JSON shape (or the error waitress raises).

Usage: .venv/bin/python tools/print_config_ref.py FILE.ini [-s SERVER_NAME] [NAME=VALUE ...]
   or: .venv/bin/python tools/print_config_ref.py --serve-args WAITRESS-SERVE-FLAGS...
       (the flags as waitress-serve parses them, without an app)
   or: .venv/bin/python tools/print_config_ref.py --batch  (stdin: one JSON array of arguments
       per line; stdout: one JSON result per line)
Needs pastedeploy and waitress. Nothing is bound and no app is loaded: it builds the server
context exactly as `loadserver` does, then `Adjustments(**local_conf)` as `serve_paste` would.
Prints {"ok": {...}} or {"error": "ExceptionType: message"}. waitressd's own keys (workers, ...)
are removed before Adjustments and not printed: only waitress's keys are compared.
"""
import json
import os
import socket
import sys
import warnings

from paste.deploy.loadwsgi import SERVER, loadcontext
import waitress
from waitress.adjustments import Adjustments

# serve()/create_server() take these before Adjustments sees them.
PRIVATE = ("_server", "_quiet", "_profile", "map", "_start", "_sock", "_dispatcher")
WAITRESSD_KEYS = ("workers", "preload_app", "user", "group", "umask", "pidfile",
                  "graceful_timeout", "virtualenv", "access_log")


def addr(sockinfo):
    family, _, _, sockaddr = sockinfo
    if family == socket.AF_INET6:
        host, port, _, scope = sockaddr
        host = host.split("%", 1)[0]
        return f"[{host}%{scope}]:{port}" if scope else f"[{host}]:{port}"
    return f"{sockaddr[0]}:{sockaddr[1]}"


def reference(path, server_name, global_conf):
    ctx = loadcontext(SERVER, "config:" + os.path.abspath(path), name=server_name,
                      global_conf=global_conf or None)
    if ctx.object is not waitress.serve_paste or ctx.protocol != "paste.server_runner":
        raise LookupError(f"server is {ctx.object!r} ({ctx.protocol}), not waitress's runner")
    return adjustments_json(dict(ctx.local_conf))


def serve_args(argv):
    """waitress-serve: getopt over the flags, then Adjustments(**kw) (runner.py)."""
    kw, args = Adjustments.parse_args(argv)
    if args:
        raise ValueError(f"positional arguments {args!r}")
    del kw["help"], kw["call"]
    return adjustments_json(kw)


def adjustments_json(kw):
    for k in PRIVATE + WAITRESSD_KEYS:
        kw.pop(k, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adj = Adjustments(**kw)
    out = {}
    for name, _ in Adjustments._params:
        if name in ("host", "port"):
            continue
        v = getattr(adj, name)
        if name == "listen":
            v = [] if adj.unix_socket else [addr(s) for s in v]
        elif name == "trusted_proxy_headers":
            v = sorted(v)
        elif name == "unix_socket":
            v = v or None
        elif name == "sockets":
            v = []
        out[name] = v
    return out


def main(argv):
    if argv[:1] == ["--serve-args"]:
        try:
            return {"ok": serve_args(argv[1:])}
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}"}
    path, server_name, global_conf = None, "main", {}
    it = iter(argv)
    for a in it:
        if a == "-s":
            server_name = next(it)
        elif "=" in a and path is not None:
            k, v = a.split("=", 1)
            global_conf[k] = v
        else:
            path = a
    try:
        return {"ok": reference(path, server_name, global_conf)}
    except Exception as e:  # every failure is a rejection
        return {"error": f"{type(e).__name__}: {e}"}


if __name__ == "__main__":
    if sys.argv[1:] == ["--batch"]:
        for line in sys.stdin:
            print(json.dumps(main(json.loads(line))), flush=True)
    else:
        print(json.dumps(main(sys.argv[1:])))
