#!/usr/bin/env python3
"""The architecture rules, checked from src/ (tools/test.sh runs this beside fmt and clippy).

1. The top-level modules import one way: cli -> config -> supervisor -> server -> {http, wsgi},
   with net for bind/privileges; the lower layers never reach up (`DOWN` below lists what each
   may import, by name).
2. Inside a module, no files import each other in a circle (strongly connected components of
   the `super::`/`crate::` paths between sibling files).
3. `wsgi` is the only module that uses pyo3.

Usage: tools/layers.py [SRC_DIR]; prints each violation and exits 1 if there is any.
"""
import os
import re
import sys

# What each top-level module may import (besides itself). A module missing here may import
# nothing of the crate.
DOWN = {
    "main": {"cli"},
    "cli": {"config", "supervisor", "wsgi", "net", "logging", "logbridge"},
    "config": {"http", "wsgi", "logging"},
    "supervisor": {"config", "server", "wsgi", "http", "net", "logging", "logbridge"},
    "server": {"http", "net"},
    "wsgi": {"http", "logbridge"},
    "logging": {"logbridge"},
    "http": set(),
    "net": set(),
    "logbridge": set(),
}


def load(root):
    files = {}
    for d, _, names in os.walk(root):
        for f in names:
            if f.endswith(".rs"):
                p = os.path.relpath(os.path.join(d, f), root)
                with open(os.path.join(d, f), encoding="utf-8") as fh:
                    files[p] = fh.read()
    return files


def module_of(path):
    p = path[:-3]
    if p in ("main", "lib"):
        return p
    if p.endswith("/mod"):
        p = p[:-4]
    return p.replace("/", "::")


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def strip(src):
    src = re.sub(r'"(?:\\.|[^"\\])*"', '""', strip_comments(src))
    return re.sub(r"'(?:\\.|[^'\\])'", "' '", src)  # char literals ('{' would unbalance)


def use_paths(text):
    """`a::{b, c::{d as e}}` -> [[a, b], [a, c, d]]."""
    out = []

    def rec(prefix, s):
        depth, cur, parts = 0, "", []
        for ch in s:
            depth += ch == "{"
            depth -= ch == "}"
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        for part in (x.strip() for x in parts):
            m = re.match(r"([\w:]*?)::\{(.*)\}$", part, re.S)
            if m:
                rec(prefix + [x for x in m.group(1).split("::") if x], m.group(2))
            elif part:
                out.append(prefix + [x for x in part.split(" as ")[0].split("::") if x])

    rec([], text)
    return out


# Test code sits above everything it tests (a test module may use any helper), so only the
# code that ships is checked: `#[cfg(test)]` modules, inline or in their own file, are skipped.
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*([;{])")
PATH_ATTR = re.compile(r'#\[path\s*=\s*"([^"]+)"\]')


def test_files(files):
    """Files compiled only for tests: declared `#[cfg(test)] mod x;` (with or without #[path])."""
    out = set()
    for p, src in files.items():
        s = strip_comments(src)
        for m in TEST_MOD.finditer(s):
            if m.group(2) != ";":
                continue
            attr = PATH_ATTR.search(m.group(0))
            here = os.path.dirname(p)
            if not (p.endswith("mod.rs") or p in ("main.rs", "lib.rs")):
                here = os.path.join(here, os.path.basename(p)[:-3])
            if attr:
                cands = [os.path.join(os.path.dirname(p), attr.group(1))]
            else:
                cands = [os.path.join(here, m.group(1) + ".rs"), os.path.join(here, m.group(1), "mod.rs")]
            out.update(os.path.normpath(c) for c in cands)
    # A test-only file's own children are test-only too.
    return {p for p in files if any(p == t or p.startswith(t[:-3] + "/") for t in out)}


def without_test_blocks(s):
    """Drops inline `#[cfg(test)] mod x { ... }` blocks."""
    while True:
        m = next((m for m in TEST_MOD.finditer(s) if m.group(2) == "{"), None)
        if not m:
            return s
        depth, i = 0, m.end() - 1
        while i < len(s):
            depth += s[i] == "{"
            depth -= s[i] == "}"
            i += 1
            if depth == 0:
                break
        s = s[: m.start()] + s[i:]


def imports(files):
    """Module -> the crate modules its file names."""
    names = {module_of(p) for p in files}
    skip = test_files(files)
    edges = {}
    for p, src in files.items():
        me = module_of(p)
        if p in skip:
            continue
        parent = me.rsplit("::", 1)[0] if "::" in me else ""
        if p.endswith("mod.rs") or me in ("main", "lib"):
            # mod.rs names its own children; main/lib only declare modules.
            parent = me if me not in ("main", "lib") else ""
        s = without_test_blocks(strip(src))
        paths = []
        for m in re.finditer(r"\buse\s+((?:super|crate|self)::[^;]*);", s):
            paths += use_paths(m.group(1))
        for m in re.finditer(r"\b((?:super|crate)(?:::[A-Za-z_]\w*)+)", s):
            paths.append(m.group(1).split("::"))
        if me == "main":
            for m in re.finditer(r"\bwaitressd::(\w+)", s):
                paths.append(["crate", m.group(1)])
        deps = set()
        for path in paths:
            if path[0] == "super":
                base, rest = parent, path[1:]
                while rest and rest[0] == "super":
                    base, rest = (base.rsplit("::", 1)[0] if "::" in base else ""), rest[1:]
            elif path[0] == "crate":
                base, rest = "", path[1:]
            else:
                continue
            acc = base
            for seg in rest:
                acc = f"{acc}::{seg}" if acc else seg
                if acc in names and acc != me:
                    deps.add(acc)
        edges.setdefault(me, set()).update(deps)
    return edges


def cycles(graph):
    index, low, stack, on, found, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    files = load(root)
    edges = imports(files)
    bad = []
    for a, deps in sorted(edges.items()):
        ta = a.split("::")[0]
        for b in sorted(deps):
            tb = b.split("::")[0]
            if ta != tb and ta != "lib" and tb not in DOWN.get(ta, set()):
                bad.append(f"layers: {a} imports {b} ({ta} may import only {sorted(DOWN.get(ta, set()))})")

    def sibling(a, b):
        pa = a.rsplit("::", 1)[0] if "::" in a else None
        return pa is not None and pa == (b.rsplit("::", 1)[0] if "::" in b else None)

    graph = {a: {b for b in deps if sibling(a, b)} for a, deps in edges.items()}
    for comp in cycles(graph):
        inner = [f"{a} -> {b}" for a in comp for b in sorted(graph[a]) if b in comp]
        bad.append(f"cycle between files of one module: {', '.join(comp)} ({'; '.join(inner)})")
    for p, src in sorted(files.items()):
        if not p.startswith("wsgi/") and re.search(r"\bpyo3::", strip(src)):
            bad.append(f"pyo3: src/{p} uses pyo3 (only src/wsgi may)")
    for line in bad:
        print(line)
    if bad:
        print("fix: move the shared item down into the lower file (or a file of its own) so that "
              "every import points one way", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
