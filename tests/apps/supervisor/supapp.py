"""Fixture app for tests/it/supervisor.rs: answers `PID NAME RUID,EUID,SUID`.

`name` comes from the INI's [app:main] (so a reload's new config is visible); `/sleep?S`
sleeps S seconds (default 2) before answering; `/leak?MB` keeps MB more megabytes (touched) for
the worker's life; `/spin?S` busy-loops in Python for S seconds. `boot_delay = S` in [app:main] makes loading
the app take S seconds (a slow boot, to catch the master in the middle of a reload).
"""
import os
import time


kept = []


def make_app(global_conf, name="one", boot_delay="0", **local_conf):
    time.sleep(float(boot_delay))

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/leak":
            kept.append(b"x" * (int(environ.get("QUERY_STRING") or 10) << 20))
        if environ.get("PATH_INFO") == "/spin":
            end = time.monotonic() + float(environ.get("QUERY_STRING") or 2)
            while time.monotonic() < end:
                pass
        if environ.get("PATH_INFO") == "/sleep":
            time.sleep(float(environ.get("QUERY_STRING") or 2))
        ids = ",".join(str(i) for i in os.getresuid())
        body = f"{os.getpid()} {name} {ids}".encode()
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app


app = make_app({})
