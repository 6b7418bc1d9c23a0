#!/usr/bin/env bash
# The routine pull requests must keep the suite green. For each edit named (default: all three), this
# copies the working tree (tracked and untracked files, not the ignored ones) to a temporary folder,
# makes the edit there and runs the tests in the copy:
#   add      a valid scenario: a renamed copy of the first catalog file
#   exclude  the most expensive scenario scheduled runs can draw, added to selection.yaml's exclude
#   budget   budget_usd lowered to the cost of the most expensive large draw (rounded up to a cent)
# Usage: bash scripts/catalog_edits.sh [add] [exclude] [budget] [-- pytest arguments]
# The copy uses this tree's .venv, node_modules and .azcli; PYTHONPATH puts the copy's modules first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

edits=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do edits+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#edits[@]} -gt 0 ] || edits=(add exclude budget)

if [ ! -x node_modules/.bin/azurite-table ]; then
  npm ci --no-audit --no-fund --silent
fi
bash scripts/azcli.sh

failed=()
for edit in "${edits[@]}"; do
  copy=$(mktemp -d "${TMPDIR:-/tmp}/haymaker-edit-$edit.XXXXXX")
  git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$copy"
  for shared in .venv node_modules .azcli; do ln -s "$root/$shared" "$copy/$shared"; done
  echo "== $edit (in $copy)"
  (cd "$copy" && PYTHONPATH="$copy" .venv/bin/python scripts/catalog_edit.py "$edit")
  if (cd "$copy" && PYTHONPATH="$copy" .venv/bin/python -m pytest -p no:cacheprovider "$@"); then
    echo "== $edit: suite green"
  else
    echo "== $edit: suite RED"
    failed+=("$edit")
  fi
  rm -rf "$copy"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "red after: ${failed[*]}" >&2
  exit 1
fi
echo "green after each of: ${edits[*]}"
