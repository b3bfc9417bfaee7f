#!/usr/bin/env bash
# tools/venv.sh [DIR]: create (idempotently) the virtualenv the tests and the example app use.
#
# DIR defaults to <repo>/.venv. The venv is made with the base interpreter waitressd links
# against (pyenv's python3, never an activated venv's), then gets requirements-test.txt and the
# local projects: the bundled example app (example/) and the Pyramid test fixture
# (tests/apps/wsgi/pyrapp), installed as packages so PasteDeploy's `egg:` finds them from any
# working directory, as pserve users install theirs. A stamp keyed on the inputs' hash makes a
# second run instant.
# Prints the venv path on stdout.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.venv}"

# The base interpreter: $WAITRESSD_PYTHON, else the python3 on PATH resolved out of any venv
# (sys._base_executable), so an activated venv does not become the venv's base.
py="${WAITRESSD_PYTHON:-python3}"
base="$(env -u VIRTUAL_ENV "$py" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"

stamp="$venv/.waitressd-stamp"
projects=("$repo/example" "$repo/tests/apps/wsgi/pyrapp")
hash="$( { echo "$base"; cat "$repo/requirements-test.txt"; \
           find "${projects[@]}" \( -name build -o -name '*.egg-info' \) -prune -o -type f \
             \( -name '*.py' -o -name '*.toml' \) -print0 | sort -z | xargs -0 cat; } \
         | sha256sum | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" && -x "$venv/bin/python" ]]; then
    echo "$venv"
    exit 0
fi

# A venv left by another base interpreter (its pyvenv.cfg points elsewhere) is made anew.
if [[ -x "$venv/bin/python" ]]; then
    have="$("$venv/bin/python" -c 'import sys; print(sys._base_executable)' 2>/dev/null || true)"
    if [[ "$(realpath -m "$have")" != "$(realpath -m "$base")" ]]; then
        rm -rf "$venv"
    fi
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$base" -m venv "$venv" >&2
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install -q -r "$repo/requirements-test.txt" >&2
# Non-editable: the venv must not depend on the work tree's location at run time.
for p in "${projects[@]}"; do
    "$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$p" >&2
    rm -rf "$p/build" "$p/"*.egg-info
done
echo "$hash" > "$stamp"
echo "$venv"
