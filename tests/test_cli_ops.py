"""Operator commands end to end through `haymaker.cli.main`, with the cloud replaced by stand-ins."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import pytest

from haymaker.cli import doctor as cli_doctor
from haymaker.cli import lifecycle as cli_ops
from haymaker.doctor import Doctor
from haymaker.azure import Leftover
from haymaker.cli import main
from haymaker.driver import StackError
from haymaker.errors import InvalidInput
from haymaker.lifecycle import Clock, Lifecycle
from haymaker.retry import Backoff
from tests.fakes.login import jwt
from haymaker import settings
from tests.fakes.pulumi_cli import FakePulumi
from tests.test_handrun import config_copy
from tests.test_lifecycle import FakeAzure, FakeDriver, FakeLedger, stack

NOW = datetime.now(timezone.utc)


@pytest.fixture
def cloud(monkeypatch, tmp_path):
    """A stand-in cloud the commands are wired to; tests fill in its stacks and leftovers."""
    state = {"driver": FakeDriver(), "azure": FakeAzure(tenant="tenant-a")}
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub-1")
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant-a")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)

    def build(cfg, environment, progress=None):
        slept = []
        return Lifecycle(driver=state["driver"], azure=state["azure"], ledger=state.setdefault("ledger", FakeLedger()),
                         clock=Clock(sleep=slept.append, monotonic=lambda: sum(slept)),
                         backoff=Backoff(attempts=2, base_seconds=0),
                         audit_dir=tmp_path / "audit", rng=random.Random(0), echo=lambda *_: None,
                         progress=progress)

    monkeypatch.setattr(cli_ops, "build_lifecycle", build)

    def doctor(cfg, environment):
        # The real checks over the same stand-ins; tests/test_online_e2e.py runs them against local services.
        return Doctor(cfg, environment, credential=lambda: DeployerToken(), azure=lambda: state["azure"],
                      driver=lambda: state["driver"], ledger=lambda: state.setdefault("ledger", FakeLedger()))

    monkeypatch.setattr(cli_doctor, "build_doctor", doctor)
    monkeypatch.setattr(settings, "REPO_ROOT", config_copy(tmp_path / "repo"))  # the keys a deployment sets
    FakePulumi.install(tmp_path / "pulumi", monkeypatch)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")
    state["driver"].outputs = lambda name: PLATFORM
    return state


PLATFORM = {"managedEnvironmentId": "/subscriptions/sub-1/x", "agentPullIdentityId": "/id", "acrLoginServer": "acr"}


class DeployerToken:
    def get_token(self, scope):
        from azure.core.credentials import AccessToken

        return AccessToken(jwt({"oid": "deployer-oid", "appid": "deployer", "roles": ["Application.ReadWrite.OwnedBy", "Application.Read.All"]}),
                           2_000_000_000)


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_reap_reports_each_run_and_exits_3_when_something_is_left(cloud, capsys):
    cloud["driver"].stacks = [stack("20261120t0100z-0001", "2026-11-20T09:00:00Z"),
                              stack("20261120t0100z-0002", "2026-11-20T09:00:00Z")]
    stuck = Leftover("application", "app-2", "haymaker-20261120t0100z-0002-x")
    cloud["azure"].leftovers = [stuck]
    cloud["azure"].undeletable = {"app-2"}
    code, out, _ = run(capsys, "reap", "--json", "--now", "2026-11-21T00:00:00Z")
    assert code == 3
    results = {r["run_id"]: r["outcome"] for r in json.loads(out)}
    assert results == {"20261120t0100z-0001": "verified", "20261120t0100z-0002": "failed"}


def test_reap_dry_run_lists_without_touching(cloud, capsys):
    cloud["driver"].stacks = [stack("20261120t0100z-0001", "2026-11-20T09:00:00Z")]
    code, out, _ = run(capsys, "reap", "--dry-run", "--now", "2026-11-21T00:00:00Z")
    assert code == 0 and "20261120t0100z-0001: planned" in out and cloud["driver"].calls == []


def test_down_validates_and_confirms(cloud, capsys):
    cloud["driver"].stacks = [stack("20261120t0100z-0001", "2026-11-20T09:00:00Z")]
    code, _, err = run(capsys, "down", "not-a-run")
    assert code == 1 and "run id 'not-a-run' is not valid" in err
    code, _, err = run(capsys, "down", "20261120t0100z-0001")
    assert code == 1 and "pass --yes" in err and cloud["driver"].calls == []
    code, out, _ = run(capsys, "down", "20261120t0100z-0001", "--yes")
    assert code == 0 and "20261120t0100z-0001: verified" in out
    assert ("destroy", "run-20261120t0100z-0001") in cloud["driver"].calls


def test_down_of_a_run_that_never_existed_says_so(cloud, capsys):
    code, out, err = run(capsys, "down", "20261120t0100z-dead", "--yes")
    assert (code, out) == (1, "")
    assert err == ("error: no such run 20261120t0100z-dead: there is no stack run-20261120t0100z-dead in memory:// "
                   "and the ledger has no record of it; `haymaker runs` lists runs, `haymaker cleanup --orphaned` "
                   "what runs whose stack is gone left behind\n")
    assert cloud["driver"].calls == []


def test_down_of_a_run_whose_stack_is_gone_but_the_ledger_knows_verifies_what_is_left(cloud, capsys):
    from tests.test_ledger import make_run

    cloud["ledger"] = FakeLedger()
    cloud["ledger"].upsert_run(make_run("20261120t0100z-0002", "teardown_failed"))
    code, out, _ = run(capsys, "down", "20261120t0100z-0002", "--yes")
    assert code == 0 and out.splitlines()[-1] == "20261120t0100z-0002: verified"


def test_down_lists_every_missing_prerequisite_first(cloud, capsys, monkeypatch):
    """No Pulumi passphrase, a subscription of another tenant: both said at once, nothing read. The platform
    being gone is not among them: a teardown does not need it."""
    cloud["azure"].tenant = "tenant-b"
    cloud["driver"].outputs = lambda name: {}
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    code, out, err = run(capsys, "down", "20261120t0100z-0001", "--yes")
    assert code == 1 and out == "" and "2 prerequisite(s) missing; nothing was changed" in err
    assert [line.split(":")[0] for line in err.splitlines()[1:]] == ["  - state backend", "  - subscription"]
    assert cloud["driver"].calls == []


def test_down_works_with_the_platform_gone(cloud, capsys):
    cloud["driver"].stacks = [stack("20261120t0100z-0001", "2026-11-20T09:00:00Z")]
    cloud["driver"].outputs = lambda name: {}
    code, out, err = run(capsys, "down", "20261120t0100z-0001", "--yes")
    assert code == 0, err and "20261120t0100z-0001: verified" in out
    assert ("destroy", "run-20261120t0100z-0001") in cloud["driver"].calls


def test_down_names_the_run_in_its_progress_and_each_error_on_its_own_line(cloud, capsys, monkeypatch):
    """A run the ledger has no agents of (a stack made by hand) is shown by its stack name; a teardown
    that fails for two reasons prints them on two lines."""
    cloud["driver"].stacks = [stack("20261120t0100z-0003", "2026-11-20T09:00:00Z")]
    cloud["driver"].destroy_errors = {"run-20261120t0100z-0003": StackError("cannot destroy: provider said no")}

    def unreadable(proof):
        raise InvalidInput("cannot list what is left: ARM said no")

    monkeypatch.setattr(cloud["azure"], "survey", unreadable)
    code, out, _ = run(capsys, "down", "20261120t0100z-0003", "--yes")
    lines = out.splitlines()
    assert code == 3
    assert [line.split(" ", 1)[1] for line in lines[:3]] == ["run-20261120t0100z-0003: destroying",
                                                              "run-20261120t0100z-0003: verifying",
                                                              "run-20261120t0100z-0003: failed"]
    assert lines[3:] == ["20261120t0100z-0003: failed", "  cannot destroy: provider said no",
                         "  cannot list what is left: ARM said no"]


def test_up_refuses_a_subscription_of_another_tenant_before_deploying(cloud, capsys):
    cloud["azure"].tenant = "tenant-b"
    code, _, err = run(capsys, "up", "-s", "compute-01-linux-vm-web-server", "--yes")
    assert code == 1 and "belongs to tenant tenant-b, not tenant-a" in err
    assert cloud["driver"].calls == []


def test_up_lists_every_missing_prerequisite_at_once_before_anything(cloud, capsys, monkeypatch):
    cloud["azure"].tenant = "tenant-b"
    cloud["driver"].outputs = lambda name: {}
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    code, _, err = run(capsys, "up", "-s", "compute-01-linux-vm-web-server", "--yes")
    assert code == 1 and "3 prerequisite(s) missing; nothing was changed" in err
    assert "state backend: " in err and "belongs to tenant tenant-b" in err and "exports no managedEnvironmentId" in err
    assert cloud["driver"].calls == []


def test_up_needs_confirmation_without_a_terminal(cloud, capsys):
    code, _, err = run(capsys, "up", "-s", "compute-01-linux-vm-web-server")
    assert code == 1 and "pass --yes" in err and cloud["driver"].calls == []


def test_cleanup_is_a_dry_run_by_default_and_protects_live_runs(cloud, capsys):
    live_id = NOW.strftime("%Y%m%dt%H%Mz") + "-0abc"
    cloud["driver"].stacks = [stack(live_id, "2099-01-01T00:00:00Z", "dispatch")]
    code, _, err = run(capsys, "cleanup")
    assert code == 1 and "exactly one of --run-id ID or --orphaned" in err
    code, _, err = run(capsys, "cleanup", "--run-id", live_id)
    assert code == 2 and "pass --force" in err
    code, out, _ = run(capsys, "cleanup", "--run-id", live_id, "--force", "--json")
    assert code == 0 and json.loads(out)["dry_run"] is True and cloud["driver"].calls == []
    code, out, _ = run(capsys, "cleanup", "--run-id", live_id, "--force", "--apply", "--yes")
    assert code == 0 and ("destroy", f"run-{live_id}") in cloud["driver"].calls


def test_resources_from_stack_outputs_grouped(cloud, capsys):
    cloud["driver"].stacks = [stack("20261121t0600z-0001", "2099-01-01T00:00:00Z")]
    inventory = [{"scenario": s, "resource_group_name": f"rg-{s}", "resource_group_id": f"/rg/{s}",
                  "client_id": f"c-{s}", "service_principal_object_id": f"o-{s}", "job_name": f"job-{s}",
                  "job_id": f"/jobs/{s}"} for s in ("a", "b")]
    cloud["driver"].outputs_by_stack = {"run-20261121t0600z-0001": {"inventory": inventory}}
    cloud["driver"].outputs = lambda name: cloud["driver"].outputs_by_stack[name]
    code, out, _ = run(capsys, "resources", "--group-by", "type", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["total"] == 6
    assert [r["name"] for r in doc["groups"]["Microsoft.App/jobs"]] == ["job-a", "job-b"]
    code, _, err = run(capsys, "resources", "--group-by", "colour")
    assert code == 1 and "use scenario or type" in err
