#!/usr/bin/env bash
# Run the test suite against the lowest versions pyproject.toml allows for its direct dependencies
# (uv's lowest-direct resolution): the test of the lower bounds, as scripts/test.sh is of uv.lock's.
# Leaves .venv and uv.lock alone: it copies the working tree (tracked and untracked files, not the
# ignored ones) to a temporary folder, locks the copy at the lowest versions and builds the copy's
# .venv from that lock, so the tests that run `.venv/bin/...` or read uv.lock see the lowest ones.
# The folder is removed at the end. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

PYTHON="${PYTHON:-python3}"  # 3.11 or newer: uv refuses an older one (requires-python)
if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "uv>=0.5"
fi
export UV_PYTHON_DOWNLOADS=never  # never download an interpreter: use the one given
# Azurite (the Azure Storage emulator) for the ledger tests, from package-lock.json.
if [ ! -x node_modules/.bin/azurite-table ]; then
  npm ci --no-audit --no-fund --silent
fi

copy=$(mktemp -d "${TMPDIR:-/tmp}/haymaker-lowest.XXXXXX")
trap 'rm -rf "$copy" "$copy.build.txt" "$copy.dist"' EXIT
git ls-files -z --cached --others --exclude-standard \
  | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$copy"
bash scripts/azcli.sh  # the image's Azure CLI, for the parser test: its own environment, not a bound
ln -s "$root/node_modules" "$copy/node_modules"
ln -s "$root/.azcli" "$copy/.azcli"
cd "$copy"
unset UV_PROJECT_ENVIRONMENT VIRTUAL_ENV
"$PYTHON" -m uv lock --resolution lowest-direct --python "$PYTHON" --quiet
"$PYTHON" -m uv sync --frozen --compile-bytecode --python "$PYTHON" --quiet
.venv/bin/python -m compileall -q haymaker components stacks scenarios policies >/dev/null
# The build backend at its lowest too (the sync above built the editable install with the newest).
echo "hatchling==1.26.3" > "$copy.build.txt"
"$PYTHON" -m uv build --wheel --quiet --build-constraint "$copy.build.txt" -o "$copy.dist"
echo "wheel built with hatchling 1.26.3: $(ls "$copy.dist")"
echo "direct dependencies at their lowest:"
"$PYTHON" -m uv tree --frozen --depth 1 --python "$PYTHON" | tail -n +2
.venv/bin/python -m pytest "$@"
