"""The Automation-API driver up to the engine, and the Azure adapters at their boundary."""

from __future__ import annotations

import io
import json
import urllib.error

import pytest
from pulumi import automation as auto

from haymaker.azure import app_filter, run_resources_query
from haymaker.driver import (
    PulumiCliMissing,
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
