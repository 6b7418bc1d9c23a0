#!/usr/bin/env bash
# Set up and run the test suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Azurite (the Azure Storage emulator) for the ledger tests, from package-lock.json.
if [ ! -x node_modules/.bin/azurite-table ]; then
  echo "test: installing Azurite from package-lock.json into node_modules (about 370 MB, once)" >&2
  npm ci --no-audit --no-fund --silent
fi
# The agent image's Azure CLI, whose parser checks every catalog step (tests/test_azcli_parser.py).
bash scripts/azcli.sh
exec .venv/bin/python -m pytest "$@"
