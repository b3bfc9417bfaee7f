#!/usr/bin/env bash
# tools/waitress-functional.sh [PYTEST ARGS...]: waitress 3.0.2's own functional test suite
# (tests/test_functional.py from the PyPI sdist), pointed at the waitressd binary.
#
# Every test class's fixture app is served by `waitressd --app tests.fixtureapps.X:app` with the
# settings the test passes (tools/waitress_functional/plugin.py translates them to flags), over
# TCP on 127.0.0.1 and over a unix socket, exactly as waitress's own subprocess server would.
# It runs twice: as published, and with --add-host (a Host header added to the suite's HTTP/1.1
# requests lacking one, which waitressd rejects with 400 by design, so the tests behind that
# still check something). Tests that fail only because of a deliberate difference from waitress
# (README) are strict xfails, each with its reason (tools/waitress_functional/xfails.py);
# anything else failing is a bug.
#
# Idempotent: the sdist and a small venv (pytest + waitress, which the tests import) are cached
# under $WAITRESS_FUNCTIONAL_CACHE (default target/waitress-functional). Only PyPI is used.
# Env: WAITRESSD_BIN (default target/debug/waitressd, built if missing),
#      WAITRESSD_TEST_VENV (the venv waitressd's embedded Python uses; default tools/venv.sh).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${WAITRESS_FUNCTIONAL_CACHE:-$repo/target/waitress-functional}"
version=3.0.2
pytest_pin="pytest==9.2.0"
mkdir -p "$cache"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# The venv the daemon's embedded Python runs in (fixture apps need only the stdlib).
venv="${WAITRESSD_TEST_VENV:-$("$repo/tools/venv.sh")}"

# 1. The sdist, unpacked once.
src="$cache/waitress-$version"
if [[ ! -f "$src/tests/test_functional.py" ]]; then
    rm -rf "$src" "$cache/dl"
    "$venv/bin/python" -m pip download -q "waitress==$version" --no-binary :all: --no-deps \
        -d "$cache/dl" >&2
    tar -xzf "$cache/dl/waitress-$version.tar.gz" -C "$cache"
fi

# 2. The runner venv: the test venv itself if it has pytest, else a cached one with pytest and
#    the same waitress (the test module imports waitress.server, waitress.utilities).
if "$venv/bin/python" -c 'import pytest, waitress' 2>/dev/null; then
    runner="$venv"
else
    runner="$cache/venv"
    stamp="$runner/.stamp"
    want="$pytest_pin waitress==$version"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        base="$("$venv/bin/python" -c 'import sys; print(sys._base_executable)')"
        [[ -x "$runner/bin/python" ]] || "$base" -m venv "$runner" >&2
        # shellcheck disable=SC2086
        "$runner/bin/python" -m pip install -q $want >&2
        echo "$want" > "$stamp"
    fi
fi

# 3. The binary under test.
bin="${WAITRESSD_BIN:-$repo/target/debug/waitressd}"
if [[ ! -x "$bin" ]]; then
    (cd "$repo" && cargo build --quiet >&2)
fi
export WAITRESSD_BIN="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
export WAITRESSD_FUNCTIONAL_VENV="$venv"
export WAITRESSD_FUNCTIONAL_LOGS="$cache/logs"
rm -rf "$WAITRESSD_FUNCTIONAL_LOGS"
mkdir -p "$WAITRESSD_FUNCTIONAL_LOGS"

# 4. Run from the sdist root (so `tests.fixtureapps` imports, in pytest and in the daemon).
cd "$src"
unset VIRTUAL_ENV
export PYTHONPATH="$repo/tools${PYTHONPATH:+:$PYTHONPATH}"
run() {
    "$runner/bin/python" -m pytest -p waitress_functional.plugin -p no:cacheprovider \
        -o addopts= -q -rxXfE "tests/test_functional.py" "$@"
}
# Pass 1: the suite exactly as published. Pass 2: the same with a Host header added to its
# HTTP/1.1 requests that lack one, so the tests that pass 1 xfails on the missing Host still
# check what they were written for.
status=0
echo "== waitress $version functional tests vs $WAITRESSD_BIN (as published)" >&2
run "$@" || status=$?
echo "== waitress $version functional tests vs $WAITRESSD_BIN (--add-host)" >&2
run --add-host "$@" || status=$?
exit "$status"
