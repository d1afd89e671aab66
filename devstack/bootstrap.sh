#!/bin/sh
# Creates .venv with a Python >= 3.12 and installs the locked dependencies into it.
# Needs only a Python >= 3.12 somewhere on the machine and access to the package index.
set -eu

VENV=${VENV:-.venv}
LOCK=${LOCK:-requirements-dev.lock}

is_ok() {  # is_ok CMD -> true when CMD runs and is Python >= 3.12
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
    if [ -n "${PYTHON:-}" ]; then
        is_ok "$PYTHON" && { echo "$PYTHON"; return 0; }
        echo "PYTHON=$PYTHON is not a working Python >= 3.12" >&2
        return 1
    fi
    for cand in python3.14 python3.13 python3.12 python3 python; do
        if command -v "$cand" >/dev/null 2>&1 && is_ok "$cand"; then
            command -v "$cand"; return 0
        fi
    done
    # pyenv keeps interpreters that its shims may not expose on PATH.
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    for cand in "$root"/versions/3.1[2-9]*/bin/python3; do
        if [ -x "$cand" ] && is_ok "$cand"; then echo "$cand"; return 0; fi
    done
    echo "No Python >= 3.12 found. Install Python 3.12 or newer, or set PYTHON=/path/to/python3.12." >&2
    return 1
}

stamp="$VENV/.installed-$(cksum < "$LOCK" | cut -d' ' -f1)"
if [ -f "$stamp" ]; then
    exit 0
fi

if [ ! -x "$VENV/bin/python" ] || ! is_ok "$VENV/bin/python"; then
    py=$(find_python)
    echo "Creating $VENV with $py ($("$py" --version 2>&1))"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
# --compile-bytecode: every process (each manage.py command, worker, test server) then
# reads the packages' bytecode instead of compiling ~1,200 modules from source, which took
# 1.2 s of a 2 s command where PYTHONDONTWRITEBYTECODE is set (as in containers and CI).
UV_PYTHON_DOWNLOADS=never "$VENV/bin/python" -m uv pip install --quiet --compile-bytecode \
    --python "$VENV/bin/python" -r "$LOCK"
rm -f "$VENV"/.installed-*
touch "$stamp"
