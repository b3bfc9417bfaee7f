#!/usr/bin/env bash
# The README's run command: builds waitressd (release) and serves the bundled example app from
# its PasteDeploy INI file on http://127.0.0.1:6543 until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
PYO3_PYTHON="${PYO3_PYTHON:-$(python3 -c 'import sys; print(sys._base_executable)')}"
export PYO3_PYTHON
VIRTUAL_ENV="$(tools/venv.sh)"
export VIRTUAL_ENV
cargo build --release --quiet
exec target/release/waitressd --config example/production.ini "$@"
