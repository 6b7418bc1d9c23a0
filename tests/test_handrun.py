"""`pulumi up` on your own machine: the keys a user must edit are refused while they hold the shipped
placeholders, and a stack deployed by hand with the steps `plan --write-stack-config` prints lives where
`status`, `down` and `reap` look (the same backend, tags and policy pack as `haymaker up`)."""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pulumi
import pytest
import yaml

import haymaker.driver  # noqa: F401 - bound to the real repository before a test points settings elsewhere
import haymaker.policycheck  # noqa: F401 - likewise
from haymaker import mockrun, settings
from haymaker.cli import doctor as cli_doctor
from haymaker.cli import lifecycle as cli_ops
from haymaker.cli import main
from haymaker.doctor import Doctor
from haymaker.runspec import ENVIRONMENTS
from tests.azurite import fresh_service
from tests.fakes.pulumi_cli import FakePulumi

PINNED = "@sha256:" + "ab" * 32


def config_copy(directory: Path, image: str | None = None, repository: str = "contoso/haymaker") -> Path:
    """Every Pulumi.<env>.yaml of the repository, copied into ``directory`` with haymaker:agentImage (default:
    pinned by digest in the environment's registry) and haymaker:githubRepository set as given."""
    directory.mkdir(parents=True, exist_ok=True)
    for env in ENVIRONMENTS:
        doc = yaml.safe_load((settings.REPO_ROOT / f"Pulumi.{env}.yaml").read_text())
        config = doc["config"]
        registry = config["haymaker:agentImage"].split("/", 1)[0]
        config["haymaker:agentImage"] = f"{registry}/{image}" if image else f"{registry}/haymaker-agent{PINNED}"
        config["haymaker:githubRepository"] = repository
        (directory / f"Pulumi.{env}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return directory


@pytest.fixture
def placeholder_config(tmp_path, monkeypatch):
    """Configuration as the repository ships it to a new user: an image tag no workflow publishes, the
    example owner."""
    root = config_copy(tmp_path / "repo", image="haymaker-agent:0.1.0", repository="your-org/haymaker")
    monkeypatch.setattr(settings, "REPO_ROOT", root)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return root


@pytest.mark.parametrize("image, why", [
    ("acr.azurecr.io/haymaker-agent:0.1.0", "tag '0.1.0', which no workflow publishes"),
    ("acr.azurecr.io/haymaker-agent:latest", "tag 'latest', which no workflow publishes"),
    ("acr.azurecr.io/haymaker-agent", "no tag or digest"),
    ("acr.azurecr.io/haymaker-agent@sha256:" + "0" * 64, "an all-zero digest"),
    ("acr.azurecr.io:5000/haymaker-agent:v1.2", "tag 'v1.2', which no workflow publishes"),
    ("acr.azurecr.io/haymaker-agent:v1.2.3", None),
    ("acr.azurecr.io/haymaker-agent:v1.2.3-dev", None),
    ("acr.azurecr.io/haymaker-agent:v1.2.3-rc.4", None),
    ("acr.azurecr.io:5000/haymaker-agent" + PINNED, None),
])
def test_an_image_no_workflow_publishes_is_a_placeholder(image, why):
    from haymaker.settings import find_placeholders

    found = find_placeholders({"haymaker:agentImage": image}, "Pulumi.dev.yaml")
    if why is None:
        assert found == []
        return
    assert len(found) == 1 and found[0].why.startswith(why)
    assert found[0].line().startswith(f"haymaker:agentImage in Pulumi.dev.yaml is {image!r}, with {why}")
    assert "@sha256:" in found[0].fix


def test_the_example_owner_is_a_placeholder():
    from haymaker.settings import find_placeholders

    found = find_placeholders({"haymaker:githubRepository": "your-org/haymaker"}, "Pulumi.prod.yaml")
    assert [p.line() for p in found] == ["haymaker:githubRepository in Pulumi.prod.yaml is 'your-org/haymaker', with "
                                         "the example owner 'your-org': set it to the owner/repo of your GitHub "
                                         "repository"]
    assert find_placeholders({"haymaker:githubRepository": "contoso/haymaker"}, "Pulumi.prod.yaml") == []


def evaluate_refused(monkeypatch, config: dict, stack: str):
    """Run `pulumi up`'s entry point under mocks with ``config``; the error and what was declared first."""
    import runpy

    monitors = []
    recording = mockrun.RecordingMonitor
    monkeypatch.setattr(mockrun, "RecordingMonitor", lambda mocks: monitors.append(recording(mocks)) or monitors[-1])
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    try:
        with pytest.raises(pulumi.RunError) as refused:
            mockrun.evaluate(lambda: runpy.run_module("stacks.__main__", run_name="__main__") and {},
                             project="haymaker", stack=stack)
    finally:
        pulumi.runtime.set_all_config({})
    return str(refused.value), [d for d in monitors[0].declared.values() if d.type != "pulumi:pulumi:Stack"]


def test_the_run_program_refuses_a_placeholder_image_before_declaring_anything(placeholder_config, monkeypatch,
                                                                                make_spec):
    from haymaker.settings import load_environment
    from haymaker.stackconfig import run_stack_config

    spec = make_spec(["any-scenario"])  # refused before the catalog is read
    config = run_stack_config(spec, load_environment("dev"))["config"]
    message, declared = evaluate_refused(monkeypatch, config, spec.stack_name)
    assert message.startswith("haymaker:agentImage in Pulumi.dev.yaml is 'haymakerdev.azurecr.io/haymaker-agent:0.1.0'")
    assert "`haymaker plan --write-stack-config` again" in message and declared == []


def test_the_platform_program_refuses_the_example_owner_before_declaring_anything(placeholder_config, monkeypatch):
    config = yaml.safe_load((placeholder_config / "Pulumi.dev.yaml").read_text())["config"]
    message, declared = evaluate_refused(monkeypatch, config, "dev")
    assert message == ("haymaker:githubRepository in Pulumi.dev.yaml is 'your-org/haymaker', with the example owner "
                       "'your-org': set it to the owner/repo of your GitHub repository")
    assert declared == []


def test_plan_warns_and_write_stack_config_refuses_naming_the_key_and_the_file(placeholder_config, capsys):
    assert main(["plan", "--size", "small"]) == 0
    err = capsys.readouterr().err
    assert "warning: Pulumi.dev.yaml: haymaker:agentImage has tag '0.1.0', which no workflow publishes" in err
    assert main(["plan", "--size", "small", "--write-stack-config"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: haymaker:agentImage in Pulumi.dev.yaml is ") and len(err.splitlines()) == 1
    assert list(placeholder_config.glob("Pulumi.run-*.yaml")) == []  # nothing written


def test_doctor_lists_each_placeholder_as_a_failed_check(placeholder_config, capsys, monkeypatch):
    monkeypatch.setattr(cli_doctor, "build_doctor", lambda cfg, env: type("D", (), {"run": lambda self: [], "answer_key": lambda self: []})())
    assert main(["doctor", "--json", "-e", "staging"]) == 1
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert [(c["name"], c["ok"]) for c in checks] == [("config", False), ("config", False)]
    assert checks[0]["detail"].startswith("haymaker:agentImage in Pulumi.staging.yaml is ")
    assert checks[1]["fix"] == "set it to the owner/repo of your GitHub repository"


# --- a stack deployed by hand ------------------------------------------------------------------------------

class DeployerToken:
    def get_token(self, scope):
        from azure.core.credentials import AccessToken

        from tests.fakes.login import jwt

        return AccessToken(jwt({"oid": "deployer-oid", "roles": ["Application.ReadWrite.OwnedBy",
                                                                  "Application.Read.All"]}), 2_000_000_000)


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_stack_deployed_by_hand_is_seen_by_status_reap_and_down(tmp_path, monkeypatch, capsys, azurite, catalog):
    """The user's path: `plan --write-stack-config`, then the printed commands typed into a shell (here
    against the stand-in `pulumi`), then haymaker's own commands find and tear down that stack."""
    from haymaker.driver import RunStackDriver
    from haymaker.ledger import Ledger
    from haymaker.lifecycle import Clock, Lifecycle
    from haymaker.retry import Backoff
    from tests.test_lifecycle import FakeAzure

    monkeypatch.setattr(settings, "REPO_ROOT", config_copy(tmp_path / "repo"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)  # haymaker's default backend, as a new user has
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000001")
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant-a")  # FakeAzure's
    fresh_service(azurite)
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("HAYMAKER_LEDGER_SPOOL", str(tmp_path / "spool.jsonl"))
    fake = FakePulumi.install(tmp_path / "pulumi", monkeypatch)
    fake.add_stack("dev", {}, outputs={"managedEnvironmentId": "/env", "agentPullIdentityId": "/id",
                                       "acrLoginServer": "acr", "graphIdentities": {}})
    scenario = next(n for n in catalog.names() if not catalog[n].graph_permissions)

    code, _, err = run(capsys, "plan", "-s", scenario, "--write-stack-config")
    assert code == 0, err
    steps = [line.strip() for line in err.splitlines() if line.startswith("  ")]
    run_id = next(s for s in steps if s.startswith("pulumi stack init ")).rsplit("run-", 1)[1]
    assert (settings.REPO_ROOT / f"Pulumi.run-{run_id}.yaml").exists()

    # The printed commands, as a shell would run them.
    from haymaker.plan import plan_run

    plan = plan_run(scenarios=[scenario], run_id=run_id)
    fake.script(f"run-{run_id}", resources=[{"urn": d.urn, "type": d.type} for d in plan.custom_resources],
                outputs=plan.outputs)
    env = dict(os.environ)
    for step in steps:
        words = shlex.split(step.split("#", 1)[0])
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value if value != "..." else "test-only"
        else:
            assert subprocess.run(words, env=env, capture_output=True, text=True).returncode == 0, step
    hand = [c for c in fake.calls() if c[:1] in (["up"], ["stack"])]
    assert ["--policy-pack", "policies"] == hand[-1][hand[-1].index("--policy-pack"):][:2]
    assert "policies/config.dev.json" in hand[-1]

    def build(cfg, environment, progress=None):  # the real driver; Azure and the ledger as stand-ins
        slept = []  # waits pass at once and count as time passed (the purge's wait is bounded in time)
        driver = RunStackDriver(backend=cfg.get("backend_url"), secrets_provider=cfg.get("secrets_provider"))
        return Lifecycle(driver=driver, azure=FakeAzure(), ledger=Ledger.from_config(cfg), progress=progress,
                         clock=Clock(sleep=slept.append, monotonic=lambda: sum(slept)),
                         backoff=Backoff(attempts=2, base_seconds=0),
                         audit_dir=tmp_path / "audit", rng=random.Random(0), echo=lambda *_: None)

    monkeypatch.setattr(cli_ops, "build_lifecycle", build)
    monkeypatch.setattr(cli_doctor, "build_doctor", lambda cfg, environment: Doctor(
        cfg, environment, credential=DeployerToken, azure=FakeAzure, ledger=lambda: Ledger.from_config(cfg),
        driver=lambda: RunStackDriver(backend=cfg.get("backend_url"))))

    code, out, err = run(capsys, "status", run_id, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["run_id"], doc["status"], doc["ledger"]) == (run_id, "deployed", False)
    later = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, err = run(capsys, "reap", "--dry-run", "--now", later)
    assert (code, out.strip()) == (0, f"{run_id}: planned"), err
    code, out, err = run(capsys, "down", run_id, "--yes")
    assert code == 0 and out.splitlines()[-1] == f"{run_id}: verified", err
    assert f"run-{run_id}" not in fake.state["stacks"]
    # One backend throughout: the commands typed by hand and every command haymaker ran.
    calls = [json.loads(line) for line in (fake.directory / "calls.jsonl").read_text().splitlines()]
    backends = {c["backend"] for c in calls if c["argv"][:1] != ["version"]}  # `version` reads no state
    assert backends == {haymaker.driver.backend_url(None)}  # file://<repo>/.pulumi-state
