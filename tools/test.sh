#!/usr/bin/env bash
# The README's test command: builds the test virtualenv, then lints and runs every test.
# Works on a fresh machine with Rust, gcc and CPython 3.11 (nothing else installed by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
# Build against the base interpreter even when a venv is active (its libpython is the one the
# binary links and rpaths; see shared notes on embedding CPython).
PYO3_PYTHON="${PYO3_PYTHON:-$(python3 -c 'import sys; print(sys._base_executable)')}"
export PYO3_PYTHON
# Real peers the edge tests use (TLS certificates made by openssl, HAProxy and nginx in front).
if ! command -v haproxy >/dev/null || ! command -v openssl >/dev/null || ! command -v nginx >/dev/null \
    || [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
    pkgs="haproxy openssl nginx-light libnginx-mod-stream"
    (apt-get install -y $pkgs || (apt-get update && apt-get install -y $pkgs)) >/dev/null
fi
WAITRESSD_TEST_VENV="$(tools/venv.sh)"
export WAITRESSD_TEST_VENV
unset VIRTUAL_ENV
# Tools the tests use, installed once (CI runs as root on a fresh machine).
if [ "$(id -u)" = 0 ] && ! command -v mandoc >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mandoc >/dev/null
fi
cargo fmt --check
# The architecture: layers import one way, no files of a module import each other in a circle,
# pyo3 only in src/wsgi.
python3 tools/layers.py
# No dependency the code does not use (the README's table is checked by a test).
command -v cargo-machete >/dev/null || cargo install --locked --quiet cargo-machete
cargo machete
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets "$@"
# waitress 3.0.2's own functional suite, pointed at the waitressd binary (strict xfails only for
# the deliberate differences listed in the README).
cargo build --quiet
tools/waitress-functional.sh
# The benchmark harness, every row and server for a second each on the debug build (checks that
# the harness and every peer run; no speed is asserted).
bench/run.sh --smoke --debug >/dev/null
# The Debian package (built on Debian's python3.11): dpkg, init script, logrotate and purge on
# this machine, then under a real systemd in a booted Debian 12 container. Root only.
if [ "$(id -u)" = 0 ]; then
    tools/deb-test.sh
    tools/systemd-test.sh
fi
