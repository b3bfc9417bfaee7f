#!/usr/bin/env bash
# The side-by-side benchmark (README "Performance"): builds the release binary and the plain-mio
# reference server (bench/refserver, its own target dir), makes the peers' virtualenv (waitress,
# gunicorn, granian, bjoern, Flask), then runs every row against every server, the server pinned
# to CPU 0 and the load generator (wrk, or the Python client of the idle row) to CPU 1, and prints
# one table: req/s, p50/p99, server CPU us/request (utime+stime from /proc), peak RSS, and
# waitressd's ratio to every peer in the same run.
#
#   bench/run.sh [--smoke] [--debug] [--secs N] [--rounds N] [--rows hello1,upload,...] [--servers granian,...]
#
# --rounds N measures each row's servers N times, interleaved (the order reversed each round),
# and prints medians, the ratios being the medians of the ratios within each round (for a noisy
# host: the same cell moves by 10-25 % between runs here).
# --smoke runs every row for a second (CI: checks the harness and every server start; no speed
# is asserted); --debug measures the debug build (quick to build; for the smoke only). Loopback only; each cell is bounded in time; every server is stopped through
# its own process group. Installs wrk, nginx-light, libev-dev (bjoern) and openssl (the TLS
# row's certificate) with apt when missing.
# BENCH_VENV (default <repo>/.bench-venv) is the peers' venv.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
args=(); smoke=0; profile=release
for a in "$@"; do
  case "$a" in
    --smoke) smoke=1 ;;
    --debug) profile=debug ;;
    *) args+=("$a") ;;
  esac
done

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
[[ -e /usr/include/ev.h ]] || missing+=(libev-dev)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
export PATH="$PATH:/usr/sbin"

PYO3_PYTHON="${PYO3_PYTHON:-$(env -u VIRTUAL_ENV python3 -c 'import sys; print(sys._base_executable)')}"
export PYO3_PYTHON
unset VIRTUAL_ENV
if [[ $profile == release ]]; then
  cargo build --release --quiet --bin waitressd
else
  cargo build --quiet --bin waitressd
fi
CARGO_TARGET_DIR="$repo/bench/refserver/target" \
  cargo build --release --quiet --manifest-path bench/refserver/Cargo.toml

venv="${BENCH_VENV:-$repo/.bench-venv}"
stamp="$venv/.bench-stamp"
want="$PYO3_PYTHON $(cat bench/requirements.txt)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  [[ -x "$venv/bin/python" ]] || "$PYO3_PYTHON" -m venv "$venv" >&2
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install -q -r bench/requirements.txt >&2
  echo "$want" > "$stamp"
fi

# The idle row holds 10,000 connections on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if ((smoke)); then
  set -- --secs 1 --warmup 0 --idle 500 --strict
else
  set --
fi
exec python3 bench/bench.py --waitressd "$repo/target/$profile/waitressd" \
  --refserver "$repo/bench/refserver/target/release/refserver" --venv "$venv" "$@" ${args[@]+"${args[@]}"}
