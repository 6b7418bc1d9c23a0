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

from haymaker.agent.az import az_environment
from scenarios.extensions import command_words, extension_for, is_known

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


def locked(path: Path) -> dict[str, list[str]]:
    """``{name: [hash, ...]}`` of a pip requirements file with ``--hash`` options."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.match(r"([A-Za-z0-9_.-]+)==[\w.]+\s", line + " ")
            assert name, f"{path.name}: not pinned with ==: {line}"
            out[name.group(1).lower()] = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
    return out


def test_the_azure_cli_and_uv_come_from_hashed_locks():
    """Every package pinned and every file checked (issue 16, supply chain): pip refuses a file whose
    sha256 is not in the lock, and --no-deps means nothing outside the lock is resolved."""
    steps = instructions()
    runs = " ".join(args for w, args in steps if w == "RUN")
    copies = " ".join(args for w, args in steps if w == "COPY")
    for lock in ("azure-cli.txt", "uv.txt"):
        assert f"requirements/{lock}" in copies
        assert re.search(rf"pip install --require-hashes --no-deps -r /tmp/{lock}", runs), lock
        pins = locked(ROOT / "requirements" / lock)
        assert pins and all(pins.values()), f"{lock}: a package without hashes"
    assert "azure-cli" in locked(ROOT / "requirements" / "azure-cli.txt")
    assert not re.search(r"pip install (?!--require-hashes)", runs), "a pip install without --require-hashes"
    azcli = (ROOT / "scripts" / "azcli.sh").read_text()
    assert "--require-hashes --no-deps -r \"$lock\"" in azcli and "lock=requirements/azure-cli.txt" in azcli


def test_a_lock_line_without_hashes_is_caught(tmp_path):
    lock = tmp_path / "x.txt"
    lock.write_text("azure-cli==2.91.0 \\\n    --hash=sha256:" + "a" * 64 + "\nknack==0.11.0\n")
    pins = locked(lock)
    assert pins["azure-cli"] and pins["knack"] == []


def test_installs_the_azure_cli_and_the_locked_project_and_bakes_in_the_catalog():
    steps = instructions()
    runs = " ".join(args for w, args in steps if w == "RUN")
    copies = [args.split() for w, args in steps if w == "COPY"]
    assert "/opt/azure-cli/bin/pip install --require-hashes" in runs
    assert "uv sync --frozen --no-dev" in runs
    assert any(c[0].rstrip("/") == "scenarios" for c in copies)
    assert any("uv.lock" in c for c in copies)
    assert "haymaker scenarios validate" in runs


def pinned_extensions() -> dict[str, str]:
    runs = " ".join(args for w, args in instructions() if w == "RUN")
    found = re.findall(r"az extension add ([^&]*)", runs)
    pins = {}
    for args in found:
        name, version = re.search(r"--name (\S+)", args), re.search(r"--version (\S+)", args)
        assert name and version, f"unpinned extension: az extension add {args}"
        pins[name.group(1)] = version.group(1)
    return pins


def test_the_image_pins_exactly_the_extensions_the_catalog_needs(catalog):
    steps = [s for n in catalog.names() for phase in catalog[n].phases.values() for s in phase]
    unknown = sorted({" ".join(command_words(s.run)[:2]) for s in steps if not is_known(s.run)})
    assert not unknown, f"command groups in neither CORE_GROUPS nor EXTENSION_GROUPS (scenarios/extensions.py): {unknown}"
    needed = {extension_for(s.run) for s in steps} - {None}
    pins = pinned_extensions()
    assert not needed - set(pins), f"the Dockerfile does not install {sorted(needed - set(pins))}"
    assert not set(pins) - needed, f"the Dockerfile pins extensions no step uses: {sorted(set(pins) - needed)}"
    assert needed == {"connectedmachine", "databricks", "datafactory", "ml", "powerbidedicated", "site-recovery",
                      "stack-hci", "stream-analytics"}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+(b\d+)?", v) for v in pins.values()), pins


def test_extensions_live_in_the_image_and_are_never_installed_at_run_time():
    env = " ".join(args for w, args in instructions() if w == "ENV")
    assert "AZURE_EXTENSION_DIR=/opt/azure-cli-extensions" in env
    assert "AZURE_EXTENSION_USE_DYNAMIC_INSTALL=no" in env
    steps = instructions()
    env_at = next(i for i, (w, a) in enumerate(steps) if w == "ENV" and "AZURE_EXTENSION_DIR" in a)
    assert env_at < next(i for i, (w, a) in enumerate(steps) if w == "RUN" and "az extension add" in a)
    assert az_environment({"AZURE_EXTENSION_DIR": "/opt/azure-cli-extensions"}, "ua", "/tmp/x") == {
        "AZURE_EXTENSION_DIR": "/opt/azure-cli-extensions", "AZURE_HTTP_USER_AGENT": "ua", "AZURE_CONFIG_DIR": "/tmp/x",
        "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_NO_COLOR": "true",
        "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no"}


def test_a_step_from_an_unmapped_extension_group_is_caught():
    assert extension_for("az monitor log-analytics query --workspace w --analytics-query q") == "log-analytics"
    assert extension_for("az monitor log-analytics workspace show -g g -n w") is None
    assert extension_for("az powerbi embedded-capacity show -g g -n c") == "powerbidedicated"
    assert not is_known("az quantum workspace list -g g")


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
    # Only the job that pushes logs in; the one that resolves the tag's environment has no token at all.
    assert wf["jobs"]["target"]["permissions"] == {"contents": "read"}
    assert wf["jobs"]["build-and-push"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert wf["jobs"]["build-and-push"]["environment"] == {"name": "release-${{ needs.target.outputs.environment }}"}


def test_workflow_actions_are_pinned_and_inputs_stay_out_of_shell():
    text = WORKFLOW.read_text()
    for job in workflow()["jobs"].values():
        for step in job["steps"]:
            if "uses" in step and not step["uses"].startswith(("./", "$/")):  # the repository's own setup action
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
