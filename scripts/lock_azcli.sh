#!/usr/bin/env bash
# Regenerate requirements/azure-cli.txt, the hashed lock of the Azure CLI the agent image carries
# (Dockerfile) and the tests use (.azcli, scripts/azcli.sh): azure-cli at one version and every
# dependency pinned, each with the sha256 of every file PyPI publishes for it, for the image's
# Python (3.11, Linux). Both installs use `pip install --require-hashes`, so a file that changed on
# the registry fails the build instead of entering the image.
#
#   bash scripts/lock_azcli.sh            # re-lock the version the lock pins now
#   bash scripts/lock_azcli.sh 2.92.0     # move to another azure-cli release
#   UV_VERSION=0.14.0 bash scripts/lock_azcli.sh   # and requirements/uv.txt to another uv
#
# CLI extensions are not in this lock: none of those the catalog needs is published on PyPI
# (Dockerfile, README "Limits").
set -euo pipefail
cd "$(dirname "$0")/.."
lock=requirements/azure-cli.txt
version="${1:-$(sed -n 's/^azure-cli==\([0-9.]*\).*/\1/p' "$lock" 2>/dev/null | head -n 1 || true)}"
if [ -z "$version" ]; then
  echo "scripts/lock_azcli.sh: name a version: bash scripts/lock_azcli.sh 2.91.0" >&2
  exit 1
fi
PYTHON="${PYTHON:-python3}"
echo "azure-cli==$version" | "$PYTHON" -m uv pip compile --quiet --generate-hashes --no-header \
  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
  --output-file "$lock" -
echo "$lock: azure-cli $version, $(grep -c '^[a-z0-9]' "$lock") packages, every one with hashes"
# The image's build tool (uv, which installs the project from uv.lock), hashed the same way.
uv_version=$(sed -n 's/^uv==\([0-9.]*\).*/\1/p' requirements/uv.txt 2>/dev/null | head -n 1 || true)
echo "uv==${UV_VERSION:-${uv_version:-0.13.8}}" | "$PYTHON" -m uv pip compile --quiet --generate-hashes --no-header \
  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --output-file requirements/uv.txt -
