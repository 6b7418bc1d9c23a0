"""The Automation-API driver, against a stand-in `pulumi` on PATH that answers like the CLI
(tests/fakes/pulumi_cli.py): the command sequence, engine events, error mapping, the CLI version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi import automation as auto

from haymaker.azure import app_filter, run_resources_query
from haymaker.driver import (
    PulumiCliMissing,
    PulumiCliTooOld,
    RunStackDriver,
    StackError,
    StackLocked,
    StackMissing,
    _translate,
    backend_url,
    plugin_versions,
    stack_config_values,
)
from haymaker.runspec import RunSpec
from tests.fakes.pulumi_cli import FakePulumi

SPEC = RunSpec(run_id="20261121t0600z-7f3a", environment="dev", trigger="schedule",
               scenarios=("compute-01-linux-vm-web-server",), duration_hours=4, git_sha="abc123")


def test_stack_name_config_and_tags_map_the_runspec(settings):
    assert SPEC.stack_name == "run-20261121t0600z-7f3a"
    values = stack_config_values(SPEC, settings)
    assert json.loads(values["haymaker:runSpec"][0])["scenarios"] == ["compute-01-linux-vm-web-server"]
    assert values["haymaker:location"] == ("swedencentral", False)
    assert json.loads(values["haymaker:allowedLocations"][0]) == ["swedencentral", "northeurope"]
    assert values["azure-native:location"] == ("swedencentral", False)
    assert SPEC.stack_tags() == {"haymaker:kind": "run", "haymaker:env": "dev",
                                 "haymaker:expires": "2026-11-21T10:00:00Z", "haymaker:trigger": "schedule",
                                 "haymaker:git-sha": "abc123"}


def test_backend_defaults_to_a_file_backend_in_the_repo(tmp_path):
    assert backend_url(None, tmp_path) == f"file://{tmp_path}/.pulumi-state"
    assert backend_url("azblob://state", tmp_path) == "azblob://state"


def test_plugins_are_pinned_to_the_installed_sdks():
    from importlib import metadata

    assert plugin_versions() == {"azure-native": metadata.version("pulumi-azure-native"),
                                 "azuread": metadata.version("pulumi-azuread")}


def _result(stderr: str):
    return auto._cmd.CommandResult(stdout="", stderr=stderr, code=255)


@pytest.mark.parametrize("error, cls, fragment", [
    (FileNotFoundError(2, "No such file or directory", "pulumi"), PulumiCliMissing, "install the Pulumi CLI"),
    (auto.ConcurrentUpdateError(_result("error: [409] Conflict: Another update is currently in progress.")),
     StackLocked, "`pulumi cancel`"),
    (auto.StackNotFoundError(_result("error: no stack named 'run-x' found")), StackMissing, "no such stack"),
    (auto.CommandError(_result("  error: azure-native:app:Job hm-x: Code=\"InvalidTemplate\"\n")), StackError,
     "Code=\"InvalidTemplate\""),
])
def test_pulumi_errors_become_project_errors(error, cls, fragment):
    translated = _translate(error, "deploy run-x")
    assert type(translated) is cls and fragment in str(translated)
    assert str(translated).startswith("cannot deploy run-x")


def test_missing_cli_is_reported_with_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi here
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "")
    driver = RunStackDriver(backend=f"file://{tmp_path}/state", work_dir=tmp_path)
    with pytest.raises(PulumiCliMissing, match="install the Pulumi CLI"):
        driver.list_run_stacks()


def test_file_backend_needs_a_passphrase(monkeypatch, tmp_path):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    from haymaker.errors import HayMakerError

    with pytest.raises(HayMakerError, match="set PULUMI_CONFIG_PASSPHRASE"):
        RunStackDriver(backend=None, work_dir=tmp_path).list_run_stacks()


def test_queries_cannot_be_broken_out_of():
    assert "'" not in run_resources_query("x' or 1==1 //").split("=~ '")[1].split("'")[0]
    assert app_filter("20261121t0600z-7f3a") == "startswith(displayName,'haymaker-20261121t0600z-7f3a-')"


# --- against the stand-in CLI -------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
AGENT = "urn:pulumi:run-20261121t0600z-7f3a::haymaker::haymaker:index:ScenarioAgent"
RESOURCES = [{"urn": f"{AGENT}::compute-01-linux-vm-web-server", "type": "haymaker:index:ScenarioAgent"},
             {"urn": f"{AGENT}$azure-native:app:Job::compute-01-linux-vm-web-server-job", "type": "azure-native:app:Job"}]


@pytest.fixture
def pulumi_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")
    return FakePulumi.install(tmp_path / "pulumi", monkeypatch)


def driver(tmp_path, **kw):
    return RunStackDriver(backend=f"file://{tmp_path}/state", work_dir=REPO, on_output=lambda line: None,
                          policy_config=REPO / "policies" / "config.dev.json", **kw)


def test_up_creates_configures_tags_and_deploys_with_the_policy_pack(pulumi_cli, tmp_path, settings):
    pulumi_cli.script(SPEC.stack_name, resources=RESOURCES, outputs={"inventory": [{"scenario": "x"}]})
    events = []
    d = driver(tmp_path, on_event=lambda stack, e: events.append((stack, e)))
    outputs, created = d.up(d.prepare(SPEC, settings))
    assert (outputs, created) == ({"inventory": [{"scenario": "x"}]}, 2)
    assert pulumi_cli.commands() == [
        "version", "stack select", "stack init", "plugin install", "plugin install", "config set-all",
        *["stack tag set"] * 5, "up", "stack output", "stack output", "stack history"]
    calls = {tuple(c[:2]): c for c in pulumi_cli.calls()}
    up = calls[("up", "--yes")]
    assert up[up.index("--policy-pack") + 1] == str(REPO / "policies")
    assert up[up.index("--policy-pack-config") + 1] == str(REPO / "policies" / "config.dev.json")
    assert "--skip-preview" in up and up[up.index("--stack") + 1] == SPEC.stack_name
    assert up[up.index("--event-log") + 1].startswith("tcp://127.0.0.1:")  # events stream back over gRPC
    stack = pulumi_cli.state["stacks"][SPEC.stack_name]
    assert json.loads(stack["config"]["haymaker:runSpec"])["run_id"] == SPEC.run_id
    assert stack["tags"]["haymaker:expires"] == "2026-11-21T10:00:00Z" and stack["tags"]["haymaker:kind"] == "run"
    assert sorted(p[1] for p in pulumi_cli.state["plugins"]) == ["azure-native", "azuread"]
    creates = [e.resource_pre_event.metadata.urn for _, e in events if e.resource_pre_event]
    assert creates == [r["urn"] for r in RESOURCES] and {s for s, _ in events} == {SPEC.stack_name}
    assert [e.summary_event.resource_changes for _, e in events if e.summary_event] == [{"create": 2}]


def test_a_second_up_selects_the_existing_stack(pulumi_cli, tmp_path, settings):
    d = driver(tmp_path)
    d.prepare(SPEC, settings)
    d.prepare(SPEC, settings)
    assert pulumi_cli.commands().count("stack init") == 1


def test_destroy_keeps_the_stack_and_remove_needs_force_while_it_lists_resources(pulumi_cli, tmp_path, settings):
    pulumi_cli.add_stack(SPEC.stack_name, SPEC.stack_tags(), resources=RESOURCES)
    d = driver(tmp_path)
    with pytest.raises(StackError, match="still has resources"):
        d.remove(SPEC.stack_name)
    d.destroy(SPEC.stack_name)
    assert pulumi_cli.state["stacks"][SPEC.stack_name]["resources"] == []  # destroyed, still there
    d.remove(SPEC.stack_name)
    assert SPEC.stack_name not in pulumi_cli.state["stacks"]
    pulumi_cli.add_stack("run-20261121t0600z-0b0b", {}, resources=RESOURCES)
    d.remove("run-20261121t0600z-0b0b", force=True)  # its resources were deleted out of band
    assert pulumi_cli.calls()[-1][:4] == ["stack", "rm", "--yes", "--force"]


def test_run_stacks_are_listed_with_their_tags(pulumi_cli, tmp_path):
    pulumi_cli.add_stack("run-20261121t0600z-7f3a", {"haymaker:expires": "2026-11-21T10:00:00Z"})
    pulumi_cli.add_stack("dev", {})  # a platform stack is not a run
    assert [(s.name, s.tags) for s in driver(tmp_path).list_run_stacks()] == [
        ("run-20261121t0600z-7f3a", {"haymaker:expires": "2026-11-21T10:00:00Z"})]


@pytest.mark.parametrize("script, cls, fragment", [
    ({"fail": ["error: azure-native:app:Job hm-x: Code=\"InvalidTemplate\" Message=\"bad\""]}, StackError,
     "Code=\"InvalidTemplate\""),
    ({"fail": ["error: [409] Conflict: Another update is currently in progress."]}, StackLocked, "pulumi cancel"),
])
def test_cli_failures_map_to_project_errors(pulumi_cli, tmp_path, settings, script, cls, fragment):
    pulumi_cli.script(SPEC.stack_name, **script)
    d = driver(tmp_path)
    with pytest.raises(cls, match=fragment.replace("(", r"\(")) as raised:
        d.up(d.prepare(SPEC, settings))
    assert str(raised.value).startswith(f"cannot deploy {SPEC.stack_name}")


def test_a_missing_stack_is_reported_as_missing(pulumi_cli, tmp_path):
    with pytest.raises(StackMissing, match="no such stack"):
        driver(tmp_path).destroy("run-20261121t0600z-dead")


def test_a_cli_older_than_3_211_is_refused_before_any_stack_is_touched(tmp_path, monkeypatch, settings):
    pulumi_cli = FakePulumi.install(tmp_path / "pulumi", monkeypatch, version="3.205.0")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")
    with pytest.raises(PulumiCliTooOld, match="Pulumi CLI 3.205.0 is older than 3.211.0.*stack tags"):
        driver(tmp_path).prepare(SPEC, settings)
    assert pulumi_cli.commands() == ["version"]


def test_why_the_minimum_stands_an_older_cli_cannot_tag_a_file_backend_stack(tmp_path, monkeypatch, settings):
    """What would happen without the check: the stack is created, then tagging fails, every time."""
    import haymaker.driver as module

    monkeypatch.setattr(module, "MIN_CLI_VERSION", (3, 0, 0))
    FakePulumi.install(tmp_path / "pulumi", monkeypatch, version="3.205.0")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")
    with pytest.raises(StackError, match="stack tags not supported in diy mode"):
        driver(tmp_path).prepare(SPEC, settings)
