#!/usr/bin/env bash
# Runs waitress 3.0.2's own functional test suite (tests/test_functional.py from its sdist,
# fetched through pip from the package registry, never committed here) against the waitressd
# binary instead of a forked waitress server; prints pytest's pass/fail list.
#
# Usage: tests/apps/waitress_suite/run.sh [pytest args...]
# Env: WAITRESSD_BIN (default target/debug/waitressd, built if missing),
#      WAITRESSD_SUITE_DIR (where the sdist is unpacked, default target/waitress-suite),
#      WAITRESSD_SUITE_ADD_HOST (default 1: add `Host:` to the suite's Host-less HTTP/1.1
#      requests, which waitressd deliberately answers 400, to compare everything else; the
#      tests of other deliberate differences are then expected failures. 0: the suite as is).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="$("$repo/tools/venv.sh")"
work="${WAITRESSD_SUITE_DIR:-$repo/target/waitress-suite}"
src="$work/waitress-3.0.2"
if [[ ! -f "$src/tests/test_functional.py" ]]; then
    mkdir -p "$work"
    "$venv/bin/python" -m pip download -q --no-deps --no-binary :all: waitress==3.0.2 -d "$work"
    tar xzf "$work/waitress-3.0.2.tar.gz" -C "$work"
fi
bin="${WAITRESSD_BIN:-$repo/target/debug/waitressd}"
if [[ ! -x "$bin" ]]; then
    (cd "$repo" && cargo build --quiet)
fi
cd "$src"
export WAITRESSD_BIN="$bin" VIRTUAL_ENV="$venv" PYTHONPATH="$here"
exec "$venv/bin/python" -m pytest -p waitressd_suite tests/test_functional.py -q -rA \
    -p no:cacheprovider -o addopts= "$@"
