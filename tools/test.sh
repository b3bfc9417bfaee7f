#!/usr/bin/env bash
# The README's test command: builds the test virtualenv, then lints and runs every test.
# Works on a fresh machine with Rust, gcc and CPython 3.11 (nothing else installed by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
# Build against the base interpreter even when a venv is active (its libpython is the one the
# binary links and rpaths; see shared notes on embedding CPython).
PYO3_PYTHON="${PYO3_PYTHON:-$(python3 -c 'import sys; print(sys._base_executable)')}"
export PYO3_PYTHON
# Real peers the edge tests use (TLS certificates made by openssl, HAProxy in front).
if ! command -v haproxy >/dev/null || ! command -v openssl >/dev/null; then
    (apt-get install -y haproxy openssl || (apt-get update && apt-get install -y haproxy openssl)) >/dev/null
fi
WAITRESSD_TEST_VENV="$(tools/venv.sh)"
export WAITRESSD_TEST_VENV
unset VIRTUAL_ENV
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets "$@"
# waitress 3.0.2's own functional suite, pointed at the waitressd binary (strict xfails only for
# the deliberate differences listed in the README).
cargo build --quiet
tools/waitress-functional.sh
# The benchmark harness, every row and server for a second each on the debug build (checks that
# the harness and every peer run; no speed is asserted).
bench/run.sh --smoke --debug >/dev/null
