#!/usr/bin/env bash
# The Azure CLI the agent image carries, in a virtual environment of its own (.azcli), for the tests
# that parse every catalog step with az's own parser (tests/test_azcli_parser.py) and run it against a
# local Resource Manager (tests/wire/). Idempotent. It installs the same hashed lock as the Dockerfile
# (requirements/azure-cli.txt, from scripts/lock_azcli.sh), so the tests and the image cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
lock=requirements/azure-cli.txt
if ! grep -q '^azure-cli==' "$lock" 2>/dev/null; then
  echo "scripts/azcli.sh: $lock pins no azure-cli: run bash scripts/lock_azcli.sh <version>" >&2
  exit 1
fi
want=$(sha256sum "$lock" | cut -d' ' -f1)
have=$(cat .azcli/.lock-sha256 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  version=$(sed -n 's/^azure-cli==\([0-9.]*\).*/\1/p' "$lock" | head -n 1)
  echo "azcli: installing azure-cli $version from $lock into .azcli (about 700 MB, a few minutes, once)" >&2
  export UV_PYTHON_DOWNLOADS=never
  rm -rf .azcli
  "$PYTHON" -m uv venv --quiet --python "$PYTHON" .azcli
  "$PYTHON" -m uv pip install --quiet --python .azcli/bin/python --require-hashes --no-deps -r "$lock"
  # Bytecode once: loading az's command table from source takes minutes with PYTHONDONTWRITEBYTECODE.
  # Only a speed-up: a file that fails to compile is still imported from source.
  .azcli/bin/python -m compileall -q -j 0 .azcli/lib >/dev/null 2>&1 || true
  echo "$want" > .azcli/.lock-sha256
fi
