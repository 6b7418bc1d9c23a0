"""The Automation-API driver up to the engine, and the Azure adapters at their boundary."""

from __future__ import annotations

import io
import json
import urllib.error

import pytest
from pulumi import automation as auto

from haymaker.azure import Azure, AzureError, app_filter, run_resources_query
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


# --- Azure adapters ---------------------------------------------------------------------------------

class Page:
    def __init__(self, data, skip_token=None):
        self.data, self.skip_token = data, skip_token


class FakeGraphClient:
    def __init__(self, pages):
        self.pages, self.requests = list(pages), []

    def resources(self, request):
        self.requests.append(request)
        return self.pages.pop(0)


def test_tag_query_follows_skip_tokens_and_classifies_rows():
    rows1 = [{"id": "/subscriptions/s/resourceGroups/haymaker-r-a", "name": "haymaker-r-a",
              "type": "microsoft.resources/subscriptions/resourcegroups", "resourceGroup": "haymaker-r-a"}]
    rows2 = [{"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/w", "name": "w",
              "type": "microsoft.web/sites", "resourceGroup": "g"}]
    client = FakeGraphClient([Page(rows1, "next"), Page(rows2)])
    azure = Azure(credential=None, subscription_id="s", graph_client=client)
    found = azure.tagged_leftovers("20261121t0600z-7f3a")
    assert [(x.kind, x.name) for x in found] == [("resource_group", "haymaker-r-a"), ("resource", "w")]
    assert client.requests[1].options.skip_token == "next"
    assert client.requests[0].subscriptions == ["s"]
    assert "tags['haymaker-run'] =~ '20261121t0600z-7f3a'" in client.requests[0].query


def test_queries_cannot_be_broken_out_of():
    assert "'" not in run_resources_query("x' or 1==1 //").split("=~ '")[1].split("'")[0]
    assert app_filter("20261121t0600z-7f3a") == "startswith(displayName,'haymaker-20261121t0600z-7f3a-')"


class Token:
    token = "t0ken"


class Credential:
    def get_token(self, scope):
        assert scope == "https://graph.microsoft.com/.default"
        return Token()


class Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_graph_lists_run_applications_across_pages_and_reports_errors():
    seen = []

    def http(request, timeout):
        seen.append((request.get_method(), request.full_url, request.headers["Authorization"]))
        if len(seen) == 1:
            return Response(json.dumps({"value": [{"id": "1", "displayName": "haymaker-r-a"}],
                                        "@odata.nextLink": "https://graph.microsoft.com/v1.0/applications?$skiptoken=x"}).encode())
        return Response(json.dumps({"value": [{"id": "2", "displayName": "haymaker-r-b"}]}).encode())

    azure = Azure(credential=Credential(), subscription_id="s", http=http)
    apps = azure.run_applications("r")
    assert [(a.kind, a.id) for a in apps] == [("application", "1"), ("application", "2")]
    assert "startswith%28displayName%2C%27haymaker-r-%27%29" in seen[0][1] and seen[0][2] == "Bearer t0ken"

    def failing(request, timeout):
        raise urllib.error.HTTPError(request.full_url, 403, "Forbidden", {}, io.BytesIO(b'{"error":"Authorization_RequestDenied"}'))

    with pytest.raises(AzureError, match="Graph DELETE /applications/9 failed: 403 .*Authorization_RequestDenied"):
        Azure(credential=Credential(), subscription_id="s", http=failing).delete_application("9")
