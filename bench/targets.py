"""Issue 12's targets, judged from one bench/run.sh run: for each target whose servers were
measured in the run, the figures, the target and met / NOT MET. The figures are the table's
medians; the ratios, as in the tables, are the medians of the ratios taken within each round
(with --rounds they can differ from the ratio of the two medians). Nothing here measures."""

DEFAULT = "waitressd"


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def _ok(cond):
    return "met" if cond else "NOT MET"


def _cpu(done, key, server):
    r = done.get(key, {}).get("res", {}).get(server, {})
    return r.get("cpu_us")


def _ratio(done, key, peer, which):
    """waitressd / peer in row `key`: which 0 = req/s, 1 = CPU per request (None if unmeasured)."""
    r = done.get(key, {}).get("ratios", {}).get(peer)
    return None if r is None or r[which] != r[which] else r[which]


def lines(done):
    """The verdict lines for the rows in `done` (key -> {"res", "ratios", "rounds", "plain"})."""
    out = []
    for key, label in (("hello1", "hello C=1"), ("hello16", "hello C=16"), ("hello64", "hello C=64")):
        for peer, target, what in (("bjoern", 0.9, "<= 0.90 x bjoern"),
                                   ("ref", 1.4, "<= 1.40 x the no-Python reference")):
            cr = _ratio(done, key, peer, 1)
            if cr is not None:
                out.append(f"{label}: CPU/request {_cpu(done, key, DEFAULT):.1f} vs {peer} "
                           f"{_cpu(done, key, peer):.1f} us; ratio {cr:.2f} x (target {what}): "
                           f"{_ok(cr <= target)}")
        cr = _ratio(done, key, "waitressd-t1", 1)
        if cr is not None:
            out.append(f"{label}: threads=4 / threads=1 CPU {cr:.2f} x (target <= 1.05 x): {_ok(cr <= 1.05)}")
    flask = done.get("flask")
    hello = _cpu(done, "hello16", DEFAULT)
    if flask and flask.get("plain") and hello is not None:
        shares = [got[DEFAULT]["cpu_us"] - base for got, base in zip(flask["rounds"], flask["plain"])
                  if DEFAULT in got and "cpu_us" in got[DEFAULT] and base == base]
        if shares:
            share = _median(shares)
            out.append(f"Flask C=16: server's share {share:.1f} us/request vs hello C=16's whole "
                       f"{hello:.1f} (target <=): {_ok(share <= hello)}")
    for key, label, peer, target in (("big", "64 KiB C=16", "nginx", 1.1),
                                     ("upload", "POST 1 MiB C=16", "granian", 1.5),
                                     ("stream", "100x1 KiB stream C=16", "granian", 2.0)):
        rr = _ratio(done, key, peer, 0)
        if rr is not None:
            out.append(f"{label}: req/s {rr:.2f} x {peer} (target >= {target:.2f} x): {_ok(rr >= target)}")
    s = done.get("stream", {}).get("res", {}).get(DEFAULT, {})
    if s.get("p50") and s.get("p99") == s.get("p99"):
        q = s["p99"] / s["p50"]
        out.append(f"100x1 KiB stream C=16: p99/p50 {s['p99']:.2f}/{s['p50']:.2f} ms = {q:.1f} "
                   f"(target <= 5): {_ok(q <= 5)}")
    i = done.get("idle", {}).get("res", {}).get(DEFAULT) or {}
    if "per_conn" in i:
        out.append(f"idle keep-alive: {i['per_conn']:.0f} B/connection (target <= 1024): "
                   f"{_ok(i['per_conn'] <= 1024)}; fresh request {i['fresh_ms']:.2f} ms "
                   f"(target < 10): {_ok(i['fresh_ms'] < 10)}")
    cr = _ratio(done, "log", "waitressd-log", 1)
    if cr:
        extra = 1 / cr - 1
        out.append(f"access log on: {extra * 100:+.1f} % CPU/request (target <= +10 %): {_ok(extra <= 0.10)}")
    return out
