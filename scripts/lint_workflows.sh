#!/usr/bin/env bash
# Lint the GitHub Actions workflows and local actions: the workflow JSON schema
# (check-jsonschema), security (zizmor, offline) and YAML style (yamllint, .yamllint.yml).
# Runs every check, then exits non-zero when any of them found something.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${HAYMAKER_VENV_BIN:-.venv/bin}"
for tool in check-jsonschema zizmor yamllint; do
  if [ ! -x "$BIN/$tool" ]; then
    echo "lint_workflows: $BIN/$tool is missing: run scripts/bootstrap.sh (it installs the dev tools)" >&2
    exit 1
  fi
done

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
actions=(.github/actions/*/action.yml .github/actions/*/action.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
  echo "lint_workflows: no workflows under .github/workflows" >&2
  exit 1
fi

failed=()
echo "== check-jsonschema: ${#workflows[@]} workflow(s)"
"$BIN/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}" || failed+=("workflow schema")
if [ "${#actions[@]}" -gt 0 ]; then
  echo "== check-jsonschema: ${#actions[@]} action(s)"
  "$BIN/check-jsonschema" --builtin-schema vendor.github-actions "${actions[@]}" || failed+=("action schema")
fi
echo "== zizmor --offline .github/"
"$BIN/zizmor" --offline --no-progress --strict-collection .github/ || failed+=("zizmor")
echo "== yamllint"
"$BIN/yamllint" --strict --config-file .yamllint.yml .github/ .yamllint.yml || failed+=("yamllint")

if [ "${#failed[@]}" -gt 0 ]; then
  echo "lint_workflows: failed: ${failed[*]}" >&2
  exit 1
fi
echo "lint_workflows: all checks passed"
