"""The agent image and its release workflow, checked as text: Docker cannot build here.

The workflow linters (check-jsonschema, zizmor, yamllint) run when the dev tools are installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
WORKFLOW = ROOT / ".github" / "workflows" / "agent-image.yml"
TOOLS = Path(sys.executable).parent
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_base_image_is_a_pinned_slim_python_311():
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) == 1
    image = froms[0].split()[0]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image), image


def test_runs_as_a_non_root_user_with_an_exec_form_entrypoint():
    steps = instructions()
    words = [w for w, _ in steps]
    assert words[-1] == "ENTRYPOINT" and words.count("ENTRYPOINT") == 1
    assert json.loads(steps[-1][1]) == ["haymaker", "agent", "run"]
    users = [args for w, args in steps if w == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert words.index("USER") < words.index("ENTRYPOINT")


def test_installs_the_azure_cli_and_the_locked_project_and_bakes_in_the_catalog():
    steps = instructions()
    runs = " ".join(args for w, args in steps if w == "RUN")
    copies = [args.split() for w, args in steps if w == "COPY"]
    assert re.search(r"azure-cli==\d+\.\d+\.\d+", runs)
    assert "uv sync --frozen --no-dev" in runs
    assert any(c[0].rstrip("/") == "scenarios" for c in copies)
    assert any("uv.lock" in c for c in copies)
    assert "haymaker scenarios validate" in runs


def test_no_secrets_in_the_image():
    for word, args in instructions():
        if word in {"ENV", "ARG", "LABEL"}:
            assert not re.search(r"SECRET|PASSWORD|TOKEN|CLIENT_ID|TENANT_ID|KEY\b", args, re.I), args
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", "node_modules", "Pulumi.run-*.yaml"} <= set(ignored)
    assert "scenarios" not in ignored and "uv.lock" not in ignored


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_runs_on_release_tags_with_least_privilege():
    wf = workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as True
    assert on == {"push": {"tags": ["v*"]}}
    assert wf["permissions"] == {} and "group" in wf["concurrency"]
    for job in wf["jobs"].values():
        assert isinstance(job["timeout-minutes"], int)
        assert job["permissions"] == {"contents": "read", "id-token": "write"}


def test_workflow_actions_are_pinned_and_inputs_stay_out_of_shell():
    text = WORKFLOW.read_text()
    for job in workflow()["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), step["uses"]
                assert re.search(re.escape(step["uses"]) + r"\s+#\s*v\d+\.\d+\.\d+", text), step["uses"]
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            if "run" in step:
                assert "${{" not in step["run"], step["run"]
    assert "azure/login@" in text and "az acr login" in text and "steps.build.outputs.digest" in text


@pytest.mark.parametrize("command", [
    ["check-jsonschema", "--builtin-schema", "vendor.github-workflows"],
    ["zizmor", "--offline", "--no-progress"],
    ["yamllint", "--strict", "-d", "{extends: relaxed, rules: {line-length: {max: 120}}}"],
], ids=["check-jsonschema", "zizmor", "yamllint"])
def test_workflow_passes_its_linters(command):
    tool = TOOLS / command[0]
    if not tool.exists():
        pytest.skip(f"{command[0]} is not installed (uv sync installs the dev tools)")
    result = subprocess.run([str(tool), *command[1:], str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
