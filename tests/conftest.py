"""Shared fixtures. The one Mocks class is haymaker.mockrun.PlanMocks: `haymaker plan` uses the same
mocks, so what the tests see is what a plan shows."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from haymaker.mockrun import evaluate
from haymaker.plan import platform_outputs_offline
from haymaker.runspec import RunSpec
from haymaker.settings import load_environment
from scenarios.catalog import load_catalog
from tests.azurite import azurite  # noqa: F401  (the session's Azurite, for ledger tests)

RUN_ID = "20261121t0600z-7f3a"


@pytest.fixture(scope="session")
def _fake_cloud_servers(tmp_path_factory):
    from tests.fakes.cloud import FakeCloud

    cloud = FakeCloud.start(tmp_path_factory.mktemp("fake-cloud-tls"))
    yield cloud
    cloud.stop()


@pytest.fixture
def fake_cloud(_fake_cloud_servers, monkeypatch):
    """Local HTTPS stand-ins of ARM, Resource Graph, Container Apps, Microsoft Graph and Entra sign-in
    (tests/fakes), empty for each test; clients trust their certificate through REQUESTS_CA_BUNDLE."""
    _fake_cloud_servers.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _fake_cloud_servers.ca_file)
    return _fake_cloud_servers


def local_state(monkeypatch, tmp_path, azurite) -> None:
    """A machine's own state in ``tmp_path``: home and working directory, a file backend with its passphrase,
    the ledger on a fresh Azurite, the audit directory."""
    from tests.azurite import fresh_service

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}/state")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")
    fresh_service(azurite)
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("HAYMAKER_AUDIT_DIR", str(tmp_path / "audit"))


FIXTURE_REPO = Path(__file__).resolve().parent / "fixtures" / "repo"


@pytest.fixture(scope="session")
def catalog():
    """The project's catalog: for invariants that hold whatever it holds, never for its size or names."""
    return load_catalog()


@pytest.fixture(scope="session")
def fixture_catalog():
    """A small frozen catalog (tests/fixtures/repo/scenarios): for tests that name scenarios or count them."""
    return load_catalog(FIXTURE_REPO / "scenarios")


@pytest.fixture(scope="session")
def settings():
    return load_environment("dev")


@pytest.fixture
def make_spec():
    def make(scenarios, duration_hours=8, run_id=RUN_ID, environment="dev"):
        return RunSpec(run_id=run_id, environment=environment, trigger="local", scenarios=tuple(scenarios),
                       duration_hours=duration_hours)

    return make


class Declared:
    """What a program declared under mocks, with lookups by type and logical name."""

    def __init__(self, resources, outputs):
        self.resources = resources
        self.outputs = outputs

    def of_type(self, token):
        return [r for r in self.resources if r.type == token]

    def one(self, token, name=None):
        found = [r for r in self.of_type(token) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {token} {name or ''}, found {[r.name for r in found]}"
        return found[0]


@pytest.fixture
def declare(fixture_catalog, settings):
    """Run the run program for a spec of fixture scenarios under mocks and return what it declared."""

    def run(spec, program=None, run_settings=None):
        from stacks.run import run_program

        s = run_settings or settings
        resources, outputs = evaluate(
            program or (lambda: run_program(spec, s, fixture_catalog)), project="haymaker", stack=spec.stack_name,
            platform_outputs=platform_outputs_offline(spec.environment, fixture_catalog))
        return Declared(resources, outputs)

    return run


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# A deployment's own repository and the object ids of the identities a person created for it: what
# Pulumi.<env>.yaml holds once `haymaker platform bootstrap --print` has been followed.
TEST_REPOSITORY = "acme/haymaker"
TEST_OBJECT_IDS = {"run-deployer": "0b0b0b0b-0000-4000-8000-0000000000d1",
                   "reaper": "0b0b0b0b-0000-4000-8000-0000000000a1",
                   "image-publisher": "0b0b0b0b-0000-4000-8000-0000000000b1"}


def bootstrapped(platform_settings):
    """Platform settings as a deployment has them after the bootstrap (repository and identities set)."""
    from dataclasses import replace

    return replace(platform_settings, github_repository=TEST_REPOSITORY, identity_object_ids=dict(TEST_OBJECT_IDS))
