#!/usr/bin/env bash
# The Azure CLI the agent image carries, in a virtual environment of its own (.azcli), for the test
# that parses every catalog step with az's own parser (tests/test_azcli_parser.py). Idempotent.
# The version is read from the Dockerfile, so the test and the image cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
version=$(sed -n 's/.*pip install azure-cli==\([0-9.]*\).*/\1/p' Dockerfile | head -n 1)
if [ -z "$version" ]; then
  echo "scripts/azcli.sh: no 'pip install azure-cli==X.Y.Z' in the Dockerfile" >&2
  exit 1
fi
have=$(.azcli/bin/python -c 'from azure.cli.core import __version__; print(__version__)' 2>/dev/null || true)
if [ "$have" != "$version" ]; then
  echo "azcli: installing azure-cli $version into .azcli (about 700 MB, a few minutes, once)" >&2
  export UV_PYTHON_DOWNLOADS=never
  rm -rf .azcli
  "$PYTHON" -m uv venv --quiet --python "$PYTHON" .azcli
  "$PYTHON" -m uv pip install --quiet --python .azcli/bin/python "azure-cli==$version"
  # Bytecode once: loading az's command table from source takes minutes with PYTHONDONTWRITEBYTECODE.
  # Only a speed-up: a file that fails to compile is still imported from source.
  .azcli/bin/python -m compileall -q -j 0 .azcli/lib >/dev/null 2>&1 || true
fi
