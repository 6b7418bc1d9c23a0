#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment from the lock file. Idempotent.
# Needs Python 3.11+ on PATH; installs uv with pip when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "HayMaker needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 1
fi
say() { echo "bootstrap: $*" >&2; }
if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  say "installing uv with pip"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "uv>=0.5"
fi
# Never download an interpreter: use the one given. Compile bytecode once here so every
# `haymaker` start does not recompile the large provider SDKs.
export UV_PYTHON_DOWNLOADS=never
if [ -x .venv/bin/python ]; then
  say "syncing .venv with uv.lock"
else
  say "creating .venv from uv.lock (about 600 MB; a minute or two the first time, most of it compiling bytecode)"
fi
"$PYTHON" -m uv sync --frozen --compile-bytecode --python "$PYTHON" --quiet
# The project's own modules too: with PYTHONDONTWRITEBYTECODE set, nothing else would cache them.
.venv/bin/python -m compileall -q haymaker components stacks scenarios policies >/dev/null
