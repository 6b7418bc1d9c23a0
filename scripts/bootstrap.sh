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
if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "uv>=0.5"
fi
# Never download an interpreter: use the one given. Compile bytecode once here so every
# `haymaker` start does not recompile the large provider SDKs.
export UV_PYTHON_DOWNLOADS=never
"$PYTHON" -m uv sync --frozen --compile-bytecode --python "$PYTHON" --quiet
# The project's own modules too: with PYTHONDONTWRITEBYTECODE set, nothing else would cache them.
.venv/bin/python -m compileall -q haymaker components stacks scenarios policies >/dev/null
